"""Where a training step's time goes, per Function, at 1 and at 2 threads.

    python -m benchmarks.profile [--case lenet|unet|mnist-cnn|all] [--steps 20]

Every Function's forward and backward is wrapped with a timer, and so is `np.matmul` (the
matrix products of convolution, which run in BLAS on every core); a Function's own time
excludes the products it called. `engine + optimizer` is the rest of the step: graph
bookkeeping, the loss's Python, the optimizer's update. Each row shows milliseconds per step
(median over the steps) at 1 and 2 threads and its speed-up: a row near 1.0x is work that
leaves the second core idle. Timers cost about a microsecond a call; the totals are a little
above `benchmarks.steps`'s.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import harness  # noqa: E402  (first: it pins the BLAS threads before numpy loads)

# isort: split
import numpy as np  # noqa: E402

from tinygrad_cnn.tensor import Function  # noqa: E402

BLAS = "BLAS (np.matmul)"
REST = "engine + optimizer"


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


class Timers:
    """Per-step sums of each (Function, phase)'s own time and of np.matmul's."""

    def __init__(self):
        self.step: dict[str, float] = defaultdict(float)
        self.stack: list[float] = []  # matmul seconds seen inside the Function now running
        self.originals: list[tuple] = []

    def install(self) -> None:
        for cls in _subclasses(Function):
            for phase in ("forward", "backward"):
                if phase in vars(cls):
                    original = vars(cls)[phase]
                    self.originals.append((cls, phase, original))
                    setattr(cls, phase, self._wrap(original, f"{cls.name} {phase}"))
        matmul = np.matmul
        self.originals.append((np, "matmul", matmul))

        def timed_matmul(*args, **kwargs):
            start = time.perf_counter()
            result = matmul(*args, **kwargs)
            spent = time.perf_counter() - start
            self.step[BLAS] += spent
            if self.stack:
                self.stack[-1] += spent
            return result

        np.matmul = timed_matmul

    def _wrap(self, original, label: str):
        def timed(fn_self, *args, **kwargs):
            self.stack.append(0.0)
            start = time.perf_counter()
            try:
                return original(fn_self, *args, **kwargs)
            finally:
                inner = self.stack.pop()
                self.step[label] += time.perf_counter() - start - inner

        return timed

    def remove(self) -> None:
        for owner, name, original in reversed(self.originals):
            setattr(owner, name, original)
        self.originals = []


def profile(case: harness.Case, threads: int, steps: int) -> dict[str, float]:
    """Median ms per step of each row, with `threads` threads everywhere."""
    harness.set_threads(threads)
    for _ in range(3):
        case.ours()
    timers = Timers()
    per_step: dict[str, list[float]] = defaultdict(list)
    totals = []
    timers.install()
    try:
        for _ in range(steps):
            timers.step.clear()
            start = time.perf_counter()
            case.ours()
            total = time.perf_counter() - start
            totals.append(total)
            for label, seconds in timers.step.items():
                per_step[label].append(seconds)
            per_step[REST].append(total - sum(timers.step.values()))
    finally:
        timers.remove()
        harness.set_threads(harness.THREADS)
    rows = {label: float(np.median(values)) * 1e3 for label, values in per_step.items()}
    rows["step"] = float(np.median(totals)) * 1e3
    return rows


def print_profile(name: str, by_threads: dict[int, dict[str, float]]) -> None:
    counts = sorted(by_threads)
    first, last = by_threads[counts[0]], by_threads[counts[-1]]
    print(f"\n{name}: ms per step (median), share of the {counts[-1]}-thread step, speed-up")
    head = " ".join(f"{f'{n} thr ms':>9}" for n in counts)
    print(f"  {'Function phase':<32} {head} {'share':>6} {'x':>6}")
    labels = sorted(set(first) | set(last), key=lambda k: -last.get(k, 0.0))
    for label in [k for k in labels if k != "step"] + ["step"]:
        cells = " ".join(f"{by_threads[n].get(label, 0.0):9.2f}" for n in counts)
        share = last.get(label, 0.0) / last["step"]
        speedup = first.get(label, 0.0) / last[label] if last.get(label) else float("nan")
        print(f"  {label:<32} {cells} {share:6.1%} {speedup:5.2f}x")


def main(argv: list[str] | None = None) -> int:
    import argparse

    from benchmarks import steps

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=("lenet", "unet", "mnist-cnn", "all"), default="all")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)
    harness.print_header(table=False)
    makers = {"lenet": steps.lenet_case, "unet": steps.unet_case, "mnist-cnn": steps.mnist_cnn_case}
    for name in makers if args.case == "all" else (args.case,):
        case = makers[name]()
        by_threads = {n: profile(case, n, args.steps) for n in (1, 2)}
        print_profile(case.name, by_threads)
    return 0


if __name__ == "__main__":
    harness.default_data_folder()
    sys.exit(main())
