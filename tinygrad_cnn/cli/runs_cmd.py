"""`tinygrad-cnn runs list | compare | layers`: what the run folders hold, side by side.

    tinygrad-cnn runs list                                   # a table of runs/*
    tinygrad-cnn runs compare runs/A runs/B --out cmp.png    # their curves overlaid
    tinygrad-cnn runs layers runs/A --out layers.png         # a --watch run's layer health

A run folder is read from its `model.safetensors` metadata (always there once an epoch
finished) and `results.json` (there once the run finished). `compare` labels each run by
the settings that differ between the runs (lr=0.001 vs lr=0.003, say), so the legend says
what the comparison is about.

Read next: `viz/train_plots.py` (`plot_runs`).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tinygrad_cnn import checkpoint
from tinygrad_cnn.cli.outputs import check_output_folder
from tinygrad_cnn.history import History
from tinygrad_cnn.viz import train_plots

# the settings a label may name, in this order
SETTINGS = ("model", "dataset", "optimizer", "lr", "batch_size", "epochs", "schedule",
            "augment", "seed", "train_images")  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `runs list` and `runs compare`."""
    runs = subparsers.add_parser(
        "runs",
        help="list the run folders, or compare their curves",
        description="List run folders (model, dataset, epochs, best validation accuracy, "
        "time), or overlay several runs' curves in one picture.",
    )
    actions = runs.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="a table of the run folders under --root")
    listing.add_argument(
        "--root", type=Path, default=Path("runs"), help="folder of run folders (default runs)"
    )
    listing.set_defaults(run=run_list)
    compare = actions.add_parser("compare", help="overlay the curves of several runs")
    compare.add_argument("folders", type=Path, nargs="+", metavar="RUN", help="run folders")
    compare.add_argument(
        "--out", type=Path, default=Path("cmp.png"), help="the picture (default cmp.png)"
    )
    compare.set_defaults(run=run_compare)
    layers = actions.add_parser("layers", help="draw a watched run's layers.csv again")
    layers.add_argument("folder", type=Path, metavar="RUN", help="a run trained with --watch")
    layers.add_argument("--out", type=Path, required=True, help="the picture (NAME.png)")
    layers.set_defaults(run=run_layers)


def read_run(folder: Path) -> dict[str, Any]:
    """A run folder's settings, history and test figures.

    Raises:
        FileNotFoundError: no run folder there (no checkpoint, no results, no history).
    """
    folder = Path(folder)
    settings: dict[str, Any] = {}
    history: list[dict] = []
    found = False
    path = folder / "model.safetensors"
    if path.is_file():
        info = checkpoint.read_metadata(path)
        settings = {"model": info["model"], **(info.get("metadata") or {})}
        history, found = info.get("history") or [], True
    if (folder / "results.json").is_file():
        settings.update(json.loads((folder / "results.json").read_text()))
        found = True
    if (folder / "history.json").is_file():
        history, found = list(History.from_json(folder / "history.json")), True
    if not found:
        raise FileNotFoundError(
            f"{folder} is not a run folder (no model.safetensors, results.json or history.json)"
        )
    settings.setdefault("epochs", len(history))
    return {"folder": folder, "settings": settings, "history": history}


def _best(history: list[dict]) -> tuple[str, float | None]:
    """The first validation metric (not the loss) and its best value over the epochs."""
    for key in ("val_accuracy", "val_mean_iou", "val_pixel_accuracy"):
        values = [epoch[key] for epoch in history if epoch.get(key) is not None]
        if values:
            return key[4:], max(values)
    return "", None


def run_list(args: argparse.Namespace) -> int:
    """`runs list`: one row per run folder under --root, oldest first."""
    root = args.root
    if not root.is_dir():
        raise FileNotFoundError(f"runs list: no folder {root} (train a model first)")
    console = Console(soft_wrap=True)
    table = Table(title=f"runs in {root}", title_justify="left")
    for name in ("run", "model", "dataset", "epochs", "best val", "test", "time"):
        table.add_column(name, justify="left" if name in ("run", "model", "dataset") else "right")
    folders = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    count = 0
    for folder in folders:
        try:
            run = read_run(folder)
        except (FileNotFoundError, ValueError):
            continue  # not a run folder (an lr-find folder, a stray file)
        settings, history = run["settings"], run["history"]
        metric, best = _best(history)
        test = (settings.get("test") or {}).get(metric) if metric else None
        seconds = sum(epoch.get("time") or 0 for epoch in history)
        table.add_row(
            folder.name,
            str(settings.get("model", "?")),
            str(settings.get("dataset", "?")),
            f"{len(history)}/{settings.get('epochs', len(history))}",
            f"{100 * best:.2f}% {metric}" if best is not None else "-",
            f"{100 * test:.2f}%" if test is not None else "-",
            f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s",
        )
        count += 1
    if not count:
        console.print(f"no run folders in {root}")
        return 0
    console.print(table)
    return 0


def differing_labels(runs: list[dict[str, Any]]) -> list[str]:
    """One label per run naming the settings that differ between the runs ('lr=0.003').

    Example:
        >>> a = {"folder": Path("a"), "settings": {"model": "lenet", "lr": 0.001}}
        >>> b = {"folder": Path("b"), "settings": {"model": "lenet", "lr": 0.003}}
        >>> differing_labels([a, b])
        ['lr=0.001', 'lr=0.003']
    """
    keys = [
        key for key in SETTINGS if len({json.dumps(run["settings"].get(key)) for run in runs}) > 1
    ]
    labels = []
    for run in runs:
        parts = [f"{key}={_short(run['settings'].get(key))}" for key in keys]
        labels.append(", ".join(parts) if parts else run["folder"].name)
    if len(set(labels)) < len(labels):  # same settings: the folder names tell them apart
        labels = [f"{run['folder'].name} ({label})" for run, label in zip(runs, labels)]
    return labels


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def run_compare(args: argparse.Namespace) -> int:
    """`runs compare`: overlay the runs' loss and metric curves in --out."""
    out = args.out
    check_output_folder(out.parent if str(out.parent) else Path("."), "--out")
    if out.is_dir():
        raise ValueError(f"--out {out}: is a folder; give the picture's file name (cmp.png)")
    runs = [read_run(folder) for folder in args.folders]
    empty = [str(run["folder"]) for run in runs if not run["history"]]
    if empty:
        raise ValueError(f"runs compare: {', '.join(empty)} has no finished epoch to draw")
    labels = differing_labels(runs)
    metric = _best(runs[0]["history"])[0] or "accuracy"
    path = train_plots.plot_runs([run["history"] for run in runs], labels, out, metric=metric)
    console = Console(soft_wrap=True)
    for run, label in zip(runs, labels):
        console.print(f"  {label:<30}  {run['folder']}", highlight=False)
    console.print(f"wrote {path}", highlight=False)
    return 0


def run_layers(args: argparse.Namespace) -> int:
    """`runs layers`: plot a run's layers.csv (written by train --watch) to --out."""
    table = args.folder / "layers.csv"
    if not table.is_file():
        raise FileNotFoundError(f"runs layers: no {table} (train with --watch to write it)")
    check_output_folder(args.out.parent if str(args.out.parent) else Path("."), "--out")
    with table.open(newline="") as file:
        rows = list(csv.DictReader(file))
    settings = read_run(args.folder)["settings"]
    title = f"{settings.get('model', '?')} on {settings.get('dataset', '?')}: layer health"
    path = train_plots.plot_layers(rows, args.out, title)
    Console(soft_wrap=True).print(f"wrote {path}", highlight=False)
    return 0
