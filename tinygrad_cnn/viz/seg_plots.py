"""Pictures of segmentation: masks in colour over their images, and loss/IoU curves.

A mask holds a class id per pixel (0 = background). `colorize` paints each class in its own
colour; `overlay` lays those colours over the grey input image, so you can see whether the
mask follows the object. `plot_mask_grid` puts one example per row:

    input | true mask (overlay) | predicted mask (overlay)

and `plot_segmentation_history` draws the loss and the IoU per epoch from a `fit` History.
matplotlib runs with the Agg backend (files only, no window), so this works on a server.

Read next: `../metrics.py` (how the predicted masks are scored).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

# background black, then matplotlib's tab10 and some more: distinct, readable on grey
_PALETTE = np.array([
    (0, 0, 0), (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207), (255, 221, 0),
    (127, 127, 127), (0, 0, 128), (128, 0, 0), (0, 128, 128), (128, 128, 0),
], dtype=np.float64) / 255.0  # fmt: skip
_FOREGROUND = np.array([1.0, 0.2, 0.2])  # one-class masks: red


def class_colors(num_classes: int) -> np.ndarray:
    """(num_classes, 3) RGB colours in [0, 1]: black background, then a distinct colour each.

    Example:
        >>> class_colors(2)
        array([[0. , 0. , 0. ],
               [1. , 0.2, 0.2]])
    """
    if num_classes <= 2:
        return np.stack([_PALETTE[0], _FOREGROUND])[:num_classes]
    if num_classes <= len(_PALETTE):
        return _PALETTE[:num_classes]
    hues = plt.get_cmap("hsv")(np.linspace(0, 1, num_classes - 1, endpoint=False))[:, :3]
    return np.concatenate([_PALETTE[:1], hues])


def colorize(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) RGB image with one colour per class.

    Example:
        >>> colorize(np.array([[0, 1]]), 2)[0, 1]
        array([1. , 0.2, 0.2])
    """
    mask = np.asarray(mask).astype(np.int64)
    if mask.size and (mask.min() < 0 or mask.max() >= num_classes):
        raise ValueError(
            f"colorize: mask values {mask.min()}..{mask.max()} are outside [0, {num_classes})"
        )
    return class_colors(num_classes)[mask]  # a lookup per pixel, no loop


def _grey(image: np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W) image -> (H, W, 3) grey RGB scaled to [0, 1]."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3:
        image = image.mean(axis=0) if image.shape[0] != 3 else image.transpose(1, 2, 0)
    low, high = image.min(), image.max()
    image = (image - low) / (high - low) if high > low else np.zeros_like(image)
    return image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)


def overlay(image: np.ndarray, mask: np.ndarray, num_classes: int, alpha: float = 0.6):
    """The image in grey with each non-background pixel tinted by its class colour.

    Example:
        >>> overlay(np.ones((1, 1, 2)), np.array([[0, 1]]), 2, alpha=1.0)[0]
        array([[0. , 0. , 0. ],
               [1. , 0.2, 0.2]])
    """
    grey = _grey(image)  # (H, W, 3)
    colours = colorize(mask, num_classes)  # (H, W, 3)
    on = (np.asarray(mask) > 0)[..., None]  # (H, W, 1): tint only the labelled pixels
    return np.where(on, (1 - alpha) * grey + alpha * colours, grey)


def plot_mask_grid(
    images: np.ndarray,
    true_masks: np.ndarray,
    predicted_masks: np.ndarray,
    num_classes: int,
    path: str | Path,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    scores: Sequence[float] | None = None,
) -> Path:
    """Write a PNG with one row per example: input | true mask | predicted mask.

    Args:
        images: (N, C, H, W) inputs; true_masks, predicted_masks: (N, H, W) class ids.
        num_classes: classes including the background 0 (2 for one-class masks).
        class_names: a name per class for the legend (default: "class k").
        title: a line above the grid; scores: an optional figure per row (e.g. its IoU).
    Returns:
        the path written.
    Raises:
        ValueError: the arrays do not describe the same N examples of the same size.
    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> images = np.zeros((2, 1, 8, 8), dtype=np.float32)
        >>> masks = np.zeros((2, 8, 8), dtype=np.int64)
        >>> masks[:, 2:5, 2:5] = 1
        >>> plot_mask_grid(images, masks, masks, 2, folder / "masks.png").exists()
        True
    """
    images, true_masks = np.asarray(images), np.asarray(true_masks)
    predicted_masks = np.asarray(predicted_masks)
    if images.ndim == 3:
        images = images[:, None]
    if not (true_masks.shape == predicted_masks.shape == images.shape[:1] + images.shape[2:]):
        raise ValueError(
            f"plot_mask_grid: images {images.shape}, true masks {true_masks.shape} "
            f"and predicted masks {predicted_masks.shape} must describe the same "
            f"(N, H, W)"
        )
    rows = len(images)
    figure, axes = plt.subplots(rows, 3, figsize=(6.6, 2.2 * rows + 0.9), squeeze=False)
    headers = ("input", "true mask", "predicted mask")
    for row in range(rows):
        pictures = (
            _grey(images[row]),
            overlay(images[row], true_masks[row], num_classes),
            overlay(images[row], predicted_masks[row], num_classes),
        )
        for column, picture in enumerate(pictures):
            axis = axes[row, column]
            axis.imshow(picture, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(headers[column], fontsize=10)
        if scores is not None:
            axes[row, 2].set_xlabel(f"IoU {scores[row]:.2f}", fontsize=9)
    names = (
        list(class_names) if class_names is not None else [f"class {k}" for k in range(num_classes)]
    )
    present = np.union1d(np.unique(true_masks), np.unique(predicted_masks)).astype(int)
    colours = class_colors(num_classes)
    handles = [Patch(color=colours[k], label=names[k]) for k in present if k > 0]
    if handles:
        figure.legend(
            handles=handles,
            loc="lower center",
            ncol=min(len(handles), 6),
            fontsize=8,
            frameon=False,
        )
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout(rect=(0, 0.5 / (2.2 * rows + 0.9) if handles else 0, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_segmentation_history(history: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write a PNG of the loss (left) and of IoU / pixel accuracy (right) per epoch.

    Args:
        history: one dict per epoch, as `fit` returns (keys like loss, val_loss, mean_iou,
            val_mean_iou, pixel_accuracy, val_pixel_accuracy); missing keys are skipped.
    Returns:
        the path written.
    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> history = [{"loss": 0.8, "mean_iou": 0.4}, {"loss": 0.5, "mean_iou": 0.6}]
        >>> plot_segmentation_history(history, folder / "curves.png").exists()
        True
    """
    if not history:
        raise ValueError("plot_segmentation_history: the history is empty")
    epochs = [logs.get("epoch", i + 1) for i, logs in enumerate(history)]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    panels = ((left, ("loss",), "loss"), (right, ("mean_iou", "pixel_accuracy"), "score"))
    for axis, keys, ylabel in panels:
        for key in keys:
            for name, style in ((key, "-o"), (f"val_{key}", "--s")):
                values = [logs.get(name) for logs in history]
                if any(v is not None for v in values):
                    values = [np.nan if v is None else v for v in values]
                    axis.plot(epochs, values, style, label=name, markersize=4)
        axis.set_xlabel("epoch")
        axis.set_ylabel(ylabel)
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    right.set_ylim(top=1.0)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def segmentation_report(run: Any, folder: str | Path, count: int = 8) -> dict[str, Path]:
    """The plots of a segmentation run: loss/IoU curves and a grid of test masks.

    Args:
        run: anything with `images` (N, C, H, W), `labels` (N, H, W) masks, `logits`
            (N, K, H, W), `history` (fit's list of dicts), `title` and `info.class_names`
            (background first), as the command line's RunResult.
        folder: where the PNGs go; count: how many test examples the grid shows.
    Returns:
        {"curves": path, "masks": path} (curves only when there is a history).
    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> from types import SimpleNamespace
        >>> masks = np.zeros((2, 8, 8), dtype=np.int64)
        >>> masks[:, 2:5, 2:5] = 1
        >>> run = SimpleNamespace(
        ...     images=np.zeros((2, 1, 8, 8)), labels=masks, logits=np.zeros((2, 2, 8, 8)),
        ...     history=[{"loss": 0.5, "mean_iou": 0.6}], title="demo",
        ...     info=SimpleNamespace(class_names=("background", "square")))
        >>> {name: path.name for name, path in segmentation_report(run, folder).items()}
        {'curves': 'curves.png', 'masks': 'masks.png'}
    """
    from tinygrad_cnn.metrics import confusion_matrix, iou_per_class, predict_classes

    folder = Path(folder)
    files = {}
    if run.history:
        files["curves"] = plot_segmentation_history(run.history, folder / "curves.png")
    names = tuple(run.info.class_names)
    labels = np.asarray(run.labels)[:count]
    if labels.ndim == 4:
        labels = labels[:, 0]  # (N, 1, H, W) one-class masks
    predicted = predict_classes(run.logits[:count])
    scores = []
    for truth, guess in zip(labels, predicted):  # one small confusion matrix per shown row
        iou = iou_per_class(confusion_matrix(guess, np.rint(truth), len(names)))[1:]
        scores.append(float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else 1.0)
    files["masks"] = plot_mask_grid(
        run.images[:count],
        labels,
        predicted,
        len(names),
        folder / "masks.png",
        class_names=names,
        title=run.title,
        scores=scores,
    )
    return files
