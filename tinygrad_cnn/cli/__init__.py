"""`tinygrad-cnn`, the command line (also `python -m tinygrad_cnn`).

Each subcommand lives in its own module of this package, which defines
`register(subparsers)`: it adds its parser and sets `run=function(args) -> int` as a default.
`main` parses the arguments and turns the errors a user can cause (a bad value, a missing file)
into a one-line message and exit code 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# the modules of this package that define subcommands, in the order `--help` lists them
COMMAND_MODULES: list[str] = [
    "train", "lr_find", "runs_cmd", "segment", "graph", "explain", "gradcheck_cmd",
]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The `tinygrad-cnn` parser, with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="tinygrad-cnn",
        description="A small deep-learning framework on numpy: train CNNs and U-Nets, "
        "draw their compute graphs, and see how backpropagation works.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"tinygrad_cnn.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line on `argv` (default sys.argv[1:]); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse itself exits 2 with a one-line error
    try:
        return int(args.run(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as error:
        print(f"tinygrad-cnn {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tinygrad-cnn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
