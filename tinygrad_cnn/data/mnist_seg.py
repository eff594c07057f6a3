"""mnist-seg: real handwriting as a segmentation task.

Several real MNIST digits are pasted on a blank canvas (64x64 by default) without overlapping;
the mask gives every pixel the class of the digit whose ink covers it, plus one:

    mask[i, j] = label + 1   where a digit's ink > threshold
                 0           elsewhere (background, and faint ink at a digit's edge)

so there are 11 classes. The canvas is cut into a g x g grid of cells of at least 28 pixels,
g = ceil(sqrt(digits[1])); each digit takes its own random cell at a random offset inside it.
Read next: `loader.py`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from tinygrad_cnn.data.datasets import load_mnist

DIGIT = 28  # side of an MNIST digit
NUM_CLASSES = 11  # background + 10 digits


def make_mnist_seg(
    split: str = "train",
    n: int = 1000,
    size: int = 64,
    seed: int | Sequence[int] = 0,
    digits: tuple[int, int] = (1, 4),
    threshold: int = 127,
    root: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`n` canvases of real MNIST digits from `split`, with per-pixel digit-class masks.

    Use split='train' for training and split='test' for testing, so no test digit is ever
    seen in training. Digits are drawn at random (with replacement) from the split.

    Args:
        split: the MNIST split the digits come from, 'train' or 'test'.
        n: number of canvases.
        size: canvas side in pixels; each grid cell needs at least 28.
        seed: anything `np.random.default_rng` accepts; the same seed gives the same data.
        digits: (fewest, most) digits per canvas, inclusive.
        threshold: ink level (0-255) above which a pixel belongs to its digit.
        root: the MNIST data folder (see `load_mnist`).
    Shapes:
        images: (n, size, size) uint8; masks: (n, size, size) uint8 in 0..10.
    Raises:
        ValueError: bad n, digits or threshold, or a canvas too small for `digits[1]` digits.
        FileNotFoundError: MNIST is not available (see `load_mnist`).
    Example:
        >>> images, masks = make_mnist_seg("test", n=4, size=64, seed=0)  # doctest: +SKIP
        >>> images.shape, masks.shape, int(masks.max()) <= 10  # doctest: +SKIP
        ((4, 64, 64), (4, 64, 64), True)
    """
    caller = "make_mnist_seg"
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{caller}: n must be a positive int, got {n!r}")
    low, high = digits
    if not 1 <= low <= high:
        raise ValueError(
            f"{caller}: digits must be (fewest, most) with 1 <= fewest <= most, got {digits!r}"
        )
    if not 0 <= threshold < 255:
        raise ValueError(f"{caller}: threshold must be in 0..254, got {threshold!r}")
    grid = int(np.ceil(np.sqrt(high)))
    cell = size // grid
    if cell < DIGIT:
        raise ValueError(
            f"{caller}: {high} digits need a {grid}x{grid} grid of {DIGIT}-pixel cells, "
            f"a canvas of at least {grid * DIGIT}x{grid * DIGIT}; got size={size}"
        )
    source_images, source_labels = load_mnist(split, root=root)

    rng = np.random.default_rng(seed)
    count = rng.integers(low, high + 1, size=n)  # digits on each canvas
    active = np.arange(high)[None, :] < count[:, None]  # (n, high)
    cells = np.argsort(rng.random((n, grid * grid)), axis=1)[:, :high]  # distinct cells
    picks = rng.integers(0, len(source_images), size=(n, high))  # which MNIST digits
    top = (cells // grid) * cell + rng.integers(0, cell - DIGIT + 1, size=(n, high))
    left = (cells % grid) * cell + rng.integers(0, cell - DIGIT + 1, size=(n, high))

    images = np.zeros((n, size, size), dtype=np.uint8)
    masks = np.zeros((n, size, size), dtype=np.uint8)
    canvas, slot = np.nonzero(active)  # (P,) each placed digit: its canvas and slot
    digit = source_images[picks[canvas, slot]]  # (P, 28, 28)
    ink = digit > threshold
    label = source_labels[picks[canvas, slot]].astype(np.uint8)  # (P,)
    rows = top[canvas, slot][:, None] + np.arange(DIGIT)  # (P, 28)
    cols = left[canvas, slot][:, None] + np.arange(DIGIT)  # (P, 28)
    where = (canvas[:, None, None], rows[:, :, None], cols[:, None, :])  # index (P, 28, 28)
    # NOTE: cells are disjoint, so no two digits write the same pixel
    images[where] = digit
    masks[where] = ink * (label[:, None, None] + 1)
    return images, masks
