"""`tinygrad-cnn export CHECKPOINT --onnx OUT.onnx`: a trained model as an ONNX file.

    tinygrad-cnn train --model mnist-cnn --dataset shapes --epochs 1
    tinygrad-cnn export runs/shapes-mnist-cnn-.../model.safetensors --onnx cnn.onnx

The file runs in onnxruntime (any batch size, unless --static-batch) and opens in Netron.
The input's (C, H, W) is the one the checkpoint was trained on, or --input-shape.
The export itself is `tinygrad_cnn.onnx.export`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tinygrad_cnn import checkpoint


def _shape(text: str) -> tuple[int, int, int]:
    try:
        sizes = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected C,H,W such as 1,28,28, got {text!r}") from None
    if len(sizes) != 3 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected three positive sizes C,H,W, got {text!r}")
    return sizes


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `export` subcommand."""
    parser = subparsers.add_parser(
        "export",
        help="write a checkpoint's model as an ONNX file (onnxruntime, Netron)",
        description="Load a checkpoint, run its model once on an example input and write the "
        "recorded graph as ONNX. Needs the onnx package: pip install 'tinygrad_cnn[onnx]'.",
    )
    parser.add_argument("checkpoint", type=Path, help="a .safetensors checkpoint")
    parser.add_argument("--onnx", type=Path, required=True, help="the .onnx file to write")
    parser.add_argument(
        "--input-shape",
        type=_shape,
        default=None,
        help="one input's C,H,W (default: the images of the dataset it was trained on)",
    )
    parser.add_argument(
        "--static-batch", action="store_true", help="fix the batch size at 1 in the file"
    )
    parser.set_defaults(run=run)


def _input_shape(info: dict, given: tuple[int, int, int] | None) -> tuple[int, int, int]:
    """--input-shape, else the trained dataset's image shape, else the model's own size."""
    if given is not None:
        return given
    from tinygrad_cnn.cli.runs import DATASETS

    dataset = (info.get("metadata") or {}).get("dataset")
    if dataset in DATASETS:
        return DATASETS[dataset].image_shape
    kwargs = info.get("model_kwargs") or {}
    if "image_size" in kwargs:
        size = kwargs["image_size"]
        return kwargs.get("in_channels", 1), size, size
    raise ValueError(
        f"export: {info.get('model')!r} checkpoint does not say its input size; "
        f"pass --input-shape C,H,W"
    )


def run(args: argparse.Namespace) -> int:
    """`export`: write the checkpoint's model as ONNX and say what was written."""
    from tinygrad_cnn import onnx as onnx_export  # needs the onnx package

    model = checkpoint.load(args.checkpoint)
    shape = _input_shape(model.checkpoint, args.input_shape)
    example = np.zeros((1, *shape), np.float32)
    path = onnx_export.export(model, example, args.onnx, dynamic_batch=not args.static_batch)
    batch = "1" if args.static_batch else "any"
    print(
        f"wrote {path} ({path.stat().st_size:,} bytes): {model.checkpoint['model']}, "
        f"input (batch={batch}, {', '.join(map(str, shape))}); open it in Netron "
        f"(netron.app) or run it with onnxruntime"
    )
    return 0
