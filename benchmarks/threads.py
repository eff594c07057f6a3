"""1 thread against 2 threads, both frameworks: who puts the second core to use.

    python -m benchmarks.threads [--quick] [--json PATH] [--only TEXT]

For each case (the LeNet and U-Net training steps, and max pooling), four callables are timed
in one process: ours and PyTorch's, each at 1 and at 2 threads. The thread count is switched
between calls (numpy's BLAS through threadpoolctl, `tinygrad_cnn.set_num_threads`,
`torch.set_num_threads`); each timed call follows an untimed call of the same side at the same
count, and rounds rotate the order of the four. Reported: medians, the ratio ours / torch at each
count (median of the per-round pairs) and each framework's speed-up from 1 to 2 threads.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import harness  # noqa: E402  (first: it pins the BLAS threads before numpy loads)

UNET_SPEEDUP_TARGET = 1.55  # our U-Net step, 1 thread -> 2 threads


def scaling_cases(quick: bool = False, only: str | None = None) -> list[harness.Case]:
    from benchmarks import ops, steps

    named = [
        ("lenet step b64", steps.lenet_case),
        ("unet step (8,1,64,64)", steps.unet_case),
        ("maxpool 2x2 (64,32,28,28) fwd+bwd", lambda: ops.maxpool_cases()[1]),
    ]
    return [make() for name, make in named if not only or only in name]


def time_threads(case: harness.Case, rounds: int, warmup: int = 2) -> dict:
    """Medians (ms) of ours and torch at 1 and 2 threads, paired ratios and speed-ups."""
    sides = [(side, n) for n in (1, 2) for side in ("ours", "torch") if _fn(case, side)]
    times: dict = {key: [] for key in sides}
    probe_before = harness.matmul_probe()
    for key in sides:
        harness.set_threads(key[1])
        for _ in range(warmup):
            _fn(case, key[0])()
    for r in range(rounds):
        order = sides[r % len(sides) :] + sides[: r % len(sides)]  # rotate the order
        for side, n in order:
            harness.set_threads(n)
            fn = _fn(case, side)
            fn()  # settle: absorbs the other side's spinning threads (see harness)
            start = time.perf_counter()
            fn()
            times[(side, n)].append(time.perf_counter() - start)
    harness.set_threads(harness.THREADS)
    row: dict = {"case": case.name, "rounds": rounds, "probe_before": probe_before}
    row["probe_after"] = harness.matmul_probe()
    for (side, n), values in times.items():
        row[f"{side}_{n}t_ms"] = statistics.median(values) * 1e3
    for n in (1, 2):
        if ("torch", n) in times:
            pairs = zip(times[("ours", n)], times[("torch", n)])
            row[f"ratio_{n}t"] = statistics.median(o / t for o, t in pairs)
    for side in ("ours", "torch"):
        if (side, 2) in times:
            row[f"{side}_speedup"] = row[f"{side}_1t_ms"] / row[f"{side}_2t_ms"]
    return row


def _fn(case: harness.Case, side: str):
    return case.ours if side == "ours" else (case.torch if harness.torch is not None else None)


def print_rows(rows: list[dict]) -> None:
    print(
        f"threads: {'case':<36} {'ours 1t':>8} {'ours 2t':>8} {'torch 1t':>8} {'torch 2t':>8} "
        f"{'ratio 1t':>8} {'ratio 2t':>8} {'ours x':>6} {'torch x':>7}  probe"
    )
    for row in rows:
        cells = [row.get(k) for k in ("ours_1t_ms", "ours_2t_ms", "torch_1t_ms", "torch_2t_ms")]
        ratios = [row.get(k) for k in ("ratio_1t", "ratio_2t", "ours_speedup", "torch_speedup")]
        text = " ".join(f"{v:8.2f}" if v is not None else f"{'-':>8}" for v in cells)
        text += " " + " ".join(f"{v:8.2f}" if v is not None else f"{'-':>8}" for v in ratios[:2])
        text += " " + " ".join(f"{v:6.2f}x" if v is not None else f"{'-':>7}" for v in ratios[2:])
        probe = f"{row['probe_before']:.0f} -> {row['probe_after']:.0f}"
        warn = "  (throttled?)" if min(row["probe_before"], row["probe_after"]) < 150 else ""
        print(f"         {row['case']:<36} {text}  {probe}{warn}", flush=True)
    unet = [r for r in rows if r["case"].startswith("unet") and "ours_speedup" in r]
    for row in unet:
        verdict = "ok" if row["ours_speedup"] >= UNET_SPEEDUP_TARGET else "UNDER"
        print(
            f"threads: our U-Net step 1 -> 2 threads: {row['ours_speedup']:.2f}x faster "
            f"(target >= {UNET_SPEEDUP_TARGET}) {verdict}",
            flush=True,
        )


def measure(quick: bool = False, only: str | None = None) -> list[dict]:
    rounds = 4 if quick else 10
    rows = [time_threads(case, rounds) for case in scaling_cases(quick, only)]
    print_rows(rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    parser.add_argument("--only", metavar="TEXT", help="only cases whose name contains TEXT")
    args = parser.parse_args(argv)
    settings = harness.print_header(table=False)
    rows = measure(args.quick, args.only)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"settings": settings, "threads": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    harness.default_data_folder()
    sys.exit(main())
