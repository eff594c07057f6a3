"""Watching the engine work: callbacks on every op's forward and every step of backward.

Tools that show or check what the engine does (anomaly mode, `explain backward`, the graph
explorer) register a callback here rather than walking the graph a second time, so what they
report is the engine's real order. Watchers are per thread, like the rest of the engine's
state; with none registered, each op and each backward step pays one empty loop.

Read next: `ops/loss_checks.py`, where bad labels are caught (`tensor.py` is where these
callbacks are called).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any


class _Watchers(threading.local):
    def __init__(self) -> None:
        self.forward: tuple[Callable, ...] = ()
        self.backward: tuple[Callable, ...] = ()


watchers = _Watchers()  # read by Function.apply and Tensor.backward


@contextlib.contextmanager
def _watching(kind: str, callback: Callable):
    outer = getattr(watchers, kind)
    setattr(watchers, kind, (*outer, callback))
    try:
        yield callback
    finally:
        setattr(watchers, kind, outer)


def watch_forward(callback: Callable[[Any, Any], None]):
    """In this thread, call `callback(fn, out)` after every op's forward, recorded or not.

    `fn` is the Function (its `.inputs` are the input tensors), `out` the array it returned,
    before it becomes a Tensor. Anomaly mode uses this.

    Example:
        >>> from tinygrad_cnn import Tensor
        >>> seen = []
        >>> with watch_forward(lambda fn, out: seen.append(fn.name)):
        ...     y = Tensor([1.0]) * 2 + 1
        >>> seen
        ['mul', 'add']
    """
    return _watching("forward", callback)


def watch_backward(callback: Callable[[Any, Any, tuple], None]):
    """In this thread, call `callback(node, grad, sent)` for every node backward visits.

    The calls come in the engine's real order (each node after every node that uses it).
    `grad` is the node's complete gradient (after its hooks); `sent` holds one
    `(input_tensor, gradient or None)` pair per input of the Function that made the node,
    as its backward returned them (empty for a leaf). The graph explorer replays this.

    Example:
        >>> from tinygrad_cnn import Tensor
        >>> a = Tensor([2.0], requires_grad=True)
        >>> steps = []
        >>> with watch_backward(lambda node, grad, sent: steps.append((grad.item(), len(sent)))):
        ...     (a * a).sum().backward()
        >>> steps                           # sum (1 input), mul (a twice), then the leaf a
        [(1.0, 1), (1.0, 2), (4.0, 0)]
    """
    return _watching("backward", callback)
