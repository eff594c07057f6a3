"""`tinygrad-cnn graph`: draw the compute graph of a model's loss, or of micrograd's example.

    tinygrad-cnn graph --model mnist-cnn --out cnn.svg
    tinygrad-cnn graph --model unet --depth 2 --out unet.png
    tinygrad-cnn graph --model mnist-cnn --backward --grads --out cnn_backward.pdf
    tinygrad-cnn graph --example micrograd --out micrograd.svg

The suffix of --out picks the format (.svg, .png, .pdf, or .dot for the DOT text, which needs
no Graphviz program). The drawing itself is `tinygrad_cnn.viz.draw_graph`.
"""

from __future__ import annotations

import argparse

import numpy as np

from tinygrad_cnn import Tensor, ops

MODELS = ("mnist-cnn", "unet")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `graph` subcommand and its options to the parser."""
    parser = subparsers.add_parser(
        "graph",
        help="draw the compute graph of a model's loss (or of micrograd's example)",
        description="Draw the compute graph of a model's loss on a random batch, with shapes, "
        "parameter names and module boxes, or micrograd's README expression with its values "
        "and gradients. The suffix of --out picks the format: .svg, .png, .pdf or .dot.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", choices=MODELS, help="the network whose loss is drawn")
    source.add_argument(
        "--example", choices=("micrograd",), help="micrograd's README expression, with values"
    )
    parser.add_argument(
        "--depth",
        type=int,
        default=None,
        help="draw modules below this nesting level as single nodes (0: the whole model is "
        "one node; 1: its direct children are; default: every op)",
    )
    parser.add_argument(
        "--backward", action="store_true", help="draw the backward pass instead of the forward"
    )
    parser.add_argument(
        "--grads", action="store_true", help="run backward and show each gradient's norm"
    )
    parser.add_argument("--direction", default="TB", choices=("TB", "LR", "BT", "RL"))
    parser.add_argument("--batch", type=int, default=2, help="batch size of the random input")
    parser.add_argument(
        "--size", type=int, default=None, help="image side (default 28 for mnist-cnn, 32 unet)"
    )
    parser.add_argument("--max-nodes", type=int, default=600, help="refuse larger graphs")
    parser.add_argument("--title", default=None, help="a caption above the drawing")
    parser.add_argument("--out", required=True, help="FILE.svg, FILE.png, FILE.pdf or FILE.dot")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Draw the requested compute graph to `--out`; return the exit status."""
    from tinygrad_cnn.viz import draw_graph, save_graph  # graphviz only when drawing

    if args.batch < 1:
        raise ValueError(f"--batch must be >= 1, got {args.batch}")
    if args.example == "micrograd":
        root = micrograd_expression()
        show_grads, title = True, args.title or "micrograd's example: g = f / 2 + 10 / f"
    else:
        root = model_loss(args.model, args.batch, args.size)
        show_grads, title = args.grads, args.title
        if show_grads:
            root.backward()
    graph = draw_graph(
        root,
        direction=args.direction,
        show_grads=show_grads,
        backward=args.backward,
        depth=args.depth,
        max_nodes=args.max_nodes,
        title=title,
    )
    path = save_graph(graph, args.out)
    print(f"wrote {path}")
    return 0


def model_loss(name: str, batch: int, size: int | None) -> Tensor:
    """The loss of a freshly initialised model (seed 0) on a random batch."""
    from tinygrad_cnn.models import UNet, mnist_cnn

    rng = np.random.default_rng(0)
    if name == "mnist-cnn":
        size = size or 28
        model = mnist_cnn(image_size=size, seed=0)
        images = Tensor(rng.standard_normal((batch, 1, size, size)).astype(np.float32))
        images.name = "images"
        loss = ops.cross_entropy(model(images), rng.integers(0, 10, size=batch))
    else:
        size = size or 32
        model = UNet()
        images = Tensor(rng.standard_normal((batch, 1, size, size)).astype(np.float32))
        images.name = "images"
        masks = Tensor((rng.random((batch, 1, size, size)) > 0.5).astype(np.float32))
        masks.name = "masks"
        loss = ops.binary_cross_entropy_with_logits(model(images), masks)
    loss.name = "loss"
    return loss


def micrograd_expression() -> Tensor:
    """micrograd's README expression in float64, after backward, every gradient kept.

    g = 24.7041, dg/da = 138.8338, dg/db = 645.5773, as micrograd prints them.
    """
    from tinygrad_cnn.viz.build import walk

    a = Tensor(np.float64(-4.0), requires_grad=True)
    b = Tensor(np.float64(2.0), requires_grad=True)
    a.name, b.name = "a", "b"
    c = a + b
    d = a * b + b**3
    c = c + (c + 1)
    c = c + (1 + c + (-a))
    d = d + (d * 2 + (b + a).relu())
    d = d + (3 * d + (b - a).relu())
    e = c - d
    f = e**2
    g = f / 2.0
    g = g + 10.0 / f
    g.name = "g"
    for tensor in walk([g]):
        if tensor._ctx is not None:
            tensor.retain_grad()  # so every node shows its gradient, as micrograd's do
    g.backward()
    return g
