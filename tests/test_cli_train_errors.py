"""train / demo / evaluate / lr-find refuse bad settings and bad outputs before any work, and
a run that diverges stops with one line and leaves no half-written folder."""

import pytest

from tinygrad_cnn import checkpoint
from tinygrad_cnn.cli import main
from tinygrad_cnn.models import mnist_cnn

TINY = ["--train-size", "64", "--test-size", "32", "--batch-size", "32", "--epochs", "1"]


def _run(capsys, *args):
    code = main([str(arg) for arg in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0"])
def test_a_non_finite_or_non_positive_lr_exits_2_with_one_line(capsys, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--lr", value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    reason = "must be finite" if value in ("inf", "nan") else "must be > 0"
    assert err[-1].endswith(f"argument --lr: {reason}, got {value}")


def test_a_diverging_run_stops_with_one_line_and_leaves_no_folder(capsys, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = _run(capsys, "demo", *TINY, "--lr", "1e30", "--out", out)
    assert code != 0
    assert err.strip().count("\n") == 0  # one line
    assert "loss became" in err and "at epoch 1, step" in err and "nothing was saved" in err
    assert "accuracy" not in stdout.split("training:")[-1]  # no figure from nan logits
    assert not out.exists()


def test_a_run_diverging_after_an_epoch_names_its_last_finite_checkpoint(capsys, tmp_path):
    out = tmp_path / "run"
    code, _, err = _run(capsys, "demo", *TINY, "--epochs", "3", "--lr", "1e30",
                        "--optimizer", "sgd", "--momentum", "0", "--out", out)  # fmt: skip
    assert code != 0 and "loss became" in err
    if "epoch 1, step" in err:  # diverged in the first epoch: nothing on disk
        assert not out.exists()
    else:
        assert f"the last finite checkpoint is {out / 'model.safetensors'}" in err
        assert (out / "history.json").exists()


@pytest.mark.parametrize("where", ["file", "under-file", "unwritable"])
def test_a_bad_out_is_found_before_training(capsys, tmp_path, where):
    a_file = tmp_path / "a.txt"
    a_file.write_text("keep me")
    out = {"file": a_file, "under-file": a_file / "run", "unwritable": "/proc/run"}[where]
    for command in (["demo", *TINY], ["train", "--dataset", "shapes", "--limit", "64"],
                    ["lr-find", "--dataset", "shapes", "--limit", "64"]):  # fmt: skip
        code, stdout, err = _run(capsys, *command, "--out", out)
        assert code == 2, (command, err)
        assert err.count("\n") == 1 and f"--out {out}" in err
        assert "epoch" not in stdout  # refused before training
    assert a_file.read_text() == "keep me"


def test_evaluate_refuses_a_checkpoint_with_another_class_count(capsys, tmp_path):
    path = checkpoint.save(mnist_cnn(num_classes=10, seed=0), tmp_path / "m.safetensors",
                           {"dataset": "mnist"})  # fmt: skip
    code, stdout, err = _run(capsys, "evaluate", path, "--dataset", "shapes", "--limit", "32")
    assert code == 2
    assert "predicts 10 classes, but shapes has 5" in err and "trained on mnist" in err
    assert "accuracy" not in stdout
    code, _, err = _run(capsys, "evaluate", path, "--plots", tmp_path / "m.safetensors")
    assert code == 2 and "--plots" in err


def test_train_detect_anomaly_stops_at_the_first_nan_naming_its_op(capsys, tmp_path):
    code, _, err = _run(capsys, "demo", *TINY, "--lr", "1e30", "--detect-anomaly",
                        "--out", tmp_path / "run")  # fmt: skip
    assert code == 2 and err.count("\n") == 1
    assert "produced" in err and ("nan" in err or "inf" in err)
