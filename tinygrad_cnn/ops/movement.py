"""Movement ops: reshape, transpose, flatten, getitem (indexing), concat, pad.

They move or select numbers without doing arithmetic on them, so each backward moves the
gradient back the opposite way: reshape back, transpose by the inverse permutation, scatter
into the indexed cells, split the concatenation, cut off the padding.

Read next: `matmul.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_cnn.convert import shape_tuple
from tinygrad_cnn.ops.windows import parallel
from tinygrad_cnn.tensor import Function, Tensor, as_tensor


class ReshapeFn(Function):
    """forward: out = x viewed with a new shape        backward: dx = grad reshaped back"""

    name = "reshape"

    def forward(self, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        self.x_shape = x.shape
        return x.reshape(shape)

    def backward(self, grad: np.ndarray):
        return grad.reshape(self.x_shape)


class TransposeFn(Function):
    """Permute axes.

    forward:   out = x with axes permuted: out.shape[i] = x.shape[axes[i]]
    backward:  dx = grad permuted by the inverse permutation (argsort(axes))
    """

    name = "transpose"

    def forward(self, x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        self.axes = axes
        return x.transpose(axes)

    def backward(self, grad: np.ndarray):
        return grad.transpose(np.argsort(self.axes))


class GetitemFn(Function):
    """Indexing with numpy basic indices (ints, slices with steps, None, Ellipsis).

    forward:   out = x[index]
    backward:  dx = zeros like x, then dx[index] = grad     (the gradient goes back where the
               values were read; cells that were not read get 0)
    """

    name = "getitem"

    def forward(self, x: np.ndarray, index: Any) -> np.ndarray:
        self.x_shape, self.x_dtype, self.index = x.shape, x.dtype, index
        return x[index]

    def backward(self, grad: np.ndarray):
        dx = np.zeros(self.x_shape, dtype=self.x_dtype)
        # NOTE: basic indices never select a cell twice, so assignment (not addition) is right
        dx[self.index] = grad
        return dx


class ConcatFn(Function):
    """Join tensors along one axis.

    forward:   out = [x_0 | x_1 | ... ] along `axis`
    backward:  dx_k = the slice of grad that x_k filled
    """

    name = "concat"

    def forward(self, *xs: np.ndarray, axis: int) -> np.ndarray:
        self.axis = axis
        self.bounds = np.cumsum([0] + [x.shape[axis] for x in xs])  # where each x_k starts
        if axis == 0 or xs[0].ndim < 2 or len({x.dtype for x in xs}) > 1:
            return np.concatenate(xs, axis=axis)
        # NOTE: joined along a later axis (the U-Net's channels), the copy is split over the
        # first axis and the threads (`parallel`); same numbers as np.concatenate. Measured:
        # the U-Net step's concat forward, 2 threads, 1.8 -> 1.4 ms
        shape = list(xs[0].shape)
        shape[axis] = int(self.bounds[-1])
        out = np.empty(shape, xs[0].dtype)

        def copy(start: int, stop: int) -> None:  # slices start..stop of the first axis
            index = [slice(None)] * out.ndim  # this thread's own
            for k, x in enumerate(xs):
                index[axis] = slice(self.bounds[k], self.bounds[k + 1])
                index[0] = slice(start, stop)
                np.copyto(out[tuple(index)], x[start:stop])

        parallel(copy, out.shape[0], out.size)
        return out

    def backward(self, grad: np.ndarray):
        index = [slice(None)] * grad.ndim
        dxs = []
        for k, needs in enumerate(self.needs_input_grad):
            index[self.axis] = slice(self.bounds[k], self.bounds[k + 1])
            dxs.append(grad[tuple(index)] if needs else None)
        return tuple(dxs)


class PadFn(Function):
    """Pad with a constant.

    forward:   out = x surrounded by `pad_width` cells of `value` (numpy's pad_width)
    backward:  dx = grad with the padding cut off
    """

    name = "pad"

    def forward(self, x: np.ndarray, pad_width: tuple[tuple[int, int], ...], value: float):
        self.inner = tuple(slice(lo, lo + n) for (lo, _), n in zip(pad_width, x.shape))
        return np.pad(x, pad_width, constant_values=value)

    def backward(self, grad: np.ndarray):
        return grad[self.inner]


def _resolve_shape(shape: tuple[int, ...], size: int) -> tuple[int, ...] | None:
    """`shape` with its -1 filled in, or None if no such shape holds `size` elements."""
    if shape.count(-1) > 1 or any(n < -1 for n in shape):
        return None
    known = int(np.prod([n for n in shape if n != -1]))
    if -1 in shape:
        if known == 0 or size % known:
            return None
        shape = tuple(size // known if n == -1 else n for n in shape)
    return tuple(int(n) for n in shape) if int(np.prod(shape)) == size else None


def reshape(x: Tensor, *shape: int) -> Tensor:
    """The same elements in a new shape; one size may be -1 (inferred).

    Raises:
        ValueError: the sizes do not multiply to the number of elements.
    Example:
        >>> reshape(Tensor(np.arange(6.0)), 2, -1).shape
        (2, 3)
    """
    x = as_tensor(x)
    shape = shape_tuple(shape)
    target = _resolve_shape(shape, x.size)
    if target is None:
        raise ValueError(f"reshape: cannot reshape {x.shape} ({x.size} elements) into {shape}")
    if target == x.shape:
        return x
    return ReshapeFn.apply(x, shape=target)


def transpose(x: Tensor, *axes: int) -> Tensor:
    """Permute the axes; with no axes, reverse them all (as numpy's transpose).

    Example:
        >>> transpose(Tensor(np.zeros((2, 3, 4))), 0, 2, 1).shape
        (2, 4, 3)
    """
    x = as_tensor(x)
    axes = shape_tuple(axes) or tuple(reversed(range(x.ndim)))
    if sorted(a % x.ndim if x.ndim else a for a in axes) != list(range(x.ndim)):
        raise ValueError(
            f"transpose: axes {axes} are not a permutation of the {x.ndim} axes "
            f"of a tensor of shape {x.shape}"
        )
    return TransposeFn.apply(x, axes=tuple(a % x.ndim for a in axes))


def flatten(x: Tensor, start_axis: int = 1) -> Tensor:
    """Merge the axes from `start_axis` on into one: (N, C, H, W) -> (N, C*H*W).

    Example:
        >>> flatten(Tensor(np.zeros((2, 3, 4, 5)))).shape
        (2, 60)
    """
    x = as_tensor(x)
    if not -x.ndim <= start_axis < max(x.ndim, 1):
        raise ValueError(f"flatten: start_axis {start_axis} is out of range for shape {x.shape}")
    start = start_axis % max(x.ndim, 1)
    merged = int(np.prod(x.shape[start:]))  # not -1: that is ambiguous for an empty batch
    return reshape(x, *x.shape[:start], merged)


def _check_basic_index(index: Any) -> None:
    parts = index if isinstance(index, tuple) else (index,)
    for part in parts:
        if not (part is None or part is Ellipsis or isinstance(part, (int, np.integer, slice))):
            raise TypeError(
                f"getitem: only basic indices (int, slice, None, ...) are supported, "
                f"got {type(part).__name__}"
            )


def getitem(x: Tensor, index: Any) -> Tensor:
    """x[index] with numpy basic indexing; the gradient scatters back to the indexed cells.

    Raises:
        TypeError: advanced indexing (arrays, lists, boolean masks).
        IndexError: an index out of range (numpy's message, with the shape).
    Example:
        >>> getitem(Tensor(np.arange(10.0)), slice(None, None, -3)).data
        array([9., 6., 3., 0.])
    """
    x = as_tensor(x)
    _check_basic_index(index)
    try:
        x.data[index]
    except IndexError as error:
        raise IndexError(
            f"getitem: index {index!r} for a tensor of shape {x.shape}: {error}"
        ) from None
    return GetitemFn.apply(x, index=index)


def concat(tensors: Sequence[Tensor], axis: int = 1) -> Tensor:
    """Join tensors along `axis`; every other size must agree.

    Raises:
        ValueError: no tensors, different numbers of axes, or sizes that differ off `axis`.
    Example:
        >>> concat([Tensor(np.zeros((1, 2))), Tensor(np.ones((1, 3)))], axis=1).shape
        (1, 5)
    """
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("concat: needs at least one tensor")
    ndim = tensors[0].ndim
    shapes = [t.shape for t in tensors]
    if any(t.ndim != ndim for t in tensors) or not -ndim <= axis < ndim:
        raise ValueError(f"concat: cannot join shapes {shapes} along axis {axis}")
    axis %= ndim
    for shape in shapes:
        if shape[:axis] + shape[axis + 1 :] != shapes[0][:axis] + shapes[0][axis + 1 :]:
            raise ValueError(f"concat: shapes {shapes} differ on an axis other than {axis}")
    return ConcatFn.apply(*tensors, axis=axis)


def pad(x: Tensor, pad_width: Sequence[tuple[int, int]], value: float = 0.0) -> Tensor:
    """Pad with `value`; `pad_width` gives (before, after) per axis, as numpy.pad.

    Example:
        >>> pad(Tensor([[1.0]]), ((1, 0), (0, 2))).data
        array([[0., 0., 0.],
               [1., 0., 0.]], dtype=float32)
    """
    x = as_tensor(x)
    pad_width = tuple((int(lo), int(hi)) for lo, hi in pad_width)
    if len(pad_width) != x.ndim or any(lo < 0 or hi < 0 for lo, hi in pad_width):
        raise ValueError(
            f"pad: pad_width {pad_width} must give non-negative (before, after) "
            f"for each of the {x.ndim} axes of shape {x.shape}"
        )
    return PadFn.apply(x, pad_width=pad_width, value=value)
