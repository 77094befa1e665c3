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
