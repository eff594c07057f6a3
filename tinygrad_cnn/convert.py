"""What the engine accepts: arrays, lists and numbers become tensors; backward's seed is checked.

Every op's public function, every layer and `Tensor(...)` itself take more than a Tensor: a
numpy array, a nested list, a Python number. These functions turn them into arrays and tensors
the same way everywhere, and refuse what would silently go wrong (a complex value would lose
its imaginary part when cast to float32). `initial_grad` checks the gradient `backward` starts
from. `tensor.py` calls these at one line each.

Read next: `hooks.py`, how a hook sees one tensor's gradient during backward.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_cnn import tensor as engine  # a cycle: used only when these run


def as_array(data: Any) -> np.ndarray:
    """float32/float64 arrays are kept as they are (no copy); anything else becomes float32.

    Raises:
        TypeError: complex values.
    Example:
        >>> as_array([1, 2])
        array([1., 2.], dtype=float32)
        >>> as_array(np.zeros(2)).dtype
        dtype('float64')
    """
    if isinstance(data, engine.Tensor):
        return data.data
    if isinstance(data, (np.ndarray, np.generic)) and data.dtype in (np.float32, np.float64):
        return np.asarray(data)
    array = np.asarray(data)
    if array.dtype.kind == "c":  # casting would silently drop the imaginary part
        raise TypeError(f"Tensor: complex values are not supported, got dtype {array.dtype}")
    return array.astype(np.float32, copy=False)


def as_tensor(value: Any, like: Any = None) -> Any:
    """`value` as a Tensor. Python numbers take `like`'s dtype, so float32 stays float32.

    Raises:
        TypeError: value is not a Tensor, an array, a list/tuple or a number.

    Example:
        >>> from tinygrad_cnn import Tensor
        >>> as_tensor(2, like=Tensor(np.zeros(3))).dtype
        dtype('float64')
        >>> as_tensor([1, 2]).data
        array([1., 2.], dtype=float32)
    """
    Tensor = engine.Tensor
    if isinstance(value, Tensor):
        return value
    real = isinstance(value, (int, float, bool, np.number)) and not np.iscomplexobj(value)
    if like is not None and real:  # (a complex scalar goes on to Tensor, which refuses it)
        return Tensor(np.asarray(value, dtype=like.dtype))
    if isinstance(value, (int, float, bool, list, tuple, np.ndarray, np.number)):
        return Tensor(value)
    raise TypeError(f"expected a Tensor, an array or a number, got {type(value).__name__}")


def shape_tuple(shape: Sequence[Any]) -> tuple[int, ...]:
    """Accept `reshape(2, 3)` and `reshape((2, 3))` alike.

    Example:
        >>> shape_tuple((2, 3)), shape_tuple(((2, 3),))
        ((2, 3), (2, 3))
    """
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def initial_grad(tensor: Any, grad: Any) -> np.ndarray:
    """The gradient `tensor.backward(grad)` starts from: `grad` checked, or 1 when omitted.

    Raises:
        RuntimeError: the tensor does not require grad.
        ValueError: grad omitted for a tensor of more than one element, or of the wrong shape.
    Example:
        >>> from tinygrad_cnn import Tensor
        >>> initial_grad(Tensor([2.0], requires_grad=True), None)
        array([1.], dtype=float32)
        >>> initial_grad(Tensor([2.0, 3.0], requires_grad=True), None)
        Traceback (most recent call last):
        ...
        ValueError: backward: grad can be omitted only for a one-element tensor, got shape (2,); pass grad= of that shape
    """  # noqa: E501
    if not tensor.requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require grad; "
            "no input it was computed from has requires_grad=True"
        )
    if grad is None:
        if tensor.data.size != 1:
            raise ValueError(
                f"backward: grad can be omitted only for a one-element tensor, "
                f"got shape {tensor.shape}; pass grad= of that shape"
            )
        grad = np.ones(tensor.shape, dtype=tensor.dtype)
    grad = grad.data if isinstance(grad, engine.Tensor) else np.asarray(grad, dtype=tensor.dtype)
    if grad.shape != tensor.shape:
        raise ValueError(
            f"backward: grad of shape {grad.shape} given for a tensor of shape {tensor.shape}"
        )
    return grad.astype(tensor.dtype, copy=False)
