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

Argument checks and 'same' padding live in `windows.py`. Read next: `conv_transpose.py`.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from tinygrad_cnn.ops import reference
from tinygrad_cnn.ops.kernels import get_kernels
from tinygrad_cnn.ops.movement import reshape
from tinygrad_cnn.ops.windows import (
    Padding,
    Pair,
    _pad_or_crop,
    _padded,
    _workspace,
    check_4d,
    check_groups,
    get_num_threads,
    output_size,
    pair,
    parallel,
    resolve_padding,
)
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


# ========================================================================================
# SPEED TRICKS. The math is the module docstring's; everything below is about memory:
# scratch buffers reused between calls (no page faults), layouts chosen so that each copy
# reads or writes in memory order, and memory-bound copies split over threads (`parallel`,
# windows.py). Each NOTE says what its trick bought, measured with benchmarks/ (2 cores).
# Readable versions of the same ops: im2col / col2im above.
# ========================================================================================


def _col2im(
    by_channel: np.ndarray, dxp_shape: tuple[int, ...], stride: Pair, dilation: Pair
) -> np.ndarray:
    """col2im from and to channel-first layouts, into scratch memory (valid until the next call).

    by_channel (C, KH, KW, N, OH, OW) -> dxp (C, N, Hp, Wp), split over channels.
    """
    C, KH, KW, N, OH, OW = by_channel.shape
    (sh, sw), (dh, dw) = stride, dilation
    # NOTE: the sums run channel-first, in a (C, N, Hp, Wp) buffer: dcols comes from a GEMM
    # laid out (C, KH, KW, N, OH, OW), so each tap is then read in memory order (measured
    # 1.4x faster than adding into NCHW); the caller's copy turns the result back to NCHW
    dxp = _workspace("col2im", dxp_shape, by_channel.dtype)
    # NOTE: when the windows tile the input exactly (kernel = stride, as the U-Net's 2x2
    # transposed convolutions), every cell gets one tap: copy, no zeroing, no reading back
    tiles = (KH, KW) == (sh, sw) and (dh, dw) == (1, 1) and dxp_shape[2:] == (OH * sh, OW * sw)
    taps = []
    for u in range(KH):
        for v in range(KW):
            # forward read xp[:, :, u*d + i*s, v*d + j*s]; send the gradient back to those cells
            rows = slice(u * dh, u * dh + (OH - 1) * sh + 1, sh)
            cols = slice(v * dw, v * dw + (OW - 1) * sw + 1, sw)
            taps.append((u, v, rows, cols))

    def add_taps(start: int, stop: int) -> None:  # channels start..stop
        part = dxp[start:stop]
        if not tiles:
            part.fill(0)
        for u, v, rows, cols in taps:
            if tiles:
                np.copyto(part[:, :, rows, cols], by_channel[start:stop, u, v])
            else:
                part[:, :, rows, cols] += by_channel[start:stop, u, v]

    parallel(add_taps, C, dxp.size * (1 + len(taps)))
    return dxp


# The "cols" scratch buffer remembers whose columns it holds, per thread: (token, cols). A
# conv's backward that finds its own token there (nothing wrote the buffer since its forward,
# as for the last conv of a network) uses those columns instead of rebuilding them.
_held = threading.local()


def _columns(
    xp: np.ndarray,
    kernel: Pair,
    stride: Pair,
    dilation: Pair,
    out: Pair,
    groups: int,
    token: object = None,
) -> np.ndarray:
    """im2col copied into a scratch matrix for one GEMM: (G, C/G*KH*KW, N*OH*OW).

    Rows are (c, u, v), columns (n, i, j): the whole batch is one matrix product, which BLAS
    runs faster (and spreads over threads better) than one small product per image.
    token: recorded as the holder of the result (see _held).
    """
    (N, C), (KH, KW), (sh, sw), (dh, dw) = xp.shape[:2], kernel, stride, dilation
    cols = _workspace("cols", (groups, C // groups * KH * KW, N * out[0] * out[1]), xp.dtype)
    by_tap = cols.reshape(C, KH, KW, N, *out)
    taps = []
    for u in range(KH):
        for v in range(KW):
            rows = slice(u * dh, u * dh + (out[0] - 1) * sh + 1, sh)
            columns = slice(v * dw, v * dw + (out[1] - 1) * sw + 1, sw)
            taps.append((u, v, rows, columns))
    by_channel = xp.transpose(1, 0, 2, 3)  # (C, N, Hp, Wp), a view

    # one copy per kernel tap, written in cols' memory order: (c, n, i, j). NOTE: split over
    # the channels, or over the images when there are more of them (a first layer has C = 1)
    if C >= N:

        def copy_taps(start: int, stop: int) -> None:  # channels start..stop
            for u, v, rows, columns in taps:
                np.copyto(by_tap[start:stop, u, v], by_channel[start:stop, :, rows, columns])

        parallel(copy_taps, C, cols.size)
    else:

        def copy_taps(start: int, stop: int) -> None:  # images start..stop
            for u, v, rows, columns in taps:
                np.copyto(by_tap[:, u, v, start:stop], by_channel[:, start:stop, rows, columns])

        parallel(copy_taps, N, cols.size)
    _held.token, _held.cols = token, cols
    return cols


def _swap_leading(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out[j, i, ...] = a[i, j, ...]: the transposing copy, split over out's first axis."""

    def copy(start: int, stop: int) -> None:  # rows start..stop of out
        np.copyto(out[start:stop], np.swapaxes(a[:, start:stop], 0, 1))

    parallel(copy, out.shape[0], out.size)
    return out


def _batch_last(a: np.ndarray, groups: int) -> np.ndarray:
    """(N, O, OH, OW) -> (G, O/G, N*OH*OW): the layout of the GEMM's result (a small copy)."""
    N, O, L = a.shape[0], a.shape[1], a.shape[2] * a.shape[3]
    # a scratch buffer: the result is dead once backward returns (no fresh pages every step)
    moved = _workspace("batch_last", (O, N, L), a.dtype)
    _swap_leading(a.reshape(N, O, L), moved)  # (O, N, OH*OW)
    return moved.reshape(groups, O // groups, N * L)


def _forward_gemm(w: np.ndarray, cols: np.ndarray, N: int, out: Pair) -> np.ndarray:
    """out[g] = w[g] (O/G, C/G*KH*KW) @ cols[g]  -> (G, O/G, N*OH*OW) -> (N, O, OH, OW).

    The result is a new array (never scratch memory): it becomes a Tensor's data.
    """
    G, O = cols.shape[0], w.shape[0]
    K, L = cols.shape[1], out[0] * out[1]
    if G == 1 and (L >= 4096 or K <= 16):
        # NOTE: one product per image writes NCHW directly, without the transposing copy;
        # measured faster for large images (L >= 64*64: 1.1x) and for a memory-bound first
        # layer (K <= 16: 3x), slower otherwise, where one product for the batch wins
        per_image = cols.reshape(K, N, L).transpose(1, 0, 2)  # (N, C*KH*KW, OH*OW)
        return np.matmul(w.reshape(O, K), per_image).reshape(N, O, *out)
    # the product lands in a scratch buffer: only its (N, O, ...) copy is kept
    result = _workspace("gemm", (G, O // G, cols.shape[2]), np.result_type(w, cols))
    np.matmul(w.reshape(G, O // G, -1), cols, out=result)
    z = np.empty((N, O, *out), result.dtype)
    _swap_leading(result.reshape(O, N, L), z.reshape(N, O, L))  # (O, N, L) -> (N, O, L)
    return z


# NOTE: with few filters (O <= 32) the product does only 2*O flops per element of cols, so
# it runs at memory speed: writing the whole im2col matrix out to memory and reading it back
# costs more than the arithmetic. Built and multiplied a few output rows at a time instead,
# cols stays in cache: measured 1.8x faster for a 16 -> 16 channel 3x3 conv on (8, 16, 64, 64)
# (1 thread: 21.7 -> 12.1 ms). With more filters the one big product wins.
BLOCKED_MAX_FILTERS = 32
BLOCK_ELEMENTS = 1 << 17  # of one block of cols: 512 KiB of float32


def _conv_forward(
    xp: np.ndarray,
    w: np.ndarray,
    stride: Pair,
    dilation: Pair,
    out: Pair,
    groups: int,
    token: object = None,
) -> np.ndarray:
    """out = w @ im2col(xp) as (N, O, OH, OW), a new array: blocked or as one product."""
    N, C = xp.shape[:2]
    O, _, KH, KW = w.shape
    K = C * KH * KW
    few_filters = groups == 1 and O <= BLOCKED_MAX_FILTERS and get_num_threads() == 1
    if few_filters and K * N * out[0] * out[1] > 4 * BLOCK_ELEMENTS:
        return _blocked_forward(xp, w, stride, dilation, out)
    cols = _columns(xp, (KH, KW), stride, dilation, out, groups, token)
    return _forward_gemm(w, cols, N, out)


def _blocked_forward(
    xp: np.ndarray, w: np.ndarray, stride: Pair, dilation: Pair, out: Pair
) -> np.ndarray:
    """One image and a few output rows at a time: im2col of that block, then its product."""
    N, C = xp.shape[:2]
    O, _, KH, KW = w.shape
    (OH, OW), (sh, sw), (dh, dw) = out, stride, dilation
    K = C * KH * KW
    rows = max(1, min(OH, BLOCK_ELEMENTS // (K * OW)))
    dtype = np.result_type(xp, w)
    z = np.empty((N, O, OH, OW), dtype)
    cols_buffer = _workspace("cols_block", (K * rows * OW,), xp.dtype)
    product_buffer = _workspace("gemm_block", (O * rows * OW,), dtype)
    w_matrix = w.reshape(O, K)
    for n in range(N):
        for top in range(0, OH, rows):
            r = min(rows, OH - top)
            block = cols_buffer[: K * r * OW].reshape(C, KH, KW, r, OW)
            image = xp[n]  # (C, Hp, Wp)

            def copy_taps(start: int, stop: int, block=block, image=image, top=top, r=r):
                for u in range(KH):
                    first = top * sh + u * dh
                    rows_read = slice(first, first + (r - 1) * sh + 1, sh)
                    for v in range(KW):
                        columns = slice(v * dw, v * dw + (OW - 1) * sw + 1, sw)
                        np.copyto(block[start:stop, u, v], image[start:stop, rows_read, columns])

            parallel(copy_taps, C, block.size)
            if r == OH:  # the whole image in one block: the product lands in place
                np.matmul(w_matrix, block.reshape(K, r * OW), out=z[n].reshape(O, r * OW))
            else:
                product = product_buffer[: O * r * OW].reshape(O, r * OW)
                np.matmul(w_matrix, block.reshape(K, r * OW), out=product)
                np.copyto(z[n, :, top : top + r], product.reshape(O, r, OW))
    return z


def _weight_grad(grad: np.ndarray, cols: np.ndarray, w_shape: tuple[int, ...]) -> np.ndarray:
    """dw[g] = grad[g] (O/G, N*OH*OW) @ cols[g]^T (N*OH*OW, C/G*KH*KW) -> (O, C/G, KH, KW)."""
    # NOTE: computed as (cols @ grad^T)^T: same numbers, but OpenBLAS splits the long sum over
    # N*OH*OW badly when the result has few rows (O); measured 1.2x (1 thread) to 3x faster
    dw_t = np.matmul(cols, grad.transpose(0, 2, 1))  # (G, C/G*KH*KW, O/G)
    return dw_t.transpose(0, 2, 1).reshape(w_shape)


def _input_grad(
    grad: np.ndarray,
    w: np.ndarray,
    xp_shape: tuple[int, ...],
    padding: Padding,
    stride: Pair,
    dilation: Pair,
    grad_by_channel: np.ndarray | None = None,
) -> np.ndarray:
    """dx (N, C, H, W) from grad (N, O, OH, OW): col2im(w^T @ grad), padding cut off.

    With stride 1 the same numbers are a "full" convolution of grad with the filters turned
    by 180 degrees and input/output channels swapped:
        dx[n,c,y,x] = sum_{o,u,v} gp[n, o, y+u*d, x+v*d] * w[o, c, KH-1-u, KW-1-v]
    (gp: grad padded by (KH-1)*d - top above, and so on). That costs an im2col of grad
    (O*KH*KW rows) instead of col2im's KH*KW passes over C*KH*KW rows, so it is used when
    O <= C; measured: about 25% less time at O = C, much more at O = 32*C.
    grad_by_channel: grad already as (G, O/G, N*OH*OW), if the caller has it.
    """
    N, _, OH, OW = grad.shape
    O, Cg, KH, KW = w.shape
    G = xp_shape[1] // Cg
    (top, bottom), (left, right) = padding
    H, W = xp_shape[2] - top - bottom, xp_shape[3] - left - right
    if stride == (1, 1) and O <= Cg * G:
        reach = ((KH - 1) * dilation[0], (KW - 1) * dilation[1])
        sides = ((reach[0] - top, H + top - OH), (reach[1] - left, W + left - OW))
        gp = _pad_or_crop(grad, sides)  # (N, O, H + reach, W + reach)
        turned = w[:, :, ::-1, ::-1].reshape(G, O // G, Cg, KH, KW).transpose(0, 2, 1, 3, 4)
        turned = turned.reshape(G * Cg, O // G, KH, KW)  # (C, O/G, KH, KW), a small copy
        return _conv_forward(gp, turned, (1, 1), dilation, (H, W), G)  # (N, C, H, W)
    if grad_by_channel is None:
        grad_by_channel = _batch_last(grad, G)  # (G, O/G, N*OH*OW)
    w_t = w.reshape(G, O // G, Cg * KH * KW).transpose(0, 2, 1)  # (G, C/G*KH*KW, O/G)
    dcols = _workspace("cols", (G, Cg * KH * KW, N * OH * OW), np.result_type(grad, w))
    _held.token = _held.cols = None  # overwritten below
    np.matmul(w_t, grad_by_channel, out=dcols)  # (G, C/G*KH*KW, N*OH*OW)
    by_channel = dcols.reshape(G * Cg, KH, KW, N, OH, OW)
    dxp = _col2im(by_channel, (G * Cg, N, *xp_shape[2:]), stride, dilation)  # (C, N, Hp, Wp)
    dx = np.empty((N, G * Cg, H, W), dxp.dtype)  # a new array: dxp is scratch memory
    _swap_leading(dxp[:, :, top : top + H, left : left + W], dx)  # padding cut off, NCHW
    return dx


# ========================================================================================
# End of the speed tricks
# ========================================================================================


class Conv2dFn(Function):
    """2-D cross-correlation with stride s, dilation d, zero padding and G groups.

    forward:   out[n,o,i,j] = sum_{c,u,v} w[o,c,u,v] * xp[n, g*C/G + c, i*s+u*d, j*s+v*d]
               (g = o // (O/G): filter o sees only its group's C/G channels; xp: x padded)
    backward:  dw[o,c,u,v]  = sum_{n,i,j} grad[n,o,i,j] * xp[n, g*C/G + c, i*s+u*d, j*s+v*d]
               dx: each grad[n,o,i,j] * w[o,c,u,v] goes back where that input was read
                   (col2im), then the padding is cut off
    As matrix products (see the module docstring):
               out = w @ cols      dw = grad @ cols^T      dcols = w^T @ grad
    """

    name = "conv2d"

    def forward(
        self,
        x: np.ndarray,
        w: np.ndarray,
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
        self.token = object()  # marks the columns below as this call's (see _held)
        return _conv_forward(xp, w, stride, dilation, self.out, groups, self.token)

    def backward(self, grad: np.ndarray):
        stride, padding, dilation, groups = self.args
        grad_by_channel = _batch_last(grad, groups)  # (G, O/G, N*OH*OW)
        dx = dw = None
        if self.needs_input_grad[1]:
            # NOTE: cols is rebuilt rather than kept from forward (one copy costs less than
            # holding, and page-faulting in, a fresh tens-of-MB buffer per layer per step),
            # unless the scratch buffer still holds this call's columns
            cols = getattr(_held, "cols", None)
            if getattr(_held, "token", None) is not self.token:
                xp = _padded(self.x, padding, 0.0, "conv_xp")
                cols = _columns(xp, self.w.shape[2:], stride, dilation, self.out, groups)
            dw = _weight_grad(grad_by_channel, cols, self.w.shape)
        if self.needs_input_grad[0]:
            dx = _input_grad(
                grad, self.w, self.xp_shape, padding, stride, dilation, grad_by_channel
            )
        return dx, dw


# ----------------------------------------------------------------------------------------
# Public functions: check the arguments, resolve the padding, apply, add the bias
# ----------------------------------------------------------------------------------------


def _add_bias(op: str, out_channels: int, bias: Any) -> Tensor | None:
    if bias is None:
        return None
    bias = as_tensor(bias)
    if bias.shape != (out_channels,):
        raise ValueError(f"{op}: bias must have shape ({out_channels},), got {bias.shape}")
    return reshape(bias, 1, out_channels, 1, 1)  # broadcasts over (N, O, OH, OW)


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
        bias: (O,) or None; added with the ordinary broadcasting add.
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
    bias = _add_bias("conv2d", O, bias)
    out = Conv2dFn.apply(x, weight, stride=stride, padding=pads, dilation=dilation, groups=groups)
    return out if bias is None else out + bias
