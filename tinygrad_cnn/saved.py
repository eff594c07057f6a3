"""Keeping the arrays a graph saved exactly as forward saw them.

Backward computes each gradient from arrays that forward saved: `mul` keeps both inputs,
`exp` its output. If one of them changed between forward and backward (`x.data[...] = 0`,
an optimizer step), backward would mix old and new values and return a wrong gradient
without a word. Two guards make that impossible:

- While a recorded node has not run backward, it pins its inputs' arrays and its output's
  array read-only (numpy's `writeable` flag): writing into them raises at the line that
  writes. Backward (or dropping the graph) makes them writable again.
- Code that changes a tensor's values on purpose (optimizers, `load_state_dict`, init) goes
  through `Tensor.data_for_update()`, which gives the tensor a fresh copy when a pending graph
  holds its array, and counts a version; backward refuses to run a node whose inputs' versions
  moved since its forward, as PyTorch does.

What is not caught: a write through another view of the same memory made before the graph
was recorded (numpy cannot freeze a base through its view).

Read next: `convert.py`, what the engine accepts as input (track 3 of docs/READING.md;
`tensor.py` calls these).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import numpy as np

# Pin counts of a tensor shared by threads stay exact. Reentrant: freeing memory inside the
# lock can run other code on this thread (a finalizer, or the cyclic garbage collector
# finalizing another graph's node), whose release takes the lock again.
_pin_lock = threading.RLock()


def freeze(fn: Any, inputs: tuple, out: np.ndarray) -> None:
    """Pin what the recorded node `fn` may read in backward: inputs' arrays and `out`.

    Example:
        >>> from tinygrad_cnn import Tensor
        >>> x = Tensor([1.0], requires_grad=True)
        >>> y = x * 2                        # mul is recorded: x's array is pinned
        >>> x.data.flags.writeable, y.data.flags.writeable
        (False, False)
        >>> y.sum().backward()               # released: writable again
        >>> x.data.flags.writeable
        True
    """
    fn.versions = tuple(t._version for t in inputs)
    fn._pinned = inputs
    for t in inputs:
        _pin(t)
    if out.flags.writeable:  # the output array, not its tensor (that would make a cycle)
        out.flags.writeable = False
        fn._frozen_out = out


def thaw(fn: Any) -> None:
    """Undo `freeze(fn, ...)`: each array becomes writable once no pending node needs it.

    Example:
        >>> from tinygrad_cnn import Tensor
        >>> x = Tensor([1.0], requires_grad=True)
        >>> y = x * 2
        >>> thaw(y._ctx)
        >>> x.data.flags.writeable
        True
    """
    for t in fn._pinned:
        _unpin(t)
    fn._pinned = ()
    if fn._frozen_out is not None:
        with contextlib.suppress(ValueError):  # a view of a still-frozen input
            fn._frozen_out.flags.writeable = True
        fn._frozen_out = None


def _pin(t: Any) -> None:
    with _pin_lock:
        t._pins += 1
        if t._pins == 1 and t.data.flags.writeable:
            t.data.flags.writeable = False
            t._frozen = t.data


def _unpin(t: Any) -> None:
    with _pin_lock:
        t._pins -= 1
        if t._pins == 0 and t._frozen is not None:
            with contextlib.suppress(ValueError):  # a view of a still-frozen array
                t._frozen.flags.writeable = True
            t._frozen = None


def data_for_update(t: Any) -> np.ndarray:
    """The array to change tensor t's values through, in place; counts the change.

    Optimizers, BatchNorm statistics and `load_state_dict` write through it (as
    `t.data_for_update()`). When a graph that has not run backward yet saved the current
    array, the tensor first gets a writable copy: the graph keeps the values it saw, and its
    backward will refuse to run (the version changed) instead of silently using the new values.

    Example:
        >>> from tinygrad_cnn import Tensor
        >>> w = Tensor([1.0, 2.0], requires_grad=True)
        >>> y = (w * w).sum()                # the graph saved w's array: now read-only
        >>> w.data.flags.writeable
        False
        >>> data_for_update(w)[...] = 0      # an optimizer step before backward
        >>> try:
        ...     y.backward()
        ... except RuntimeError as error:
        ...     print(str(error)[:51])
        backward: mul saved input 0 (a leaf of shape (2,))
    """
    if not t._data.flags.writeable:
        t._data = t._data.copy()
    t._version += 1
    return t._data


def check_versions(fn: Any) -> None:
    """Refuse to run fn.backward if an input's values changed since fn's forward saw them.

    Raises:
        RuntimeError: naming the op, the input and the versions.
    Example:
        >>> from tinygrad_cnn import Tensor
        >>> w = Tensor([1.0], requires_grad=True)
        >>> y = w * 3
        >>> w.data = [5.0]                   # replaced (allowed), and counted
        >>> try:
        ...     check_versions(y._ctx)
        ... except RuntimeError as error:
        ...     print(str(error)[:51])
        backward: mul saved input 0 (a leaf of shape (1,))
    """
    for i, (t, seen) in enumerate(zip(fn.inputs, fn.versions)):
        if t._version != seen:
            what = f"'{t.name}', " if t.name else ""
            made_by = "a leaf" if t._ctx is None else f"the output of {t._ctx.name}"
            raise RuntimeError(
                f"backward: {fn.name} saved input {i} ({what}{made_by} of shape {t.shape}) "
                f"and it was modified in place afterwards (version {seen} -> {t._version}), "
                f"so the gradient would mix old and new values. Call backward before "
                f"changing it (an optimizer step, `.data = ...`, load_state_dict), or run "
                f"the forward again"
            )


def check_not_released(order: list) -> None:
    """Refuse to run backward through nodes whose saved arrays an earlier backward freed.

    Raises:
        RuntimeError: saying to pass retain_graph=True to the first backward.
    Example:
        >>> from tinygrad_cnn import Tensor
        >>> y = (Tensor([1.0], requires_grad=True) * 2).sum()
        >>> y.backward()
        >>> try:
        ...     check_not_released(y._topological_order())
        ... except RuntimeError as error:
        ...     print(str(error)[:45])
        backward: the graph's saved arrays were freed
    """
    for node in order:
        if node._ctx is not None and getattr(node._ctx, "released", False):
            raise RuntimeError(
                "backward: the graph's saved arrays were freed by an earlier "
                "backward; pass retain_graph=True to the first call"
            )
