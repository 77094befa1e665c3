"""The output folder of ``specxform classify-archive``: Parquet written so that a run can resume.

Layout of ``OUT/``::

    windows/sensor=<sensor>/day=<YYYY-MM-DD>/part-<chunk id>.parquet   one row per window
    hourly/sensor=<sensor>/hourly.parquet      class presence per hour (written at the end)
    failures.parquet                           chunks that could not be read, by time range
    summary.json                               what the run did
    _work/run.json                             the settings (a resumed run must match them)
    _work/offsets.json                         the dB offset of each sensor
    _work/done/<chunk id>.json                 a chunk's completion marker
    _work/presence/<chunk id>.npz              a chunk's hourly presence counts

Sensor names in folder names are percent-encoded (``urllib.parse.quote``),
which is how pyarrow's Hive partitioning decodes them.

Completion: every file of a chunk is written under a hidden temporary name
(``.*.tmp``, which Parquet readers skip) and renamed into place; the chunk's
marker is written last, and lists its files and their sizes. A chunk is
complete if and only if its marker exists and names files that exist with
those sizes. A run first deletes every part file that no marker vouches for
(a chunk half-written when a run died), so :func:`read_windows` and plain
Parquet readers alike see complete chunks only once the run has finished.
Because the map function is deterministic, a chunk written again (a retried
task) writes the same bytes under the same names: no row is ever there twice.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from specxform.archive.mapping import HOUR_US, ChunkResult, HourlyPresence
from specxform.archive.stores import Chunk
from specxform.errors import InputError
from specxform.io import atomic_write, output_lock

__all__ = [
    "OutputFolder",
    "read_failures",
    "read_hourly",
    "read_windows",
]

_PART = re.compile(r"^part-([0-9a-f]{16})\.parquet$")
FORMAT = 1


def _quote(sensor: str) -> str:
    return quote(sensor, safe="")


def _write_json(path: Path, value: Any) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(value, indent=1) + "\n")


def _write_parquet(path: Path, table: Any) -> int:
    import pyarrow.parquet as pq

    with atomic_write(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path.stat().st_size


class OutputFolder:
    """``OUT/`` of one archive run (see the module docstring).

    Parameters
    ----------
    root : path-like
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.work = self.root / "_work"

    # -- settings and locking -------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[OutputFolder]:
        """Hold ``OUT/`` for this process (:func:`specxform.io.output_lock`): one run at a time.

        Raises
        ------
        OutputBusyError
            Another process writes there.
        """
        if self.root.exists() and not self.root.is_dir():
            raise InputError(f"-o {self.root}: exists and is not a folder; give a folder.")
        with output_lock(self.root, folder=True):
            self.work.mkdir(parents=True, exist_ok=True)
            yield self

    def check_settings(self, settings: dict[str, Any]) -> bool:
        """Record ``settings``, or check them against those recorded; True when resuming.

        Raises
        ------
        InputError
            The folder holds the results of a run with other settings.
        """
        path = self.work / "run.json"
        settings = {"format": FORMAT, **settings}
        if path.is_file():
            saved = json.loads(path.read_text())
            differ = sorted(k for k in set(saved) | set(settings)
                            if saved.get(k) != settings.get(k))
            if differ:
                shown = ", ".join(f"{k} {saved.get(k)!r} -> {settings.get(k)!r}"
                                  for k in differ[:4])
                raise InputError(f"-o {self.root}: holds the results of a run with other "
                                 f"settings ({shown}); give another -o, or delete the folder "
                                 "to start again.")
            return True
        _write_json(path, settings)
        return False

    def offsets(self) -> dict[str, dict[str, float]]:
        """The dB offset of each sensor recorded by an earlier run (``offset``, ``p99``)."""
        path = self.work / "offsets.json"
        return dict(json.loads(path.read_text())) if path.is_file() else {}

    def save_offsets(self, offsets: dict[str, dict[str, float]]) -> None:
        _write_json(self.work / "offsets.json", offsets)

    # -- chunks ---------------------------------------------------------------------

    def marker_path(self, chunk_id: str) -> Path:
        return self.work / "done" / f"{chunk_id}.json"

    def markers(self) -> dict[str, dict[str, Any]]:
        """Every complete chunk's marker, by chunk id (see the module docstring)."""
        out: dict[str, dict[str, Any]] = {}
        folder = self.work / "done"
        if not folder.is_dir():
            return out
        for path in folder.glob("*.json"):
            try:
                marker = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue  # cannot happen with atomic writes; redo the chunk if it does
            files = [self.root / f for f in marker.get("files", {})]
            sizes = marker.get("files", {}).values()
            if all(f.is_file() and f.stat().st_size == s
                   for f, s in zip(files, sizes, strict=True)):
                out[path.stem] = marker
        return out

    def sweep(self, complete: Iterable[str]) -> int:
        """Delete temporary files and part files of chunks not in ``complete``; returns a count."""
        keep, removed = set(complete), 0
        for folder in (self.root / "windows", self.work / "presence", self.root / "hourly"):
            for dirpath, _, names in os.walk(folder):
                for name in names:
                    match = _PART.match(name)
                    stale = (name.startswith(".") and name.endswith(".tmp")) or (
                        match is not None and match.group(1) not in keep)
                    if folder.name == "presence" and name.endswith(".npz"):
                        stale = stale or name[:-4] not in keep
                    if stale:
                        (Path(dirpath) / name).unlink(missing_ok=True)
                        removed += 1
        for stale_marker in (self.work / "done").glob(".*.tmp"):
            stale_marker.unlink(missing_ok=True)
        return removed

    def write_chunk(self, result: ChunkResult) -> dict[str, Any]:
        """Write a chunk's windows (one file per day) and presence, then its marker.

        Returns
        -------
        dict
            The marker: the chunk, ``status`` ("ok" or "failed"), ``files``
            (relative path -> bytes), ``windows``, ``frames``, ``failure``.
        """
        chunk = result.chunk
        files: dict[str, int] = {}
        if result.failure is None and result.windows.num_rows:
            for day, part in _by_day(result.windows):
                relative = (f"windows/sensor={_quote(chunk.sensor)}/day={day}/"
                            f"part-{chunk.id}.parquet")
                files[relative] = _write_parquet(self.root / relative, part.drop(["sensor"]))
            relative = f"_work/presence/{chunk.id}.npz"
            files[relative] = _write_npz(self.root / relative, result.presence)
        marker = {"chunk": _chunk_fields(chunk), "id": chunk.id,
                  "status": "failed" if result.failure else "ok", "files": files,
                  "windows": result.windows.num_rows, "frames": result.frames,
                  "missing_frames": result.missing_frames, "failure": result.failure,
                  "db_offset": result.db_offset, "seconds": result.seconds}
        _write_json(self.marker_path(chunk.id), marker)
        return marker

    # -- the end of a run --------------------------------------------------------------

    def finalize(self, markers: dict[str, dict[str, Any]], labels: tuple[str, ...],
                 summary: dict[str, Any]) -> dict[str, Any]:
        """Write ``hourly/``, ``failures.parquet`` and ``summary.json`` from the markers."""
        by_sensor: dict[str, list[str]] = {}
        for chunk_id, marker in markers.items():
            if marker["status"] == "ok":
                by_sensor.setdefault(marker["chunk"]["sensor"], []).append(chunk_id)
        hourly_files = []
        for sensor, ids in sorted(by_sensor.items()):
            presence = [_read_npz(self.work / "presence" / f"{i}.npz") for i in sorted(ids)]
            table = hourly_table(merge_presence(presence, len(labels)), labels)
            path = self.root / "hourly" / f"sensor={_quote(sensor)}" / "hourly.parquet"
            _write_parquet(path, table)
            hourly_files.append(str(path.relative_to(self.root)))
        for stale in (self.root / "hourly").glob("sensor=*/hourly.parquet"):
            if str(stale.relative_to(self.root)) not in hourly_files:
                stale.unlink()
        failed = [m for m in markers.values() if m["status"] == "failed"]
        _write_parquet(self.root / "failures.parquet", failures_table(failed))
        self.sweep(markers)
        _write_json(self.root / "summary.json", summary)
        return summary


def _chunk_fields(chunk: Chunk) -> dict[str, Any]:
    import attrs

    return attrs.asdict(chunk)


def _by_day(table: Any) -> Iterator[tuple[str, Any]]:
    """(``YYYY-MM-DD``, rows) per UTC day of the window starts (rows are in time order)."""
    starts = table.column("start").cast("int64").to_numpy()
    days = starts // (24 * HOUR_US)
    first = np.concatenate([[0], np.flatnonzero(np.diff(days)) + 1, [len(days)]])
    for a, b in itertools.pairwise(first):
        day = datetime.fromtimestamp(int(days[a]) * 86400, UTC).date().isoformat()
        yield day, table.slice(int(a), int(b - a))


def _write_npz(path: Path, presence: HourlyPresence) -> int:
    with atomic_write(path) as tmp, tmp.open("wb") as fh:
        np.savez(fh, hours=presence.hours, windows=presence.windows,
                 present=presence.present, prob_sum=presence.prob_sum)
    return path.stat().st_size


def _read_npz(path: Path) -> HourlyPresence:
    with np.load(path) as data:
        return HourlyPresence(data["hours"], data["windows"], data["present"], data["prob_sum"])


def merge_presence(parts: list[HourlyPresence], n_classes: int) -> HourlyPresence:
    """Sum presence counts of the same hours (chunks may share an hour)."""
    if not parts:
        return HourlyPresence.empty(n_classes)
    hours = np.concatenate([p.hours for p in parts])
    unique, index = np.unique(hours, return_inverse=True)
    windows = np.zeros(len(unique), np.int64)
    present = np.zeros((len(unique), n_classes), np.int64)
    prob_sum = np.zeros((len(unique), n_classes))
    np.add.at(windows, index, np.concatenate([p.windows for p in parts]))
    np.add.at(present, index, np.concatenate([p.present for p in parts]))
    np.add.at(prob_sum, index, np.concatenate([p.prob_sum for p in parts]))
    return HourlyPresence(unique, windows, present, prob_sum)


def hourly_schema() -> Any:
    """Columns of the hourly class-presence table."""
    import pyarrow as pa

    return pa.schema([("hour", pa.timestamp("us", "UTC")), ("class", pa.string()),
                      ("index", pa.int32()), ("windows", pa.int64()), ("present", pa.int64()),
                      ("presence", pa.float64()), ("mean_probability", pa.float64())])


def hourly_table(presence: HourlyPresence, labels: tuple[str, ...]) -> Any:
    """One row per hour and class: windows, present windows, their fraction, mean probability."""
    import pyarrow as pa

    n_hours, n_classes = len(presence.hours), len(labels)
    hours = np.repeat(presence.hours * HOUR_US, n_classes)
    windows = np.repeat(presence.windows, n_classes)
    present = presence.present.reshape(-1)
    return pa.Table.from_arrays([
        pa.array(hours, pa.timestamp("us", "UTC")),
        pa.array(np.tile(np.asarray(labels, dtype=object), n_hours), pa.string()),
        pa.array(np.tile(np.arange(n_classes, dtype=np.int32), n_hours), pa.int32()),
        pa.array(windows, pa.int64()), pa.array(present, pa.int64()),
        pa.array(present / np.maximum(windows, 1), pa.float64()),
        pa.array(presence.prob_sum.reshape(-1) / np.maximum(windows, 1), pa.float64()),
    ], schema=hourly_schema())


def failures_table(failed: list[dict[str, Any]]) -> Any:
    """One row per chunk that could not be read: sensor, chunk, path, time range, error."""
    import pyarrow as pa

    rows = sorted(failed, key=lambda m: (m["chunk"]["sensor"], m["chunk"]["start_frame"],
                                         m["chunk"]["key"]))
    ranges = [Chunk(**m["chunk"]).time_range_us() for m in rows]
    return pa.table({
        "sensor": pa.array([m["chunk"]["sensor"] for m in rows], pa.string()),
        "chunk": pa.array([m["chunk"]["key"] for m in rows], pa.string()),
        "path": pa.array([m["chunk"]["path"] for m in rows], pa.string()),
        "start": pa.array([r[0] for r in ranges], pa.timestamp("us", "UTC")),
        "end": pa.array([r[1] for r in ranges], pa.timestamp("us", "UTC")),
        "error": pa.array([m["failure"] for m in rows], pa.string()),
    })


# ----------------------------------------------------------------------------- reading


def _partitioning(*names: str) -> Any:
    import pyarrow as pa
    import pyarrow.dataset as ds

    return ds.partitioning(pa.schema([(n, pa.string()) for n in names]), flavor="hive")


def read_windows(out: str | Path, *, sensors: Iterable[str] | None = None) -> Any:
    """The complete chunks' windows of ``OUT/``, sorted by sensor and start (a pyarrow Table).

    Columns: ``sensor``, ``day`` (``YYYY-MM-DD``, UTC) and those of
    :func:`~specxform.archive.mapping.window_schema`. Only files that a
    completion marker vouches for are read.
    """
    import pyarrow.dataset as ds

    folder = OutputFolder(out)
    wanted = None if sensors is None else set(sensors)
    files = sorted(str(folder.root / f) for m in folder.markers().values()
                   for f in m["files"] if f.startswith("windows/")
                   and (wanted is None or m["chunk"]["sensor"] in wanted))
    if not files:
        raise InputError(f"{out}: no classified windows (yet); run `specxform classify-archive`.")
    dataset = ds.dataset(files, format="parquet", partitioning=_partitioning("sensor", "day"),
                         partition_base_dir=str(folder.root / "windows"))
    table = dataset.to_table()
    columns = ["sensor", "day", *(n for n in table.column_names if n not in ("sensor", "day"))]
    return table.select(columns).sort_by([("sensor", "ascending"), ("start", "ascending")])


def read_hourly(out: str | Path) -> Any:
    """The hourly class-presence table of ``OUT/`` with its ``sensor`` column (pyarrow Table)."""
    import pyarrow.dataset as ds

    root = Path(out) / "hourly"
    if not root.is_dir():
        raise InputError(f"{out}: no hourly summary; run `specxform classify-archive` to the end.")
    dataset = ds.dataset(str(root), format="parquet", partitioning=_partitioning("sensor"))
    table = dataset.to_table()
    columns = ["sensor", *(n for n in table.column_names if n != "sensor")]
    return table.select(columns).sort_by([("sensor", "ascending"), ("hour", "ascending"),
                                          ("index", "ascending")])


def read_failures(out: str | Path) -> Any:
    """``OUT/failures.parquet`` (pyarrow Table)."""
    import pyarrow.parquet as pq

    return pq.read_table(Path(out) / "failures.parquet")
