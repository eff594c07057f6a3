"""Argument checks shared by the layers and the optimizers: numbers, sizes, windows, inputs.

A layer checks its arguments when it is built, not at its first call: `Conv2d(1, 8, -3)` is an
error on the line that wrote it, naming the argument. The window arguments (kernel_size, stride,
padding, dilation) are checked by the same functions the ops use (`ops/windows.py`), so a layer
and its op accept exactly the same values and word their errors alike.

Read next: `nn/layers.py`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_cnn.ops.window_args import pair
from tinygrad_cnn.tensor import Tensor, as_tensor


def check_number(
    owner: str,
    name: str,
    value: Any,
    low: float = 0.0,
    high: float = math.inf,
    high_open: bool = False,
    integer: bool = False,
) -> Any:
    """`value` if it is a finite real number in [low, high] (or [low, high) when `high_open`).

    Hyperparameters are checked when they are set, so a NaN learning rate is an error at
    construction rather than a model full of NaN a thousand steps later.

    Raises:
        TypeError: value is not a real number (a string, a bool, None, a complex, an array),
            or not an int when `integer`.
        ValueError: value is NaN, infinite or outside the range; the message names `owner`
            and `name`.
    Example:
        >>> check_number("SGD", "lr", 0.1)
        0.1
        >>> check_number("SGD", "lr", float("nan"))
        Traceback (most recent call last):
        ...
        ValueError: SGD: lr must be a finite number >= 0, got nan
        >>> check_number("SGD", "lr", "0.1")
        Traceback (most recent call last):
        ...
        TypeError: SGD: lr must be a number, got '0.1' (str)
    """
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, kinds):
        kind = "an int" if integer else "a number"
        raise TypeError(f"{owner}: {name} must be {kind}, got {value!r} ({type(value).__name__})")
    if high == math.inf:
        rule = f">= {low:g}"
    else:
        rule = f"in [{low:g}, {high:g}{')' if high_open else ']'}"
    inside = low <= value < high if high_open else low <= value <= high
    if not (math.isfinite(value) and inside):
        raise ValueError(f"{owner}: {name} must be a finite number {rule}, got {value!r}")
    return value


def check_size(owner: str, **sizes: Any) -> None:
    """Each of `sizes` (name=value) must be a positive int (not a bool, not a float).

    Raises:
        TypeError: a size that is not an int.
        ValueError: a size below 1.
    Example:
        >>> check_size("Linear", in_features=4, out_features=3)
        >>> check_size("Linear", in_features=4.0)
        Traceback (most recent call last):
        ...
        TypeError: Linear: in_features must be a positive int, got 4.0 (float)
    """
    for name, size in sizes.items():
        if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)):
            raise TypeError(
                f"{owner}: {name} must be a positive int, got {size!r} ({type(size).__name__})"
            )
        if size < 1:
            raise ValueError(f"{owner}: {name} must be a positive int, got {size!r}")


def check_flag(owner: str, name: str, value: Any) -> bool:
    """`value` if it is True or False (a string such as 'False' is truthy: refused).

    Example:
        >>> check_flag("Linear", "bias", "no")
        Traceback (most recent call last):
        ...
        TypeError: Linear: bias must be True or False, got 'no'
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be True or False, got {value!r}")
    return bool(value)


def check_padding(owner: str, padding: Any, kernel: tuple[int, int] | None = None) -> Any:
    """padding as the ops take it: 'valid', 'same', an int or a pair of ints >= 0.

    With `kernel` (pooling), an explicit padding may be at most half the window, as the pooling
    ops require, so that no window holds only padding. Returns the string or the (ph, pw) pair.

    Raises:
        TypeError: padding of the wrong type. ValueError: an unknown string or a bad value.
    Example:
        >>> check_padding("Conv2d", 1), check_padding("Conv2d", "same")
        ((1, 1), 'same')
        >>> check_padding("MaxPool2d", "smae")
        Traceback (most recent call last):
        ...
        ValueError: MaxPool2d: padding must be an int, a pair, 'valid' or 'same', got 'smae'
    """
    if isinstance(padding, str):
        if padding not in ("valid", "same"):
            raise ValueError(
                f"{owner}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}"
            )
        return padding
    pads = pair(padding, "padding", owner, minimum=0)
    if kernel is not None and any(2 * p > k for p, k in zip(pads, kernel)):
        raise ValueError(
            f"{owner}: padding {padding!r} must be at most half of the kernel {kernel}, "
            f"or some windows would hold only padding"
        )
    return pads


def layer_input(x: Any, layer: str) -> Tensor:
    """x as a Tensor (layers take nested lists and arrays, as the ops do).

    Example:
        >>> layer_input([[1, 2]], "Linear").shape
        (1, 2)
    """
    try:
        return as_tensor(x)
    except TypeError as error:
        raise TypeError(f"{layer}: {error}") from None


def check_channels(owner: str, in_channels: Any, out_channels: Any, groups: Any) -> None:
    """A convolution's channel counts: positive ints, both divisible by `groups`.

    Raises:
        TypeError: a count that is not an int. ValueError: a count below 1, or not divisible.
    Example:
        >>> check_channels("Conv2d", 3, 4, groups=2)
        Traceback (most recent call last):
        ...
        ValueError: Conv2d: in_channels=3 and out_channels=4 must both be divisible by groups=2
    """
    check_size(owner, in_channels=in_channels, out_channels=out_channels, groups=groups)
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"{owner}: in_channels={in_channels} and out_channels="
            f"{out_channels} must both be divisible by groups={groups}"
        )


def check_output_padding(output_padding: Any, stride: tuple[int, int]) -> tuple[int, int]:
    """ConvTranspose2d's output_padding as a pair of ints >= 0, each smaller than the stride
    (as in PyTorch: a larger one would add rows no input pixel reaches).

    Example:
        >>> check_output_padding(1, (2, 2))
        (1, 1)
        >>> check_output_padding(2, (2, 2))
        Traceback (most recent call last):
        ...
        ValueError: ConvTranspose2d: output_padding (2, 2) must be smaller than the stride (2, 2)
    """
    pads = pair(output_padding, "output_padding", "ConvTranspose2d", minimum=0)
    if any(o >= s for o, s in zip(pads, stride)):
        raise ValueError(
            f"ConvTranspose2d: output_padding {pads} must be smaller than the stride {stride}"
        )
    return pads


def check_batch_norm(num_features: Any, eps: Any, momentum: Any) -> None:
    """BatchNorm2d's arguments: num_features >= 1, eps > 0, momentum in [0, 1] or None.

    Example:
        >>> check_batch_norm(3, eps=0.0, momentum=0.1)
        Traceback (most recent call last):
        ...
        ValueError: BatchNorm2d: eps must be > 0, got 0.0
    """
    check_size("BatchNorm2d", num_features=num_features)
    check_number("BatchNorm2d", "eps", eps)
    if eps <= 0:
        raise ValueError(f"BatchNorm2d: eps must be > 0, got {eps!r}")
    if momentum is not None:
        check_number("BatchNorm2d", "momentum", momentum, high=1.0)


def image_input(
    x: Any, layer: str, label: str, channels: int, what: str = "input channels"
) -> Tensor:
    """x as a Tensor of shape (N, channels, H, W); the errors name the layer as `label`.

    Raises:
        TypeError: x is not a Tensor, an array or a list (as `layer_input`).
        ValueError: x is not 4-D, or has another number of channels.
    Example:
        >>> image_input(np.zeros((2, 1, 5, 5)), "Conv2d", "Conv2d(1 -> 8)", 1).shape
        (2, 1, 5, 5)
        >>> image_input(np.zeros((2, 3, 5, 5)), "Conv2d", "Conv2d(1 -> 8)", 1)
        Traceback (most recent call last):
        ...
        ValueError: Conv2d(1 -> 8) expected 1 input channels, got 3 (input shape (2, 3, 5, 5))
    """
    x = layer_input(x, layer)
    if x.ndim != 4:
        raise ValueError(f"{label} expected a 4-D input (N, C, H, W), got {x.shape}")
    if x.shape[1] != channels:
        raise ValueError(
            f"{label} expected {channels} {what}, got {x.shape[1]} (input shape {x.shape})"
        )
    return x


__all__ = [
    "check_number", "check_size", "check_flag", "check_padding", "layer_input", "pair",
    "check_channels", "check_output_padding", "check_batch_norm", "image_input",
]  # fmt: skip
