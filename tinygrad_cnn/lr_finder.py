"""The learning-rate range test: train briefly while the learning rate grows, watch the loss.

Leslie Smith's test (and fastai's `lr_find`): start at a tiny learning rate, multiply it by
the same factor after every step until it is huge,

    lr_k = start * (end / start) ** (k / (steps - 1))        k = 0 .. steps-1

and record each step's loss. While the lr is too small the loss does not move; then it falls,
faster and faster; past some point it shoots up. The loss of one batch is noisy, so it is
smoothed with an exponential moving average (bias-corrected, as Adam corrects its moments):

    avg_k = beta * avg_{k-1} + (1 - beta) * loss_k,     smoothed_k = avg_k / (1 - beta ** (k+1))

The suggestion is the lr where the smoothed loss falls fastest, the steepest descent:
the most negative d smoothed / d log(lr), looked for before the loss's minimum. The test stops
early once the smoothed loss is 4 times its minimum (or not finite): it has diverged.

The model is trained by the test: build a fresh one to train for real afterwards.

Read next: `cli/lr_find.py` (the command that runs this and draws `lr_find.png`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from tinygrad_cnn import ops
from tinygrad_cnn.tensor import Tensor

METHOD = "steepest descent of the smoothed loss"


def suggest_lr(lrs: Any, smoothed: Any) -> float | None:
    """The lr where the smoothed loss falls fastest (per unit of log lr), before its minimum.

    Returns None when there are fewer than 3 finite points.

    Example:
        >>> lrs = np.geomspace(1e-5, 1, 51)
        >>> loss = 2 - np.tanh(2 * (np.log10(lrs) + 3))     # falls fastest at 1e-3
        >>> f"{suggest_lr(lrs, loss):.1e}"
        '1.0e-03'
    """
    lrs, smoothed = np.asarray(lrs, np.float64), np.asarray(smoothed, np.float64)
    keep = np.isfinite(smoothed)
    lrs, smoothed = lrs[keep], smoothed[keep]
    if len(lrs) < 3:
        return None
    end = int(np.argmin(smoothed)) + 1  # only the descent counts, not the blow-up after it
    if end < 3:
        return None
    slope = np.gradient(smoothed[:end], np.log(lrs[:end]))
    return float(lrs[int(np.argmin(slope))])


def lr_range_test(
    model: Any,
    loader: Iterable,
    optimizer: Any,
    loss: Callable = ops.cross_entropy,
    start: float = 1e-7,
    end: float = 10.0,
    steps: int = 200,
    beta: float = 0.9,
) -> dict[str, Any]:
    """Run the range test; returns {'lrs', 'losses', 'smoothed', 'suggestion', 'method'}.

    Args:
        model: a Module (it is trained by the test).
        loader: yields (images, labels) batches; cycled through when shorter than `steps`.
        optimizer: has `lr`, `zero_grad()` and `step()`; its lr is overwritten each step.
        start, end: the first and last learning rate (0 < start < end, both finite).
        steps: how many steps the lr takes to grow from start to end (>= 10).
        beta: the smoothing factor of the moving average (0.9 averages about the last 10
            steps: smooth enough, and it lags the loss by only about 10 steps of lr growth).
    Raises:
        ValueError: a bad range or step count, or an empty loader.
    Example:
        >>> from tinygrad_cnn import nn, optim
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> x = np.random.default_rng(0).random((16, 1, 2, 2), dtype=np.float32)
        >>> batches = [(x, (x.sum(axis=(1, 2, 3)) > 2).astype(np.int64))]
        >>> result = lr_range_test(model, batches, optim.SGD(model.parameters(), lr=0.1),
        ...                        start=1e-4, end=10, steps=30)
        >>> len(result["lrs"]) <= 30, result["method"]
        (True, 'steepest descent of the smoothed loss')
    """
    if not (0 < start < end and math.isfinite(end)):
        raise ValueError(f"lr_range_test: need 0 < start < end, finite; got {start!r}, {end!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 10:
        raise ValueError(f"lr_range_test: steps must be an int >= 10, got {steps!r}")
    if not 0 <= beta < 1:
        raise ValueError(f"lr_range_test: beta must be in [0, 1), got {beta!r}")
    factor = (end / start) ** (1 / (steps - 1))
    lrs, losses, smoothed = [], [], []
    average, best = 0.0, math.inf
    model.train()
    batches = _cycle(loader)
    for k in range(steps):
        lr = start * factor**k
        optimizer.lr = lr
        images, labels = next(batches)
        value = loss(model(Tensor(images)), labels)
        current = value.item()
        lrs.append(lr)
        losses.append(current)
        average = beta * average + (1 - beta) * current
        smooth = average / (1 - beta ** (k + 1))
        smoothed.append(smooth)
        if not math.isfinite(smooth) or smooth > 4 * best:
            break  # diverged: larger rates only say so louder
        best = min(best, smooth)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    return {
        "lrs": lrs,
        "losses": losses,
        "smoothed": smoothed,
        "suggestion": suggest_lr(lrs, smoothed),
        "method": METHOD,
    }


def _cycle(loader: Iterable):
    """Batches of the loader, starting over at its end (a new epoch, a new order)."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("lr_range_test: the loader yielded no batches")
