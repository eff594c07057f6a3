"""`tinygrad-cnn lr-find`: the learning-rate range test, its plot and a suggested rate.

    tinygrad-cnn lr-find --model lenet --dataset mnist        # -> runs/lr-find-.../lr_find.png

The model trains for `--steps` steps while the learning rate grows exponentially from
`--start` to `--end` (see `lr_finder.py` for the method); the smoothed loss against the rate
is drawn to `lr_find.png` and written to `lr_find.csv` in the `--out` folder (or to the
`--out NAME.png` given, with NAME.csv beside it), and the rate
where the loss falls fastest is printed, with the method named.

Read next: `cli/runs_cmd.py` (listing and comparing run folders).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from rich.console import Console

from tinygrad_cnn import data, optim
from tinygrad_cnn.cli.outputs import check_output_folder
from tinygrad_cnn.cli.runs import DATASETS, MODEL_KWARGS, build, load_split
from tinygrad_cnn.cli.train import _positive
from tinygrad_cnn.lr_finder import lr_range_test
from tinygrad_cnn.viz import train_plots


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the lr-find subcommand."""
    parser = subparsers.add_parser(
        "lr-find",
        help="the learning-rate range test: plot loss against lr and suggest one",
        description="Train a fresh model briefly while the learning rate grows exponentially, "
        "plot the smoothed loss against it (lr_find.png) and suggest the rate where the loss "
        "falls fastest.",
    )
    parser.add_argument("--model", choices=sorted(MODEL_KWARGS), default="mnist-cnn")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    parser.add_argument("--batch-size", type=_positive(int), default=128)
    parser.add_argument(
        "--steps", type=_positive(int), default=200, help="steps of the test (default 200)"
    )
    parser.add_argument("--start", type=_positive(float), default=1e-7, help="first lr")
    parser.add_argument("--end", type=_positive(float), default=10.0, help="last lr")
    parser.add_argument(
        "--limit", type=_positive(int), default=None, help="use only N training images"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder (default runs/lr-find-<dataset>-<model>-<time>)",
    )
    parser.set_defaults(run=run_lr_find)


def run_lr_find(args: argparse.Namespace) -> int:
    """`lr-find`: run the range test, write lr_find.png and lr_find.csv, print the suggestion."""
    if not args.start < args.end:
        raise ValueError(f"--start {args.start:g} must be below --end {args.end:g}")
    if args.steps < 10:
        raise ValueError(f"--steps must be at least 10, got {args.steps}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = args.out or Path("runs") / f"lr-find-{args.dataset}-{args.model}-{stamp}"
    picture = folder / "lr_find.png"
    if folder.suffix.lower() == ".png":  # --out names the picture itself
        folder, picture = folder.parent, folder
    check_output_folder(folder, "--out" if args.out else "the run folder")
    console = Console(soft_wrap=True)
    images, labels = load_split(args.dataset, "train", args.limit, args.seed)
    model = build(args.model, args.dataset, args.seed)
    if args.optimizer == "sgd":
        optimizer = optim.SGD(model.parameters(), lr=args.start, momentum=0.9)
    else:
        optimizer = optim.Adam(model.parameters(), lr=args.start)
    loader = data.DataLoader(images, labels, args.batch_size, seed=args.seed)
    console.print(
        f"range test: {args.model} on {args.dataset}, {args.optimizer}, batch {args.batch_size}, "
        f"lr from {args.start:.0e} to {args.end:.0e} over {args.steps} steps",
        highlight=False,
    )
    result = lr_range_test(
        model,
        loader,
        optimizer,
        DATASETS[args.dataset].loss,
        start=args.start,
        end=args.end,
        steps=args.steps,
    )
    folder.mkdir(parents=True, exist_ok=True)
    table = picture.with_suffix(".csv")
    with table.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["lr", "loss", "smoothed"])
        writer.writerows(zip(result["lrs"], result["losses"], result["smoothed"]))
    suggestion, method = result["suggestion"], result["method"]
    picture = train_plots.plot_lr_find(
        result["lrs"],
        result["losses"],
        result["smoothed"],
        suggestion,
        picture,
        method="steepest descent",
        title=f"{args.model} on {args.dataset}, {args.optimizer}: learning-rate range test",
    )
    stopped = len(result["lrs"])
    if stopped < args.steps:
        console.print(
            f"the loss diverged at lr {result['lrs'][-1]:.1e} (step {stopped}): stopped there",
            highlight=False,
        )
    if suggestion is None:
        console.print("no suggestion: the loss never fell (try a wider --start/--end range)")
    else:
        console.print(
            f"[bold]suggested learning rate {suggestion:.1e}[/bold] ({method})", highlight=False
        )
    console.print(f"  plot   {picture}\n  table  {table}", highlight=False)
    return 0
