"""`tinygrad-cnn`, the command line (also `python -m tinygrad_cnn`).

Each subcommand lives in its own module of this package, which defines
`register(subparsers)`: it adds its parser and sets `run=function(args) -> int` as a default.
`main` parses the arguments and turns the errors a user can cause (a bad value, a missing file,
an output path that cannot be written, a full disk) into a one-line message naming the value or
the path, and exit code 2, instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# the modules of this package that define subcommands, in the order `--help` lists them
COMMAND_MODULES: list[str] = ["train", "segment", "graph", "explain", "gradcheck_cmd", "export"]


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
        status = int(args.run(args) or 0)
        sys.stdout.flush()  # a full disk or a closed pipe shows here, not after main returns
        return status
    except OSError as error:  # a path that cannot be read or written, a full disk
        print(f"tinygrad-cnn {args.command}: error: {describe_os_error(error)}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, RuntimeError) as error:
        print(f"tinygrad-cnn {args.command}: error: {error}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"tinygrad-cnn {args.command}: error: out of memory", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tinygrad-cnn {args.command}: interrupted", file=sys.stderr)
        return 130


def describe_os_error(error: OSError) -> str:
    """One line for an OSError that names the path at fault and why.

    An error the library raised with its own message (no path attached) keeps that message. One
    raised by the system names the path it was given (the destination, for a rename), and an
    error without a path that standard output also shows (a full disk, a closed pipe) is put
    down to standard output, which is then closed quietly so Python's exit does not print a
    second error.
    """
    path = error.filename2 if error.filename2 is not None else error.filename
    reason = error.strerror or str(error)
    if path is None and error.strerror is None:
        return str(error)  # the library's own message
    if path is None:
        try:
            sys.stdout.flush()
        except OSError:
            path = "standard output"
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # nothing more can reach it anyway
            os.close(devnull)
        else:
            return reason
    if isinstance(error, (FileExistsError, NotADirectoryError)) and os.path.isfile(path):
        reason = "is a file, so it cannot be a folder"
    return f"{os.fsdecode(path)}: {reason}"


if __name__ == "__main__":
    sys.exit(main())
