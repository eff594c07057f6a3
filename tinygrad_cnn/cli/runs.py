"""One training run from the command line: build, fit, test, save, plot, into one folder.

    runs/<dataset>-<model>-<time>/
        model.safetensors    the checkpoint, rewritten (atomically) after every epoch
        history.json/.csv    fit's per-epoch losses and metrics
        results.json         the test figures, timing and settings
        *.png                the plots of the dataset's task (see REPORTS)

Models and datasets are found in registries, so other model families plug in by adding
entries, not by editing the logic: `checkpoint.MODELS` builds a model by name,
`MODEL_KWARGS` turns a dataset's description into that model's constructor arguments,
`DATASETS` describes each dataset (classes, image shape, task, loss, metrics) and `REPORTS`
writes the plots of a task.

Read next: `../train.py` (`fit`, which every run calls).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from tinygrad_cnn import checkpoint, data, nn, ops, optim
from tinygrad_cnn.console import print_summary
from tinygrad_cnn.train import History, fit, format_logs, predict, score
from tinygrad_cnn.viz import plots, seg_plots

# ----------------------------------------------------------------------------------------
# Registries
# ----------------------------------------------------------------------------------------


@dataclass
class DatasetInfo:
    """What a run needs to know about a dataset before loading it (via `data.get_dataset`)."""

    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]  # one image: (C, H, W)
    task: str = "classification"  # picks the plots in REPORTS
    loss: Callable = ops.cross_entropy  # loss(logits, labels) -> scalar Tensor
    metrics: tuple[str, ...] = ("accuracy",)  # names in train.METRICS

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(data.MNIST_CLASSES, (1, 28, 28)),
    "fashion-mnist": DatasetInfo(data.FASHION_CLASSES, (1, 28, 28)),
    "shapes": DatasetInfo(data.SHAPE_CLASSES, (1, 28, 28)),
    # segmentation: labels are (N, H, W) masks, class 0 the background
    "shapes-seg": DatasetInfo(
        ("background", "shape"),
        (1, 64, 64),
        task="segmentation",
        loss=ops.segmentation_loss,
        metrics=("mean_iou", "pixel_accuracy"),
    ),
    "mnist-seg": DatasetInfo(
        ("background", *data.MNIST_CLASSES),
        (1, 64, 64),
        task="segmentation",
        loss=ops.segmentation_loss,
        metrics=("mean_iou", "pixel_accuracy"),
    ),
}


def classifier_kwargs(info: DatasetInfo) -> dict[str, Any]:
    """mnist_cnn / lenet arguments for a dataset: channels, classes, image side."""
    channels, size, _ = info.image_shape
    return {"in_channels": channels, "num_classes": info.num_classes, "image_size": size}


# model name (a key of checkpoint.MODELS) -> its constructor kwargs for a dataset
MODEL_KWARGS: dict[str, Callable[[DatasetInfo], dict[str, Any]]] = {
    "mnist-cnn": classifier_kwargs,
    "lenet": classifier_kwargs,
    # one output channel (a sigmoid logit) for background/foreground, else one per class
    "unet": lambda info: {
        "in_channels": info.image_shape[0],
        "num_classes": 1 if info.num_classes == 2 else info.num_classes,
    },
}


@dataclass
class RunResult:
    """What a report function gets: the trained model, the test data and its predictions."""

    model: Any
    info: DatasetInfo
    images: np.ndarray  # test images as the loader feeds them: float32 (N, C, H, W) in [0, 1]
    labels: np.ndarray
    logits: np.ndarray
    history: History
    title: str


def classification_report(run: RunResult, folder: Path) -> dict[str, Path]:
    """Learning curves, confusion matrix, misclassified images, first-layer filters and maps."""
    names = run.info.class_names
    files = {}
    if run.history:
        files["curves"] = plots.plot_history(run.history, folder / "curves.png", title=run.title)
    files["confusion matrix"] = plots.plot_confusion_matrix(
        run.labels,
        run.logits.argmax(axis=1),
        folder / "confusion_matrix.png",
        names,
        title=f"{run.title}, test set",
    )
    files["misclassified"] = plots.plot_misclassified(
        run.images, run.labels, run.logits, folder / "misclassified.png", names
    )
    files["filters"] = plots.plot_filters(run.model, folder / "filters.png")
    files["feature maps"] = plots.plot_feature_maps(
        run.model, run.images[0], folder / "feature_maps.png"
    )
    return files


# task -> function(run, folder) -> {what: path}, writing that task's plots
REPORTS: dict[str, Callable[[RunResult, Path], dict[str, Path]]] = {
    "classification": classification_report,
    "segmentation": seg_plots.segmentation_report,
}


# ----------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------


def load_split(dataset: str, split: str, limit: int | None = None, seed: int = 0) -> tuple:
    """(images, labels) of one split, through `data.get_dataset`."""
    images, labels = data.get_dataset(dataset, split, limit=limit, seed=seed)
    return images, labels


def scaled(images: np.ndarray) -> np.ndarray:
    """Images as the loader feeds them: float32 (N, C, H, W), uint8 values divided by 255."""
    images = np.asarray(images)
    values = images.astype(np.float32) / 255 if images.dtype == np.uint8 else images
    return (values[:, None] if values.ndim == 3 else values).astype(np.float32, copy=False)


def build(model_name: str, dataset: str, seed: int) -> Any:
    """The registered model, sized for the dataset; the seed fixes its weights and dropout."""
    nn.manual_seed(seed)
    return checkpoint.build_model(model_name, **MODEL_KWARGS[model_name](DATASETS[dataset]))


def report(
    model: Any,
    dataset: str,
    test_set: tuple,
    logits: np.ndarray,
    history: History,
    title: str,
    folder: Path,
) -> dict[str, Path]:
    """Write the plots of the dataset's task; returns {what: path}."""
    info = DATASETS[dataset]
    run = RunResult(
        model, info, scaled(test_set[0]), np.asarray(test_set[1]), logits, history, title
    )
    return REPORTS[info.task](run, folder)


def print_files(console: Console, folder: Path, files: dict[str, Path]) -> None:
    """Print the run folder and what each file written in it holds."""
    console.print(f"run folder: [bold]{folder}[/bold]", highlight=False)
    width = max(map(len, files))
    for what, path in files.items():
        console.print(f"  {what:<{width}}  {path}", highlight=False, soft_wrap=True)


def _optimizer(args: argparse.Namespace, model: Any) -> Any:
    if args.optimizer == "sgd":
        return optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    return optim.Adam(model.parameters(), lr=args.lr)


# ----------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------


def train_and_report(
    args: argparse.Namespace,
    model_name: str,
    dataset: str,
    train_set: tuple,
    test_set: tuple,
    val_set: tuple | None = None,
    console: Console | None = None,
) -> tuple[int, dict[str, Any]]:
    """Build, train, test, save and plot one run; returns (exit code, test results).

    `args` holds epochs, batch_size, lr, optimizer, momentum, seed and out (the folder, or
    None for runs/<dataset>-<model>-<time>). Validation uses `val_set`, else the test split.
    Ctrl-C during training saves the last finished epoch and returns exit code 130.
    """
    console = console or Console(soft_wrap=True)
    info = DATASETS[dataset]
    model = build(model_name, dataset, args.seed)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = Path(args.out or Path("runs") / f"{dataset}-{model_name}-{stamp}")
    folder.mkdir(parents=True, exist_ok=True)
    console.rule(f"[bold]{model_name}[/bold] for {dataset} ({info.num_classes} classes)")
    print_summary(nn.summary(model, info.image_shape), console)

    batch = args.batch_size
    train_loader = data.DataLoader(*train_set, batch, shuffle=True, seed=args.seed)
    test_loader = data.DataLoader(*test_set, batch, shuffle=False)
    val_loader = test_loader
    if val_set is not None:
        val_loader = data.DataLoader(*val_set, batch, shuffle=False)
    path = folder / "model.safetensors"
    metadata = {
        "dataset": dataset,
        "seed": args.seed,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "batch_size": batch,
        "train_images": len(train_set[0]),
    }
    finished: list[dict] = []

    def save_each_epoch(epoch: int, logs: dict) -> None:
        finished.append(logs)  # a crash later still leaves this epoch on disk
        checkpoint.save(model, path, metadata, finished)

    val_name = "the test split" if val_set is None else f"{len(val_set[0]):,} held-out images"
    console.rule(f"training: {args.epochs} epochs of {len(train_set[0]):,} images")
    console.print(
        f"{args.optimizer} lr {args.lr:g}, batch {batch}; validation on {val_name}",
        highlight=False,
    )
    start = time.perf_counter()
    history = fit(
        model,
        train_loader,
        _optimizer(args, model),
        loss=info.loss,
        epochs=args.epochs,
        val_loader=val_loader,
        metrics=info.metrics,
        callbacks=[save_each_epoch],
        console=console,
    )
    wall_time = time.perf_counter() - start
    files = {
        "checkpoint": path,
        "history": history.to_json(folder / "history.json"),
        "history (csv)": history.to_csv(folder / "history.csv"),
    }
    if history.interrupted:
        if not history:
            console.print("stopped before the first epoch finished: nothing saved")
            return 130, {}
        checkpoint.save(model, path, metadata, history)
        console.print(f"stopped: the checkpoint holds epoch {len(history)}", highlight=False)
        print_files(console, folder, files)
        return 130, {}

    logits, labels = predict(model, test_loader)
    results = score(logits, labels, info.loss, info.metrics)
    train_time = sum(history.column("time"))
    results.update(
        {
            "test_images": len(labels),
            "epochs": len(history),
            "train_time_s": round(train_time, 2),
            "wall_time_s": round(wall_time, 2),
            "images_per_s": round(len(train_set[0]) * len(history) / train_time, 1),
        }
    )
    metadata["test"] = results
    checkpoint.save(model, path, metadata, history)
    files["results"] = folder / "results.json"
    files["results"].write_text(json.dumps({"model": model_name, **metadata}, indent=2) + "\n")
    files.update(
        report(model, dataset, test_set, logits, history, f"{model_name} on {dataset}", folder)
    )
    console.rule("results")
    shown = {key: results[key] for key in ("loss", *info.metrics)}
    console.print(
        f"[bold]test {format_logs(shown)}[/bold] on {len(labels):,} images; "
        f"training took {train_time:.1f} s ({results['images_per_s']:,.0f} images/s)",
        highlight=False,
    )
    print_files(console, folder, files)
    return 0, results
