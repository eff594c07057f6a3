"""Layers with weights: Linear, Conv2d, ConvTranspose2d, BatchNorm2d.

Each layer owns its `Parameter`s, initialises them as PyTorch does (`nn/init.py`), checks
its arguments when it is built (`nn/checks.py`), takes a Tensor, an array or a nested list,
checks its input's shape (the error names the layer: `Linear(400 -> 100) expected input (*, 400),
got (32, 576)`) and calls one op from `ops/`. Weight layouts and state_dict keys are
PyTorch's, so weights move between the two.

Read next: `../optim.py`, which moves these weights; the layers without weights are in
`nn/activation.py`.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import ops
from tinygrad_cnn.nn import init
from tinygrad_cnn.nn.checks import (
    check_batch_norm,
    check_channels,
    check_flag,
    check_output_padding,
    check_padding,
    check_size,
    image_input,
    layer_input,
    pair,
)
from tinygrad_cnn.nn.module import Module, Parameter
from tinygrad_cnn.tensor import Tensor


def _empty(*shape: int) -> Parameter:
    return Parameter(init.new_array(shape, np.float32))


class Linear(Module):
    """A fully connected (dense) layer: every output is a weighted sum of every input.

        out = x @ weight.T + bias        weight: (out_features, in_features)

    A layer of m inputs and n neurons has n(m+1) parameters: Linear(784, 1000) has 785,000.

    Args:
        in_features: m, the size of each input's last axis. out_features: n.
        bias: whether to add a learned bias (else `self.bias` is None).
    Shapes:
        x: (*, in_features) -> out: (*, out_features).
    Raises:
        TypeError: a size that is not an int, bias not a bool.
        ValueError: a size below 1, or an input whose last axis is not in_features.
    Example:
        >>> from tinygrad_cnn import nn
        >>> layer = nn.Linear(400, 100)
        >>> layer(Tensor(np.zeros((32, 400), dtype=np.float32))).shape
        (32, 100)
        >>> sum(p.size for p in nn.Linear(784, 1000).parameters())
        785000
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        check_size("Linear", in_features=in_features, out_features=out_features)
        bias = check_flag("Linear", "bias", bias)
        self.in_features, self.out_features = in_features, out_features
        self.weight = _empty(out_features, in_features)
        self.bias = _empty(out_features) if bias else None
        init.default_init_(self.weight, self.bias, fan_in=in_features)

    def forward(self, x: Tensor) -> Tensor:
        x = layer_input(x, "Linear")
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear({self.in_features} -> {self.out_features}) expected "
                f"input (*, {self.in_features}), got {x.shape}"
            )
        out = x @ self.weight.T  # (*, in) @ (in, out) -> (*, out)
        return out + self.bias if self.bias is not None else out

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class _ConvBase(Module):
    """What Conv2d and ConvTranspose2d share: arguments, the input check, the repr."""

    def _setup(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride,
        padding,
        dilation,
        groups: int,
        bias: bool,
    ) -> bool:
        name = type(self).__name__
        check_channels(name, in_channels, out_channels, groups)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair(kernel_size, "kernel_size", name)  # the ops' own checks
        self.stride = pair(stride, "stride", name)
        self.dilation = pair(dilation, "dilation", name)
        self.padding = check_padding(name, padding)
        return check_flag(name, "bias", bias)

    def _check_input(self, x: Tensor) -> Tensor:
        name = type(self).__name__
        label = f"{name}({self.in_channels} -> {self.out_channels})"
        return image_input(x, name, label, self.in_channels)  # (N, in_channels, H, W)

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0, 0):
            text += f", padding={self.padding!r}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if getattr(self, "output_padding", (0, 0)) != (0, 0):
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


class Conv2d(_ConvBase):
    """2-D convolution (cross-correlation) of an (N, C, H, W) batch with out_channels filters.

    A layer of m filters of k_x x k_y over n channels has m(n*k_x*k_y + 1) parameters
    (with groups, n/groups channels per filter): Conv2d(1, 8, 3) has 8*(1*3*3+1) = 80.

    Args:
        in_channels, out_channels: C and O. kernel_size, stride, dilation: int or pair.
        padding: int, pair, 'valid' (none) or 'same' (output size ceil(H / stride), as Keras).
        groups: split the channels into groups convolved separately. bias: add a bias.
    Shapes:
        x: (N, C, H, W) -> out: (N, O, OH, OW),
        OH = (H + 2*padding - dilation*(kernel_size-1) - 1) // stride + 1, same for W.
        weight: (O, C/groups, KH, KW); bias: (O,).
    Raises:
        TypeError: an argument of the wrong type (`Conv2d(1, 8, 3.0)`), named.
        ValueError: an argument out of range (`kernel_size=-3`, `stride=0`, `padding=-1`,
            an unknown padding string), or x is not 4-D or does not have in_channels channels.
    Example:
        >>> from tinygrad_cnn import nn
        >>> conv = nn.Conv2d(1, 8, 3)
        >>> conv.weight.shape, conv(Tensor(np.zeros((2, 1, 28, 28), dtype=np.float32))).shape
        ((8, 1, 3, 3), (2, 8, 26, 26))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
    ):
        super().__init__()
        bias = self._setup(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias
        )
        KH, KW = self.kernel_size
        self.weight = _empty(out_channels, in_channels // groups, KH, KW)
        self.bias = _empty(out_channels) if bias else None
        init.default_init_(self.weight, self.bias, fan_in=in_channels // groups * KH * KW)

    def forward(self, x: Tensor) -> Tensor:
        x = self._check_input(x)
        return ops.conv2d(
            x,
            self.weight,
            self.bias,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
        )


class ConvTranspose2d(_ConvBase):
    """Transposed convolution ("deconvolution"): the backward of Conv2d as a layer, used to
    upsample (stride 2 doubles H and W). Each input pixel paints a weighted copy of the
    kernel onto the output.

    Args:
        in_channels, out_channels: C and O. kernel_size, stride, padding, output_padding:
            int or pair (padding crops the output; output_padding adds to one side).
    Shapes:
        x: (N, C, H, W) -> out: (N, O, OH, OW),
        OH = (H - 1)*stride - 2*padding + kernel_size + output_padding, same for W.
        weight: (C, O, KH, KW) (PyTorch's layout); bias: (O,).
    Raises:
        TypeError: an argument of the wrong type, named.
        ValueError: an argument out of range (an output_padding must be smaller than the
            stride, as in PyTorch), or x is not 4-D or does not have in_channels channels.
    Example:
        >>> from tinygrad_cnn import nn
        >>> up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        >>> up.weight.shape, up(Tensor(np.zeros((1, 16, 7, 7), dtype=np.float32))).shape
        ((16, 8, 2, 2), (1, 8, 14, 14))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        output_padding: int | tuple[int, int] = 0,
        bias: bool = True,
    ):
        super().__init__()
        if isinstance(padding, str):
            raise ValueError(f"ConvTranspose2d: padding must be an int or a pair, got {padding!r}")
        bias = self._setup(in_channels, out_channels, kernel_size, stride, padding, 1, 1, bias)
        self.output_padding = check_output_padding(output_padding, self.stride)
        KH, KW = self.kernel_size
        self.weight = _empty(in_channels, out_channels, KH, KW)
        self.bias = _empty(out_channels) if bias else None
        # NOTE: PyTorch takes fan_in from the weight's axis 1 here, i.e. out_channels*KH*KW
        init.default_init_(self.weight, self.bias, fan_in=out_channels * KH * KW)

    def forward(self, x: Tensor) -> Tensor:
        x = self._check_input(x)
        return ops.conv_transpose2d(
            x,
            self.weight,
            self.bias,
            stride=self.stride,
            padding=self.padding,
            output_padding=self.output_padding,
        )


class BatchNorm2d(Module):
    """Normalise each channel to zero mean and unit variance, then scale and shift it.

    In training mode the statistics of the current batch are used (over N, H, W), and the
    buffers running_mean / running_var follow them:
    running = (1 - momentum)*running + momentum*batch (variance unbiased, momentum=None: a
    plain average of all batches). In eval mode the running statistics are used, so a sample's
    output does not depend on the rest of its batch. Parameters: weight (gamma, starts at 1)
    and bias (beta, starts at 0): 2C trainable; the running statistics are 2C non-trainable.

    Shapes:
        x: (N, C, H, W) -> out: same shape.
    Raises:
        TypeError: num_features not an int, eps or momentum not a number.
        ValueError: num_features < 1, eps <= 0, momentum outside [0, 1] (each not finite
            included), or x is not 4-D or does not have num_features channels.
    Example:
        >>> from tinygrad_cnn import nn
        >>> bn = nn.BatchNorm2d(3)
        >>> out = bn(Tensor(np.random.default_rng(0).normal(5, 2, (4, 3, 2, 2))))
        >>> bool(np.allclose(out.data.mean(axis=(0, 2, 3)), 0)), int(bn.num_batches_tracked)
        (True, 1)
        >>> list(bn.state_dict())
        ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1):
        super().__init__()
        check_batch_norm(num_features, eps, momentum)
        C = num_features
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(init.new_array((C,), np.float32, fill=1.0))
        self.bias = Parameter(init.new_array((C,), np.float32, fill=0.0))
        self.register_buffer("running_mean", init.new_array((C,), np.float32, fill=0.0))
        self.register_buffer("running_var", init.new_array((C,), np.float32, fill=1.0))
        self.register_buffer("num_batches_tracked", init.new_array((), np.int64, fill=0))

    def forward(self, x: Tensor) -> Tensor:
        label = f"BatchNorm2d({self.num_features})"
        x = image_input(x, "BatchNorm2d", label, self.num_features, what="channels")
        momentum = self.momentum
        if momentum is None:  # a plain average over every batch so far
            momentum = 1.0 / (float(self.num_batches_tracked) + 1)
        out = ops.batch_norm2d(
            x,
            self.weight,
            self.bias,
            self.running_mean,
            self.running_var,
            training=self.training,
            momentum=momentum,
            eps=self.eps,
        )
        if self.training:
            self.num_batches_tracked += 1  # in place: the 0-d buffer array stays the same
        return out

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
