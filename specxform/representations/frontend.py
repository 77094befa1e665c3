"""Batched torch front end: audio to any :class:`~specxform.representations.specs.Representation`.

One module covers every registered representation, because a representation
is fully described by its spec: frame (pad, cut, window, zero-pad to n_fft),
FFT, power or magnitude, filterbank, reference gain, log, offset,
standardisation. Matrices are built once from the spec and stored as buffers,
so ``.to(device)`` moves them with the module (CPU now, CUDA where present).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from specxform.errors import InputError
from specxform.representations.filterbanks import filterbank_matrix, reference_gain, window
from specxform.representations.specs import Representation, Scaling


def preemphasise(audio: Tensor, coefficient: float) -> Tensor:
    """``y[n] = x[n] - a x[n - 1]`` along the last axis, one sample shorter (``a = 0``: ``x``)."""
    if not coefficient:
        return audio
    return audio[..., 1:] - coefficient * audio[..., :-1]


def frame_audio(audio: Tensor, rep: Representation) -> Tensor:
    """Cut ``audio`` (batch, samples) into frames (batch, frames, frame_length).

    The framing's pre-emphasis, if any, is applied first.
    """
    fr = rep.framing
    lag = 1 if fr.preemphasis else 0  # samples the pre-emphasis removes
    audio = preemphasise(audio, fr.preemphasis)
    n = audio.shape[-1]
    if fr.padding == "center":
        pad = fr.frame_length // 2
        if fr.pad_mode == "reflect" and n <= pad:
            shortest = pad + 1 + lag
            raise InputError(
                f"{rep.name}: {n + lag} samples are too short for reflect padding of {pad}; "
                f"give at least {shortest} samples ({shortest / fr.sample_rate:.3f} s)."
            )
        audio = nn.functional.pad(audio[:, None], (pad, pad), mode=fr.pad_mode)[:, 0]
    elif fr.padding == "end":
        total = (fr.n_frames(n + lag) - 1) * fr.hop_length + fr.frame_length
        audio = nn.functional.pad(audio, (0, max(0, total - n)))
    elif n < fr.frame_length:
        raise InputError(
            f"{rep.name}: {n + lag} samples are shorter than one frame ({fr.frame_length + lag}); "
            f"give at least {(fr.frame_length + lag) / fr.sample_rate:.3f} s or zero-pad the audio."
        )
    return audio.unfold(-1, fr.frame_length, fr.hop_length)


def apply_scaling(values: Tensor, scaling: Scaling, *, mean: Tensor | None = None,
                  std: Tensor | None = None) -> Tensor:
    """Log, offset and standardisation of non-negative filterbank outputs."""
    if scaling.log != "none":
        values = torch.clamp(values, min=scaling.floor) + scaling.add
        if scaling.log == "ln":
            values = torch.log(values)
        else:
            factor = 10.0 if scaling.domain == "power" else 20.0
            values = factor * torch.log10(values)
    values = values + scaling.offset
    if mean is not None and std is not None:
        values = (values - mean) / std
    return values


class RepresentationTransform(nn.Module):
    """Compute ``rep`` from mono audio at ``rep.sample_rate``.

    Input: (batch, samples) or (samples,) float tensor, full scale = 1.
    Output: (batch, frames, n_bands) (or (frames, n_bands)) in ``rep.unit``.
    """

    # Buffers, declared for type checkers (register_buffer sets them).
    weights: Tensor
    window: Tensor
    mean: Tensor | None
    std: Tensor | None

    def __init__(self, rep: Representation) -> None:
        super().__init__()
        self.rep = rep
        fr = rep.framing
        matrix = filterbank_matrix(rep.filterbank, framing=fr)
        if rep.scaling.domain == "power":
            matrix = matrix * reference_gain(fr, rep.scaling.reference)
        # Only the bins a band touches are computed with the matmul.
        used = np.flatnonzero(matrix.any(axis=0))
        self.first_bin, self.last_bin = int(used[0]), int(used[-1]) + 1
        cols = matrix[:, self.first_bin : self.last_bin].T.copy()
        self.register_buffer("weights", torch.from_numpy(cols).float(), persistent=False)
        win = window(fr)[: fr.frame_length]
        self.register_buffer("window", torch.from_numpy(win).float(), persistent=False)
        for key in ("mean", "std"):
            values = getattr(rep.scaling, key)
            tensor = None if values is None else torch.tensor(values, dtype=torch.float32)
            self.register_buffer(key, tensor, persistent=False)

    def spectrum(self, audio: Tensor) -> Tensor:
        """Power or magnitude spectrum (batch, frames, bins) of the used bins."""
        fr = self.rep.framing
        frames = frame_audio(audio, self.rep) * self.window
        spec = torch.fft.rfft(frames, n=fr.n_fft)[..., self.first_bin : self.last_bin]
        power = spec.real.square() + spec.imag.square()
        return power if self.rep.scaling.domain == "power" else power.sqrt()

    def forward(self, audio: Tensor) -> Tensor:
        squeeze = audio.dim() == 1
        if squeeze:
            audio = audio[None]
        if audio.dim() != 2:
            raise InputError(
                f"{self.rep.name}: expected audio of shape (batch, samples), "
                f"got {tuple(audio.shape)}."
            )
        bands = self.spectrum(audio.to(self.weights.dtype)) @ self.weights
        out = apply_scaling(bands, self.rep.scaling, mean=self.mean, std=self.std)
        return out[0] if squeeze else out
