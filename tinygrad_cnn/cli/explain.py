"""`tinygrad-cnn explain TOPIC`: the course's worked examples, recomputed by the real ops.

    explain conv [--image JSON] [--kernel JSON] [--stride S] [--padding valid|same|P]
    explain pool [--image JSON] [--kernel K] [--stride S] [--padding valid|same|P]
    explain params [mnist-cnn | unet | dense IN OUT | conv IN OUT KX KY]
    explain backward [--expr TEXT NAME=VALUE ...] [--graph FILE]
    explain conv-backward

The numbers come from `tinygrad_cnn.explain`, which runs the ops; `explain_pages.py` lays
them out as blocks, and this file parses the command and renders the blocks: with rich
(panels, highlighted windows) on a terminal, as plain text otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tinygrad_cnn import explain
from tinygrad_cnn.cli.explain_pages import (
    backward_page,
    conv_backward_page,
    conv_page,
    expression_and_values,
    params_page,
    pool_page,
)
from tinygrad_cnn.cli.render import Block, render_plain, render_rich

TOPICS = ("conv", "pool", "params", "backward", "conv-backward")


# ----------------------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------------------


def _json_option(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"{what} must be JSON, e.g. [[1, 0], [0, 1]], got {text!r}") from None


def _padding(text: str) -> int | str:
    return text if text in ("valid", "same") else int(text)


def _backward_words(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """--expr TEXT NAME=VALUE ... (and any NAME=VALUE words) as (TEXT or None, the words)."""
    expression, *values = args.expr or [None]
    return expression, values + args.words


def build_page(args: argparse.Namespace) -> list[Block]:
    """The blocks for the parsed arguments (ValueError for a bad combination)."""
    image = _json_option(args.image, "--image")
    kernel = _json_option(args.kernel, "--kernel")
    if args.topic not in ("params", "backward") and args.words:
        raise ValueError(f"explain {args.topic}: unexpected arguments {args.words}")
    if args.topic == "conv":
        custom = args.stride is not None or args.padding is not None
        configs = (
            [
                (
                    1 if args.stride is None else args.stride,  # 0 is refused, not defaulted
                    "valid" if args.padding is None else args.padding,
                )
            ]
            if custom
            else [(1, "valid"), (1, "same"), (2, "valid")]
        )
        return conv_page(
            image if image is not None else explain.COURSE_IMAGE,
            kernel if kernel is not None else explain.COURSE_KERNEL,
            configs,
        )
    if args.topic == "pool":
        if kernel is not None and (isinstance(kernel, bool) or not isinstance(kernel, int)):
            raise ValueError(f"explain pool: --kernel is the window side, an int; got {kernel!r}")
        return pool_page(
            image if image is not None else explain.POOL_MAP,
            2 if kernel is None else kernel,  # 0 is refused by explain_pool, not defaulted
            args.stride,
            0 if args.padding is None else args.padding,
        )
    if args.topic == "params":
        return params_page(args.words)
    if args.topic == "backward":
        return backward_page(*_backward_words(args), args.graph)
    return conv_backward_page()


def run(args: argparse.Namespace) -> int:
    """Print the page for the parsed arguments: rich on a terminal, plain text otherwise."""
    animate = getattr(args, "animate", None)
    if animate and args.topic != "backward":
        raise ValueError(f"--animate goes with `explain backward`, not {args.topic}")
    page = build_page(args)
    if animate:
        from tinygrad_cnn.viz.animate import animate_backward

        expression, values = expression_and_values(*_backward_words(args))
        title = f"L = {expression}: backward, step by step"
        loss = explain.explain_backward(expression, values).loss
        path = animate_backward(loss, animate, title=title)
        page.append(("text", f"animation written to {path}"))
    if sys.stdout.isatty():
        render_rich(page)
    else:
        print(render_plain(page))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `explain` subcommand to the CLI's subparsers."""
    parser = subparsers.add_parser(
        "explain",
        help="show how conv, pooling, parameter counts and backward work, step by step",
        description="Reproduce the course's worked examples with the library's own ops: "
        "conv (a window by hand, then 'same' and stride 2), pool (and the arg-max mask), "
        "params (per-layer formulas), backward (the chain rule node by node), conv-backward "
        "(both gradients are convolutions).",
    )
    parser.add_argument("topic", choices=TOPICS, help="what to explain")
    parser.add_argument(
        "words",
        nargs="*",
        metavar="MODEL",
        help="for params: mnist-cnn, unet, 'dense IN OUT' or 'conv IN OUT KX KY' (sizes in "
        "one order, inputs then outputs, as nn.Linear and nn.Conv2d take them); for "
        "backward: the variables' values, NAME=NUMBER",
    )
    parser.add_argument("--image", help="conv/pool: the input map as JSON, e.g. [[1,2],[3,4]]")
    parser.add_argument("--kernel", help="conv: the kernel as JSON; pool: the window side")
    parser.add_argument("--stride", type=int, help="the step of the window")
    parser.add_argument("--padding", type=_padding, help="conv/pool: valid, same or an int")
    parser.add_argument(
        "--expr",
        nargs="+",
        metavar="TEXT",
        help='backward: the expression, e.g. "a*b + b**3" (+ - * / **, relu exp log sigmoid '
        "tanh methods, NAME = ... assignments separated by ';'), values given as a=2 b=-3",
    )
    parser.add_argument(
        "--graph", metavar="FILE", help="backward: also draw the graph (.svg, .png, .pdf or .dot)"
    )
    parser.add_argument(
        "--animate", metavar="FILE.gif", help="backward: also write its steps as an animated GIF"
    )
    parser.set_defaults(run=run)
