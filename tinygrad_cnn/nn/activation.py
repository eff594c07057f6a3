"""Layers without weights: activations, pooling, upsampling, Flatten, Identity, Dropout.

Each wraps one op from `ops/` so a model can list it in a `Sequential` and its repr and
summary show it. Like the ops, each takes a Tensor, an array or a nested list, and checks its
arguments when it is built, with the ops' own checks (`nn/checks.py`). Dropout is the only
one that behaves differently in training and eval mode.

Read next: `nn/summary.py`.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import ops
from tinygrad_cnn.nn import init
from tinygrad_cnn.nn.checks import check_number, check_padding, layer_input, pair
from tinygrad_cnn.nn.module import Module
from tinygrad_cnn.tensor import Tensor


class ReLU(Module):
    """max(x, 0), elementwise.

    Shapes:
        x: any shape -> out: the same shape.

    Example:
        >>> from tinygrad_cnn import nn
        >>> nn.ReLU()(Tensor([-1.0, 2.0])).data
        array([0., 2.], dtype=float32)
    """

    def forward(self, x: Tensor) -> Tensor:
        return ops.relu(layer_input(x, "ReLU"))


class Sigmoid(Module):
    """1 / (1 + e^-x), elementwise.

    Shapes:
        x: any shape -> out: the same shape.

    Example:
        >>> from tinygrad_cnn import nn
        >>> nn.Sigmoid()(Tensor([0.0])).data
        array([0.5], dtype=float32)
    """

    def forward(self, x: Tensor) -> Tensor:
        return ops.sigmoid(layer_input(x, "Sigmoid"))


class Tanh(Module):
    """tanh(x), elementwise.

    Shapes:
        x: any shape -> out: the same shape.

    Example:
        >>> from tinygrad_cnn import nn
        >>> nn.Tanh()(Tensor([0.0])).data
        array([0.], dtype=float32)
    """

    def forward(self, x: Tensor) -> Tensor:
        return ops.tanh(layer_input(x, "Tanh"))


class Identity(Module):
    """Returns its input unchanged (a placeholder where a layer is optional).

    Example:
        >>> from tinygrad_cnn import nn
        >>> nn.Identity()(Tensor([1.0, 2.0])).data
        array([1., 2.], dtype=float32)
    """

    def forward(self, x: Tensor) -> Tensor:
        return layer_input(x, "Identity")  # a Tensor stays the very same object


class Flatten(Module):
    """Join every axis from start_axis on into one: (N, 16, 5, 5) -> (N, 400).

    Example:
        >>> from tinygrad_cnn import nn
        >>> nn.Flatten()(Tensor(np.zeros((2, 16, 5, 5)))).shape
        (2, 400)
    """

    def __init__(self, start_axis: int = 1):
        super().__init__()
        if isinstance(start_axis, bool) or not isinstance(start_axis, (int, np.integer)):
            raise TypeError(f"Flatten: start_axis must be an int, got {start_axis!r}")
        self.start_axis = start_axis

    def forward(self, x: Tensor) -> Tensor:
        return ops.flatten(layer_input(x, "Flatten"), start_axis=self.start_axis)

    def extra_repr(self) -> str:
        return f"start_axis={self.start_axis}"


class _Pool(Module):
    """What MaxPool2d and AvgPool2d share: the argument checks (the pooling ops' own, run when
    the layer is built), the input check and the repr.

    Raises:
        TypeError: kernel_size, stride or padding of the wrong type (`MaxPool2d(2.0)`).
        ValueError: a kernel_size or stride below 1, a negative padding or one larger than
            half the kernel, an unknown padding string (`padding='smae'`).
    """

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int | str = 0):
        super().__init__()
        name = type(self).__name__
        kernel = pair(kernel_size, "kernel_size", name)
        if stride is not None:
            pair(stride, "stride", name)
        check_padding(name, padding, kernel)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def _check_input(self, x: Tensor) -> Tensor:
        x = layer_input(x, type(self).__name__)
        if x.ndim != 4:
            raise ValueError(
                f"{type(self).__name__}(kernel_size={self.kernel_size}) expected "
                f"a 4-D input (N, C, H, W), got {x.shape}"
            )
        return x

    def extra_repr(self) -> str:
        stride = self.kernel_size if self.stride is None else self.stride
        return f"kernel_size={self.kernel_size}, stride={stride}, padding={self.padding!r}"


class MaxPool2d(_Pool):
    """The max of each kernel_size x kernel_size window (stride defaults to the window).

    Shapes:
        x: (N, C, H, W) -> out: (N, C, OH, OW), OH = (H + 2*padding - kernel_size) // stride + 1.
    Example:
        >>> from tinygrad_cnn import nn
        >>> nn.MaxPool2d(2)(Tensor(np.zeros((1, 8, 26, 26)))).shape
        (1, 8, 13, 13)
    """

    def forward(self, x: Tensor) -> Tensor:
        x = self._check_input(x)
        return ops.maxpool2d(x, self.kernel_size, stride=self.stride, padding=self.padding)


class AvgPool2d(_Pool):
    """The mean of each kernel_size x kernel_size window (stride defaults to the window).

    Shapes:
        x: (N, C, H, W) -> out: (N, C, OH, OW), OH = (H + 2*padding - kernel_size) // stride + 1.
    Example:
        >>> from tinygrad_cnn import nn
        >>> nn.AvgPool2d(2)(Tensor(np.arange(16.0).reshape(1, 1, 4, 4))).data[0, 0]
        array([[ 2.5,  4.5],
               [10.5, 12.5]])
    """

    def forward(self, x: Tensor) -> Tensor:
        x = self._check_input(x)
        return ops.avgpool2d(x, self.kernel_size, stride=self.stride, padding=self.padding)


class Upsample(Module):
    """Nearest-neighbour upsampling: each pixel becomes a scale_factor x scale_factor block.

    Shapes:
        x: (N, C, H, W) -> out: (N, C, H*scale_factor, W*scale_factor).
    Raises:
        TypeError: scale_factor is not an int.
        ValueError: scale_factor < 1, mode is not 'nearest', or the input is not 4-D.
    Example:
        >>> from tinygrad_cnn import nn
        >>> nn.Upsample(2)(Tensor(np.array([[[[1.0, 2.0]]]]))).data[0, 0]
        array([[1., 1., 2., 2.],
               [1., 1., 2., 2.]])
    """

    def __init__(self, scale_factor: int = 2, mode: str = "nearest"):
        super().__init__()
        if isinstance(scale_factor, bool) or not isinstance(scale_factor, (int, np.integer)):
            raise TypeError(f"Upsample: scale_factor must be an int, got {scale_factor!r}")
        if scale_factor < 1:
            raise ValueError(f"Upsample: scale_factor must be at least 1, got {scale_factor}")
        if mode != "nearest":
            raise ValueError(f"Upsample: only mode='nearest' is supported, got {mode!r}")
        self.scale_factor, self.mode = scale_factor, mode

    def forward(self, x: Tensor) -> Tensor:
        x = layer_input(x, "Upsample")
        if x.ndim != 4:
            raise ValueError(
                f"Upsample(scale_factor={self.scale_factor}) expected a 4-D "
                f"input (N, C, H, W), got {x.shape}"
            )
        return ops.upsample2d(x, scale_factor=self.scale_factor)

    def extra_repr(self) -> str:
        return f"scale_factor={self.scale_factor}, mode={self.mode!r}"


class Dropout(Module):
    """Inverted dropout: in training mode, zero each value with probability p and scale the
    survivors by 1/(1-p), so the expected output equals the input; a fresh random mask on
    every call (drawn from the generator `manual_seed` seeds). The identity in eval mode.

        out = x * mask / (1 - p),   mask[i] = 1 with probability 1 - p, else 0
        dx  = grad * mask / (1 - p)   (mul's backward: dropped values get no gradient)

    Raises:
        TypeError: p is not a number (`Dropout('0.5')`).
        ValueError: p is not in [0, 1] (NaN included).
    Example:
        >>> from tinygrad_cnn import nn
        >>> drop = nn.Dropout(0.5)
        >>> sorted(set(drop(Tensor(np.ones(100))).data.tolist()))
        [0.0, 2.0]
        >>> drop.eval()(Tensor(np.ones(3))).data
        array([1., 1., 1.])
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = check_number("Dropout", "p", p, high=1.0)

    def forward(self, x: Tensor) -> Tensor:
        x = layer_input(x, "Dropout")
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return x * Tensor(np.zeros((), dtype=x.dtype))  # everything dropped
        keep = init.generator().random(x.shape) >= self.p  # (x.shape) bools
        mask = Tensor(keep.astype(x.dtype) * np.asarray(1.0 / (1.0 - self.p), dtype=x.dtype))
        mask.name = "dropout mask"  # how graph drawings label it
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"
