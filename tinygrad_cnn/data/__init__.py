"""Data: the IDX reader, MNIST / Fashion-MNIST, synthetic shapes, mnist-seg, the DataLoader.

    from tinygrad_cnn.data import get_dataset, DataLoader
    images, labels = get_dataset("shapes", "train", limit=5000)
    for x, y in DataLoader(images, labels, batch_size=32, seed=0): ...

Read in this order: `idx.py` (the file format), `datasets.py` (finding, downloading and
verifying the real files), `shapes.py` and `mnist_seg.py` (datasets made on the fly),
`loader.py` (mini-batches), `augment.py` (random shifts of a batch). `get_dataset` below
maps a name to (images, labels).
"""

from __future__ import annotations

import os

import numpy as np

from tinygrad_cnn.data.augment import AUGMENTATIONS, RandomShift, random_shift
from tinygrad_cnn.data.datasets import (
    ENV_VAR,
    FASHION_CLASSES,
    MNIST_CLASSES,
    data_folder,
    load_fashion_mnist,
    load_mnist,
)
from tinygrad_cnn.data.idx import parse_idx, read_idx, write_idx
from tinygrad_cnn.data.loader import DataLoader
from tinygrad_cnn.data.mnist_seg import make_mnist_seg
from tinygrad_cnn.data.shapes import SHAPE_CLASSES, make_shapes, make_shapes_seg

DATASET_NAMES: tuple[str, ...] = ("mnist", "fashion-mnist", "shapes", "shapes-seg", "mnist-seg")

# how many samples the generated datasets make when no limit is given: (train, test)
GENERATED_SIZES = {"shapes": (5000, 1000), "shapes-seg": (2000, 400), "mnist-seg": (4000, 500)}
SPLIT_IDS = {"train": 0, "test": 1}  # mixed into the seed, so the splits never share samples


def dataset_info(name: str, multiclass: bool = False) -> dict:
    """What a dataset holds: its task, number of classes (output channels) and class names.

    Example:
        >>> dataset_info("shapes-seg")
        {'task': 'segmentation', 'num_classes': 1, 'classes': ('shape',), 'size': 64}
    """
    _check_name("dataset_info", name)
    if name in ("mnist", "fashion-mnist", "shapes"):
        classes = {"mnist": MNIST_CLASSES, "fashion-mnist": FASHION_CLASSES}.get(
            name, SHAPE_CLASSES
        )
        return {"task": "classification", "num_classes": len(classes), "classes": classes,
                "size": 28}  # fmt: skip
    if name == "mnist-seg":
        classes = ("background", *MNIST_CLASSES)
    elif multiclass:
        classes = ("background", *SHAPE_CLASSES)
    else:
        # one foreground channel, trained with a binary loss
        return {"task": "segmentation", "num_classes": 1, "classes": ("shape",), "size": 64}
    return {"task": "segmentation", "num_classes": len(classes), "classes": classes, "size": 64}


def get_dataset(
    name: str,
    split: str = "train",
    limit: int | None = None,
    seed: int = 0,
    root: str | os.PathLike | None = None,
    **options,
) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of a dataset by name: the one entry point the CLI uses.

    Args:
        name: 'mnist', 'fashion-mnist' (real files, see `load_mnist`), 'shapes' (28x28, one
            shape, label = kind), 'shapes-seg' (64x64, several shapes, labels = masks) or
            'mnist-seg' (64x64, several MNIST digits, labels = masks 0..10).
        split: 'train' or 'test'. Generated datasets use a different seed per split.
        limit: keep the first `limit` samples of a real dataset, or generate `limit`
            samples (default for generated sets: see GENERATED_SIZES).
        seed: seed of the generated datasets (ignored by the real ones).
        root: the data folder for MNIST files (see `load_mnist`).
        **options: passed on to the generator (e.g. multiclass=True for 'shapes-seg').
    Shapes:
        images: (N, H, W) uint8; labels: (N,) int64 class ids, or (N, H, W) uint8 masks.
    Raises:
        ValueError: an unknown name or split, or limit < 1.
    Example:
        >>> images, labels = get_dataset("shapes", "test", limit=10)
        >>> images.shape, labels.shape
        ((10, 28, 28), (10,))
    """
    _check_name("get_dataset", name)
    if split not in SPLIT_IDS:
        raise ValueError(f"get_dataset: split must be 'train' or 'test', got {split!r}")
    if limit is not None and (isinstance(limit, bool) or int(limit) != limit or limit < 1):
        raise ValueError(f"get_dataset: limit must be a positive int or None, got {limit!r}")
    if name in ("mnist", "fashion-mnist"):
        loader = load_mnist if name == "mnist" else load_fashion_mnist
        images, labels = loader(split, root=root, **options)
        return images[:limit], labels[:limit]
    n = int(limit) if limit is not None else GENERATED_SIZES[name][SPLIT_IDS[split]]
    split_seed = [seed, SPLIT_IDS[split]]
    if name == "shapes":
        images, labels, _ = make_shapes(n, seed=split_seed, **options)
        return images, labels
    if name == "shapes-seg":
        return make_shapes_seg(n, seed=split_seed, **options)
    return make_mnist_seg(split, n, seed=split_seed, root=root, **options)


def _check_name(caller: str, name: str) -> None:
    if name not in DATASET_NAMES:
        raise ValueError(f"{caller}: unknown dataset {name!r}; choose from {DATASET_NAMES}")


__all__ = [
    "AUGMENTATIONS", "DATASET_NAMES", "ENV_VAR", "FASHION_CLASSES", "MNIST_CLASSES",
    "SHAPE_CLASSES", "DataLoader", "RandomShift", "data_folder", "dataset_info",
    "get_dataset", "load_fashion_mnist", "load_mnist", "make_mnist_seg", "make_shapes",
    "make_shapes_seg", "parse_idx", "random_shift", "read_idx", "write_idx",
]  # fmt: skip
