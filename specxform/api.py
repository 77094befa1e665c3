"""High-level NumPy API: compute a representation from audio, transcode between representations.

Names are looked up in the process-wide plugin registry
(:func:`specxform.plugins.get_registry`); a :class:`Representation` can be
passed instead. Front ends and transcoders are built once per spec and cached,
so calling :func:`compute` or :func:`transcode` in a loop costs only the
computation itself.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from specxform import plugins
from specxform.audio import check_audio, check_sample_rate, load_audio, resample, warn_bandwidth
from specxform.errors import CheckpointError, InputError, InputWarning
from specxform.io import check_levels
from specxform.representations.frontend import RepresentationTransform
from specxform.representations.specs import Representation
from specxform.transcoders.pinv import PinvTranscoder

if TYPE_CHECKING:
    from specxform.transcoders.students import Transcoder


def representation(rep: str | Representation) -> Representation:
    """``rep`` itself, or the registered representation of that name.

    Raises
    ------
    UnknownNameError
        If no installed plugin registers ``rep``; the message suggests the closest names.
    """
    if isinstance(rep, Representation):
        return rep
    return plugins.get_registry().representation(rep)


@functools.lru_cache(maxsize=32)
def transform(rep: Representation) -> RepresentationTransform:
    """The (cached) front end computing ``rep`` from audio at ``rep.sample_rate``."""
    return RepresentationTransform(rep).eval()


def transcoder(source: Representation, target: Representation, method: str = "pinv"
               ) -> PinvTranscoder:
    """The (cached) PINV transcoder from ``source`` to ``target`` with ``method``."""
    return _transcoder(source, target, method)


@functools.lru_cache(maxsize=32)
def _transcoder(source: Representation, target: Representation, method: str) -> PinvTranscoder:
    # Keyed on positional arguments only, so a default and an explicit "pinv" share one entry.
    return PinvTranscoder(source, target, method=method).eval()


def compute(rep: str | Representation, audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Compute a representation from a waveform.

    Parameters
    ----------
    rep : str or Representation
        Registered name (e.g. ``"cense"``, ``"pann"``) or a spec.
    audio : np.ndarray, shape (samples,) or (batch, samples)
        Mono waveform, full scale = 1.
    sample_rate : int
        Sample rate of ``audio`` in Hz, at least
        :data:`~specxform.audio.MIN_SAMPLE_RATE`; resampled (polyphase) to
        ``rep.sample_rate``. Bands of ``rep`` above its Nyquist frequency get
        an :class:`~specxform.errors.InputWarning`.

    Returns
    -------
    np.ndarray, shape (frames, bands) or (batch, frames, bands), float32
        Values in ``rep.unit``; ``frames == rep.n_frames(samples at rep.sample_rate)``.
    """
    spec = representation(rep)
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer) or (
        sample_rate <= 0
    ):
        raise InputError(f"sample_rate must be a positive integer in Hz, got {sample_rate!r}.")
    check_sample_rate(int(sample_rate))
    warn_bandwidth(spec, int(sample_rate))
    audio = check_audio(audio)
    audio = resample(audio, orig_sr=int(sample_rate), target_sr=spec.sample_rate)
    with torch.inference_mode():
        out = transform(spec)(torch.from_numpy(np.ascontiguousarray(audio)))
    return out.numpy()


def compute_file(rep: str | Representation, path: str | Path) -> np.ndarray:
    """Compute a representation from an audio file (WAV, FLAC, OGG; downmixed to mono).

    Returns
    -------
    np.ndarray, shape (frames, bands), float32
    """
    spec = representation(rep)
    audio, sr = load_audio(path)  # compute() resamples, after checking the file's own rate
    try:
        return compute(spec, audio, sr)
    except (InputError, InputWarning) as exc:  # e.g. a clip too short for one frame: name it
        raise InputError(f"{path}: {exc}") from exc


def transcode(levels: np.ndarray, source: str | Representation, target: str | Representation,
              method: str = "pinv", *, checkpoint: str | Path | None = None) -> np.ndarray:
    """Transcode source levels into the target representation.

    Parameters
    ----------
    levels : np.ndarray, shape (frames, source bands) or (batch, frames, source bands)
        Source values in ``source.unit``.
    source, target : str or Representation
        E.g. ``"cense"`` and ``"pann"``.
    method : {"pinv", "nnls", "ridge"}
        Inversion of the source filterbank (see :mod:`specxform.transcoders.pinv`).
    checkpoint : path, optional
        A trained transcoder (``specxform train``): its PINV and student replace
        ``method``; its source and target must be ``source`` and ``target``.

    Returns
    -------
    np.ndarray, shape (target frames, target bands) or (batch, target frames, target bands)
        float32 in ``target.unit``; ``target frames == transcoder(...).target_frames(frames)``.
    """
    src, tgt = representation(source), representation(target)
    checked = check_levels(levels, src, name="levels")
    model = transcoder(src, tgt, method) if checkpoint is None else trained(checkpoint)
    if checkpoint is not None and (model.source, model.target) != (src, tgt):
        raise CheckpointError(
            f"{checkpoint} transcodes {model.source.name!r} -> {model.target.name!r} "
            f"(as defined when it was trained), not {src.name!r} -> {tgt.name!r}; "
            "pass the matching `source` and `target`, or another checkpoint."
        )
    with torch.inference_mode():
        out = model(torch.from_numpy(np.ascontiguousarray(checked)))
    if not torch.isfinite(out).all():
        raise _non_finite(checked, src, out, checkpoint)
    return out.numpy()


#: Largest level (dB) whose power 10**(L/10) float32 holds (10 log10 of its largest value).
FLOAT32_MAX_DB = 10 * float(np.log10(np.finfo(np.float32).max))


def _non_finite(levels: np.ndarray, source: Representation, out: torch.Tensor,
                checkpoint: str | Path | None) -> InputError | CheckpointError:
    """The error that names why finite levels gave NaN or infinite values."""
    low, high = float(levels.min()), float(levels.max())
    bad = int((~torch.isfinite(out)).sum())
    if source.scaling.log == "db" and high > FLOAT32_MAX_DB - 20:
        return InputError(
            f"the levels overflowed: they range from {low:.3g} to {high:.3g} dB, and the power "
            f"of levels above about {FLOAT32_MAX_DB - 20:.0f} dB does not fit in float32 "
            f"({bad} output values became NaN or infinite); these are not {source.name!r} levels "
            f"in {source.unit}: check their unit and scale."
        )
    if checkpoint is not None:
        return CheckpointError(
            f"{checkpoint}: its transcoder gave {bad} NaN or infinite values from finite levels "
            f"({low:.3g} to {high:.3g} dB); the checkpoint is damaged or its training diverged: "
            "use another checkpoint."
        )
    return InputError(
        f"transcoding finite levels ({low:.3g} to {high:.3g}) gave {bad} NaN or infinite "
        "values; please report this with the file."
    )


def check_weights(module: torch.nn.Module, checkpoint: str | Path, what: str = "model") -> None:
    """Refuse a checkpoint whose weights hold NaN or infinity (a diverged training run).

    Raises
    ------
    CheckpointError
        Naming the checkpoint, how many values are bad and the first tensor holding them.
    """
    bad, first = 0, None
    for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
        if tensor.is_floating_point():
            n = int((~torch.isfinite(tensor)).sum())
            if n and first is None:
                first = name
            bad += n
    if bad:
        raise CheckpointError(
            f"{checkpoint}: its {what} holds {bad} NaN or infinite weights (first in {first!r}); "
            "its training diverged or the file was damaged: train again (e.g. with a lower "
            "`lr`), or give another checkpoint."
        )


def trained(checkpoint: str | Path) -> Transcoder:
    """The trained transcoder (PINV + student, eval mode) of a checkpoint, cached per path.

    ``checkpoint`` is a file, a run folder or the name of a shipped transcoder
    (``"cense-yamnet"``).
    """
    from specxform.training.checkpoint import resolve_checkpoint

    return _trained(str(resolve_checkpoint(checkpoint).resolve()))


@functools.lru_cache(maxsize=4)
def _trained(checkpoint: str) -> Transcoder:
    from specxform.training.checkpoint import load_student  # deferred: torch and the cache

    model = load_student(checkpoint)
    check_weights(model, checkpoint, "transcoder")
    return model


def mel_mse(transcoded: np.ndarray, true: np.ndarray) -> float:
    """Mean squared difference between a transcoded and a true Mel (the paper's Mel MSE).

    Parameters
    ----------
    transcoded, true : np.ndarray, shape (..., frames, bands)
        Same bands; when the frame counts differ (a clip length that is not a
        whole number of source frames), only the frames both hold are compared.

    Returns
    -------
    float
        In the target's unit squared (dB^2 for PANN, ln^2 for YAMNet).
    """
    a, b = np.asarray(transcoded, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if a.ndim < 2 or a.shape[:-2] != b.shape[:-2] or a.shape[-1] != b.shape[-1]:
        raise InputError(
            f"cannot compare Mels of shapes {a.shape} and {b.shape}; both must be "
            "(..., frames, bands) with the same bands."
        )
    n = min(a.shape[-2], b.shape[-2])
    if n == 0:
        raise InputError("cannot compare Mels without frames; give at least one frame each.")
    return float(np.mean((a[..., :n, :] - b[..., :n, :]) ** 2))
