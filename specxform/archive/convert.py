"""``specxform archive convert``: level files into a Zarr store chunked by time.

The store (the Zarr layout of :mod:`specxform.archive.stores`) has one group
per sensor holding ``levels`` ``(frames, bands)`` float32 on a regular time
axis: frame ``i`` starts at ``start + i * P`` (the group's attribute
``start``, ISO 8601 UTC), and the array is chunked by ``chunk_seconds`` of
frames along time, so that every chunk can be read, and classified, on its
own. The root records the representation (``representation``) and
``specxform_archive`` (format, frame period, chunk length).

Placing frames on the axis keeps the rules of :mod:`specxform.levels.readers`: each
input is validated as ``specxform classify`` validates it (a reading
:class:`~specxform.levels.windows.WindowCutter`); consecutive frames at most
``GAP_FACTOR * P`` apart take consecutive indices (clock jitter is dropped,
the frame keeps its place in the run); a larger step is a gap, stored as at
least one missing (NaN) frame; missing frames stay NaN. Each sensor's files
are ordered by their first timestamp, and a file that starts before the
previous one ends is an error. The first chunk starts at the whole hour (or
multiple of ``chunk_seconds``) before the sensor's first frame, shifted by
less than a frame so that the first frame keeps its exact time.

A folder file is read twice (once to order and check the files, once to
write); the store is written under a temporary name and renamed at the end.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from specxform.archive.stores import Archive, Chunk, epoch_us, open_archive
from specxform.errors import InputError
from specxform.levels.readers import BLOCK_FRAMES, LevelBlock
from specxform.levels.windows import GAP_FACTOR, WindowCutter
from specxform.representations.specs import Representation

__all__ = ["ConvertResult", "convert_archive", "write_zarr_sensor"]

#: Format version of the stores this module writes.
STORE_FORMAT = 1

ProgressFn = Callable[[str, int, int], None]


@attrs.frozen
class ConvertResult:
    """What :func:`convert_archive` wrote.

    Attributes
    ----------
    path : Path
    sensors : dict of str to dict
        Per sensor: ``start`` (ISO), ``frames`` (on the axis), ``missing``
        (NaN frames on the axis, gaps included), ``inputs``.
    chunk_frames : int
    """

    path: Path
    sensors: dict[str, dict[str, Any]]
    chunk_frames: int


def _absolute_blocks(chunk: Chunk, source: Representation, origin_s: float | None
                     ) -> Iterator[tuple[LevelBlock, np.ndarray]]:
    """The chunk's validated blocks and the absolute start (Unix s) of each frame.

    ``origin_s`` is the reader's origin when it is known only after a full
    pass (CSV and HDF5 files with ISO times); None reads it from the reader.
    """
    reader = chunk.open(source, BLOCK_FRAMES)
    cutter = WindowCutter(reader, 1)
    base = origin_s
    if base is None:
        base = epoch_us(reader.origin) / 1e6
    for block in reader.blocks():
        for _ in cutter.feed(block):
            pass
        yield block, base + block.times_s
    try:
        for _ in cutter.finish():
            pass
    except InputError:
        if chunk.kind == "folder" or cutter.n_segments or not cutter.frames:
            raise  # a node chunk of missing frames only is a sensor outage, not an error


def _survey(chunk: Chunk, source: Representation) -> tuple[float, float, float]:
    """(origin, first frame, last frame) in Unix seconds, from a full pass over a file."""
    reader = chunk.open(source, BLOCK_FRAMES)
    cutter = WindowCutter(reader, 1)
    first = last = math.nan
    for block in reader.blocks():
        for _ in cutter.feed(block):
            pass
        if math.isnan(first):
            first = float(block.times_s[0])
        last = float(block.times_s[-1])
    for _ in cutter.finish():
        pass
    origin = epoch_us(reader.origin) / 1e6
    return origin, origin + first, origin + last


class _AxisWriter:
    """Places one sensor's frames on its regular time axis and writes whole chunks."""

    def __init__(self, group: Any, source: Representation, chunk_frames: int) -> None:
        self.group, self.source, self.chunk_frames = group, source, chunk_frames
        self.period = float(source.framing.frame_seconds)
        self.bands = source.n_bands
        self.array: Any = None
        self.origin_s = math.nan
        self.last: tuple[int, float, str] | None = None  # index, time, input of the last frame
        self.buffer: np.ndarray | None = None
        self.buffer_index = -1
        self.stored = 0  # frames on the axis so far
        self.finite = 0

    def _start(self, first_s: float) -> None:
        span = self.chunk_frames * self.period
        boundary = math.floor(first_s / span) * span
        self.origin_s = first_s - math.floor((first_s - boundary) / self.period) * self.period
        self.array = self.group.create_array(
            "levels", shape=(0, self.bands), chunks=(self.chunk_frames, self.bands),
            dtype="float32", fill_value=np.nan)

    def _indices(self, times: np.ndarray, where: str) -> np.ndarray:
        """Axis index of each frame (see the module docstring)."""
        exact = np.rint((times - self.origin_s) / self.period).astype(np.int64)
        steps = np.diff(times, prepend=np.inf if self.last is None else self.last[1])
        if self.last is not None and steps[0] <= 0:
            last = datetime.fromtimestamp(self.last[1], UTC).isoformat()
            raise InputError(f"{where}: starts at {datetime.fromtimestamp(times[0], UTC)} "
                             f"(UTC), not after the last frame ({last}) of {self.last[2]}; "
                             "the inputs of a sensor must not overlap.")
        if self.last is None:
            steps[0] = np.inf
        breaks = np.flatnonzero(steps > GAP_FACTOR * self.period)
        bounds = np.unique(np.concatenate([[0], breaks, [len(times)]]))
        out = np.empty(len(times), np.int64)
        current = None if self.last is None else self.last[0]
        for a, b in itertools.pairwise(bounds):
            if current is None:
                base = int(exact[a])
            elif steps[a] > GAP_FACTOR * self.period:  # a gap: at least one missing frame
                base = max(current + 2, int(exact[a]))
            else:
                base = current + 1
            out[a:b] = base + np.arange(b - a)
            current = int(out[b - 1])
        self.last = (int(out[-1]), float(times[-1]), where)
        return out

    def add(self, block: LevelBlock, times: np.ndarray, where: str) -> None:
        if self.array is None:
            self._start(float(times[0]))
        indices = self._indices(times, where)
        self.finite += int(np.isfinite(block.levels).all(axis=1).sum())
        chunk_of = indices // self.chunk_frames
        for c in np.unique(chunk_of):
            rows = chunk_of == c
            self._buffer(int(c))[indices[rows] - c * self.chunk_frames] = block.levels[rows]
        self.stored = int(indices[-1]) + 1

    def _buffer(self, chunk_index: int) -> np.ndarray:
        if chunk_index != self.buffer_index:
            self.flush()
            self.buffer = np.full((self.chunk_frames, self.bands), np.nan, np.float32)
            self.buffer_index = chunk_index
        assert self.buffer is not None
        return self.buffer

    def flush(self) -> None:
        if self.buffer is None:
            return
        a = self.buffer_index * self.chunk_frames
        b = a + self.chunk_frames
        if self.array.shape[0] < b:
            self.array.resize((b, self.bands))
        self.array[a:b] = self.buffer
        self.buffer, self.buffer_index = None, -1

    def close(self) -> dict[str, Any]:
        self.flush()
        if self.array is None:
            return {"frames": 0}
        self.array.resize((self.stored, self.bands))
        start = datetime.fromtimestamp(0, UTC) + timedelta(seconds=self.origin_s)
        self.group.attrs["start"] = start.isoformat()
        return {"start": start.isoformat(), "frames": self.stored,
                "missing": self.stored - self.finite}


def write_zarr_sensor(group: Any, chunks: list[Chunk], source: Representation,
                      chunk_frames: int, *, progress: Callable[[int], None] | None = None
                      ) -> dict[str, Any]:
    """Write one sensor's chunks (files or nodes) into ``group`` (a Zarr group).

    Returns
    -------
    dict
        ``start``, ``frames``, ``missing`` and ``inputs`` of the sensor.
    """
    origins: dict[str, float | None] = {}
    order = []
    for chunk in chunks:
        if chunk.kind == "folder":
            origin, first, _ = _survey(chunk, source)
            origins[chunk.key] = origin
        else:
            first = chunk.start_frame  # node chunks come in frame order
            origins[chunk.key] = None
        order.append((first, chunk.key, chunk))
    writer = _AxisWriter(group, source, chunk_frames)
    for done, (_, _, chunk) in enumerate(sorted(order, key=lambda item: item[:2])):
        where = chunk.path if chunk.kind == "folder" else f"{chunk.path} {chunk.key}"
        for block, times in _absolute_blocks(chunk, source, origins[chunk.key]):
            writer.add(block, times, where)
        if progress is not None:
            progress(done + 1)
    return {**writer.close(), "inputs": len(chunks)}


def convert_archive(inputs: str | Path, store: str | Path, source: Representation, *,
                    chunk_seconds: float = 3600.0, progress: ProgressFn | None = None
                    ) -> ConvertResult:
    """Write the levels of a folder tree or HDF5 archive into a new Zarr store.

    Parameters
    ----------
    inputs : path-like
        A folder tree of level files or an HDF5 file with one node per sensor
        (:func:`specxform.archive.open_archive`).
    store : path-like
        The Zarr store to create (a folder; it must not exist).
    source : Representation
    chunk_seconds : float
        Time chunk length, rounded to whole frames (default one hour).
    progress : callable, optional
        ``progress(sensor, inputs done, inputs)``.

    Raises
    ------
    InputError
        A bad input (the message names the file and line), inputs of one
        sensor that overlap, or a store that exists already.
    """
    import zarr

    store = Path(store)
    if store.exists():
        raise InputError(f"-o {store}: exists; delete it or give another name.")
    if not (math.isfinite(chunk_seconds) and chunk_seconds > 0):
        raise InputError(f"`chunk_seconds` must be a positive number, got {chunk_seconds!r}.")
    period = float(source.framing.frame_seconds)
    chunk_frames = max(1, round(chunk_seconds / period))
    archive: Archive = open_archive(inputs, source)
    store.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{store.name}.", suffix=".tmp", dir=store.parent))
    try:
        root = zarr.open_group(str(tmp), mode="w")
        root.attrs["representation"] = json.dumps(source.to_dict())
        root.attrs["specxform_archive"] = {"format": STORE_FORMAT, "period_s": period,
                                           "chunk_seconds": chunk_frames * period}
        sensors = {}
        for sensor in archive.sensors:
            chunks = [c for c in archive.chunks if c.sensor == sensor]

            def report(done: int, sensor: str = sensor, total: int = len(chunks)) -> None:
                if progress is not None:
                    progress(sensor, done, total)

            sensors[sensor] = write_zarr_sensor(root.create_group(sensor), chunks, source,
                                                chunk_frames, progress=report)
        os.replace(tmp, store)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ConvertResult(store, sensors, chunk_frames)
