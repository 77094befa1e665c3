"""Classify audio with a teacher: per-window probabilities on true Mels and their clip mean.

Windows
    A clip is cut into consecutive windows of ``window_s`` seconds by
    :func:`specxform.training.cache.chunk_clip`, the chunking the training cache uses: a
    trailing part of at least half a window is zero-padded into one more window,
    a shorter trailing part is dropped, and a clip shorter than half a window
    still gives one zero-padded window. The audio is used at its recorded level
    (no peak normalisation), since a teacher's aux input may depend on it
    (SoundAQnet's loudness in sone).

Per window
    The teacher's target representation (its true Mel) is computed from the
    window's audio resampled to the representation's rate
    (:func:`specxform.api.transform`); a teacher with ``aux_inputs`` also gets
    ``teacher.aux_from_audio(window, sample_rate)`` from the window at the file's
    rate. The teacher's ``probs`` are the window's class probabilities.

Clip
    The clip's probabilities are the mean of its windows' probabilities, each
    window weighing the same: the averaging of per-second teacher outputs that
    the PtoPa-FC metric uses (SPEC.md section 6).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np
import torch
from torch import nn

from specxform.errors import InputError, PluginError, SpecError
from specxform.representations.specs import Representation

__all__ = [
    "Classification",
    "check_window",
    "classify_audio",
    "min_window_seconds",
    "timeline_classes",
    "top_k",
]

#: Windows per teacher call: bounds memory on long recordings.
_BATCH = 64


@attrs.frozen
class Classification:
    """A teacher's output on one clip, per window and for the whole clip.

    Attributes
    ----------
    probs : np.ndarray, shape (classes,)
        Clip probabilities: the mean of :attr:`window_probs` over windows.
    window_probs : np.ndarray, shape (windows, classes)
        Probabilities of each window, in time order, float64.
    starts_s, ends_s : np.ndarray, shape (windows,)
        Start and end of each window in seconds; the last window ends at the end
        of the clip when it was zero-padded.
    duration_s : float
        Length of the clip in seconds.
    """

    probs: np.ndarray
    window_probs: np.ndarray
    starts_s: np.ndarray
    ends_s: np.ndarray
    duration_s: float


def min_window_seconds(target: Representation, min_frames: int) -> float:
    """Shortest window, in seconds, whose ``target`` representation has ``min_frames`` frames.

    Parameters
    ----------
    target : Representation
        The teacher's input representation.
    min_frames : int
        The teacher's ``min_frames``.

    Returns
    -------
    float
        ``samples / target.sample_rate`` for the fewest samples that give
        ``min_frames`` frames (0.975 s for YAMNet's 96 frames).
    """
    fr = target.framing
    samples = max(fr.covered_samples(max(1, min_frames)), fr.min_samples())
    return samples / fr.sample_rate


def check_window(teacher: nn.Module, target: Representation, window_s: float) -> None:
    """Check that windows of ``window_s`` seconds can be classified by ``teacher``.

    Raises
    ------
    InputError
        If ``window_s`` is not positive and finite, or gives fewer ``target``
        frames than the teacher's ``min_frames`` (the message gives the shortest
        usable window).
    PluginError
        If the teacher has ``aux_inputs`` but no ``aux_from_audio``.
    """
    if not (math.isfinite(window_s) and window_s > 0):
        raise InputError(f"window must be a positive number of seconds, got {window_s!r}.")
    min_frames = int(getattr(teacher, "min_frames", 1))
    shortest = min_window_seconds(target, min_frames)
    if window_s < shortest:
        frames = target.n_frames(round(window_s * target.sample_rate))
        raise InputError(
            f"a {window_s:g} s window gives {frames} {target.name!r} frames, but the teacher "
            f"needs at least {min_frames}; use a window of {shortest:g} s or more."
        )
    aux_inputs = list(getattr(teacher, "aux_inputs", ()))
    if aux_inputs and not callable(getattr(teacher, "aux_from_audio", None)):
        raise PluginError(
            f"teacher {type(teacher).__name__} needs aux inputs {aux_inputs} but "
            "defines no aux_from_audio(audio, sample_rate); add it to the teacher class."
        )


def _windows(audio: np.ndarray, sample_rate: int, target: Representation, window_s: float
             ) -> tuple[np.ndarray, np.ndarray]:
    """``(windows, samples)`` at the target's rate and at ``sample_rate``."""
    from specxform.training.cache import Chunking, chunk_clip

    chunking = Chunking(seconds=window_s, normalise="none", min_peak=0.0)
    try:
        (at_target, raw), _ = chunk_clip(audio, sample_rate, rates=(target.sample_rate,),
                                         chunking=chunking)
    except SpecError as exc:  # the window is not a whole number of samples at the target rate
        raise InputError(f"window of {window_s:g} s: {exc}") from exc
    return at_target, raw


def _aux(teacher: Any, raw: np.ndarray, sample_rate: int) -> dict[str, torch.Tensor]:
    """Stacked aux inputs of the windows (``aux_from_audio`` exists: see check_window)."""
    names = tuple(getattr(teacher, "aux_inputs", ()))
    if not names:
        return {}
    values = [teacher.aux_from_audio(window, sample_rate) for window in raw]
    return {n: torch.from_numpy(np.stack([np.asarray(v[n], np.float32) for v in values]))
            for n in names}


def _probs(teacher: nn.Module, mel: torch.Tensor, aux: Mapping[str, torch.Tensor]
           ) -> np.ndarray:
    out = []
    with torch.inference_mode():
        for start in range(0, len(mel), _BATCH):
            rows = slice(start, start + _BATCH)
            batch_aux = {n: a[rows] for n, a in aux.items()}
            out.append(teacher(mel[rows], batch_aux or None).probs.double().numpy())
    return np.concatenate(out)


def classify_audio(teacher: nn.Module, target: Representation, audio: np.ndarray,
                   sample_rate: int, *, window_s: float = 1.0) -> Classification:
    """Run ``teacher`` on the true ``target`` Mels of consecutive windows of a clip.

    Parameters
    ----------
    teacher : nn.Module
        A teacher (:class:`specxform.teachers.base.Teacher`) consuming ``target``,
        in eval mode.
    target : Representation
        The teacher's input representation.
    audio : np.ndarray, shape (samples,)
        Mono waveform, digital full scale 1.
    sample_rate : int
        Rate of ``audio`` in Hz.
    window_s : float
        Window length in seconds (see the module docstring for the last window).

    Returns
    -------
    Classification
        Per-window probabilities and their mean.

    Raises
    ------
    InputError
        If the window is too short for the teacher, is not a whole number of
        samples at the target's rate, or the audio is invalid.
    """
    from specxform import api
    from specxform.audio import check_audio, check_sample_rate

    check_window(teacher, target, window_s)
    check_sample_rate(sample_rate)
    audio = check_audio(audio)
    if audio.ndim != 1:
        raise InputError(f"classify one clip at a time: expected (samples,), got {audio.shape}.")
    at_target, raw = _windows(audio, sample_rate, target, window_s)
    with torch.inference_mode():
        mel = api.transform(target)(torch.from_numpy(np.ascontiguousarray(at_target)))
    window_probs = _probs(teacher, mel, _aux(teacher, raw, sample_rate))
    duration = len(audio) / sample_rate
    starts = np.arange(len(window_probs)) * window_s
    return Classification(
        probs=window_probs.mean(axis=0), window_probs=window_probs, starts_s=starts,
        ends_s=np.minimum(starts + window_s, duration),
        duration_s=duration,
    )


def top_k(probs: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest probabilities, highest first (ties: lower index first).

    Parameters
    ----------
    probs : np.ndarray, shape (classes,)
    k : int
        At least 1; more than ``classes`` gives all of them.

    Returns
    -------
    np.ndarray of int, shape (min(k, classes),)
    """
    probs = np.asarray(probs)
    if probs.ndim != 1:
        raise InputError(f"top_k expects one probability vector (classes,), got {probs.shape}.")
    if k < 1:
        raise InputError(f"k must be >= 1, got {k}.")
    order = np.lexsort((np.arange(len(probs)), -probs))  # last key is primary
    return order[:k]


def timeline_classes(result: Classification, k: int) -> np.ndarray:
    """Classes worth drawing over time: the clip's top ``k`` and every window's top class.

    Parameters
    ----------
    result : Classification
    k : int
        Number of clip-level top classes, at least 1.

    Returns
    -------
    np.ndarray of int
        Class indices ordered by clip probability, highest first, without repeats.
    """
    chosen = set(top_k(result.probs, k).tolist()) | set(result.window_probs.argmax(axis=1).tolist())
    return np.array([i for i in top_k(result.probs, len(result.probs)) if i in chosen])
