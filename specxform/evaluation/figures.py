"""PNG figures of an evaluation (:mod:`specxform.evaluation.comparison`).

- :func:`plot_example`: the true Mel of one chunk above each method's
  transcoded Mel (one row per method, as the paper's Figure 5), one colour
  scale shared by every row, time in seconds from the start of the clip.
- :func:`plot_per_class`: per-class agreement, one bar chart per method: for
  each class that is the true top-1 of at least one evaluated file, the share
  of those files whose top-1 on the transcoded Mels is the same class.

Built with matplotlib's object API on the Agg canvas (no pyplot, no display)
and written atomically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from specxform.errors import InputError
from specxform.evaluation.plotting import band_centres
from specxform.io import atomic_write
from specxform.representations.specs import Representation

__all__ = ["plot_example", "plot_per_class"]

#: Labelled frequency ticks per panel.
_TICKS = 5


def _hz(value: float) -> str:
    return f"{value / 1000:.3g}k" if value >= 1000 else f"{value:.3g}"


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    with atomic_write(path) as tmp, tmp.open("wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    return path


def plot_example(path: str | Path, *, true_mel: np.ndarray, mels: Mapping[str, np.ndarray],
                 target: Representation, start_s: float = 0.0, title: str | None = None
                 ) -> Path:
    """Write a PNG: the true Mel, then one row per method, on one colour scale.

    Parameters
    ----------
    path : path-like
        Output PNG, written atomically.
    true_mel : np.ndarray, shape (frames, mels)
        In ``target.unit``.
    mels : mapping of str to np.ndarray
        Each method's Mel, same shape, in row order.
    target : Representation
        Gives the frame times and the band centres.
    start_s : float
        Time of the chunk's first sample in its clip (s).
    title : str, optional

    Returns
    -------
    Path
    """
    true_mel = np.asarray(true_mel, dtype=np.float64)
    rows = {"true Mel": true_mel} | {name: np.asarray(m, np.float64) for name, m in mels.items()}
    bad = {name: m.shape for name, m in rows.items() if m.shape != true_mel.shape}
    if true_mel.ndim != 2 or bad:
        raise InputError(f"plot_example needs (frames, mels) arrays of one shape; true Mel "
                         f"{true_mel.shape}, differing: {bad}.")
    finite = np.concatenate([m[np.isfinite(m)] for m in rows.values()])
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    n_frames, n_bands = true_mel.shape
    fr = target.framing
    half = fr.frame_seconds / 2
    extent = (start_s + float(fr.frame_centre(0)) - half,
              start_s + float(fr.frame_centre(n_frames - 1)) + half, -0.5, n_bands - 0.5)
    ticks = np.unique(np.linspace(0, n_bands - 1, min(_TICKS, n_bands)).round().astype(int))
    labels = [_hz(f) for f in band_centres(target)[ticks]]
    fig = Figure(figsize=(7.0, 1.2 + 1.7 * len(rows)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), 1, sharex=True, squeeze=False)[:, 0]
    images = []
    for ax, (name, values) in zip(axes, rows.items(), strict=True):
        image = ax.imshow(values.T, origin="lower", aspect="auto", extent=extent, vmin=vmin,
                          vmax=vmax, cmap="magma", interpolation="nearest")
        images.append(image)
        ax.set_yticks(ticks, labels)
        ax.set_ylabel("Hz")
        ax.set_title(name, fontsize=9, loc="left")
    axes[-1].set_xlabel("time (s)")
    fig.colorbar(images[0], ax=list(axes), label=target.unit, shrink=0.9)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_per_class(path: str | Path, per_class: Mapping[str, Mapping[int, tuple[int, int]]], *,
                   class_names: Sequence[str] | None = None, title: str | None = None) -> Path:
    """Write a PNG of per-class agreement: one bar chart per method, same classes on x.

    Parameters
    ----------
    path : path-like
        Output PNG, written atomically.
    per_class : mapping of str to mapping of int to (int, int)
        By method, :attr:`~specxform.evaluation.metrics.Metrics.per_class`: class index ->
        (files whose true top-1 is that class, those that agree).
    class_names : sequence of str, optional
        Names by class index (default ``class_<index>``).
    title : str, optional

    Returns
    -------
    Path
    """
    if not per_class:
        raise InputError("plot_per_class needs at least one method.")
    classes = sorted({c for counts in per_class.values() for c in counts})
    if not classes:
        raise InputError("plot_per_class: no class has an evaluated file.")
    names = [class_names[c] if class_names is not None and c < len(class_names)
             else f"class_{c}" for c in classes]
    x = np.arange(len(classes))
    fig = Figure(figsize=(max(6.0, 1.0 + 0.7 * len(classes)), 1.0 + 1.8 * len(per_class)),
                 layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(per_class), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (method, counts) in zip(axes, per_class.items(), strict=True):
        files = np.array([counts.get(c, (0, 0))[0] for c in classes], dtype=np.float64)
        agree = np.array([counts.get(c, (0, 0))[1] for c in classes], dtype=np.float64)
        share = np.divide(agree, files, out=np.zeros_like(files), where=files > 0)
        ax.bar(x, share, color="tab:blue")
        for i, (n, a) in enumerate(zip(files, agree, strict=True)):
            ax.text(i, min(share[i], 0.85) + 0.03, f"{a:.0f}/{n:.0f}", ha="center", fontsize=7)
        total = files.sum()
        ax.set_title(f"{method}: {agree.sum() / total:.0%} of {total:.0f} files agree",
                     fontsize=9, loc="left")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("agreement")
    axes[-1].set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    axes[-1].set_xlabel("class of the top-1 on the true Mels")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)
