"""History: what `fit` returns, one dict of figures per finished epoch, and how to print one.

A History is a list (so `history[-1]["val_accuracy"]` works) that also writes itself as
strict JSON (nan as null) and CSV, reads JSON back, and holds what a run learnt on the side:
`interrupted` (Ctrl-C) and `health` (fit(watch=...)'s per-layer rows).

Read next: `train.py` (the loop that fills it).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from tinygrad_cnn.files import json_safe

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
    health: Any = None  # a health.LayerHealth, from fit(watch=...):'s per-layer statistics

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
        """Write the list of epoch dicts as strict JSON (nan/inf as null); returns the path."""
        path = Path(path)
        payload = json_safe({"epochs": list(self), "interrupted": self.interrupted})
        path.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n")  # strict JSON
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
        if key == "lr":
            parts.append(f"lr {value:.2e}")
        elif key.endswith("loss"):
            parts.append(f"{key} {value:.4f}")
        else:
            parts.append(f"{key} {100 * value:.2f}%")
    if "time" in logs:
        parts.append(f"{logs['time']:.1f} s")
    if "images_per_s" in logs:
        parts.append(f"{logs['images_per_s']:,.0f} img/s")
    return "  ".join(parts)
