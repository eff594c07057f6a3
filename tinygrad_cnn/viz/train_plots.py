"""Pictures of training itself: layer health over the steps, the lr range test, runs compared.

    plot_layers      grad norm, update/weight ratio (with the healthy band), dead ReLUs and
                     activation std per layer over the training steps: one line per layer
    plot_lr_find     loss against learning rate (log axis), raw and smoothed, the suggestion
    plot_runs        several runs' loss and accuracy curves overlaid, labelled by what differs

Like `plots.py`, each builds a `matplotlib.figure.Figure`, saves one PNG and returns its path.

Read next: `plots.py` (the curves of one run); `cli/lr_find.py` and `cli/runs_cmd.py` draw these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from tinygrad_cnn.viz.plots import _save

LAYER_PANELS = (
    ("grad_norm", "gradient norm ||g||", True),
    ("update_ratio", "update / weight per step", True),
    ("dead_relu", "dead ReLU channels (%)", False),
    ("act_std", "activation std", True),
)


def _values(rows: Sequence[dict], key: str) -> np.ndarray:
    values = []
    for row in rows:
        value = row.get(key)
        values.append(math.nan if value in (None, "") else float(value))
    return np.array(values, dtype=np.float64)


def plot_layers(rows: Sequence[dict[str, Any]], path: str | Path, title: str | None = None) -> Path:
    """Four panels over the training steps, one line per layer (rows as LayerHealth makes).

    Args:
        rows: dicts with 'step', 'layer', 'grad_norm', 'update_ratio', 'dead_relu', 'act_std'
            (a LayerHealth's `rows`, or layers.csv read back with csv.DictReader).
    Raises:
        ValueError: no rows.
    Example:
        >>> import tempfile, pathlib
        >>> rows = [{"step": s, "layer": name, "grad_norm": 1.0 / s, "update_ratio": 1e-3,
        ...          "dead_relu": 0.1, "act_std": 0.5}
        ...         for s in (1, 2) for name in ("0 Conv2d", "3 Linear")]
        >>> plot_layers(rows, pathlib.Path(tempfile.mkdtemp()) / "layers.png").name
        'layers.png'
    """
    if not rows:
        raise ValueError("plot_layers: no rows (did the run watch any step?)")
    layers = list(dict.fromkeys(row["layer"] for row in rows))
    figure = Figure(figsize=(11, 7))
    axes = figure.subplots(2, 2).ravel()
    for ax, (key, label, log) in zip(axes, LAYER_PANELS):
        for layer in layers:
            mine = [row for row in rows if row["layer"] == layer]
            steps, values = _values(mine, "step"), _values(mine, key)
            if key == "dead_relu":
                values = 100 * values
            if log:
                values = np.where(values > 0, values, np.nan)  # a log axis cannot show 0
            if np.isfinite(values).any():
                ax.plot(steps, values, marker=".", markersize=3, linewidth=1.2, label=layer)
        if key == "update_ratio":
            ax.axhspan(1e-4, 1e-2, color="#2ca02c", alpha=0.08, label="healthy 1e-4..1e-2")
        if log and ax.lines:
            ax.set_yscale("log")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    axes[1].legend(fontsize=8, loc="best", handles=axes[1].patches[:1])
    figure.suptitle(title or "layer health while training", fontsize=12)
    figure.tight_layout()
    return _save(figure, path)


def plot_lr_find(
    lrs: Sequence[float],
    losses: Sequence[float],
    smoothed: Sequence[float],
    suggestion: float | None,
    path: str | Path,
    method: str = "steepest descent",
    title: str | None = None,
) -> Path:
    """The range test: loss per step against its learning rate, on a log axis.

    Example:
        >>> import tempfile, pathlib
        >>> lrs = np.geomspace(1e-5, 1, 50); loss = 2 - np.tanh(np.log10(lrs) + 3)
        >>> plot_lr_find(lrs, loss, loss, 1e-3, pathlib.Path(tempfile.mkdtemp()) / "lr.png").name
        'lr.png'
    """
    figure = Figure(figsize=(7, 4.5))
    ax = figure.subplots()
    ax.plot(lrs, losses, color="#999999", linewidth=0.8, label="loss of each step")
    ax.plot(lrs, smoothed, color="#1f77b4", linewidth=2, label="smoothed")
    if suggestion is not None:
        label = f"{suggestion:.1e} ({method})"
        ax.axvline(suggestion, color="#d62728", linestyle="--", label=label)
    ax.set_xscale("log")
    finite = np.asarray(smoothed, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size:  # the divergence at the end would squash the interesting part
        raw = np.asarray(losses, dtype=np.float64)[: int(np.argmin(finite)) + 1]
        low, start = min(finite.min(), np.nanmin(raw)), finite[0]
        ax.set_ylim(low - 0.1 * (start - low + 1e-3), start + 0.5 * (start - low + 1e-3))
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(title or "learning-rate range test")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    figure.tight_layout()
    return _save(figure, path)


def plot_runs(
    histories: Sequence[Sequence[dict]],
    labels: Sequence[str],
    path: str | Path,
    metric: str = "accuracy",
    title: str | None = None,
) -> Path:
    """Loss (left) and `metric` (right) per epoch of several runs, one colour per run;
    training solid, validation dashed.

    Raises:
        ValueError: no histories, or labels of another length.
    Example:
        >>> import tempfile, pathlib
        >>> a = [{"epoch": 1, "loss": 1.0, "accuracy": 0.5},
        ...      {"epoch": 2, "loss": 0.5, "accuracy": 0.8}]
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> plot_runs([a, a[:1]], ["lr=0.1", "lr=1"], folder / "c.png").name
        'c.png'
    """
    if not histories or len(histories) != len(labels):
        raise ValueError(
            f"plot_runs: need one label per history, got {len(histories)} histories "
            f"and {len(labels)} labels"
        )
    figure = Figure(figsize=(11, 4.5))
    left, right = figure.subplots(1, 2)
    colors = [f"C{i % 10}" for i in range(len(histories))]
    for history, label, color in zip(histories, labels, colors):
        epochs = _values(history, "epoch")
        for ax, key, scale in ((left, "loss", 1), (right, metric, 100)):
            name = label if ax is right else None  # one legend entry per run, right panel
            for prefix, style in (("", "-"), ("val_", "--")):
                values = scale * _values(history, prefix + key)
                if np.isfinite(values).any():
                    ax.plot(epochs, values, style, color=color, marker=".", label=name)
                    name = None  # its other line shares the colour
    left.set_title("loss (training solid, validation dashed)", fontsize=10)
    right.set_title(f"{metric} % (training solid, validation dashed)", fontsize=10)
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    right.legend(fontsize=8)
    figure.suptitle(title or "runs compared", fontsize=12)
    figure.tight_layout()
    return _save(figure, path)
