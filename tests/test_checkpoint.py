"""Checkpoints: round trip, PyTorch compatibility, atomic writes, clear errors on bad files."""

import json
import os

import numpy as np
import pytest
from safetensors.numpy import save_file

from tinygrad_cnn import Tensor, checkpoint, files
from tinygrad_cnn.models import mnist_cnn

HISTORY = [{"epoch": 1, "loss": 0.5, "accuracy": 0.8}, {"epoch": 2, "loss": 0.3, "accuracy": 0.9}]


def _images(n=4, seed=0):
    return np.random.default_rng(seed).random((n, 1, 28, 28), dtype=np.float32)


def test_round_trip_rebuilds_the_model_with_the_same_weights_and_logits(tmp_path):
    model = mnist_cnn(num_classes=5, seed=1).eval()
    path = checkpoint.save(
        model,
        tmp_path / "run" / "model.safetensors",
        {"dataset": "shapes", "test_accuracy": np.float32(0.97)},
        HISTORY,
    )
    loaded = checkpoint.load(path)
    assert loaded.config == model.config and loaded.training is False
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    x = Tensor(_images())
    np.testing.assert_array_equal(loaded(x).data, model(x).data)
    info = checkpoint.read_metadata(path)
    assert info["format_version"] == checkpoint.FORMAT_VERSION
    assert info["model"] == "mnist-cnn"
    assert info["model_kwargs"] == {"in_channels": 1, "num_classes": 5, "image_size": 28}
    assert info["history"] == HISTORY
    assert info["history_summary"] == {"epoch": 2, "loss": 0.3, "accuracy": 0.9, "epochs": 2}
    assert info["metadata"]["dataset"] == "shapes"
    assert info["metadata"]["test_accuracy"] == pytest.approx(0.97)
    assert loaded.checkpoint == info


def test_load_weights_into_an_existing_model(tmp_path):
    path = checkpoint.save(mnist_cnn(seed=1), tmp_path / "m.safetensors")
    target = checkpoint.load_weights(mnist_cnn(seed=2), path)
    np.testing.assert_array_equal(target[0].weight.data, mnist_cnn(seed=1)[0].weight.data)


def test_a_checkpoint_loads_into_the_equivalent_torch_sequential(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    tnn = torch.nn
    model = mnist_cnn(seed=0).eval()
    path = checkpoint.save(model, tmp_path / "model.safetensors")
    reference = tnn.Sequential(
        tnn.Conv2d(1, 8, 3), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Dropout(0.2),
        tnn.Conv2d(8, 16, 3), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Dropout(0.2),
        tnn.Flatten(), tnn.Linear(400, 100), tnn.ReLU(), tnn.Dropout(0.5), tnn.Linear(100, 10),
    ).eval()  # fmt: skip
    reference.load_state_dict(load_file(path))  # strict: every key and shape must match
    x = _images(8)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(Tensor(x)).data, expected, rtol=1e-4, atol=1e-5)


def test_a_failed_write_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    path = checkpoint.save(mnist_cnn(seed=1), tmp_path / "model.safetensors", {"v": 1})
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk unplugged")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk unplugged"):
        checkpoint.save(mnist_cnn(seed=2), path, {"v": 2})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.safetensors"]  # the temporary file was removed
    monkeypatch.undo()
    assert checkpoint.read_metadata(path)["metadata"] == {"v": 1}


def test_a_crash_while_writing_the_bytes_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    path = checkpoint.save(mnist_cnn(seed=1), tmp_path / "model.safetensors")
    before = path.read_bytes()
    real_fsync = os.fsync

    def interrupted_fsync(descriptor):
        raise KeyboardInterrupt  # Ctrl-C after half the work

    monkeypatch.setattr(os, "fsync", interrupted_fsync)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(mnist_cnn(seed=2), path)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.safetensors"]


def test_truncated_and_corrupted_files_are_clear_errors(tmp_path):
    path = checkpoint.save(mnist_cnn(seed=0), tmp_path / "model.safetensors")
    raw = path.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(
        ValueError,
        match=r"load: .*truncated\.safetensors is not a valid "
        r"safetensors file .*truncated or corrupted",
    ):
        checkpoint.load(truncated)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01not a checkpoint" * 10)
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        checkpoint.load(garbage)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="0 bytes"):
        checkpoint.read_metadata(empty)
    with pytest.raises(FileNotFoundError, match="no checkpoint file at"):
        checkpoint.load(tmp_path / "missing.safetensors")


def test_a_safetensors_file_from_elsewhere_is_rejected(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"0.weight": np.zeros((8, 1, 3, 3), np.float32)}, str(path))
    with pytest.raises(ValueError, match="not a tinygrad_cnn checkpoint"):
        checkpoint.load(path)


def test_corrupted_metadata_and_unknown_models_are_named(tmp_path):
    state = mnist_cnn(seed=0).state_dict()
    meta = {
        "format": "tinygrad_cnn",
        "format_version": "1",
        "model": "resnet-1000",
        "model_kwargs": "{}",
    }
    save_file(state, str(tmp_path / "unknown.safetensors"), metadata=meta)
    with pytest.raises(ValueError, match="'resnet-1000', which is not registered; known: "):
        checkpoint.load(tmp_path / "unknown.safetensors")
    save_file(
        state,
        str(tmp_path / "bad.safetensors"),
        metadata={**meta, "model": "mnist-cnn", "model_kwargs": "{not json"},
    )
    with pytest.raises(ValueError, match="corrupted metadata 'model_kwargs'"):
        checkpoint.load(tmp_path / "bad.safetensors")
    save_file(state, str(tmp_path / "future.safetensors"), metadata={**meta, "format_version": "9"})
    with pytest.raises(ValueError, match="format version 9"):
        checkpoint.load(tmp_path / "future.safetensors")


def test_weights_that_do_not_fit_name_every_key_shape_and_dtype(tmp_path):
    state = mnist_cnn(seed=0).state_dict()
    meta = {
        "format": "tinygrad_cnn",
        "format_version": "1",
        "model": "mnist-cnn",
        "model_kwargs": json.dumps({"num_classes": 10}),
    }
    wrong = dict(state)
    del wrong["12.bias"]
    wrong["extra"] = np.zeros(3, np.float32)
    wrong["9.weight"] = np.zeros((100, 401), np.float32)
    wrong["0.bias"] = state["0.bias"].astype(np.float64)
    save_file(wrong, str(tmp_path / "wrong.safetensors"), metadata=meta)
    with pytest.raises(ValueError) as error:
        checkpoint.load(tmp_path / "wrong.safetensors")
    message = str(error.value)
    assert "missing keys ['12.bias']" in message and "unexpected keys ['extra']" in message
    assert "'9.weight' has shape (100, 401), the model expects (100, 400)" in message
    assert "'0.bias' has dtype float64, the model expects float32" in message
    # load_weights into a model of another size: nothing changes
    path = checkpoint.save(mnist_cnn(seed=0), tmp_path / "ten.safetensors")
    five = mnist_cnn(num_classes=5, seed=1)
    before = five[12].weight.data.copy()
    with pytest.raises(
        ValueError,
        match=r"'12.weight' has shape \(10, 100\), the model "
        r"expects \(5, 100\)",
    ):
        checkpoint.load_weights(five, path)
    np.testing.assert_array_equal(five[12].weight.data, before)


def test_metadata_must_be_json(tmp_path):
    with pytest.raises(TypeError, match="save: metadata must be JSON-serialisable"):
        checkpoint.save(mnist_cnn(seed=0), tmp_path / "m.safetensors", {"bad": object()})
    assert not (tmp_path / "m.safetensors").exists()


def test_no_pickle_anywhere_in_the_checkpoint_code():
    for module in (checkpoint, files):
        source = open(module.__file__).read()
        assert "import pickle" not in source and "allow_pickle" not in source


def test_build_model_and_registry():
    model = checkpoint.build_model("mnist-cnn", num_classes=3)
    assert model.config["kwargs"]["num_classes"] == 3
    with pytest.raises(ValueError, match="build_model: unknown model 'nope'; known: mnist-cnn"):
        checkpoint.build_model("nope")
