r"""The PINV transcoder, derived from the two representations' definitions.

Given any source representation (power bands, e.g. third octaves) and any
target (a classifier's Mel front end), :class:`PinvTranscoder` rebuilds the
target from the source alone. Nothing is fitted and nothing is written per
pair: every matrix and constant below comes from the two specs.

Model. Let :math:`S(f)` be the one-sided power spectral density of the audio
(mean square per Hz). For a frame windowed by :math:`w` and an FFT of size
:math:`N` at rate :math:`f_s`, the expected power of bin :math:`k` is

.. math:: E|X_k|^2 = \tfrac{f_s}{2} \textstyle\sum_n w_n^2 \; S(f_k) = c\,S(f_k).

1. *Undo the source scaling*: standardisation, offset and log give the band
   values; dividing by the source reference gain :math:`g` gives raw powers
   :math:`P_b = \sum_k A_{bk} E|X_k|^2 = c_s \sum_k A_{bk} S(f_k)`.
2. *Invert the source filterbank* on the source FFT grid:
   :math:`\hat S = \operatorname{op}(P / c_s)` with ``op`` the Moore-Penrose
   pseudo-inverse of :math:`A` clipped at zero (``pinv``, the reference),
   a ridge-regularised inverse (``ridge``), or non-negative least squares
   (``nnls``). Bins with identical columns of :math:`A` get identical values,
   so the solve runs on one unknown per group of such bins (exactly the same
   result, 30x fewer unknowns for third octaves).
3. *Interpolate in time* at the target's frame centres, held constant
   beyond the first and last source centres. ``"log"`` (default) interpolates
   the log-PSD (geometric mean: an onset next to silence is not smeared over
   the silent half-frame: PANN Mel MSE 49.5 instead of 74.6 dB² over the
   102 excerpt clips);
   ``"linear"`` interpolates power.
4. *Resample in frequency*: :math:`S` at each target bin is the average of
   :math:`\hat S` over the bin's width :math:`[f_j - \Delta f_t/2, f_j + \Delta f_t/2]`;
   then :math:`E|X_j|^2 = c_t H_t(f_j) S(f_j)`, with :math:`H` the power response
   of the framing's pre-emphasis (:func:`preemphasis_response`, 1 without one; a
   source's :math:`H_s` weights its filterbank in step 2); magnitude targets take
   :math:`E|X_j| \approx \kappa \sqrt{E|X_j|^2}` with :math:`\kappa = 1` (``"rms"``) or
   :math:`\sqrt{\pi}/2` (``"rayleigh"``, the mean magnitude of Gaussian noise).
5. *Apply the target*: Mel matrix, reference gain, log, offset, standardisation,
   exactly as the target's own front end does.
"""

from __future__ import annotations

import functools
import math

import attrs
import numpy as np
import scipy.optimize
import scipy.sparse
import torch
from torch import Tensor, nn

from specxform.errors import InputError, SpecError
from specxform.representations.filterbanks import (
    fft_frequencies,
    filterbank_matrix,
    reference_gain,
    window,
)
from specxform.representations.frontend import apply_scaling
from specxform.representations.specs import Framing, Representation, Scaling

METHODS = ("pinv", "nnls", "ridge")
MAGNITUDE_MODELS = ("rms", "rayleigh")
INTERPOLATIONS = ("log", "linear")
#: PSD floor for log interpolation (mean square per Hz): -300 dB, far below any audio.
_PSD_FLOOR = 1e-30


def psd_gain(framing: Framing) -> float:
    """``c = (sr / 2) * sum(w**2)``: expected ``|X_k|**2`` per unit one-sided PSD."""
    return framing.sample_rate / 2 * float(np.sum(window(framing) ** 2))


def preemphasis_response(framing: Framing, frequencies: np.ndarray) -> np.ndarray:
    """Power response ``|1 - a exp(-2 pi i f / sr)|**2`` of ``framing``'s pre-emphasis.

    Parameters
    ----------
    framing : Framing
        Its ``preemphasis`` coefficient ``a`` (0: no filter, response 1).
    frequencies : np.ndarray, shape (n,)
        Frequencies in Hz.

    Returns
    -------
    np.ndarray, shape (n,)
        ``1 + a**2 - 2 a cos(2 pi f / sr)``: the factor by which the filter scales
        the PSD at each frequency (``(1 - a)**2`` at DC, ``(1 + a)**2`` at Nyquist).
    """
    a, omega = framing.preemphasis, 2 * np.pi * np.asarray(frequencies) / framing.sample_rate
    return 1.0 + a * a - 2.0 * a * np.cos(omega)


def invert_scaling(values: Tensor, scaling: Scaling, *, gain: float, mean: Tensor | None,
                   std: Tensor | None) -> Tensor:
    """Map stored values back to raw filterbank power (inverse of the front end's scaling)."""
    if scaling.domain != "power":
        raise SpecError(
            "PINV needs a source whose bands sum power; this source is in the magnitude domain. "
            "Define the source with Scaling(domain='power')."
        )
    if mean is not None and std is not None:
        values = values * std + mean
    values = values - scaling.offset
    if scaling.log == "db":
        values = torch.pow(10.0, values / 10.0)
    elif scaling.log == "ln":
        values = torch.exp(values)
    values = torch.clamp(values - scaling.add, min=0.0)
    return values / gain


def bin_groups(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group FFT bins whose filterbank columns are identical.

    Returns
    -------
    labels : np.ndarray, shape (n_bins,)
        Group index of each bin, or -1 for bins no band touches.
    columns : np.ndarray, shape (n_bands, n_groups)
        The shared column of each group.
    """
    cols = np.ascontiguousarray(matrix.T) + 0.0  # + 0.0 turns -0.0 into 0.0 for byte keys
    used = cols.any(axis=1)
    # One opaque key per column: sorting raw bytes is ~6x faster than np.unique(axis=0).
    keys = cols[used].view(np.dtype((np.void, cols.itemsize * cols.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    labels = np.full(cols.shape[0], -1)
    labels[used] = inverse.ravel()
    return labels, cols[used][first].T


def frequency_resampler(source: Framing, target: Framing) -> np.ndarray:
    """Average of a source-grid PSD over each target bin's width, shape (target bins, source bins).

    Each source bin ``k`` stands for ``[f_k - df_s/2, f_k + df_s/2)``; a target
    bin takes the overlap-weighted mean over ``[f_j - df_t/2, f_j + df_t/2)``.
    Frequencies the source grid does not cover count as zero.
    """
    fs_src = fft_frequencies(sample_rate=source.sample_rate, n_fft=source.n_fft)
    fs_tgt = fft_frequencies(sample_rate=target.sample_rate, n_fft=target.n_fft)
    d_src, d_tgt = source.bin_width, target.bin_width
    src_lo = np.maximum(fs_src - d_src / 2, 0.0)  # the DC bin only covers [0, df/2)
    src_hi = fs_src + d_src / 2
    tgt_lo, tgt_hi = fs_tgt - d_tgt / 2, fs_tgt + d_tgt / 2
    # Source intervals are sorted: each target bin overlaps one contiguous run of them, so
    # only that run is computed (the dense broadcast took ~1 s for a 32,000-point source).
    first = np.searchsorted(src_hi, tgt_lo, side="right")
    last = np.searchsorted(src_lo, tgt_hi, side="left")
    overlap = np.zeros((len(fs_tgt), len(fs_src)))
    for j, (k0, k1) in enumerate(zip(first, last, strict=True)):
        span = np.minimum(tgt_hi[j], src_hi[k0:k1]) - np.maximum(tgt_lo[j], src_lo[k0:k1])
        overlap[j, k0:k1] = np.clip(span, 0.0, None) / d_tgt
    return overlap


@functools.lru_cache(maxsize=256)
def time_interpolation(source: Framing, target: Framing, n_source: int, n_target: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation at target frame centres: left indices and right weights.

    Returns ``(index, weight)`` of shape (n_target,): target frame ``j`` is
    ``(1 - weight) * src[index] + weight * src[index + 1]`` (held at the ends).
    """
    t_src = source.frame_centre(np.arange(n_source))
    t_tgt = target.frame_centre(np.arange(n_target))
    pos = np.interp(t_tgt, t_src, np.arange(n_source, dtype=np.float64))
    index = np.minimum(np.floor(pos).astype(np.int64), max(n_source - 2, 0))
    weight = pos - index if n_source > 1 else np.zeros_like(pos)
    return index, weight


@attrs.frozen
class PinvMatrices:
    """The fixed operators of one (source, target, method), derived once (NumPy, float64)."""

    inverse: np.ndarray | None  # (n_groups, n_bands) for pinv/ridge, None for nnls
    group_columns: np.ndarray  # (n_bands, n_groups): source powers per unit group PSD
    group_sizes: np.ndarray  # (n_groups,)
    to_target: np.ndarray  # (n_target_bins_used, n_groups): target E|X|^2 per unit group PSD
    mel: np.ndarray  # (n_mels, n_target_bins_used), includes the target reference gain
    power_domain: bool


@functools.lru_cache(maxsize=32)
def derive_matrices(source: Representation, target: Representation, method: str,
                    ridge: float) -> PinvMatrices:
    """Derive every fixed matrix of the transcoder from the two specs."""
    if method not in METHODS:
        raise SpecError(f"unknown PINV method {method!r}; choose one of {', '.join(METHODS)}.")
    src, tgt = source.framing, target.framing
    bands = filterbank_matrix(source.filterbank, framing=src)
    if src.preemphasis:  # the source bands see H_s(f) S(f): fold H_s into the filterbank
        bands = bands * preemphasis_response(src, fft_frequencies(
            sample_rate=src.sample_rate, n_fft=src.n_fft))
    labels, _ = bin_groups(bands)
    n_groups = labels.max() + 1
    grouped = np.flatnonzero(labels >= 0)
    # Sparse bin -> group indicator: dense, it made 1 s frames (16,001 bins) take seconds.
    onehot = scipy.sparse.csr_array(
        (np.ones(len(grouped)), (grouped, labels[grouped])), shape=(bands.shape[1], n_groups)
    )
    sizes = np.bincount(labels[grouped], minlength=n_groups).astype(np.float64)
    # P_b = c_s * sum_k A_bk S_k with S constant within a group.
    columns = psd_gain(src) * (onehot.T @ bands.T).T
    inverse = None
    if method in ("pinv", "ridge"):
        # Minimum-norm over bins = weighted minimum norm over groups: u = sqrt(n) * S.
        scaled = columns / np.sqrt(sizes)
        if method == "pinv":
            inv_scaled = np.linalg.pinv(scaled)
        else:
            gram = scaled @ scaled.T
            lam = ridge * np.trace(gram) / gram.shape[0]
            inv_scaled = scaled.T @ np.linalg.inv(gram + lam * np.eye(gram.shape[0]))
        inverse = inv_scaled / np.sqrt(sizes)[:, None]
    resample = (onehot.T @ frequency_resampler(src, tgt).T).T  # target S per unit group S
    mel_full = filterbank_matrix(target.filterbank, framing=tgt)
    used = np.flatnonzero(mel_full.any(axis=0))
    power = target.scaling.domain == "power"
    gain = reference_gain(tgt, target.scaling.reference) if power else 1.0
    emphasis = preemphasis_response(
        tgt, fft_frequencies(sample_rate=tgt.sample_rate, n_fft=tgt.n_fft)[used])
    return PinvMatrices(
        inverse=inverse,
        group_columns=columns,
        group_sizes=sizes,
        to_target=psd_gain(tgt) * emphasis[:, None] * resample[used],
        mel=gain * mel_full[:, used],
        power_domain=power,
    )


class PinvTranscoder(nn.Module):
    """Source representation -> target representation, by the derived PINV.

    Input: (batch, source frames, source bands) in the source's unit.
    Output: (batch, target frames, target bands) in the target's unit, for
    the same duration (``target_frames(n)`` frames).

    Parameters
    ----------
    source, target : Representation
    method : {"pinv", "nnls", "ridge"}
    ridge : float
        Regularisation of ``"ridge"``, relative to the mean diagonal of the Gram matrix.
    magnitude : {"rayleigh", "rms"}
        How a magnitude target's ``E|X|`` follows from ``E|X|**2`` (see module doc).
        ``"rayleigh"`` (default) removes the +0.12 ln bias ``"rms"`` has on noise and
        lowers YAMNet Mel MSE on the 102 excerpt clips from 0.494 to 0.441.
    interpolation : {"log", "linear"}
        Domain of the time interpolation (see module doc).
    """

    # Buffers, declared for type checkers (register_buffer sets them).
    inverse_t: Tensor | None
    group_to_output: Tensor
    mel_t: Tensor
    src_mean: Tensor | None
    src_std: Tensor | None
    tgt_mean: Tensor | None
    tgt_std: Tensor | None

    def __init__(self, source: Representation, target: Representation, *, method: str = "pinv",
                 ridge: float = 1e-2, magnitude: str = "rayleigh",
                 interpolation: str = "log") -> None:
        super().__init__()
        if "source" not in source.roles or "target" not in target.roles:
            raise SpecError(
                f"{source.name!r} -> {target.name!r}: need a source and a target representation "
                f"(roles {sorted(source.roles)} and {sorted(target.roles)})."
            )
        if magnitude not in MAGNITUDE_MODELS:
            raise SpecError(f"magnitude must be one of {MAGNITUDE_MODELS}, got {magnitude!r}.")
        if interpolation not in INTERPOLATIONS:
            raise SpecError(
                f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}."
            )
        self.source, self.target, self.method = source, target, method
        self.interpolation = interpolation
        mats = derive_matrices(source, target, method, float(ridge))
        self.mats = mats
        self.kappa = math.sqrt(math.pi) / 2 if magnitude == "rayleigh" else 1.0
        self.source_gain = reference_gain(source.framing, source.scaling.reference)

        def buffer(name: str, value: np.ndarray | tuple[float, ...] | None) -> None:
            tensor = None if value is None else torch.as_tensor(
                np.asarray(value), dtype=torch.float32
            )
            self.register_buffer(name, tensor, persistent=False)

        buffer("inverse_t", None if mats.inverse is None else mats.inverse.T)
        if mats.power_domain:  # linear all the way: fuse group PSD -> Mel power
            buffer("group_to_output", (mats.mel @ mats.to_target).T)
        else:
            buffer("group_to_output", mats.to_target.T)
            buffer("mel_t", mats.mel.T)
        buffer("src_mean", source.scaling.mean)
        buffer("src_std", source.scaling.std)
        buffer("tgt_mean", target.scaling.mean)
        buffer("tgt_std", target.scaling.std)

    def target_frames(self, n_source_frames: int) -> int:
        """Target frames for the duration that ``n_source_frames`` source frames cover."""
        samples = self.source.framing.covered_samples(n_source_frames)
        target_samples = round(samples * self.target.sample_rate / self.source.sample_rate)
        return self.target.n_frames(target_samples)

    def group_psd(self, levels: Tensor) -> Tensor:
        """Non-negative PSD per bin group, (batch, frames, n_groups)."""
        power = invert_scaling(levels, self.source.scaling, gain=self.source_gain,
                               mean=self.src_mean, std=self.src_std)
        if self.inverse_t is not None:
            return torch.relu(power @ self.inverse_t)
        return self._nnls(power)

    def interpolate(self, psd: Tensor, n_target: int) -> Tensor:
        """Resample (batch, source frames, groups) to (batch, n_target, groups) in time."""
        n_src = psd.shape[1]
        index, weight = time_interpolation(self.source.framing, self.target.framing, n_src,
                                           n_target)
        idx = torch.from_numpy(index).to(psd.device)
        w = torch.from_numpy(weight).to(psd)[None, :, None]
        if self.interpolation == "log":
            psd = torch.log(psd + _PSD_FLOOR)
        left, right = psd[:, idx], psd[:, torch.clamp(idx + 1, max=n_src - 1)]
        psd = torch.lerp(left, right, w)
        return torch.exp(psd) if self.interpolation == "log" else psd

    def _nnls(self, power: Tensor) -> Tensor:
        # group_columns already map a group's PSD (not its total) to band powers.
        cols = self.mats.group_columns
        flat = power.reshape(-1, power.shape[-1]).double().cpu().numpy()
        psd = np.stack([scipy.optimize.nnls(cols, row)[0] for row in flat]) if len(flat) else (
            np.zeros((0, cols.shape[1]))
        )
        return torch.from_numpy(psd).to(power).reshape(*power.shape[:-1], -1)

    def forward(self, levels: Tensor) -> Tensor:
        squeeze = levels.dim() == 2
        if squeeze:
            levels = levels[None]
        self._check(levels)
        n_src = levels.shape[1]
        n_tgt = self.target_frames(n_src)
        if n_tgt < 1:
            raise InputError(
                f"{n_src} {self.source.name} frames cover too little audio for one "
                f"{self.target.name} frame; give at least "
                f"{self.target.framing.min_samples() / self.target.sample_rate:.3f} s."
            )
        psd = self.interpolate(self.group_psd(levels.float()), n_tgt)
        out = psd @ self.group_to_output
        if not self.mats.power_domain:
            out = (self.kappa * out.sqrt()) @ self.mel_t
        out = apply_scaling(out, self.target.scaling, mean=self.tgt_mean, std=self.tgt_std)
        return out[0] if squeeze else out

    def _check(self, levels: Tensor) -> None:
        if levels.dim() != 3 or levels.shape[-1] != self.source.n_bands:
            raise InputError(
                f"expected {self.source.name} levels of shape (batch, frames, "
                f"{self.source.n_bands}), got {tuple(levels.shape)}; check `source`."
            )
        if levels.shape[1] == 0:
            raise InputError(f"{self.source.name} levels hold no frames; give at least one frame.")
        if not torch.isfinite(levels).all():
            raise InputError(
                f"{self.source.name} levels contain NaN or infinite values; "
                "fill or drop those frames."
            )
