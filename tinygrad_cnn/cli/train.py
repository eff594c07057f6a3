"""`tinygrad-cnn demo | train | evaluate | summary`: train and inspect CNNs from the shell.

    tinygrad-cnn demo                          # offline: the course's CNN learns synthetic shapes
    tinygrad-cnn train --model mnist-cnn --dataset mnist --epochs 16 --batch-size 512
    tinygrad-cnn evaluate runs/mnist-mnist-cnn-<time>/model.safetensors --plots plots/
    tinygrad-cnn summary --model mnist-cnn

`demo` and `train` write a run folder (checkpoint after every epoch, history, results,
plots; see `cli/runs.py`). Ctrl-C stops training after saving the last finished epoch.
Bad arguments are argparse's one-line error with exit code 2.

Read next: `cli/runs.py` (what a run does, and the model and dataset registries).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from tinygrad_cnn import checkpoint, data, nn
from tinygrad_cnn.cli.runs import (
    DATASETS,
    MODEL_KWARGS,
    build,
    check_output_folder,
    load_split,
    print_files,
    report,
    train_and_report,
)
from tinygrad_cnn.console import print_summary
from tinygrad_cnn.ops.kernels import KERNELS, use_kernels
from tinygrad_cnn.train import History, format_logs, predict, score

# ----------------------------------------------------------------------------------------
# Arguments: a bad value is argparse's one-line error and exit code 2
# ----------------------------------------------------------------------------------------


def _positive(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not math.isfinite(value):  # inf trains nothing but nan
            raise argparse.ArgumentTypeError(f"must be finite, got {text}")
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = f"positive {kind.__name__}"  # argparse names the type in its errors
    return parse


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a float, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text}")
    return value


def _fraction(text: str) -> float:
    value = _positive(float)(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _training_options(parser: argparse.ArgumentParser, epochs: int, batch: int, lr: float):
    parser.add_argument(
        "--epochs",
        type=_positive(int),
        default=epochs,
        help=f"passes over the training set (default {epochs})",
    )
    parser.add_argument(
        "--batch-size",
        type=_positive(int),
        default=batch,
        help=f"images per step (default {batch})",
    )
    parser.add_argument(
        "--lr", type=_positive(float), default=lr, help=f"learning rate (default {lr:g})"
    )
    parser.add_argument(
        "--optimizer",
        choices=("adam", "sgd"),
        default="adam",
        help="Adam, or SGD with --momentum (default adam)",
    )
    parser.add_argument("--momentum", type=_finite, default=0.9, help="SGD momentum (default 0.9)")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the weights, dropout, shuffling and generated data (default 0)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="run folder (default runs/<dataset>-<model>-<time>)"
    )
    parser.add_argument(
        "--kernels",
        choices=KERNELS,
        default="fast",
        help="convolution and pooling kernels: fast (im2col) or reference (ops/reference.py, "
        "the math as written: the same model and numbers, slower); default fast",
    )
    parser.add_argument(
        "--schedule",
        choices=("constant", "cosine", "step"),
        default="constant",
        help="learning rate over the epochs: constant, cosine (down to 0 at the last epoch) "
        "or step (divided by 10 at 1/2 and 3/4 of the epochs) (default constant)",
    )
    parser.add_argument(
        "--augment",
        choices=("none", *sorted(data.AUGMENTATIONS)),
        default="none",
        help="augment the training batches: shift = random shifts of up to 2 pixels (default none)",
    )
    parser.add_argument(
        "--early-stop",
        type=_positive(int),
        default=None,
        metavar="N",
        help="stop when the validation loss has not improved for N epochs, and keep the "
        "weights of the best epoch",
    )
    parser.add_argument(
        "--watch",
        type=_positive(int),
        nargs="?",
        const=50,
        default=None,
        metavar="STEPS",
        help="per-layer health (gradient norm, update/weight ratio, dead ReLUs, activations) "
        "every STEPS steps (default 50) and each epoch's end; writes layers.csv and layers.png",
    )
    parser.add_argument(
        "--detect-anomaly",
        action="store_true",
        help="check every op's output and every gradient for nan/inf, and stop at the first",
    )


# --recipe NAME: settings that together reach a stated result (see the README)
RECIPES: dict[str, dict[str, Any]] = {
    # 99.4%+ on MNIST's test set: the wider LeNet, random shifts of up to 2 pixels,
    # Adam with a cosine schedule over 12 epochs of batches of 128
    "mnist-99.4": {
        "model": "lenet",
        "dataset": "mnist",
        "augment": "shift",
        "schedule": "cosine",
        "epochs": 12,
        "batch_size": 128,
        "lr": 2e-3,
        "optimizer": "adam",
    },
}


def _describe(recipe: dict[str, Any]) -> str:
    """The recipe as the options it stands for: '--model lenet --dataset mnist ...'."""
    shown = {
        key: f"{value:g}" if isinstance(value, float) else value for key, value in recipe.items()
    }
    return " ".join(f"--{key.replace('_', '-')} {value}" for key, value in shown.items())


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the demo, train, evaluate and summary subcommands."""
    demo = subparsers.add_parser(
        "demo",
        help="train the course's CNN on synthetic shapes (offline, a few seconds)",
        description="Train the course's MNIST CNN on the synthetic shapes dataset (generated, "
        "no download), report its test accuracy and write a run folder with the checkpoint, "
        "the history and plots.",
    )
    demo.add_argument(
        "--train-size",
        type=_positive(int),
        default=6000,
        help="training images to generate (default 6000)",
    )
    demo.add_argument(
        "--test-size",
        type=_positive(int),
        default=1000,
        help="test images to generate (default 1000)",
    )
    _training_options(demo, epochs=5, batch=64, lr=3e-3)
    demo.set_defaults(run=run_demo)

    train = subparsers.add_parser(
        "train",
        help="train a model on a dataset and write a run folder",
        description="Train a model (defaults: the course's recipe), validating on the test "
        "split after each epoch (or on part of the training set with --val-split) and saving "
        "a checkpoint after each epoch. Ctrl-C stops after saving the last finished epoch.",
    )
    train.add_argument("--model", choices=sorted(MODEL_KWARGS), default="mnist-cnn")
    train.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    train.add_argument(
        "--limit",
        type=_positive(int),
        default=None,
        help="use only N images of each split (quick runs)",
    )
    train.add_argument(
        "--val-split",
        type=_fraction,
        default=None,
        help="validate on this fraction of the training set, not the test split",
    )
    _training_options(train, epochs=16, batch=512, lr=1e-3)
    train.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        default=None,
        help="a named recipe: sets the model, dataset, epochs, batch size, lr, schedule and "
        "augmentation (" + "; ".join(f"{k}: {_describe(v)}" for k, v in RECIPES.items()) + ")",
    )
    train.set_defaults(run=run_train)

    evaluate = subparsers.add_parser(
        "evaluate",
        help="test a saved checkpoint on a dataset's test split",
        description="Load a checkpoint, report its loss and metrics on a test split, and "
        "optionally write the plots.",
    )
    evaluate.add_argument("checkpoint", type=Path, help="a .safetensors checkpoint")
    evaluate.add_argument(
        "--model",
        choices=sorted(MODEL_KWARGS),
        default=None,
        help="the file holds bare weights for this model (say, a PyTorch state_dict saved "
        "with safetensors.torch.save_file); needs --dataset",
    )
    evaluate.add_argument(
        "--dataset",
        choices=sorted(DATASETS),
        default=None,
        help="default: the dataset the checkpoint was trained on",
    )
    evaluate.add_argument(
        "--limit", type=_positive(int), default=None, help="use only N test images"
    )
    evaluate.add_argument("--batch-size", type=_positive(int), default=512)
    evaluate.add_argument(
        "--plots", type=Path, default=None, help="also write the plots into this folder"
    )
    evaluate.set_defaults(run=run_evaluate)

    summary = subparsers.add_parser(
        "summary",
        help="print a model's layers, output shapes and parameter formulas",
        description="Print each layer's output shape and parameter count with its formula.",
    )
    summary.add_argument("--model", choices=sorted(MODEL_KWARGS), default="mnist-cnn")
    summary.add_argument(
        "--dataset",
        choices=sorted(DATASETS),
        default="mnist",
        help="sets the input shape and the number of classes",
    )
    summary.set_defaults(run=run_summary)


# ----------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------


def run_train(args: argparse.Namespace) -> int:
    """`train`: fit a model on a dataset, report on its test split and write its run folder."""
    if args.recipe is not None:
        for key, value in RECIPES[args.recipe].items():
            setattr(args, key, value)
    check_output_folder(args.out)  # before the data loads and an epoch is spent
    train_set = load_split(args.dataset, "train", args.limit, args.seed)
    test_set = load_split(args.dataset, "test", args.limit, args.seed)
    val_set = None
    if args.val_split is not None:
        count = len(train_set[0])
        held_out = max(1, round(args.val_split * count))
        if held_out >= count:
            raise ValueError(
                f"train: --val-split {args.val_split} of {count} images leaves none to train on"
            )
        order = np.random.default_rng(args.seed).permutation(count)
        val_set = tuple(array[order[:held_out]] for array in train_set)
        train_set = tuple(array[order[held_out:]] for array in train_set)
    with use_kernels(args.kernels):
        code, _ = train_and_report(args, args.model, args.dataset, train_set, test_set, val_set)
    return code


def run_demo(args: argparse.Namespace) -> int:
    """`demo`: train the MNIST CNN on generated shapes (offline), then say how to try MNIST."""
    console = Console(soft_wrap=True)
    console.print(
        f"[bold]tinygrad-cnn demo[/bold]: the course's MNIST CNN learns to tell "
        f"{len(data.SHAPE_CLASSES)} shapes apart ({', '.join(data.SHAPE_CLASSES)}), "
        f"generated on the fly: no download.",
        highlight=False,
    )
    check_output_folder(args.out)
    train_set = load_split("shapes", "train", args.train_size, args.seed)
    test_set = load_split("shapes", "test", args.test_size, args.seed)
    with use_kernels(args.kernels):
        code, _ = train_and_report(args, "mnist-cnn", "shapes", train_set, test_set, None, console)
    if code == 0:
        _suggest_mnist(console)
    return code


def _suggest_mnist(console: Console) -> None:
    """Say how to train on the real MNIST, and whether its files are already here."""
    command = "tinygrad-cnn train --model mnist-cnn --dataset mnist"
    try:
        data.load_mnist("test", download=False)
    except (FileNotFoundError, ValueError, OSError):
        console.print(
            f"Next, the real MNIST (downloaded on first use; or set {data.ENV_VAR} to "
            f"a folder holding mnist/):\n  {command}",
            highlight=False,
        )
        return
    console.print(
        "MNIST is on this machine: train the course's network on it (16 epochs, Adam "
        f"lr 1e-3, batch 512, a few minutes):\n  {command}",
        highlight=False,
    )


def run_evaluate(args: argparse.Namespace) -> int:
    """`evaluate`: a checkpoint's metrics on the test split (and its plots with --plots)."""
    console = Console(soft_wrap=True)
    if args.plots is not None:
        check_output_folder(args.plots, "--plots")
    if args.model is None:
        model = checkpoint.load(args.checkpoint)
    elif args.dataset is None:
        raise ValueError("evaluate: --model needs --dataset (bare weights do not name theirs)")
    else:  # bare weights: build the model for the dataset, then check and load every key
        model = checkpoint.load_weights(build(args.model, args.dataset, 0), args.checkpoint)
        model.eval().checkpoint = {"model": args.model, "metadata": {"dataset": args.dataset}}
    name = model.checkpoint["model"]
    trained_on = (model.checkpoint.get("metadata") or {}).get("dataset")
    dataset = args.dataset or trained_on
    if dataset not in DATASETS:
        raise ValueError(
            f"evaluate: {args.checkpoint} does not say which dataset it was "
            f"trained on; pass --dataset ({', '.join(sorted(DATASETS))})"
        )
    info = DATASETS[dataset]
    _check_classes(model, name, dataset, trained_on)
    test_set = load_split(dataset, "test", args.limit)
    loader = data.DataLoader(*test_set, args.batch_size, shuffle=False)
    logits, labels = predict(model, loader)
    results = score(logits, labels, info.loss, info.metrics)
    console.print(
        f"{name} on the {dataset} test split ({len(labels):,} images): {format_logs(results)}",
        highlight=False,
    )
    if args.plots is not None:
        history = History(model.checkpoint.get("history") or [])
        files = report(
            model, dataset, test_set, logits, history, f"{name} on {dataset}", args.plots
        )
        print_files(console, args.plots, files)
    return 0


def _check_classes(model: Any, name: str, dataset: str, trained_on: str | None) -> None:
    """Refuse a model whose outputs are not the dataset's classes (its accuracy means nothing)."""
    kwargs = (getattr(model, "config", None) or {}).get("kwargs", {})
    if name not in MODEL_KWARGS or "num_classes" not in kwargs:
        return
    expected = MODEL_KWARGS[name](DATASETS[dataset]).get("num_classes")
    if expected is not None and kwargs["num_classes"] != expected:
        hint = f" (it was trained on {trained_on})" if trained_on else ""
        raise ValueError(
            f"evaluate: the checkpoint's {name} predicts {kwargs['num_classes']} classes, "
            f"but {dataset} has {DATASETS[dataset].num_classes} "
            f"({', '.join(DATASETS[dataset].class_names)}){hint}"
        )


def run_summary(args: argparse.Namespace) -> int:
    """`summary`: print a model's layers, output shapes and parameter counts."""
    model = build(args.model, args.dataset, seed=0)
    print_summary(nn.summary(model, DATASETS[args.dataset].image_shape))
    return 0
