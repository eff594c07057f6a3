"""DataLoader: mini-batches of (images, labels) for the training loop.

Each epoch draws a fresh permutation of the sample indices (from `seed` and the epoch number,
so runs repeat exactly), then gathers one batch at a time with fancy indexing: only a batch
is ever copied, never the whole dataset. Images become float32 NCHW scaled to [0, 1]
(uint8 / 255, as the course does); an optional transform then augments each batch
(`augment.py`). Read next: `../train.py`, whose `fit` takes these batches (the datasets come
from `get_dataset` in `data/__init__.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np


class DataLoader:
    """Iterate over (x, y) mini-batches of an in-memory dataset.

    Args:
        images: (N, H, W) or (N, C, H, W); uint8 is scaled by 1/255, floats are taken as they
            are (already scaled) and cast to `dtype`.
        labels: (N,) class ids, (N, H, W) masks, or any array whose first axis has N items.
        batch_size: samples per batch; the last batch is smaller unless `drop_last`.
        shuffle: visit the samples in a new random order every epoch.
        seed: makes the sequence of orders repeatable (None: a fresh random seed).
        drop_last: skip a last batch smaller than `batch_size`.
        dtype: the floating dtype of x (float32 unless you train in float64).
        transform: None, or a function `transform(x, rng) -> x` applied to each scaled batch
            (augmentation, e.g. `augment.RandomShift(2)`); `rng` is a numpy Generator seeded
            from (seed, epoch), so augmented batches repeat exactly too.
    Shapes:
        x: (B, C, H, W) of `dtype` (C = 1 for (N, H, W) images); y: labels[batch] with
        integer labels as int64. Each batch is a fresh array the caller may keep.
        len(loader) = ceil(N / B), or floor(N / B) with drop_last.
    Raises:
        ValueError: images not 3-D or 4-D, labels with a different N, batch_size < 1, or N = 0.
        TypeError: images of a dtype that is neither uint8 nor floating.
    Example:
        >>> images = np.arange(5 * 2 * 2, dtype=np.uint8).reshape(5, 2, 2)
        >>> loader = DataLoader(images, np.arange(5), batch_size=2, shuffle=False)
        >>> len(loader), [y.tolist() for _, y in loader]
        (3, [[0, 1], [2, 3], [4]])
        >>> x, y = next(iter(loader))
        >>> x.shape, x.dtype, bool(np.isclose(x.max(), 7 / 255))
        ((2, 1, 2, 2), dtype('float32'), True)
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        batch_size: int,
        shuffle: bool = True,
        seed: int | None = None,
        drop_last: bool = False,
        dtype: type = np.float32,
        transform: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
    ) -> None:
        images, labels = np.asarray(images), np.asarray(labels)
        if images.ndim not in (3, 4):
            raise ValueError(
                f"DataLoader: images must be (N, H, W) or (N, C, H, W), got {images.shape}"
            )
        if images.dtype != np.uint8 and not np.issubdtype(images.dtype, np.floating):
            raise TypeError(f"DataLoader: images must be uint8 or floating, got {images.dtype}")
        if labels.ndim == 0 or len(labels) != len(images):
            raise ValueError(
                f"DataLoader: {len(images)} images {images.shape} but labels {labels.shape}: "
                "the first axes must match"
            )
        if len(images) == 0:
            raise ValueError(f"DataLoader: the dataset is empty, images {images.shape}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(f"DataLoader: batch_size must be an int, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be callable, got {transform!r}")
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), shuffle, drop_last
        self.dtype = np.dtype(dtype)
        self.transform = transform
        self.seed = np.random.SeedSequence().entropy if seed is None else seed
        self.epoch = 0  # epochs started so far; epoch e is shuffled with seed (seed, e)

    @property
    def num_samples(self) -> int:
        """Samples visited per epoch (N, less the dropped tail with drop_last)."""
        return len(self) * self.batch_size if self.drop_last else len(self.images)

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.images) // self.batch_size
        return -(-len(self.images) // self.batch_size)  # ceil

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n = len(self.images)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(n)
        else:
            order = np.arange(n)
        # the transform's randomness: its own stream, so adding one leaves the order unchanged
        rng = np.random.default_rng([self.seed, self.epoch, 1])
        self.epoch += 1
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start : start + self.batch_size]
            x, y = self._batch(index)
            if self.transform is not None:
                x = np.asarray(self.transform(x, rng), dtype=self.dtype)
            yield x, y

    def _batch(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = self.images[index]  # (B, H, W) or (B, C, H, W): a copy of this batch only
        if images.ndim == 3:
            images = images[:, None]  # (B, H, W) -> (B, 1, H, W)
        x = images.astype(self.dtype)
        if self.images.dtype == np.uint8:
            x /= 255
        y = self.labels[index]
        if np.issubdtype(y.dtype, np.integer):
            y = y.astype(np.int64, copy=False)
        return x, y
