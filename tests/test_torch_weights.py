"""PyTorch weights both ways: a torch state_dict saved with safetensors loads here, ours loads
there, with the same outputs; a mismatch names the key and both shapes."""

import numpy as np
import pytest

from tests.test_unet import torch_unet
from tinygrad_cnn import Tensor, checkpoint, data
from tinygrad_cnn.cli import main
from tinygrad_cnn.models import UNet, mnist_cnn

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

UNET = {"base": 4, "depth": 2, "padding": "same", "batchnorm": True, "up": "transpose"}


def torch_cnn(hidden=100, classes=10):
    """The course's CNN in torch: the same layers, so the same state_dict keys."""
    tnn = torch.nn
    return tnn.Sequential(
        tnn.Conv2d(1, 8, 3), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Dropout(0.2),
        tnn.Conv2d(8, 16, 3), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Dropout(0.2),
        tnn.Flatten(), tnn.Linear(400, hidden), tnn.ReLU(), tnn.Dropout(0.5),
        tnn.Linear(hidden, classes),
    )  # fmt: skip


def _trained_torch_unet():
    """A torch U-Net whose BatchNorm statistics have moved (one forward in training mode)."""
    torch.manual_seed(0)
    model = torch_unet(torch, 1, 1, **UNET)
    with torch.no_grad():
        model(torch.randn(4, 1, 16, 16) * 2 + 0.5)
    return model.eval()


def _images(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _torch_out(model, x):
    with torch.no_grad():
        return model.eval()(torch.tensor(x)).numpy()  # a copy: x may be frozen by our graph


@pytest.mark.parametrize("name", ["mnist_cnn", "unet"])
def test_a_torch_state_dict_loads_with_load_weights(name, tmp_path):
    torch.manual_seed(0)
    theirs = torch_cnn() if name == "mnist_cnn" else _trained_torch_unet()
    ours = mnist_cnn(seed=1) if name == "mnist_cnn" else UNet(**UNET, seed=1)
    path = tmp_path / "torch.safetensors"
    safetensors_torch.save_file(theirs.state_dict(), str(path))
    checkpoint.load_weights(ours, path)
    x = _images((3, 1, 28, 28) if name == "mnist_cnn" else (3, 1, 16, 16))
    difference = np.abs(ours.eval()(Tensor(x)).data - _torch_out(theirs, x)).max()
    assert difference <= 1e-5, f"{name}: max abs difference {difference}"


def test_ours_go_to_torch_and_come_back_bit_for_bit(tmp_path):
    ours = UNet(**UNET, seed=0)
    ours(Tensor(_images((4, 1, 16, 16))))  # training mode: the running statistics move
    path = checkpoint.save(ours, tmp_path / "ours.safetensors")
    theirs = torch_unet(torch, 1, 1, **UNET)
    theirs.load_state_dict(safetensors_torch.load_file(str(path)))  # strict
    x = _images((2, 1, 16, 16), seed=1)
    assert np.abs(ours.eval()(Tensor(x)).data - _torch_out(theirs, x)).max() <= 1e-5
    back = tmp_path / "back.safetensors"
    safetensors_torch.save_file(theirs.state_dict(), str(back))
    again = checkpoint.load_weights(UNet(**UNET, seed=5), back)
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[key], value, err_msg=key)


def test_a_mismatch_names_the_key_and_both_shapes(tmp_path):
    path = tmp_path / "wide.safetensors"
    safetensors_torch.save_file(torch_cnn(hidden=50).state_dict(), str(path))
    model = mnist_cnn(seed=0)
    before = model.state_dict()
    with pytest.raises(ValueError, match=r"'9\.weight' has shape \(50, 400\), the model expects "
                       r"\(100, 400\)"):  # fmt: skip
        checkpoint.load_weights(model, path)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)  # nothing was loaded


def test_evaluate_takes_bare_torch_weights(tmp_path, capsys):
    torch.manual_seed(0)
    path = tmp_path / "torch.safetensors"
    safetensors_torch.save_file(torch_cnn(classes=len(data.SHAPE_CLASSES)).state_dict(), str(path))
    args = ["evaluate", str(path), "--model", "mnist-cnn", "--dataset", "shapes", "--limit", "64"]
    assert main(args) == 0
    assert "mnist-cnn on the shapes test split (64 images): loss " in capsys.readouterr().out
    assert main(args[:4]) == 2  # no --dataset
    assert "--model needs --dataset" in capsys.readouterr().err
