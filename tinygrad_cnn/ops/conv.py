"""Convolution as matrix products: conv2d, and its im2col / col2im helpers.

A convolution layer slides each of its O filters (C x KH x KW numbers) over the input and takes
a dot product at every position. With s the stride, d the dilation and xp the padded input:

    out[n,o,i,j] = sum_{c,u,v} w[o,c,u,v] * xp[n, c, i*s + u*d, j*s + v*d]

im2col lays every window of the whole batch out as a column,
cols[(c,u,v), (n,i,j)] = xp[n, c, i*s+u*d, j*s+v*d], and the sum becomes ONE matrix product
that BLAS does at full speed (the result's (O, N) axes are then swapped back to NCHW):

    out     = w (O, C*KH*KW) @ cols (C*KH*KW, N*OH*OW)                      -> (O, N*OH*OW)

The two gradients are matrix products too (differentiate the line above, as in matmul.py):

    dw      = grad (O, N*OH*OW) @ cols^T (N*OH*OW, C*KH*KW)
    dcols   = w^T (C*KH*KW, O) @ grad (O, N*OH*OW)

and col2im, the adjoint of im2col, adds each column back onto the pixels it was read from to give
dx. With groups, channels and filters split into G independent convolutions (one more batch axis
of the matrix products). `conv_transpose.py` runs the same two steps the other way round: its
forward is conv2d's dx, its backward is conv2d's forward.

The bias is added inside the copy that lays the product out as NCHW, and its gradient is a sum
over the same layout (a broadcasting add would cost a pass over the output each way).
The products, the copies around them and the tricks that make them fast live in `conv_gemm.py`;
argument checks and 'same' padding in `window_args.py`. Read next: `conv_gemm.py`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_cnn.ops import reference
from tinygrad_cnn.ops.conv_gemm import (
    _batch_last,
    _channel_sums,
    _col2im,
    _columns,
    _conv_forward,
    _held_columns,
    _input_grad,
    _weight_grad,
)
from tinygrad_cnn.ops.kernels import get_kernels
from tinygrad_cnn.ops.movement import reshape
from tinygrad_cnn.ops.window_args import (
    Padding,
    Pair,
    check_4d,
    check_groups,
    output_size,
    pair,
    resolve_padding,
)
from tinygrad_cnn.ops.windows import _padded
from tinygrad_cnn.tensor import Function, Tensor, as_tensor

# ----------------------------------------------------------------------------------------
# im2col and its adjoint col2im
# ----------------------------------------------------------------------------------------


def im2col(xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out: Pair) -> np.ndarray:
    """Every window of xp as a strided view (no copy): (N, C, Hp, Wp) -> (N, C, KH, KW, OH, OW).

    view[n, c, u, v, i, j] = xp[n, c, i*s + u*d, j*s + v*d]

    Example:
        >>> im2col(np.arange(9.0).reshape(1, 1, 3, 3), (2, 2), (1, 1), (1, 1), (2, 2))[0, 0, 1, 1]
        array([[4., 5.],
               [7., 8.]])
    """
    sn, sc, sh, sw = xp.strides
    shape = (*xp.shape[:2], *kernel, *out)
    strides = (sn, sc, sh * dilation[0], sw * dilation[1], sh * stride[0], sw * stride[1])
    return np.lib.stride_tricks.as_strided(xp, shape, strides, writeable=False)


def col2im(
    dcols: np.ndarray, xp_shape: tuple[int, ...], stride: Pair, dilation: Pair
) -> np.ndarray:
    """The adjoint of im2col: add every column entry back onto the pixel it was read from.

    dcols (N, C, KH, KW, OH, OW) -> dxp (N, C, Hp, Wp), a new array. Windows overlap when the
    stride is smaller than the kernel, so the kernel taps accumulate.

    Example:
        >>> col2im(np.ones((1, 1, 2, 2, 2, 2)), (1, 1, 3, 3), (1, 1), (1, 1))[0, 0]
        array([[1., 2., 1.],
               [2., 4., 2.],
               [1., 2., 1.]])
    """
    by_channel = dcols.transpose(1, 2, 3, 0, 4, 5)  # (C, KH, KW, N, OH, OW)
    N, C = xp_shape[:2]
    dxp = _col2im(by_channel, (C, N, *xp_shape[2:]), stride, dilation)  # (C, N, Hp, Wp)
    return dxp.transpose(1, 0, 2, 3).copy()  # a copy: dxp is scratch memory


class Conv2dFn(Function):
    """2-D cross-correlation with stride s, dilation d, zero padding, G groups and a bias.

    forward:   out[n,o,i,j] = sum_{c,u,v} w[o,c,u,v] * xp[n, g*C/G + c, i*s+u*d, j*s+v*d] + b[o]
               (g = o // (O/G): filter o sees only its group's C/G channels; xp: x padded)
    backward:  dw[o,c,u,v]  = sum_{n,i,j} grad[n,o,i,j] * xp[n, g*C/G + c, i*s+u*d, j*s+v*d]
               db[o]        = sum_{n,i,j} grad[n,o,i,j]
               dx: each grad[n,o,i,j] * w[o,c,u,v] goes back where that input was read
                   (col2im), then the padding is cut off
    As matrix products (see the module docstring):
               out = w @ cols + b      dw = grad @ cols^T      dcols = w^T @ grad
    The bias input is optional: without it, forward and backward leave b out.
    """

    name = "conv2d"

    def forward(
        self,
        x: np.ndarray,
        w: np.ndarray,
        b: np.ndarray | None = None,
        *,
        stride: Pair,
        padding: Padding,
        dilation: Pair,
        groups: int,
    ) -> np.ndarray:
        KH, KW = w.shape[2:]
        self.x, self.w, self.args = x, w, (stride, padding, dilation, groups)
        xp = _padded(x, padding, 0.0, "conv_xp")  # (N, C, Hp, Wp)
        self.xp_shape = xp.shape
        self.out = tuple(
            (n - (k - 1) * d - 1) // s + 1
            for n, k, s, d in zip(xp.shape[2:], (KH, KW), stride, dilation)
        )
        self.token = object()  # marks the columns below as this call's (see conv_gemm._held)
        return _conv_forward(xp, w, stride, dilation, self.out, groups, self.token, b)

    def backward(self, grad: np.ndarray):
        stride, padding, dilation, groups = self.args
        grad_by_channel = _batch_last(grad, groups)  # (G, O/G, N*OH*OW)
        dx = dw = db = None
        if self.needs_input_grad[1]:
            # NOTE: cols is rebuilt rather than kept from forward (one copy costs less than
            # holding, and page-faulting in, a fresh tens-of-MB buffer per layer per step),
            # unless the scratch buffer still holds this call's columns
            cols = _held_columns(self.token)
            if cols is None:
                xp = _padded(self.x, padding, 0.0, "conv_xp")
                cols = _columns(xp, self.w.shape[2:], stride, dilation, self.out, groups)
            dw = _weight_grad(grad_by_channel, cols, self.w.shape)
        if len(self.needs_input_grad) == 3 and self.needs_input_grad[2]:
            db = _channel_sums(grad_by_channel.reshape(1, grad.shape[1], -1))  # (O,)
        if self.needs_input_grad[0]:
            dx = _input_grad(
                grad, self.w, self.xp_shape, padding, stride, dilation, grad_by_channel
            )
        return (dx, dw) if len(self.needs_input_grad) == 2 else (dx, dw, db)


# ----------------------------------------------------------------------------------------
# Public functions: check the arguments, resolve the padding, apply
# ----------------------------------------------------------------------------------------


def _bias(op: str, out_channels: int, bias: Any, x: Tensor, weight: Tensor) -> tuple:
    """The bias as extra inputs of the Function, ((b,) or ()), and a bias left to add, or None.

    NOTE: the Function adds the bias itself, in the copy that lays its output out (what that
    saves is measured in `conv_gemm._swap_leading`); a bias of another dtype than the
    output's (float64 on float32 data) is added with the broadcasting add instead, which
    promotes as numpy does.
    """
    if bias is None:
        return (), None
    bias = as_tensor(bias)
    if bias.shape != (out_channels,):
        raise ValueError(f"{op}: bias must have shape ({out_channels},), got {bias.shape}")
    if bias.dtype == np.result_type(x.dtype, weight.dtype):
        return (bias,), None
    return (), reshape(bias, 1, out_channels, 1, 1)  # broadcasts over (N, O, OH, OW)


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Pair = 1,
    padding: int | Pair | str = 0,
    dilation: int | Pair = 1,
    groups: int = 1,
) -> Tensor:
    """2-D convolution (cross-correlation, as in every deep-learning library), NCHW.

    Args:
        x: input (N, C, H, W).
        weight: filters (O, C // groups, KH, KW), PyTorch's layout.
        bias: (O,) or None.
        stride, dilation: int or (sh, sw) / (dh, dw), positive.
        padding: int or (ph, pw) zeros on each side, 'valid' (none), or 'same' (Keras/TF at any
            stride and dilation: OH = ceil(H / sh), the odd pixel of padding at the bottom/right).
        groups: split channels and filters into this many independent convolutions.
    Shapes:
        out: (N, O, OH, OW) with OH = (H + top + bottom - dh*(KH - 1) - 1) // sh + 1, same for W.
    Raises:
        ValueError: x or weight not 4-D (a (C, H, W) image needs a batch axis), C != weight's
            C // groups * groups, C or O not divisible by groups, a kernel larger than the padded
            input, a non-positive stride or dilation, an unknown padding string, negative padding.
        TypeError: stride, dilation, padding or groups of the wrong type.
    Example:
        >>> image = Tensor([[5, 2, 1, 3, 5], [4, 3, 2, 3, 4], [0, 2, 1, 2, 2],
        ...                 [3, 3, 2, 3, 2], [2, 1, 3, 2, 2]]).reshape(1, 1, 5, 5)
        >>> kernel = Tensor([[1, 0, 1], [0, 1, 0], [1, 0, 1]]).reshape(1, 1, 3, 3)
        >>> conv2d(image, kernel).data[0, 0]    # top-left: 5 + 1 + 3 + 0 + 1 = 10
        array([[10., 11., 12.],
               [13., 13., 12.],
               [ 9.,  9., 11.]], dtype=float32)
        >>> conv2d(image, kernel, padding="same", stride=2).shape
        (1, 1, 3, 3)
    """
    if get_kernels() == "reference":  # the same op written as the math reads
        return reference.conv2d(x, weight, bias, stride, padding, dilation, groups)
    x, weight = as_tensor(x), as_tensor(weight)
    check_4d(x, "conv2d")
    check_4d(weight, "conv2d", "weight (O, C // groups, KH, KW)")
    (_, C, H, W), (O, Cg, KH, KW) = x.shape, weight.shape
    groups = check_groups("conv2d", groups, O, x.shape, weight.shape)
    if Cg * groups != C:
        raise ValueError(
            f"conv2d: input {x.shape} has {C} channels, but weight {weight.shape} "
            f"with groups={groups} expects {Cg * groups}"
        )
    kernel = pair((KH, KW), "kernel size", "conv2d")
    stride = pair(stride, "stride", "conv2d")
    dilation = pair(dilation, "dilation", "conv2d")
    pads = resolve_padding(padding, (H, W), kernel, stride, dilation, "conv2d")
    output_size((H, W), kernel, stride, pads, dilation, "conv2d", x.shape)
    fused, bias = _bias("conv2d", O, bias, x, weight)
    out = Conv2dFn.apply(
        x, weight, *fused, stride=stride, padding=pads, dilation=dilation, groups=groups
    )
    return out if bias is None else out + bias
