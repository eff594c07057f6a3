"""Loading a state_dict all or nothing: every key, shape and value checked first.

`Module.load_state_dict` hands its work to `load_state_dict` here. A state_dict comes from
outside (a file, a PyTorch model, a hand-made dict), so before any weight changes it checks
that `state` is a mapping and not a path, that no key is missing or unexpected (with
strict=True), and that every value holds numbers of the right shape; then it writes the values
in place, parameters through `data_for_update()` (counted, and safe for a graph that saved the
old values), buffers directly.

Read next: `optim_checks.py`, the same all-or-nothing rule for an optimizer.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def load_state_dict(module: Any, state: Any, strict: bool = True) -> tuple[list, list]:
    """Copy the values in `state` into `module`'s parameters and buffers, in place.

    Returns:
        (missing_keys, unexpected_keys), both empty when strict=True.
    Raises:
        TypeError: state is not a mapping (a file path is not a state_dict: read a
            checkpoint with `checkpoint.load_weights(model, path)`).
        ValueError: naming each missing/unexpected key, or a key and both shapes.
    Example:
        >>> from tinygrad_cnn import nn
        >>> layer = nn.Linear(2, 1)
        >>> load_state_dict(layer, {"weight": np.ones((1, 3))})
        Traceback (most recent call last):
        ...
        ValueError: load_state_dict into Linear: missing keys ['bias']; 'weight' has shape (1, 3) in the state_dict but (1, 2) in the model; nothing was loaded
        >>> load_state_dict(layer, {"weight": np.ones((1, 2))}, strict=False)
        (['bias'], [])
    """  # noqa: E501
    owner = type(module).__name__
    if isinstance(state, (str, bytes)) or hasattr(state, "__fspath__"):  # a path
        raise TypeError(
            f"load_state_dict into {owner}: got the path {state!r}, not a "
            f"state_dict; to read a checkpoint file use "
            f"tinygrad_cnn.checkpoint.load_weights(model, path)"
        )
    if not (hasattr(state, "keys") and hasattr(state, "__getitem__")):
        raise TypeError(
            f"load_state_dict into {owner}: expected a dict of arrays "
            f"(as state_dict() returns), got {type(state).__name__}"
        )
    targets = module._state_arrays()
    missing = [key for key in targets if key not in state]
    unexpected = [key for key in state if key not in targets]
    problems = []
    if strict and missing:
        problems.append(f"missing keys {missing}")
    if strict and unexpected:
        problems.append(f"unexpected keys {unexpected}")
    values = {}
    for key, target in targets.items():
        if key not in state:
            continue
        value = np.asarray(state[key])
        if not np.issubdtype(value.dtype, np.number) and value.dtype != bool:
            problems.append(f"{key!r} holds {value.dtype} values, not numbers")
        elif value.shape != target.shape:
            problems.append(
                f"{key!r} has shape {value.shape} in the state_dict but {target.shape} in the model"
            )
        values[key] = value
    if problems:
        raise ValueError(
            f"load_state_dict into {owner}: " + "; ".join(problems) + "; nothing was loaded"
        )
    parameters = dict(module.named_parameters())
    for key, value in values.items():
        if key in parameters:  # counted, and safe for a graph that saved the old values
            parameters[key].data_for_update()[...] = value
        else:
            targets[key][...] = value  # a buffer, in place
    return missing, unexpected
