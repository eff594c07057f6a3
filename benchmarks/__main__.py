"""Every benchmark in one command: ops, training steps, allocator, memory, scaling.

    python -m benchmarks [--quick] [--json PATH] [--only TEXT] [--malloc nomap|default]
                         [--skip SECTION ...]

Sections (in this order): ops (conv, max pool), steps (matmul sanity line, LeNet, U-Net, the
course's CNN at batch 512, one MNIST epoch), threads (LeNet, U-Net and max pool at 1 and 2
threads, both frameworks), allocator (the U-Net step under the default glibc
allocator and with mmap/trim off, each in a fresh process), memory (growth over 1,000 LeNet
steps; peak extra RSS of a U-Net step, ours and torch's), scaling (LeNet step time against the
batch size, U-Net step time against the image size), reference (the reference kernels of
ops/reference.py against the fast ones: why im2col exists). See benchmarks/README.md.

--malloc nomap re-runs the whole command with MALLOC_MMAP_MAX_=0 and
MALLOC_TRIM_THRESHOLD_=1073741824 (glibc then neither maps big blocks nor returns freed memory
to the kernel, so nothing page-faults twice); the default is the allocator users get.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import harness  # noqa: E402  (first: it pins the BLAS threads before numpy loads)

NOMAP = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "1073741824"}
SECTIONS = ("ops", "steps", "threads", "allocator", "memory", "scaling", "reference")
REPO = harness.REPO
ALLOCATOR_TARGET = 1.3


def allocator_compare(case: str, repeats: int, quick: bool) -> dict:
    """Time `case` in fresh processes, default allocator and nomap alternately.

    Each child times ours and torch interleaved, so its ratio to torch cancels the machine's
    drift; the allocator's cost is default ratio / nomap ratio (and the same for our ms).
    """
    runs: dict[str, list[dict]] = {"default": [], "nomap": []}
    for i in range(repeats):
        for mode in ("default", "nomap") if i % 2 == 0 else ("nomap", "default"):
            env = {k: v for k, v in os.environ.items() if k not in NOMAP}
            env.update(NOMAP if mode == "nomap" else {})
            with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
                cmd = [sys.executable, "-m", "benchmarks.steps", "--only", case, "--json", tmp.name]
                subprocess.run(cmd + (["--quick"] if quick else []), env=env, cwd=REPO,
                               check=True, capture_output=True)  # fmt: skip
                runs[mode].append(json.load(open(tmp.name))["results"][0])

    def median(values):
        values = sorted(values)
        return values[len(values) // 2]

    summary = {"case": case, "repeats": repeats, "target": ALLOCATOR_TARGET}
    for mode, results in runs.items():
        summary[mode] = {
            "ours_ms": median([r["ours_ms"] for r in results]),
            "torch_ms": median([r["torch_ms"] or 0 for r in results]),
            "ratio": median([r["ratio"] or 0 for r in results]),
        }
    d, n = summary["default"], summary["nomap"]
    summary["default_over_nomap"] = round(d["ratio"] / n["ratio"], 3) if n["ratio"] else None
    summary["default_over_nomap_ms"] = round(d["ours_ms"] / n["ours_ms"], 3)
    print(
        f"allocator: {case}: default {d['ours_ms']:.1f} ms ({d['ratio']:.2f}x torch), "
        f"nomap {n['ours_ms']:.1f} ms ({n['ratio']:.2f}x torch): default/nomap "
        f"{summary['default_over_nomap']} by ratio, {summary['default_over_nomap_ms']} by ms "
        f"(target {ALLOCATOR_TARGET})",
        flush=True,
    )
    return summary


def scaling_summary(results: list[harness.Result]) -> list[dict]:
    """Per-image and per-pixel times of the scaling cases: flat means linear."""
    rows = []
    for r in results:
        if "(scaling)" not in r.name:
            continue
        pixels = r.info["images"] * r.info.get("size", 28) ** 2
        per_kpixel = 1e3 * r.ours_ms / (pixels / 1e3)
        rows.append({"case": r.name, "ours_ms": r.ours_ms, "torch_ms": r.torch_ms,
                     "ratio": r.ratio, "us_per_kpixel": per_kpixel})  # fmt: skip
    if rows:
        print("scaling: case, ours ms, torch ms, ratio, ours us per 1000 pixels")
        for row in rows:
            torch_ms = f"{row['torch_ms']:9.2f}" if row["torch_ms"] else f"{'-':>9}"
            ratio = f"{row['ratio']:5.2f}" if row["ratio"] else "    -"
            print(f"  {row['case']:<40} {row['ours_ms']:9.2f} {torch_ms} {ratio} "
                  f"{row['us_per_kpixel']:8.1f}")  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few rounds, small cases (smoke)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    parser.add_argument("--only", metavar="TEXT", help="only timed cases whose name has TEXT")
    parser.add_argument("--malloc", choices=("default", "nomap"), default="default")
    parser.add_argument("--skip", nargs="*", default=[], choices=SECTIONS, metavar="SECTION",
                        help=f"sections to leave out: {', '.join(SECTIONS)}")  # fmt: skip
    args = parser.parse_args(argv)
    if args.malloc == "nomap" and any(os.environ.get(k) != v for k, v in NOMAP.items()):
        # glibc reads these when the process starts: run the same command again with them
        env = os.environ | NOMAP
        os.execve(sys.executable, [sys.executable, "-m", "benchmarks", *sys.argv[1:]], env)
    harness.default_data_folder()
    from benchmarks import memory, ops, reference, steps, threads  # after the data folder is set

    sections = [s for s in SECTIONS if s not in args.skip]
    if args.only:  # a filter names timed cases: the other sections stay out
        sections = [s for s in sections if s in ("ops", "steps", "threads", "scaling")]
    rounds, warmup = (5, 1) if args.quick else (15, 3)
    start = time.time()
    print(f"{time.strftime('%Y-%m-%d %H:%M')}  allocator: {args.malloc}  "
          f"load average: {os.getloadavg()[0]:.2f}")  # fmt: skip
    cases = []
    if "ops" in sections:
        cases += ops.all_cases()
    if "steps" in sections:
        cases += steps.step_cases(args.quick, args.only)
    if "scaling" in sections:
        cases += steps.scaling_cases(args.quick, args.only)
    cases = [c for c in cases if not args.only or args.only in c.name]
    machine = harness.print_header()
    results = harness.run_cases(cases, rounds=rounds, warmup=warmup)
    extra: dict = {"benchmark": "all", "rounds": rounds, "malloc": args.malloc}
    extra["sgemm_gflops"] = machine["sgemm_gflops"]
    if "threads" in sections:
        extra["threads"] = threads.measure(args.quick, args.only)
    if "allocator" in sections:
        extra["allocator"] = allocator_compare("unet step (8,1,64,64)", 1 if args.quick else 3,
                                               args.quick)  # fmt: skip
    if "memory" in sections:
        extra["memory"] = memory.measure_all(100 if args.quick else 1000)
    extra["scaling"] = scaling_summary(results)
    if "reference" in sections:
        extra["reference"] = reference.run(args.quick)
    harness.print_over_target(results)
    print(f"took {time.time() - start:.0f} s; load average now {os.getloadavg()[0]:.2f}")
    if args.json:
        extra["cpu"] = _cpu_model()
        extra["date"] = time.strftime("%Y-%m-%d %H:%M %Z")
        harness.write_json(args.json, results, extra)
    return 0


def _cpu_model() -> str | None:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


if __name__ == "__main__":
    sys.exit(main())
