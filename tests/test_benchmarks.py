"""The benchmark harness works and compares like with like (never asserts a time)."""

import json

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
