"""Tests for ops.dice_loss: known values, a direct numpy formula, float64 gradcheck, errors."""

import numpy as np
import pytest

from tests.helpers import distinct, random_grad
from tinygrad_cnn import Tensor, gradcheck, ops


def numpy_dice_loss(logits: np.ndarray, onehot: np.ndarray, smooth: float) -> float:
    """The formula written out directly in numpy, per class over batch and pixels."""
    if logits.shape[1] == 1:
        p = 1 / (1 + np.exp(-logits))
    else:
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
    dice = [
        (2 * (p[:, c] * onehot[:, c]).sum() + smooth)
        / (p[:, c].sum() + onehot[:, c].sum() + smooth)
        for c in range(logits.shape[1])
    ]
    return 1 - float(np.mean(dice))


def test_perfect_and_disjoint_masks():
    mask = np.array([[[1.0, 0.0], [1.0, 1.0]]])  # (1, 2, 2)
    perfect = Tensor(np.where(mask, 30.0, -30.0)[:, None])  # (1, 1, 2, 2)
    assert ops.dice_loss(perfect, mask, smooth=0.0).item() == pytest.approx(0.0, abs=1e-6)
    assert ops.dice_loss(-perfect, mask, smooth=0.0).item() == pytest.approx(1.0, abs=1e-6)


def test_half_overlap_known_value():
    # predicted {a, b}, true {b, c}: dice = 2*1 / (2 + 2) = 0.5
    logits = Tensor(np.array([[[[30.0, 30.0, -30.0]]]]))
    target = np.array([[[0.0, 1.0, 1.0]]])
    assert ops.dice_loss(logits, target, smooth=0.0).item() == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize("classes", [1, 3])
def test_matches_numpy_formula(classes):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, classes, 5, 4))
    if classes == 1:
        target = (rng.random((2, 5, 4)) > 0.5).astype(np.float64)
        onehot = target[:, None]
    else:
        target = rng.integers(0, classes, (2, 5, 4))
        onehot = np.eye(classes)[target].transpose(0, 3, 1, 2)
    got = ops.dice_loss(Tensor(logits), target, smooth=0.5).item()
    assert got == pytest.approx(numpy_dice_loss(logits, onehot, 0.5), rel=1e-12)
    # (N, C, H, W) one-hot targets give the same loss as the class ids
    same = ops.dice_loss(Tensor(logits), onehot, smooth=0.5).item()
    assert same == pytest.approx(got, rel=1e-12)


@pytest.mark.parametrize("classes", [1, 4])
def test_gradcheck(classes):
    rng = np.random.default_rng(1)
    logits = Tensor(distinct((2, classes, 3, 3), rng), requires_grad=True)
    if classes == 1:
        target = rng.random((2, 3, 3))  # soft targets
    else:
        target = rng.integers(0, classes, (2, 3, 3))
    assert gradcheck(lambda x: ops.dice_loss(x, target, smooth=1.0), [logits])


def test_combined_with_bce_keeps_float32():
    rng = np.random.default_rng(2)
    logits = Tensor(rng.standard_normal((2, 1, 4, 4)).astype(np.float32), requires_grad=True)
    target = (rng.random((2, 1, 4, 4)) > 0.5).astype(np.float32)
    loss = ops.binary_cross_entropy_with_logits(logits, target) + ops.dice_loss(logits, target)
    assert loss.dtype == np.float32
    loss.backward()
    assert logits.grad.dtype == np.float32 and logits.grad.shape == logits.shape


def test_matches_torch_formula():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((2, 3, 4, 4))
    target = rng.integers(0, 3, (2, 4, 4))
    ours = Tensor(logits, requires_grad=True)
    loss = ops.dice_loss(ours, target)
    g = random_grad((), rng)
    loss.backward(g)
    ref = torch.tensor(logits, requires_grad=True)
    p = torch.softmax(ref, dim=1)
    t = torch.nn.functional.one_hot(torch.tensor(target), 3).permute(0, 3, 1, 2).double()
    dice = (2 * (p * t).sum((0, 2, 3)) + 1) / (p.sum((0, 2, 3)) + t.sum((0, 2, 3)) + 1)
    expected = 1 - dice.mean()
    expected.backward(torch.tensor(g))
    np.testing.assert_allclose(loss.data, expected.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.grad, ref.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_errors():
    logits = Tensor(np.zeros((2, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"dice_loss: logits \(2, 3, 4, 4\) need targets"):
        ops.dice_loss(logits, np.zeros((2, 4, 5), dtype=np.int64))
    with pytest.raises(ValueError, match="dice_loss: target class 3 is out of range for C = 3"):
        ops.dice_loss(logits, np.full((2, 4, 4), 3))
    with pytest.raises(TypeError, match="dice_loss: .* integer class ids"):
        ops.dice_loss(logits, np.full((2, 4, 4), 0.5))
    with pytest.raises(ValueError, match="dice_loss: smooth must be >= 0"):
        ops.dice_loss(logits, np.zeros((2, 4, 4), dtype=np.int64), smooth=-1.0)
    with pytest.raises(ValueError, match="dice_loss: logits must be"):
        ops.dice_loss(Tensor(np.zeros(3)), np.zeros(3))


def test_segmentation_loss_is_cross_entropy_plus_dice():
    rng = np.random.default_rng(4)
    binary = Tensor(rng.standard_normal((2, 1, 4, 4)))
    masks = rng.integers(0, 2, (2, 4, 4))
    expected = ops.binary_cross_entropy_with_logits(binary, masks[:, None].astype(np.float64))
    expected = expected.item() + 0.5 * ops.dice_loss(binary, masks).item()
    got = ops.segmentation_loss(binary, masks, dice_weight=0.5).item()
    assert got == pytest.approx(expected, rel=1e-12)
    classes = Tensor(rng.standard_normal((2, 4, 4, 4)))
    labels = rng.integers(0, 4, (2, 4, 4))
    expected = ops.cross_entropy(classes, labels).item() + ops.dice_loss(classes, labels).item()
    assert ops.segmentation_loss(classes, labels).item() == pytest.approx(expected, rel=1e-12)
    plain = ops.segmentation_loss(classes, labels, dice_weight=0).item()
    assert plain == pytest.approx(ops.cross_entropy(classes, labels).item(), rel=1e-12)
    with pytest.raises(ValueError, match=r"segmentation_loss: logits \(2, 1, 4, 4\) need masks"):
        ops.segmentation_loss(binary, masks[:, :3])
