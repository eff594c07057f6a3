"""Reductions: sum, mean, max over an axis, several axes, or everything.

A reduction sends each output element's gradient back to every input element it summarised:
`sum` to all of them (a broadcast, the reverse of summing), `max` only to the winner(s).
`mean` is built from `sum` and a division, so it needs no backward of its own.

Read next: `matmul.py`.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.tensor import Function, Tensor, as_tensor


def _normalize_axis(op: str, axis, ndim: int) -> tuple[int, ...]:
    """None -> every axis; an int or a tuple of ints (negative allowed) -> sorted positive axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or not -ndim <= a < ndim:
            raise ValueError(f"{op}: axis {a!r} is out of range for a tensor with {ndim} axes")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: axis {axis!r} repeats an axis")
    return tuple(sorted(out))


def _keepdims_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    """The shape with each reduced axis kept as size 1, so the gradient can broadcast back."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class SumFn(Function):
    """Sum over `axes`.

    forward:   out[rest] = sum_{axes} x[...]
    backward:  dx[...] = grad[rest]            (every summed element gets the same gradient)
    """

    name = "sum"

    def forward(self, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        self.x_shape, self.axes = x.shape, axes
        return np.asarray(x.sum(axis=axes, keepdims=keepdims))

    def backward(self, grad: np.ndarray):
        grad = grad.reshape(_keepdims_shape(self.x_shape, self.axes))
        return np.broadcast_to(grad, self.x_shape).copy()  # a view must not become a .grad


class MaxFn(Function):
    """Maximum over `axes`.

    forward:   out[rest] = max_{axes} x[...]
    backward:  dx[...] = grad[rest] * (x[...] == out[rest]) / (number of tied maxima)

    NOTE: ties share the gradient equally (as torch.amax does), so the gradient still sums to
    grad and a numerical check agrees away from ties.
    """

    name = "max"

    def forward(self, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        self.x, self.axes = x, axes
        self.out_kept = x.max(axis=axes, keepdims=True)  # (kept shape), broadcasts against x
        return np.asarray(self.out_kept if keepdims else self.out_kept.squeeze(axis=axes))

    def backward(self, grad: np.ndarray):
        winners = self.x == self.out_kept
        count = winners.sum(axis=self.axes, keepdims=True)
        grad = grad.reshape(self.out_kept.shape)
        return (winners * (grad / count)).astype(self.x.dtype, copy=False)


def sum(x: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
    """Sum of elements over `axis` (None: all, giving shape ()).

    Example:
        >>> sum(Tensor([[1.0, 2.0], [3.0, 4.0]]), axis=0).data
        array([4., 6.], dtype=float32)
    """
    x = as_tensor(x)
    return SumFn.apply(x, axes=_normalize_axis("sum", axis, x.ndim), keepdims=keepdims)


def mean(x: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
    """Mean over `axis`, built as sum / count (its gradient follows from theirs).

    Example:
        >>> mean(Tensor([[1.0, 2.0], [3.0, 4.0]])).item()
        2.5
    """
    x = as_tensor(x)
    axes = _normalize_axis("mean", axis, x.ndim)
    count = int(np.prod([x.shape[a] for a in axes]))
    return SumFn.apply(x, axes=axes, keepdims=keepdims) / count


def max(x: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
    """Maximum over `axis`; the gradient goes to the maximum (shared equally by ties).

    Raises:
        ValueError: reducing an empty axis.
    Example:
        >>> max(Tensor([[1.0, 5.0], [7.0, 2.0]]), axis=1).data
        array([5., 7.], dtype=float32)
    """
    x = as_tensor(x)
    axes = _normalize_axis("max", axis, x.ndim)
    if any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"max: cannot reduce an empty axis of shape {x.shape}")
    return MaxFn.apply(x, axes=axes, keepdims=keepdims)
