"""Shared helpers for the tests."""

from __future__ import annotations

import numpy as np


def distinct(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A float64 array of the given shape whose values are all different, with random signs
    and 0.1 <= |x| < 4: far from relu's kink at 0 and from ties in max (gradcheck-friendly)."""
    size = int(np.prod(shape))
    magnitudes = 0.1 + rng.permutation(size) * (3.9 / size)  # evenly spaced, shuffled
    signs = rng.choice([-1.0, 1.0], size=size)
    return (magnitudes * signs).reshape(shape)


def random_grad(shape: tuple[int, ...], rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
    """A random upstream gradient (never all ones: ones hide transposed gradients)."""
    return rng.standard_normal(shape).astype(dtype)
