"""The benchmark harness works and compares like with like (never asserts a time)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks import harness, steps  # noqa: E402
from benchmarks.harness import Case  # noqa: E402


def test_run_case_reports_medians_and_paired_ratio():
    calls = {"ours": 0, "torch": 0, "check": 0}
    case = Case(
        "tiny",
        ours=lambda: calls.__setitem__("ours", calls["ours"] + 1),
        torch=lambda: calls.__setitem__("torch", calls["torch"] + 1),
        check=lambda: calls.__setitem__("check", calls["check"] + 1),
        target=1e9,
        rounds=3,
        warmup=1,
    )
    result = harness.run_case(case, rounds=99)  # the case's own rounds win
    # first call + warm-up + 3 rounds of (untimed settling call, timed call)
    assert result.rounds == 3 and calls == {"ours": 1 + 1 + 2 * 3, "torch": 1 + 2 * 3, "check": 1}
    assert result.ours_ms >= 0 and result.torch_ms >= 0 and result.ratio is not None
    assert result.passed is True


def test_a_failing_check_stops_the_case():
    def check():
        raise AssertionError("disagree")

    with pytest.raises(AssertionError, match="disagree"):
        harness.run_case(Case("bad", lambda: None, lambda: None, check), rounds=1, warmup=0)


def test_first_step_losses_of_both_frameworks_agree():
    for case in (steps.lenet_case(batch=4), steps.unet_case(size=16, batch=2)):
        case.check()  # raises if the losses or the updated weights differ
        losses = case.info["first_step_loss"]
        assert losses["ours"] == pytest.approx(losses["torch"], rel=1e-4)


def test_course_cnn_step_with_adam_and_dropout_agrees():
    case = steps.mnist_cnn_case(batch=8)
    case.check()
    case.ours(), case.torch()  # after the check, both still train (dropout on)
    case.check()


def test_quick_run_writes_json(tmp_path):
    cases = [steps.lenet_case(batch=4), steps.matmul_case(64)]
    results = harness.run_cases(cases, rounds=2, warmup=1, verbose=False)
    path = tmp_path / "out.json"
    harness.write_json(str(path), results, {"benchmark": "test"})
    payload = json.loads(path.read_text())
    assert [r["name"] for r in payload["results"]] == [c.name for c in cases]
    assert payload["settings"]["threads"]["torch.get_num_threads"] == harness.THREADS
    assert all(np.isfinite(r["ratio"]) for r in payload["results"])


def test_memory_growth_report():
    from benchmarks import memory

    growth = memory.growth(steps=10)
    assert growth["steps"] == 10 and growth["from_step"] == 1 and "growth_mb" in growth


def test_recipe_summary_and_seed_ranges():
    from benchmarks import recipe

    assert recipe._parse_seeds("0-2,5") == [0, 1, 2, 5]
    runs = [{"framework": "tinygrad_cnn", "test_accuracy": a} for a in (0.9869, 0.9861, 0.9853)]
    runs += [{"framework": "torch", "test_accuracy": a} for a in (0.9879, 0.9871)]
    summary = recipe.summarise(runs, "mnist")
    assert summary["tinygrad_cnn"]["mean"] == pytest.approx(0.9861)
    assert summary["tinygrad_cnn"]["std"] == pytest.approx(0.0008)
    assert summary["tinygrad_cnn"]["reach_course"] == 1  # 98.69% counts as reaching 98.69%
    assert summary["torch"]["reach_course"] == 2
    # Welch: (0.9861 - 0.9875) / sqrt(0.0008^2 / 3 + 0.000566^2 / 2)
    assert summary["welch_t"] == pytest.approx(-2.29, abs=0.01)


def test_recipe_run_is_the_cli_run(tmp_path):
    """The benchmark's run of ours gives exactly the accuracy `tinygrad-cnn train` reports."""
    from benchmarks import recipe

    if not os.environ.get("TINYGRAD_CNN_DATA"):
        pytest.skip("set TINYGRAD_CNN_DATA to a folder holding mnist/ to run this")
    args = ["--model", "mnist-cnn", "--dataset", "mnist", "--limit", "600", "--epochs", "1"]
    subprocess.run([sys.executable, "-m", "tinygrad_cnn", "train", *args, "--seed", "3",
                    "--out", str(tmp_path)], check=True, capture_output=True)  # fmt: skip
    cli = json.loads((tmp_path / "results.json").read_text())["test"]
    ours = recipe.train_once("tinygrad_cnn", "mnist", seed=3, epochs=1, limit=600)
    assert ours["test_accuracy"] == cli["accuracy"]
    assert ours["test_loss"] == pytest.approx(cli["loss"], rel=1e-6)
    theirs = recipe.train_once("torch", "mnist", seed=3, epochs=1, limit=600)
    assert 0 <= theirs["test_accuracy"] <= 1 and 0 < theirs["test_loss"] < 10  # two steps only


def test_header_names_the_vector_width_blas_kernel_and_sgemm_speed(capsys):
    settings = harness.print_header()
    out = capsys.readouterr().out
    assert settings["vector_width"] in ("AVX-512", "AVX2", "AVX", "SSE2", "?")
    assert "CPU vectors" in out and "sgemm 1024^3" in out and settings["sgemm_gflops"] > 0
    assert settings["blas"]["library"]  # e.g. openblas, with its kernel (SkylakeX, Haswell)


def test_thread_scaling_times_both_frameworks_at_one_and_two_threads():
    import tinygrad_cnn
    from benchmarks import threads

    seen = []

    def ours():
        seen.append(("ours", tinygrad_cnn.get_num_threads()))

    def theirs():
        seen.append(("torch", torch.get_num_threads()))

    row = threads.time_threads(Case("tiny", ours, theirs), rounds=2, warmup=1)
    assert {"ours_1t_ms", "ours_2t_ms", "torch_1t_ms", "torch_2t_ms", "ratio_1t"} <= set(row)
    assert {("ours", 1), ("ours", 2), ("torch", 1), ("torch", 2)} <= set(seen)
    assert tinygrad_cnn.get_num_threads() == torch.get_num_threads() == harness.THREADS
