"""Rich progress bars on stderr for the library's :mod:`specxform.progress` events.

stdout carries only results (``--json``), so the bars go to stderr, and only
on a terminal: in a log, a bar would be a cut last frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from specxform.progress import ProgressCallback, ProgressEvent

__all__ = ["progress_bars"]


def _format(info: dict[str, Any]) -> str:
    parts = []
    for key, value in info.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        parts.append(f"{key} {shown}")
    return "  ".join(parts)


@contextmanager
def progress_bars(enabled: bool = True, *, transient: bool = False
                  ) -> Iterator[ProgressCallback | None]:
    """A callback that draws one bar per task, or None when disabled or not on a terminal."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    if not (enabled and console.is_terminal):
        yield None
        return
    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console, transient=transient)
    tasks: dict[str, Any] = {}

    def draw(event: ProgressEvent) -> None:
        if event.task not in tasks:
            tasks[event.task] = bars.add_task(event.task, total=event.total, info="")
        bars.update(tasks[event.task], completed=event.done, total=event.total,
                    info=_format(dict(event.info)))

    with bars:
        yield draw


def download_bars() -> ProgressCallback | None:
    """A callback for downloads anywhere in a command: each one draws a transient bar that
    appears with its first event and goes with its last (no display is held in between,
    so the command's own bars are free to start). None off a terminal."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    if not console.is_terminal:
        return None
    live: dict[str, Any] = {}

    def draw(event: ProgressEvent) -> None:
        if "bar" not in live:
            live["bar"] = Progress(TextColumn("{task.description}"), BarColumn(),
                                   DownloadColumn(), TransferSpeedColumn(),
                                   TimeRemainingColumn(), console=console, transient=True)
            live["bar"].start()
            live["task"] = live["bar"].add_task(event.task, total=event.total)
        live["bar"].update(live["task"], completed=event.done, total=event.total)
        if event.finished:
            live.pop("bar").stop()

    return draw
