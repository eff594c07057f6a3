"""Why im2col exists, in one number: the reference kernels' time over the fast kernels'.

    python -m benchmarks.reference [--quick] [--json PATH]    (also a section of `benchmarks`)

`ops/reference.py` computes convolution and pooling as the math reads (a loop over the kernel
taps, one dot product over the channels per tap); the fast kernels (`conv.py`, `pool.py`) lay
every window out once and make the convolution one big matrix product. Each case below runs
both on the same float32 arrays, checks that they agree, then times interleaved rounds (as the
rest of the suite does) and prints the medians and reference / fast.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import harness  # noqa: E402  (first: it pins the BLAS threads before numpy loads)

# isort: split
import numpy as np  # noqa: E402

from tinygrad_cnn import Tensor, models, ops  # noqa: E402

CONV_CASES = [  # (N, C, H, W), O, kernel, stride, padding: the ops section's shapes
    ((64, 1, 28, 28), 32, 3, 1, 1),
    ((64, 32, 14, 14), 64, 3, 1, 1),
    ((8, 64, 64, 64), 64, 3, 1, 1),
    ((8, 3, 128, 128), 16, 3, 2, 1),
]


def _step(fn, arrays: list[np.ndarray], grad_seed: int = 0):
    """A forward + backward of fn on fresh tensors; returns (output, gradients)."""
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(np.random.default_rng(grad_seed).standard_normal(out.shape).astype(out.dtype))
    return out.data, [t.grad for t in tensors]


def cases(quick: bool = False) -> list[tuple[str, object, list[np.ndarray]]]:
    """(name, fn, arrays) for each case; fn runs under whichever kernels are switched on."""
    rng = np.random.default_rng(0)
    found = []
    for x_shape, O, k, s, p in CONV_CASES[:2] if quick else CONV_CASES:
        N, C, H, W = x_shape
        x = rng.standard_normal(x_shape).astype(np.float32)
        w = (rng.standard_normal((O, C, k, k)) / np.sqrt(C * k * k)).astype(np.float32)
        name = f"conv fwd+bwd ({N},{C},{H},{W}) -> {O}, {k}x{k} s{s}"
        found.append((name, lambda x, w, s=s, p=p: ops.conv2d(x, w, stride=s, padding=p), [x, w]))
    x = rng.standard_normal((64, 32, 28, 28)).astype(np.float32)
    found.append(("max pool 2x2 fwd+bwd (64,32,28,28)", lambda x: ops.maxpool2d(x, 2), [x]))
    model = models.mnist_cnn()
    model.eval()  # no dropout: both kernels see the same network
    images = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, size=64)
    found.append(
        (
            "course CNN fwd+bwd, batch 64",
            lambda images: ops.cross_entropy(model(images), labels),
            [images],
        )
    )
    return found


def check(fn, arrays: list[np.ndarray]) -> None:
    """Raise AssertionError unless both kernels give the same output and gradients."""
    fast = _step(fn, arrays)
    with ops.use_kernels("reference"):
        ref = _step(fn, arrays)
    for a, b in zip([fast[0], *fast[1]], [ref[0], *ref[1]]):
        scale = float(np.abs(a).max()) or 1.0  # float32 sums of hundreds of terms
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-4 * scale)


def run(quick: bool = False) -> list[dict]:
    """Time every case, reference and fast interleaved; print and return the rows."""
    rounds = 3 if quick else 7
    rows = []
    print(f"{'case (reference kernels vs fast)':<44} {'ref ms':>9} {'fast ms':>9} {'ref/fast':>8}")
    for name, fn, arrays in cases(quick):
        check(fn, arrays)
        times: dict[str, list[float]] = {"fast": [], "reference": []}
        for r in range(rounds + 1):  # round 0 warms up
            for kernels in ("fast", "reference") if r % 2 else ("reference", "fast"):
                with ops.use_kernels(kernels):
                    start = time.perf_counter()
                    _step(fn, arrays)
                    if r:
                        times[kernels].append(time.perf_counter() - start)
        ref_ms = statistics.median(times["reference"]) * 1e3
        fast_ms = statistics.median(times["fast"]) * 1e3
        ratio = statistics.median(a / b for a, b in zip(times["reference"], times["fast"]))
        print(f"{name:<44} {ref_ms:9.1f} {fast_ms:9.1f} {ratio:7.1f}x", flush=True)
        rows.append({"case": name, "reference_ms": ref_ms, "fast_ms": fast_ms, "ratio": ratio})
    return rows


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and cases (a smoke run)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    print(f"threads {harness.THREADS}; medians of interleaved rounds; ratio = median of pairs")
    rows = run(args.quick)
    if args.json:
        Path(args.json).write_text(json.dumps({"benchmark": "reference", "results": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
