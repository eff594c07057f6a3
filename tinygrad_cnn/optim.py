"""Optimizers (SGD, Adam, AdamW) and learning-rate schedules (StepLR, CosineAnnealingLR).

After `loss.backward()` every parameter p holds g = dL/dp in `p.grad`. An optimizer moves p
a little against g. The update rules are PyTorch's, written out (t counts steps from 1):

    SGD:    g += weight_decay * p                        (L2 regularisation)
            buf = g (first step),  buf = momentum * buf + (1 - dampening) * g  (later steps)
            g = g + momentum * buf  (nesterov)   or   g = buf  (with momentum)
            p -= lr * g
    Adam:   g += weight_decay * p                        (L2; AdamW decays p instead:
                                                          p *= 1 - lr * weight_decay)
            m = beta1 * m + (1 - beta1) * g              (running mean of g)
            v = beta2 * v + (1 - beta2) * g^2            (running mean of g^2)
            p -= lr / (1 - beta1^t) * m / (sqrt(v / (1 - beta2^t)) + eps)
                 (the (1 - beta^t) undo the pull of m = v = 0 towards zero in early steps)

Updates happen in place, through numpy's `out=` arguments and one or two scratch arrays per
parameter, so no new arrays are made per step and references to `p.data` held elsewhere stay
valid. They write through `p.data_for_update()`, which counts the change: a graph that saved
the old values and has not run backward yet then refuses to (see `Tensor.data`). A parameter
whose grad is None is skipped.

All or nothing: every hyperparameter is checked when it is set, and `step()` checks every
gradient before it changes any parameter or any state, so one bad value leaves the model and
the optimizer exactly as they were. The checks live in `optim_checks.py`, so that this file
holds only the update rules.

Read next: `train.py` (learning-rate schedules, which change lr between epochs, are in
`schedules.py`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from tinygrad_cnn import optim_checks
from tinygrad_cnn.nn.checks import check_number
from tinygrad_cnn.tensor import Tensor


class Optimizer:
    """What every optimizer shares: the parameter list, per-parameter state, zero_grad,
    state_dict. Subclasses set their hyperparameters as attributes (listed in `_hyper`)
    and write `step`.

    Raises:
        TypeError: params is a single Tensor or holds something that is not a Tensor, or lr
            is not a number.
        ValueError: params is empty, or lr is negative, NaN or infinite.
    Example:
        >>> from tinygrad_cnn import nn
        >>> class Halve(Optimizer):
        ...     def step(self):
        ...         for p in self.params:
        ...             p.data_for_update()[...] *= 0.5   # in place, counted
        >>> w = nn.Parameter(np.array([4.0]))
        >>> Halve([w, w], lr=0.1).step()     # a parameter listed twice is updated once
        >>> w.data
        array([2.])
    """

    _hyper: tuple[str, ...] = ("lr",)

    def __init__(self, params: Iterable[Tensor], lr: float):
        self.params: list[Tensor] = optim_checks.unique_params(type(self).__name__, params)
        self.lr = check_number(type(self).__name__, "lr", lr)
        self.state: list[dict[str, Any]] = [{} for _ in self.params]
        self._scratch: list[list[np.ndarray]] = [[] for _ in self.params]

    def work(self, i: int, k: int = 0) -> np.ndarray:
        """Scratch array number k for parameter i (made once, reused every step)."""
        arrays = self._scratch[i]
        while len(arrays) <= k:
            arrays.append(np.empty_like(self.params[i].data))
        return arrays[k]

    def zero_grad(self) -> None:
        """Reset every parameter's gradient to None (the next backward starts afresh)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        raise NotImplementedError

    def check_hyperparameters(self, values: dict[str, Any]) -> dict[str, Any]:
        """The hyperparameters in `values`, checked (`optim_checks.py`; override to add rules).

        Raises:
            TypeError, ValueError: as `check_number`, naming the hyperparameter.
        """
        return optim_checks.check_hyperparameters(self, values)

    def checked_grads(self) -> list[np.ndarray | None]:
        """Every parameter's `.grad`, all checked before anything changes (`optim_checks.py`)."""
        return optim_checks.checked_grads(self)

    def hyperparameters(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._hyper}

    def state_dict(self) -> dict[str, Any]:
        """Copies of the per-parameter state and the hyperparameters, in PyTorch's layout:
        {'state': {index: {...}}, 'param_groups': [{'lr': ..., 'params': [0, 1, ...]}]}."""
        state = {
            i: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for i, s in enumerate(self.state)
            if s
        }
        group = {**self.hyperparameters(), "params": list(range(len(self.params)))}
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what `state_dict()` returned (copies the arrays). Everything is checked
        before anything changes.

        Raises:
            TypeError: state_dict is not a dict, or a hyperparameter of the wrong type.
            ValueError: a different number of parameters, a state array whose shape does
                not match its parameter's (naming the parameter index and both shapes), or a
                hyperparameter out of range.
        """
        hyper = optim_checks.check_state_dict(self, state_dict)
        for key, value in hyper.items():
            setattr(self, key, value)
        self.state = [{} for _ in self.params]
        for i, entry in state_dict.get("state", {}).items():
            self.state[int(i)] = {
                k: (
                    np.array(v, dtype=self.params[int(i)].dtype) if isinstance(v, np.ndarray) else v
                )
                for k, v in entry.items()
            }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({len(self.params)} parameters, {args})"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum, Nesterov momentum and L2 weight
    decay, exactly as PyTorch's `torch.optim.SGD`.

    Raises:
        TypeError: a hyperparameter that is not a number (nesterov: not a bool).
        ValueError: lr, momentum or weight_decay negative, NaN or infinite, a dampening
            outside [0, 1], or nesterov without momentum (or with dampening).
    Example:
        >>> from tinygrad_cnn import nn, optim
        >>> w = nn.Parameter(np.array([1.0, -2.0]))
        >>> opt = optim.SGD([w], lr=0.1, momentum=0.9)
        >>> for _ in range(2):
        ...     opt.zero_grad()
        ...     (w * w).sum().backward()     # grad = 2w
        ...     opt.step()
        >>> w.data
        array([ 0.46, -0.92])
    """

    _hyper = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        super().__init__(params, lr)
        hyper = self.check_hyperparameters(
            dict(
                momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov
            )
        )
        for key, value in hyper.items():
            setattr(self, key, value)

    def step(self) -> None:
        grads = self.checked_grads()  # all checked before any parameter changes
        for i, p in enumerate(self.params):
            if grads[i] is None:
                continue
            g, scratch = grads[i], self.work(i)
            if self.weight_decay:
                np.multiply(p.data, self.weight_decay, out=scratch)
                g = np.add(g, scratch, out=scratch)  # g + weight_decay * p
            if self.momentum:
                buf = self.state[i].get("momentum_buffer")
                if buf is None:
                    buf = self.state[i]["momentum_buffer"] = g.copy()  # first step only
                else:
                    buf *= self.momentum
                    if self.dampening:
                        buf += (1 - self.dampening) * g
                    else:
                        buf += g
                if self.nesterov:  # look ahead: g + momentum * buf
                    ahead = self.work(i, 1) if g is scratch else scratch
                    np.multiply(buf, self.momentum, out=ahead)
                    g = np.add(g, ahead, out=scratch)
                else:
                    g = buf
            np.multiply(g, self.lr, out=scratch)  # scratch is free or already holds g
            data = p.data_for_update()  # (a copy if a pending graph saved the old values)
            data -= scratch


class Adam(Optimizer):
    """Adam: momentum on the gradient (m) scaled per element by the root of a running mean
    of its square (v), with bias correction; `weight_decay` adds L2 to the gradient (as
    PyTorch's Adam; see AdamW for decoupled decay).

    Raises:
        TypeError: a hyperparameter that is not a number (betas: not a pair of numbers).
        ValueError: lr, eps or weight_decay negative, NaN or infinite, or a beta outside [0, 1).
    Example:
        >>> from tinygrad_cnn import nn, optim
        >>> w = nn.Parameter(np.array([1.0, -2.0]))
        >>> opt = optim.Adam([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()              # the first step moves every element by about lr
        >>> w.data
        array([ 0.9, -1.9])
    """

    _hyper = ("lr", "betas", "eps", "weight_decay")
    decoupled_weight_decay = False

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr)
        hyper = self.check_hyperparameters(dict(betas=betas, eps=eps, weight_decay=weight_decay))
        for key, value in hyper.items():
            setattr(self, key, value)

    def step(self) -> None:
        grads = self.checked_grads()  # all checked before any parameter or state changes
        beta1, beta2 = self.betas
        for i, p in enumerate(self.params):
            if grads[i] is None:
                continue
            state = self.state[i]
            if not state:
                state["step"] = 0
                state["exp_avg"] = np.zeros_like(p.data)  # m
                state["exp_avg_sq"] = np.zeros_like(p.data)  # v
            state["step"] += 1
            t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
            g, scratch = grads[i], self.work(i)
            data = p.data_for_update()  # (a copy if a pending graph saved the old values)
            if self.weight_decay and self.decoupled_weight_decay:
                data *= 1 - self.lr * self.weight_decay  # AdamW: shrink p directly
            elif self.weight_decay:
                g = self.work(i, 1)
                np.multiply(p.data, self.weight_decay, out=g)
                g += grads[i]  # g + weight_decay * p
            np.subtract(g, m, out=scratch)  # m += (1 - beta1) * (g - m)
            scratch *= 1 - beta1
            m += scratch
            np.multiply(g, g, out=scratch)  # v = beta2 * v + (1 - beta2) * g^2
            scratch *= 1 - beta2
            v *= beta2
            v += scratch
            step_size = self.lr / (1 - beta1**t)
            np.sqrt(v, out=scratch)  # denominator: sqrt(v / (1 - beta2^t)) + eps
            scratch /= math.sqrt(1 - beta2**t)
            scratch += self.eps
            np.divide(m, scratch, out=scratch)
            scratch *= step_size
            data -= scratch


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): each step first shrinks
    p *= 1 - lr * weight_decay, then takes the Adam step on the plain gradient
    (as `torch.optim.AdamW`, default weight_decay 0.01).

    Example:
        >>> from tinygrad_cnn import nn, optim
        >>> w = nn.Parameter(np.array([1.0, -2.0]))
        >>> opt = optim.AdamW([w], lr=0.1, weight_decay=0.5)
        >>> (w * w).sum().backward()
        >>> opt.step()              # shrink by 1 - 0.1*0.5, then move each element by about lr
        >>> w.data.round(6)
        array([ 0.85, -1.8 ])
    """

    decoupled_weight_decay = True

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


# The learning-rate schedules live in schedules.py, which needs Optimizer and check_number from
# this file; importing them at the bottom, once both exist, keeps `optim.StepLR` working.
from tinygrad_cnn.schedules import CosineAnnealingLR, LRScheduler, StepLR  # noqa: E402

__all__ = [
    "AdamW", "Adam", "SGD", "Optimizer", "check_number",
    "LRScheduler", "StepLR", "CosineAnnealingLR",
]  # fmt: skip
