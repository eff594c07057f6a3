"""The soft Dice loss for segmentation, composed from existing ops (no backward of its own),
and `segmentation_loss`, cross-entropy + Dice, the usual loss for a U-Net.

Dice measures the overlap of two masks A and B: 2 |A ∩ B| / (|A| + |B|), 1 when they are
equal, 0 when they do not touch. With probabilities p in place of a hard prediction the
counts become sums, and the overlap becomes differentiable:

    dice_c = (2 sum(p_c * t_c) + smooth) / (sum(p_c) + sum(t_c) + smooth)
    loss   = 1 - mean over classes c of dice_c

where sums run over the batch and every pixel, p = sigmoid(logits) for one class or
softmax(logits, axis=1) for several, and t is the target mask (one-hot for several classes).
`smooth` keeps 0/0 away when a class is absent from both, and softens the loss for tiny
objects. Dice weighs each class by its overlap, not by its pixel count, so a small object
matters as much as a large one: it is often added to cross-entropy (`bce + dice`).

Since it is built from sigmoid/softmax, mul, sum, add and div, its gradient comes from theirs.

Read next: `nn/` (the layers), then `models/unet.py`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_cnn.ops.elementwise import sigmoid
from tinygrad_cnn.ops.loss import binary_cross_entropy_with_logits, cross_entropy, softmax
from tinygrad_cnn.tensor import Tensor, as_tensor


def _targets_array(logits: Tensor, targets: Any) -> np.ndarray:
    """Targets as an array of the logits' shape and dtype (one-hot for integer class masks)."""
    data = np.asarray(getattr(targets, "data", targets))
    N, C = logits.shape[:2]
    spatial = logits.shape[2:]
    if data.shape == logits.shape:
        return data.astype(logits.dtype, copy=False)  # probabilities or one-hot already
    if data.shape != (N, *spatial):
        raise ValueError(
            f"dice_loss: logits {logits.shape} need targets of shape "
            f"{(N, *spatial)} (class ids) or {logits.shape}, got {data.shape}"
        )
    if C == 1:
        return data[:, None].astype(logits.dtype)  # (N, H, W) -> (N, 1, H, W)
    if data.dtype.kind == "f" and np.all(data == np.round(data)):
        data = data.astype(np.int64)
    if data.dtype.kind not in "iu":
        raise TypeError(
            f"dice_loss: with C = {C} classes, (N, H, W) targets must be integer "
            f"class ids, got dtype {data.dtype}"
        )
    if data.size and (data.min() < 0 or data.max() >= C):
        bad = data[(data < 0) | (data >= C)][0]
        raise ValueError(
            f"dice_loss: target class {bad} is out of range for C = {C} classes "
            f"(valid: 0 to {C - 1})"
        )
    # one-hot along a new axis 1: (N, H, W) -> (N, C, H, W), as a comparison against 0..C-1
    classes = np.arange(C).reshape((1, C) + (1,) * len(spatial))
    return (data[:, None] == classes).astype(logits.dtype)


def dice_loss(logits: Tensor, targets: Any, smooth: float = 1.0) -> Tensor:
    """Soft Dice loss, 1 - mean over classes of the soft Dice coefficient.

    Args:
        logits: (N, C, H, W) scores (any number of spatial axes). C = 1: one foreground
            class, probabilities from sigmoid. C > 1: classes, probabilities from softmax
            over axis 1.
        targets: an array or Tensor (no gradient flows into it): (N, H, W) masks (0/1 or
            soft for C = 1, integer class ids in [0, C) for C > 1), or (N, C, H, W)
            probabilities / one-hot masks.
        smooth: added to the numerator and denominator of each class's Dice (> 0 avoids 0/0).
    Shapes:
        out: () scalar in [0, 1].
    Raises:
        ValueError: logits with fewer than 2 axes, targets of another shape, a class id
            outside [0, C), or a negative smooth.
        TypeError: non-integer class ids for C > 1.
    Example:
        >>> logits = Tensor(np.array([[[[20.0, -20.0]]]]))            # predicts [1, 0]
        >>> round(dice_loss(logits, np.array([[[1.0, 0.0]]])).item(), 6)
        0.0
        >>> round(dice_loss(logits, np.array([[[0.0, 1.0]]]), smooth=0.0).item(), 6)
        1.0
    """
    logits = as_tensor(logits)
    if logits.ndim < 2:
        raise ValueError(f"dice_loss: logits must be (N, C, H, W), got shape {logits.shape}")
    if smooth < 0:
        raise ValueError(f"dice_loss: smooth must be >= 0, got {smooth}")
    targets = Tensor(_targets_array(logits, targets))  # a constant: no gradient
    if logits.shape[1] == 1:
        probabilities = sigmoid(logits)  # (N, 1, H, W)
    else:
        probabilities = softmax(logits, axis=1)  # (N, C, H, W)
    axes = (0,) + tuple(range(2, logits.ndim))  # batch and pixels: one Dice per class
    intersection = (probabilities * targets).sum(axis=axes)  # (C,)
    sizes = probabilities.sum(axis=axes) + targets.sum(axis=axes)  # (C,)
    dice = (2 * intersection + smooth) / (sizes + smooth)  # (C,)
    return 1 - dice.mean()


def segmentation_loss(logits: Tensor, masks: Any, dice_weight: float = 1.0) -> Tensor:
    """Cross-entropy plus `dice_weight` x Dice: the usual loss for training a U-Net.

    Cross-entropy gives every pixel a steady gradient; Dice adds weight to the overlap of
    each class as a whole, so small objects and rare classes are not drowned by background.

    Args:
        logits: (N, 1, H, W) for one foreground class (binary cross-entropy on the logits),
            or (N, C, H, W) for C classes (softmax cross-entropy over axis 1).
        masks: (N, H, W) masks: 0/1 for C = 1, class ids in [0, C) for C > 1 (or
            (N, 1, H, W) 0/1 masks for C = 1).
        dice_weight: weight of the Dice term (0: cross-entropy alone).
    Shapes:
        out: () scalar.
    Raises:
        ValueError: masks of the wrong shape, or a class id outside [0, C).
    Example:
        >>> logits = Tensor(np.array([[[[20.0, -20.0]]]]))
        >>> round(segmentation_loss(logits, np.array([[[1, 0]]])).item(), 6)
        0.0
    """
    logits = as_tensor(logits)
    masks = np.asarray(getattr(masks, "data", masks))
    if logits.ndim < 2:
        raise ValueError(f"segmentation_loss: logits must be (N, C, H, W), got {logits.shape}")
    if logits.shape[1] == 1:
        if masks.shape == logits.shape[:1] + logits.shape[2:]:
            masks = masks[:, None]  # (N, H, W) -> (N, 1, H, W)
        if masks.shape != logits.shape:
            raise ValueError(
                f"segmentation_loss: logits {logits.shape} need masks of shape "
                f"{logits.shape[:1] + logits.shape[2:]}, got {masks.shape}"
            )
        targets = masks.astype(logits.dtype)
        loss = binary_cross_entropy_with_logits(logits, targets)
    else:
        targets = masks
        loss = cross_entropy(logits, masks)
    if dice_weight:
        loss = loss + dice_weight * dice_loss(logits, targets)
    return loss
