"""Convolution and pooling written as the math reads: the reference kernels.

The same four ops as `conv.py`, `conv_transpose.py` and `pool.py`, with exactly their public
signatures and their numbers (the tests hold them equal, gradients included), but written the
way the formulas read: a loop over the kernel taps (u, v), and for each tap one dot product
over the channels at every output position at once. No strided views, no scratch buffers, no
layout switches: only what a convolution is.

The one idea to hold on to: tap (u, v) of every window at once is a plain strided slice of
the padded input. Output (i, j) reads xp[i*s + u*d, j*s + v*d] through tap (u, v), so all the
cells tap (u, v) reads are

    xp[u*d : u*d + (OH-1)*s + 1 : s,   v*d : v*d + (OW-1)*s + 1 : s]        (OH x OW cells)

(`_tap` below). A forward that READS those cells through w[..., u, v] has a backward that
WRITES the gradient back onto the same cells through the same w[..., u, v]: every backward
here is its forward's loop, with the arrows turned round.

Train with these instead of the fast ones: `with ops.use_kernels("reference"): ...`, or
`tinygrad-cnn demo --kernels reference`. `python -m benchmarks reference` times both.

Read next: `../nn/module.py`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_cnn.ops.movement import reshape
from tinygrad_cnn.ops.window_args import (
    Padding,
    Pair,
    check_4d,
    check_groups,
    output_size,
    pair,
    pool_args,
    resolve_padding,
)
from tinygrad_cnn.tensor import Function, Tensor, as_tensor


def _tap(a: np.ndarray, u: int, v: int, stride: Pair, dilation: Pair, out: Pair) -> tuple:
    """The index of the (OH, OW) cells of a padded map that tap (u, v) reads, for every output.

    Example:
        >>> xp = np.arange(16).reshape(1, 1, 4, 4)
        >>> xp[_tap(xp, 1, 1, (2, 2), (1, 1), (2, 2))][0, 0]   # the windows' centres
        array([[ 5,  7],
               [13, 15]])
    """
    (sh, sw), (dh, dw), (OH, OW) = stride, dilation, out
    rows = slice(u * dh, u * dh + (OH - 1) * sh + 1, sh)
    cols = slice(v * dw, v * dw + (OW - 1) * sw + 1, sw)
    return (slice(None), slice(None), rows, cols)


def _pad(x: np.ndarray, padding: Padding, value: float = 0.0) -> np.ndarray:
    """x with `value` around its last two axes: (N, C, H, W) -> (N, C, Hp, Wp)."""
    return np.pad(x, ((0, 0), (0, 0), *padding), constant_values=value)


def _crop(xp: np.ndarray, padding: Padding, size: tuple[int, ...]) -> np.ndarray:
    """Cut the padding off again: (N, C, Hp, Wp) -> (N, C, H, W) with (H, W) = size."""
    (top, _), (left, _) = padding
    return xp[:, :, top : top + size[0], left : left + size[1]]


class Conv2dFn(Function):
    """2-D convolution (cross-correlation) with stride s, dilation d, padding and G groups.

    forward:   out[n,o,i,j] = sum_{c,u,v} w[o,c,u,v] * xp[n, g*C/G + c, i*s+u*d, j*s+v*d]
               (g = o // (O/G): filter o sees only its group's C/G channels; xp: x padded)
    backward:  dw[o,c,u,v]  = sum_{n,i,j} grad[n,o,i,j] * xp[n, g*C/G + c, i*s+u*d, j*s+v*d]
               dxp[n, g*C/G + c, i*s+u*d, j*s+v*d] += sum_o grad[n,o,i,j] * w[o,c,u,v]
    For one tap (u, v), the sum over c is a matrix product at every output position:
    w[:, :, u, v] (O, C) @ cells (C, OH*OW) for each image, with `cells` the tap's slice.
    """

    name = "conv2d"

    def forward(self, x, w, stride: Pair, padding: Padding, dilation: Pair, groups: int):
        (N, _, H, W), (O, Cg, KH, KW) = x.shape, w.shape
        self.xp = _pad(x, padding)  # (N, C, Hp, Wp)
        self.w, self.args = w, (x.shape, stride, padding, dilation, groups)
        self.out_size = output_size((H, W), (KH, KW), stride, padding, dilation, "conv2d", x.shape)
        out = np.zeros((N, O, self.out_size[0] * self.out_size[1]), np.result_type(x, w))
        Og = O // groups
        for g in range(groups):  # each group is a convolution of its own
            xg, wg = self.xp[:, g * Cg : (g + 1) * Cg], w[g * Og : (g + 1) * Og]
            for u in range(KH):
                for v in range(KW):
                    tap = _tap(xg, u, v, stride, dilation, self.out_size)
                    cells = xg[tap].reshape(N, Cg, -1)  # (N, C/G, OH*OW): what tap (u, v) reads
                    # sum over c of w[o, c, u, v] * xp[n, c, i*s+u*d, j*s+v*d], all (n, o, i, j)
                    out[:, g * Og : (g + 1) * Og] += wg[:, :, u, v] @ cells  # (N, O/G, OH*OW)
        return out.reshape(N, O, *self.out_size)

    def backward(self, grad: np.ndarray):  # grad: (N, O, OH, OW)
        x_shape, stride, padding, dilation, groups = self.args
        N, (O, Cg, KH, KW) = grad.shape[0], self.w.shape
        Og = O // groups
        dxp, dw = np.zeros_like(self.xp), np.zeros_like(self.w)
        for g in range(groups):
            xg, wg = self.xp[:, g * Cg : (g + 1) * Cg], self.w[g * Og : (g + 1) * Og]
            gradg = grad[:, g * Og : (g + 1) * Og].reshape(N, Og, -1)  # (N, O/G, OH*OW)
            for u in range(KH):
                for v in range(KW):
                    tap = _tap(xg, u, v, stride, dilation, self.out_size)
                    cells = xg[tap].reshape(N, Cg, -1)  # (N, C/G, OH*OW)
                    # w[o, c, u, v] multiplied these cells for every output: d out / d w is the
                    # cells, so dw sums grad * cells over n and every position (i, j)
                    dw[g * Og : (g + 1) * Og, :, u, v] = (gradg @ cells.transpose(0, 2, 1)).sum(0)
                    # and each cell was multiplied by w[o, c, u, v]: send grad * w back onto
                    # the cells it was read from; overlapping windows add (with s = 1 this is
                    # the "full" convolution of grad with the kernel turned 180 degrees)
                    dcells = wg[:, :, u, v].T @ gradg  # (N, C/G, OH*OW)
                    dxp[:, g * Cg : (g + 1) * Cg][tap] += dcells.reshape(xg[tap].shape)
        return _crop(dxp, padding, x_shape[2:]), dw


class ConvTranspose2dFn(Function):
    """The transposed convolution: conv2d's input gradient, used as a forward.

    forward:   zp[n, g*O/G + o, i*s+u*d, j*s+v*d] += sum_c y[n,c,i,j] * w[c,o,u,v]
               (each input pixel stamps its filters onto the output), out = zp cropped
    backward:  dy[n,c,i,j]  = sum_{o,u,v} gradp[n, g*O/G + o, i*s+u*d, j*s+v*d] * w[c,o,u,v]
               dw[c,o,u,v]  = sum_{n,i,j} y[n,c,i,j] * gradp[n, g*O/G + o, i*s+u*d, j*s+v*d]
               (gradp: grad put back on the uncropped canvas; dy is conv2d(grad, w))
    """

    name = "conv_transpose2d"

    def forward(self, y, w, stride: Pair, padding: Pair, dilation: Pair, groups: int, out: Pair):
        (N, C, H, W), (_, Og, KH, KW) = y.shape, w.shape
        self.y, self.w, self.args = y, w, (stride, padding, dilation, groups, out)
        # the canvas every stamp fits on (output_padding may make the output reach further)
        canvas = [max((n - 1) * s + (k - 1) * d + 1, p + o) for n, s, k, d, p, o in zip(
            (H, W), stride, (KH, KW), dilation, padding, out)]  # fmt: skip
        zp = np.zeros((N, Og * groups, *canvas), np.result_type(y, w))
        Cg = C // groups
        for g in range(groups):
            yg = y[:, g * Cg : (g + 1) * Cg].reshape(N, Cg, H * W)  # (N, C/G, H*W)
            zg, wg = zp[:, g * Og : (g + 1) * Og], w[g * Cg : (g + 1) * Cg]
            for u in range(KH):
                for v in range(KW):
                    # input (i, j) lands on cell (i*s+u*d, j*s+v*d) through tap (u, v)
                    stamps = wg[:, :, u, v].T @ yg  # (O/G, C/G) @ (N, C/G, H*W): sum over c
                    zg[_tap(zg, u, v, stride, dilation, (H, W))] += stamps.reshape(N, Og, H, W)
        (ph, pw), (OH, OW) = padding, out
        self.canvas = zp.shape
        return zp[:, :, ph : ph + OH, pw : pw + OW].copy()  # (N, O, OH, OW)

    def backward(self, grad: np.ndarray):  # grad: (N, O, OH, OW)
        stride, (ph, pw), dilation, groups, (OH, OW) = self.args
        (N, C, H, W), (_, Og, KH, KW) = self.y.shape, self.w.shape
        gradp = np.zeros(self.canvas, grad.dtype)  # forward cropped the canvas: un-crop grad
        gradp[:, :, ph : ph + OH, pw : pw + OW] = grad
        dy, dw = np.zeros((N, C, H * W), self.y.dtype), np.zeros_like(self.w)
        Cg = C // groups
        for g in range(groups):
            yg = self.y[:, g * Cg : (g + 1) * Cg].reshape(N, Cg, H * W)  # (N, C/G, H*W)
            gg, wg = gradp[:, g * Og : (g + 1) * Og], self.w[g * Cg : (g + 1) * Cg]
            for u in range(KH):
                for v in range(KW):
                    cells = gg[_tap(gg, u, v, stride, dilation, (H, W))].reshape(N, Og, H * W)
                    # forward wrote y * w onto these cells, so y reads grad back from them
                    # through the same w (a convolution of grad with w)...
                    dy[:, g * Cg : (g + 1) * Cg] += wg[:, :, u, v] @ cells  # (N, C/G, H*W)
                    # ...and w[c, o, u, v] multiplied y[n, c, i, j] into each of those cells
                    dw[g * Cg : (g + 1) * Cg, :, u, v] = (yg @ cells.transpose(0, 2, 1)).sum(0)
        return dy.reshape(self.y.shape), dw


class MaxPool2dFn(Function):
    """Max over each window; padding is -inf, so it never wins.

    forward:   out[n,c,i,j] = max_{u,v} xp[n, c, i*s+u, j*s+v]
               arg[n,c,i,j] = the first tap (u, v), row by row, that holds the max
    backward:  dxp[n, c, i*s+u, j*s+v] += grad[n,c,i,j]   for (u, v) = arg[n,c,i,j] only
    """

    name = "maxpool2d"

    def forward(self, x, kernel: Pair, stride: Pair, padding: Padding):
        self.args = (x.shape, kernel, stride, padding)
        self.xp = _pad(x, padding, -np.inf)  # (N, C, Hp, Wp)
        self.out_size = output_size(
            x.shape[2:], kernel, stride, padding, (1, 1), "maxpool2d", x.shape
        )
        taps = [(u, v) for u in range(kernel[0]) for v in range(kernel[1])]
        windows = np.stack(  # (N, C, OH, OW, KH*KW): each window's cells, tap by tap
            [self.xp[_tap(self.xp, u, v, stride, (1, 1), self.out_size)] for u, v in taps], -1
        )
        self.arg = windows.argmax(axis=-1)  # the first maximum wins a tie
        return windows.max(axis=-1)  # (N, C, OH, OW)

    def backward(self, grad: np.ndarray):
        x_shape, kernel, stride, padding = self.args
        dxp = np.zeros_like(self.xp)
        for tap in range(kernel[0] * kernel[1]):
            u, v = divmod(tap, kernel[1])
            # max is x where x won and ignores the rest: d max / d cell is 1 for the arg-max
            # cell only, so grad goes to the winners of tap (u, v) and nowhere else
            dxp[_tap(dxp, u, v, stride, (1, 1), self.out_size)] += grad * (self.arg == tap)
        return _crop(dxp, padding, x_shape[2:])


class AvgPool2dFn(Function):
    """Mean of each window.

    forward:   out[n,c,i,j] = sum_{u,v} xp[n, c, i*s+u, j*s+v] / count[i,j]
               (count = KH*KW with int padding, zeros included as in PyTorch; with 'same',
               the real pixels in the window only, as in Keras)
    backward:  dxp[n, c, i*s+u, j*s+v] += grad[n,c,i,j] / count[i,j]   for every tap (u, v)
    """

    name = "avgpool2d"

    def forward(self, x, kernel: Pair, stride: Pair, padding: Padding, count_padding: bool):
        self.args = (x.shape, kernel, stride, padding)
        self.xp_shape = (*x.shape[:2], *(n + a + b for n, (a, b) in zip(x.shape[2:], padding)))
        self.out_size = output_size(
            x.shape[2:], kernel, stride, padding, (1, 1), "avgpool2d", x.shape
        )
        self.count = self._window_sum(_pad(np.ones((1, 1, *x.shape[2:]), x.dtype), padding))
        if count_padding:  # padded zeros count as pixels of the window
            self.count = np.full_like(self.count, kernel[0] * kernel[1])
        return self._window_sum(_pad(x, padding)) / self.count  # (N, C, OH, OW)

    def _window_sum(self, xp: np.ndarray) -> np.ndarray:
        """sum_{u,v} xp[n, c, i*s+u, j*s+v]: (N, C, Hp, Wp) -> (N, C, OH, OW)."""
        _, (KH, KW), stride, _ = self.args
        taps = [
            xp[_tap(xp, u, v, stride, (1, 1), self.out_size)] for u in range(KH) for v in range(KW)
        ]
        return np.sum(taps, axis=0)  # fmt: skip

    def backward(self, grad: np.ndarray):
        x_shape, (KH, KW), stride, padding = self.args
        dxp = np.zeros(self.xp_shape, grad.dtype)
        for u in range(KH):
            for v in range(KW):
                # every cell of the window entered the mean with weight 1 / count
                dxp[_tap(dxp, u, v, stride, (1, 1), self.out_size)] += grad / self.count
        return _crop(dxp, padding, x_shape[2:])


# ----------------------------------------------------------------------------------------
# Public functions: the signatures of tinygrad_cnn.ops, the same checks, then apply
# ----------------------------------------------------------------------------------------


def _with_bias(op: str, out: Tensor, bias: Any) -> Tensor:
    if bias is None:
        return out
    bias = as_tensor(bias)
    if bias.shape != (out.shape[1],):
        raise ValueError(f"{op}: bias must have shape ({out.shape[1]},), got {bias.shape}")
    return out + reshape(bias, 1, out.shape[1], 1, 1)  # broadcasts over (N, O, OH, OW)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """`ops.conv2d`, computed tap by tap (see `Conv2dFn`); same arguments, shapes and errors.

    Example:
        >>> x, w = Tensor(np.arange(16.0).reshape(1, 1, 4, 4)), Tensor(np.ones((1, 1, 2, 2)))
        >>> conv2d(x, w, stride=2).data[0, 0]
        array([[10., 18.],
               [42., 50.]])
    """
    x, weight = as_tensor(x), as_tensor(weight)
    check_4d(x, "conv2d")
    check_4d(weight, "conv2d", "weight (O, C // groups, KH, KW)")
    groups = check_groups("conv2d", groups, weight.shape[0], x.shape, weight.shape)
    if weight.shape[1] * groups != x.shape[1]:
        raise ValueError(
            f"conv2d: input {x.shape} has {x.shape[1]} channels, but weight {weight.shape} "
            f"with groups={groups} expects {weight.shape[1] * groups}"
        )
    kernel = pair(weight.shape[2:], "kernel size", "conv2d")
    stride, dilation = pair(stride, "stride", "conv2d"), pair(dilation, "dilation", "conv2d")
    pads = resolve_padding(padding, x.shape[2:], kernel, stride, dilation, "conv2d")
    output_size(x.shape[2:], kernel, stride, pads, dilation, "conv2d", x.shape)
    out = Conv2dFn.apply(x, weight, stride=stride, padding=pads, dilation=dilation, groups=groups)
    return _with_bias("conv2d", out, bias)


def conv_transpose2d(
    x, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1, groups=1
) -> Tensor:
    """`ops.conv_transpose2d`, stamped tap by tap (see `ConvTranspose2dFn`).

    Example:
        >>> y = Tensor(np.array([[[[1.0, 2.0]]]]))
        >>> conv_transpose2d(y, Tensor(np.ones((1, 1, 1, 3))), stride=2).data[0, 0]
        array([[1., 1., 3., 2., 2.]])
    """
    x, weight, op = as_tensor(x), as_tensor(weight), "conv_transpose2d"
    check_4d(x, op)
    check_4d(weight, op, "weight (C_in, O // groups, KH, KW)")
    groups = check_groups(op, groups, weight.shape[0], x.shape, weight.shape)
    if weight.shape[0] != x.shape[1]:
        raise ValueError(
            f"{op}: input {x.shape} has {x.shape[1]} channels, but weight {weight.shape} "
            f"expects {weight.shape[0]}"
        )
    kernel = pair(weight.shape[2:], "kernel size", op)
    stride, dilation = pair(stride, "stride", op), pair(dilation, "dilation", op)
    if isinstance(padding, str):
        raise TypeError(f"{op}: padding must be an int or a pair of ints, got {padding!r}")
    pads, extra = pair(padding, "padding", op, 0), pair(output_padding, "output_padding", op, 0)
    if any(e >= max(s, d) for e, s, d in zip(extra, stride, dilation)):
        raise ValueError(
            f"{op}: output_padding {extra} must be smaller than the stride "
            f"{stride} or the dilation {dilation}"
        )
    out = tuple(  # OH = (H - 1)*s - 2p + d*(KH - 1) + output_padding + 1, same for W
        (n - 1) * s - 2 * p + d * (k - 1) + e + 1
        for n, s, p, d, k, e in zip(x.shape[2:], stride, pads, dilation, kernel, extra)
    )
    if min(out) < 1:
        raise ValueError(
            f"{op}: input {x.shape} with weight {weight.shape}, stride {stride} "
            f"and padding {pads} gives a non-positive output size {out}"
        )
    out = ConvTranspose2dFn.apply(
        x, weight, stride=stride, padding=pads, dilation=dilation, groups=groups, out=out
    )
    return _with_bias(op, out, bias)


def maxpool2d(x, kernel_size, stride=None, padding=0) -> Tensor:
    """`ops.maxpool2d`, tap by tap (see `MaxPool2dFn`); same arguments, shapes and errors.

    Example:
        >>> maxpool2d(Tensor(np.arange(16.0).reshape(1, 1, 4, 4)), 2).data[0, 0]
        array([[ 5.,  7.],
               [13., 15.]])
    """
    x = as_tensor(x)
    kernel, stride, pads = pool_args("maxpool2d", x, kernel_size, stride, padding)
    return MaxPool2dFn.apply(x, kernel=kernel, stride=stride, padding=pads)


def avgpool2d(x, kernel_size, stride=None, padding=0) -> Tensor:
    """`ops.avgpool2d`, tap by tap (see `AvgPool2dFn`); same arguments, shapes and errors.

    Example:
        >>> avgpool2d(Tensor(np.arange(9.0).reshape(1, 1, 3, 3)), 2, padding="same").data[0, 0]
        array([[2. , 3.5],
               [6.5, 8. ]])
    """
    x = as_tensor(x)
    kernel, stride, pads = pool_args("avgpool2d", x, kernel_size, stride, padding)
    return AvgPool2dFn.apply(
        x, kernel=kernel, stride=stride, padding=pads, count_padding=padding != "same"
    )
