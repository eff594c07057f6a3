"""Convolution's matrix products and the copies around them, as the machine likes them.

`conv.py` states the math: out = w @ cols, dw = grad @ cols^T, dcols = w^T @ grad, then col2im.
This file runs it fast. Everything here is about memory, not arithmetic: scratch buffers
reused between calls (no page faults), layouts chosen so that each copy reads or writes in
memory order, the bias added inside the copy that lays the product out as NCHW (no pass of its
own), and memory-bound copies split over threads (`parallel`, windows.py). Each NOTE says what
its trick bought, measured with benchmarks/ (2 cores). `conv2d` and `conv_transpose2d` both
run on these functions.

Read next: `conv_transpose.py`.
"""

from __future__ import annotations

import threading

import numpy as np

from tinygrad_cnn.ops.window_args import Padding, Pair
from tinygrad_cnn.ops.windows import _pad_or_crop, _workspace, get_num_threads, parallel


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


def _held_columns(token: object) -> np.ndarray | None:
    """The columns `_columns(..., token=token)` built, if this thread's buffer still holds them."""
    return getattr(_held, "cols", None) if getattr(_held, "token", None) is token else None


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


def _swap_leading(a: np.ndarray, out: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """out[j, i, ...] = a[i, j, ...] (+ bias[i]): the transposing copy, split over out's first axis.

    NOTE: the bias rides along in the copy that lays a product out as NCHW, instead of a
    broadcasting add of its own (a fresh array and a whole pass over it, on one core). With
    its gradient summed in `_channel_sums`, measured per 2-thread step (AVX2): the add's
    4.0 ms (LeNet), 8.2 ms (U-Net) and 7.7 ms (course CNN, batch 512) are gone.
    """
    shifted = None if bias is None else bias.reshape(-1, *(1,) * (out.ndim - 2))  # (O, 1, ...)

    def copy(start: int, stop: int) -> None:  # rows start..stop of out
        if shifted is None:
            np.copyto(out[start:stop], np.swapaxes(a[:, start:stop], 0, 1))
        else:
            np.add(np.swapaxes(a[:, start:stop], 0, 1), shifted, out=out[start:stop])

    parallel(copy, out.shape[0], out.size)
    return out


def _add_channels(z: np.ndarray, bias: np.ndarray) -> None:
    """z[n, o, ...] += bias[o] in place, split over the images (for a product written as NCHW)."""
    shifted = bias.reshape(-1, *(1,) * (z.ndim - 2))  # (O, 1, ...)

    def add(start: int, stop: int) -> None:  # images start..stop
        z[start:stop] += shifted

    parallel(add, z.shape[0], z.size)


def _channel_sums(a: np.ndarray) -> np.ndarray:
    """db[o] = sum of a[:, o] over every other axis, a (N, O, ...): a bias gradient.

    Split over the channels; fastest on a channel-first array viewed as (1, O, M).
    """
    by_channel = a.reshape(a.shape[0], a.shape[1], int(np.prod(a.shape[2:])))  # (N, O, M)
    sums = np.empty(a.shape[1], a.dtype)

    def add_up(start: int, stop: int) -> None:  # channels start..stop
        np.sum(by_channel[:, start:stop], axis=(0, 2), out=sums[start:stop])

    parallel(add_up, a.shape[1], a.size)
    return sums


def _batch_last(a: np.ndarray, groups: int) -> np.ndarray:
    """(N, O, OH, OW) -> (G, O/G, N*OH*OW): the layout of the GEMM's result (a small copy)."""
    N, O, L = a.shape[0], a.shape[1], a.shape[2] * a.shape[3]
    # a scratch buffer: the result is dead once backward returns (no fresh pages every step)
    moved = _workspace("batch_last", (O, N, L), a.dtype)
    _swap_leading(a.reshape(N, O, L), moved)  # (O, N, OH*OW)
    return moved.reshape(groups, O // groups, N * L)


def _forward_gemm(
    w: np.ndarray, cols: np.ndarray, N: int, out: Pair, bias: np.ndarray | None = None
) -> np.ndarray:
    """out[g] = w[g] (O/G, C/G*KH*KW) @ cols[g]  -> (G, O/G, N*OH*OW) -> (N, O, OH, OW), + bias.

    The result is a new array (never scratch memory): it becomes a Tensor's data.
    """
    G, O = cols.shape[0], w.shape[0]
    K, L = cols.shape[1], out[0] * out[1]
    if G == 1 and (L >= 4096 or K <= 16):
        # NOTE: one product per image writes NCHW directly, without the transposing copy;
        # measured faster for large images (L >= 64*64: 1.1x) and for a memory-bound first
        # layer (K <= 16: 3x), slower otherwise, where one product for the batch wins
        per_image = cols.reshape(K, N, L).transpose(1, 0, 2)  # (N, C*KH*KW, OH*OW)
        w_matrix = w.reshape(O, K)
        if O * K * L > SMALL_PRODUCT:
            z = np.matmul(w_matrix, per_image).reshape(N, O, *out)
            if bias is not None:
                _add_channels(z, bias)
            return z
        # NOTE: products this small run on one core in BLAS (OpenBLAS threads a product only
        # above 4 * 65536 multiply-adds): split the images over our threads instead, each
        # calling BLAS on its share, the bias added right after. Measured, 2 threads, conv2d
        # forward with bias: LeNet's first layer (64, 1, 28, 28) -> 32: 2.0-2.3 -> 1.4-1.6 ms;
        # the course CNN's (512, 1, 28, 28) -> 8: 7.8-8.3 -> 5.7-5.8 ms.
        z = np.empty((N, O, L), np.result_type(w, cols))
        column = None if bias is None else bias.reshape(O, 1)

        def products(start: int, stop: int) -> None:  # images start..stop
            np.matmul(w_matrix, per_image[start:stop], out=z[start:stop])
            if column is not None:
                z[start:stop] += column

        parallel(products, N, z.size * K)
        return z.reshape(N, O, *out)
    # the product lands in a scratch buffer: only its (N, O, ...) copy is kept
    result = _workspace("gemm", (G, O // G, cols.shape[2]), np.result_type(w, cols))
    np.matmul(w.reshape(G, O // G, -1), cols, out=result)
    z = np.empty((N, O, *out), result.dtype)
    _swap_leading(result.reshape(O, N, L), z.reshape(N, O, L), bias)  # (O, N, L) -> (N, O, L)
    return z


# Per-image products up to this many multiply-adds run one per thread of ours (conv1 of the
# LeNet step: 32 x 9 x 784); OpenBLAS runs each such call on one core anyway.
SMALL_PRODUCT = 1 << 18


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
    bias: np.ndarray | None = None,
) -> np.ndarray:
    """out = w @ im2col(xp) (+ bias) as (N, O, OH, OW), a new array: blocked or one product."""
    N, C = xp.shape[:2]
    O, _, KH, KW = w.shape
    K = C * KH * KW
    few_filters = groups == 1 and O <= BLOCKED_MAX_FILTERS and get_num_threads() == 1
    # NOTE: only when one image fills a block: with small images (the course CNN's 11x11 at
    # batch 512) the Python loop over images cost 5x (1 thread: 28.7 ms a step in conv2d
    # forward, against 5.7 ms for the one product)
    if few_filters and K * out[0] * out[1] >= BLOCK_ELEMENTS:
        return _blocked_forward(xp, w, stride, dilation, out, bias)
    cols = _columns(xp, (KH, KW), stride, dilation, out, groups, token)
    return _forward_gemm(w, cols, N, out, bias)


def _blocked_forward(
    xp: np.ndarray,
    w: np.ndarray,
    stride: Pair,
    dilation: Pair,
    out: Pair,
    bias: np.ndarray | None = None,
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
    column = None if bias is None else bias.reshape(O, 1)
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
                product = z[n].reshape(O, r * OW)
                np.matmul(w_matrix, block.reshape(K, r * OW), out=product)
                if column is not None:
                    product += column  # while the block is still in cache
            else:
                product = product_buffer[: O * r * OW].reshape(O, r * OW)
                np.matmul(w_matrix, block.reshape(K, r * OW), out=product)
                if column is not None:
                    product += column
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
    bias: np.ndarray | None = None,
) -> np.ndarray:
    """dx (N, C, H, W) from grad (N, O, OH, OW): col2im(w^T @ grad), padding cut off (+ bias).

    With stride 1 the same numbers are a "full" convolution of grad with the filters turned
    by 180 degrees and input/output channels swapped:
        dx[n,c,y,x] = sum_{o,u,v} gp[n, o, y+u*d, x+v*d] * w[o, c, KH-1-u, KW-1-v]
    (gp: grad padded by (KH-1)*d - top above, and so on). That costs an im2col of grad
    (O*KH*KW rows) instead of col2im's KH*KW passes over C*KH*KW rows, so it is used when
    O <= C; measured: about 25% less time at O = C, much more at O = 32*C.
    grad_by_channel: grad already as (G, O/G, N*OH*OW), if the caller has it.
    bias: (C,) added to every dx[:, c] (conv_transpose2d's bias), inside the last copy.
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
        return _conv_forward(gp, turned, (1, 1), dilation, (H, W), G, bias=bias)  # (N, C, H, W)
    if grad_by_channel is None:
        grad_by_channel = _batch_last(grad, G)  # (G, O/G, N*OH*OW)
    w_t = w.reshape(G, O // G, Cg * KH * KW).transpose(0, 2, 1)  # (G, C/G*KH*KW, O/G)
    dcols = _workspace("cols", (G, Cg * KH * KW, N * OH * OW), np.result_type(grad, w))
    _held.token = _held.cols = None  # overwritten below
    np.matmul(w_t, grad_by_channel, out=dcols)  # (G, C/G*KH*KW, N*OH*OW)
    by_channel = dcols.reshape(G * Cg, KH, KW, N, OH, OW)
    dxp = _col2im(by_channel, (G * Cg, N, *xp_shape[2:]), stride, dilation)  # (C, N, Hp, Wp)
    dx = np.empty((N, G * Cg, H, W), dxp.dtype)  # a new array: dxp is scratch memory
    _swap_leading(dxp[:, :, top : top + H, left : left + W], dx, bias)  # padding cut, NCHW
    return dx
