"""Reports of classified level files: records, CSV/JSON files, timelines and runs.

What :func:`specxform.levels.classify.classify_level_files` returns is read
back from the per-window stores in blocks, so that writing the CSV or JSON
(:func:`write_results`), drawing a timeline (:func:`plot_levels`) and listing
the runs of one top class (:func:`top_runs`) take bounded memory however long
the files are. ``specxform classify --checkpoint`` prints and writes these;
Python users call them directly.

May import: what :mod:`specxform.levels` may, and :mod:`specxform.evaluation.plotting`
(the timeline figure shared with the audio mode).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from specxform.levels.classify import LevelModel, LevelResult

__all__ = ["LEVEL_CSV_COLUMNS", "MAX_PLOT_COLUMNS", "MAX_PLOT_ROWS", "MAX_RUNS", "JsonList",
           "clip_head", "csv_rows", "duration_text", "json_chunks", "level_report",
           "plot_levels", "plot_rows", "top_runs", "window_records", "write_json",
           "write_results"]

#: Columns of the ``-o OUT.csv`` file of the level mode.
LEVEL_CSV_COLUMNS = ("clip", "input", "segment", "window", "start_s", "end_s", "start_time",
                     "rank", "index", "label", "probability")
#: Runs of one top class listed per file in the table.
MAX_RUNS = 20
#: At most this many classes are drawn in a timeline.
MAX_PLOT_ROWS = 20
#: At most this many columns are drawn in a timeline; longer files are averaged in bins.
MAX_PLOT_COLUMNS = 1000
#: Files with at most this many windows and no gap use the audio mode's timeline.
_SHORT_PLOT = 60


class JsonList:
    """A JSON list written item by item (never held in memory)."""

    def __init__(self, items: Iterable[Any]) -> None:
        self.items = items


def json_chunks(value: Any, depth: int = 0) -> Iterator[str]:
    """JSON text of ``value``, indented by key; :class:`JsonList` items streamed one per line."""
    pad = "\n" + "  " * (depth + 1)
    if isinstance(value, dict) and value:
        yield "{"
        for i, (key, item) in enumerate(value.items()):
            yield ("," if i else "") + pad + json.dumps(key) + ": "
            yield from json_chunks(item, depth + 1)
        yield "\n" + "  " * depth + "}"
    elif isinstance(value, JsonList):
        yield "["
        for i, item in enumerate(value.items):
            yield ("," if i else "") + pad + json.dumps(item)
        yield "\n" + "  " * depth + "]"
    else:
        yield json.dumps(value)


# ----------------------------------------------------------------------------- records


def _ranked_rows(probs: np.ndarray, k: int) -> np.ndarray:
    """Top ``k`` indices of each row, highest first, ties to the lower index: (rows, k)."""
    return np.argsort(-probs, axis=1, kind="stable")[:, :k]


def _ranked(probs: np.ndarray, order: np.ndarray, names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"rank": rank, "index": int(i), "label": names[i], "probability": float(probs[i])}
            for rank, i in enumerate(order, start=1)]


def window_records(result: LevelResult, names: tuple[str, ...], k: int
                   ) -> Iterator[dict[str, Any]]:
    """One record per window, in order: times, segment and its top ``k`` classes."""
    absolute = result.origin is not None
    for block in result.store.blocks():
        orders = _ranked_rows(block["probs"], k)
        for record, order in zip(block, orders, strict=True):
            entry: dict[str, Any] = {"start_s": float(record["start"]),
                                     "end_s": float(record["end"]),
                                     "segment": int(record["segment"])}
            if absolute:
                entry["start_time"] = result.time_text(record["start"])
            entry["top"] = _ranked(record["probs"], order, names)
            yield entry


def clip_head(result: LevelResult, names: tuple[str, ...], k: int) -> dict[str, Any]:
    """Everything about one file but its timeline."""
    order = _ranked_rows(result.probs[None], k)[0]
    return {
        "input": result.input, "duration_s": result.end_s - result.start_s,
        "windows": result.windows, "start_s": result.start_s, "end_s": result.end_s,
        "start_time": result.time_text(result.start_s) or None,
        "frames": result.frames, "missing_frames": result.missing_frames, "gaps": result.gaps,
        "n_segments": result.n_segments, "segments": result.segments,
        "db_offset": result.db_offset, "db_offset_mode": result.offset_mode,
        "broadband_p99_db": result.broadband_p99_db,
        "seconds": result.seconds, "rtf": result.rtf,
        "top": _ranked(result.probs, order, names),
    }


def level_report(model: LevelModel, results: dict[str, LevelResult], seconds: float, *,
                 k: int, window_s: float) -> dict[str, Any]:
    """The whole report of a run; each timeline is a :class:`JsonList` read from the store.

    Parameters
    ----------
    model : LevelModel
    results : dict of str to LevelResult
        By output name, as :func:`~specxform.levels.classify.classify_level_files` returns them.
    seconds : float
        Wall time of the classification, in seconds (for the real-time factor).
    k : int
        Classes listed per file and per window.
    window_s : float
        Window length in seconds.
    """
    names = model.labels.names
    levels_seconds = sum(r.levels_seconds for r in results.values())
    return {
        "teacher": model.teacher_name, "target": model.target.name, "source": model.source.name,
        "checkpoint": str(model.checkpoint), "kind": model.kind, "window_s": window_s,
        "k": k, "labels": "placeholders" if model.labels.placeholders else "names",
        "seconds": seconds, "rtf": levels_seconds / max(seconds, 1e-9),
        "clips": {name: {**clip_head(r, names, k),
                         "timeline": JsonList(window_records(r, names, k))}
                  for name, r in results.items()},
    }


def csv_rows(results: dict[str, LevelResult], names: tuple[str, ...], k: int
             ) -> Iterator[dict[str, Any]]:
    """Per file: its ``k`` clip rows (``window`` = ``clip``), then ``k`` rows per window."""
    for name, result in results.items():
        base = {"clip": name, "input": result.input}
        for top in clip_head(result, names, k)["top"]:
            yield {**base, "segment": "", "window": "clip", "start_s": result.start_s,
                   "end_s": result.end_s, "start_time": result.time_text(result.start_s),
                   **top}
        for w, window in enumerate(window_records(result, names, k)):
            for top in window["top"]:
                yield {**base, "segment": window["segment"], "window": w,
                       "start_s": window["start_s"], "end_s": window["end_s"],
                       "start_time": window.get("start_time", ""), **top}


def write_results(path: Path, model: LevelModel, results: dict[str, LevelResult],
                  seconds: float, *, k: int, window_s: float) -> None:
    """The JSON report (:func:`level_report`) or the CSV rows (by suffix), atomically."""
    from specxform.io import atomic_write

    with atomic_write(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        if path.suffix.lower() == ".json":
            write_json(fh, level_report(model, results, seconds, k=k, window_s=window_s))
        else:
            writer = csv.DictWriter(fh, fieldnames=LEVEL_CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(csv_rows(results, model.labels.names, k))


def write_json(fh: TextIO, value: dict[str, Any]) -> None:
    """Write ``value`` as JSON to ``fh`` in pieces (:func:`json_chunks`), then a newline."""
    buffer = io.StringIO()
    for chunk in json_chunks(value):
        buffer.write(chunk)
        if buffer.tell() > 1 << 16:
            fh.write(buffer.getvalue())
            buffer = io.StringIO()
    fh.write(buffer.getvalue() + "\n")


# ----------------------------------------------------------------------------- plots


def plot_rows(result: LevelResult, k: int) -> np.ndarray:
    """Classes to draw: the file's top ``k``, then the classes that top the most windows.

    At most :data:`MAX_PLOT_ROWS` (at least ``min(k, classes)``), ordered by the
    file's mean probability, highest first.
    """
    counts = np.zeros(len(result.probs), dtype=np.int64)
    for block in result.store.blocks():
        np.add.at(counts, block["probs"].argmax(axis=1), 1)
    by_mean = _ranked_rows(result.probs[None], len(result.probs))[0]
    chosen = list(by_mean[:k])
    for i in np.argsort(-counts, kind="stable"):
        if counts[i] == 0 or len(chosen) >= max(MAX_PLOT_ROWS, k):
            break
        if i not in chosen:
            chosen.append(int(i))
    return np.array([i for i in by_mean if i in set(chosen)])


def _columns(result: LevelResult, rows: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(starts, ends, probabilities (columns, rows), windows per column at most)."""
    if result.windows <= MAX_PLOT_COLUMNS:
        blocks = list(result.store.blocks())
        records = np.concatenate(blocks)
        ends = np.minimum(records["end"], np.append(records["start"][1:], np.inf))
        return records["start"], ends, records["probs"][:, rows], 1
    edges = np.linspace(result.start_s, result.end_s, MAX_PLOT_COLUMNS + 1)
    sums = np.zeros((MAX_PLOT_COLUMNS, len(rows)))
    counts = np.zeros(MAX_PLOT_COLUMNS)
    for block in result.store.blocks():
        centre = (block["start"] + block["end"]) / 2
        index = np.clip(np.searchsorted(edges, centre, side="right") - 1, 0,
                        MAX_PLOT_COLUMNS - 1)
        np.add.at(sums, index, block["probs"][:, rows])
        np.add.at(counts, index, 1)
    with np.errstate(invalid="ignore"):
        values = sums / counts[:, None]
    return edges[:-1], edges[1:], values, int(counts.max())


def plot_levels(path: Path, name: str, result: LevelResult, names: tuple[str, ...], k: int,
                model: LevelModel, window_s: float) -> None:
    """Timeline PNG of one level file: probabilities of the chosen classes over time.

    Short files without gaps are drawn as in the audio mode
    (:func:`specxform.evaluation.plotting.plot_timeline`); others as a heat map where gaps
    stay blank, long files averaged into at most :data:`MAX_PLOT_COLUMNS`
    columns, and the top class of each column marked in red.
    """
    rows = plot_rows(result, k)
    labels = [f"{names[i]} ({result.probs[i]:.2f})" for i in rows]
    offset = f"offset {result.db_offset:+.1f} dB ({result.offset_mode})"
    title = (f"{name}: {model.teacher_name} on {model.source.name} levels, {window_s:g} s "
             f"windows, {offset}; file mean in brackets")
    if result.origin is not None:
        title += f"\nstart {result.time_text(result.start_s)}"
    if result.windows <= _SHORT_PLOT and result.n_segments == 1:
        from specxform.evaluation.plotting import plot_timeline

        starts, ends, probs, _ = _columns(result, rows)
        plot_timeline(path, probs, starts_s=starts, ends_s=ends, row_labels=labels,
                      title=title + "; red: top class of each window")
        return
    _heat_map(path, result, rows, labels, title)


def _heat_map(path: Path, result: LevelResult, rows: np.ndarray, labels: list[str],
              title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from specxform.io import atomic_write

    starts, ends, values, per_column = _columns(result, rows)
    span = max(result.end_s - result.start_s, 1e-9)
    unit, scale = (("h", 3600.0) if span > 3 * 3600 else ("min", 60.0) if span > 300
                   else ("s", 1.0))
    # Interleave each column with the (possibly empty) stretch before the next one: gaps blank.
    x = np.empty(2 * len(starts))
    x[0::2], x[1::2] = starts, ends
    grid = np.full((2 * len(starts) - 1, len(rows)), np.nan)
    grid[0::2] = values
    fig = Figure(figsize=(14.0, 1.8 + 0.35 * len(rows)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    image = ax.pcolormesh((x - result.start_s) / scale, np.arange(len(rows) + 1) - 0.5,
                          np.ma.masked_invalid(grid).T, vmin=0.0, vmax=1.0, cmap="viridis")
    filled = ~np.isnan(values).all(axis=1)
    best = np.nanargmax(np.where(filled[:, None], values, 0.0), axis=1)
    ax.hlines(best[filled], (starts[filled] - result.start_s) / scale,
              (ends[filled] - result.start_s) / scale, colors="red", linewidth=2.0)
    ax.set_yticks(np.arange(len(rows)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(f"time ({unit}) from the first frame")
    ax.set_facecolor("white")
    fig.colorbar(image, ax=ax, label="probability", fraction=0.05, pad=0.02)
    what = "window" if per_column == 1 else f"column (mean of up to {per_column} windows)"
    ax.set_title(f"{title}; red: top class of each {what}; blank: gaps", fontsize=9)
    with atomic_write(path) as tmp, tmp.open("wb") as fh:
        fig.savefig(fh, format="png", dpi=100)


# ----------------------------------------------------------------------------- runs


def top_runs(result: LevelResult, names: tuple[str, ...]
             ) -> tuple[list[tuple[float, float, str, int, float]], int]:
    """The first :data:`MAX_RUNS` runs of windows with one top class, and the number of runs.

    A run is a stretch of consecutive windows of one segment with the same top
    class: ``(start_s, end_s, label, windows, mean top probability)``.
    """
    runs: list[tuple[float, float, str, int, float]] = []
    count = 0
    current: list[Any] | None = None  # [key, start, windows, probability sum, end]
    for block in result.store.blocks():
        top = block["probs"].argmax(axis=1)
        for record, cls in zip(block, top, strict=True):
            key = (int(cls), int(record["segment"]))
            prob = float(record["probs"][cls])
            if current is not None and current[0] == key:
                current[2] += 1
                current[3] += prob
                current[4] = float(record["end"])
                continue
            if current is not None and len(runs) < MAX_RUNS:
                runs.append(_run(current, names))
            count += 1
            current = [key, float(record["start"]), 1, prob, float(record["end"])]
    if current is not None and len(runs) < MAX_RUNS:
        runs.append(_run(current, names))
    return runs, count


def _run(state: list[Any], names: tuple[str, ...]) -> tuple[float, float, str, int, float]:
    (cls, _), start, n, total, end = state
    return start, end, names[cls], n, total / n


def duration_text(seconds: float) -> str:
    """A duration in words: ``"12.0 s"``, ``"3.5 min"`` or ``"2.25 h"``."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def write_outputs(model: LevelModel, results: dict[str, LevelResult], seconds: float, *,
                  k: int, window_s: float, output: str | Path | None = None,
                  plot: str | Path | None = None, plots: str | Path | None = None
                  ) -> list[str]:
    """Write the results file and the timelines, all or nothing; return what was written.

    Parameters
    ----------
    output : path, optional
        A ``.csv`` or ``.json`` results file (:func:`write_results`).
    plot : path, optional
        The timeline PNG of the one file in ``results``.
    plots : path, optional
        A folder of one ``<name>.png`` per file, staged so that it appears only
        when every plot and ``output`` were written.
    """
    from specxform.io import StagedFolder

    written: list[str] = []
    drawn: dict[str, Any] = {"names": model.labels.names, "k": k, "model": model,
                             "window_s": window_s}
    if plots is not None:
        with StagedFolder(Path(plots)) as staged:
            for name, result in results.items():
                plot_levels(staged.path(name + ".png"), name, result, **drawn)
                written.append(str(Path(plots) / (name + ".png")))
            if output is not None:
                write_results(Path(output), model, results, seconds, k=k, window_s=window_s)
    else:
        if plot is not None:
            (name, result), = results.items()
            plot_levels(Path(plot), name, result, **drawn)
            written.append(str(plot))
        if output is not None:
            write_results(Path(output), model, results, seconds, k=k, window_s=window_s)
    return ([str(output)] if output is not None else []) + written
