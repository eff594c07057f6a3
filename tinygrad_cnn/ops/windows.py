"""Sliding-window arguments shared by conv.py and pool.py.

An int or a pair for kernel sizes, strides and dilations; padding given as an int, a pair,
'valid' or Keras' 'same'; the output-size formula with its error for a window that does not
fit; and reusable scratch buffers for the large temporaries (padded inputs, im2col columns).

Read next: `benchmarks/README.md`, how the speed of all this is measured.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_cnn.tensor import Tensor

Pair = tuple[int, int]
Padding = tuple[Pair, Pair]  # ((top, bottom), (left, right))

# ----------------------------------------------------------------------------------------
# Arguments: int-or-pair, padding, output size
# ----------------------------------------------------------------------------------------


def pair(value: Any, what: str, op: str, minimum: int = 1) -> Pair:
    """An int or a pair of ints as (height, width), each at least `minimum`.

    Raises:
        TypeError: value is not an int or a pair of ints.
        ValueError: a value is below `minimum`.

    Example:
        >>> pair(3, "stride", "conv2d")
        (3, 3)
        >>> pair((2, 1), "padding", "conv2d", minimum=0)
        (2, 1)
    """
    values = (value, value) if isinstance(value, (int, np.integer)) else value
    if (
        not isinstance(values, (tuple, list))
        or len(values) != 2
        or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in values)
    ):
        raise TypeError(f"{op}: {what} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in values):
        rule = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{op}: {what} must be {rule}, got {value!r}")
    return int(values[0]), int(values[1])


def resolve_padding(
    padding: Any, size: Pair, kernel: Pair, stride: Pair, dilation: Pair, op: str
) -> Padding:
    """Turn an int, a pair, 'valid' or 'same' into ((top, bottom), (left, right)).

    'same' follows Keras/TensorFlow at any stride: out = ceil(in / s), and the total padding
    max((out - 1)*s + (k - 1)*d + 1 - in, 0) is split with the odd pixel at the bottom/right.

    Example:
        >>> resolve_padding("same", (5, 6), (3, 3), (2, 2), (1, 1), "conv2d")
        ((1, 1), (0, 1))
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding != "same":
            raise ValueError(
                f"{op}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}"
            )
        sides = []
        for n, k, s, d in zip(size, kernel, stride, dilation):
            out = -(-n // s)  # ceil(n / s)
            total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
            sides.append((total // 2, total - total // 2))
        return sides[0], sides[1]
    ph, pw = pair(padding, "padding", op, minimum=0)
    return (ph, ph), (pw, pw)


def output_size(
    size: Pair,
    kernel: Pair,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    op: str,
    x_shape: tuple[int, ...],
) -> Pair:
    """(OH, OW) = ((H + top + bottom - (KH-1)*d - 1) // s + 1, same for W).

    Raises:
        ValueError: the (dilated) kernel is larger than the padded input.

    Example:
        >>> output_size((5, 5), (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), "conv2d", (1, 1, 5, 5))
        (3, 3)
    """
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(size, padding))
    reach = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation))
    if reach[0] > padded[0] or reach[1] > padded[1]:
        dilated = f" (dilated to {reach[0]}x{reach[1]})" if reach != tuple(kernel) else ""
        raise ValueError(
            f"{op}: kernel {kernel[0]}x{kernel[1]}{dilated} is larger than the "
            f"padded input {padded[0]}x{padded[1]} (input {x_shape}, padding "
            f"{padding})"
        )
    return tuple((p - r) // s + 1 for p, r, s in zip(padded, reach, stride))


def check_4d(x: Tensor, op: str, what: str = "input") -> None:
    """Raise ValueError (naming `op`, `what` and the shape) unless x is 4-D (N, C, H, W).

    Example:
        >>> check_4d(Tensor(np.zeros((4, 4))), "conv2d")
        Traceback (most recent call last):
        ...
        ValueError: conv2d: input must be 4-D (N, C, H, W), got shape (4, 4)
    """
    if x.ndim != 4:
        hint = " (add a batch axis: x.reshape(1, *x.shape))" if x.ndim == 3 else ""
        raise ValueError(f"{op}: {what} must be 4-D (N, C, H, W), got shape {x.shape}{hint}")


# ----------------------------------------------------------------------------------------
# Scratch buffers and padding
# ----------------------------------------------------------------------------------------


def check_groups(op: str, groups: Any, channels: int, x_shape, w_shape) -> int:
    """groups as an int that divides both the input channels and the filters.

    Raises:
        TypeError: groups is not an int.
        ValueError: groups is not positive or does not divide the channels and filters.

    Example:
        >>> check_groups("conv2d", 2, 8, (1, 4, 5, 5), (8, 2, 3, 3))
        2
    """
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{op}: groups must be positive, got {groups}")
    if x_shape[1] % groups or channels % groups:
        raise ValueError(
            f"{op}: input {x_shape} has {x_shape[1]} channels and weight {w_shape} "
            f"has {channels} filters; both must be divisible by groups={groups}"
        )
    return int(groups)


_WORKSPACES: dict[tuple, np.ndarray] = {}


def workspace(tag: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A scratch array reused from call to call, for values that are dead when an op returns.

    im2col buffers are tens of MB. A fresh one each step costs a page fault per 4 KiB page,
    more than filling it, so one flat buffer per (tag, dtype) is kept, grown to the largest
    size asked for, and each call gets a view of its first prod(shape) elements. One buffer
    per tag (not one per shape) keeps the memory held between steps to the largest layer's.

    Example:
        >>> workspace("doc", (2, 3), np.float32).shape
        (2, 3)
    """
    key = (tag, np.dtype(dtype).str)
    size = int(np.prod(shape))
    buffer = _WORKSPACES.get(key)
    if buffer is None or buffer.size < size:
        buffer = _WORKSPACES[key] = np.empty(size, dtype)
    return buffer[:size].reshape(shape)


def padded(x: np.ndarray, padding: Padding, value: float, tag: str) -> np.ndarray:
    """x with `value` around its last two axes, in a scratch buffer (x itself when no padding).

    Shapes:
        x: (N, C, H, W) -> (N, C, H + top + bottom, W + left + right)

    Example:
        >>> padded(np.ones((1, 1, 1, 2)), ((1, 0), (0, 1)), 0.0, "doc")[0, 0]
        array([[0., 0., 0.],
               [1., 1., 0.]])
    """
    (top, bottom), (left, right) = padding
    if top == bottom == left == right == 0:
        return x
    N, C, H, W = x.shape
    xp = workspace(tag, (N, C, H + top + bottom, W + left + right), x.dtype)
    xp[:, :, :top] = value  # only the border is written twice; the inside is copied once
    xp[:, :, H + top :] = value
    xp[:, :, :, :left] = value
    xp[:, :, :, W + left :] = value
    xp[:, :, top : top + H, left : left + W] = x
    return xp


def pad_or_crop(x: np.ndarray, sides: Padding) -> np.ndarray:
    """Pad the last two axes with zeros where a side is positive, cut where it is negative.

    Shapes:
        x: (N, C, H, W) -> (N, C, H + top + bottom, W + left + right)

    Example:
        >>> pad_or_crop(np.ones((1, 1, 3, 3)), ((-1, 0), (1, -2)))[0, 0]
        array([[0., 1.],
               [0., 1.]])
    """
    (top, bottom), (left, right) = sides
    H, W = x.shape[2:]
    x = x[:, :, max(-top, 0) : H - max(-bottom, 0), max(-left, 0) : W - max(-right, 0)]
    return padded(x, ((max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0))), 0.0, "gp")
