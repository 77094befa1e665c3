"""Progress reports: how long library work tells its caller how far it has got.

The library never draws anything. A long function takes ``progress``, a
callable that receives :class:`ProgressEvent` values, and calls it through
:func:`report`. The CLI passes a callback that draws rich bars
(:mod:`specxform.cli.progress`); a notebook or a service can pass its own, and
``None`` (the default) reports nothing.

May import: :mod:`specxform.errors` only (this is a mechanism of the lowest layer).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

__all__ = ["ProgressCallback", "ProgressEvent", "report"]


@attrs.frozen
class ProgressEvent:
    """One step of a long task.

    Parameters
    ----------
    task : str
        What is being done, in words (``"caching features"``); one bar per task.
    done : int
        Units finished so far (files, batches, bytes).
    total : int or None
        Units in all, or None when unknown.
    info : mapping of str to object
        Figures to show beside the bar (``{"loss": 0.12, "rate": 30.0}``).
    """

    task: str
    done: int
    total: int | None = None
    info: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def finished(self) -> bool:
        """Whether ``done`` reached a known ``total``."""
        return self.total is not None and self.done >= self.total


#: What a library function's ``progress`` argument accepts.
ProgressCallback = Callable[[ProgressEvent], None]


def report(progress: ProgressCallback | None, task: str, done: int, total: int | None = None,
           **info: Any) -> None:
    """Send one :class:`ProgressEvent` to ``progress``; nothing when it is None."""
    if progress is not None:
        progress(ProgressEvent(task, int(done), None if total is None else int(total), info))
