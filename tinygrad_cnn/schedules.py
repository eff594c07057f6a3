"""Learning-rate schedules: StepLR and CosineAnnealingLR, as PyTorch's.

A schedule sets `optimizer.lr` from the epoch count; call `scheduler.step()` once per epoch,
after that epoch's `optimizer.step()` calls. Every setting is checked when it is set, as the
optimizers' hyperparameters are (`optim.check_number`). Also reachable as `optim.StepLR`, ...

Read next: `train.py`.
"""

from __future__ import annotations

import math
from typing import Any

from tinygrad_cnn.optim import Optimizer, check_number


class LRScheduler:
    """Sets `optimizer.lr` from the epoch count: lr = lr_at(epoch), epoch 0 = the start.

    Subclasses write `lr_at`; call `step()` once per epoch.

    Raises:
        TypeError: optimizer is not an Optimizer, or a setting of the wrong type.
        ValueError: a setting out of range, NaN or infinite (each named).
    Example:
        >>> from tinygrad_cnn import nn, optim
        >>> class Halving(LRScheduler):
        ...     def lr_at(self, epoch):
        ...         return self.base_lr / 2**epoch
        >>> schedule = Halving(optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0))
        >>> schedule.step(); schedule.step(); schedule.get_last_lr()
        [0.25]
    """

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{type(self).__name__}: expected an Optimizer, got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self.base_lr = check_number(
            type(self).__name__, "base_lr (the optimizer's lr)", optimizer.lr
        )
        self.last_epoch = 0

    def check_settings(self, values: dict[str, Any]) -> dict[str, Any]:
        """The settings in `values` checked (subclasses add theirs); used by `__init__` and
        `load_state_dict`, so a schedule never holds a NaN or a string."""
        name = type(self).__name__
        values = dict(values)
        if "base_lr" in values:
            values["base_lr"] = check_number(name, "base_lr", values["base_lr"])
        if "last_epoch" in values:
            values["last_epoch"] = check_number(
                name, "last_epoch", values["last_epoch"], integer=True
            )
        return values

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError

    def step(self) -> None:
        lr = check_number(type(self).__name__, "lr", self.lr_at(self.last_epoch + 1))
        self.last_epoch += 1
        self.optimizer.lr = lr

    def get_last_lr(self) -> list[float]:
        """[the current lr], a list as in PyTorch (one entry per parameter group)."""
        return [self.optimizer.lr]

    def state_dict(self) -> dict[str, Any]:
        return {key: value for key, value in vars(self).items() if key != "optimizer"}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict()` returned; every value is checked before any is set.

        Raises:
            TypeError: state is not a dict, or a value of the wrong type.
            ValueError: a key this schedule does not have, or a value out of range.
        """
        name = type(self).__name__
        if not isinstance(state, dict):
            raise TypeError(f"{name}.load_state_dict: expected a dict, got {type(state).__name__}")
        unknown = [key for key in state if key not in self.state_dict()]
        if unknown:
            raise ValueError(f"{name}.load_state_dict: unknown keys {unknown}")
        for key, value in self.check_settings(state).items():
            setattr(self, key, value)


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size): divide the lr every step_size epochs.

    Example:
        >>> from tinygrad_cnn import nn, optim
        >>> opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
        >>> schedule = optim.StepLR(opt, step_size=2, gamma=0.5)
        >>> [schedule.step() or opt.lr for _ in range(5)]
        [1.0, 0.5, 0.5, 0.25, 0.25]
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        super().__init__(optimizer)
        settings = self.check_settings(dict(step_size=step_size, gamma=gamma))
        self.step_size, self.gamma = settings["step_size"], settings["gamma"]

    def check_settings(self, values: dict[str, Any]) -> dict[str, Any]:
        values = super().check_settings(values)
        if "step_size" in values:
            values["step_size"] = check_number(
                "StepLR", "step_size", values["step_size"], low=1, integer=True
            )
        if "gamma" in values:
            values["gamma"] = check_number("StepLR", "gamma", values["gamma"])
        return values

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2: from base_lr
    down to eta_min along half a cosine over T_max epochs.

    Example:
        >>> from tinygrad_cnn import nn, optim
        >>> opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
        >>> schedule = optim.CosineAnnealingLR(opt, T_max=4)
        >>> [round(schedule.step() or opt.lr, 4) for _ in range(4)]
        [0.8536, 0.5, 0.1464, 0.0]
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):
        super().__init__(optimizer)
        settings = self.check_settings(dict(T_max=T_max, eta_min=eta_min))
        self.T_max, self.eta_min = settings["T_max"], settings["eta_min"]

    def check_settings(self, values: dict[str, Any]) -> dict[str, Any]:
        values = super().check_settings(values)
        name = "CosineAnnealingLR"
        if "T_max" in values:
            values["T_max"] = check_number(name, "T_max", values["T_max"], low=1, integer=True)
        if "eta_min" in values:
            values["eta_min"] = check_number(name, "eta_min", values["eta_min"])
        return values

    def lr_at(self, epoch: int) -> float:
        cosine = (1 + math.cos(math.pi * epoch / self.T_max)) / 2
        return self.eta_min + (self.base_lr - self.eta_min) * cosine
