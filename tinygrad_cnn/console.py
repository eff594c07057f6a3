"""Printing for people: a model summary as a rich table on a terminal, plain text elsewhere.

This is an edge module: it may import rich, the core (`nn`, `ops`, ...) never does.
`nn.summary()` returns a `Summary` whose `str()` is already a plain-text table; this file
only dresses it up.
"""

from __future__ import annotations

from typing import Any

from tinygrad_cnn.nn.summary import Summary


def print_summary(summary: Summary, console: Any = None) -> None:
    """Print `summary` as a rich table when the console is a terminal, else as plain text.

    Args:
        summary: what `nn.summary(model, input_shape)` returned.
        console: a `rich.console.Console`; by default one writing to stdout.
    Example:
        >>> from tinygrad_cnn import nn
        >>> print_summary(nn.summary(nn.Linear(400, 100), (400,)))  # stdout is not a terminal
        Linear, input (None, 400)
        ----------------------------------------------------------
        Layer   Type    Output shape  Params  Formula
        ----------------------------------------------------------
        Linear  Linear  (None, 100)   40,100  100·(400+1) = 40,100
        ----------------------------------------------------------
        Total params: 40,100
        Trainable params: 40,100
        Non-trainable params: 0
    """
    from rich.console import Console
    from rich.table import Table

    console = Console() if console is None else console
    if not console.is_terminal:
        console.print(str(summary), markup=False, highlight=False, soft_wrap=True)
        return
    header, rows = summary.table()
    title = f"{summary.model_name}, input ({', '.join(map(str, (None, *summary.input_shape)))})"
    table = Table(title=title, show_lines=False)
    for i, name in enumerate(header):
        table.add_column(
            name, justify="right" if name == "Params" else "left", style="cyan" if i == 0 else None
        )
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print("\n".join(summary.totals_text()), markup=False, highlight=False)
