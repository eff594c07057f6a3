"""Pictures of a trained classifier: learning curves, confusion matrix, mistakes, first layer.

Each function draws one PNG and returns its path:

    plot_history          loss and accuracy per epoch, train (solid) and validation (dashed)
    plot_confusion_matrix how often true class t was predicted as p (rows sum to the class size)
    plot_misclassified    a grid of test images the model got wrong: "true -> predicted (p%)"
    plot_filters          the first conv layer's kernels (red positive, blue negative)
    plot_feature_maps     one image and what each first-layer filter sees in it (after ReLU)

Figures are built with `matplotlib.figure.Figure` and rendered by the Agg backend straight to
a file: no window, no pyplot global state, so this works on a server and inside a notebook.

Read next: `cli/train.py` (the `demo` and `train` commands that write these plots).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from tinygrad_cnn.tensor import Tensor, no_grad

DPI = 130
TRAIN_COLOR, VAL_COLOR = "#1f77b4", "#d62728"


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    return path


def _class_names(class_names: Sequence[str] | None, count: int) -> list[str]:
    return list(class_names) if class_names is not None else [str(i) for i in range(count)]


def plot_history(
    history: Sequence[dict[str, Any]],
    path: str | Path,
    metric: str = "accuracy",
    title: str | None = None,
) -> Path:
    """Loss (left) and `metric` (right) per epoch; validation curves when the history has them.

    Args:
        history: fit's History (a list of per-epoch dicts with 'epoch', 'loss', 'val_loss', ...).
        metric: the metric to draw on the right, shown in percent.
    Returns:
        The path written (a PNG).
    Raises:
        ValueError: an empty history.
    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> history = [{"epoch": 1, "loss": 0.9, "accuracy": 0.7},
        ...            {"epoch": 2, "loss": 0.5, "accuracy": 0.85}]
        >>> plot_history(history, folder / "curves.png").exists()
        True
    """
    if not history:
        raise ValueError("plot_history: the history is empty (no finished epoch)")
    epochs = [entry.get("epoch", i + 1) for i, entry in enumerate(history)]
    figure = Figure(figsize=(10, 3.8), layout="constrained")
    panels = figure.subplots(1, 2)
    for axes, key, label, scale in (
        (panels[0], "loss", "loss", 1.0),
        (panels[1], metric, metric.replace("_", " "), 100.0),
    ):
        for prefix, color, style, name, offset in (
            ("", TRAIN_COLOR, "-", "train", 5),
            ("val_", VAL_COLOR, "--", "validation", -11),
        ):
            values = [entry.get(prefix + key) for entry in history]
            if all(value is None for value in values):
                continue
            values = [math.nan if value is None else scale * value for value in values]
            axes.plot(
                epochs,
                values,
                style,
                color=color,
                marker="o",
                markersize=4,
                linewidth=2,
                label=name,
            )
            axes.annotate(
                f"{values[-1]:.2f}%" if scale != 1 else f"{values[-1]:.4f}",
                (epochs[-1], values[-1]),
                textcoords="offset points",
                xytext=(5, offset),
                color=color,
                fontsize=8,
            )
        axes.set_xlabel("epoch")
        axes.set_ylabel(label + (" (%)" if scale != 1 else ""))
        axes.set_title(label)
        axes.grid(True, alpha=0.3)
        axes.spines[["top", "right"]].set_visible(False)
        axes.xaxis.get_major_locator().set_params(integer=True)
        if axes.lines:
            axes.legend(frameon=False)
    if title:
        figure.suptitle(title, fontweight="bold")
    return _save(figure, path)


def plot_confusion_matrix(
    labels: np.ndarray,
    predicted: np.ndarray,
    path: str | Path,
    class_names: Sequence[str] | None = None,
    title: str = "confusion matrix",
) -> Path:
    """A heat map of counts[true, predicted], each cell labelled with its count.

    The colour is the fraction of the row (so rare classes are as visible as common ones);
    the diagonal holds the correct predictions.

    Raises:
        ValueError: labels and predictions of different lengths.
    Shapes:
        labels, predicted: (N,) class ids (any shape is flattened).
    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> labels, predicted = np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2])
        >>> plot_confusion_matrix(labels, predicted, folder / "confusion.png").exists()
        True
    """
    labels, predicted = np.asarray(labels).ravel(), np.asarray(predicted).ravel()
    if labels.shape != predicted.shape:
        raise ValueError(
            f"plot_confusion_matrix: {labels.shape[0]} labels but {predicted.shape[0]} predictions"
        )
    count = int(max(labels.max(initial=0), predicted.max(initial=0)) + 1)
    if class_names is not None:
        count = max(count, len(class_names))
    names = _class_names(class_names, count)
    counts = np.bincount(labels * count + predicted, minlength=count * count)
    counts = counts.reshape(count, count)  # counts[t, p]
    fractions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 2.5 + 0.55 * count
    figure = Figure(figsize=(size + 1, size), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, shrink=0.8, label="fraction of the true class")
    for t in range(count):
        for p in range(count):
            if counts[t, p]:
                color = "white" if fractions[t, p] > 0.5 else "#222222"
                axes.text(
                    p,
                    t,
                    str(counts[t, p]),
                    ha="center",
                    va="center",
                    color=color,
                    fontsize=8 if count > 6 else 10,
                )
    axes.set_xticks(
        range(count),
        names,
        rotation=45 if max(map(len, names)) > 2 else 0,
        ha="right" if max(map(len, names)) > 2 else "center",
    )
    axes.set_yticks(range(count), names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    axes.set_title(f"{title}  (accuracy {100 * accuracy:.2f}%)")
    return _save(figure, path)


def _image_2d(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    return image[0] if image.ndim == 3 else image  # (1, H, W) -> (H, W)


def plot_misclassified(
    images: np.ndarray,
    labels: np.ndarray,
    logits: np.ndarray,
    path: str | Path,
    class_names: Sequence[str] | None = None,
    max_images: int = 24,
    columns: int = 8,
) -> Path:
    """A grid of the examples the model got wrong, most confident mistakes first.

    Each image is titled "true -> predicted" with the softmax probability of the prediction.

    Args:
        images: (N, H, W) or (N, 1, H, W) in any range; labels: (N,); logits: (N, classes).
    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> images, labels = np.random.default_rng(0).random((3, 8, 8)), np.array([0, 1, 1])
        >>> logits = np.array([[2.0, 0.0], [3.0, 1.0], [0.0, 1.0]])  # the second one is wrong
        >>> plot_misclassified(images, labels, logits, folder / "wrong.png").exists()
        True
    """
    images, labels, logits = np.asarray(images), np.asarray(labels), np.asarray(logits)
    predicted = logits.argmax(axis=1)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    confidence = (shifted / shifted.sum(axis=1, keepdims=True)).max(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][:max_images]
    names = _class_names(class_names, logits.shape[1])
    columns = max(1, min(columns, len(wrong)))
    rows = max(1, math.ceil(len(wrong) / columns))
    figure = Figure(figsize=(1.45 * columns + 0.3, 1.6 * rows + 0.6), layout="constrained")
    grid = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
    for axes in grid:
        axes.axis("off")
    for axes, index in zip(grid, wrong):
        axes.imshow(_image_2d(images[index]), cmap="gray_r")
        axes.set_title(
            f"{names[labels[index]]} → {names[predicted[index]]}\n{100 * confidence[index]:.0f}%",
            fontsize=8,
            color="#b91c1c",
        )
    total = len(np.flatnonzero(predicted != labels))
    heading = (
        f"{total:,} of {len(labels):,} misclassified (true → predicted, confidence)"
        if total
        else f"no mistakes on these {len(labels)} images"
    )
    figure.suptitle(heading, fontsize=10)
    return _save(figure, path)


def first_conv(model: Any) -> Any:
    """The first Conv2d-like module of a model (has a 4-D `weight`), in definition order.

    Raises:
        ValueError: the model has no convolution.
    Example:
        >>> from tinygrad_cnn import nn
        >>> first_conv(nn.Sequential(nn.Linear(4, 4), nn.Conv2d(1, 8, 3))).weight.shape
        (8, 1, 3, 3)
    """
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if weight is not None and getattr(weight, "ndim", 0) == 4:
            return module
    raise ValueError(f"first_conv: {type(model).__name__} has no layer with a 4-D weight")


def _grid_shape(count: int) -> tuple[int, int]:
    columns = min(count, 8)
    return math.ceil(count / columns), columns


def plot_filters(model: Any, path: str | Path, title: str = "first-layer filters") -> Path:
    """The first conv layer's kernels, one square each, on a shared colour scale around 0.

    Red weights excite, blue ones inhibit; with several input channels, channel 0 is shown.

    Shapes:
        the first conv's weight (O, C, KH, KW): O squares of KH x KW (channel 0).
    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> from tinygrad_cnn import nn
        >>> plot_filters(nn.Sequential(nn.Conv2d(1, 4, 3)), folder / "filters.png").exists()
        True
    """
    conv = first_conv(model)
    weight = np.asarray(conv.weight.data)  # (O, C, KH, KW)
    kernels = weight[:, 0]  # (O, KH, KW)
    limit = float(np.abs(kernels).max()) or 1.0
    rows, columns = _grid_shape(len(kernels))
    figure = Figure(figsize=(1.2 * columns + 1.2, 1.3 * rows + 0.5), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False)
    image = None
    for index, axes in enumerate(grid.ravel()):
        axes.set_xticks([])
        axes.set_yticks([])
        if index >= len(kernels):
            axes.axis("off")
            continue
        image = axes.imshow(kernels[index], cmap="RdBu_r", vmin=-limit, vmax=limit)
        axes.set_title(f"filter {index}", fontsize=8)
    figure.colorbar(image, ax=grid, shrink=0.8, label="weight")
    kh, kw = kernels.shape[1:]
    figure.suptitle(f"{title}: {len(kernels)} kernels of {kh}x{kw}", fontsize=10)
    return _save(figure, path)


def plot_feature_maps(
    model: Any, image: np.ndarray, path: str | Path, title: str | None = None
) -> Path:
    """One input image and the first conv layer's response to it, after ReLU.

    Args:
        image: one image, (C, H, W) or (H, W), scaled as the model was trained (e.g. /255).
    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> from tinygrad_cnn import nn
        >>> model = nn.Sequential(nn.Conv2d(1, 4, 3))
        >>> plot_feature_maps(model, np.ones((8, 8)), folder / "maps.png").exists()
        True
    """
    conv = first_conv(model)
    image = np.asarray(image, dtype=np.float32)
    batch = image.reshape((1, 1) + image.shape) if image.ndim == 2 else image[None]
    was_training = getattr(conv, "training", False)
    conv.eval()
    with no_grad():
        maps = np.maximum(conv(Tensor(batch)).data[0], 0)  # (O, OH, OW), what ReLU passes on
    conv.train(was_training)
    rows, columns = _grid_shape(len(maps))
    figure = Figure(figsize=(1.5 * (columns + 1) + 0.2, 1.6 * rows + 0.5), layout="constrained")
    grid = figure.subplots(rows, columns + 1, squeeze=False)  # column 0: the input
    for axes in grid.ravel():
        axes.axis("off")
    grid[0, 0].imshow(_image_2d(batch[0]), cmap="gray_r")
    grid[0, 0].set_title("input", fontsize=9, fontweight="bold")
    for index, feature_map in enumerate(maps):
        axes = grid[index // columns, 1 + index % columns]
        axes.imshow(feature_map, cmap="magma")
        axes.set_title(f"filter {index}", fontsize=8)
    figure.suptitle(
        title
        or f"what the first conv layer sees: {len(maps)} feature maps of "
        f"{maps.shape[1]}x{maps.shape[2]}, after ReLU",
        fontsize=10,
    )
    return _save(figure, path)
