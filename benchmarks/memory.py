"""Memory of training steps: growth over many LeNet steps, peak extra RSS of a U-Net step.

    python -m benchmarks.memory growth [--steps 1000]     LeNet steps, RSS every 10% of them
    python -m benchmarks.memory peak ours|torch           U-Net step (8,1,64,64), one framework

Each command runs in its own process (`measure_all` starts them), so one framework's freed
memory and allocator state never count against the other. The last line printed is JSON.

growth: RSS (resident set size) and the number of live Python objects after 10% of the steps
    and after all of them; a leak (a graph kept alive, a buffer per step) shows as MB or
    objects that keep climbing. A few MB of allocator noise is normal.
peak: after two warm-up steps (workspaces, allocator pools and oneDNN caches are filled), the
    kernel's high-water mark of the RSS is reset (`/proc/self/clear_refs`, Linux) and three
    more steps run; peak extra = that high-water mark minus the RSS before them: the memory a
    step needs on top of the model, the data and what the framework keeps between steps.
    'kept' is what the warm-up steps left resident (workspaces, caches) on top of the setup.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import harness  # noqa: E402  (first: it pins the BLAS threads before numpy loads)

MB = 1024 * 1024
PEAK_TARGET = 2.5  # U-Net step peak extra RSS, ours / PyTorch's


def _status(field: str) -> int:
    """A size in bytes from /proc/self/status (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # 5: reset the peak RSS (VmHWM) to the current RSS
        return True
    except OSError:
        return False


def growth(steps: int = 1000) -> dict:
    from benchmarks.steps import lenet_case

    case = lenet_case()
    marks = {}
    for i in range(1, steps + 1):
        case.ours()
        if i % max(steps // 10, 1) == 0:
            gc.collect()
            marks[i] = (_status("VmRSS") / MB, len(gc.get_objects()))
    first, last = marks[min(marks)], marks[max(marks)]
    return {
        "steps": steps,
        "rss_mb": {k: round(v[0], 1) for k, v in marks.items()},
        "growth_mb": round(last[0] - first[0], 1),
        "objects_growth": last[1] - first[1],
        "from_step": min(marks),
    }


def peak(side: str) -> dict:
    from benchmarks.steps import unet_case

    case = unet_case()
    run = case.ours if side == "ours" else case.torch
    if run is None:
        raise SystemExit("torch is not installed")
    gc.collect()
    setup = _status("VmRSS")
    for _ in range(2):
        run()
    gc.collect()
    before = _status("VmRSS")
    exact = _reset_peak()
    for _ in range(3):
        run()
    high = _status("VmHWM")
    return {
        "side": side,
        "setup_mb": round(setup / MB, 1),
        "kept_mb": round((before - setup) / MB, 1),
        "peak_extra_mb": round((high - setup) / MB, 1),
        "exact": exact,  # False: the high-water mark could not be reset (includes setup)
    }


def _child(*args: str, env: dict | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", *args],
        capture_output=True, text=True, check=True, env=env,
        cwd=str(Path(__file__).resolve().parents[1]),
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_all(steps: int = 1000) -> dict:
    """Growth and both peaks, each in a fresh process; prints a short report."""
    result = {"growth": _child("growth", "--steps", str(steps)), "peak": {}}
    g = result["growth"]
    print(
        f"memory: {g['steps']} LeNet steps: RSS {g['rss_mb'][str(g['from_step'])]} MB after "
        f"{g['from_step']} -> {g['rss_mb'][str(g['steps'])]} MB after {g['steps']}: growth "
        f"{g['growth_mb']:+.1f} MB, {g['objects_growth']:+d} live Python objects",
        flush=True,
    )
    sides = ("ours", "torch") if harness.torch is not None else ("ours",)
    for side in sides:
        result["peak"][side] = _child("peak", side)
    ours = result["peak"]["ours"]
    line = f"memory: U-Net step (8,1,64,64) peak extra RSS: ours {ours['peak_extra_mb']} MB"
    line += f" (kept between steps {ours['kept_mb']} MB)"
    if "torch" in result["peak"]:
        theirs = result["peak"]["torch"]
        ratio = ours["peak_extra_mb"] / max(theirs["peak_extra_mb"], 0.1)
        result["peak_ratio"] = round(ratio, 2)
        line += (
            f", torch {theirs['peak_extra_mb']} MB (kept {theirs['kept_mb']} MB): "
            f"{ratio:.2f}x (target {PEAK_TARGET}x)"
        )
    print(line, flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["growth"]:
        steps = int(argv[argv.index("--steps") + 1]) if "--steps" in argv else 1000
        print(json.dumps(growth(steps)))
    elif argv[:1] == ["peak"] and len(argv) == 2 and argv[1] in ("ours", "torch"):
        print(json.dumps(peak(argv[1])))
    else:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
