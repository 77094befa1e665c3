"""PNG figures: a source spectrogram beside its PINV transcoding and the true Mel
(:func:`plot_comparison`), and class probabilities over time (:func:`plot_timeline`).

Figures are built with matplotlib's object API on the Agg canvas (no pyplot,
no global state, no display needed) and written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from specxform.errors import InputError
from specxform.io import atomic_write, check_levels
from specxform.representations.filterbanks import hz_to_mel, mel_to_hz
from specxform.representations.specs import BandFilterbank, Representation

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
    mels = [(f"{method.upper()} {target.name} Mel",
             check_levels(transcoded, target, name="transcoded Mel"))]
    if true_mel is not None:
        mels.append((f"true {target.name} Mel", check_levels(true_mel, target, name="true Mel")))
    return _levels_and_mels(path, levels=levels, source=source, mels=mels, target=target,
                            title=title, stacked=False)


def plot_timeline(path: str | Path, probs: np.ndarray, *, starts_s: np.ndarray,
                  ends_s: np.ndarray, row_labels: list[str], title: str | None = None) -> Path:
    """Write a PNG heat map of class probabilities over time (classes x windows).

    Each row is a class, each column a window; the colour is the probability
    on a fixed 0-1 scale, and a red frame marks the most probable shown class
    of each window. Values are printed in the cells when the grid is small.

    Parameters
    ----------
    path : path-like
        Output PNG, written atomically.
    probs : np.ndarray, shape (windows, rows)
        Probabilities in [0, 1] of the classes to show, in row order (top row first).
    starts_s, ends_s : np.ndarray, shape (windows,)
        Window bounds in seconds; consecutive windows must touch.
    row_labels : list of str
        One label per row.
    title : str, optional
        Figure title (may hold line breaks).

    Returns
    -------
    Path
        ``path``.
    """
    probs = np.asarray(probs, dtype=np.float64)
    starts, ends = np.asarray(starts_s, np.float64), np.asarray(ends_s, np.float64)
    if probs.size == 0 or probs.shape != (len(starts), len(row_labels)) or ends.shape != (
            starts.shape):
        raise InputError(
            f"plot_timeline: probs of shape {probs.shape} do not match {len(starts)} windows "
            f"and {len(row_labels)} row labels; give (windows, rows) probabilities."
        )
    if not np.allclose(starts[1:], ends[:-1]):
        raise InputError("plot_timeline: windows must be consecutive (each starts where the "
                         "previous one ends).")
    n_windows, n_rows = probs.shape
    fig = Figure(figsize=(min(16.0, 6.0 + 0.4 * n_windows), 1.6 + 0.35 * n_rows),
                 layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    image = ax.pcolormesh(np.append(starts, ends[-1]), np.arange(n_rows + 1) - 0.5, probs.T,
                          vmin=0.0, vmax=1.0, cmap="viridis")
    best = probs.argmax(axis=1)
    for w, row in enumerate(best):
        ax.add_patch(Rectangle((starts[w], row - 0.5), ends[w] - starts[w], 1.0, fill=False,
                               edgecolor="red", linewidth=2.0))
    if n_windows * n_rows <= 300:
        for (w, row), value in np.ndenumerate(probs):
            ax.text(float(starts[w] + ends[w]) / 2, row, f"{value:.2f}", ha="center", va="center",
                    fontsize=7, color="black" if value > 0.6 else "white",
                    fontweight="bold" if row == best[w] else "normal")
    ax.set_yticks(np.arange(n_rows), row_labels)
    ax.invert_yaxis()  # first row on top
    ax.set_xlabel("time (s)")
    fig.colorbar(image, ax=ax, label="probability", fraction=0.05, pad=0.02)
    if title:
        ax.set_title(title, fontsize=9)
    path = Path(path)
    with atomic_write(path) as tmp, tmp.open("wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    return path


def plot_mels(path: str | Path, *, levels: np.ndarray, source: Representation,
              mels: list[tuple[str, np.ndarray]], target: Representation,
              title: str | None = None) -> Path:
    """Write a PNG: the source levels, then several Mels of one target on one colour scale.

    Parameters
    ----------
    path : path-like
        Output PNG, written atomically.
    levels : np.ndarray, shape (source frames, source bands)
    source, target : Representation
    mels : list of (str, np.ndarray)
        Panel title and Mel ``(target frames, target bands)`` in ``target.unit``,
        top to bottom (e.g. PINV, transcoded, true).
    title : str, optional
        Figure title.

    Returns
    -------
    Path
        ``path``.
    """
    return _levels_and_mels(path, levels=levels, source=source, mels=mels, target=target,
                            title=title, stacked=True)


def _levels_and_mels(path: str | Path, *, levels: np.ndarray, source: Representation,
                     mels: list[tuple[str, np.ndarray]], target: Representation,
                     title: str | None, stacked: bool) -> Path:
    """The source levels, then each Mel on one shared colour scale, side by side or stacked."""
    levels = check_levels(levels, source, name="source levels")
    arrays = [check_levels(m, target, name=name) for name, m in mels]
    if not arrays or any(a.ndim != 2 for a in (levels, *arrays)):
        raise InputError("one 2-D spectrogram per panel, and at least one Mel, are needed; "
                         "give (frames, bands) arrays.")
    vmin, vmax = float(min(a.min() for a in arrays)), float(max(a.max() for a in arrays))
    n = 1 + len(arrays)
    size = (10.0, 2.6 * n) if stacked else (5.0 * n, 4.0)
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.subplots(n, 1, squeeze=False) if stacked else fig.subplots(1, n, squeeze=False)
    axes = grid[:, 0] if stacked else grid[0]
    _panel(fig, axes[0], levels, source, f"source: {source.name}",
           float(levels.min()), float(levels.max()))
    for ax, (name, _), values in zip(axes[1:], mels, arrays, strict=True):
        _panel(fig, ax, values, target, name, vmin, vmax)
    if title:
        fig.suptitle(title)
    path = Path(path)
    with atomic_write(path) as tmp, tmp.open("wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    return path
