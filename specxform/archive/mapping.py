"""The map function: one time chunk of one sensor in, a table of classified windows out.

:func:`classify_chunk` is pure (its result depends only on its arguments:
no files written, no global state) and holds everything an engine needs, so
the same function runs in a plain loop, on Dask (:mod:`specxform.archive.runner`),
Ray or Beam. Per chunk it:

1. reads the chunk's levels in blocks (:meth:`Chunk.open`, the readers of
   :mod:`specxform.levels.readers`);
2. validates them and cuts windows that never cross a gap, a missing frame or
   the chunk's ends (:class:`~specxform.levels.windows.WindowCutter`);
3. adds the dB offset, transcodes and classifies each batch of windows
   (:func:`specxform.levels.classify.window_probs`), exactly as
   ``specxform classify --source`` does for a file;
4. keeps each window's top ``k`` classes, and per hour and class the number
   of windows whose probability reaches the presence threshold.

A chunk that cannot be read or fails validation gives an empty table and a
:attr:`ChunkResult.failure` message instead of an exception, so that the
rest of the archive is still classified. Errors of the model itself are raised.

The auto dB offset is per sensor, over its whole archive: each chunk's
broadband histogram (:func:`chunk_histogram`) is summed per sensor
(:func:`merge_histograms`) and :func:`offset_from_histogram` gives the
offset with the rule ``--db-offset auto`` applies to one file
(:func:`specxform.levels.classify.auto_offset`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import attrs
import numpy as np

from specxform.archive.stores import Chunk, epoch_us
from specxform.errors import InputError
from specxform.levels.classify import (
    BATCH_WINDOWS,
    LevelModel,
    auto_offset,
    check_level_window,
    load_level_model,
    window_probs,
)
from specxform.levels.readers import BLOCK_FRAMES
from specxform.levels.statistics import BroadbandHistogram
from specxform.levels.windows import WindowBatch, WindowCutter, silence_levels
from specxform.representations.specs import Representation

__all__ = [
    "ChunkResult",
    "Histogram",
    "HourlyPresence",
    "MapSettings",
    "ModelSpec",
    "chunk_histogram",
    "classify_chunk",
    "merge_histograms",
    "offset_from_histogram",
    "window_schema",
]

HOUR_US = 3_600_000_000


@attrs.frozen
class MapSettings:
    """How chunks are classified.

    Parameters
    ----------
    window_s : float
        Window length (s), a whole number of frame periods.
    top_k : int
        Classes kept per window (``class_1`` ... ``class_k``).
    threshold : float
        A class is *present* in a window when its probability is at least this.
    block_frames, batch_windows : int
        Frames read per block; windows per transcoder and teacher call.
    """

    window_s: float = 1.0
    top_k: int = 5
    threshold: float = 0.5
    block_frames: int = BLOCK_FRAMES
    batch_windows: int = BATCH_WINDOWS


@attrs.frozen
class HourlyPresence:
    """Per hour of a chunk: windows and, per class, present windows and summed probabilities.

    Attributes
    ----------
    hours : np.ndarray, shape (hours,), int64
        Hours since the Unix epoch (UTC) of the window starts.
    windows : np.ndarray, shape (hours,), int64
    present : np.ndarray, shape (hours, classes), int64
        Windows whose probability reached the threshold.
    prob_sum : np.ndarray, shape (hours, classes), float64
    """

    hours: np.ndarray
    windows: np.ndarray
    present: np.ndarray
    prob_sum: np.ndarray

    @classmethod
    def empty(cls, n_classes: int) -> HourlyPresence:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64),
                   np.zeros((0, n_classes), np.int64), np.zeros((0, n_classes)))


@attrs.frozen
class ChunkResult:
    """What :func:`classify_chunk` gives for one chunk.

    Attributes
    ----------
    chunk : Chunk
    windows : pyarrow.Table
        One row per window (:func:`window_schema`), in time order.
    presence : HourlyPresence
    frames, missing_frames : int
        Frames read and frames holding a NaN or infinite level.
    failure : str or None
        Why the chunk could not be classified (then ``windows`` is empty).
    db_offset : float
        dB added to the stored levels.
    seconds : float
        Wall time.
    """

    chunk: Chunk
    windows: Any
    presence: HourlyPresence
    frames: int
    missing_frames: int
    failure: str | None
    db_offset: float
    seconds: float


def window_schema(top_k: int) -> Any:
    """The columns of a window table: sensor, start, end (UTC), then ``class_r``, ``prob_r``."""
    import pyarrow as pa

    fields = [pa.field("sensor", pa.string()), pa.field("start", pa.timestamp("us", "UTC")),
              pa.field("end", pa.timestamp("us", "UTC"))]
    for rank in range(1, top_k + 1):
        fields += [pa.field(f"class_{rank}", pa.string()), pa.field(f"prob_{rank}", pa.float32())]
    return pa.schema(fields)


# ----------------------------------------------------------------------------- model


@attrs.frozen
class ModelSpec:
    """How a worker loads the model: picklable, and loaded once per process.

    Parameters
    ----------
    checkpoint : str
    source : str
    weights : str or None
    registry_factory : callable or None
        A picklable function that builds the registry (default: the
        installed plugins, :func:`specxform.plugins.get_registry`).
    torch_threads : int
        ``torch.set_num_threads`` in the worker (one per task slot).
    """

    checkpoint: str
    source: str
    weights: str | None = None
    registry_factory: Any = None
    torch_threads: int = 1

    def load(self) -> LevelModel:
        """The model, loaded on the first call in this process and kept (thread-safe)."""
        key = (self.checkpoint, self.source, self.weights, self.registry_factory)
        with _LOCK:
            model = _MODELS.get(key)
            if model is None:
                import torch

                torch.set_num_threads(self.torch_threads)
                registry = self.registry_factory() if self.registry_factory else None
                model = load_level_model(self.checkpoint, self.source, weights=self.weights,
                                         registry=registry)
                _MODELS[key] = model
                _LOADS[0] += 1
            return model


_MODELS: dict[tuple[Any, ...], LevelModel] = {}
_LOADS = [0]
_LOCK = threading.Lock()


def model_loads() -> int:
    """How many models this process has loaded (tests check: one per worker)."""
    return _LOADS[0]


# ----------------------------------------------------------------------------- map


class _ReadError(Exception):
    """Anything the store's reader raised (a corrupt chunk, an I/O error)."""


def _guarded(blocks: Iterator[Any]) -> Iterator[Any]:
    while True:
        try:
            block = next(blocks)
        except StopIteration:
            return
        except InputError:
            raise
        except Exception as exc:
            raise _ReadError(f"{type(exc).__name__}: {exc}") from exc
        yield block


class _Collector:
    """Window times and probabilities of one chunk, batch by batch; tables at the end.

    The probabilities are kept as float32, the teachers' own precision, until
    the chunk's time origin is known (a CSV file gives it only once read):
    windows x classes x 4 bytes, 7.6 MB for an hour of 1 s windows and 527 classes.
    """

    def __init__(self, model: LevelModel, settings: MapSettings, offset: float) -> None:
        self.model, self.settings, self.offset = model, settings, offset
        self.n_classes = len(model.labels.names)
        self.k = min(settings.top_k, self.n_classes)
        self.starts: list[np.ndarray] = []
        self.ends: list[np.ndarray] = []
        self.probs: list[np.ndarray] = []

    def add(self, batches: Iterable[WindowBatch]) -> None:
        step = self.settings.batch_windows
        for batch in batches:
            for a in range(0, len(batch), step):
                levels = batch.levels[a:a + step] + np.float32(self.offset)
                self.probs.append(window_probs(self.model, levels).astype(np.float32))
                self.starts.append(batch.starts_s[a:a + step])
                self.ends.append(batch.ends_s[a:a + step])

    def table(self, sensor: str, origin_us: int) -> tuple[Any, HourlyPresence]:
        """The window table and the hourly presence, times counted from ``origin_us``."""
        import pyarrow as pa

        schema = window_schema(self.k)
        if not self.starts:
            return schema.empty_table(), HourlyPresence.empty(self.n_classes)
        start_us = origin_us + np.round(np.concatenate(self.starts) * 1e6).astype(np.int64)
        end_us = origin_us + np.round(np.concatenate(self.ends) * 1e6).astype(np.int64)
        probs = np.concatenate(self.probs)
        top = np.argsort(-probs, axis=1, kind="stable")[:, :self.k]
        top_probs = np.take_along_axis(probs, top, axis=1)
        names = np.asarray(self.model.labels.names, dtype=object)
        columns: list[Any] = [pa.array(np.full(len(start_us), sensor, dtype=object), pa.string()),
                              pa.array(start_us, pa.timestamp("us", "UTC")),
                              pa.array(end_us, pa.timestamp("us", "UTC"))]
        for r in range(self.k):
            columns += [pa.array(names[top[:, r]], pa.string()),
                        pa.array(top_probs[:, r], pa.float32())]
        table = pa.Table.from_arrays(columns, schema=schema)
        return table, self._hourly(start_us, probs)

    def _hourly(self, start_us: np.ndarray, probs: np.ndarray) -> HourlyPresence:
        hour = start_us // HOUR_US  # windows are in time order: each hour is one run
        first = np.concatenate([[0], np.flatnonzero(np.diff(hour)) + 1])
        windows = np.diff(np.append(first, len(hour))).astype(np.int64)
        present = np.add.reduceat((probs >= self.settings.threshold).astype(np.int64), first,
                                  axis=0)
        prob_sum = np.add.reduceat(probs.astype(np.float64), first, axis=0)
        return HourlyPresence(hour[first].astype(np.int64), windows, present, prob_sum)


def classify_chunk(model: LevelModel, chunk: Chunk, settings: MapSettings, db_offset: float
                   ) -> ChunkResult:
    """Classify the windows of one chunk (the map function; see the module docstring).

    Parameters
    ----------
    model : LevelModel
        From :func:`specxform.levels.classify.load_level_model` (or :meth:`ModelSpec.load`).
    chunk : Chunk
        From :func:`specxform.archive.open_archive`.
    settings : MapSettings
    db_offset : float
        dB added to the stored levels (for ``auto``: :func:`offset_from_histogram`
        of the sensor's :func:`merge_histograms`).

    Returns
    -------
    ChunkResult
        Its window table has one row per window, in time order; a chunk that
        holds only missing frames gives no rows and no failure.

    Raises
    ------
    InputError
        The window does not suit the model (checked before reading anything).
    """
    started = time.perf_counter()
    frames_per_window = check_level_window(model, settings.window_s)
    collector = _Collector(model, settings, db_offset)
    frames = missing = 0
    try:
        reader = chunk.open(model.source, settings.block_frames)
        pad = silence_levels(model.source) - np.float32(db_offset)
        cutter = WindowCutter(reader, frames_per_window, pad=pad)
        for block in _guarded(reader.blocks()):
            collector.add(cutter.feed(block))
        frames, missing = cutter.frames, cutter.missing_frames
        try:
            collector.add(cutter.finish())
        except InputError:
            if not (cutter.frames and cutter.n_segments == 0):  # not just "all frames missing"
                raise
        table, presence = collector.table(chunk.sensor, epoch_us(reader.origin))
    except (InputError, _ReadError, OSError) as exc:
        n = len(model.labels.names)
        return ChunkResult(chunk, window_schema(min(settings.top_k, n)).empty_table(),
                           HourlyPresence.empty(n), frames, missing,
                           " ".join(str(exc).split()), db_offset, time.perf_counter() - started)
    return ChunkResult(chunk, table, presence, frames, missing, None, db_offset,
                       time.perf_counter() - started)


# ----------------------------------------------------------------------------- auto offset


@attrs.frozen
class Histogram:
    """The non-empty bins of a :class:`~specxform.levels.statistics.BroadbandHistogram`
    (small to send).

    Attributes
    ----------
    bins, counts : np.ndarray, shape (n,), int64
    outside : int
        Values outside the histogram's range.
    failed : bool
        The chunk could not be read (it counts nothing).
    """

    bins: np.ndarray
    counts: np.ndarray
    outside: int = 0
    failed: bool = False

    @classmethod
    def of(cls, histogram: BroadbandHistogram, failed: bool = False) -> Histogram:
        bins = np.flatnonzero(histogram.counts)
        return cls(bins.astype(np.int64), histogram.counts[bins], histogram.outside, failed)

    def dense(self) -> BroadbandHistogram:
        out = BroadbandHistogram()
        out.counts[self.bins] = self.counts
        out.outside = self.outside
        return out


def chunk_histogram(chunk: Chunk, source: Representation, block_frames: int = BLOCK_FRAMES
                    ) -> Histogram:
    """Broadband levels of a chunk's finite frames, binned as ``--db-offset auto`` does."""
    histogram = BroadbandHistogram()
    try:
        for block in _guarded(chunk.open(source, block_frames).blocks()):
            histogram.add(block.levels)
    except (InputError, _ReadError, OSError):
        return Histogram.of(BroadbandHistogram(), failed=True)
    return Histogram.of(histogram)


def merge_histograms(parts: Iterable[Histogram]) -> Histogram:
    """The sum of histograms."""
    total = BroadbandHistogram()
    for part in parts:
        np.add.at(total.counts, part.bins, part.counts)
        total.outside += part.outside
    return Histogram.of(total)


def offset_from_histogram(histogram: Histogram, source: Representation, sensor: str
                          ) -> tuple[float, float]:
    """``(offset, p99)`` in dB of ``--db-offset auto`` for a sensor's summed histogram.

    The rule of one file, :func:`specxform.levels.classify.auto_offset`, applied
    to the sensor's whole archive.

    Raises
    ------
    InputError
        The source is not in dB, or the sensor has no finite frame.
    """
    scaling = source.scaling
    if scaling.log != "db" or scaling.mean is not None:
        raise InputError(f"`db_offset=auto` needs levels in dB; {source.name!r} is not; give "
                         "`db_offset` in its unit.")
    dense = histogram.dense()
    if dense.n == 0:
        raise InputError(f"sensor {sensor!r}: no readable finite frame to estimate the dB "
                         "offset from; give `db_offset`.")
    return auto_offset(source, dense)
