"""Hourly class-presence heat maps, one PNG per sensor, from ``OUT/hourly``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from specxform.archive.mapping import HOUR_US
from specxform.io import atomic_write

__all__ = ["MAX_CLASSES", "plot_hourly_presence", "presence_matrix"]

#: Classes drawn per sensor: those present in the largest fraction of its windows.
MAX_CLASSES = 12


def presence_matrix(hourly: Any, sensor: str, max_classes: int = MAX_CLASSES
                    ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(hours, classes, presence) of one sensor from the table of :func:`read_hourly`.

    Returns
    -------
    hours : np.ndarray, shape (hours,), int64
        Every hour from the first to the last classified one (Unix hours, UTC).
    classes : list of str
        At most ``max_classes``, the most present first (over the sensor's windows).
    presence : np.ndarray, shape (classes, hours), float64
        Fraction of the hour's windows in which the class is present; NaN for
        hours without a window.
    """
    import pyarrow.compute as pc

    rows = hourly.filter(pc.equal(hourly.column("sensor"), sensor))
    hour = rows.column("hour").cast("int64").to_numpy() // HOUR_US
    index = rows.column("index").to_numpy()
    windows = rows.column("windows").to_numpy()
    present = rows.column("present").to_numpy()
    labels = rows.column("class").to_pylist()
    if len(hour) == 0:
        return np.zeros(0, np.int64), [], np.zeros((0, 0))
    names = {int(i): str(n) for i, n in zip(index, labels, strict=True)}
    n_classes = max(names) + 1
    totals = np.bincount(index, weights=present, minlength=n_classes)
    chosen = [int(i) for i in np.argsort(-totals, kind="stable")[:max_classes]]
    hours = np.arange(hour.min(), hour.max() + 1)
    grid = np.full((len(chosen), len(hours)), np.nan)
    for row, c in enumerate(chosen):
        mine = index == c
        grid[row, hour[mine] - hours[0]] = present[mine] / np.maximum(windows[mine], 1)
    return hours, [names[c] for c in chosen], grid


def plot_hourly_presence(path: str | Path, hourly: Any, sensor: str, *, threshold: float,
                         max_classes: int = MAX_CLASSES) -> None:
    """Write one sensor's hourly class presence as a PNG heat map (blank: no windows)."""
    from datetime import UTC, datetime

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    hours, classes, grid = presence_matrix(hourly, sensor, max_classes)
    fig = Figure(figsize=(max(6.0, min(16.0, 2.0 + 0.12 * len(hours))),
                          1.6 + 0.35 * max(len(classes), 1)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    if len(hours):
        image = ax.pcolormesh(np.arange(len(hours) + 1), np.arange(len(classes) + 1) - 0.5,
                              np.ma.masked_invalid(grid), vmin=0.0, vmax=1.0, cmap="viridis")
        fig.colorbar(image, ax=ax, label="fraction of windows", fraction=0.05, pad=0.02)
        ax.set_yticks(np.arange(len(classes)), classes)
        ax.invert_yaxis()
        step = max(1, len(hours) // 12)
        ticks = np.arange(0, len(hours), step)
        ax.set_xticks(ticks + 0.5, [datetime.fromtimestamp(int(hours[t]) * 3600, UTC)
                                    .strftime("%m-%d %H:00") for t in ticks],
                      rotation=30, ha="right", fontsize=8)
    ax.set_xlabel("hour (UTC)")
    ax.set_facecolor("white")
    ax.set_title(f"{sensor}: class presence per hour (probability >= {threshold:g}); "
                 "blank: no windows", fontsize=9)
    with atomic_write(path) as tmp, tmp.open("wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
