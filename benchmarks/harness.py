"""Timing machinery shared by every benchmark: ours and PyTorch, side by side, interleaved.

On a small shared machine absolute times drift (other processes, thermal or host throttling),
so a benchmark here reports RATIOS to PyTorch measured in one process:

* threads are pinned (OMP/OPENBLAS/MKL env before numpy loads, and torch.set_num_threads);
* OpenBLAS's idle threads are told to sleep at once (OPENBLAS_THREAD_TIMEOUT=4) instead of
  spinning for about 0.1 s after each matrix product: otherwise, in the same process, they
  keep burning one of the two cores while PyTorch runs, and PyTorch's LeNet step measures
  about 2x slower than alone (48 ms against 21 ms here), which would flatter every ratio;
* PyTorch's OpenMP (libgomp) threads likewise spin for several ms after each of its calls,
  so the call right after PyTorch loses a core (a numpy 1024^3 matmul: 19 ms there, 11 ms
  alone). Turning that off slows PyTorch itself (OMP_WAIT_POLICY=PASSIVE; an idle gap before
  each call costs its LeNet step 10%), so each side runs once untimed and then once timed,
  back to back, as in a training loop: the untimed run absorbs the other library's spinning
  (skipped for cases of a second or more, where a few ms do not matter);
* each case is warmed up, then checked (outputs and gradients agree with PyTorch's);
* rounds alternate the order (ours, torch), (torch, ours), ... and each of our times is paired
  with the torch time of the same round; the reported ratio is the median of those pairs;
* a 1024^3 float32 matmul before and after each case probes the machine's health (healthy is
  about 170-210 GFLOP/s on 2 AVX-512 cores, 70-150 on AVX2 ones; well below that, the
  numbers of that case are suspect).

Usage (see ops.py):

    case = Case("conv fwd+bwd", ours=step_ours, torch=step_torch, check=compare, target=2.75)
    results = run_cases([case], rounds=15)
    print_table(results); write_json("out.json", results)
"""

from __future__ import annotations

import os

THREADS = int(os.environ.get("BENCH_THREADS", "2"))
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(THREADS)  # read by the BLAS libraries when they load: before numpy
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # see the docstring: no idle spinning

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

try:
    import torch
except ImportError:  # the benchmarks still time our side alone
    torch = None

if torch is not None:
    torch.set_num_threads(THREADS)


@dataclass
class Case:
    """One thing to time: `ours()` and `torch()` each run it once (e.g. a forward + backward).

    check: run once before timing; raises (e.g. AssertionError) when the two disagree.
    target: the ratio ours/torch the case should stay under (None: no target).
    """

    name: str
    ours: Callable[[], Any]
    torch: Callable[[], Any] | None = None
    check: Callable[[], None] | None = None
    target: float | None = None
    info: dict = field(default_factory=dict)
    rounds: int | None = None  # overrides run_case's rounds (e.g. 3 for a whole epoch)
    warmup: int | None = None


@dataclass
class Result:
    name: str
    ours_ms: float
    torch_ms: float | None
    ratio: float | None
    target: float | None
    rounds: int
    first_call_ms: float
    probe_before: float
    probe_after: float
    info: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        if self.ratio is None or self.target is None:
            return None
        return self.ratio <= self.target


REPO = Path(__file__).resolve().parents[1]


def default_data_folder() -> None:
    """Point TINYGRAD_CNN_DATA at ../shared/data next to the repository, if it is there."""
    folder = REPO.parent / "shared" / "data"
    if "TINYGRAD_CNN_DATA" not in os.environ and folder.is_dir():
        os.environ["TINYGRAD_CNN_DATA"] = str(folder)


def settings() -> dict:
    """What the numbers depend on: threads, versions, CPU."""
    return {
        "threads": {
            v: os.environ.get(v)
            for v in (
                "OMP_NUM_THREADS",
                "OPENBLAS_NUM_THREADS",
                "MKL_NUM_THREADS",
                "OPENBLAS_THREAD_TIMEOUT",
            )
        }
        | {"torch.get_num_threads": torch.get_num_threads() if torch else None},
        "numpy": np.__version__,
        "torch": torch.__version__ if torch else None,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "vector_width": vector_width(),
        "blas": blas_info(),
    }


def vector_width() -> str:
    """The widest SIMD the CPU offers, from /proc/cpuinfo: 'AVX-512', 'AVX2', ... or '?'."""
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "?"
    for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sse2", "SSE2")):
        if flag in flags:
            return name
    return "?"


# a 1024^3 sgemm under this (GFLOP/s) flags a case as throttled: about 3/4 of what a healthy
# core gives per thread, 100 with AVX-512 (SkylakeX kernel) and 35 with AVX2 (Haswell kernel)
HEALTHY_PROBE = (75 if vector_width() == "AVX-512" else 26) * THREADS


def blas_info() -> dict:
    """numpy's BLAS library, version, kernel (e.g. OpenBLAS 'SkylakeX' or 'Haswell'), threads.

    From threadpoolctl when it is installed (the `dev` extra); otherwise only numpy's config.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {"library": "unknown (pip install threadpoolctl)"}
    for pool in threadpool_info():
        if pool.get("user_api") == "blas" and "numpy" in pool.get("filepath", ""):
            return {
                "library": pool.get("internal_api"),
                "version": pool.get("version"),
                "kernel": pool.get("architecture"),
                "threads": pool.get("num_threads"),
            }
    return {"library": "not found"}


def set_threads(n: int) -> None:
    """Both frameworks on n threads, while running: numpy's BLAS, PyTorch, and our ops."""
    from threadpoolctl import threadpool_limits

    import tinygrad_cnn

    threadpool_limits(n, user_api="blas")
    tinygrad_cnn.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)


def matmul_probe(repeats: int = 5) -> float:
    """GFLOP/s of a 1024^3 float32 matmul (median of `repeats`): the machine's health."""
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    a @ a  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - start)
    return 2 * 1024**3 / statistics.median(times) / 1e9


def _timed(fn: Callable[[], Any], settle: bool = False) -> float:
    """Seconds one call of fn takes; settle: after one untimed call (see the top)."""
    if settle:
        fn()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_case(case: Case, rounds: int = 15, warmup: int = 3) -> Result:
    """Warm up, check, then time `rounds` interleaved rounds of ours and torch."""
    has_torch = case.torch is not None and torch is not None
    rounds = case.rounds if case.rounds is not None else rounds
    warmup = case.warmup if case.warmup is not None else warmup
    probe_before = matmul_probe()
    first_call = _timed(case.ours)
    for _ in range(warmup):
        case.ours()
        if has_torch:
            case.torch()
    if case.check is not None and has_torch:
        case.check()
    ours, theirs = [], []
    settle = has_torch and first_call < 1.0
    for r in range(rounds):
        if not has_torch:
            ours.append(_timed(case.ours))
        elif r % 2 == 0:  # rotate the order so neither side always runs on a "warm" machine
            ours.append(_timed(case.ours, settle))
            theirs.append(_timed(case.torch, settle))
        else:
            theirs.append(_timed(case.torch, settle))
            ours.append(_timed(case.ours, settle))
    probe_after = matmul_probe()
    ratio = statistics.median(o / t for o, t in zip(ours, theirs)) if has_torch else None
    return Result(
        case.name,
        statistics.median(ours) * 1e3,
        statistics.median(theirs) * 1e3 if has_torch else None,
        ratio,
        case.target,
        rounds,
        first_call * 1e3,
        probe_before,
        probe_after,
        dict(case.info),
    )


def run_cases(
    cases: list[Case], rounds: int = 15, warmup: int = 3, verbose: bool = True
) -> list[Result]:
    results = []
    for case in cases:
        result = run_case(case, rounds=rounds, warmup=warmup)
        if verbose:
            print(_row(result), flush=True)
        results.append(result)
    return results


HEADER = (
    f"{'case':<44} {'ours ms':>9} {'torch ms':>9} {'ratio':>6} {'target':>6}  {'probe GFLOP/s':>14}"
)


def _row(r: Result) -> str:
    torch_ms = f"{r.torch_ms:9.2f}" if r.torch_ms is not None else f"{'-':>9}"
    ratio = f"{r.ratio:6.2f}" if r.ratio is not None else f"{'-':>6}"
    target = f"{r.target:6.2f}" if r.target is not None else f"{'':>6}"
    mark = {True: " ok", False: " OVER", None: ""}[r.passed]
    probe = f"{r.probe_before:5.0f} -> {r.probe_after:4.0f}"
    warn = "  (throttled?)" if min(r.probe_before, r.probe_after) < HEALTHY_PROBE else ""
    return f"{r.name:<44} {r.ours_ms:9.2f} {torch_ms} {ratio} {target}  {probe:>14}{mark}{warn}"


def print_header(table: bool = True) -> dict:
    """Print what the numbers depend on (threads, versions, CPU, BLAS and its speed); return it."""
    s = settings()
    s["sgemm_gflops"] = round(matmul_probe(), 1)
    blas = s["blas"]
    kernel = f"{blas.get('library')} {blas.get('version', '')} kernel {blas.get('kernel', '?')}"
    print(
        f"threads {s['threads']}  numpy {s['numpy']}  torch {s['torch']}  "
        f"python {s['python']}  cpus {s['cpus']}"
    )
    print(
        f"CPU vectors {s['vector_width']}  numpy BLAS {kernel}  "
        f"sgemm 1024^3 {s['sgemm_gflops']:.0f} GFLOP/s (2 threads: AVX-512 170-210, AVX2 70-150)"
    )
    if table:
        print("medians over interleaved rounds; ratio = median of paired ours/torch times")
        print(HEADER)
    return s


def print_table(results: list[Result]) -> None:
    print(HEADER)
    for r in results:
        print(_row(r))


def write_json(path: str, results: list[Result], extra: dict | None = None) -> None:
    payload = {
        "settings": settings(),
        **(extra or {}),
        "results": [dict(vars(r), passed=r.passed) for r in results],
    }
    with open(path, "w") as f:
        json.dump(payload, f, indent=2)
    print(f"wrote {path}", file=sys.stderr)


def print_over_target(results: list[Result]) -> None:
    """One closing line: the cases over their target ratio, or that there are none."""
    over = [r.name for r in results if r.passed is False]
    print("over target: " + ", ".join(over) if over else "every timed case within its target")


def section_main(
    argv: list[str] | None,
    doc: str,
    make_cases: Callable[[bool, str | None], list[Case]],
    rounds: int,
    benchmark: str,
) -> int:
    """The command line of one section run alone (`python -m benchmarks.ops`, `.steps`).

    --quick (5 rounds, 1 warm-up), --json PATH, --only TEXT; `make_cases(quick, only)` builds
    the cases (only: keep those whose name contains it), run with `rounds` unless --quick.
    """
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--only", metavar="TEXT", help="run only cases whose name contains TEXT")
    args = parser.parse_args(argv)
    rounds, warmup = (5, 1) if args.quick else (rounds, 3)
    cases = make_cases(args.quick, args.only)
    print_header()
    results = run_cases(cases, rounds=rounds, warmup=warmup)
    if args.json:
        write_json(args.json, results, {"benchmark": benchmark, "rounds": rounds})
    print_over_target(results)
    return 0
