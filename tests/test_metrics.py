"""Tests for tinygrad_cnn.metrics on hand-made masks whose answers are known."""

import numpy as np
import pytest

from tinygrad_cnn import Tensor
from tinygrad_cnn.metrics import (
    confusion_matrix,
    dice_per_class,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
    predict_classes,
    segmentation_report,
)


def test_confusion_matrix_counts_pairs():
    target = np.array([[0, 0, 1], [1, 2, 2]])
    predicted = np.array([[0, 1, 1], [1, 2, 0]])
    expected = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    np.testing.assert_array_equal(confusion_matrix(predicted, target, 3), expected)


def test_square_masks_known_iou_and_dice():
    # true: a 4x4 square (16 px); predicted: the same square moved 2 px right (8 px overlap)
    target = np.zeros((1, 8, 8), dtype=np.int64)
    target[0, 2:6, 1:5] = 1
    predicted = np.zeros_like(target)
    predicted[0, 2:6, 3:7] = 1
    confusion = confusion_matrix(predicted, target, 2)
    iou, dice = iou_per_class(confusion), dice_per_class(confusion)
    assert iou[1] == pytest.approx(8 / 24)  # overlap 8, union 16 + 16 - 8
    assert dice[1] == pytest.approx(2 * 8 / 32)
    assert iou[0] == pytest.approx((64 - 24) / (64 - 8))  # background: 40 shared of 56
    assert dice[1] == pytest.approx(2 * iou[1] / (1 + iou[1]))


def test_absent_class_is_nan_and_skipped():
    target = np.array([[0, 1], [1, 0]])
    confusion = confusion_matrix(target, target, 3)  # class 2 neither present nor predicted
    iou = iou_per_class(confusion)
    assert np.isnan(iou[2]) and iou[0] == 1 and iou[1] == 1
    assert segmentation_report(confusion)["mean_iou"] == 1.0


def test_metrics_from_binary_logits():
    logits = np.array([[[[3.0, -1.0], [2.0, 4.0]]]])  # predicted on: 3 pixels
    labels = np.array([[[1, 0], [0, 1]]])  # true on: 2 pixels, both predicted
    assert mean_iou(logits, labels) == pytest.approx(2 / 3)  # foreground IoU
    assert mean_iou(logits, labels, include_background=True) == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert pixel_accuracy(Tensor(logits), labels) == pytest.approx(3 / 4)
    # (N, 1, H, W) float masks are accepted as well
    assert mean_iou(logits, labels[:, None].astype(np.float32)) == pytest.approx(2 / 3)


def test_metrics_from_multiclass_logits():
    labels = np.array([[[0, 1, 2, 2]]])
    predicted = np.array([[[0, 1, 1, 2]]])
    logits = np.eye(3)[predicted].transpose(0, 3, 1, 2) * 5.0  # (1, 3, 1, 4)
    np.testing.assert_array_equal(predict_classes(logits), predicted)
    # class 1: overlap 1, union 2 -> 0.5; class 2: overlap 1, union 2 -> 0.5
    assert mean_iou(logits, labels) == pytest.approx(0.5)
    assert pixel_accuracy(logits, labels) == pytest.approx(0.75)
    report = segmentation_report(confusion_matrix(predicted, labels, 3))
    np.testing.assert_allclose(report["dice"], [1.0, 2 / 3, 2 / 3])


def test_errors_name_shapes_and_values():
    with pytest.raises(ValueError, match=r"confusion_matrix: predicted \(2,\) and target \(3,\)"):
        confusion_matrix(np.zeros(2), np.zeros(3), 2)
    with pytest.raises(ValueError, match=r"target class 5 is outside \[0, 3\)"):
        confusion_matrix(np.zeros(2), np.array([0, 5]), 3)
    with pytest.raises(ValueError, match=r"logits \(1, 3, 2, 2\) need labels of shape"):
        mean_iou(np.zeros((1, 3, 2, 2)), np.zeros((1, 3, 3), dtype=np.int64))
