"""Op benchmarks: conv2d and maxpool2d against PyTorch, forward and forward + backward.

    python -m benchmarks.ops [--quick] [--json PATH]        (or: python benchmarks/ops.py)

Every case runs in float32 with the BLAS threads pinned (2 unless BENCH_THREADS says otherwise),
checks that our outputs and gradients match PyTorch's, then times interleaved rounds and prints
the median times and the ratio to PyTorch. Targets: conv forward + backward <= 2.75x PyTorch,
max pool forward + backward <= 1.0x.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import harness  # noqa: E402  (first: it pins the BLAS threads before numpy loads)
from benchmarks.harness import Case  # noqa: E402

# isort: split
import numpy as np  # noqa: E402

from tinygrad_cnn import Tensor, no_grad, ops  # noqa: E402

torch = harness.torch

CONV_CASES = [  # (N, C, H, W), O, kernel, stride, padding
    ((64, 1, 28, 28), 32, 3, 1, 1),
    ((64, 32, 14, 14), 64, 3, 1, 1),
    ((8, 64, 64, 64), 64, 3, 1, 1),
    ((8, 3, 128, 128), 16, 3, 2, 1),
]
CONV_TARGET, POOL_TARGET = 2.75, 1.0


def _close(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    scale = float(np.abs(theirs).max()) or 1.0  # float32 sums of hundreds of terms
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-4 * scale, err_msg=what)


def _pair_of_steps(our_fn, torch_fn, arrays: list[np.ndarray], grad: np.ndarray):
    """Forward-only and forward + backward callables for both sides, and a check."""
    ours = [Tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays] if torch else []
    g_torch = torch.from_numpy(grad) if torch else None

    def ours_forward():
        with no_grad():
            return our_fn(*ours)

    def torch_forward():
        with torch.no_grad():
            return torch_fn(*theirs)

    def ours_step():
        for t in ours:
            t.grad = None
        out = our_fn(*ours)
        out.backward(grad)
        return out

    def torch_step():
        for t in theirs:
            t.grad = None
        out = torch_fn(*theirs)
        out.backward(g_torch)
        return out

    def check():
        out, expected = ours_step(), torch_step()
        _close(out.data, expected.detach().numpy(), "output")
        for i, (t, r) in enumerate(zip(ours, theirs)):
            assert t.grad.dtype == np.float32, f"input {i}: gradient is {t.grad.dtype}"
            _close(t.grad, r.grad.numpy(), f"gradient of input {i}")

    return ours_forward, torch_forward, ours_step, torch_step, check


def conv_cases(x_shape, O, k, stride, padding) -> list[Case]:
    rng = np.random.default_rng(0)
    N, C, H, W = x_shape
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = (rng.standard_normal((O, C, k, k)) / np.sqrt(C * k * k)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32)
    out_hw = [(n + 2 * padding - k) // stride + 1 for n in (H, W)]
    grad = rng.standard_normal((N, O, *out_hw)).astype(np.float32)

    def our_fn(x, w, b):
        return ops.conv2d(x, w, b, stride=stride, padding=padding)

    def torch_fn(x, w, b):
        return torch.nn.functional.conv2d(x, w, b, stride=stride, padding=padding)

    fwd, tfwd, step, tstep, check = _pair_of_steps(our_fn, torch_fn, [x, w, b], grad)
    name = f"conv N{N} C{C} {H}x{W}->{O} k{k} s{stride} p{padding}"
    info = {
        "x": list(x_shape),
        "out_channels": O,
        "kernel": k,
        "stride": stride,
        "padding": padding,
    }
    return [
        Case(f"{name} fwd", fwd, tfwd, check, None, info | {"pass": "forward"}),
        Case(f"{name} fwd+bwd", step, tstep, check, CONV_TARGET, info | {"pass": "both"}),
    ]


def maxpool_cases(x_shape=(64, 32, 28, 28)) -> list[Case]:
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(np.float32)
    N, C, H, W = x_shape
    grad = rng.standard_normal((N, C, H // 2, W // 2)).astype(np.float32)

    def our_fn(x):
        return ops.maxpool2d(x, 2)

    def torch_fn(x):
        return torch.nn.functional.max_pool2d(x, 2)

    fwd, tfwd, step, tstep, check = _pair_of_steps(our_fn, torch_fn, [x], grad)
    name = f"maxpool 2x2 ({N},{C},{H},{W})"
    info = {"x": list(x_shape), "kernel": 2, "stride": 2}
    return [
        Case(f"{name} fwd", fwd, tfwd, check, None, info | {"pass": "forward"}),
        Case(f"{name} fwd+bwd", step, tstep, check, POOL_TARGET, info | {"pass": "both"}),
    ]


def all_cases() -> list[Case]:
    cases = [case for spec in CONV_CASES for case in conv_cases(*spec)]
    return cases + maxpool_cases()


def main(argv: list[str] | None = None) -> int:
    def make_cases(quick: bool, only: str | None) -> list[Case]:
        return [c for c in all_cases() if not only or only in c.name]

    return harness.section_main(argv, __doc__, make_cases, rounds=21, benchmark="ops")


if __name__ == "__main__":
    sys.exit(main())
