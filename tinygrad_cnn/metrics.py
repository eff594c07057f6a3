"""Metrics: the confusion matrix and what it tells (IoU, Dice, pixel accuracy), and accuracy.

These measure a finished prediction, so they are plain numpy with no gradient. Everything
comes from one C x C confusion matrix, counted in a single `np.bincount`:

    confusion[t, p] = number of pixels whose true class is t and predicted class is p

    per class c:  TP = confusion[c, c]
                  FP = sum of column c - TP      (predicted c, truly something else)
                  FN = sum of row c - TP         (truly c, predicted something else)
    IoU_c  = TP / (TP + FP + FN)       (intersection over union of the two masks of class c)
    Dice_c = 2 TP / (2 TP + FP + FN)   (= 2 IoU / (1 + IoU); the F1 score of class c)
    pixel accuracy = sum of the diagonal / number of pixels

A class that is neither present nor predicted has 0 / 0: its IoU and Dice are nan, and the
means skip it. Class 0 is the background: `mean_iou` averages the other classes by default,
because the background covers most pixels and would make any model look good.

Logits become class ids with `predict_classes`: (N, 1, H, W) logits are one foreground class
(pixel on when logit > 0, i.e. sigmoid > 0.5), (N, C, H, W) logits take the argmax over C.

Every metric `fit` and `evaluate` report is looked up by name in `METRICS` (at the bottom of
this file), so a segmentation model reports `mean_iou` the way a classifier reports `accuracy`.

Read next: `ops/segmentation.py` (the Dice loss, the differentiable cousin of Dice).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def _array(values: Any) -> np.ndarray:
    """The numpy array of a Tensor (its `.data`), or of anything numpy accepts."""
    return np.asarray(getattr(values, "data", values))


def predict_classes(logits: Any) -> np.ndarray:
    """Class id per pixel from (N, C, H, W) logits (argmax over C; C = 1 means logit > 0).

    Example:
        >>> predict_classes(np.array([[[[-1.0, 2.0]]]]))
        array([[[0, 1]]])
    """
    logits = _array(logits)
    if logits.ndim < 2:
        raise ValueError(f"predict_classes: logits must be (N, C, ...), got shape {logits.shape}")
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).astype(np.int64)  # sigmoid(x) > 0.5 exactly when x > 0
    return logits.argmax(axis=1)


def num_classes_of(logits: Any) -> int:
    """Number of classes the logits describe: C, or 2 (background, foreground) when C = 1.

    Shapes:
        logits: (N, C, ...), a Tensor or an array.
    Example:
        >>> num_classes_of(np.zeros((2, 1, 4, 4))), num_classes_of(np.zeros((2, 3)))
        (2, 3)
    """
    channels = _array(logits).shape[1]
    return 2 if channels == 1 else channels


def confusion_matrix(predicted: Any, target: Any, num_classes: int) -> np.ndarray:
    """Count pixels by (true class, predicted class) in one vectorised bincount.

    Args:
        predicted, target: integer class ids of the same shape, in [0, num_classes).
    Shapes:
        out: (num_classes, num_classes) int64; out[t, p] counts true t predicted p.
    Raises:
        ValueError: shapes differ, or an id is outside [0, num_classes).
    Example:
        >>> confusion_matrix(np.array([0, 1, 1, 1]), np.array([0, 0, 1, 1]), 2)
        array([[1, 1],
               [0, 2]])
    """
    predicted, target = _array(predicted), _array(target)
    if predicted.shape != target.shape:
        raise ValueError(
            f"confusion_matrix: predicted {predicted.shape} and target "
            f"{target.shape} must have the same shape"
        )
    predicted = predicted.astype(np.int64, copy=False).ravel()
    target = target.astype(np.int64, copy=False).ravel()
    for name, ids in (("predicted", predicted), ("target", target)):
        if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
            bad = ids[(ids < 0) | (ids >= num_classes)][0]
            raise ValueError(
                f"confusion_matrix: {name} class {bad} is outside "
                f"[0, {num_classes}) for num_classes={num_classes}"
            )
    # each (t, p) pair gets its own bin t * C + p; bincount counts them all at once
    counts = np.bincount(target * num_classes + predicted, minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes)


def iou_per_class(confusion: np.ndarray) -> np.ndarray:
    """IoU_c = TP / (TP + FP + FN) for each class; nan where the class is absent and unpredicted.

    Example:
        >>> iou_per_class(np.array([[1, 1], [0, 2]]))
        array([0.5       , 0.66666667])
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    true_positive = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - true_positive  # TP + FP + FN
    with np.errstate(invalid="ignore", divide="ignore"):
        return true_positive / union


def dice_per_class(confusion: np.ndarray) -> np.ndarray:
    """Dice_c = 2 TP / (2 TP + FP + FN) for each class; nan where absent and unpredicted.

    Example:
        >>> dice_per_class(np.array([[1, 1], [0, 2]]))
        array([0.66666667, 0.8       ])
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    true_positive = np.diag(confusion)
    both_sizes = confusion.sum(axis=0) + confusion.sum(axis=1)  # 2 TP + FP + FN
    with np.errstate(invalid="ignore", divide="ignore"):
        return 2 * true_positive / both_sizes


def _nanmean(values: np.ndarray) -> float:
    """Mean of the non-nan values; nan if there are none (without numpy's warning)."""
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def mean_iou(logits: Any, labels: Any, include_background: bool = False) -> float:
    """Mean IoU over the classes of a batch of predictions (a METRICS entry for training).

    Args:
        logits: (N, C, H, W) scores (C = 1: one foreground class), a Tensor or an array.
        labels: (N, H, W) integer masks (or (N, 1, H, W) for C = 1), 0 = background.
        include_background: also average class 0; by default only classes 1..C-1 count, so
            with C = 1 this is the foreground IoU.
    Raises:
        ValueError: shapes that do not match, or a label outside the classes.
    Example:
        >>> logits = np.array([[[[5.0, 5.0], [-5.0, 5.0]]]])      # predicts 3 pixels on
        >>> mean_iou(logits, np.array([[[1, 1], [0, 0]]]))         # 2 right of 3 in the union
        0.6666666666666666
    """
    iou = iou_per_class(_confusion_from_logits(logits, labels))
    return _nanmean(iou if include_background else iou[1:])


def pixel_accuracy(logits: Any, labels: Any) -> float:
    """Fraction of pixels whose predicted class equals the label (a METRICS entry).

    Example:
        >>> pixel_accuracy(np.array([[[[5.0, 5.0], [-5.0, 5.0]]]]), np.array([[[1, 1], [0, 0]]]))
        0.75
    """
    confusion = _confusion_from_logits(logits, labels)
    return float(np.trace(confusion) / max(confusion.sum(), 1))


def _confusion_from_logits(logits: Any, labels: Any) -> np.ndarray:
    logits, labels = _array(logits), _array(labels)
    if logits.ndim >= 2 and logits.shape[1] == 1 and labels.shape == logits.shape:
        labels = labels[:, 0]  # (N, 1, H, W) binary masks -> (N, H, W)
    predicted = predict_classes(logits)
    if labels.shape != predicted.shape:
        raise ValueError(
            f"segmentation metrics: logits {logits.shape} need labels of shape "
            f"{predicted.shape}, got {labels.shape}"
        )
    return confusion_matrix(predicted, np.rint(labels), num_classes_of(logits))


def segmentation_report(confusion: np.ndarray) -> dict[str, Any]:
    """Every figure of one confusion matrix: per-class IoU and Dice, means, pixel accuracy.

    `mean_iou` and `mean_dice` average the foreground classes 1..C-1 (see the module docstring).

    Example:
        >>> report = segmentation_report(np.array([[1, 1], [0, 2]]))
        >>> report["mean_iou"], report["pixel_accuracy"]
        (0.6666666666666666, 0.75)
    """
    confusion = np.asarray(confusion)
    iou, dice = iou_per_class(confusion), dice_per_class(confusion)
    return {
        "iou": iou,
        "dice": dice,
        "mean_iou": _nanmean(iou[1:]),
        "mean_dice": _nanmean(dice[1:]),
        "mean_iou_with_background": _nanmean(iou),
        "pixel_accuracy": float(np.trace(confusion) / max(confusion.sum(), 1)),
    }


# ----------------------------------------------------------------------------------------
# Metrics by name, as fit and evaluate take them: function(logits array, labels array) -> float
# ----------------------------------------------------------------------------------------


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of examples whose highest logit is at their label (axis 1 holds the classes).

    Example:
        >>> accuracy(np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]]), np.array([0, 1, 1]))
        0.6666666666666666
    """
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim < 2 or logits.shape[:1] + logits.shape[2:] != labels.shape:
        raise ValueError(
            f"accuracy: logits {logits.shape} need labels of shape "
            f"{logits.shape[:1] + logits.shape[2:]}, got {labels.shape}"
        )
    return float((logits.argmax(axis=1) == labels).mean())


# fit and evaluate look metrics up here by name; segmentation code adds its own
METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy,
    "mean_iou": mean_iou,  # segmentation: IoU averaged over the foreground classes
    "pixel_accuracy": pixel_accuracy,
}


def register_metric(name: str, function: Callable[[np.ndarray, np.ndarray], float]) -> None:
    """Make `function(logits, labels) -> float` available to fit/evaluate as `name`.

    Example:
        >>> register_metric("mean_logit", lambda logits, labels: float(logits.mean()))
        >>> METRICS["mean_logit"](np.ones((2, 3)), np.zeros(2))
        1.0
        >>> del METRICS["mean_logit"]
    """
    METRICS[name] = function


def metric_functions(metrics: Sequence[str] | str) -> dict[str, Callable]:
    """The functions of the metrics named (one name or several), looked up in METRICS.

    Raises:
        ValueError: an unknown name, listing the known ones.
    Example:
        >>> list(metric_functions("accuracy"))
        ['accuracy']
    """
    if isinstance(metrics, str):
        metrics = (metrics,)
    unknown = [name for name in metrics if name not in METRICS]
    if unknown:
        raise ValueError(f"fit: unknown metric {unknown[0]!r}; known: {', '.join(sorted(METRICS))}")
    return {name: METRICS[name] for name in metrics}
