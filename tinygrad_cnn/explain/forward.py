"""Forward worked examples: a convolution window by hand, max pooling and its arg-max mask,
and the course's parameter-count formulas.

Read next: `backward.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinygrad_cnn import ops
from tinygrad_cnn.ops.window_args import resolve_padding
from tinygrad_cnn.tensor import Tensor

# the course's worked example: a 5x5 image and a 3x3 kernel; the top-left output is 10
COURSE_IMAGE = [[5, 2, 1, 3, 5], [4, 3, 2, 3, 4], [0, 2, 1, 2, 2], [3, 3, 2, 3, 2], [2, 1, 3, 2, 2]]
COURSE_KERNEL = [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
# a small feature map with distinct values, for max pooling
POOL_MAP = [[1, 3, 2, 1], [4, 6, 5, 0], [3, 1, 1, 2], [0, 2, 7, 4]]


def _matrix(values: Any, what: str, caller: str) -> np.ndarray:
    """A nested list (or array) of numbers as a 2-D float64 array."""
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{caller}: {what} must be a rectangular list of lists of numbers, got {values!r}"
        ) from None
    if array.ndim != 2 or array.size == 0:
        raise ValueError(
            f"{caller}: {what} must be a non-empty 2-D list of lists, got shape {array.shape}"
        )
    return array


# ----------------------------------------------------------------------------------------
# Convolution: one window by hand, then the whole map by conv2d
# ----------------------------------------------------------------------------------------


@dataclass
class ConvExplanation:
    """One convolution of a single-channel image, with every intermediate value.

    Attributes:
        image, kernel: the inputs (H, W) and (KH, KW).
        stride: (sh, sw). padding: as given ('valid', 'same' or an int).
        pads: ((top, bottom), (left, right)) that padding resolves to.
        padded: the image with its padding, from ops.pad.
        window: the top-left KH x KW window of `padded`.
        products: window * kernel, element by element (the Hadamard product), from ops.mul.
        first: the sum of the products, from ops.sum; equals output[0, 0].
        output: the full output map, from ops.conv2d.
        size_rules: per axis, (formula with the numbers filled in, its value); the value
            equals output.shape on that axis.
    Shapes:
        padded: (H + top + bottom, W + left + right); window, products: (KH, KW);
        output: (OH, OW), as in `explain_conv`.
    Example:
        >>> e = explain_conv([[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[1, 0], [0, -1]])
        >>> e.window
        array([[1., 2.],
               [4., 5.]])
        >>> e.first, e.output.shape, e.size_rules[0][1]
        (-4.0, (2, 2), 2)
    """

    image: np.ndarray
    kernel: np.ndarray
    stride: tuple[int, int]
    padding: Any
    pads: tuple[tuple[int, int], tuple[int, int]]
    padded: np.ndarray
    window: np.ndarray
    products: np.ndarray
    first: float
    output: np.ndarray
    size_rules: list[tuple[str, int]] = field(default_factory=list)


def _size_rule(n: int, k: int, s: int, padding: Any, lo: int, hi: int) -> tuple[str, int]:
    """The output-size formula for one axis, written out with its numbers."""
    if padding == "same":
        return f"ceil(in / s) = ceil({n} / {s})", math.ceil(n / s)
    if padding == "valid" or lo + hi == 0:
        return f"floor((in - k) / s) + 1 = floor(({n} - {k}) / {s}) + 1", (n - k) // s + 1
    return (
        f"floor((in + {lo} + {hi} - k) / s) + 1 = floor(({n} + {lo + hi} - {k}) / {s}) + 1",
        (n + lo + hi - k) // s + 1,
    )


def explain_conv(
    image: Any = COURSE_IMAGE,
    kernel: Any = COURSE_KERNEL,
    stride: int = 1,
    padding: int | str = "valid",
) -> ConvExplanation:
    """Convolve one image with one kernel, keeping the first window's arithmetic.

    Args:
        image: (H, W) nested list or array; kernel: (KH, KW).
        stride: a positive int. padding: 'valid', 'same' (Keras: out = ceil(in / s)) or an int.
    Shapes:
        output: (OH, OW), OH = floor((H + top + bottom - KH) / s) + 1, same for W.
    Raises:
        ValueError: image or kernel not a 2-D list of numbers, or anything conv2d rejects.
    Example:
        >>> e = explain_conv()
        >>> e.first, e.output.shape
        (10.0, (3, 3))
        >>> explain_conv(padding="same", stride=2).pads
        ((1, 1), (1, 1))
    """
    image = _matrix(image, "image", "explain conv")
    kernel = _matrix(kernel, "kernel", "explain conv")
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"explain conv: stride must be a positive int, got {stride!r}")
    x = Tensor(image.reshape(1, 1, *image.shape))  # (N=1, C=1, H, W)
    w = Tensor(kernel.reshape(1, 1, *kernel.shape))  # (O=1, C=1, KH, KW)
    output = ops.conv2d(x, w, stride=stride, padding=padding)  # checks every argument
    pads = resolve_padding(
        padding, image.shape, kernel.shape, (stride, stride), (1, 1), "explain conv"
    )
    xp = ops.pad(x, ((0, 0), (0, 0), *pads))  # (1, 1, H + top + bottom, W + left + right)
    KH, KW = kernel.shape
    window = ops.getitem(xp, (0, 0, slice(0, KH), slice(0, KW)))  # (KH, KW)
    products = ops.mul(window, ops.getitem(w, (0, 0)))  # the Hadamard product
    first = ops.sum(products)
    assert first.item() == output.data[0, 0, 0, 0], (first.item(), output.data[0, 0, 0, 0])
    rules = [
        _size_rule(n, k, stride, padding, lo, hi)
        for n, k, (lo, hi) in zip(image.shape, kernel.shape, pads)
    ]
    assert tuple(value for _, value in rules) == output.shape[2:], (rules, output.shape)
    return ConvExplanation(
        image,
        kernel,
        (stride, stride),
        padding,
        pads,
        xp.data[0, 0],
        window.data,
        products.data,
        first.item(),
        output.data[0, 0],
        rules,
    )


# ----------------------------------------------------------------------------------------
# Max pooling: forward picks the max, backward sends the gradient only there
# ----------------------------------------------------------------------------------------


@dataclass
class PoolExplanation:
    """Max pooling of one map and its backward pass.

    Attributes:
        image: the input map (H, W). kernel_size, stride: the window and its step.
        padding: as given (an int, 'valid' or 'same'); pads: ((top, bottom), (left, right))
            it resolves to (padded cells hold -inf, so they never win the max).
        output: maxpool2d's output (OH, OW).
        upstream: the gradient dL/d(output) sent into backward.
        grad: dL/d(image) from backward: each upstream value lands on its window's arg-max.
        mask: 1 where some window's max sits, 0 elsewhere.
        average_grad: the same backward through avgpool2d, for contrast (spread evenly).
    Shapes:
        image, grad, mask, average_grad: (H, W); output, upstream: (OH, OW).
    Example:
        >>> e = explain_pool()
        >>> e.upstream
        array([[0.1, 0.2],
               [0.3, 0.4]])
        >>> e.grad
        array([[0. , 0. , 0. , 0. ],
               [0. , 0.1, 0.2, 0. ],
               [0.3, 0. , 0. , 0. ],
               [0. , 0. , 0.4, 0. ]])
    """

    image: np.ndarray
    kernel_size: int
    stride: int
    padding: Any
    pads: tuple
    output: np.ndarray
    upstream: np.ndarray
    grad: np.ndarray
    mask: np.ndarray
    average_grad: np.ndarray


def explain_pool(
    image: Any = POOL_MAP, kernel_size: int = 2, stride: int | None = None, padding: Any = 0
) -> PoolExplanation:
    """Max-pool one map, then backpropagate a distinct upstream gradient (0.1, 0.2, ...).

    Args:
        image: (H, W) nested list or array. kernel_size: the window side.
        stride: the window's step; None means kernel_size (non-overlapping windows).
        padding: an int, 'valid' or 'same' (Keras: out = ceil(in / stride)), as maxpool2d's.
    Raises:
        ValueError: image not a 2-D list of numbers, a kernel_size or stride that is not a
            positive int, or anything maxpool2d rejects.
    Example:
        >>> e = explain_pool()
        >>> e.output
        array([[6., 5.],
               [3., 7.]])
        >>> e.mask.astype(int)
        array([[0, 0, 0, 0],
               [0, 1, 1, 0],
               [1, 0, 0, 0],
               [0, 0, 1, 0]])
    """
    image = _matrix(image, "image", "explain pool")
    for name, value in (("kernel_size", kernel_size), ("stride", stride)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"explain pool: {name} must be a positive int, got {value!r}")
    stride = kernel_size if stride is None else stride
    x = Tensor(image.reshape(1, 1, *image.shape), requires_grad=True)  # (1, 1, H, W)
    out = ops.maxpool2d(x, kernel_size, stride=stride, padding=padding)  # (1, 1, OH, OW)
    pads = resolve_padding(
        padding, image.shape, (kernel_size,) * 2, (stride,) * 2, (1, 1), "explain pool"
    )
    upstream = np.arange(1, out.size + 1, dtype=np.float64).reshape(out.shape) / 10
    out.backward(upstream)
    z = Tensor(image.reshape(1, 1, *image.shape), requires_grad=True)
    ops.avgpool2d(z, kernel_size, stride=stride, padding=padding).backward(upstream)
    return PoolExplanation(
        image,
        kernel_size,
        stride,
        padding,
        pads,
        out.data[0, 0],
        upstream[0, 0],
        x.grad[0, 0],
        (x.grad[0, 0] != 0).astype(np.float64),
        z.grad[0, 0],
    )


# ----------------------------------------------------------------------------------------
# Parameter counts: the course's two formulas
# ----------------------------------------------------------------------------------------

# layers bigger than this are counted by their formula only (72 billion floats do not fit)
BUILD_LIMIT = 50_000_000


@dataclass
class LayerCount:
    """The parameters of one layer: the course's formula, the numbers filled in, the count.

    `letters` says what the formula's letters stand for here (the course uses m and n the
    other way round in its two formulas). `built` is True when the layer was actually made
    (nn.Linear / nn.Conv2d), its parameters counted and `filled` taken from `nn.summary`'s
    formula; a layer too large to make is counted by the formula alone.

    Example:
        >>> layer = dense_count(400, 100)
        >>> layer.formula, layer.count, layer.built
        ('n(m+1)', 40100, True)
        >>> layer.letters
        'm = 400 inputs, n = 100 neurons'
    """

    kind: str
    formula: str
    filled: str
    count: int
    built: bool
    letters: str = ""


def dense_count(m: int, n: int) -> LayerCount:
    """A dense layer over m inputs with n neurons: n(m + 1) parameters (a bias per neuron).

    Arguments in the order (inputs, outputs), as nn.Linear(m, n) and conv_count take them.

    Example:
        >>> dense_count(784, 1000).filled
        '1000·(784+1) = 785,000'
        >>> dense_count(72_000_000, 1000).count
        72000001000
    """
    _check_sizes("dense", m=m, n=n)
    letters = f"m = {m:,} inputs, n = {n:,} neurons"
    if n * (m + 1) > BUILD_LIMIT:
        count = n * (m + 1)
        return LayerCount(
            f"dense {m:,} -> {n:,}", "n(m+1)", f"{n}·({m}+1) = {count:,}", count, False, letters
        )
    from tinygrad_cnn import nn  # nn builds on this module's ops; needed only here

    return _built(f"dense {m:,} -> {n:,}", "n(m+1)", nn.Linear(m, n), letters)


def conv_count(n: int, m: int, kx: int, ky: int) -> LayerCount:
    """A conv layer over n input channels with m filters kx x ky: m(n kx ky + 1) parameters.

    Arguments in the order (inputs, outputs, kernel), as nn.Conv2d(n, m, (kx, ky)) takes them.

    Example:
        >>> conv_count(3, 1000, 3, 3).filled
        '1000·(3·3·3+1) = 28,000'
        >>> conv_count(3, 1000, 3, 3).letters
        'n = 3 input channels, m = 1,000 filters of 3x3'
    """
    _check_sizes("conv", n=n, m=m, kx=kx, ky=ky)
    kind = f"conv of {m:,} filters {kx}x{ky} over {n:,} channels"
    letters = f"n = {n:,} input channels, m = {m:,} filters of {kx}x{ky}"
    if m * (n * kx * ky + 1) > BUILD_LIMIT:
        count = m * (n * kx * ky + 1)
        filled = f"{m}·({n}·{kx}·{ky}+1) = {count:,}"
        return LayerCount(kind, "m(n·kx·ky+1)", filled, count, False, letters)
    from tinygrad_cnn import nn

    return _built(kind, "m(n·kx·ky+1)", nn.Conv2d(n, m, (kx, ky)), letters)


def _built(kind: str, rule: str, layer: Any, letters: str) -> LayerCount:
    from tinygrad_cnn.nn.summary import formula

    count = sum(p.size for p in layer.parameters())
    return LayerCount(kind, rule, formula(layer), count, True, letters)


def _check_sizes(kind: str, **sizes: Any) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"explain params: {kind} needs positive whole numbers, got {name}={value!r}"
            )


# the models `explain params` knows: name -> (builder, one sample's shape)
MODELS = {
    "mnist-cnn": ("the course's MNIST CNN", (1, 28, 28)),
    "unet": ("U-Net (base 16, depth 4, 'same' padding, batch norm)", (1, 64, 64)),
}


def model_summary(name: str) -> Any:
    """`nn.summary` of a named model: 'mnist-cnn' or 'unet'.

    Example:
        >>> model_summary("mnist-cnn").total_params
        42358
    """
    from tinygrad_cnn import models, nn

    if name not in MODELS:
        raise ValueError(
            f"explain params: unknown model {name!r}; choose from "
            f"{', '.join(MODELS)}, 'dense IN OUT' or 'conv IN OUT KX KY'"
        )
    model = models.mnist_cnn(seed=0) if name == "mnist-cnn" else models.UNet()
    return nn.summary(model, MODELS[name][1])
