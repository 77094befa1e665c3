"""Statistics of stored levels: the broadband level of frames and its streaming percentiles.

:func:`broadband_db` sums a frame's bands in power; :class:`BroadbandHistogram`
counts those levels in fixed memory, so that the percentile behind
``--db-offset auto`` (:func:`specxform.levels.classify.auto_offset`) is found in
one streaming pass over a file or a sensor's whole archive.

May import: :mod:`specxform.errors` and numpy.
"""

from __future__ import annotations

import math

import numpy as np

from specxform.errors import InputError

__all__ = ["BroadbandHistogram", "broadband_db"]


def broadband_db(levels: np.ndarray) -> np.ndarray:
    """Broadband level of each frame, ``10 log10(sum_b 10**(L_b / 10))``, shape (frames,)."""
    levels = np.asarray(levels, dtype=np.float64)
    top = levels.max(axis=1, keepdims=True)
    return top[:, 0] + 10 * np.log10(np.sum(10 ** ((levels - top) / 10), axis=1))


class BroadbandHistogram:
    """Streaming percentiles of frame broadband levels: a 0.01 dB histogram, fixed memory.

    Values are counted in bins of :attr:`step` dB from :attr:`low` to
    :attr:`high` (700 kB); a percentile is the centre of the bin holding the
    value of rank ``q/100 * (n - 1)`` (numpy's "lower" rank), within
    ``step / 2`` of the exact one for values inside the range.
    """

    low, high, step = -300.0, 400.0, 0.01

    def __init__(self) -> None:
        self.counts = np.zeros(round((self.high - self.low) / self.step), dtype=np.int64)
        self.outside = 0

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def add(self, levels: np.ndarray) -> None:
        """Count the broadband level of each finite frame of ``levels`` (frames, bands)."""
        finite = np.isfinite(levels).all(axis=1)
        if not finite.any():
            return
        values = broadband_db(levels[finite])
        index = np.floor((values - self.low) / self.step).astype(np.int64)
        inside = (index >= 0) & (index < len(self.counts))
        self.outside += int((~inside).sum())
        np.add.at(self.counts, np.clip(index, 0, len(self.counts) - 1), 1)

    def percentile(self, q: float, *, higher: bool = False) -> float:
        """The ``q``-th percentile (0..100) of the counted values, in dB.

        The value of rank ``floor(q/100 * (n - 1))`` (numpy's ``"lower"``), or
        with ``higher`` of rank ``ceil(...)`` (numpy's ``"higher"``): the 99th
        percentile of fewer than 101 values is then their largest, not the
        second largest, which on a short clip may already be silence.
        """
        n = self.n
        if n == 0:
            raise InputError("no finite frame to estimate the level offset from.")
        exact = q / 100 * (n - 1)
        rank = math.ceil(exact - 1e-9) if higher else math.floor(exact)
        index = int(np.searchsorted(np.cumsum(self.counts), rank, side="right"))
        if index in (0, len(self.counts) - 1) and self.outside:
            raise InputError(
                f"broadband levels outside {self.low:g}..{self.high:g} dB; the levels are not "
                "in dB: give `db_offset` explicitly."
            )
        return self.low + (index + 0.5) * self.step
