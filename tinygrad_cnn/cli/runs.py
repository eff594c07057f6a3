"""One training run from the command line: build, fit, test, save, plot, into one folder.

    runs/<dataset>-<model>-<time>/
        model.safetensors    the checkpoint, rewritten (atomically) after every epoch
        history.json/.csv    fit's per-epoch losses and metrics
        layers.csv/.png      per-layer health, with --watch
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
from tinygrad_cnn.callbacks import EarlyStopping
from tinygrad_cnn.cli.outputs import check_output_folder
from tinygrad_cnn.console import print_summary
from tinygrad_cnn.train import History, TrainingDiverged, fit, format_logs, predict, score
from tinygrad_cnn.viz import plots, seg_plots, train_plots

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


def make_scheduler(name: str, optimizer: Any, epochs: int) -> Any:
    """The `--schedule` by name: None (constant), cosine to 0 over the run, or step (/10 at
    1/2 and 3/4 of the epochs, as the classic ImageNet recipes did)."""
    if name in (None, "constant"):
        return None
    if name == "cosine":
        return optim.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "step":
        return _TwoSteps(optimizer, epochs)
    raise ValueError(f"unknown schedule {name!r}; choose constant, cosine or step")


class _TwoSteps(optim.LRScheduler):
    """lr / 10 from half the epochs on, lr / 100 from three quarters on."""

    def __init__(self, optimizer: Any, epochs: int):
        super().__init__(optimizer)
        self.milestones = (max(1, epochs // 2), max(1, (3 * epochs) // 4))

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * 0.1 ** sum(epoch >= milestone for milestone in self.milestones)


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

    `args` holds epochs, batch_size, lr, optimizer, momentum, seed, out (the folder, or
    None for runs/<dataset>-<model>-<time>) and optionally schedule, augment, early_stop,
    watch and detect_anomaly. Validation uses `val_set`, else the test split. The folder is
    made when the first epoch is saved: a run that fails before leaves nothing behind.
    Ctrl-C during training saves the last finished epoch and returns exit code 130.

    Raises:
        RuntimeError: the loss became nan/inf (naming the last finite checkpoint).
    """
    console = console or Console(soft_wrap=True)
    info = DATASETS[dataset]
    model = build(model_name, dataset, args.seed)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = Path(args.out or Path("runs") / f"{dataset}-{model_name}-{stamp}")
    check_output_folder(folder)
    console.rule(f"[bold]{model_name}[/bold] for {dataset} ({info.num_classes} classes)")
    print_summary(nn.summary(model, info.image_shape), console)

    batch = args.batch_size
    augment = getattr(args, "augment", "none")
    transform = None if augment == "none" else data.AUGMENTATIONS[augment]()
    train_loader = data.DataLoader(
        *train_set, batch, shuffle=True, seed=args.seed, transform=transform
    )
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
        "epochs": args.epochs,
        "train_images": len(train_set[0]),
        "schedule": getattr(args, "schedule", "constant"),
        "augment": augment,
    }
    finished: list[dict] = []

    def save_each_epoch(epoch: int, logs: dict) -> None:
        finished.append(logs)  # a crash later still leaves this epoch on disk
        checkpoint.save(model, path, metadata, finished)

    callbacks: list[Any] = [save_each_epoch]
    if getattr(args, "early_stop", None):
        callbacks.append(EarlyStopping(patience=args.early_stop))
    val_name = "the test split" if val_set is None else f"{len(val_set[0]):,} held-out images"
    console.rule(f"training: {args.epochs} epochs of {len(train_set[0]):,} images")
    console.print(
        f"{args.optimizer} lr {args.lr:g} ({metadata['schedule']}), batch {batch}, "
        f"augment {augment}; validation on {val_name}",
        highlight=False,
    )
    optimizer = _optimizer(args, model)
    scheduler = make_scheduler(metadata["schedule"], optimizer, args.epochs)
    watch = getattr(args, "watch", None)
    start = time.perf_counter()
    try:
        # a diverging run overflows on its way to nan: the one-line error below says it all
        with np.errstate(over="ignore", invalid="ignore"):
            history = fit(
                model,
                train_loader,
                optimizer,
                loss=info.loss,
                epochs=args.epochs,
                val_loader=val_loader,
                metrics=info.metrics,
                callbacks=callbacks,
                console=console,
                scheduler=scheduler,
                watch=watch or False,
                detect_anomaly=getattr(args, "detect_anomaly", False),
            )
    except TrainingDiverged as error:
        if not error.history:
            raise RuntimeError(f"{error}; no epoch had finished, so nothing was saved") from None
        error.history.to_json(folder / "history.json")
        error.history.to_csv(folder / "history.csv")
        raise RuntimeError(
            f"{error}; the last finite checkpoint is {path} (epoch {len(error.history)})"
        ) from None
    wall_time = time.perf_counter() - start
    if not history:  # Ctrl-C before the first epoch finished: no folder, no empty files
        console.print("stopped before the first epoch finished: nothing saved")
        return 130, {}
    files = {
        "checkpoint": path,
        "history": history.to_json(folder / "history.json"),
        "history (csv)": history.to_csv(folder / "history.csv"),
    }
    if history.health is not None and history.health.rows:
        files["layers (csv)"] = history.health.to_csv(folder / "layers.csv")
        files["layers"] = train_plots.plot_layers(
            history.health.rows, folder / "layers.png", f"{model_name} on {dataset}: layer health"
        )
    if history.interrupted:
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
    best = [cb for cb in callbacks if isinstance(cb, EarlyStopping)]
    if best and best[0].best_epoch:
        results["best_epoch"] = best[0].best_epoch
    metadata["test"] = results
    checkpoint.save(model, path, metadata, history)
    files["results"] = folder / "results.json"
    payload = checkpoint.json_safe({"model": model_name, **metadata})
    files["results"].write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n")
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
