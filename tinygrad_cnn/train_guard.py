"""Keeping each epoch of `fit` all or nothing: Ctrl-C and a diverging loss roll back to the last
finished epoch.

An epoch changes the weights, the optimizer's state and the scheduler's position step by step.
Stopped half way, by Ctrl-C or by a loss that became nan, the model would hold a mix no epoch
ever produced. `EpochGuard` keeps copies of all three after every finished epoch (one state_dict
copy per epoch, small next to the epoch itself), and `fit` runs each epoch inside
`guard.epoch(n)`:

- Ctrl-C: the epoch in progress is dropped, everything goes back to the last finished epoch,
  `history.interrupted` becomes True and `fit` returns the history;
- `TrainingDiverged` (the training loss, or the validation loss, is nan or inf): the same
  rollback, then the error goes on to the caller, carrying the finished epochs' history.

Read next: `train_output.py`, how `fit` shows its progress.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from tinygrad_cnn.history import History


class TrainingDiverged(RuntimeError):
    """fit's error when the loss stops being finite; the model holds the last finished epoch.

    Attributes: what ('loss' or 'val_loss'), value ('nan', 'inf'), epoch, step (None for
    validation) and history (the finished epochs).

    Example:
        >>> str(TrainingDiverged("loss", float("nan"), epoch=1, step=3))
        'loss became nan at epoch 1, step 3'
    """

    def __init__(self, what: str, value: float, epoch: int, step: int | None = None):
        self.what, self.value, self.epoch, self.step = what, str(value), epoch, step
        self.history: History = History()
        where = f"epoch {epoch}" + (f", step {step}" if step is not None else "")
        super().__init__(f"{what} became {value} at {where}")


class EpochGuard:
    """Copies of what an epoch changes, taken after each finished epoch, put back on failure.

    Args:
        model, optimizer, scheduler: what `fit` trains (optimizer without `state_dict` and
            scheduler None are left alone).
        history: fit's History; `interrupted` is set on it after a Ctrl-C.
        report: called with one line of text when Ctrl-C stops training.
    Example:
        >>> import numpy as np
        >>> from tinygrad_cnn import nn, optim
        >>> model = nn.Linear(1, 1)
        >>> guard = EpochGuard(model, optim.SGD(model.parameters(), lr=0.1), None, History())
        >>> with guard.epoch(1):
        ...     model.weight.data = np.array([[5.0]], dtype=np.float32)
        ...     raise KeyboardInterrupt
        >>> float(model.weight.data[0, 0]) != 5.0, guard.history.interrupted
        (True, True)
    """

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        scheduler: Any,
        history: History,
        report: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.history, self.report = history, report
        self.finished = self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        """Copies of everything an epoch changes: weights, optimizer state, scheduler position."""
        model, optimizer, scheduler = self.model, self.optimizer, self.scheduler
        return {
            "model": model.state_dict(),  # already copies (Module.state_dict)
            "optimizer": optimizer.state_dict() if hasattr(optimizer, "state_dict") else None,
            "scheduler": dict(scheduler.state_dict()) if scheduler is not None else None,
        }

    def commit(self) -> None:
        """An epoch finished: from now on, failures roll back to here."""
        self.finished = self.snapshot()

    def restore(self) -> None:
        """Put back the weights, optimizer state and scheduler position of the last commit."""
        self.model.load_state_dict(self.finished["model"])
        if self.finished["optimizer"] is not None:
            self.optimizer.load_state_dict(self.finished["optimizer"])
        if self.finished["scheduler"] is not None:
            self.scheduler.load_state_dict(self.finished["scheduler"])

    @contextlib.contextmanager
    def epoch(self, epoch: int):
        """Run epoch number `epoch` (from 1): on Ctrl-C or divergence, roll back (see above)."""
        try:
            yield
        except KeyboardInterrupt:
            if len(self.history) < epoch:  # stopped inside the epoch: drop its half-done updates
                self.restore()
            self.history.interrupted = True
            self.report(
                f"interrupted during epoch {epoch}: keeping the weights and optimizer "
                f"state of the {len(self.history)} finished epoch(s)"
            )
        except TrainingDiverged as error:
            self.restore()
            error.history = self.history
            raise
