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

Metrics are looked up by name in `METRICS` (`metrics.py`), so a segmentation model can report
`mean_iou` the same way a classifier reports `accuracy`. What is not the loop sits beside it,
each piece called here at one line: `train_output.py` draws the progress bars and prints one
line per epoch (rich lives there, at the edge: the engine, ops and layers never print),
`train_guard.py` rolls back to the last finished epoch on Ctrl-C or a nan loss, and
`health.py` watches each layer when asked to.

Read next: `ops/conv.py`, how convolution gets fast (track 2 of docs/READING.md); or
`checkpoint.py`, which saves what `fit` trained.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from tinygrad_cnn import ops
from tinygrad_cnn.anomaly import detect_anomaly as anomaly_mode
from tinygrad_cnn.health import LayerHealth, layer_health
from tinygrad_cnn.history import History, format_logs  # noqa: F401 (re-exported)
from tinygrad_cnn.metrics import METRICS, accuracy, register_metric  # noqa: F401 (re-exported)
from tinygrad_cnn.metrics import metric_functions as lookup_metrics
from tinygrad_cnn.tensor import Tensor, no_grad
from tinygrad_cnn.train_guard import EpochGuard, TrainingDiverged
from tinygrad_cnn.train_output import EpochBar, TrainingOutput

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
    console: Any = None,
    scheduler: Any = None,
    watch: bool | int | LayerHealth = False,
    detect_anomaly: bool = False,
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
            True stops training. Objects may also have on_train_begin(model, optimizer) and
            on_train_end(history) -> message (see `callbacks.py`, e.g. EarlyStopping).
        verbose: print progress and one line per epoch.
        scheduler: an optim.LRScheduler, stepped after each epoch; logs gain `lr`.
        watch: True (every 50 steps), a step count, or a LayerHealth: per-layer gradient
            norms, update/weight ratios, dead ReLUs and activations (`health.py`), shown
            under the progress bar and kept in `history.health`.
        detect_anomaly: train inside `tinygrad_cnn.detect_anomaly()`: the first nan/inf in
            a forward output or a gradient raises, naming the op and the module.
    Returns:
        A History. On Ctrl-C the epoch in progress is dropped: the model and the optimizer
        (and scheduler) get back their state after the last finished epoch, and
        `history.interrupted` is True.
    Raises:
        ValueError: epochs < 1, an unknown metric name, or an empty loader.
        TrainingDiverged: the loss (or validation loss) became nan or inf; the model and
            optimizer are first put back to the last finished epoch.
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
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
    metric_functions = lookup_metrics(metrics)
    health = layer_health(model, watch)  # None unless watching (health.py)
    output = TrainingOutput(console, verbose, health)  # bars and lines (train_output.py)
    history = History()
    history.health = health
    for callback in callbacks:
        if hasattr(callback, "on_train_begin"):
            callback.on_train_begin(model, optimizer)
    # Ctrl-C or a nan loss puts everything back to the last finished epoch (train_guard.py)
    guard = EpochGuard(model, optimizer, scheduler, history, report=output.interrupted)
    with anomaly_mode() if detect_anomaly else contextlib.nullcontext():
        for epoch in range(1, epochs + 1):
            title, stop = f"epoch {epoch}/{epochs}", False
            with guard.epoch(epoch):
                bar = output.bar(title, _length(train_loader))
                logs = _train_one_epoch(
                    model, train_loader, optimizer, loss, metric_functions, epoch, bar, health
                )
                logs = {"epoch": epoch, **logs}
                if val_loader is not None:
                    val = evaluate(model, val_loader, loss=loss, metrics=tuple(metric_functions))
                    logs.update({f"val_{key}": value for key, value in val.items()})
                    logs["time"], logs["images_per_s"] = logs.pop("time"), logs.pop("images_per_s")
                if scheduler is not None:
                    logs["lr"] = scheduler.get_last_lr()[0]  # the lr this epoch trained with
                    scheduler.step()
                history.append(logs)
                guard.commit()
                output.epoch(title, logs)
                # NOTE: callbacks (e.g. a per-epoch checkpoint) run inside the guard, so a
                # Ctrl-C that lands while one runs still stops cleanly
                stop = any([callback(epoch, logs) is True for callback in callbacks])
            if history.interrupted:
                return history
            if stop:
                break
    for callback in callbacks:
        if hasattr(callback, "on_train_end"):
            output.say(callback.on_train_end(history))
    return history


def _train_one_epoch(
    model: Any,
    loader: Iterable,
    optimizer: Any,
    loss: LossFunction,
    metric_functions: dict[str, Callable],
    epoch: int,
    bar: EpochBar,
    health: LayerHealth | None,
) -> dict[str, float]:
    """One pass over the loader; returns the epoch's mean loss, metrics, time and speed."""
    model.train()
    total_images, total_loss = 0, 0.0
    metric_sums = dict.fromkeys(metric_functions, 0.0)
    start = time.perf_counter()
    with bar:
        try:
            for step, (images, labels) in enumerate(loader, start=1):
                if health is not None:
                    health.begin_step(epoch, last=step == bar.total)
                logits = model(Tensor(images))
                value = loss(logits, labels)
                loss_value = value.item()
                if not math.isfinite(loss_value):  # stop before a nan reaches the weights
                    raise TrainingDiverged("loss", loss_value, epoch, step)
                optimizer.zero_grad()
                value.backward()
                if health is not None:
                    health.after_backward()
                optimizer.step()
                if health is not None:
                    health.after_step()
                count = len(images)
                total_images += count
                total_loss += loss_value * count  # weighted, so a short last batch counts less
                for name, function in metric_functions.items():
                    metric_sums[name] += function(logits.data, np.asarray(labels)) * count
                bar.advance(total_images, total_loss / total_images)
        finally:
            if health is not None:
                health.close()  # a step that ended early leaves no forward hook behind
    if total_images == 0:
        raise ValueError("fit: the training loader yielded no batches")
    seconds = time.perf_counter() - start
    logs = {"loss": total_loss / total_images}
    logs.update({name: total / total_images for name, total in metric_sums.items()})
    logs.update({"time": seconds, "images_per_s": total_images / seconds})
    return logs


def _length(loader: Iterable) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None  # a plain generator: the bar shows no total


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
    metric_functions = lookup_metrics(metrics)
    logits = np.asarray(logits)
    if not np.isfinite(logits).all():  # an argmax over nan is 0: a number, but a lie
        bad = int(logits.size - np.isfinite(logits).sum())
        raise ValueError(
            f"score: {bad} of the {logits.size} logits are nan or inf; the model diverged, "
            "so no loss or accuracy can be computed from them"
        )
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
    lookup_metrics(metrics)  # fail on an unknown name before running the model
    logits, labels = predict(model, loader)
    return score(logits, labels, loss, metrics)
