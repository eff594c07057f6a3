"""The losses' argument checks: an axis in range, integer class labels that fit the logits,
targets of the logits' shape.

A loss is where a model meets its data, so most mistakes surface here: labels of the wrong
shape, float labels, a label 10 for 10 classes. These functions find them before anything is
computed and name the shapes and values at fault, as every op's public function does; `loss.py`
calls each at one line.

Read next: `nn/hooks.py`, what a module call leaves behind for tools.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_cnn.tensor import Tensor, as_tensor


def check_axis(op: str, x: Tensor, axis: int) -> int:
    """`axis` of `x` as a non-negative index (numpy's negative axes allowed).

    Example:
        >>> check_axis("softmax", Tensor(np.zeros((2, 3))), -1)
        1
        >>> check_axis("softmax", Tensor(np.zeros((2, 3))), 2)
        Traceback (most recent call last):
        ...
        ValueError: softmax: axis 2 is out of range for shape (2, 3)
    """
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for shape {x.shape}")
    return axis % x.ndim


def class_labels(logits: Tensor, labels: Any) -> np.ndarray:
    """cross_entropy's labels as an intp array, checked against the logits (classes on axis 1).

    Float labels holding whole numbers are accepted (a loader may yield them); every label
    must be in [0, C).

    Raises:
        TypeError: labels that are not integers.
        ValueError: logits of fewer than 2 axes, labels of the wrong shape, or a label out of
            range (names it and C).
    Example:
        >>> class_labels(Tensor(np.zeros((2, 3))), [2.0, 0.0])
        array([2, 0])
        >>> class_labels(Tensor(np.zeros((2, 3))), [3, 0])
        Traceback (most recent call last):
        ...
        ValueError: cross_entropy: label 3 is out of range for C = 3 classes (valid: 0 to 2)
    """
    data = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    if data.dtype.kind in "f" and np.all(np.isfinite(data)) and np.all(data == np.round(data)):
        data = data.astype(np.int64)
    if data.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: labels must be integer class ids, got dtype {data.dtype}")
    labels = data.astype(np.intp, copy=False)
    if logits.ndim < 2:
        raise ValueError(
            f"cross_entropy: logits must be (N, C) or (N, C, H, W), got shape {logits.shape}"
        )
    expected = logits.shape[:1] + logits.shape[2:]
    if labels.shape != expected:
        raise ValueError(
            f"cross_entropy: logits {logits.shape} need labels of shape {expected}, "
            f"got {labels.shape}"
        )
    num_classes = logits.shape[1]
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        raise ValueError(
            f"cross_entropy: label {labels[bad].flat[0]} is out of range for "
            f"C = {num_classes} classes (valid: 0 to {num_classes - 1})"
        )
    return labels


def binary_targets(logits: Tensor, targets: Any) -> Tensor:
    """binary_cross_entropy_with_logits' targets as a Tensor of the logits' shape and dtype.

    Raises:
        ValueError: the shapes differ.
    Example:
        >>> binary_targets(Tensor([0.0, 1.0]), [1, 0]).data
        array([1., 0.], dtype=float32)
    """
    targets = as_tensor(
        targets if isinstance(targets, Tensor) else np.asarray(targets, dtype=logits.dtype)
    )
    if targets.shape != logits.shape:
        raise ValueError(
            f"binary_cross_entropy_with_logits: targets {targets.shape} must have "
            f"the shape of logits {logits.shape}"
        )
    return targets
