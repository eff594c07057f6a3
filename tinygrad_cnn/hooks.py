"""Tensor hooks: a function called with a tensor's complete gradient during backward.

`Tensor.register_hook(hook)` hands its work to `register_hook` here; `Tensor.backward` calls
`run_hooks` on a node that has hooks, once its gradient is complete (after every user of the
node has sent its share). As in PyTorch, a hook that returns an array replaces the gradient:
what flows on to the node's inputs, and what a leaf accumulates into `.grad`. A tensor with no
hooks pays one attribute test.

Read next: `watch.py`, callbacks that see every step of backward rather than one tensor's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


class _HookHandle:
    """What `register_hook` returns: `remove()` unregisters the hook."""

    def __init__(self, hooks: dict) -> None:
        self._hooks = hooks

    def remove(self) -> None:
        self._hooks.pop(self, None)


def register_hook(tensor: Any, hook: Callable[[np.ndarray], np.ndarray | None]) -> _HookHandle:
    """Call `hook(grad)` when backward has `tensor`'s complete gradient (as PyTorch).

    A hook that returns an array replaces the gradient (the same shape): what flows on to
    the inputs, and what a leaf accumulates into `.grad`. Works on leaves and intermediate
    tensors; hooks run in the order they were registered.

    Returns:
        a handle whose `remove()` unregisters the hook.
    Raises:
        RuntimeError: the tensor does not require grad, so backward never reaches it.
    Example:
        >>> from tinygrad_cnn import Tensor
        >>> x = Tensor([1.0, 2.0], requires_grad=True)
        >>> y = x * 3
        >>> handle = register_hook(y, lambda grad: grad * 10)   # scale what flows back
        >>> y.sum().backward()
        >>> x.grad
        array([30., 30.], dtype=float32)
        >>> handle.remove()
    """
    if not tensor.requires_grad:
        raise RuntimeError(
            "register_hook: this tensor does not require grad, so backward never reaches it"
        )
    if tensor._hooks is None:
        tensor._hooks = {}
    handle = _HookHandle(tensor._hooks)
    tensor._hooks[handle] = hook
    return handle


def run_hooks(tensor: Any, grad: np.ndarray) -> np.ndarray:
    """`tensor`'s gradient after each of its hooks, in order, has seen (and maybe replaced) it.

    Raises:
        ValueError: a hook returned a gradient of another shape than the tensor's.
    Example:
        >>> from tinygrad_cnn import Tensor
        >>> x = Tensor([1.0, 2.0], requires_grad=True)
        >>> _ = register_hook(x, lambda grad: grad + 1)
        >>> run_hooks(x, np.zeros(2, dtype=np.float32))
        array([1., 1.], dtype=float32)
    """
    for hook in list(tensor._hooks.values()):
        replaced = hook(grad)
        if replaced is not None:
            replaced = np.asarray(replaced, dtype=tensor.dtype)
            if replaced.shape != tensor.shape:
                raise ValueError(
                    f"backward: a hook returned a gradient of shape {replaced.shape} "
                    f"for a tensor of shape {tensor.shape}"
                )
            grad = replaced
    return grad
