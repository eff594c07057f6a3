"""Lay out a page of blocks as plain text, or with rich on a terminal (`explain` uses it).

A page is a list of blocks, each a tuple:

    ("heading", text)     ("text", text)     ("table", header, rows)
    ("matrices", [(title, 2-D array, highlight mask or None), ...])   side by side

Plain text marks highlighted cells with `*`; rich prints them in bold yellow.
"""

from __future__ import annotations

import numpy as np

Block = tuple


def number(value: float) -> str:
    """A number as short as it can be written.

    Example:
        >>> number(10.0), number(-0.25), number(72e9)
        ('10', '-0.25', '7.2e+10')
    """
    return f"{value:g}" if value == value else "nan"


def signed(value: float) -> str:
    """A number for a sum or product of terms: negatives in parentheses.

    Example:
        >>> signed(-2.0) + " · " + signed(3.0)
        '(-2) · 3'
    """
    return f"({number(value)})" if value < 0 else number(value)


def first_cell(array: np.ndarray) -> np.ndarray:
    """A highlight mask of `array`'s shape marking only its top-left cell."""
    mask = np.zeros(array.shape, dtype=bool)
    mask[0, 0] = True
    return mask


def _matrix_lines(title: str, array: np.ndarray, mask: np.ndarray | None, marks: bool) -> list[str]:
    cells = [
        [
            number(v) + ("*" if marks and mask is not None and mask[i, j] else "")
            for j, v in enumerate(row)
        ]
        for i, row in enumerate(np.atleast_2d(array))
    ]
    width = max(len(c) for row in cells for c in row)
    lines = ["  ".join(c.rjust(width) for c in row) for row in cells]
    return [title] + lines


def render_plain(page: list[Block]) -> str:
    """The page as plain text: matrices side by side, highlighted cells marked with `*`.

    Example:
        >>> print(render_plain([("heading", "identity"), ("matrices", [("I", np.eye(2), None)])]))
        identity
        ========
        I
        1  0
        0  1
    """
    out: list[str] = []
    for block in page:
        if block[0] == "heading":
            out += ["", block[1], "=" * len(block[1])]
        elif block[0] == "text":
            out.append(block[1])
        elif block[0] == "matrices":
            columns = [_matrix_lines(t, a, m, True) for t, a, m in block[1]]
            widths = [max(len(line) for line in col) for col in columns]
            for i in range(max(len(col) for col in columns)):
                parts = [
                    (col[i] if i < len(col) else "").ljust(w) for col, w in zip(columns, widths)
                ]
                out.append("    ".join(parts).rstrip())
            if any(m is not None for _, _, m in block[1]):
                out.append("(* marks the highlighted cells)")
        elif block[0] == "table":
            header, rows = block[1], block[2]
            widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
            for row in [header, ["-" * w for w in widths], *rows]:
                out.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return "\n".join(out).lstrip("\n")


def render_rich(page: list[Block]) -> None:
    """Print the page with rich: rules, bordered matrices side by side, highlighted cells."""
    from rich import box
    from rich.columns import Columns
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table

    console = Console()
    for block in page:
        if block[0] == "heading":
            console.rule(f"[bold]{block[1]}")
        elif block[0] == "text":
            console.print(block[1], highlight=False)
        elif block[0] == "matrices":
            panels = []
            for title, array, mask in block[1]:
                grid = Table.grid(padding=(0, 1))
                for row_index, row in enumerate(np.atleast_2d(array)):
                    grid.add_row(
                        *[
                            f"[bold yellow]{number(v)}[/]"
                            if mask is not None and mask[row_index, j]
                            else number(v)
                            for j, v in enumerate(row)
                        ]
                    )
                panels.append(Panel(grid, title=title, expand=False, box=box.ROUNDED))
            console.print(Columns(panels))
        elif block[0] == "table":
            table = Table(box=box.SIMPLE_HEAD)
            for name in block[1]:
                table.add_column(name)
            for row in block[2]:
                table.add_row(*[str(c) for c in row])
            console.print(table)
