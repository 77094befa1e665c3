"""Pure builders of windows and filterbank matrices.

Every builder is keyword-only, deterministic and returns a NumPy array of
float64; :func:`filterbank_matrix` caches the result per (spec, framing) and
returns it read-only so that callers cannot corrupt the cache.

This module reads the specs (:mod:`specxform.representations.specs`) by their
fields and their ``kind`` and imports them only for type checking, so that
``specs`` can build matrices (to validate a representation) without an
import cycle.

Shapes: a filterbank matrix is ``(n_bands, n_fft // 2 + 1)`` and is applied as
``bands = matrix @ spectrum`` on one-sided FFT bins spaced ``sr / n_fft`` Hz.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import numpy as np

from specxform.errors import SpecError

if TYPE_CHECKING:  # types only: specs imports this module
    from specxform.representations.specs import (
        BandFilterbank,
        Filterbank,
        Framing,
        MelFilterbank,
    )


def window(framing: Framing) -> np.ndarray:
    """The analysis window of ``framing``, zero-padded at the end to ``n_fft``.

    Hann and Tukey are *periodic* (DFT-even): the PANN/librosa convention, and
    the one that gives Cense's energy correction 1.06904 for Tukey 0.2; with
    ``framing.symmetric_window`` they are symmetric (``torch.hann_window(L,
    periodic=False)``, EfficientAT).

    Returns
    -------
    np.ndarray, shape (n_fft,)
    """
    import scipy.signal  # deferred: ~1 s to import, and only front ends need windows

    n = framing.frame_length
    sym = framing.symmetric_window
    if framing.window == "hann":
        w = scipy.signal.get_window("hann", n, fftbins=not sym)
    elif framing.window == "tukey":
        w = scipy.signal.windows.tukey(n, alpha=framing.window_param, sym=sym)
    else:
        w = np.ones(n)
    return np.pad(w, (0, framing.n_fft - n))


def energy_correction(framing: Framing) -> float:
    """``1 / sqrt(mean(w**2))`` over the window's own length (Cense's ``ec``)."""
    w = window(framing)[: framing.frame_length]
    return float(1.0 / math.sqrt(np.mean(w**2)))


def fft_frequencies(*, sample_rate: float, n_fft: int) -> np.ndarray:
    """Centre frequency in Hz of each one-sided FFT bin, shape ``(n_fft // 2 + 1,)``."""
    return np.arange(n_fft // 2 + 1) * (sample_rate / n_fft)


def band_matrix(bank: BandFilterbank, *, sample_rate: float, n_fft: int) -> np.ndarray:
    """Weights of rectangular bands over FFT bins, shape ``(n_bands, n_fft // 2 + 1)``.

    ``"partition"`` gives each bin ``k`` the fraction of ``[k df - df/2, k df + df/2)``
    that lies inside the band: contiguous bands then share the spectrum exactly
    (every bin's column sums to 1 inside the covered range). ``"ceil_inclusive"``
    reproduces the Cense companion code: 0/1 weights on bins
    ``ceil(lo / df) .. ceil(hi / df)``.
    """
    df = sample_rate / n_fft
    n_bins = n_fft // 2 + 1
    edges = np.asarray(bank.edges)  # (n_bands, 2)
    if bank.bin_rule == "ceil_inclusive":
        k = np.arange(n_bins)
        first = np.ceil(edges[:, :1] / df)
        last = np.ceil(edges[:, 1:] / df)
        return ((k >= first) & (k <= last)).astype(np.float64)
    centres = np.arange(n_bins) * df
    lo = np.maximum(edges[:, :1], centres - df / 2)
    hi = np.minimum(edges[:, 1:], centres + df / 2)
    return np.clip(hi - lo, 0.0, None) / df


def hz_to_mel(frequencies: np.ndarray | float, *, scale: str) -> np.ndarray:
    """Hz to Mel: ``"htk"`` is ``1127 ln(1 + f / 700)``; ``"slaney"`` is librosa's default."""
    f = np.asarray(frequencies, dtype=np.float64)
    if scale == "htk":
        return 1127.0 * np.log1p(f / 700.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    linear = f / f_sp
    log_part = min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep
    return np.where(f >= min_log_hz, log_part, linear)


def mel_to_hz(mels: np.ndarray | float, *, scale: str) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    m = np.asarray(mels, dtype=np.float64)
    if scale == "htk":
        return 700.0 * np.expm1(m / 1127.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_matrix(bank: MelFilterbank, *, sample_rate: float, n_fft: int) -> np.ndarray:
    """Triangular Mel weights, shape ``(n_mels, n_fft // 2 + 1)``.

    Triangles linear in Hz with Slaney area normalisation reproduce
    ``librosa.filters.mel``; triangles linear in Mel, peak 1 and a zeroed DC
    bin reproduce TensorFlow's ``linear_to_mel_weight_matrix`` (YAMNet); the
    same with the Nyquist bin zeroed instead reproduce Kaldi's
    ``get_mel_banks`` at warp factor 1 plus EfficientAT's appended zero column.
    """
    freqs = fft_frequencies(sample_rate=sample_rate, n_fft=n_fft)
    edges_mel = np.linspace(
        hz_to_mel(bank.fmin, scale=bank.scale), hz_to_mel(bank.fmax, scale=bank.scale),
        bank.n_mels + 2,
    )
    if bank.triangles_in == "mel":
        points, axis = edges_mel, hz_to_mel(freqs, scale=bank.scale)
    else:
        points, axis = mel_to_hz(edges_mel, scale=bank.scale), freqs
    lower, centre, upper = points[:-2, None], points[1:-1, None], points[2:, None]
    rising = (axis[None, :] - lower) / (centre - lower)
    falling = (upper - axis[None, :]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if bank.norm == "slaney":
        hz = mel_to_hz(edges_mel, scale=bank.scale)
        weights *= (2.0 / (hz[2:] - hz[:-2]))[:, None]
    if bank.zero_dc:
        weights[:, 0] = 0.0
    if bank.zero_nyquist:
        weights[:, -1] = 0.0
    return weights


@functools.lru_cache(maxsize=64)
def _cached_matrix(bank: Filterbank, sample_rate: int, n_fft: int) -> np.ndarray:
    kind = getattr(bank, "kind", None)
    if kind == "bands":
        matrix = band_matrix(bank, sample_rate=sample_rate, n_fft=n_fft)  # type: ignore[arg-type]
    elif kind == "mel":
        matrix = mel_matrix(bank, sample_rate=sample_rate, n_fft=n_fft)  # type: ignore[arg-type]
    else:
        raise SpecError(f"unsupported filterbank {bank!r}; use BandFilterbank or MelFilterbank.")
    matrix.setflags(write=False)
    return matrix


def filterbank_matrix(bank: Filterbank, *, framing: Framing) -> np.ndarray:
    """The (read-only, cached) matrix of ``bank`` on ``framing``'s FFT grid.

    Returns
    -------
    np.ndarray, shape (n_bands, n_fft // 2 + 1)
    """
    return _cached_matrix(bank, framing.sample_rate, framing.n_fft)


def reference_gain(framing: Framing, reference: str) -> float:
    """Factor applied to filterbank *power* so the stored value has the named reference.

    ``"mean_square"``: ``2 / (n_fft * sum(w**2))``. For a stationary signal the
    band value is then the signal's mean square within the band, so a
    full-scale sine reads 0.5 (-3.01 dB) and Parseval holds across bands. It
    equals Cense's ``rms = sqrt(sum X / 2) / (N / 2) * ec`` squared.
    """
    if reference == "raw":
        return 1.0
    w = window(framing)
    return 2.0 / (framing.n_fft * float(np.sum(w**2)))
