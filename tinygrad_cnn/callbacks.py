"""Callbacks for `fit`: code that runs after each epoch and may stop training.

A callback is any function `callback(epoch, logs)`; returning True stops training (the
simplest early stop). An object may also have

    on_train_begin(model, optimizer)   before the first epoch (keep what you need)
    on_train_end(history) -> str|None  after the last epoch; a returned string is printed

`EarlyStopping` is the one most runs want: it watches the validation loss, stops after
`patience` epochs without improvement, and gives the model back the weights of its best epoch.

Read next: `health.py` (per-layer statistics while training).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class EarlyStopping:
    """Stop when `monitor` has not improved for `patience` epochs; restore the best weights.

    Args:
        patience: epochs without improvement to wait before stopping (>= 1).
        monitor: a key of fit's per-epoch logs ('val_loss' needs a val_loader).
        mode: 'min' (a loss) or 'max' (an accuracy).
        min_delta: an improvement smaller than this does not count.
        restore_best: at the end, load the weights of the best epoch into the model.
    Attributes (after fit):
        best_epoch, best (its value), stopped_epoch (0 when training ran to the end).
    Raises:
        ValueError: patience < 1, a mode other than 'min'/'max', or (during fit) logs
            without `monitor`.
    Example:
        >>> from tinygrad_cnn import nn
        >>> stop = EarlyStopping(patience=2)
        >>> stop.on_train_begin(nn.Linear(1, 1), None)
        >>> [stop(epoch, {"val_loss": v}) for epoch, v in enumerate([3.0, 2.0, 2.5, 2.4], 1)]
        [False, False, False, True]
        >>> stop.best_epoch, stop.stopped_epoch
        (2, 4)
    """

    def __init__(
        self,
        patience: int = 3,
        monitor: str = "val_loss",
        mode: str = "min",
        min_delta: float = 0.0,
        restore_best: bool = True,
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"EarlyStopping: patience must be an int >= 1, got {patience!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        if not min_delta >= 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta!r}")
        self.patience, self.monitor, self.mode = patience, monitor, mode
        self.min_delta, self.restore_best = float(min_delta), restore_best
        self.model: Any = None
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch, self.stopped_epoch, self.waited = 0, 0, 0
        self.best_state: dict[str, np.ndarray] | None = None

    def on_train_begin(self, model: Any, optimizer: Any) -> None:
        self.model = model
        self._reset()

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def __call__(self, epoch: int, logs: dict) -> bool:
        if self.monitor not in logs:
            raise ValueError(
                f"EarlyStopping: the logs have no {self.monitor!r} (have: "
                f"{', '.join(logs)}); validation keys need fit(..., val_loader=...)"
            )
        value = float(logs[self.monitor])
        if self._improved(value):
            self.best, self.best_epoch, self.waited = value, epoch, 0
            if self.restore_best and self.model is not None:
                self.best_state = {k: v.copy() for k, v in self.model.state_dict().items()}
            return False
        self.waited += 1
        if self.waited >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self, history: Any) -> str | None:
        """Load the best epoch's weights (when they are not the last epoch's); say what
        happened."""
        if not self.best_epoch:
            return None
        said = []
        if self.stopped_epoch:
            said.append(
                f"early stop at epoch {self.stopped_epoch}: {self.monitor} did not improve "
                f"for {self.patience} epoch(s)"
            )
        last_epoch = history[-1]["epoch"] if history else 0
        if self.restore_best and self.best_state is not None and self.best_epoch != last_epoch:
            self.model.load_state_dict(self.best_state)
            said.append(
                f"restored the weights of epoch {self.best_epoch} "
                f"({self.monitor} {self.best:.4f}, the best)"
            )
        return "; ".join(said) or None
