"""Pooling and upsampling: maxpool2d, avgpool2d, upsample2d.

Pooling reads the same sliding windows as convolution (`conv.im2col` gives them as a strided
view, without copying), but reduces each window on its own instead of multiplying it by
filters. The work is done one kernel tap (u, v) at a time: tap (u, v) of every window at once
is the strided slice xp[:, :, u::s, v::s], so a k x k window costs k*k whole-array operations
and no Python loop over pixels.

    max pool:  out = max over taps;  the gradient goes to the arg-max tap of each window only
    avg pool:  out = sum over taps / count;  every tap gets grad / count
    upsample:  out = each pixel repeated f x f times;  the gradient sums each f x f block

Read next: `window_args.py`.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.ops import reference
from tinygrad_cnn.ops.conv import im2col
from tinygrad_cnn.ops.kernels import get_kernels
from tinygrad_cnn.ops.window_args import (
    Padding,
    Pair,
    check_4d,
    pool_args,
)
from tinygrad_cnn.ops.windows import _padded, parallel
from tinygrad_cnn.tensor import Function, Tensor, as_tensor


def _tap_slices(tap: Pair, stride: Pair, out: Pair) -> tuple[slice, slice]:
    """The cells tap (u, v) of every window reads: rows u, u+s, ..., columns v, v+s, ..."""
    (u, v), (sh, sw), (OH, OW) = tap, stride, out
    return slice(u, u + (OH - 1) * sh + 1, sh), slice(v, v + (OW - 1) * sw + 1, sw)


def _crop(xp: np.ndarray, padding: Padding) -> np.ndarray:
    (top, bottom), (left, right) = padding
    return xp[:, :, top : xp.shape[2] - bottom, left : xp.shape[3] - right]


# ========================================================================================
# SPEED TRICKS: MaxPool2dFn. The readable version is `reference.py`'s MaxPool2dFn (a loop
# over the taps with np.argmax). Here:
#   - the arg-max is one byte per window, updated with wrap-around unsigned arithmetic
#     (several times faster than np.where or np.copyto(..., where=...));
#   - when the windows tile the input (kernel = stride), backward writes every cell of dx
#     once: no zeroing, no additions;
#   - forward and backward run over the (n, c) planes, split over get_num_threads() threads
#     (`parallel`) and, within a thread, a cache-sized block of planes at a time.
# Measured with `python -m benchmarks.threads --only maxpool` (see benchmarks/README.md).
# ========================================================================================


class MaxPool2dFn(Function):
    """Max over each window; padding is -inf, so it never wins.

    forward:   out[n,c,i,j] = max_{u,v} xp[n, c, i*s+u, j*s+v]
               arg[n,c,i,j] = the first (u, v) in row-major order that reaches the max
                              (the last NaN of the window if it holds any, as in PyTorch)
    backward:  dx[n, c, i*s+u, j*s+v] += grad[n,c,i,j]   for (u, v) = arg[n,c,i,j] only
               (one element per window; where windows overlap, their gradients add)
    """

    name = "maxpool2d"

    def forward(self, x: np.ndarray, kernel: Pair, stride: Pair, padding: Padding) -> np.ndarray:
        self.x_shape, self.kernel, self.stride, self.padding = x.shape, kernel, stride, padding
        xp = np.ascontiguousarray(_padded(x, padding, -np.inf, "pool_xp"))  # (N, C, Hp, Wp)
        self.xp_shape = xp.shape
        self.out_size = tuple((n - k) // s + 1 for n, k, s in zip(xp.shape[2:], kernel, stride))
        N, C = x.shape[:2]
        windows = im2col(xp, kernel, stride, (1, 1), self.out_size)  # (N, C, KH, KW, OH, OW)
        windows = windows.reshape(N * C, *kernel, *self.out_size)  # a view: planes (n, c)
        KH, KW = kernel
        out = np.empty((N * C, *self.out_size), x.dtype)  # (N*C, OH, OW)
        self.arg = np.zeros(out.shape, np.uint8 if KH * KW <= 256 else np.int32)

        def pool(start: int, stop: int) -> None:  # planes start..stop, a cache block at a time
            for low in range(start, stop, self._block):
                high = min(low + self._block, stop)
                window, top, arg = windows[low:high], out[low:high], self.arg[low:high]
                np.copyto(top, window[:, 0, 0])
                for tap in range(1, KH * KW):
                    values = window[:, tap // KW, tap % KW]
                    better = (values > top).view(np.uint8)  # strictly: a tie keeps the earlier
                    np.maximum(top, values, out=top)
                    # arg = tap where better, else unchanged. NOTE: unsigned arithmetic wraps
                    # around, so arg + 1 * (tap - arg) is tap even when tap - arg "goes
                    # negative"; several times faster than np.where or np.copyto(where=)
                    arg += better * (arg.dtype.type(tap) - arg)
                if np.isnan(top).any():  # rare: send the gradient to the NaN (the last one)
                    for tap in range(KH * KW):
                        arg[np.isnan(window[:, tap // KW, tap % KW])] = tap

        parallel(pool, N * C, xp.size)
        return out.reshape(N, C, *self.out_size)

    @property
    def _block(self) -> int:
        """Planes per cache block: about POOL_BLOCK outputs, so out and arg stay in cache."""
        return max(1, POOL_BLOCK // (self.out_size[0] * self.out_size[1]))

    def backward(self, grad: np.ndarray):
        (KH, KW), (sh, sw) = self.kernel, self.stride
        no_padding = self.xp_shape == self.x_shape
        OH, OW = self.out_size
        N, C = self.x_shape[:2]
        taps = [_tap_slices((tap // KW, tap % KW), self.stride, self.out_size)
                for tap in range(KH * KW)]  # fmt: skip
        grad = grad.reshape(N * C, OH, OW)  # planes (n, c)
        if (KH, KW) == (sh, sw) and no_padding:
            # windows tile x without overlap: every cell of x is written once, so no zeroing
            # and no additions (k = s = 2 on even sizes is the reshape (OH, 2, OW, 2))
            dx = np.empty((N * C, *self.x_shape[2:]), grad.dtype)

            def scatter(start: int, stop: int) -> None:  # planes start..stop, block by block
                for low in range(start, stop, self._block):
                    high = min(low + self._block, stop)
                    part, arg, g = dx[low:high], self.arg[low:high], grad[low:high]
                    part[:, OH * sh :] = 0  # rows and columns no window reached
                    part[:, :, OW * sw :] = 0
                    for tap, (rows, cols) in enumerate(taps):
                        np.multiply(g, arg == tap, out=part[:, rows, cols])

            parallel(scatter, N * C, dx.size * 2)
            return dx.reshape(self.x_shape)
        dxp = np.zeros((N * C, *self.xp_shape[2:]), grad.dtype)

        def add(start: int, stop: int) -> None:  # planes start..stop, block by block
            for low in range(start, stop, self._block):
                high = min(low + self._block, stop)
                part, arg, g = dxp[low:high], self.arg[low:high], grad[low:high]
                for tap, (rows, cols) in enumerate(taps):
                    part[:, rows, cols] += g * (arg == tap)

        parallel(add, N * C, dxp.size * 2)
        dxp = dxp.reshape(self.xp_shape)
        return dxp if no_padding else _crop(dxp, self.padding)


# Outputs per cache block of max pooling: out, arg and the temporaries of one block stay in
# cache through the KH*KW taps instead of streaming from memory once per tap. NOTE: measured
# (2x2 fwd+bwd, 2 threads): (512, 8, 26, 26) 13.8 -> 10.5 ms against chunks of whole images,
# (64, 32, 28, 28) about the same; at 8K outputs per block the many small calls contend for
# the GIL and it took 25 ms.
POOL_BLOCK = 1 << 17


# ========================================================================================
# End of the speed tricks
# ========================================================================================


class AvgPool2dFn(Function):
    """Mean of each window.

    forward:   out[n,c,i,j] = sum_{u,v} xp[n, c, i*s+u, j*s+v] / count[i,j]
               (count = KH*KW with int padding, zeros included as in PyTorch; with 'same', the
               number of real pixels in the window, as in Keras)
    backward:  dx[n, c, i*s+u, j*s+v] += grad[n,c,i,j] / count[i,j]   for every tap (u, v)
    """

    name = "avgpool2d"

    def forward(
        self, x: np.ndarray, kernel: Pair, stride: Pair, padding: Padding, count_padding: bool
    ) -> np.ndarray:
        self.x_shape, self.kernel, self.stride, self.padding = x.shape, kernel, stride, padding
        xp = _padded(x, padding, 0.0, "pool_xp")  # (N, C, Hp, Wp)
        self.xp_shape = xp.shape
        self.out_size = tuple((n - k) // s + 1 for n, k, s in zip(xp.shape[2:], kernel, stride))
        self.count = kernel[0] * kernel[1]
        if not count_padding:  # the same window sums over a picture of the real pixels
            real = _padded(np.ones((1, 1, *x.shape[2:]), x.dtype), padding, 0.0, "pool_count")
            self.count = self._window_sum(real)[0, 0]  # (OH, OW)
        return self._window_sum(xp) / self.count

    def _window_sum(self, xp: np.ndarray) -> np.ndarray:
        windows = im2col(xp, self.kernel, self.stride, (1, 1), self.out_size)
        total = windows[:, :, 0, 0].copy()  # (N, C, OH, OW)
        for tap in range(1, self.kernel[0] * self.kernel[1]):
            total += windows[:, :, tap // self.kernel[1], tap % self.kernel[1]]
        return total

    def backward(self, grad: np.ndarray):
        share = grad / self.count  # (N, C, OH, OW): what each tap of a window receives
        dxp = np.zeros(self.xp_shape, grad.dtype)
        KH, KW = self.kernel
        for tap in range(KH * KW):
            rows, cols = _tap_slices((tap // KW, tap % KW), self.stride, self.out_size)
            dxp[:, :, rows, cols] += share
        return _crop(dxp, self.padding)


class Upsample2dFn(Function):
    """Nearest-neighbour upsampling by an integer factor f.

    forward:   out[n, c, i, j] = x[n, c, i // f, j // f]
    backward:  dx[n, c, i, j] = sum of grad over the f x f block that copied x[n, c, i, j]
    """

    name = "upsample2d"

    def forward(self, x: np.ndarray, factor: int) -> np.ndarray:
        N, C, H, W = x.shape
        self.factor = factor
        out = np.empty((N, C, H, factor, W, factor), x.dtype)
        out[...] = x[:, :, :, None, :, None]  # one broadcasting copy
        return out.reshape(N, C, H * factor, W * factor)

    def backward(self, grad: np.ndarray):
        N, C, H, W = grad.shape
        f = self.factor
        return grad.reshape(N, C, H // f, f, W // f, f).sum(axis=(3, 5))


def maxpool2d(
    x: Tensor,
    kernel_size: int | Pair,
    stride: int | Pair | None = None,
    padding: int | Pair | str = 0,
) -> Tensor:
    """Take the max of each kernel_size window.

    Args:
        x: input (N, C, H, W).
        kernel_size: int or (KH, KW). stride: int or pair; defaults to kernel_size.
        padding: int or pair (at most half the kernel), 'valid', or 'same' (Keras: OH =
            ceil(H / sh), the odd pixel at the bottom/right). Padded cells never win the max.
    Shapes:
        out: (N, C, OH, OW) with OH = (H + top + bottom - KH) // sh + 1, same for W.
    Raises:
        ValueError: x not 4-D, a non-positive kernel or stride, negative or too much padding,
            an unknown padding string, a window larger than the padded input.
        TypeError: kernel_size, stride or padding of the wrong type.
    Example:
        >>> maxpool2d(Tensor(np.arange(16.0).reshape(1, 1, 4, 4)), 2).data[0, 0]
        array([[ 5.,  7.],
               [13., 15.]])
    """
    if get_kernels() == "reference":  # the same op written as the math reads
        return reference.maxpool2d(x, kernel_size, stride, padding)
    x = as_tensor(x)
    kernel, stride, pads = pool_args("maxpool2d", x, kernel_size, stride, padding)
    return MaxPool2dFn.apply(x, kernel=kernel, stride=stride, padding=pads)


def avgpool2d(
    x: Tensor,
    kernel_size: int | Pair,
    stride: int | Pair | None = None,
    padding: int | Pair | str = 0,
) -> Tensor:
    """Take the mean of each kernel_size window.

    Args:
        x: input (N, C, H, W).
        kernel_size: int or (KH, KW). stride: int or pair; defaults to kernel_size.
        padding: int or pair of zeros (at most half the kernel) that count in the mean, as
            PyTorch's count_include_pad=True; 'valid'; or 'same' (Keras: OH = ceil(H / sh),
            and each mean is over the real pixels of its window only).
    Shapes:
        out: (N, C, OH, OW) with OH = (H + top + bottom - KH) // sh + 1, same for W.
    Raises:
        ValueError, TypeError: as maxpool2d.
    Example:
        >>> avgpool2d(Tensor(np.arange(9.0).reshape(1, 1, 3, 3)), 2, padding="same").data[0, 0]
        array([[2. , 3.5],
               [6.5, 8. ]])
    """
    if get_kernels() == "reference":  # the same op written as the math reads
        return reference.avgpool2d(x, kernel_size, stride, padding)
    x = as_tensor(x)
    kernel, stride, pads = pool_args("avgpool2d", x, kernel_size, stride, padding)
    return AvgPool2dFn.apply(
        x, kernel=kernel, stride=stride, padding=pads, count_padding=padding != "same"
    )


def upsample2d(x: Tensor, scale_factor: int = 2) -> Tensor:
    """Nearest-neighbour upsampling: repeat each pixel scale_factor times down and across.

    Shapes:
        x (N, C, H, W) -> out (N, C, H * scale_factor, W * scale_factor).
    Raises:
        ValueError: x not 4-D, or scale_factor < 1.  TypeError: scale_factor not an int.
    Example:
        >>> upsample2d(Tensor(np.array([[[[1.0, 2.0]]]]))).data[0, 0]
        array([[1., 1., 2., 2.],
               [1., 1., 2., 2.]])
    """
    x = as_tensor(x)
    check_4d(x, "upsample2d")
    if isinstance(scale_factor, bool) or not isinstance(scale_factor, (int, np.integer)):
        raise TypeError(f"upsample2d: scale_factor must be an int, got {scale_factor!r}")
    if scale_factor < 1:
        raise ValueError(f"upsample2d: scale_factor must be at least 1, got {scale_factor}")
    return Upsample2dFn.apply(x, factor=int(scale_factor))
