"""`tinygrad-cnn graph`: draw the compute graph of a model's loss, an expression, or micrograd's.

    tinygrad-cnn graph --model mnist-cnn --out cnn.svg
    tinygrad-cnn graph --model unet --depth 2 --out unet.png
    tinygrad-cnn graph --model mnist-cnn --backward --grads --out cnn_backward.pdf
    tinygrad-cnn graph --example micrograd --out micrograd.svg
    tinygrad-cnn graph --example micrograd --out micrograd.html      # the explorer
    tinygrad-cnn graph --expr "(a*b + b**3).relu()" a=2 b=-3 --out expr.html
    tinygrad-cnn graph runs/<run>/model.safetensors --index 7 --out test7.html
    tinygrad-cnn graph --expr "(a*b + c)*f" a=2 b=-3 c=10 f=-2 --out backward.gif
    tinygrad-cnn graph --example micrograd --screenshot-step 5 --out explorer.png

The suffix of --out picks the format (.svg, .png, .pdf, or .dot for the DOT text, which needs
no Graphviz program); .html writes the explorer (`tinygrad_cnn.viz.explore`): the graph with a
details panel and a backward stepper, in one self-contained page; .gif animates backward, one
node a frame; --screenshot-step K photographs the explorer after K steps (headless chromium).
The drawing itself is `tinygrad_cnn.viz.draw_graph`.
"""

from __future__ import annotations

import argparse
import ast
import operator
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_cnn import Tensor, nn, ops

MODELS = ("mnist-cnn", "unet")
# bounds that keep a typo from asking for gigabytes (a graph is drawn from one small batch)
LIMITS = {"batch": (1, 64), "size": (8, 256), "max_nodes": (1, 5000), "depth": (0, 32)}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `graph` subcommand and its options to the parser."""
    parser = subparsers.add_parser(
        "graph",
        help="draw the compute graph of a model's loss, an expression or micrograd's example",
        description="Draw the compute graph of a model's loss on a random batch (or on one test "
        "image of a trained checkpoint), of an expression, or micrograd's README expression, "
        "with shapes, parameter names and module boxes. The suffix of --out picks the format: "
        ".svg, .png, .pdf or .dot; .html writes the interactive explorer, with a backward "
        "stepper.",
    )
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="CHECKPOINT | NAME=VALUE",
        help="a checkpoint (.safetensors) whose loss on test image --index is drawn; or, "
        "with --expr, the value of each variable (a=2 b=-3)",
    )
    parser.add_argument("--model", choices=MODELS, help="the network whose loss is drawn")
    parser.add_argument(
        "--example", choices=("micrograd",), help="micrograd's README expression, with values"
    )
    parser.add_argument(
        "--expr", default=None, help='an expression of named scalars: "(a*b + b**3).relu()"'
    )
    parser.add_argument(
        "--index", type=int, default=0, help="with a checkpoint: which test image (default 0)"
    )
    parser.add_argument(
        "--depth",
        type=int,
        default=None,
        help="draw modules below this nesting level as single nodes (0: the whole model is "
        "one node; 1: its direct children are; default: every op); for .html, the level "
        "whose boxes start folded",
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
    parser.add_argument(
        "--screenshot-step",
        type=int,
        default=None,
        metavar="K",
        help="with --out FILE.png: a screenshot of the explorer page after K steps of backward "
        "(needs chromium and selenium)",
    )
    parser.add_argument(
        "--out",
        required=True,
        help="FILE.svg, FILE.png, FILE.pdf, FILE.dot; FILE.html (the explorer); FILE.gif "
        "(backward, animated)",
    )
    parser.set_defaults(run=run)


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse out-of-range numbers and a missing or doubled source, before any work."""
    for name, (low, high) in LIMITS.items():
        value = getattr(args, name)
        if value is not None and not low <= value <= high:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} must be between {low} and {high}, got {value}")
    if args.index < 0:
        raise ValueError(f"--index must be >= 0, got {args.index}")
    checkpoints = [i for i in args.inputs if "=" not in i]
    sources = [args.model, args.example, args.expr, checkpoints or None]
    if sum(source is not None for source in sources) != 1:
        raise ValueError(
            "give one of --model, --example, --expr or a checkpoint file "
            f"(got {', '.join(repr(i) for i in checkpoints) or 'none'} besides the options)"
        )
    if len(checkpoints) > 1:
        raise ValueError(f"one checkpoint at a time, got {checkpoints}")
    if args.expr is None and len(checkpoints) != len(args.inputs):
        raise ValueError("NAME=VALUE arguments go with --expr")
    suffix = Path(args.out).suffix.lower()
    if suffix in (".html", ".gif") and (args.backward or args.grads):
        raise ValueError(
            f"the {suffix} output draws the forward graph and steps through backward itself; "
            "drop --backward/--grads"
        )
    if args.screenshot_step is not None:
        if suffix != ".png":
            raise ValueError("--screenshot-step writes a .png: give --out FILE.png")
        if not 0 <= args.screenshot_step <= 100000:
            raise ValueError(f"--screenshot-step must be >= 0, got {args.screenshot_step}")


def run(args: argparse.Namespace) -> int:
    """Draw the requested compute graph to `--out`; return the exit status."""
    from tinygrad_cnn.viz import draw_graph, explore, save_graph  # graphviz only when drawing

    check_arguments(args)
    suffix = Path(args.out).suffix.lower()
    stepped = suffix in (".html", ".gif") or args.screenshot_step is not None
    show_grads = args.grads
    if args.example == "micrograd":
        root = micrograd_expression(backward=not stepped)
        show_grads, title = True, args.title or "micrograd's example: g = f / 2 + 10 / f"
    elif args.expr is not None:
        root = expression(args.expr, args.inputs)
        title = args.title or args.expr
    elif args.model is not None:
        root = model_loss(args.model, args.batch, args.size)
        title = args.title
    else:
        root, title = checkpoint_loss(args.inputs[0], args.index)
        title = args.title or title
    if suffix == ".gif":
        from tinygrad_cnn.viz.animate import animate_backward

        print(f"wrote {animate_backward(root, args.out, title=title)}")
        return 0
    if args.screenshot_step is not None:
        return _screenshot(root, args, title)
    if suffix == ".html":
        path = explore(
            root, args.out, depth=args.depth, title=title, max_nodes=args.max_nodes,
            direction=args.direction,
        )  # fmt: skip
        print(f"wrote {path}")
        return 0
    if show_grads and args.example is None:
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


def _screenshot(root: Tensor, args: argparse.Namespace, title: str | None) -> int:
    """The explorer page of `root`, photographed in headless chromium after K steps."""
    import tempfile

    from tinygrad_cnn.viz import explore
    from tinygrad_cnn.viz.browser import missing, screenshot

    reason = missing()
    if reason:
        raise RuntimeError(f"--screenshot-step needs a browser: {reason}")
    with tempfile.TemporaryDirectory() as folder:
        page = explore(root, Path(folder) / "page.html", depth=args.depth, title=title)
        path = screenshot(page, args.out, steps=args.screenshot_step, size=(1300, 800))
    print(f"wrote {path}")
    return 0


# ----------------------------------------------------------------------------------------
# Expressions: read with `ast` against a whitelist, never eval'd
# ----------------------------------------------------------------------------------------

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_METHODS = ("relu", "exp", "log", "sigmoid", "tanh", "sum", "mean")


def expression(text: str, assignments: list[str]) -> Tensor:
    """The tensor of `text` (+ - * / **, unary minus, numbers, named variables and the
    methods relu exp log sigmoid tanh sum mean), each variable a float64 leaf requiring grad.

    Example:
        >>> expression("(a*b + b**3).relu()", ["a=2", "b=-3"]).item()
        0.0
        >>> expression("__import__('os')", [])
        Traceback (most recent call last):
        ...
        ValueError: --expr: a call of __import__ is not allowed; methods: relu, exp, log,
        sigmoid, tanh, sum, mean
    """
    variables: dict[str, Tensor] = {}
    for item in assignments:
        name, _, value = item.partition("=")
        if not name.isidentifier():
            raise ValueError(f"--expr: {item!r} should read NAME=VALUE, e.g. a=2")
        try:
            number = float(value)
        except ValueError:
            message = f"--expr: the value of {name} should be a number, got {value!r}"
            raise ValueError(message) from None
        if not np.isfinite(number):
            raise ValueError(f"--expr: the value of {name} should be finite, got {value!r}")
        variables[name] = Tensor(np.float64(number), requires_grad=True)
        variables[name].name = name
    if len(text) > 1000:
        raise ValueError(f"--expr: at most 1000 characters, got {len(text)}")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise ValueError(f"--expr: not an expression: {error.msg} in {text!r}") from None
    result = _evaluate(tree.body, variables)
    if not isinstance(result, Tensor) or not result.requires_grad:
        raise ValueError(f"--expr: {text!r} uses no variable; give it one, such as a")
    result.name = "out"
    return result


def _evaluate(node: ast.AST, variables: dict[str, Tensor]) -> Any:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in variables:
            given = ", ".join(variables) or "none"
            raise ValueError(f"--expr: no value for {node.id}; give it as {node.id}=VALUE "
                             f"(given: {given})")  # fmt: skip
        return variables[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left, variables), _evaluate(node.right, variables)
        if not isinstance(left, Tensor) and not isinstance(right, Tensor):
            left = Tensor(np.float64(left))  # 2 ** 3 is drawn as a constant op too
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand, variables))
    if isinstance(node, ast.Call):
        method = node.func.attr if isinstance(node.func, ast.Attribute) else None
        if method not in _METHODS or node.args or node.keywords:
            name = method or (node.func.id if isinstance(node.func, ast.Name) else "that")
            raise ValueError(
                f"--expr: a call of {name} is not allowed; methods: {', '.join(_METHODS)}"
            )
        value = _evaluate(node.func.value, variables)
        if not isinstance(value, Tensor):
            value = Tensor(np.float64(value))
        return getattr(value, method)()
    raise ValueError(f"--expr: {type(node).__name__} is not allowed in an expression")


def checkpoint_loss(path: str, index: int) -> tuple[Tensor, str]:
    """The loss of a trained checkpoint on test image `index` of its dataset, and a title."""
    from tinygrad_cnn import checkpoint
    from tinygrad_cnn.cli.runs import DATASETS, load_split, scaled

    model = checkpoint.load(path)
    dataset = (model.checkpoint.get("metadata") or {}).get("dataset")
    if dataset not in DATASETS:
        raise ValueError(f"{path} does not say which dataset it was trained on")
    images, labels = load_split(dataset, "test", limit=index + 1)
    if index >= len(labels):
        raise ValueError(f"--index {index} is past the {len(labels)} test images of {dataset}")
    x = Tensor(scaled(images[index : index + 1]))
    x.name = f"test image {index}"
    loss = DATASETS[dataset].loss(model(x), np.asarray(labels[index : index + 1]))
    loss.name = "loss"
    name = model.checkpoint.get("model", "model")
    return loss, f"{name}: loss on {dataset} test image {index} (label {labels[index]})"


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
        nn.manual_seed(0)  # the same weights every time
        model = UNet()
        images = Tensor(rng.standard_normal((batch, 1, size, size)).astype(np.float32))
        images.name = "images"
        masks = Tensor((rng.random((batch, 1, size, size)) > 0.5).astype(np.float32))
        masks.name = "masks"
        loss = ops.binary_cross_entropy_with_logits(model(images), masks)
    loss.name = "loss"
    return loss


def micrograd_expression(backward: bool = True) -> Tensor:
    """micrograd's README expression in float64, after backward (unless backward=False),
    every gradient kept.

    g = 24.7041, dg/da = 138.8338, dg/db = 645.5773, as micrograd prints them.
    """
    from tinygrad_cnn.walk import walk

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
    if not backward:
        return g
    for tensor in walk([g]):
        if tensor._ctx is not None:
            tensor.retain_grad()  # so every node shows its gradient, as micrograd's do
    g.backward()
    return g
