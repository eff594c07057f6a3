"""Untrusted checkpoints: every hostile file is one clear error (exit 2 on the command line),
never a MemoryError, a traceback or gigabytes allocated; and a killed save's temporary file is
cleaned up by the next save. Each bad file is crafted here, byte by byte where needed."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from tinygrad_cnn import checkpoint
from tinygrad_cnn.cli import main
from tinygrad_cnn.models import UNet, mnist_cnn

ROOT = Path(__file__).resolve().parents[1]
META = {"format": "tinygrad_cnn", "format_version": "1"}


def raw_file(path: Path, header: object, data: bytes = b"", length: int | None = None) -> Path:
    """Write a safetensors file by hand: 8-byte length, the JSON header, the data."""
    text = json.dumps(header).encode() if not isinstance(header, bytes) else header
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


def small_unet_file(path: Path, kwargs: dict) -> Path:
    """A real small U-Net's weights (about 170 KB) whose metadata claims `kwargs`."""
    state = UNet(base=4, depth=2, seed=0).state_dict()
    metadata = {**META, "model": "unet", "model_kwargs": json.dumps(kwargs)}
    save_file(state, str(path), metadata=metadata)
    return path


def run_cli(capsys, *args: str) -> tuple[int, str]:
    """(exit status, stderr) of `tinygrad-cnn ARGS`, run in this process."""
    capsys.readouterr()
    status = main(list(args))
    return status, capsys.readouterr().err


def test_metadata_claiming_a_huge_unet_fails_before_allocating(tmp_path):
    path = small_unet_file(tmp_path / "huge.safetensors", {"base": 200, "depth": 5})
    assert path.stat().st_size < 400_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="fewer than the model it describes") as error:
            checkpoint.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20, f"peak {peak / 2**20:.0f} MiB while refusing a 170 KB file"
    message = str(error.value)
    assert "\n" not in message and "'base': 200" in message and str(path) in message


def test_evaluate_with_a_huge_metadata_claim_is_one_line_and_exit_2(tmp_path, capsys):
    path = small_unet_file(tmp_path / "huge.safetensors", {"base": 200, "depth": 5})
    status, stderr = run_cli(capsys, "evaluate", str(path), "--dataset", "shapes", "--limit", "4")
    assert status == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinygrad-cnn evaluate: error: load:"), stderr


def test_a_metadata_claim_close_to_the_file_names_every_mismatch(tmp_path):
    path = small_unet_file(tmp_path / "wide.safetensors", {"base": 4, "depth": 2, "up": "nearest"})
    with pytest.raises(ValueError, match="does not fit the model"):
        checkpoint.load(path)


HOSTILE_HEADERS = {  # name -> (header, data, declared length or None, expected message)
    "bad_json": (b"{not json", b"", None, "its header is not JSON"),
    "not_utf8": (b"\xff\xfe{}", b"", None, "its header is not JSON"),
    "header_is_a_list": ([1, 2, 3], b"", None, "its header is a JSON list, not an object"),
    "huge_header_length": ({}, b"", 2**62, "its header claims 4611686018427387904 bytes"),
    "header_longer_than_file": ({}, b"", 10_000, "its header claims 10000 bytes"),
    "unknown_dtype": (
        {"w": {"dtype": "F128", "shape": [2], "data_offsets": [0, 32]}},
        bytes(32), None, "tensor 'w' has dtype 'F128'"),
    "negative_size": (
        {"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}},
        bytes(8), None, r"tensor 'w' has shape \[-2\]"),
    "shape_of_strings": (
        {"w": {"dtype": "F32", "shape": ["2"], "data_offsets": [0, 8]}},
        bytes(8), None, "tensor 'w' has shape"),
    "offsets_out_of_range": (
        {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
        bytes(4), None, r"data_offsets \[0, 8\] beyond the 4 bytes"),
    "offsets_huge": (
        {"w": {"dtype": "F32", "shape": [2**40], "data_offsets": [0, 2**42]}},
        bytes(8), None, "beyond the 8 bytes of data"),
    "offsets_reversed": (
        {"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}},
        bytes(8), None, "not \\[begin, end\\]"),
    "shape_not_matching_bytes": (
        {"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}},
        bytes(8), None, r"needs 12 bytes, its data_offsets \[0, 8\] span 8"),
    "overlapping_tensors": (
        {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
         "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
        bytes(12), None, "tensor 'b' starts at byte 4, expected 8"),
    "bytes_left_over": (
        {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
        bytes(8), None, "its tensors fill 4 bytes of data, the file holds 8"),
    "metadata_not_strings": (
        {"__metadata__": {"format": 1}}, b"", None, "__metadata__ is not an object of strings"),
    "entry_missing_fields": ({"w": {"dtype": "F32"}}, b"", None, "tensor 'w' is not"),
    "too_short": (b"", b"", -1, "shorter than the 8-byte header length"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(HOSTILE_HEADERS))
def test_hostile_header_is_one_clear_valueerror(tmp_path, case):
    header, data, length, message = HOSTILE_HEADERS[case]
    path = tmp_path / f"{case}.safetensors"
    if length == -1:
        path.write_bytes(b"\x01\x02")
    else:
        raw_file(path, header, data, length)
    for read in (checkpoint.load, checkpoint.read_metadata):
        with pytest.raises(ValueError, match=message) as error:
            read(path)
        assert "\n" not in str(error.value) and str(path) in str(error.value)
    with pytest.raises(ValueError, match=message):
        checkpoint.load_weights(mnist_cnn(seed=0), path)


def model_file(path: Path, **metadata: str) -> Path:
    """mnist-cnn's real weights under the given (possibly hostile) metadata."""
    save_file(mnist_cnn(seed=0).state_dict(), str(path), metadata={**META, **metadata})
    return path


HOSTILE_METADATA = {  # name -> (metadata, expected message)
    "wrong_model_name": ({"model": "resnet-1000"}, "'resnet-1000', which is not registered"),
    "kwargs_a_list": (
        {"model": "mnist-cnn", "model_kwargs": "[1, 2]"}, "'model_kwargs': a JSON list"),
    "kwargs_a_string_size": (
        {"model": "mnist-cnn", "model_kwargs": '{"num_classes": "10"}'}, "does not build a model"),
    "kwargs_unknown_argument": (
        {"model": "mnist-cnn", "model_kwargs": '{"layers": 1000}'}, "does not build a model"),
    "kwargs_huge_number": (
        {"model": "unet", "model_kwargs": '{"base": 1e300}'}, r"model_kwargs base=1e\+300"),
    "kwargs_nested": (
        {"model": "unet", "model_kwargs": '{"base": {"a": [1]}}'}, "model_kwargs base="),
    "kwargs_negative": (
        {"model": "unet", "model_kwargs": '{"depth": -5}'}, "does not build a model"),
    "history_an_object": (
        {"model": "mnist-cnn", "history": '{"a": 1}'}, "'history': a JSON dict"),
    "format_version_text": (
        {"model": "mnist-cnn", "format_version": "one"}, "corrupted format_version 'one'"),
    "deep_json": (
        {"model": "mnist-cnn", "metadata": "[" * 100_000 + "]" * 100_000},
        "corrupted metadata 'metadata'"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(HOSTILE_METADATA))
def test_hostile_metadata_is_one_clear_valueerror(tmp_path, case):
    metadata, message = HOSTILE_METADATA[case]
    path = model_file(tmp_path / f"{case}.safetensors", **metadata)
    with pytest.raises(ValueError, match=message) as error:
        checkpoint.load(path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("case", ["bad_json", "huge_header_length", "offsets_out_of_range"])
def test_evaluate_and_predict_on_a_hostile_file_exit_2_with_one_line(tmp_path, capsys, case):
    header, data, length, _ = HOSTILE_HEADERS[case]
    path = raw_file(tmp_path / "bad.safetensors", header, data, length)
    for command in ("evaluate", "predict"):
        status, stderr = run_cli(capsys, command, str(path))
        assert status == 2, (command, stderr)
        assert len(stderr.strip().splitlines()) == 1 and str(path) in stderr, stderr


def test_no_pickle_is_ever_used_to_read(tmp_path):
    for module in ("checkpoint.py", "safetensors_header.py"):
        source = (ROOT / "tinygrad_cnn" / module).read_text()
        assert "import pickle" not in source and "allow_pickle" not in source


# --- a killed save's temporary file --------------------------------------------------------


def test_a_killed_saves_temporary_file_is_removed_by_the_next_save(tmp_path):
    target = tmp_path / "model.safetensors"
    script = (
        "import os, sys, signal, tempfile\n"
        "from pathlib import Path\n"
        "from tinygrad_cnn import checkpoint\n"
        "from tinygrad_cnn.models import mnist_cnn\n"
        "real_replace = os.replace\n"
        "def killed(*args):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)  # dies between write and rename\n"
        "os.replace = killed\n"
        f"checkpoint.save(mnist_cnn(seed=0), Path({str(target)!r}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", script], env=env, timeout=120)
    assert result.returncode == -9
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".model.safetensors."), leftovers
    assert not target.exists()
    checkpoint.save(mnist_cnn(seed=1), target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
    assert checkpoint.load(target).config["name"] == "mnist-cnn"


def test_a_live_processes_temporary_file_is_left_alone(tmp_path):
    target = tmp_path / "model.safetensors"
    mine = tmp_path / f".model.safetensors.{os.getpid()}.abc.tmp"  # another thread's save
    parent = tmp_path / f".model.safetensors.{os.getppid()}.abc.tmp"  # a live process's
    other = tmp_path / ".other.safetensors.999999999.abc.tmp"  # another file's: not ours
    for path in (mine, parent, other):
        path.write_bytes(b"partial")
    checkpoint.save(mnist_cnn(seed=0), target)
    assert mine.exists() and parent.exists() and other.exists()
    np.testing.assert_array_equal(
        checkpoint.load(target).state_dict()["0.weight"], mnist_cnn(seed=0).state_dict()["0.weight"]
    )
