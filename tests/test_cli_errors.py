"""The command line and the file system: an output path that cannot be written (a folder, a
path under a file, a place nobody may write, a full device) is one line naming the path and
exit status 2, never a traceback; and nothing but the named file is ever touched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinygrad_cnn import checkpoint
from tinygrad_cnn.cli import main
from tinygrad_cnn.cli.runs import build

ROOT = Path(__file__).resolve().parents[1]
linux_only = pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux /proc")


def run_cli(capsys, *args: str) -> tuple[int, str]:
    """(exit status, stderr) of `tinygrad-cnn ARGS`, run in this process."""
    capsys.readouterr()
    status = main([str(a) for a in args])
    return status, capsys.readouterr().err


def assert_one_line_naming(status: int, stderr: str, command: str, path: Path | str) -> None:
    assert status == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"tinygrad-cnn {command}: error: "), stderr
    assert str(path) in lines[0], stderr


def test_graph_out_at_an_existing_folder(tmp_path, capsys):
    folder = tmp_path / "net.svg"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    status, stderr = run_cli(capsys, "graph", "--example", "micrograd", "--out", folder)
    assert_one_line_naming(status, stderr, "graph", folder)
    assert "is a folder" in stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["keep.txt", "net.svg"]


def test_graph_out_under_a_file(tmp_path, capsys):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    status, stderr = run_cli(
        capsys, "graph", "--example", "micrograd", "--out", blocker / "net.svg"
    )
    assert_one_line_naming(status, stderr, "graph", blocker)
    assert "is a file, so it cannot be a folder" in stderr
    assert blocker.read_text() == "mine"


@linux_only
def test_graph_out_where_nothing_can_be_written(capsys):
    target = Path("/proc/tinygrad-cnn-test/net.dot")  # no one, not even root, makes files here
    status, stderr = run_cli(capsys, "graph", "--example", "micrograd", "--out", target)
    assert_one_line_naming(status, stderr, "graph", "/proc/tinygrad-cnn-test")


def test_graph_out_in_a_missing_folder_makes_it(tmp_path, capsys):
    target = tmp_path / "new" / "folder" / "net.dot"
    status, _ = run_cli(capsys, "graph", "--example", "micrograd", "--out", target)
    assert status == 0 and target.read_text().startswith("digraph")


def test_explain_graph_at_an_existing_folder(tmp_path, capsys):
    folder = tmp_path / "backward.svg"
    folder.mkdir()
    status, stderr = run_cli(capsys, "explain", "backward", "--graph", folder)
    assert_one_line_naming(status, stderr, "explain", folder)


def test_predict_out_at_a_folder_and_under_a_file(tmp_path, capsys):
    model = build("unet", "shapes-seg", seed=0)
    path = checkpoint.save(model, tmp_path / "unet.safetensors", {"dataset": "shapes-seg"})
    folder = tmp_path / "predict.png"
    folder.mkdir()
    status, stderr = run_cli(capsys, "predict", path, "--count", "2", "--out", folder)
    assert_one_line_naming(status, stderr, "predict", folder)
    status, stderr = run_cli(capsys, "predict", path, "--count", "2", "--out", path / "p.png")
    assert_one_line_naming(status, stderr, "predict", path)
    assert checkpoint.load(path).config["name"] == "unet"  # the file in the way is untouched


def test_a_checkpoint_argument_that_is_a_folder(tmp_path, capsys):
    status, stderr = run_cli(capsys, "evaluate", tmp_path)
    assert_one_line_naming(status, stderr, "evaluate", tmp_path)


@linux_only
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_summary_to_a_full_device_is_one_line_and_exit_2():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "tinygrad_cnn", "summary"],
            stdout=full, stderr=subprocess.PIPE, text=True, env=env, timeout=120,
        )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "tinygrad-cnn summary: error: No space left on device"
    ], result.stderr


@linux_only
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_write_atomically_to_a_full_device_names_it_and_leaves_the_device():
    with pytest.raises(OSError, match="No space left on device") as error:
        checkpoint.write_atomically("/dev/full", b"x" * 100_000)
    assert error.value.filename == "/dev/full"
    assert Path("/dev/full").is_char_device()  # written through, never replaced by a file


def test_write_atomically_names_the_target_not_its_temporary(tmp_path):
    with pytest.raises(OSError) as error:
        checkpoint.write_atomically(tmp_path / "missing" / "model.safetensors", b"x")
    assert error.value.filename == str(tmp_path / "missing" / "model.safetensors")
    assert list(tmp_path.iterdir()) == []
