"""ONNX export: the file passes onnx.checker and onnxruntime computes what our model computes."""

import sys

import numpy as np
import pytest

from tinygrad_cnn import Tensor, checkpoint, nn, no_grad
from tinygrad_cnn.cli import main
from tinygrad_cnn.models import UNet, lenet, mnist_cnn
from tinygrad_cnn.tensor import Function

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from tinygrad_cnn import onnx as onnx_export  # noqa: E402


def _trained_batchnorm(model, shape):
    """Move BatchNorm's running statistics away from 0 and 1, so eval mode is really tested."""
    model.train()
    model(Tensor(np.random.default_rng(1).normal(0.5, 2.0, shape).astype(np.float32)))
    return model.eval()


def _max_difference(model, path, example_shape, batch):
    """Export with a batch of example_shape[0], run both at another batch size."""
    rng = np.random.default_rng(0)
    onnx_export.export(model, rng.standard_normal(example_shape).astype(np.float32), path)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    x = rng.standard_normal((batch, *example_shape[1:])).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x})
    expected = model.eval()(Tensor(x)).data
    assert got.shape == expected.shape
    return float(np.abs(got - expected).max())


MODELS = {
    "mnist_cnn": (lambda: mnist_cnn(seed=0), (2, 1, 28, 28)),
    "lenet": (lambda: lenet(seed=0), (2, 1, 28, 28)),
    "unet_same_bn": (
        lambda: _trained_batchnorm(UNet(base=4, depth=2, seed=0), (4, 1, 16, 16)),
        (2, 1, 16, 16),
    ),
    "unet_valid": (
        lambda: UNet(base=4, depth=2, padding="valid", batchnorm=False, seed=0),
        (2, 1, 44, 44),
    ),  # fmt: skip
    "unet_nearest": (
        lambda: UNet(base=4, depth=2, up="nearest", num_classes=3, seed=0),
        (2, 1, 16, 16),
    ),  # fmt: skip
}


@pytest.mark.parametrize("name", MODELS)
def test_onnxruntime_matches_our_model_at_another_batch_size(name, tmp_path):
    build, shape = MODELS[name]
    difference = _max_difference(build(), tmp_path / f"{name}.onnx", shape, batch=5)
    assert difference <= 1e-4, f"{name}: max abs difference {difference}"


def test_every_layer_option_round_trips(tmp_path):
    """Keras 'same' at stride 2 (asymmetric pads), dilation, groups, pooling with padding,
    a transposed conv with output_padding, the other activations and a final softmax."""

    class Everything(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 6, 3, stride=2, padding="same", groups=2)
            self.dilated = nn.Conv2d(6, 6, 3, padding=2, dilation=2, bias=False)
            self.avg_same = nn.AvgPool2d(3, stride=2, padding="same")
            self.max_pad = nn.MaxPool2d(3, stride=2, padding=1)
            self.avg_pad = nn.AvgPool2d(2, padding=1)
            self.up = nn.ConvTranspose2d(6, 3, 3, stride=2, padding=1, output_padding=1)
            self.bn = nn.BatchNorm2d(3)
            self.drop = nn.Dropout(0.5)

        def forward(self, x):
            x = self.avg_same(self.conv(x).sigmoid())
            x = self.max_pad(self.dilated(x).tanh())
            x = self.drop(self.bn(self.up(self.avg_pad(x))))
            x = x[:, 1:, ::2, -3:] * 2.0 - x[:, :2, 1::2, :3] ** 2  # Slice, Mul, Sub, Pow
            return (nn.Flatten()(x) / 3.0).exp().log().softmax(axis=-1)

    model = _trained_batchnorm(Everything(), (4, 4, 13, 11))
    assert _max_difference(model, tmp_path / "all.onnx", (2, 4, 13, 11), batch=3) <= 1e-5


def test_the_file_reads_like_the_model(tmp_path):
    path = onnx_export.export(mnist_cnn(seed=0), np.zeros((1, 1, 28, 28)), tmp_path / "m.onnx")
    graph = onnx.load(path).graph
    ops = [node.op_type for node in graph.node]
    assert ops == ["Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Reshape", "Gemm",
                   "Relu", "Gemm"]  # fmt: skip
    assert {"0.weight", "0.bias", "4.weight", "12.bias"} <= {t.name for t in graph.initializer}
    batch = graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "batch"
    fixed = onnx_export.to_onnx(mnist_cnn(seed=0), np.zeros((2, 1, 28, 28)), dynamic_batch=False)
    assert fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 2


def test_export_leaves_the_model_as_it_was(tmp_path):
    model = UNet(base=2, depth=1, seed=0)  # training mode
    with no_grad():  # the trace records a graph all the same
        onnx_export.export(model, np.zeros((1, 1, 4, 4)), tmp_path / "u.onnx")
    assert all(module.training for module in model.modules())
    assert all(p.data.flags.writeable for p in model.parameters())  # the graph is released


class _TwiceFn(Function):
    name = "twice"

    def forward(self, x):
        return 2 * x

    def backward(self, grad):
        return 2 * grad


class Doubler(nn.Module):
    def forward(self, x):
        return _TwiceFn.apply(x)


def test_an_op_without_translation_is_refused_by_name(tmp_path):
    model = nn.Sequential(nn.Linear(3, 3), Doubler())
    with pytest.raises(ValueError, match=r"layer '1' \(Doubler\) uses the op 'twice'"):
        onnx_export.export(model, np.zeros((1, 3)), tmp_path / "d.onnx")
    assert not (tmp_path / "d.onnx").exists()


def test_missing_onnx_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'tinygrad_cnn\[onnx\]'"):
        onnx_export.export(mnist_cnn(), np.zeros((1, 1, 28, 28)), tmp_path / "m.onnx")


def test_cli_exports_a_checkpoint(tmp_path, capsys):
    model = UNet(base=2, depth=2, num_classes=1, seed=0)
    saved = checkpoint.save(model, tmp_path / "unet.safetensors", {"dataset": "shapes-seg"})
    assert main(["export", str(saved), "--onnx", str(tmp_path / "unet.onnx")]) == 0
    assert "input (batch=any, 1, 64, 64)" in capsys.readouterr().out
    session = ort.InferenceSession(str(tmp_path / "unet.onnx"))
    x = np.random.default_rng(0).standard_normal((3, 1, 64, 64)).astype(np.float32)
    expected = checkpoint.load(saved)(Tensor(x)).data
    np.testing.assert_allclose(session.run(None, {"input": x})[0], expected, atol=1e-5)
    unknown = checkpoint.save(model, tmp_path / "bare.safetensors")
    assert main(["export", str(unknown), "--onnx", str(tmp_path / "b.onnx")]) == 2
    assert "pass --input-shape C,H,W" in capsys.readouterr().err
    args = ["export", str(unknown), "--onnx", str(tmp_path / "b.onnx"), "--input-shape", "1,8,8"]
    assert main(args) == 0
