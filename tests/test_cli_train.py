"""`tinygrad-cnn demo | train | evaluate | summary` in a subprocess, on tiny settings."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tinygrad_cnn import checkpoint

ROOT = Path(__file__).resolve().parents[1]
RUN_FILES = [
    "model.safetensors",
    "history.json",
    "history.csv",
    "results.json",
    "curves.png",
    "confusion_matrix.png",
    "misclassified.png",
    "filters.png",
    "feature_maps.png",
]


def _env():
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="120")
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def _strict_json(path):
    def refuse(word):
        raise ValueError(f"{path} is not strict JSON: {word}")

    return json.loads(path.read_text(), parse_constant=refuse)


def _cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "tinygrad_cnn", *map(str, args)], cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=timeout)  # fmt: skip


def test_train_writes_a_run_folder_that_evaluate_reads(tmp_path):
    out = tmp_path / "run"
    result = _cli("train", "--dataset", "shapes", "--epochs", "1", "--limit", "512",
                  "--batch-size", "64", "--lr", "3e-3", "--out", out)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(RUN_FILES) == sorted(path.name for path in out.iterdir())
    text = result.stdout
    assert "Total params: 41,853" in text and "5·(100+1) = 505" in text  # the summary
    assert "epoch 1/1  loss " in text and "test loss " in text
    for name in RUN_FILES:
        assert str(out / name) in text  # every file it wrote is named
    results = _strict_json(out / "results.json")
    _strict_json(out / "history.json")  # no bare NaN / Infinity anywhere
    assert results["model"] == "mnist-cnn" and results["dataset"] == "shapes"
    assert results["test"]["test_images"] == 512 and 0 <= results["test"]["accuracy"] <= 1
    assert len(json.loads((out / "history.json").read_text())["epochs"]) == 1
    info = checkpoint.read_metadata(out / "model.safetensors")
    assert info["metadata"]["test"]["accuracy"] == results["test"]["accuracy"]

    plots = tmp_path / "plots"
    evaluated = _cli("evaluate", out / "model.safetensors", "--limit", "512", "--plots", plots)
    assert evaluated.returncode == 0, evaluated.stderr
    accuracy = f"accuracy {100 * results['test']['accuracy']:.2f}%"
    assert "mnist-cnn on the shapes test split (512 images)" in evaluated.stdout
    assert accuracy in evaluated.stdout  # the same test set, the same figure
    assert (plots / "confusion_matrix.png").exists() and (plots / "curves.png").exists()


def test_demo_trains_on_generated_shapes_and_says_what_next(tmp_path):
    out = tmp_path / "demo"
    result = _cli("demo", "--train-size", "512", "--test-size", "128", "--epochs", "1",
                  "--out", out)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "circle, square, triangle" in result.stdout and "no download" in result.stdout
    assert "Total params: 41,853" in result.stdout and "test loss" in result.stdout
    assert f"run folder: {out}" in result.stdout
    assert "tinygrad-cnn train --model mnist-cnn --dataset mnist" in result.stdout
    assert sorted(RUN_FILES) == sorted(path.name for path in out.iterdir())


def test_summary_prints_the_formulas():
    result = _cli("summary", "--model", "mnist-cnn")
    assert result.returncode == 0, result.stderr
    assert "Total params: 42,358" in result.stdout
    assert "8·(1·3·3+1) = 80" in result.stdout and "100·(400+1) = 40,100" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["train", "--epochs", "0"], "argument --epochs: must be > 0, got 0"),
    (["train", "--dataset", "cifar"], "argument --dataset: invalid choice: 'cifar'"),
    (["train", "--lr", "fast"], "argument --lr: expected a float, got 'fast'"),
    (["evaluate", "missing.safetensors"], "evaluate: error: load: no checkpoint file at"),
])  # fmt: skip
def test_bad_arguments_are_one_line_errors_with_exit_code_2(args, message):
    result = _cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]  # after argparse's usage lines


def test_evaluate_names_a_corrupted_checkpoint(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    result = _cli("evaluate", bad, "--dataset", "shapes")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is not a valid safetensors file" in result.stderr


def test_ctrl_c_saves_the_last_finished_epoch_and_exits_cleanly(tmp_path):
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "tinygrad_cnn",
        "train",
        "--dataset",
        "shapes",
        "--limit",
        "256",
        "--batch-size",
        "16",
        "--epochs",
        "200",
        "--out",
        str(out),
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        for line in process.stdout:  # plain lines: stdout is a pipe
            if line.startswith("epoch 1/200"):
                break
        time.sleep(0.3)  # into epoch 2
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "stopped: the checkpoint holds epoch" in stdout
    info = checkpoint.read_metadata(out / "model.safetensors")
    assert 1 <= len(info["history"]) < 200
    assert json.loads((out / "history.json").read_text())["interrupted"] is True
    assert checkpoint.load(out / "model.safetensors").config["name"] == "mnist-cnn"


@pytest.mark.skipif(
    not os.environ.get("TINYGRAD_CNN_DATA"),
    reason="set TINYGRAD_CNN_DATA to a folder holding mnist/ to run this",
)
def test_train_on_real_mnist_subset(tmp_path):
    out = tmp_path / "mnist"
    result = _cli("train", "--dataset", "mnist", "--epochs", "1", "--limit", "512",
                  "--out", out)  # fmt: skip
    assert result.returncode == 0, result.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"] == "mnist" and results["test"]["test_images"] == 512


def test_watch_schedule_augment_early_stop_lr_find_and_runs_from_the_shell(tmp_path, capsys):
    from tinygrad_cnn.cli import main

    tiny = ["--train-size", "128", "--test-size", "64", "--batch-size", "32", "--lr", "3e-3"]
    runs = tmp_path / "runs"
    assert main(["demo", *tiny, "--epochs", "2", "--watch", "2", "--schedule", "cosine",
                 "--augment", "shift", "--early-stop", "1",
                 "--out", str(runs / "a")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "0 Conv2d  grad " in out and "update/weight" in out  # plain health lines (no tty)
    header = (runs / "a" / "layers.csv").read_text().splitlines()[0]
    assert "grad_norm" in header and "update_ratio" in header
    assert (runs / "a" / "layers.png").stat().st_size > 10_000
    results = _strict_json(runs / "a" / "results.json")
    assert results["schedule"] == "cosine" and results["augment"] == "shift"
    assert main(["demo", *tiny, "--epochs", "1", "--out", str(runs / "b")]) == 0

    assert main(["lr-find", "--dataset", "shapes", "--limit", "128", "--batch-size", "32",
                 "--steps", "20", "--start", "1e-4", "--end", "1", "--out",
                 str(tmp_path / "lr.png")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "suggested learning rate" in out and "(steepest descent of the smoothed loss)" in out
    assert (tmp_path / "lr.png").exists() and (tmp_path / "lr.csv").exists()

    assert main(["runs", "list", "--root", str(runs)]) == 0
    table = capsys.readouterr().out
    assert "a " in table and "mnist-cnn" in table and "shapes" in table and "2/2" in table
    assert main(["runs", "compare", str(runs / "a"), str(runs / "b"),
                 "--out", str(tmp_path / "cmp.png")]) == 0  # fmt: skip
    labels = capsys.readouterr().out
    assert "epochs=2" in labels and "schedule=cosine" in labels and "augment=shift" in labels
    assert (tmp_path / "cmp.png").exists()
    assert main(["runs", "layers", str(runs / "a"), "--out", str(tmp_path / "l.png")]) == 0
