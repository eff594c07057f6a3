"""What a module call leaves behind for tools: the module scope and the forward watchers.

`Module.__call__` runs `forward` inside `module_scope(self)`, so every tensor made there
records which module (and which call of it) made it: the graph drawings box tensors by module,
and anomaly mode names the module at fault. After `forward` it calls each hook registered with
`watch_modules`: `nn.summary` sees each layer's output shape that way, and `health.py` the
activations, without the layers knowing. Both are per thread, like the rest of the engine's
state; with no watcher registered a call pays one empty loop.

Read next: `nn/state.py`, how `load_state_dict` checks a whole state before it changes anything.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from tinygrad_cnn.tensor import thread_state


@contextlib.contextmanager
def module_scope(module: Any):
    """Record `module` as the innermost scope of tensors created in the `with` body.

    Each entry is one call, numbered, so a module called twice is drawn as two boxes. The
    scope is per thread (it lives in the engine's `thread_state`, which every new tensor
    copies into `t._scope` and `t._calls`).

    Example:
        >>> from tinygrad_cnn import Tensor
        >>> with module_scope("outer"), module_scope("inner"):
        ...     t = Tensor([1.0])
        >>> t._scope, len(t._calls)
        (('outer', 'inner'), 2)
    """
    state = thread_state
    outer, outer_calls = state.scope, state.calls
    state.call_serial += 1
    state.scope, state.calls = outer + (module,), outer_calls + (state.call_serial,)
    try:
        yield
    finally:
        state.scope, state.calls = outer, outer_calls


class _ForwardHooks(threading.local):
    def __init__(self) -> None:
        self.hooks: tuple[Callable[[Any, Any], None], ...] = ()


forward_hooks = _ForwardHooks()  # read by Module.__call__; per thread


@contextlib.contextmanager
def watch_modules(hook: Callable[[Any, Any], None]):
    """In this thread, call `hook(module, output)` after every module's forward.

    `nn.summary` uses it to see each layer's output shape without the layers knowing.

    Example:
        >>> from tinygrad_cnn import Tensor, nn
        >>> seen = []
        >>> with watch_modules(lambda module, out: seen.append(type(module).__name__)):
        ...     _ = nn.Sequential(nn.Linear(2, 2), nn.ReLU())(Tensor([[1.0, 2.0]]))
        >>> seen
        ['Linear', 'ReLU', 'Sequential']
    """
    outer = forward_hooks.hooks
    forward_hooks.hooks = (*outer, hook)
    try:
        yield hook
    finally:
        forward_hooks.hooks = outer
