"""Anomaly mode: stop at the first NaN or infinity, and say where it came from.

A NaN in a loss is a symptom; its cause is usually one op many steps earlier (a log of 0, an
exp that overflowed, a division by a vanishing norm). Inside `detect_anomaly()` every op's
forward output and every gradient its backward sends is checked, and the first non-finite
one raises a RuntimeError naming the op, the module whose forward ran it, the line of the
caller's code that ran it, and the range of its inputs. It is slow (one pass over every array),
so turn it on to find a bug, not for every run. Built on the engine's `watch_forward` and
`watch_backward` (tensor.py), so it is per thread like them.

Read next: `gradcheck.py`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

import numpy as np

from tinygrad_cnn.tensor import Function, Tensor, thread_state
from tinygrad_cnn.watch import watch_backward, watch_forward

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _caller_line() -> str:
    """file:line of the innermost frame outside this package: the user's line that ran the op."""
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame = frame.f_back
    if frame is None:
        return "unknown"
    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


def _module_path(scope: tuple) -> str:
    """'features.3' for the scope (model, model.features, model.features[3])."""
    if not scope:
        return "no module"
    names = []
    for parent, child in zip(scope, scope[1:]):
        children = getattr(parent, "named_children", None)
        found = [name for name, m in children() if m is child] if children else []
        names.append(found[0] if found else type(child).__name__)
    return ".".join(names) if names else type(scope[0]).__name__


def _stats(array: np.ndarray) -> str:
    finite = array[np.isfinite(array)]
    bad = array.size - finite.size
    if finite.size == 0:
        return f"shape {array.shape}, no finite value"
    text = f"shape {array.shape}, min {finite.min():.4g}, max {finite.max():.4g}"
    return text + (f", {bad} non-finite" if bad else "")


def _bad(array: Any) -> str | None:
    """'nan' or 'inf' when array holds one (nan first), else None."""
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f" or np.isfinite(array).all():
        return None
    return "nan" if np.isnan(array).any() else "inf"


def _check_forward(fn: Function, out: np.ndarray) -> None:
    where = (_module_path(thread_state.scope), _caller_line())
    fn.anomaly_where = where  # for a gradient found bad later, in backward
    bad = _bad(out)
    if bad:
        inputs = "; ".join(f"input {i}: {_stats(t.data)}" for i, t in enumerate(fn.inputs))
        raise RuntimeError(
            f"{fn.name} produced {bad} from inputs with {inputs} "
            f"(module {where[0]}, called at {where[1]})"
        )


def _check_backward(node: Tensor, grad: np.ndarray, sent: tuple) -> None:
    for i, (_, dinp) in enumerate(sent):
        bad = _bad(dinp)
        if bad:
            fn = node._ctx
            module, line = getattr(fn, "anomaly_where", ("unknown", "unknown"))
            raise RuntimeError(
                f"the backward of {fn.name} produced {bad} in the gradient of its input {i}, "
                f"from an incoming gradient with {_stats(grad)} and that input's values "
                f"with {_stats(fn.inputs[i].data)} (module {module}, forward called at {line})"
            )


@contextlib.contextmanager
def detect_anomaly():
    """Check every forward output and every gradient for NaN/inf; raise at the first.

    A context manager and a decorator (`@detect_anomaly()`), in this thread only.

    Raises:
        RuntimeError: naming the op, its module path, the calling line and its inputs' range.
    Example:
        >>> x = Tensor([1.0, -1.0], requires_grad=True)
        >>> with detect_anomaly():
        ...     try:
        ...         x.log()
        ...     except RuntimeError as error:
        ...         print(str(error)[:56])
        log produced nan from inputs with input 0: shape (2,), m
    """
    with watch_forward(_check_forward), watch_backward(_check_backward):
        yield
