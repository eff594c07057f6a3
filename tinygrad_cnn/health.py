"""Layer health: what each layer's gradients, updates and activations do while training.

A run that goes wrong usually goes wrong in one layer first. `fit(..., watch=True)` samples a
training step every `every` steps (and the last step of each epoch) and measures, for every
module that owns parameters (a Conv2d, a Linear, a BatchNorm2d):

    grad_norm     ||g||, over all the layer's parameters: 0 means no signal reaches it,
                  nan/inf that backward blew up there
    update_ratio  ||w_after - w_before|| / ||w_before|| of that step: the fraction of the
                  weights one step changes. About 1e-3 is healthy; below 1e-4 the layer
                  barely learns, above 1e-2 it is being thrown around (flagged 'low'/'high')
    dead_relu     the fraction of channels (features, for a Linear) that the first ReLU
                  after the layer outputs as 0 for every example of the batch
    act_mean/std  mean and standard deviation of the layer's output on the batch

The layer outputs are seen through `nn.hooks.watch_modules` (as `nn.summary` sees shapes),
installed only for the sampled step, so the other steps run at full speed.

Read next: `train.py` (where `fit` calls this around a step).
"""

from __future__ import annotations

import contextlib
import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_cnn import nn
from tinygrad_cnn.nn.hooks import watch_modules

HEALTHY_RATIO = (1e-4, 1e-2)  # the usual band for update / weight
COLUMNS = (
    "epoch", "step", "layer", "grad_norm", "weight_norm", "update_ratio", "flag",
    "dead_relu", "act_mean", "act_std",
)  # fmt: skip


def _norm(arrays: list[np.ndarray]) -> float:
    return math.sqrt(sum(float(np.sum(np.square(a, dtype=np.float64))) for a in arrays))


def ratio_flag(ratio: float) -> str:
    """'low', 'high' or '' for an update/weight ratio against the band 1e-4..1e-2.

    Example:
        >>> ratio_flag(1e-3), ratio_flag(1e-6), ratio_flag(0.5)
        ('', 'low', 'high')
    """
    low, high = HEALTHY_RATIO
    if not math.isfinite(ratio) or ratio > high:
        return "high"
    return "low" if ratio < low else ""


class LayerHealth:
    """Samples per-layer statistics around training steps; `fit(watch=...)` drives it.

    fit calls `begin_step(epoch, last)` before the forward pass, `after_backward()` before
    `optimizer.step()` and `after_step()` after it; each sampled step adds one row per layer
    to `rows` (dicts with the keys of COLUMNS) and may add to `warnings`.

    Args:
        model: the Module being trained.
        every: sample every this many steps (counted over the whole run), and the last
            step of each epoch.
    Raises:
        ValueError: every < 1, or a model with no parameters.
    Example:
        >>> from tinygrad_cnn import optim, ops
        >>> from tinygrad_cnn.tensor import Tensor
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> health, opt = LayerHealth(model, every=1), optim.SGD(model.parameters(), lr=0.1)
        >>> health.begin_step(epoch=1, last=True)
        True
        >>> loss = ops.cross_entropy(model(Tensor(np.ones((5, 3), np.float32))), [0] * 5)
        >>> opt.zero_grad(); loss.backward(); health.after_backward(); opt.step()
        >>> rows = health.after_step()
        >>> [row["layer"] for row in rows], sorted(rows[0]) == sorted(COLUMNS)
        (['0 Linear', '2 Linear'], True)
    """

    def __init__(self, model: Any, every: int = 50) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"LayerHealth: every must be an int >= 1, got {every!r}")
        self.every = every
        self.layers: list[tuple[str, Any, list[Any]]] = []  # (label, module, own parameters)
        for name, module in model.named_modules():
            own = [p for key, p in module.named_parameters() if "." not in key]
            if own:
                label = f"{name} {type(module).__name__}" if name else type(module).__name__
                self.layers.append((label, module, own))
        if not self.layers:
            raise ValueError("LayerHealth: the model has no parameters to watch")
        self.rows: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self.step = 0  # training steps seen over the run
        self._sampling, self._epoch = False, 0
        self._outputs: list[tuple[Any, np.ndarray]] = []  # (module, output) in finishing order
        self._grads: list[float] = []
        self._before: list[list[np.ndarray]] = []
        self._warned: set[str] = set()
        self._watching: contextlib.ExitStack | None = None  # the forward hook, while sampling

    # --- the three calls around a step ---------------------------------------------------
    def begin_step(self, epoch: int, last: bool) -> bool:
        """Count a step; True (and hooks installed) when this one is sampled."""
        self.step += 1
        self._epoch = epoch
        self._sampling = last or self.step % self.every == 0
        self._outputs = []
        if self._sampling:
            self._watching = contextlib.ExitStack()
            self._watching.enter_context(watch_modules(self._record))
        return self._sampling

    def _record(self, module: Any, output: Any) -> None:
        data = getattr(output, "data", None)
        if isinstance(data, np.ndarray):
            self._outputs.append((module, data))

    def after_backward(self) -> None:
        """Gradient norms and a copy of the weights, before the optimizer moves them."""
        self.close()  # the forward is over: no more outputs to record
        if not self._sampling:
            return
        self._grads = [
            _norm([p.grad for p in params if p.grad is not None]) for _, _, params in self.layers
        ]
        self._before = [[p.data.copy() for p in params] for _, _, params in self.layers]

    def after_step(self) -> list[dict[str, Any]]:
        """The sampled step's rows (empty when the step was not sampled)."""
        if not self._sampling:
            return []
        self._sampling = False
        activations = self._activations()
        rows = []
        for (label, module, params), grad_norm, before in zip(
            self.layers, self._grads, self._before
        ):
            weight_norm = _norm(before)
            change = _norm([p.data - old for p, old in zip(params, before)])
            ratio = change / weight_norm if weight_norm > 0 else math.nan
            mean, std, dead = activations.get(id(module), (math.nan, math.nan, math.nan))
            rows.append(
                {
                    "epoch": self._epoch,
                    "step": self.step,
                    "layer": label,
                    "grad_norm": grad_norm,
                    "weight_norm": weight_norm,
                    "update_ratio": ratio,
                    "flag": ratio_flag(ratio) if weight_norm > 0 else "",
                    "dead_relu": dead,
                    "act_mean": mean,
                    "act_std": std,
                }
            )
            if (grad_norm == 0 or not math.isfinite(grad_norm)) and label not in self._warned:
                self._warned.add(label)
                what = "0: no gradient reaches it" if grad_norm == 0 else f"{grad_norm}"
                self.warnings.append(
                    f"layer {label}: gradient norm {what} (epoch {self._epoch}, step {self.step})"
                )
        self.rows.extend(rows)
        return rows

    def close(self) -> None:
        """Remove the forward hook (fit calls this when a step ends early, too)."""
        if self._watching is not None:
            self._watching.close()
            self._watching = None

    def _activations(self) -> dict[int, tuple[float, float, float]]:
        """id(layer) -> (mean, std, dead ReLU fraction) from the recorded forward."""
        watched = {id(module) for _, module, _ in self.layers}
        result, current = {}, None
        for module, output in self._outputs:
            if id(module) in watched:
                current = id(module)
                result[current] = (float(output.mean()), float(output.std()), math.nan)
            elif isinstance(module, nn.ReLU) and current is not None:
                mean, std, dead = result[current]
                if math.isnan(dead):  # the first ReLU after the layer
                    result[current] = (mean, std, _dead_fraction(output))
        return result

    # --- output ----------------------------------------------------------------------------
    def latest(self) -> list[dict[str, Any]]:
        """The rows of the last sampled step."""
        return self.rows[-len(self.layers) :] if self.rows else []

    def to_csv(self, path: str | Path) -> Path:
        """Write every row (one per layer per sampled step) with the columns of COLUMNS."""
        path = Path(path)
        with path.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(self.rows)
        return path


def layer_health(model: Any, watch: bool | int | LayerHealth) -> LayerHealth | None:
    """What `fit(watch=...)` asks for: None (False), every 50 steps (True), every n steps (n),
    or the LayerHealth given.

    Raises:
        TypeError: watch is none of these.
    Example:
        >>> from tinygrad_cnn import nn
        >>> layer_health(nn.Linear(2, 2), 10).every, layer_health(nn.Linear(2, 2), False)
        (10, None)
    """
    if isinstance(watch, LayerHealth):
        return watch
    if watch is False or watch is None:
        return None
    if watch is True:
        return LayerHealth(model)
    if isinstance(watch, int):
        return LayerHealth(model, every=watch)
    raise TypeError(f"fit: watch must be a bool, a step count or a LayerHealth, got {watch!r}")


def _dead_fraction(output: np.ndarray) -> float:
    """Fraction of channels (axis 1) that are 0 for every example and position of the batch."""
    if output.ndim < 2 or output.shape[0] == 0:
        return math.nan
    alive = (np.moveaxis(output, 1, 0).reshape(output.shape[1], -1) > 0).any(axis=1)
    return float(1 - alive.mean())


def format_row(row: dict[str, Any]) -> str:
    """One plain line for a layer's row (what fit prints off a terminal).

    Example:
        >>> format_row({"layer": "0 Conv2d", "grad_norm": 0.12, "update_ratio": 2e-3,
        ...             "flag": "", "dead_relu": 0.25, "act_mean": 0.1, "act_std": 0.5})
        '0 Conv2d  grad 1.20e-01  update/weight 2.00e-03  dead ReLU 25%  act 0.100 ± 0.500'
    """
    flag = f" ({row['flag']})" if row["flag"] else ""
    dead = "-" if math.isnan(row["dead_relu"]) else f"{100 * row['dead_relu']:.0f}%"
    return (
        f"{row['layer']}  grad {row['grad_norm']:.2e}  update/weight "
        f"{row['update_ratio']:.2e}{flag}  dead ReLU {dead}  "
        f"act {row['act_mean']:.3f} ± {row['act_std']:.3f}"
    )


def health_table(rows: list[dict[str, Any]], title: str = "layer health") -> Any:
    """A rich Table of one sampled step's rows, ratios outside the band in red.

    Example:
        >>> row = {"layer": "0 Linear", "grad_norm": 0.0, "update_ratio": 0.0, "flag": "low",
        ...        "dead_relu": math.nan, "act_mean": 0.0, "act_std": 1.0}
        >>> health_table([row]).row_count
        1
    """
    from rich.table import Table  # rich stays at the edge: only the display needs it

    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    for name in ("layer", "grad norm", "update/weight", "dead ReLU", "act mean", "act std"):
        table.add_column(name, justify="left" if name == "layer" else "right")
    for row in rows:
        ratio = f"{row['update_ratio']:.1e}"
        if row["flag"]:
            ratio = f"[red]{ratio} {row['flag']}[/red]"
        grad = f"{row['grad_norm']:.2e}"
        if row["grad_norm"] == 0 or not math.isfinite(row["grad_norm"]):
            grad = f"[red]{grad}[/red]"
        dead = "-" if math.isnan(row["dead_relu"]) else f"{100 * row['dead_relu']:.0f}%"
        table.add_row(
            row["layer"], grad, ratio, dead, f"{row['act_mean']:.3f}", f"{row['act_std']:.3f}"
        )
    return table


class HealthPanel:
    """A rich renderable showing the latest rows of a LayerHealth (lives under the bar).

    Example:
        >>> HealthPanel(LayerHealth(nn.Linear(2, 1))).__rich__()    # nothing sampled yet
        ''
    """

    def __init__(self, health: LayerHealth) -> None:
        self.health = health

    def __rich__(self) -> Any:
        rows = self.health.latest()
        if not rows:
            return ""
        return health_table(rows, title=f"layer health at step {rows[0]['step']}")
