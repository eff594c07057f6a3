"""The training loop: `fit`, `evaluate`, a per-epoch `History`, and the metrics by name.

`fit` is the loop every PyTorch user writes by hand, written once:

    for epoch in range(epochs):
        model.train()                         # dropout on
        for x, y in train_loader:             # float32 (N, C, H, W) batches and their labels
            value = loss(model(Tensor(x)), y) # forward: a graph from the parameters to the loss
            optimizer.zero_grad()
            value.backward()                  # every parameter's .grad = d value / d parameter
            optimizer.step()                  # move each parameter against its gradient
        history.append(evaluate(model, val_loader))   # model.eval(), no_grad(): no graph kept

with a rich progress bar per epoch (batches, running loss, images/s, time left) and one summary
line per epoch; when stdout is not a terminal (a CI log, a pipe) it prints only the summary
lines. Metrics are looked up by name in `METRICS`, so a segmentation model can report
`mean_iou` the same way a classifier reports `accuracy`.

rich is imported here, at the edge: the engine, ops and layers never print.

Read next: `ops/conv.py`, how convolution gets fast (track 2 of docs/READING.md); or
`checkpoint.py`, which saves what `fit` trained.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tinygrad_cnn import ops
from tinygrad_cnn.metrics import mean_iou, pixel_accuracy
from tinygrad_cnn.tensor import Tensor, no_grad

# ----------------------------------------------------------------------------------------
# Metrics: name -> function(logits array, labels array) -> float
# ----------------------------------------------------------------------------------------


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of examples whose highest logit is at their label (axis 1 holds the classes).

    Example:
        >>> accuracy(np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]]), np.array([0, 1, 1]))
        0.6666666666666666
    """
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim < 2 or logits.shape[:1] + logits.shape[2:] != labels.shape:
        raise ValueError(
            f"accuracy: logits {logits.shape} need labels of shape "
            f"{logits.shape[:1] + logits.shape[2:]}, got {labels.shape}"
        )
    return float((logits.argmax(axis=1) == labels).mean())


# fit and evaluate look metrics up here by name; segmentation code adds its own
METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy,
    "mean_iou": mean_iou,  # segmentation: IoU averaged over the foreground classes
    "pixel_accuracy": pixel_accuracy,
}


def register_metric(name: str, function: Callable[[np.ndarray, np.ndarray], float]) -> None:
    """Make `function(logits, labels) -> float` available to fit/evaluate as `name`.

    Example:
        >>> register_metric("mean_logit", lambda logits, labels: float(logits.mean()))
        >>> METRICS["mean_logit"](np.ones((2, 3)), np.zeros(2))
        1.0
        >>> del METRICS["mean_logit"]
    """
    METRICS[name] = function


def _metric_functions(metrics: Sequence[str]) -> dict[str, Callable]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    unknown = [name for name in metrics if name not in METRICS]
    if unknown:
        raise ValueError(f"fit: unknown metric {unknown[0]!r}; known: {', '.join(sorted(METRICS))}")
    return {name: METRICS[name] for name in metrics}


# ----------------------------------------------------------------------------------------
# History: one dict per epoch
# ----------------------------------------------------------------------------------------


class History(list):
    """What `fit` returns: one dict per finished epoch, in order.

    Each dict holds `epoch` (from 1), `loss` and each metric on the training batches (averaged
    over the epoch, with dropout on, as Keras reports them), `val_loss` and `val_<metric>` when
    there is a validation loader, `time` (seconds of training) and `images_per_s`.
    `interrupted` is True when Ctrl-C stopped training; the model then holds the weights of
    the last finished epoch.

    Example:
        >>> history = History([{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25}])
        >>> history.column("loss")
        [0.5, 0.25]
    """

    interrupted: bool = False

    def column(self, key: str) -> list[float]:
        """The values of one key over the epochs (nan where an epoch lacks it)."""
        return [epoch.get(key, math.nan) for epoch in self]

    def summary(self) -> dict[str, Any]:
        """The last epoch's figures plus the epoch count and total time (for checkpoints)."""
        if not self:
            return {"epochs": 0}
        total_time = sum(epoch.get("time", 0.0) for epoch in self)
        return {**self[-1], "epochs": len(self), "total_time": total_time}

    def _repr_html_(self) -> str:  # Jupyter: the curves inline (display.py)
        from tinygrad_cnn.display import history_html

        return history_html(self)

    def to_json(self, path: str | Path) -> Path:
        """Write the list of epoch dicts as JSON; returns the path."""
        path = Path(path)
        payload = {"epochs": list(self), "interrupted": self.interrupted}
        path.write_text(json.dumps(payload, indent=2) + "\n")
        return path

    def to_csv(self, path: str | Path) -> Path:
        """Write one row per epoch, one column per key; returns the path."""
        path = Path(path)
        keys = list(dict.fromkeys(key for epoch in self for key in epoch))
        with path.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self)
        return path

    @classmethod
    def from_json(cls, path: str | Path) -> History:
        """Read back what `to_json` wrote."""
        payload = json.loads(Path(path).read_text())
        history = cls(payload["epochs"])
        history.interrupted = bool(payload.get("interrupted", False))
        return history


# ----------------------------------------------------------------------------------------
# Output: a rich progress bar on a terminal, plain lines elsewhere
# ----------------------------------------------------------------------------------------


def format_logs(logs: dict[str, Any]) -> str:
    """One line for an epoch: losses with 4 decimals, metrics in percent, time and speed.

    Example:
        >>> format_logs({"epoch": 2, "loss": 0.25, "accuracy": 0.9, "time": 1.5})
        'loss 0.2500  accuracy 90.00%  1.5 s'
    """
    parts = []
    for key, value in logs.items():
        if key in ("epoch", "time", "images_per_s"):
            continue
        if key.endswith("loss"):
            parts.append(f"{key} {value:.4f}")
        else:
            parts.append(f"{key} {100 * value:.2f}%")
    if "time" in logs:
        parts.append(f"{logs['time']:.1f} s")
    if "images_per_s" in logs:
        parts.append(f"{logs['images_per_s']:,.0f} img/s")
    return "  ".join(parts)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=30),
        MofNCompleteColumn(),
        TextColumn("loss [cyan]{task.fields[loss]}"),
        TextColumn("{task.fields[speed]} img/s"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=True,  # the bar gives way to the epoch's summary line
    )


# ----------------------------------------------------------------------------------------
# fit / evaluate / predict
# ----------------------------------------------------------------------------------------

LossFunction = Callable[[Tensor, Any], Tensor]
Callback = Callable[[int, dict], Any]


def fit(
    model: Any,
    train_loader: Iterable,
    optimizer: Any,
    loss: LossFunction = ops.cross_entropy,
    epochs: int = 1,
    val_loader: Iterable | None = None,
    metrics: Sequence[str] = ("accuracy",),
    callbacks: Sequence[Callback] = (),
    verbose: bool = True,
    console: Console | None = None,
) -> History:
    """Train `model` for `epochs` passes over `train_loader`; return the per-epoch History.

    Args:
        model: a Module; called on a Tensor of a batch's images, returns the logits.
        train_loader: yields (images float32 (N, C, H, W), labels) batches; `len()` gives the
            number of batches (for the progress bar).
        optimizer: has `zero_grad()` and `step()` (optim.SGD, optim.Adam).
        loss: loss(logits, labels) -> scalar Tensor; cross-entropy by default.
        val_loader: evaluated after each epoch (eval mode, no_grad), giving `val_*` entries.
        metrics: names from METRICS, computed on each batch's logits.
        callbacks: each is called as callback(epoch, logs) after an epoch; one that returns
            True stops training (early stopping, say). Checkpointing fits here too.
        verbose: print progress and one line per epoch.
    Returns:
        A History. On Ctrl-C the epoch in progress is dropped: the model gets back the weights
        of the last finished epoch and `history.interrupted` is True.
    Raises:
        ValueError: epochs < 1, an unknown metric name, or an empty loader.
    Example:
        >>> from tinygrad_cnn import nn, optim
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> x = np.random.default_rng(0).random((8, 1, 2, 2), dtype=np.float32)
        >>> batches = [(x, (x.sum(axis=(1, 2, 3)) > 2).astype(np.int64))]
        >>> history = fit(model, batches, optim.SGD(model.parameters(), lr=0.1), epochs=2,
        ...               verbose=False)
        >>> [sorted(epoch) for epoch in history][0]
        ['accuracy', 'epoch', 'images_per_s', 'loss', 'time']
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
    metric_functions = _metric_functions(metrics)
    console = console or Console()
    show_bar = verbose and console.is_terminal
    history = History()
    finished_state = _copy_state(model)
    for epoch in range(1, epochs + 1):
        try:
            logs = _train_one_epoch(
                model,
                train_loader,
                optimizer,
                loss,
                metric_functions,
                f"epoch {epoch}/{epochs}",
                console if show_bar else None,
            )
            logs = {"epoch": epoch, **logs}
            if val_loader is not None:
                val = evaluate(model, val_loader, loss=loss, metrics=tuple(metric_functions))
                logs.update({f"val_{key}": value for key, value in val.items()})
                logs["time"], logs["images_per_s"] = logs.pop("time"), logs.pop("images_per_s")
            history.append(logs)
            finished_state = _copy_state(model)
            if verbose:
                title, figures = f"epoch {epoch}/{epochs}", format_logs(logs)
                if console.is_terminal:
                    console.print(
                        f"[bold]{title}[/bold]  {figures}", highlight=False, soft_wrap=True
                    )
                else:
                    print(f"{title}  {figures}", flush=True)  # plain lines for logs and pipes
            # NOTE: callbacks (e.g. a per-epoch checkpoint) run inside the try, so a Ctrl-C
            # that lands while one runs still stops cleanly
            if any([callback(epoch, logs) is True for callback in callbacks]):
                break
        except KeyboardInterrupt:
            if len(history) < epoch:  # stopped inside the epoch: drop its half-done updates
                _load_state(model, finished_state)
            history.interrupted = True
            if verbose:
                console.print(
                    f"interrupted during epoch {epoch}: keeping the weights of the "
                    f"{len(history)} finished epoch(s)",
                    highlight=False,
                )
            return history
    return history


def _train_one_epoch(model, loader, optimizer, loss, metric_functions, title, console):
    """One pass over the loader; returns the epoch's mean loss, metrics, time and speed."""
    model.train()
    total_images, total_loss = 0, 0.0
    metric_sums = dict.fromkeys(metric_functions, 0.0)
    start = time.perf_counter()
    progress = _progress(console) if console is not None else None
    if progress is not None:
        progress.start()
        task = progress.add_task(title, total=_length(loader), loss="-", speed="-")
    try:
        for images, labels in loader:
            logits = model(Tensor(images))
            value = loss(logits, labels)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
            count = len(images)
            total_images += count
            total_loss += value.item() * count  # weighted, so a short last batch counts less
            for name, function in metric_functions.items():
                metric_sums[name] += function(logits.data, np.asarray(labels)) * count
            if progress is not None:
                speed = total_images / (time.perf_counter() - start)
                progress.update(
                    task, advance=1, loss=f"{total_loss / total_images:.4f}", speed=f"{speed:,.0f}"
                )
    finally:
        if progress is not None:
            progress.stop()
    if total_images == 0:
        raise ValueError("fit: the training loader yielded no batches")
    seconds = time.perf_counter() - start
    logs = {"loss": total_loss / total_images}
    logs.update({name: total / total_images for name, total in metric_sums.items()})
    logs.update({"time": seconds, "images_per_s": total_images / seconds})
    return logs


def _length(loader) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None  # a plain generator: the bar shows no total


def _copy_state(model) -> dict[str, np.ndarray]:
    return {name: np.array(value, copy=True) for name, value in model.state_dict().items()}


def _load_state(model, state: dict[str, np.ndarray]) -> None:
    model.load_state_dict(state)


def predict(model: Any, loader: Iterable) -> tuple[np.ndarray, np.ndarray]:
    """Run the model over a loader in eval mode under no_grad; return (logits, labels).

    Shapes:
        logits: (N, classes, ...) for all N examples of the loader, in its order;
        labels: the loader's labels, concatenated.
    Example:
        >>> from tinygrad_cnn import nn
        >>> logits, labels = predict(nn.Flatten(), [(np.ones((2, 1, 1, 3), np.float32), [0, 1])])
        >>> logits.shape, labels.tolist()
        ((2, 3), [0, 1])
    """
    all_logits, all_labels = [], []
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with no_grad():
            for images, labels in loader:
                all_logits.append(model(Tensor(images)).data)
                all_labels.append(np.asarray(labels))
    finally:
        model.train(was_training)
    if not all_logits:
        raise ValueError("predict: the loader yielded no batches")
    return np.concatenate(all_logits), np.concatenate(all_labels)


def score(
    logits: np.ndarray,
    labels: np.ndarray,
    loss: LossFunction = ops.cross_entropy,
    metrics: Sequence[str] = ("accuracy",),
) -> dict[str, float]:
    """The loss and metrics of finished predictions (what `evaluate` reports).

    Example:
        >>> score(np.array([[2.0, 0.0], [0.0, 2.0]]), np.array([0, 0]))["accuracy"]
        0.5
    """
    metric_functions = _metric_functions(metrics)
    with no_grad():
        result = {"loss": float(loss(Tensor(logits), labels).item())}
    result.update(
        {name: float(function(logits, labels)) for name, function in metric_functions.items()}
    )
    return result


def evaluate(
    model: Any,
    loader: Iterable,
    loss: LossFunction = ops.cross_entropy,
    metrics: Sequence[str] = ("accuracy",),
) -> dict[str, float]:
    """The loss and metrics of `model` over a whole loader, in eval mode under no_grad.

    The metrics are computed once on all the logits (exact even for IoU-like metrics); the
    loss is the mean over all examples.

    Returns:
        {"loss": ..., <metric>: ...} as Python floats.
    Raises:
        ValueError: an unknown metric name or an empty loader.
    Example:
        >>> from tinygrad_cnn import nn
        >>> batches = [(np.array([[[[2.0, 0.0]]]], np.float32), np.array([0]))]
        >>> result = evaluate(nn.Flatten(), batches)
        >>> round(result["loss"], 4), result["accuracy"]
        (0.1269, 1.0)
    """
    _metric_functions(metrics)  # fail on an unknown name before running the model
    logits, labels = predict(model, loader)
    return score(logits, labels, loss, metrics)
