"""Weight initialisation, and the random generator that layers and Dropout draw from.

Why initialisation matters: if the weights of a layer with fan_in inputs are drawn with
variance v, each output has variance about fan_in * v times its inputs'. Keep
fan_in * v near 1 and signals neither explode nor vanish through many layers.

    PyTorch's default (Linear, Conv2d):   w ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        (kaiming_uniform_ with a = sqrt(5): bound = gain * sqrt(3 / fan_in),
         gain = sqrt(2 / (1 + a^2)) = sqrt(1/3), so bound = 1 / sqrt(fan_in))
                                          b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    Keras' default (Dense, Conv2D):       w ~ U(-sqrt(6 / (fan_in + fan_out)), +...)  (Glorot)
                                          b = 0

For a weight of shape (out, in, kh, kw): fan_in = in*kh*kw and fan_out = out*kh*kw.

`manual_seed(seed)` makes every draw reproducible (also exported as `tinygrad_cnn.manual_seed`).

Layers get their arrays from `new_array`, so a model built from an untrusted file's description
can be held to the size of that file (`allocation_limit`) before any memory is taken.

Read next: `nn/checks.py`, then `nn/layers.py`.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator

import numpy as np

from tinygrad_cnn.tensor import Tensor

_generator = np.random.default_rng()
_budget = threading.local()  # .left: how many more values new_array may make, or absent


@contextlib.contextmanager
def allocation_limit(values: int, source: str) -> Iterator[None]:
    """Within this block (in this thread), the arrays `new_array` makes may hold `values`
    numbers in all; the one that would pass the limit is a ValueError, raised before it exists.

    `checkpoint.load` builds a model from an untrusted file's description inside this block,
    limited to about the number of values the file holds: metadata that claims a model far
    bigger than the file fails at its first layer too many, not after allocating gigabytes.

    Example:
        >>> from tinygrad_cnn import nn
        >>> with allocation_limit(15, "weights.safetensors"):
        ...     layer = nn.Linear(4, 3)                  # 12 + 3 values: fits
        >>> with allocation_limit(15, "weights.safetensors"):
        ...     layer = nn.Linear(4000, 3000)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: weights.safetensors holds 15 values, fewer than the model it describes ...
    """
    previous = (getattr(_budget, name, None) for name in ("left", "source", "total"))
    saved = tuple(previous)
    _budget.left, _budget.source, _budget.total = int(values), source, int(values)
    try:
        yield
    finally:
        _budget.left, _budget.source, _budget.total = saved


def new_array(shape: tuple[int, ...], dtype: np.dtype, fill: float | None = None) -> np.ndarray:
    """A new array for a parameter or buffer: np.empty, or np.full with `fill`.

    Raises:
        ValueError: inside `allocation_limit`, an array that would pass the limit.
    Example:
        >>> new_array((2,), np.float32, fill=1.0)
        array([1., 1.], dtype=float32)
    """
    shape = tuple(int(n) for n in shape)
    left = getattr(_budget, "left", None)
    if left is not None:
        size = math.prod(shape)
        if size > left:
            raise ValueError(
                f"{_budget.source} holds {_budget.total} values, fewer than the model it "
                f"describes (stopped before making an array of shape {shape})"
            )
        _budget.left = left - size
    if fill is None:
        return np.empty(shape, dtype=dtype)
    return np.full(shape, fill, dtype=dtype)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the generator used by layer initialisation and Dropout; returns it.

    Example:
        >>> from tinygrad_cnn import nn
        >>> _ = manual_seed(0); a = nn.Linear(3, 2).weight.data.copy()
        >>> _ = manual_seed(0); b = nn.Linear(3, 2).weight.data.copy()
        >>> bool((a == b).all())
        True
    """
    global _generator
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative int, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def generator() -> np.random.Generator:
    """The generator that initialisation and Dropout draw from.

    Example:
        >>> isinstance(generator(), np.random.Generator)
        True
    """
    return _generator


def fan_in_and_fan_out(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel), as PyTorch computes them.

    Example:
        >>> fan_in_and_fan_out((8, 1, 3, 3))
        (9, 72)
    """
    if len(shape) < 2:
        raise ValueError(f"fan_in_and_fan_out: need a weight with at least 2 axes, got {shape}")
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def uniform_(tensor: Tensor, low: float, high: float) -> Tensor:
    """Fill `tensor` in place with draws from U(low, high); returns it.

    Example:
        >>> w = uniform_(Tensor(np.zeros((2, 3))), -0.1, 0.1)
        >>> w.shape, bool((np.abs(w.data) <= 0.1).all())
        ((2, 3), True)
    """
    tensor.data_for_update()[...] = _generator.uniform(low, high, size=tensor.shape)
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    """Fill `tensor` in place with zeros; returns it.

    Example:
        >>> zeros_(Tensor(np.ones(3))).data
        array([0., 0., 0.])
    """
    tensor.data_for_update()[...] = 0
    return tensor


def ones_(tensor: Tensor) -> Tensor:
    """Fill `tensor` in place with ones; returns it.

    Example:
        >>> ones_(Tensor(np.zeros(3))).data
        array([1., 1., 1.])
    """
    tensor.data_for_update()[...] = 1
    return tensor


def kaiming_uniform_(tensor: Tensor, a: float = math.sqrt(5), fan_in: int | None = None) -> Tensor:
    """He/Kaiming uniform init for a (leaky) relu of negative slope `a`, in place.

    bound = sqrt(2 / (1 + a^2)) * sqrt(3 / fan_in). The default a = sqrt(5) is PyTorch's
    layer default and gives bound = 1/sqrt(fan_in); a = 0 is He init for relu networks.

    Example:
        >>> w = kaiming_uniform_(Tensor(np.zeros((8, 1, 3, 3))), a=0)    # fan_in = 9
        >>> bool(np.abs(w.data).max() <= np.sqrt(6 / 9))
        True
    """
    fan_in = fan_in_and_fan_out(tensor.shape)[0] if fan_in is None else fan_in
    gain = math.sqrt(2.0 / (1 + a * a))
    bound = gain * math.sqrt(3.0 / fan_in) if fan_in > 0 else 0.0
    return uniform_(tensor, -bound, bound)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot/Xavier uniform init (Keras' default), in place:
    U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).

    Example:
        >>> w = xavier_uniform_(Tensor(np.zeros((100, 400), dtype=np.float32)))
        >>> bool(np.abs(w.data).max() <= np.sqrt(6 / 500))
        True
    """
    fan_in, fan_out = fan_in_and_fan_out(tensor.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


glorot_uniform_ = xavier_uniform_  # Keras' name for the same thing


def default_init_(weight: Tensor, bias: Tensor | None, fan_in: int) -> None:
    """PyTorch's default for Linear and Conv: weight and bias ~ U(-1/sqrt(fan_in), +...).

    Example:
        >>> w, b = Tensor(np.zeros((2, 4))), Tensor(np.zeros(2))
        >>> default_init_(w, b, fan_in=4)
        >>> bool(np.abs(w.data).max() <= 0.5 and np.abs(b.data).max() <= 0.5)
        True
    """
    kaiming_uniform_(weight, a=math.sqrt(5), fan_in=fan_in)
    if bias is not None:
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(bias, -bound, bound)
