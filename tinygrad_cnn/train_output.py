"""What `fit` shows: a rich progress bar per epoch on a terminal, one summary line per epoch.

On a terminal, each epoch gets a bar (batches, running loss, images/s, time left) that gives way
to the epoch's summary line; with `fit(watch=...)` the per-layer health table sits under the bar
and its rows and warnings follow the summary line. When stdout is not a terminal (a CI log, a
pipe) only the summary lines are printed, as plain text. rich is imported here, at the edge:
the engine, ops and layers never print, and `train.py` only calls the three methods of
`TrainingOutput`.

Read next: `health.py`, the per-layer statistics `fit(watch=...)` shows.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tinygrad_cnn.health import HealthPanel, LayerHealth, format_row
from tinygrad_cnn.history import format_logs


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=30),
        MofNCompleteColumn(),
        TextColumn("loss [cyan]{task.fields[loss]}"),
        TextColumn("{task.fields[speed]} img/s"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=True,  # the bar gives way to the epoch's summary line
    )


class EpochBar:
    """One epoch's progress bar (a context manager); with `console` None, it shows nothing.

    Example:
        >>> with EpochBar(None, "epoch 1/1", total=2, health=None) as bar:
        ...     bar.advance(images=32, mean_loss=0.5)
        >>> bar.images
        32
    """

    def __init__(
        self, console: Console | None, title: str, total: int | None, health: LayerHealth | None
    ) -> None:
        self.console, self.title, self.total, self.health = console, title, total, health
        self.images, self.start = 0, time.perf_counter()
        self.progress: Progress | None = None
        self.live: Live | None = None

    def __enter__(self) -> EpochBar:
        self.start = time.perf_counter()
        if self.console is None:
            return self
        self.progress = _progress(self.console)
        self.task = self.progress.add_task(self.title, total=self.total, loss="-", speed="-")
        if self.health is not None:  # the layer table lives under the bar
            panel = Group(self.progress, HealthPanel(self.health))
            self.live = Live(panel, console=self.console, transient=True)
            self.live.start()
        else:
            self.progress.start()
        return self

    def advance(self, images: int, mean_loss: float) -> None:
        """One more batch done: `images` seen so far in the epoch, their mean loss."""
        self.images = images
        if self.progress is None:
            return
        speed = images / (time.perf_counter() - self.start)
        self.progress.update(self.task, advance=1, loss=f"{mean_loss:.4f}", speed=f"{speed:,.0f}")
        if self.live is not None:
            self.live.refresh()

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()
        elif self.progress is not None:
            self.progress.stop()


class TrainingOutput:
    """Where `fit` reports: the bars, the epoch lines and messages, or silence (verbose=False).

    Example:
        >>> out = TrainingOutput(Console(file=None, force_terminal=False), True, None)
        >>> out.epoch("epoch 1/1", {"epoch": 1, "loss": 0.25})
        epoch 1/1  loss 0.2500
    """

    def __init__(self, console: Console | None, verbose: bool, health: LayerHealth | None):
        self.console = console or Console()
        self.verbose, self.health = verbose, health

    def bar(self, title: str, total: int | None) -> EpochBar:
        """A progress bar for one epoch: shown only when verbose and on a terminal."""
        show = self.verbose and self.console.is_terminal
        return EpochBar(self.console if show else None, title, total, self.health)

    def epoch(self, title: str, logs: dict) -> None:
        """The epoch's summary line, then (when watching) the layer rows and any warnings."""
        if not self.verbose:
            return
        figures = format_logs(logs)
        if self.console.is_terminal:
            self.say(f"[bold]{title}[/bold]  {figures}")
        else:
            print(f"{title}  {figures}", flush=True)  # plain lines for logs and pipes
        if self.health is None:
            return
        for row in self.health.latest():
            self.say(f"  {format_row(row)}")
        for warning in self.health.warnings:
            self.say(f"[yellow]warning:[/yellow] {warning}")
        self.health.warnings.clear()

    def say(self, message: Any, soft_wrap: bool = True) -> None:
        """Print one message (such as a callback's last word), if any, when verbose."""
        if message and self.verbose:
            self.console.print(message, highlight=False, soft_wrap=soft_wrap)

    def interrupted(self, message: str) -> None:
        """The Ctrl-C notice, wrapped at the terminal's width."""
        self.say(message, soft_wrap=False)
