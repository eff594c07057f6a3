"""Batch normalisation over (N, H, W) for each channel, as one fused op.

Composed from mean, sub, mul... it would take a dozen graph nodes and as many full-size
temporaries; fused, the backward is three reductions and one pass over the batch, and the
whole derivation fits in the docstring below.

Read next: `loss.py`.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.tensor import Function, Tensor, as_tensor


def _per_channel(values: np.ndarray) -> np.ndarray:
    """(C,) -> (1, C, 1, 1), to broadcast against (N, C, H, W)."""
    return values.reshape(1, -1, 1, 1)


class BatchNorm2dFn(Function):
    """Normalise each channel with a given mean and variance, then scale and shift.

    With c the channel, M = N*H*W the number of values per channel and sums over (n, i, j):

    forward:   xhat[n,c,i,j] = (x[n,c,i,j] - mean[c]) / sqrt(var[c] + eps)
               out[n,c,i,j]  = w[c] * xhat[n,c,i,j] + b[c]
    backward:  db[c] = sum grad[n,c,i,j]          dw[c] = sum grad[n,c,i,j] * xhat[n,c,i,j]
        eval (mean, var are constants):   dx = grad * w / std
        training (mean, var are the batch's own statistics, so they depend on x too):
               dx = w / std * (grad - db / M - xhat * dw / M)
               (the two extra terms are the gradient flowing through mean and var)
    """

    name = "batch_norm2d"

    def forward(
        self,
        x: np.ndarray,
        w: np.ndarray,
        b: np.ndarray,
        mean: np.ndarray,
        var: np.ndarray,
        eps: float,
        training: bool,
    ) -> np.ndarray:
        self.inv_std = 1.0 / np.sqrt(var + eps)  # (C,)
        self.xhat = x - _per_channel(mean)  # (N, C, H, W)
        self.xhat *= _per_channel(self.inv_std)
        self.w, self.training = w, training
        out = self.xhat * _per_channel(w)
        out += _per_channel(b)
        return out

    def backward(self, grad: np.ndarray):  # grad: (N, C, H, W)
        db = grad.sum(axis=(0, 2, 3))  # (C,)
        dw = np.einsum("ncij,ncij->c", grad, self.xhat)  # (C,)
        dx = None
        if self.needs_input_grad[0]:
            scale = _per_channel(self.w * self.inv_std)
            if self.training:
                M = max(grad.size // grad.shape[1], 1)  # 1 for an empty batch: no 0 / 0
                dx = self.xhat * _per_channel(dw / M)
                np.subtract(grad, dx, out=dx)
                dx -= _per_channel(db / M)
                dx *= scale
            else:
                dx = grad * scale
        return dx, dw, db


def batch_norm2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor,
    running_mean: np.ndarray | None = None,
    running_var: np.ndarray | None = None,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalisation of an (N, C, H, W) input, per channel (PyTorch semantics).

    In training mode the batch's own mean and (biased) variance over (N, H, W) are used, and
    the running statistics, if given, are updated in place with the unbiased variance:
    running = (1 - momentum) * running + momentum * batch. In eval mode (training=False) the
    running statistics are used instead, so each sample is normalised on its own.

    Args:
        x: (N, C, H, W). weight, bias: (C,) scale and shift.
        running_mean, running_var: (C,) arrays; required when training=False.
    Shapes:
        out: (N, C, H, W), the shape of x.
    Raises:
        ValueError: x not 4-D, weight/bias/statistics not (C,), fewer than 2 values per
            channel in training mode (an empty batch is fine: it leaves the running statistics
            alone), or no running statistics in eval mode.
    Example:
        >>> x = Tensor(np.array([1.0, 3.0, 3.0, 1.0]).reshape(2, 1, 2, 1))  # mean 2, var 1
        >>> batch_norm2d(x, Tensor(np.ones(1)), Tensor(np.zeros(1)), eps=0.0).data.ravel()
        array([-1.,  1.,  1., -1.])
    """
    x, weight, bias = as_tensor(x), as_tensor(weight), as_tensor(bias)
    if x.ndim != 4:
        raise ValueError(f"batch_norm2d: expected an input (N, C, H, W), got shape {x.shape}")
    C = x.shape[1]
    for label, value in [
        ("weight", weight),
        ("bias", bias),
        ("running_mean", running_mean),
        ("running_var", running_var),
    ]:
        if value is not None and value.shape != (C,):
            raise ValueError(
                f"batch_norm2d: {label} must have shape ({C},) for input "
                f"{x.shape}, got {value.shape}"
            )
    if training and x.size == 0:  # an empty batch, as PyTorch: nothing to learn from
        mean, var = np.zeros(C, x.dtype), np.ones(C, x.dtype)
    elif training:
        M = x.size // C
        if M < 2:
            raise ValueError(
                f"batch_norm2d: training needs more than 1 value per channel, got input {x.shape}"
            )
        mean = x.data.mean(axis=(0, 2, 3))  # (C,)
        var = x.data.var(axis=(0, 2, 3))  # (C,), biased: what normalises this batch
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += momentum * var * (M / (M - 1))  # unbiased, as PyTorch keeps it
    else:
        if running_mean is None or running_var is None:
            raise ValueError(
                "batch_norm2d: eval mode (training=False) needs running_mean and running_var"
            )
        mean, var = running_mean.astype(x.dtype), running_var.astype(x.dtype)
    return BatchNorm2dFn.apply(x, weight, bias, mean=mean, var=var, eps=eps, training=training)
