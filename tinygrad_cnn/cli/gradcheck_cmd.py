"""`tinygrad-cnn gradcheck [OP ...]`: check every differentiable op's backward numerically.

Each op has a few small cases on random float64 inputs (broadcasting, stride, padding, groups),
chosen away from kinks (relu at 0, ties in a max). Every case goes through
`tinygrad_cnn.gradcheck`; the table shows, per op, whether all its cases passed and the worst
|analytic - numeric| difference seen. The exit code is 1 when any op fails, so a contributor
can run `tinygrad-cnn gradcheck my_new_op` (after adding a case below) before sending it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tinygrad_cnn import ops
from tinygrad_cnn.gradcheck import assert_gradients_close, compare_gradients
from tinygrad_cnn.ops.kernels import KERNELS, use_kernels
from tinygrad_cnn.tensor import Tensor

Case = tuple[str, Callable[..., Tensor], list[Tensor]]  # (description, fn, inputs)
EPS = 1e-6  # gradcheck's finite-difference step


def _distinct(rng: np.random.Generator, *shape: int, positive: bool = False) -> Tensor:
    """Distinct values with 0.1 <= |x| < 2 and random signs (no ties, no relu kinks)."""
    size = int(np.prod(shape))
    values = 0.1 + rng.permutation(size) * (1.9 / size)
    if not positive:
        values = values * rng.choice([-1.0, 1.0], size=size)
    return Tensor(values.reshape(shape), requires_grad=True)  # float64


def _fixed(array: np.ndarray) -> Tensor:
    """An input that is not differentiated (labels, targets)."""
    return Tensor(np.asarray(array, dtype=np.float64))


def _cases(rng: np.random.Generator) -> dict[str, list[Case]]:
    """Every op's cases; an op this build does not have is left out."""
    d = _distinct
    labels = np.array([0, 2, 1, 2])
    mask = (rng.random((2, 1, 3, 3)) > 0.5).astype(np.float64)
    class_ids = rng.integers(0, 3, size=(2, 2, 3))
    cases: dict[str, list[Case]] = {
        "add": [("(3, 4) + (4,)", ops.add, [d(rng, 3, 4), d(rng, 4)])],
        "sub": [("(3, 4) - (3, 1)", ops.sub, [d(rng, 3, 4), d(rng, 3, 1)])],
        "mul": [("(3, 4) * (1, 4)", ops.mul, [d(rng, 3, 4), d(rng, 1, 4)])],
        "div": [("(3, 4) / (3, 4)", ops.div, [d(rng, 3, 4), d(rng, 3, 4, positive=True)])],
        "pow": [
            ("x ** y", ops.pow, [d(rng, 3, 4, positive=True), d(rng, 3, 4)]),
            ("x ** 3", lambda x: ops.pow(x, 3.0), [d(rng, 3, 4)]),
        ],
        "neg": [("-x", ops.neg, [d(rng, 3, 4)])],
        "exp": [("exp x", ops.exp, [d(rng, 3, 4)])],
        "log": [("log x", ops.log, [d(rng, 3, 4, positive=True)])],
        "relu": [("relu x", ops.relu, [d(rng, 3, 4)])],
        "sigmoid": [("sigmoid x", ops.sigmoid, [d(rng, 3, 4)])],
        "tanh": [("tanh x", ops.tanh, [d(rng, 3, 4)])],
        "sum": [
            ("axis=1", lambda x: ops.sum(x, axis=1), [d(rng, 2, 3, 4)]),
            ("all", ops.sum, [d(rng, 2, 3)]),
        ],
        "mean": [
            (
                "axis=(0, 2), keepdims",
                lambda x: ops.mean(x, axis=(0, 2), keepdims=True),
                [d(rng, 2, 3, 4)],
            )
        ],
        "max": [("axis=1", lambda x: ops.max(x, axis=1), [d(rng, 3, 5)])],
        "reshape": [("(2, 6) -> (3, 4)", lambda x: ops.reshape(x, 3, 4), [d(rng, 2, 6)])],
        "transpose": [("axes (2, 0, 1)", lambda x: ops.transpose(x, 2, 0, 1), [d(rng, 2, 3, 4)])],
        "flatten": [("(2, 3, 2) -> (2, 6)", ops.flatten, [d(rng, 2, 3, 2)])],
        "getitem": [
            (
                "x[1:, ::2]",
                lambda x: ops.getitem(x, (slice(1, None), slice(None, None, 2))),
                [d(rng, 3, 5)],
            )
        ],
        "concat": [
            ("axis=1", lambda x, y: ops.concat([x, y], axis=1), [d(rng, 2, 2, 3), d(rng, 2, 1, 3)])
        ],
        "pad": [
            ("((1, 0), (2, 1))", lambda x: ops.pad(x, ((1, 0), (2, 1)), value=0.5), [d(rng, 2, 3)])
        ],
        "matmul": [
            ("(3, 4) @ (4, 5)", ops.matmul, [d(rng, 3, 4), d(rng, 4, 5)]),
            ("(2, 3, 4) @ (4, 2)", ops.matmul, [d(rng, 2, 3, 4), d(rng, 4, 2)]),
        ],
        "conv2d": [
            (
                "stride 2, padding 1, bias",
                lambda x, w, b: ops.conv2d(x, w, b, stride=2, padding=1),
                [d(rng, 2, 2, 5, 5), d(rng, 3, 2, 3, 3), d(rng, 3)],
            ),
            (
                "padding 'same', stride 2",
                lambda x, w: ops.conv2d(x, w, stride=2, padding="same"),
                [d(rng, 1, 2, 6, 5), d(rng, 2, 2, 3, 3)],
            ),
            (
                "groups 2, dilation 2",
                lambda x, w: ops.conv2d(x, w, dilation=2, groups=2),
                [d(rng, 1, 4, 6, 6), d(rng, 2, 2, 2, 2)],
            ),
        ],
        "conv_transpose2d": [
            (
                "stride 2, padding 1, output_padding 1, bias",
                lambda x, w, b: ops.conv_transpose2d(
                    x, w, b, stride=2, padding=1, output_padding=1
                ),
                [d(rng, 1, 2, 3, 3), d(rng, 2, 3, 3, 3), d(rng, 3)],
            ),
        ],
        "maxpool2d": [
            ("2x2", lambda x: ops.maxpool2d(x, 2), [d(rng, 2, 2, 4, 5)]),
            (
                "3x3, stride 2, padding 1",
                lambda x: ops.maxpool2d(x, 3, stride=2, padding=1),
                [d(rng, 1, 2, 5, 5)],
            ),
        ],
        "avgpool2d": [
            ("2x2", lambda x: ops.avgpool2d(x, 2), [d(rng, 2, 2, 4, 4)]),
            ("3x3, stride 1", lambda x: ops.avgpool2d(x, 3, stride=1), [d(rng, 1, 2, 4, 5)]),
        ],
        "upsample2d": [("x2 nearest", lambda x: ops.upsample2d(x, 2), [d(rng, 1, 2, 3, 3)])],
        "softmax": [("axis=-1", ops.softmax, [d(rng, 3, 4)])],
        "log_softmax": [("axis=1", lambda x: ops.log_softmax(x, axis=1), [d(rng, 3, 4)])],
        "cross_entropy": [
            ("4 samples, 3 classes", lambda x: ops.cross_entropy(x, labels), [d(rng, 4, 3)])
        ],
        "binary_cross_entropy_with_logits": [
            (
                "targets in [0, 1]",
                ops.binary_cross_entropy_with_logits,
                [d(rng, 3, 4), _fixed(rng.random((3, 4)))],
            )
        ],
        "dice_loss": [
            ("one class, sigmoid", lambda x: ops.dice_loss(x, mask), [d(rng, 2, 1, 3, 3)])
        ],
        "segmentation_loss": [
            (
                "3 classes, cross-entropy + Dice",
                lambda x: ops.segmentation_loss(x, class_ids),
                [d(rng, 2, 3, 2, 3)],
            )
        ],
        "batch_norm2d": [
            (
                "training, weight and bias",
                lambda x, w, b: _batch_norm2d()(x, w, b, training=True),
                [d(rng, 3, 2, 2, 2), d(rng, 2), d(rng, 2)],
            )
        ],
    }
    available = set(ops.__all__) | ({"batch_norm2d"} if _batch_norm2d() else set())
    return {name: c for name, c in cases.items() if name in available}


def _batch_norm2d() -> Callable[..., Tensor] | None:
    """ops.batch_norm2d where it is exported, else the function in ops/norm.py, if any."""
    if hasattr(ops, "batch_norm2d"):
        return ops.batch_norm2d
    try:
        from tinygrad_cnn.ops.norm import batch_norm2d
    except ImportError:
        return None
    return batch_norm2d


# ----------------------------------------------------------------------------------------
# Running the checks
# ----------------------------------------------------------------------------------------


@dataclass
class OpResult:
    """The verdict on one op: cases run, worst |analytic - numeric|, first failure's text."""

    name: str
    cases: int
    worst: float
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None


def check_case(fn: Callable[..., Tensor], inputs: list[Tensor]) -> tuple[float, str | None]:
    """Run gradcheck on one case; return (worst |analytic - numeric|, failure text or None).

    Example:
        >>> worst, error = check_case(ops.tanh, [Tensor(np.array([0.5, -1.0]), requires_grad=True)])
        >>> bool(worst < 1e-8), error
        (True, None)
    """
    try:
        pairs = compare_gradients(fn, inputs, eps=EPS, seed=0)
    except Exception as exc:  # a backward that crashes
        return float("nan"), f"{type(exc).__name__}: {exc}"
    worst = max(float(np.max(np.abs(analytic - numeric))) for _, analytic, numeric in pairs)
    try:
        assert_gradients_close(pairs)
    except AssertionError as exc:  # a wrong gradient: the message names the worst element
        return worst, f"{type(exc).__name__}: {exc}"
    return worst, None


def ops_without_cases() -> list[str]:
    """Public ops that have no case here yet (each new op should get one).

    Example:
        >>> ops_without_cases()
        []
    """
    cases = _cases(np.random.default_rng(0))
    return [name for name in ops.__all__ if name not in cases]


def run_checks(names: list[str] | None = None, seed: int = 0) -> list[OpResult]:
    """Gradcheck the named ops (all by default) and return one OpResult per op.

    Raises:
        ValueError: an unknown op name; the message lists the valid names.
    Example:
        >>> [(r.name, r.cases, r.passed) for r in run_checks(["mul", "conv2d"])]
        [('mul', 1, True), ('conv2d', 3, True)]
    """
    cases = _cases(np.random.default_rng(seed))
    unknown = [name for name in names or [] if name not in cases]
    if unknown:
        raise ValueError(
            f"unknown op {', '.join(map(repr, unknown))}; valid names: {', '.join(cases)}"
        )
    results = []
    for name in names or list(cases):
        worst, first_error = 0.0, None
        for description, fn, inputs in cases[name]:
            difference, error = check_case(fn, inputs)
            worst = max(worst, difference) if not np.isnan(difference) else difference
            if error and first_error is None:
                first_error = f"{description}: {error}"
        results.append(OpResult(name, len(cases[name]), worst, first_error))
    return results


# ----------------------------------------------------------------------------------------
# Printing
# ----------------------------------------------------------------------------------------


def _print_plain(results: list[OpResult]) -> None:
    width = max(len(r.name) for r in results)
    print(f"{'op':<{width}}  cases  result  worst |analytic - numeric|")
    for r in results:
        print(
            f"{r.name:<{width}}  {r.cases:>5}  {'pass' if r.passed else 'FAIL':<6}  {r.worst:.2e}"
        )
    for r in results:
        if not r.passed:
            print(f"{r.name}: {r.error}")


def _print_rich(results: list[OpResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="gradient check (float64, central differences, eps 1e-6)")
    for column, justify in (
        ("op", "left"),
        ("cases", "right"),
        ("result", "left"),
        ("worst |analytic - numeric|", "right"),
    ):
        table.add_column(column, justify=justify)
    for r in results:
        verdict = "[green]pass[/]" if r.passed else "[bold red]FAIL[/]"
        table.add_row(r.name, str(r.cases), verdict, f"{r.worst:.2e}")
    console = Console()
    console.print(table)
    for r in results:
        if not r.passed:
            console.print(f"[red]{r.name}[/]: {r.error}", highlight=False)


def run(args: argparse.Namespace) -> int:
    """Check the ops named in args.ops (all by default), print the table; 1 if any fails."""
    with use_kernels(args.kernels):  # conv and pooling: the fast or the reference kernels
        results = run_checks(args.ops)
    (_print_rich if sys.stdout.isatty() else _print_plain)(results)
    failed = [r.name for r in results if not r.passed]
    summary = f"{len(results) - len(failed)} of {len(results)} ops pass" + (
        f"; failing: {', '.join(failed)}" if failed else ""
    )
    print(summary)
    if not args.ops and ops_without_cases():
        print(f"no case yet (add one in cli/gradcheck_cmd.py): {', '.join(ops_without_cases())}")
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `gradcheck` subcommand to the CLI's subparsers."""
    parser = subparsers.add_parser(
        "gradcheck",
        help="check every op's backward against finite differences",
        description="Run the numerical gradient check (float64, a random upstream gradient) "
        "on small cases of every differentiable op, or of the ops named, and print a pass/fail "
        "table with the worst |analytic - numeric| difference per op. Exits 1 if any fails.",
    )
    parser.add_argument("ops", nargs="*", metavar="OP", help="op names (default: all)")
    parser.add_argument(
        "--kernels",
        choices=KERNELS,
        default="fast",
        help="check the fast convolution and pooling kernels, or ops/reference.py's",
    )
    parser.set_defaults(run=run)
