"""`tinygrad-cnn predict CHECKPOINT`: show what a segmentation model sees, as a PNG grid.

    tinygrad-cnn train --model unet --dataset shapes-seg --epochs 6 --batch-size 16 --lr 3e-3
    tinygrad-cnn predict runs/shapes-seg-unet-.../model.safetensors --count 8

Each row of the picture is one test image: the input | the true mask | the predicted mask,
the masks drawn as a colour per class over the grey input, with the row's IoU under it. The
test images come from the dataset the checkpoint was trained on (or `--dataset`).

Read next: `viz/seg_plots.py` (how the grid is drawn).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_cnn import checkpoint, data
from tinygrad_cnn.metrics import confusion_matrix, num_classes_of, predict_classes
from tinygrad_cnn.metrics import segmentation_report as scores_of
from tinygrad_cnn.train import predict
from tinygrad_cnn.viz.seg_plots import plot_mask_grid

SEGMENTATION_DATASETS = ("shapes-seg", "mnist-seg")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int, got {text!r}") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be between 1 and 64, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `predict` subcommand."""
    parser = subparsers.add_parser(
        "predict",
        help="draw a segmentation model's masks on test images (input | true | predicted)",
        description="Load a segmentation checkpoint (a U-Net), run it on test images and write "
        "a PNG grid: input | true mask | predicted mask, a colour per class over the input.",
    )
    parser.add_argument("checkpoint", type=Path, help="a .safetensors checkpoint")
    parser.add_argument(
        "--dataset",
        choices=SEGMENTATION_DATASETS,
        default=None,
        help="default: the dataset the checkpoint was trained on",
    )
    parser.add_argument("--count", type=_count, default=8, help="test images to show (default 8)")
    parser.add_argument("--start", type=int, default=0, help="first test image (default 0)")
    parser.add_argument(
        "--out", type=Path, default=None, help="PNG to write (default: predict.png beside it)"
    )
    parser.set_defaults(run=run_predict)


def _class_names(dataset: str, num_classes: int) -> tuple[str, ...]:
    """Names of the mask values 0..num_classes-1, background first."""
    names = tuple(data.dataset_info(dataset)["classes"])
    if names[0] != "background":
        names = ("background", *names)
    if len(names) != num_classes:
        names = ("background", *(f"class {k}" for k in range(1, num_classes)))
    return names


def run_predict(args: argparse.Namespace) -> int:
    """`predict`: a segmentation checkpoint's masks on test images, scored and drawn to a PNG."""
    if args.start < 0:
        raise ValueError(f"predict: --start must be >= 0, got {args.start}")
    model = checkpoint.load(args.checkpoint)
    info: dict[str, Any] = model.checkpoint
    dataset = args.dataset or (info.get("metadata") or {}).get("dataset")
    if dataset not in SEGMENTATION_DATASETS:
        choices = " or ".join(SEGMENTATION_DATASETS)
        raise ValueError(f"predict: {args.checkpoint} was trained on {dataset!r}, not a "
                         f"segmentation dataset; pass --dataset {choices}")  # fmt: skip
    images, masks = data.get_dataset(dataset, "test", limit=args.start + args.count)
    images, masks = images[args.start :], masks[args.start :]
    loader = data.DataLoader(images, masks, batch_size=args.count, shuffle=False)
    logits, labels = predict(model, loader)
    if logits.ndim != 4:
        raise ValueError(f"predict: the model {info.get('model')!r} gives logits of shape "
                         f"{logits.shape}, not per-pixel (N, C, H, W) scores")  # fmt: skip
    num_classes = num_classes_of(logits)
    predicted = predict_classes(logits)
    report = scores_of(confusion_matrix(predicted, labels, num_classes))
    rows = [scores_of(confusion_matrix(p, t, num_classes))["mean_iou"]
            for p, t in zip(predicted, labels)]  # fmt: skip
    out = args.out or Path(args.checkpoint).with_name("predict.png")
    title = (f"{info.get('model')} on {dataset} test images {args.start}-"
             f"{args.start + len(labels) - 1}: mean IoU {report['mean_iou']:.3f}")  # fmt: skip
    plot_mask_grid(np.asarray(images, dtype=np.float32)[:, None], labels, predicted, num_classes,
                   out, class_names=_class_names(dataset, num_classes), title=title,
                   scores=[1.0 if np.isnan(r) else r for r in rows])  # fmt: skip
    print(f"mean IoU {report['mean_iou']:.4f}, pixel accuracy {report['pixel_accuracy']:.4f} "
          f"on {len(labels)} test images")  # fmt: skip
    print(f"wrote {out}")
    return 0
