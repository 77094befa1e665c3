"""Side-by-side PNG of a source spectrogram, its PINV transcoding and the true Mel.

Figures are built with matplotlib's object API on the Agg canvas (no pyplot,
no global state, no display needed) and written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from specxform.errors import InputError
from specxform.filterbanks import hz_to_mel, mel_to_hz
from specxform.io import atomic_write, check_levels
from specxform.specs import BandFilterbank, Representation

#: Number of labelled frequency ticks per panel.
_TICKS = 6


def band_centres(rep: Representation) -> np.ndarray:
    """Centre frequency in Hz of each band of ``rep``, shape (n_bands,).

    Band filterbanks give their nominal centres; Mel banks the peaks of their
    triangles (equally spaced in Mel between ``fmin`` and ``fmax``).
    """
    bank = rep.filterbank
    if isinstance(bank, BandFilterbank):
        return np.asarray(bank.centres)
    mels = np.linspace(hz_to_mel(bank.fmin, scale=bank.scale),
                       hz_to_mel(bank.fmax, scale=bank.scale), bank.n_mels + 2)
    return np.asarray(mel_to_hz(mels[1:-1], scale=bank.scale))


def _hz_label(hz: float) -> str:
    return f"{hz / 1000:.3g}k" if hz >= 1000 else f"{hz:.3g}"


def _panel(fig: Figure, ax: Axes, values: np.ndarray, rep: Representation, title: str,
           vmin: float, vmax: float) -> None:
    """Draw (frames, bands) with time in seconds on x and band centres on y."""
    fr = rep.framing
    n_frames, n_bands = values.shape
    half = fr.frame_seconds / 2
    extent = (float(fr.frame_centre(0)) - half, float(fr.frame_centre(n_frames - 1)) + half,
              -0.5, n_bands - 0.5)
    image = ax.imshow(values.T, origin="lower", aspect="auto", extent=extent,
                      vmin=vmin, vmax=vmax, cmap="magma", interpolation="nearest")
    ticks = np.unique(np.linspace(0, n_bands - 1, min(_TICKS, n_bands)).round().astype(int))
    ax.set_yticks(ticks, [_hz_label(f) for f in band_centres(rep)[ticks]])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("band centre (Hz)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label=rep.unit)


def plot_comparison(path: str | Path, *, levels: np.ndarray, source: Representation,
                    transcoded: np.ndarray, target: Representation,
                    true_mel: np.ndarray | None = None, method: str = "pinv",
                    title: str | None = None) -> Path:
    """Write a PNG: source levels, transcoded Mel and (optionally) true Mel side by side.

    Parameters
    ----------
    path : path-like
        Output PNG, written atomically.
    levels : np.ndarray, shape (source frames, source bands)
        Source spectrogram in ``source.unit``.
    source, target : Representation
    transcoded : np.ndarray, shape (target frames, target bands)
        The transcoded Mel in ``target.unit``.
    true_mel : np.ndarray, shape (target frames, target bands), optional
        The Mel computed from the audio; drawn with the same colour scale as ``transcoded``.
    method : str
        Transcoding method, for the panel title.
    title : str, optional
        Figure title.

    Returns
    -------
    Path
        ``path``.
    """
    levels = check_levels(levels, source, name="source levels")
    mels = [check_levels(transcoded, target, name="transcoded Mel")]
    if true_mel is not None:
        mels.append(check_levels(true_mel, target, name="true Mel"))
    if any(a.ndim != 2 for a in (levels, *mels)):
        raise InputError("plot_comparison draws one spectrogram per panel; give 2-D arrays.")
    vmin = float(min(m.min() for m in mels))
    vmax = float(max(m.max() for m in mels))
    fig = Figure(figsize=(5.0 * (1 + len(mels)), 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 1 + len(mels), squeeze=False)[0]
    _panel(fig, axes[0], levels, source, f"source: {source.name}",
           float(levels.min()), float(levels.max()))
    _panel(fig, axes[1], mels[0], target, f"{method.upper()} {target.name} Mel", vmin, vmax)
    if true_mel is not None:
        _panel(fig, axes[2], mels[1], target, f"true {target.name} Mel", vmin, vmax)
    if title:
        fig.suptitle(title)
    path = Path(path)
    with atomic_write(path) as tmp, tmp.open("wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    return path
