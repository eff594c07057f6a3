"""Which kernels run convolution and pooling: the fast ones, or the reference ones.

`ops.conv2d`, `ops.conv_transpose2d`, `ops.maxpool2d` and `ops.avgpool2d` each exist twice:
the fast kernels (`conv.py`, `conv_transpose.py`, `pool.py`: im2col, one big matrix product)
and the reference kernels (`reference.py`: a loop over the kernel taps, as the math reads).
Both give the same numbers; the public ops ask `get_kernels()` which to run. The choice is
per thread, like `no_grad`: a thread that trains with the reference kernels leaves every
other thread on the fast ones.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

KERNELS = ("fast", "reference")

_state = threading.local()  # .kernels: this thread's choice; "fast" until use_kernels says


def get_kernels() -> str:
    """The kernels this thread's convolution and pooling ops run: "fast" or "reference".

    Example:
        >>> get_kernels()
        'fast'
    """
    return getattr(_state, "kernels", "fast")


@contextlib.contextmanager
def use_kernels(name: str) -> Iterator[None]:
    """Run conv2d, conv_transpose2d, maxpool2d and avgpool2d with `name`'s kernels in the body.

    "reference" trains the same model to the same numbers, only slower; nests, and restores
    the previous choice on exit even when the body raises.

    Raises:
        ValueError: name is not "fast" or "reference".
    Example:
        >>> with use_kernels("reference"):
        ...     print(get_kernels())
        reference
        >>> get_kernels()
        'fast'
    """
    if name not in KERNELS:
        raise ValueError(f"use_kernels: kernels must be one of {KERNELS}, got {name!r}")
    previous = get_kernels()
    _state.kernels = name
    try:
        yield
    finally:
        _state.kernels = previous
