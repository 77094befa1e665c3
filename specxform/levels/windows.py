"""Windows of stored levels: timestamps checked, segments split at gaps, windows cut.

:class:`WindowCutter` takes the blocks a :class:`~specxform.levels.readers.LevelReader`
reads and yields :class:`WindowBatch` values of ``W`` frames
(:func:`window_frames`), never across a gap or a missing frame, recording the
file's :class:`Segment` values on the way.

Timestamps and gaps
    Consecutive frames must be ``P`` apart, give or take half a period: a step
    larger than :data:`GAP_FACTOR` ``* P`` is a *gap* that closes the current
    segment; a step of zero or less (not increasing) or below
    :data:`MIN_STEP_FACTOR` ``* P`` (a faster representation than ``--source``)
    is an error naming the file and line (or frame). The median of the first
    :data:`PERIOD_STEPS` steps must itself be a normal step (at most
    ``GAP_FACTOR * P``): a file of 1 s frames read as 125 ms ``cense`` is
    refused, naming the registered source whose period fits, instead of being
    cut into one-frame segments.

Missing values
    A frame with a NaN or infinite level (an empty CSV cell, a sensor dropout)
    is *missing*: it is not classified and closes the current segment, as a gap
    does. A file without any finite frame is an error.

Windows
    Each segment is cut into consecutive windows of ``W`` frames (the window
    length in frames); a trailing part of at least half a window is padded with
    silence (the source's level of zero power) into one more window, a shorter
    one is dropped, and a segment shorter than half a window still gives one
    padded window: the rule of :func:`specxform.training.cache.chunk_clip`, per segment.
    No window spans a gap or a missing frame.

May import: :mod:`specxform.levels.readers` and what it may.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import attrs
import numpy as np

from specxform.errors import InputError
from specxform.levels.readers import LevelBlock, LevelReader
from specxform.representations.specs import Representation

__all__ = [
    "GAP_FACTOR",
    "MAX_LISTED_SEGMENTS",
    "MIN_STEP_FACTOR",
    "PERIOD_STEPS",
    "Segment",
    "WindowBatch",
    "WindowCutter",
    "silence_levels",
    "window_frames",
]

#: A timestamp step above this many frame periods is a gap.
GAP_FACTOR = 1.5
#: A timestamp step below this many frame periods is an error (too fast for the source).
MIN_STEP_FACTOR = 0.5
#: Segments listed in detail per file (the counts are always complete).
MAX_LISTED_SEGMENTS = 1000
#: Timestamp steps whose median must fit the source's frame period.
PERIOD_STEPS = 32


def window_frames(source: Representation, window_s: float) -> int:
    """Frames of ``source`` in a window of ``window_s`` seconds; it must be a whole number.

    Raises
    ------
    InputError
        If ``window_s`` is not a positive whole number of frame periods.
    """
    period = source.framing.frame_seconds
    exact = window_s / period
    frames = round(exact)
    if not (math.isfinite(exact) and frames >= 1 and abs(exact - frames) < 1e-6):
        raise InputError(
            f"a {window_s:g} s window is {exact:g} {source.name!r} frames of {period:g} s, not "
            f"a whole number; use a multiple of {period:g} s (e.g. {max(1, frames) * period:g})."
        )
    return frames


def silence_levels(source: Representation) -> np.ndarray:
    """The stored value of zero power in each band of ``source``, shape (bands,), float32."""
    import torch

    from specxform.representations.frontend import apply_scaling

    scaling = source.scaling
    mean = None if scaling.mean is None else torch.tensor(scaling.mean)
    std = None if scaling.std is None else torch.tensor(scaling.std)
    zero = torch.zeros(source.n_bands, dtype=torch.float64)
    return apply_scaling(zero, scaling, mean=mean, std=std).numpy().astype(np.float32)


@attrs.frozen
class WindowBatch:
    """Windows cut from a level file.

    Attributes
    ----------
    levels : np.ndarray, shape (windows, W, bands), float32
        Levels as stored; padded windows end with silence.
    starts_s, ends_s : np.ndarray, shape (windows,), float64
        Start of each window's first frame, and that plus its real (unpadded)
        frames times the frame period.
    segments : np.ndarray, shape (windows,), int64
        Index of the segment each window belongs to.
    """

    levels: np.ndarray
    starts_s: np.ndarray
    ends_s: np.ndarray
    segments: np.ndarray

    def __len__(self) -> int:
        return len(self.starts_s)


@attrs.define
class Segment:
    """A run of finite, regularly spaced frames: classified without crossing its ends."""

    index: int
    start_s: float
    end_s: float
    frames: int
    windows: int

    def to_dict(self) -> dict[str, Any]:
        return {"start_s": self.start_s, "end_s": self.end_s, "frames": self.frames,
                "windows": self.windows}


class WindowCutter:
    """Validates the frames of a level file and cuts them into windows, block by block.

    Feed the reader's blocks in order with :meth:`feed`, then call
    :meth:`finish`; each yields :class:`WindowBatch` es. Memory: one block
    plus fewer than ``W`` pending frames.

    Parameters
    ----------
    reader : LevelReader
        Gives the frame period, the source and the error positions.
    frames_per_window : int
        ``W``, from :func:`window_frames`.
    pad : np.ndarray, shape (bands,), optional
        Stored value of the padding frames; default :func:`silence_levels`. A
        caller that shifts the levels by ``x`` dB passes ``silence - x``, so
        that the padding is silence after the shift.
    """

    def __init__(self, reader: LevelReader, frames_per_window: int,
                 pad: np.ndarray | None = None) -> None:
        self.reader, self.w = reader, frames_per_window
        self.period = reader.period_s
        self.silence = silence_levels(reader.source) if pad is None else pad.astype(np.float32)
        self.segments: list[Segment] = []
        self.n_segments = self.n_gaps = self.missing_frames = self.frames = 0
        self._current: Segment | None = None
        self._pending = np.zeros((0, reader.source.n_bands), np.float32)
        self._pending_times = np.zeros(0)
        self._last: tuple[float, int] | None = None  # time and position of the last frame
        self._steps: list[float] = []  # the first timestamp steps, for the period check
        self._period_checked = False
        #: End (s) of the last finite frame so far.
        self.last_end_s = math.nan

    def feed(self, block: LevelBlock) -> Iterator[WindowBatch]:
        """Check ``block`` and yield the windows it completes."""
        n = len(block.times_s)
        if n == 0:
            return
        self.frames += n
        gap_before = self._check_times(block)
        if block.starts_segment is not None:  # chunk boundaries: a new segment, not a gap
            gap_before = gap_before | block.starts_segment
        finite = np.isfinite(block.levels).all(axis=1)
        self.missing_frames += int(n - finite.sum())
        breaks = np.flatnonzero(~finite | gap_before)  # where a run of frames must end
        usable = np.flatnonzero(finite)
        i = 0
        while i < n:
            if not finite[i]:  # a missing frame closes the segment
                yield from self._close()
                k = int(np.searchsorted(usable, i))
                i = int(usable[k]) if k < len(usable) else n
                continue
            if gap_before[i] or self._current is None:
                yield from self._close()
                self._open(block, i)
            k = int(np.searchsorted(breaks, i, side="right"))
            stop = int(breaks[k]) if k < len(breaks) else n
            yield from self._extend(block.levels[i:stop], block.times_s[i:stop])
            i = stop

    def finish(self) -> Iterator[WindowBatch]:
        """Close the last segment; refuse a file without any finite frame."""
        self._check_period()
        yield from self._close()
        if self.frames == 0:
            raise InputError(f"{self.reader.path}: the file holds no frames; give a file with "
                             "levels.")
        if self.n_segments == 0:
            raise InputError(f"{self.reader.path}: every one of its {self.frames} frames holds a "
                             "NaN or infinite level; nothing to classify.")

    def _check_times(self, block: LevelBlock) -> np.ndarray:
        """Gap flag before each frame; errors on bad, decreasing or too dense timestamps."""
        times = block.times_s
        where = self.reader.where
        not_finite = np.flatnonzero(~np.isfinite(times))
        if not_finite.size:
            raise InputError(f"{where(int(block.positions[not_finite[0]]))}: the timestamp is "
                             f"{times[not_finite[0]]}; give every frame a finite start time.")
        first = self._last is None
        previous = np.concatenate([[self._last[0] if self._last else -np.inf], times[:-1]])
        steps = times - previous
        bad = np.flatnonzero(steps < MIN_STEP_FACTOR * self.period)
        if bad.size:
            i = int(bad[0])
            why = ("does not increase" if steps[i] <= 0 else
                   f"is only {steps[i]:g} s after the previous frame, less than half the "
                   f"{self.period:g} s frame period of {self.reader.source.name!r}")
            fix = ("sort the frames by time and drop duplicates" if steps[i] <= 0 else
                   "check `source` (these levels come faster) and the timestamp resolution")
            raise InputError(f"{where(int(block.positions[i]))}: timestamp {times[i]:.6f} s "
                             f"{why} (previous frame at {previous[i]:.6f} s); {fix}.")
        self._last = (float(times[-1]), int(block.positions[-1]))
        if not self._period_checked:
            self._steps += [float(x) for x in steps[np.isfinite(steps)][:PERIOD_STEPS]]
            if len(self._steps) >= PERIOD_STEPS:
                self._check_period()
        gaps = steps > GAP_FACTOR * self.period
        self.n_gaps += int(gaps.sum()) - int(first)
        return gaps

    def _check_period(self) -> None:
        """Refuse a file whose typical timestamp step is not the source's frame period."""
        if self._period_checked or not self._steps:
            return
        self._period_checked = True
        step = float(np.median(self._steps[:PERIOD_STEPS]))
        if step <= GAP_FACTOR * self.period:
            return
        source = self.reader.source
        raise InputError(
            f"{self.reader.path}: its frames are {step:g} s apart (median of the first "
            f"{len(self._steps[:PERIOD_STEPS])} timestamp steps), but {source.name!r} has a "
            f"frame period of {self.period:g} s: every frame would be a segment of its own; "
            f"{_fitting_sources(step, source)}"
        )

    def _open(self, block: LevelBlock, i: int) -> None:
        """Start a segment at frame ``i`` of ``block``."""
        start = float(block.times_s[i])
        self._current = Segment(self.n_segments, start, start, 0, 0)
        self.n_segments += 1

    def _extend(self, levels: np.ndarray, times: np.ndarray) -> Iterator[WindowBatch]:
        seg = self._current
        assert seg is not None
        seg.frames += len(levels)
        seg.end_s = self.last_end_s = float(times[-1]) + self.period
        if len(self._pending):
            levels = np.concatenate([self._pending, levels])
            times = np.concatenate([self._pending_times, times])
        whole = len(levels) // self.w * self.w
        self._pending, self._pending_times = levels[whole:], times[whole:]
        if whole:
            yield self._batch(levels[:whole].reshape(-1, self.w, levels.shape[1]),
                              times[:whole:self.w], np.full(whole // self.w, self.w))

    def _close(self) -> Iterator[WindowBatch]:
        seg = self._current
        if seg is None:
            return
        rest = len(self._pending)
        if rest and (2 * rest >= self.w or seg.windows == 0):
            padded = np.concatenate([self._pending,
                                     np.broadcast_to(self.silence, (self.w - rest,
                                                                    len(self.silence)))])
            yield self._batch(padded[None], self._pending_times[:1], np.array([rest]))
        self._pending = self._pending[:0]
        self._pending_times = self._pending_times[:0]
        if len(self.segments) < MAX_LISTED_SEGMENTS:
            self.segments.append(seg)
        self._current = None

    def _batch(self, levels: np.ndarray, starts: np.ndarray, real_frames: np.ndarray
               ) -> WindowBatch:
        seg = self._current
        assert seg is not None
        seg.windows += len(levels)
        return WindowBatch(np.ascontiguousarray(levels, dtype=np.float32),
                           starts.astype(np.float64), starts + real_frames * self.period,
                           np.full(len(levels), seg.index, dtype=np.int64))


def _fitting_sources(step: float, source: Representation) -> str:
    """The advice of a period mismatch: the registered sources whose period fits ``step``."""
    try:
        from specxform.plugins import get_registry

        reps = get_registry().representations()
    except Exception:  # advice only: never hide the error being reported
        reps = []
    fits = [r for r in reps if "source" in r.roles and r.n_bands == source.n_bands
            and abs(r.framing.frame_seconds / step - 1) <= 0.1]
    if fits:
        names = ", ".join(f"`source={r.name}` ({r.framing.frame_seconds:g} s)" for r in fits)
        return f"pass the representation whose period fits: {names}."
    return (f"no registered source of {source.n_bands} bands has a {step:g} s period (see "
            "`specxform list representations`); check the timestamps.")
