"""The optimizers' guards: every hyperparameter, every gradient and every saved state checked.

An optimizer changes the model in place, so a bad value must be refused before anything moves.
`optim.py` calls these at four points, and they are all it needs to be all or nothing:

- `unique_params` when it is built: an iterable of Tensors, each listed once, not empty;
- `check_hyperparameters` whenever a hyperparameter is set (by the constructor, by
  `load_state_dict`, and again before each step, since a schedule or a user may have changed
  one): a NaN, an infinity, a string or a value out of range is refused, naming the argument;
- `checked_grads` at the start of `step()`: every gradient must be an array of its parameter's
  shape and dtype (numpy would broadcast a (1, 3) gradient over a (4, 3) parameter without a
  word), so one bad gradient leaves the model and the optimizer exactly as they were;
- `check_state_dict` before `load_state_dict` changes anything.

Non-finite gradient values are not refused: as in PyTorch, they are the training's business
(see `detect_anomaly`).

Read next: `train_guard.py`, which keeps a whole epoch of training all or nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from tinygrad_cnn.nn.checks import check_number
from tinygrad_cnn.tensor import Tensor


def unique_params(owner: str, params: Iterable[Tensor]) -> list[Tensor]:
    """The Tensors in `params`, each once, in order (a parameter listed twice is updated once).

    Raises:
        TypeError: params is a single Tensor or holds something that is not a Tensor.
        ValueError: params is empty.
    Example:
        >>> w = Tensor([1.0], requires_grad=True)
        >>> len(unique_params("SGD", [w, w]))
        1
        >>> unique_params("SGD", w)
        Traceback (most recent call last):
        ...
        TypeError: SGD: params must be an iterable of Tensors, such as model.parameters(), got a single Tensor
    """  # noqa: E501
    if isinstance(params, Tensor):
        raise TypeError(
            f"{owner}: params must be an iterable of Tensors, such as "
            f"model.parameters(), got a single Tensor"
        )
    unique: dict[int, Tensor] = {}
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"{owner}: params must be Tensors, got {type(p).__name__}")
        unique.setdefault(id(p), p)
    if not unique:
        raise ValueError(f"{owner}: got an empty parameter list")
    return list(unique.values())


def check_hyperparameters(optimizer: Any, values: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameters in `values`, checked, for any of the optimizers in `optim.py`.

    lr, momentum, weight_decay and eps must be finite numbers >= 0, dampening in [0, 1], each
    beta in [0, 1), and nesterov a bool that needs momentum > 0 and dampening = 0 (the values
    not in `values` are taken from the optimizer).

    Raises:
        TypeError, ValueError: as `check_number`, naming the optimizer and the hyperparameter.
    Example:
        >>> check_hyperparameters(None, {"lr": 0.1, "betas": [0.9, 0.99]})
        {'lr': 0.1, 'betas': (0.9, 0.99)}
        >>> check_hyperparameters(None, {"nesterov": True})
        Traceback (most recent call last):
        ...
        ValueError: NoneType: nesterov needs momentum > 0 and dampening = 0, got momentum=0.0, dampening=0.0
    """  # noqa: E501
    name = type(optimizer).__name__
    values = dict(values)
    for key in ("lr", "momentum", "weight_decay", "eps"):
        if key in values:
            values[key] = check_number(name, key, values[key])
    if "dampening" in values:
        values["dampening"] = check_number(name, "dampening", values["dampening"], high=1.0)
    if "betas" in values:
        betas = values["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{name}: betas must be a pair of numbers, got {betas!r}")
        values["betas"] = tuple(
            check_number(name, f"betas[{k}]", b, high=1.0, high_open=True)
            for k, b in enumerate(betas)
        )
    if "nesterov" in values:
        nesterov = values["nesterov"]
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"{name}: nesterov must be True or False, got {nesterov!r}")
        momentum = values.get("momentum", getattr(optimizer, "momentum", 0.0))
        dampening = values.get("dampening", getattr(optimizer, "dampening", 0.0))
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"{name}: nesterov needs momentum > 0 and dampening = 0, got "
                f"momentum={momentum}, dampening={dampening}"
            )
        values["nesterov"] = bool(nesterov)
    return values


def checked_grads(optimizer: Any) -> list[np.ndarray | None]:
    """Every parameter's `.grad`, after checking them all: call it before changing anything.

    A gradient must be a numpy array of its parameter's shape and dtype (numpy would
    broadcast a (1, 3) gradient over a (4, 3) parameter without a word). The hyperparameters
    are checked again too, since a schedule or a user may have set them since.

    Raises:
        TypeError: a gradient that is not an ndarray, or not of its parameter's dtype.
        ValueError: a gradient of the wrong shape, or a hyperparameter out of range.
    Example:
        >>> from tinygrad_cnn import optim
        >>> w = Tensor([1.0, 2.0], requires_grad=True)
        >>> w.grad = np.ones((1, 2), dtype=np.float32)
        >>> checked_grads(optim.SGD([w], lr=0.1))
        Traceback (most recent call last):
        ...
        ValueError: SGD.step: parameter 0 has shape (2,) but its .grad has shape (1, 2); nothing was updated
    """  # noqa: E501
    name = type(optimizer).__name__
    optimizer.check_hyperparameters(optimizer.hyperparameters())
    grads = []
    for i, p in enumerate(optimizer.params):
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


def check_state_dict(optimizer: Any, state_dict: Any) -> dict[str, Any]:
    """Check what `optimizer.load_state_dict` was given; return its hyperparameters, checked.

    Raises:
        TypeError: state_dict is not a dict, or a hyperparameter of the wrong type.
        ValueError: a different number of parameters, a state array whose shape does
            not match its parameter's (naming the parameter index and both shapes), or a
            hyperparameter out of range.
    Example:
        >>> from tinygrad_cnn import optim
        >>> opt = optim.SGD([Tensor([1.0], requires_grad=True)], lr=0.1)
        >>> check_state_dict(opt, opt.state_dict())["lr"]
        0.1
        >>> check_state_dict(opt, {"param_groups": [{"lr": 0.1, "params": [0, 1]}]})
        Traceback (most recent call last):
        ...
        ValueError: SGD.load_state_dict: the state is for 2 parameters, this optimizer has 1
    """
    name = type(optimizer).__name__
    params = optimizer.params
    if not isinstance(state_dict, dict):
        raise TypeError(
            f"{name}.load_state_dict: expected the dict optimizer.state_dict() returns, "
            f"got {type(state_dict).__name__}"
        )
    groups = state_dict.get("param_groups", [])
    if len(groups) != 1:
        raise ValueError(f"{name}.load_state_dict: expected 1 param group, got {len(groups)}")
    count = len(groups[0].get("params", []))
    if count != len(params):
        raise ValueError(
            f"{name}.load_state_dict: the state is for {count} parameters, "
            f"this optimizer has {len(params)}"
        )
    for i, entry in state_dict.get("state", {}).items():
        if not 0 <= int(i) < len(params):
            raise ValueError(
                f"{name}.load_state_dict: state for parameter {i}, but there are only {len(params)}"
            )
        for key, value in entry.items():
            shape = np.shape(value)
            if isinstance(value, np.ndarray) and shape != params[int(i)].shape:
                raise ValueError(
                    f"{name}.load_state_dict: {key!r} of parameter {i} has "
                    f"shape {shape}, the parameter has {params[int(i)].shape}"
                )
    hyper = {k: groups[0][k] for k in optimizer._hyper if k in groups[0]}
    return optimizer.check_hyperparameters(hyper)
