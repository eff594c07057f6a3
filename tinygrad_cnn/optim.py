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

All or nothing: every hyperparameter is checked when it is set (a NaN, an infinity, a string or
a value out of range is refused, naming the argument), and `step()` checks every gradient
(an array of its parameter's shape and dtype) before it changes any parameter or any state,
so one bad gradient leaves the model and the optimizer exactly as they were. Non-finite
gradient values are not refused: as in PyTorch, they are the training's business
(see `detect_anomaly`).

Read next: `train.py` (learning-rate schedules, which change lr between epochs, are in
`schedules.py`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

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
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(
                f"{name}: params must be an iterable of Tensors, such as "
                f"model.parameters(), got a single Tensor"
            )
        unique: dict[int, Tensor] = {}
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: params must be Tensors, got {type(p).__name__}")
            unique.setdefault(id(p), p)  # a parameter listed twice is updated once
        if not unique:
            raise ValueError(f"{name}: got an empty parameter list")
        self.params: list[Tensor] = list(unique.values())
        self.lr = check_number(name, "lr", lr)
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
        """The hyperparameters in `values`, checked (subclasses add their own rules).

        Raises:
            TypeError, ValueError: as `check_number`, naming the hyperparameter.
        """
        values = dict(values)
        if "lr" in values:
            values["lr"] = check_number(type(self).__name__, "lr", values["lr"])
        return values

    def checked_grads(self) -> list[np.ndarray | None]:
        """Every parameter's `.grad`, after checking them all: call it before changing anything.

        A gradient must be a numpy array of its parameter's shape and dtype (numpy would
        broadcast a (1, 3) gradient over a (4, 3) parameter without a word). The hyperparameters
        are checked again too, since a schedule or a user may have set them since.

        Raises:
            TypeError: a gradient that is not an ndarray, or not of its parameter's dtype.
            ValueError: a gradient of the wrong shape, or a hyperparameter out of range.
        """
        name = type(self).__name__
        self.check_hyperparameters(self.hyperparameters())
        grads = []
        for i, p in enumerate(self.params):
            g = p.grad
            if g is not None:
                if not isinstance(g, np.ndarray):
                    raise TypeError(
                        f"{name}.step: parameter {i} {p.shape} has a .grad of type "
                        f"{type(g).__name__}, expected an np.ndarray; nothing was updated"
                    )
                if g.shape != p.shape:
                    raise ValueError(
                        f"{name}.step: parameter {i} has shape {p.shape} but its .grad has "
                        f"shape {g.shape}; nothing was updated"
                    )
                if g.dtype != p.dtype:
                    raise TypeError(
                        f"{name}.step: parameter {i} {p.shape} is {p.dtype} but its .grad is "
                        f"{g.dtype}; nothing was updated"
                    )
            grads.append(g)
        return grads

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
        name = type(self).__name__
        if not isinstance(state_dict, dict):
            raise TypeError(
                f"{name}.load_state_dict: expected the dict optimizer.state_dict() returns, "
                f"got {type(state_dict).__name__}"
            )
        groups = state_dict.get("param_groups", [])
        if len(groups) != 1:
            raise ValueError(f"{name}.load_state_dict: expected 1 param group, got {len(groups)}")
        count = len(groups[0].get("params", []))
        if count != len(self.params):
            raise ValueError(
                f"{name}.load_state_dict: the state is for {count} parameters, "
                f"this optimizer has {len(self.params)}"
            )
        for i, entry in state_dict.get("state", {}).items():
            if not 0 <= int(i) < len(self.params):
                raise ValueError(
                    f"{name}.load_state_dict: state for parameter {i}, but "
                    f"there are only {len(self.params)}"
                )
            for key, value in entry.items():
                shape = np.shape(value)
                if isinstance(value, np.ndarray) and shape != self.params[int(i)].shape:
                    raise ValueError(
                        f"{name}.load_state_dict: {key!r} of parameter {i} has "
                        f"shape {shape}, the parameter has "
                        f"{self.params[int(i)].shape}"
                    )
        hyper = self.check_hyperparameters({k: groups[0][k] for k in self._hyper if k in groups[0]})
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

    def check_hyperparameters(self, values: dict[str, Any]) -> dict[str, Any]:
        values = super().check_hyperparameters(values)
        for key in ("momentum", "weight_decay"):
            if key in values:
                values[key] = check_number("SGD", key, values[key])
        if "dampening" in values:
            values["dampening"] = check_number("SGD", "dampening", values["dampening"], high=1.0)
        if "nesterov" in values:
            nesterov = values["nesterov"]
            if not isinstance(nesterov, (bool, np.bool_)):
                raise TypeError(f"SGD: nesterov must be True or False, got {nesterov!r}")
            momentum = values.get("momentum", getattr(self, "momentum", 0.0))
            dampening = values.get("dampening", getattr(self, "dampening", 0.0))
            if nesterov and (momentum <= 0 or dampening != 0):
                raise ValueError(
                    f"SGD: nesterov needs momentum > 0 and dampening = 0, got "
                    f"momentum={momentum}, dampening={dampening}"
                )
            values["nesterov"] = bool(nesterov)
        return values

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

    def check_hyperparameters(self, values: dict[str, Any]) -> dict[str, Any]:
        values = super().check_hyperparameters(values)
        name = type(self).__name__
        for key in ("eps", "weight_decay"):
            if key in values:
                values[key] = check_number(name, key, values[key])
        if "betas" in values:
            betas = values["betas"]
            if not isinstance(betas, (tuple, list)) or len(betas) != 2:
                raise TypeError(f"{name}: betas must be a pair of numbers, got {betas!r}")
            values["betas"] = tuple(
                check_number(name, f"betas[{k}]", b, high=1.0, high_open=True)
                for k, b in enumerate(betas)
            )
        return values

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
