"""Sliding-window arguments shared by the convolutions and the poolings, fast and reference.

An int or a pair for kernel sizes, strides and dilations; padding given as an int, a pair,
'valid' or Keras' 'same'; the output-size formula with its error for a window that does not
fit; the checks every conv and pool call makes before it touches an array.

Read next: `windows.py`, the scratch memory and threads the fast kernels share.
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


def pool_args(op: str, x: Tensor, kernel_size: Any, stride: Any, padding: Any):
    """Check a pooling call; return (kernel, stride, ((top, bottom), (left, right))).

    The stride defaults to the window (as in Keras and PyTorch); explicit padding may be at
    most half the window, so that no window holds only padding.

    Example:
        >>> pool_args("maxpool2d", Tensor(np.zeros((1, 1, 5, 5))), 2, None, "same")
        ((2, 2), (2, 2), ((0, 1), (0, 1)))
    """
    check_4d(x, op)
    kernel = pair(kernel_size, "kernel_size", op)
    stride = kernel if stride is None else pair(stride, "stride", op)
    pads = resolve_padding(padding, x.shape[2:], kernel, stride, (1, 1), op)
    if not isinstance(padding, str) and any(2 * p > k for (p, _), k in zip(pads, kernel)):
        raise ValueError(
            f"{op}: padding {padding!r} must be at most half of the kernel "
            f"{kernel}, or some windows would hold only padding"
        )
    output_size(x.shape[2:], kernel, stride, pads, (1, 1), op, x.shape)
    return kernel, stride, pads
