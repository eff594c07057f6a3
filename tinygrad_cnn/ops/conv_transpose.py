"""Transposed convolution: conv_transpose2d, the U-Net's learned upsampling.

A transposed convolution runs conv2d's two matrix products the other way round. Each input
pixel y[n,c,i,j] stamps its channel's filters, scaled by its value, onto the output at stride
spacing, and overlapping stamps add:

    out  = col2im( w^T (O*KH*KW, C) @ y (C, N*H*W) ), then the padding is cut off

which is exactly the gradient conv2d sends to its input (`conv.py`'s dx). So its backward is
conv2d's forward: dy = conv2d(grad, w), and dw is the correlation of y with the windows of
grad. The matrix products and im2col / col2im are conv_gemm.py's, shared; the bias is added in
the last copy of the forward, as in conv2d.

Read next: `pool.py`.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.ops import reference
from tinygrad_cnn.ops.conv import _bias
from tinygrad_cnn.ops.conv_gemm import (
    _batch_last,
    _channel_sums,
    _columns,
    _forward_gemm,
    _input_grad,
    _weight_grad,
)
from tinygrad_cnn.ops.kernels import get_kernels
from tinygrad_cnn.ops.window_args import Padding, Pair, check_4d, check_groups, pair
from tinygrad_cnn.ops.windows import _padded
from tinygrad_cnn.tensor import Function, Tensor, as_tensor


class ConvTranspose2dFn(Function):
    """The adjoint (transpose) of Conv2dFn with respect to its input, plus a bias.

    forward:   out = conv2d's dx for "grad" = y: each y[n,c,i,j] * w[c,o,u,v] is added onto
               zp[n, o, i*s+u*d, j*s+v*d] (col2im of w^T @ y), then the padding is cut off;
               then out[n,o,i,j] += b[o]
    backward:  dy = conv2d(grad, w) with the same stride, padding and dilation
               dw[c,o,u,v] = sum_{n,i,j} y[n,c,i,j] * gradp[n, o, i*s+u*d, j*s+v*d]
               db[o]       = sum_{n,i,j} grad[n,o,i,j]
    The bias input is optional: without it, forward and backward leave b out.
    """

    name = "conv_transpose2d"

    def forward(
        self,
        y: np.ndarray,
        w: np.ndarray,
        b: np.ndarray | None = None,
        *,
        stride: Pair,
        padding: Padding,
        dilation: Pair,
        groups: int,
        out_shape: tuple[int, ...],
    ) -> np.ndarray:
        N = y.shape[0]
        self.y, self.w, self.args = y, w, (stride, padding, dilation, groups)
        (top, bottom), (left, right) = padding
        self.zp_shape = (N, out_shape[1], out_shape[2] + top + bottom, out_shape[3] + left + right)
        return _input_grad(y, w, self.zp_shape, padding, stride, dilation, bias=b)  # (N, O, OH, OW)

    def backward(self, grad: np.ndarray):
        stride, padding, dilation, groups = self.args
        N, _, H, W = self.y.shape
        dy = dw = db = None
        if len(self.needs_input_grad) == 3 and self.needs_input_grad[2]:
            db = _channel_sums(grad)  # (O,)
        gradp = _padded(grad, padding, 0.0, "convt_gradp")  # (N, O, Hp, Wp)
        cols = _columns(gradp, self.w.shape[2:], stride, dilation, (H, W), groups)
        if self.needs_input_grad[1]:
            dw = _weight_grad(_batch_last(self.y, groups), cols, self.w.shape)
        if self.needs_input_grad[0]:
            dy = _forward_gemm(self.w, cols, N, (H, W))
        return (dy, dw) if len(self.needs_input_grad) == 2 else (dy, dw, db)


def conv_transpose2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Pair = 1,
    padding: int | Pair = 0,
    output_padding: int | Pair = 0,
    dilation: int | Pair = 1,
    groups: int = 1,
) -> Tensor:
    """Transposed convolution ("deconvolution"): the adjoint of conv2d with respect to its input.

    Each input pixel stamps its channel's filters, scaled by its value, onto the output at
    stride spacing; overlapping stamps add. It is exactly the gradient conv2d sends to its input,
    so <conv2d(z, w), y> == <z, conv_transpose2d(y, w)> for the same stride/padding/dilation.

    Args:
        x: input (N, C_in, H, W).
        weight: (C_in, O // groups, KH, KW), PyTorch's layout.
        bias: (O,) or None.
        stride, dilation: int or pair, positive. padding: int or pair, non-negative (cut from
            each side of the result). output_padding: int or pair, smaller than the stride or
            the dilation, extra rows/columns at the bottom/right.
        groups: independent groups of channels.
    Shapes:
        out: (N, O, OH, OW), OH = (H - 1)*sh - 2*ph + dh*(KH - 1) + output_padding_h + 1.
    Raises:
        ValueError: x or weight not 4-D, C_in != weight.shape[0], channels not divisible by
            groups, bad stride/dilation/padding/output_padding, a non-positive output size.
    Example:
        >>> y = Tensor(np.array([[[[1.0, 2.0]]]]))
        >>> conv_transpose2d(y, Tensor(np.ones((1, 1, 1, 3))), stride=2).data[0, 0]
        array([[1., 1., 3., 2., 2.]])
    """
    if get_kernels() == "reference":  # the same op written as the math reads
        return reference.conv_transpose2d(
            x, weight, bias, stride, padding, output_padding, dilation, groups
        )
    x, weight = as_tensor(x), as_tensor(weight)
    op = "conv_transpose2d"
    check_4d(x, op)
    check_4d(weight, op, "weight (C_in, O // groups, KH, KW)")
    (N, Cin, H, W), (Cw, Og, KH, KW) = x.shape, weight.shape
    groups = check_groups(op, groups, Cw, x.shape, weight.shape)
    if Cw != Cin:
        raise ValueError(
            f"{op}: input {x.shape} has {Cin} channels, but weight {weight.shape} expects {Cw}"
        )
    pair((KH, KW), "kernel size", op)
    stride, dilation = pair(stride, "stride", op), pair(dilation, "dilation", op)
    if isinstance(padding, str):
        raise TypeError(f"{op}: padding must be an int or a pair of ints, got {padding!r}")
    ph, pw = pair(padding, "padding", op, minimum=0)
    extra = pair(output_padding, "output_padding", op, minimum=0)
    if any(e >= max(s, d) for e, s, d in zip(extra, stride, dilation)):
        raise ValueError(
            f"{op}: output_padding {extra} must be smaller than the stride "
            f"{stride} or the dilation {dilation}"
        )
    OH, OW = (
        (n - 1) * s - 2 * p + d * (k - 1) + e + 1
        for n, s, p, d, k, e in zip((H, W), stride, (ph, pw), dilation, (KH, KW), extra)
    )
    if OH < 1 or OW < 1:
        raise ValueError(
            f"{op}: input {x.shape} with weight {weight.shape}, stride {stride} "
            f"and padding {(ph, pw)} gives a non-positive output size {(OH, OW)}"
        )
    O = Og * groups
    fused, bias = _bias(op, O, bias, x, weight)
    # output_padding adds rows/columns at the bottom/right, first taken from the cut-off
    # padding, then beyond the last row a filter reaches (those receive only the bias)
    pads = ((ph, max(ph - extra[0], 0)), (pw, max(pw - extra[1], 0)))
    out = ConvTranspose2dFn.apply(
        x,
        weight,
        *fused,
        stride=stride,
        padding=pads,
        dilation=dilation,
        groups=groups,
        out_shape=(N, O, OH, OW),
    )
    return out if bias is None else out + bias
