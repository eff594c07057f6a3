"""Layers without weights: activations, pooling, upsampling, Flatten, Identity, Dropout.

Each wraps one op from `ops/` so a model can list it in a `Sequential` and its repr and
summary show it. Dropout is the only one that behaves differently in training and eval mode.

Read next: `nn/summary.py`.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import ops
from tinygrad_cnn.nn import init
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
        return ops.relu(x)


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
        return ops.sigmoid(x)


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
        return ops.tanh(x)


class Identity(Module):
    """Returns its input unchanged (a placeholder where a layer is optional).

    Example:
        >>> from tinygrad_cnn import nn
        >>> nn.Identity()(Tensor([1.0, 2.0])).data
        array([1., 2.], dtype=float32)
    """

    def forward(self, x: Tensor) -> Tensor:
        return x


class Flatten(Module):
    """Join every axis from start_axis on into one: (N, 16, 5, 5) -> (N, 400).

    Example:
        >>> from tinygrad_cnn import nn
        >>> nn.Flatten()(Tensor(np.zeros((2, 16, 5, 5)))).shape
        (2, 400)
    """

    def __init__(self, start_axis: int = 1):
        super().__init__()
        self.start_axis = start_axis

    def forward(self, x: Tensor) -> Tensor:
        return ops.flatten(x, start_axis=self.start_axis)

    def extra_repr(self) -> str:
        return f"start_axis={self.start_axis}"


class _Pool(Module):
    def __init__(self, kernel_size: int, stride: int | None = None, padding: int | str = 0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 4:
            raise ValueError(
                f"{type(self).__name__}(kernel_size={self.kernel_size}) expected "
                f"a 4-D input (N, C, H, W), got {x.shape}"
            )

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
        self._check_input(x)
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
        self._check_input(x)
        return ops.avgpool2d(x, self.kernel_size, stride=self.stride, padding=self.padding)


class Upsample(Module):
    """Nearest-neighbour upsampling: each pixel becomes a scale_factor x scale_factor block.

    Shapes:
        x: (N, C, H, W) -> out: (N, C, H*scale_factor, W*scale_factor).
    Raises:
        ValueError: mode is not 'nearest', or the input is not 4-D.
    Example:
        >>> from tinygrad_cnn import nn
        >>> nn.Upsample(2)(Tensor(np.array([[[[1.0, 2.0]]]]))).data[0, 0]
        array([[1., 1., 2., 2.],
               [1., 1., 2., 2.]])
    """

    def __init__(self, scale_factor: int = 2, mode: str = "nearest"):
        super().__init__()
        if mode != "nearest":
            raise ValueError(f"Upsample: only mode='nearest' is supported, got {mode!r}")
        self.scale_factor, self.mode = scale_factor, mode

    def forward(self, x: Tensor) -> Tensor:
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
        ValueError: p is not in [0, 1].
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
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
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
