"""Softmax, log-softmax and the classification losses.

These are written as primitives (not composed from exp/sum/log) for numerical stability:
softmax(x) = softmax(x - max(x)), so exp never overflows, and log_softmax is computed as
(x - max) - log(sum(exp(x - max))), which stays finite for logits of +-1000. Their backward
formulas are also much shorter than the composed graph: the gradient of cross-entropy with
respect to the logits is just (softmax - one_hot(label)). The checks of the labels and the
targets, where most mistakes in feeding a model surface, are in `loss_checks.py`.

Read next: `reference.py`, convolution and pooling written as the math reads.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.ops.loss_checks import binary_targets, check_axis, class_labels
from tinygrad_cnn.tensor import Function, Tensor, as_tensor


class SoftmaxFn(Function):
    """Softmax along `axis`.

    forward:   out[i] = e^(x[i] - m) / sum_j e^(x[j] - m)        (m = max_j x[j], for stability)
    backward:  dx[i] = out[i] * (grad[i] - sum_j grad[j] * out[j])
    """

    name = "softmax"

    def forward(self, x: np.ndarray, axis: int) -> np.ndarray:
        self.axis = axis
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        self.out = e / e.sum(axis=axis, keepdims=True)
        return self.out

    def backward(self, grad: np.ndarray):
        return self.out * (grad - (grad * self.out).sum(axis=self.axis, keepdims=True))


class LogSoftmaxFn(Function):
    """Log of the softmax along `axis`.

    forward:   out[i] = (x[i] - m) - log sum_j e^(x[j] - m)
    backward:  dx[i] = grad[i] - softmax(x)[i] * sum_j grad[j]       (softmax = e^out)
    """

    name = "log_softmax"

    def forward(self, x: np.ndarray, axis: int) -> np.ndarray:
        self.axis = axis
        shifted = x - x.max(axis=axis, keepdims=True)
        self.out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        return self.out

    def backward(self, grad: np.ndarray):
        return grad - np.exp(self.out) * grad.sum(axis=self.axis, keepdims=True)


class CrossEntropyFn(Function):
    """Per-example cross-entropy of logits against integer class labels (classes on axis 1).

    forward:   out[n, ...] = -log_softmax(x)[n, label[n, ...], ...]
    backward:  dx[n, c, ...] = grad[n, ...] * (softmax(x)[n, c, ...] - [c == label[n, ...]])
    """

    name = "cross_entropy"

    def forward(self, x: np.ndarray, labels: np.ndarray) -> np.ndarray:
        shifted = x - x.max(axis=1, keepdims=True)  # (N, C, ...)
        exps = np.exp(shifted)
        sums = exps.sum(axis=1, keepdims=True)  # (N, 1, ...)
        self.labels = labels[:, None]  # (N, 1, ...), to index axis 1
        picked = np.take_along_axis(shifted, self.labels, axis=1)  # (N, 1, ...)
        self.softmax = exps / sums  # (N, C, ...), kept for backward
        return (np.log(sums) - picked)[:, 0]  # (N, ...)

    def backward(self, grad: np.ndarray):
        grad = grad[:, None]  # (N, 1, ...)
        dx = self.softmax * grad  # (N, C, ...)
        # subtract the one-hot label: only the labelled class of each example loses grad
        picked = np.take_along_axis(dx, self.labels, axis=1) - grad
        np.put_along_axis(dx, self.labels, picked, axis=1)
        return dx


class BCEWithLogitsFn(Function):
    """Per-element binary cross-entropy of logits x against targets t in [0, 1].

    forward:   out = -(t * log sigmoid(x) + (1 - t) * log(1 - sigmoid(x)))
                   = max(x, 0) - x * t + log(1 + e^-|x|)        (the stable form)
    backward:  dx = grad * (sigmoid(x) - t)        dt = -grad * x
    """

    name = "bce_with_logits"

    def forward(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        self.x, self.t = x, t
        return np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))

    def backward(self, grad: np.ndarray):
        dx = dt = None
        if self.needs_input_grad[0]:
            z = np.exp(-np.abs(self.x))
            sigmoid = np.where(self.x >= 0, 1 / (1 + z), z / (1 + z))
            dx = (grad * (sigmoid - self.t)).astype(self.x.dtype, copy=False)
        if self.needs_input_grad[1]:
            dt = -grad * self.x
        return dx, dt


def _reduce(op: str, losses: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """Exponentials normalised to sum to 1 along `axis` (stable for any logits).

    Example:
        >>> softmax(Tensor([0.0, np.log(3.0)])).data
        array([0.25, 0.75], dtype=float32)
    """
    x = as_tensor(x)
    return SoftmaxFn.apply(x, axis=check_axis("softmax", x, axis))


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log(softmax(x)) along `axis`, computed without overflow or log(0).

    Example:
        >>> log_softmax(Tensor([1000.0, 1000.0])).data
        array([-0.6931472, -0.6931472], dtype=float32)
    """
    x = as_tensor(x)
    return LogSoftmaxFn.apply(x, axis=check_axis("log_softmax", x, axis))


def cross_entropy(logits: Tensor, labels, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy of logits against integer class labels, as PyTorch's.

    Args:
        logits: (N, C) scores, or (N, C, H, W) for per-pixel classification.
        labels: integer class ids in [0, C): (N,) or (N, H, W), an ndarray or Tensor.
        reduction: 'mean' (over every example and pixel), 'sum' or 'none'.
    Shapes:
        out: () for 'mean'/'sum'; labels' shape for 'none'.
    Raises:
        ValueError: shapes that do not match, or a label outside [0, C) (names it and C).
        TypeError: labels that are not integers.
    Example:
        >>> cross_entropy(Tensor([[0.0, 0.0]]), np.array([1])).item()  # log 2
        0.6931471824645996
    """
    logits = as_tensor(logits)
    labels = class_labels(logits, labels)  # checked (loss_checks.py)
    return _reduce("cross_entropy", CrossEntropyFn.apply(logits, labels=labels), reduction)


def binary_cross_entropy_with_logits(logits: Tensor, targets, reduction: str = "mean") -> Tensor:
    """Sigmoid + binary cross-entropy in one stable step, as PyTorch's.

    Args:
        logits: any shape; targets: the same shape, values in [0, 1] (soft targets allowed).
    Raises:
        ValueError: shapes differ.
    Example:
        >>> binary_cross_entropy_with_logits(Tensor([0.0]), np.array([1.0])).item()  # log 2
        0.6931471824645996
    """
    logits = as_tensor(logits)
    targets = binary_targets(logits, targets)  # checked (loss_checks.py)
    losses = BCEWithLogitsFn.apply(logits, targets)
    return _reduce("binary_cross_entropy_with_logits", losses, reduction)
