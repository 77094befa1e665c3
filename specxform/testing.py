"""Contract checks for representations and (source, target) pairs, for plugin authors.

specxform's own test suite runs these checks on every registered
representation and pair; a plugin's test suite can do the same for what it
registers::

    import pytest
    from specxform.plugins import get_registry
    from specxform.testing import check_pair, check_representation

    REGISTRY = get_registry()

    @pytest.mark.parametrize("rep", REGISTRY.representations(), ids=lambda r: r.name)
    def test_representation_contract(rep):
        check_representation(rep)

    @pytest.mark.parametrize("pair", REGISTRY.pairs(), ids=lambda p: p.name)
    def test_pair_contract(pair):
        check_pair(REGISTRY.representation(pair.source), REGISTRY.representation(pair.target))

Every check raises :class:`AssertionError` with a message that names the
representation (or pair), the property that failed and the numbers; none
needs pytest or data files (signals are generated with a fixed seed).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import NamedTuple

import attrs
import numpy as np
import torch

from specxform.errors import InputError
from specxform.filterbanks import filterbank_matrix
from specxform.frontend import RepresentationTransform
from specxform.pinv import METHODS, PinvTranscoder, invert_scaling
from specxform.specs import Representation

__all__ = [
    "Consistency",
    "band_power_consistency",
    "check_filterbank",
    "check_frontend",
    "check_pair",
    "check_pair_consistency",
    "check_pair_finite",
    "check_pair_frames",
    "check_representation",
    "check_round_trip",
    "contract_signals",
]

#: Input lengths in seconds the contract feeds to every front end.
DURATIONS = (1.0, 10.0)
#: Relative tolerance of exact identities evaluated in float64.
EXACT_RTOL = 1e-6


def contract_signals(sample_rate: int, seconds: float, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Waveforms every representation and pair must handle, at ``sample_rate``.

    Parameters
    ----------
    sample_rate : int
        Sample rate in Hz.
    seconds : float
        Duration in seconds.
    seed : int
        Seed of the noise generator (the signals are deterministic).

    Returns
    -------
    dict of str to np.ndarray, each of shape (round(seconds * sample_rate),), float32
        ``"silence"`` (all zeros), ``"noise"`` (white noise at full scale,
        peak 1), ``"clipped"`` (noise amplified 8x and hard-clipped at +-1)
        and ``"gaps"`` (noise, silence and a 1 kHz sine in turn: level steps
        of over 100 dB between frames and bands).
    """
    n = round(seconds * sample_rate)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(n)
    t = np.arange(n) / sample_rate
    third = np.arange(n) * 3 // max(n, 1)  # 0, 1, 2 over the three thirds
    gaps = np.where(third == 0, 0.3 * noise, np.where(third == 2, np.sin(2e3 * np.pi * t), 0.0))
    signals = {
        "silence": np.zeros(n),
        "noise": noise / np.abs(noise).max(initial=1.0),
        "clipped": np.clip(8.0 * noise / np.abs(noise).max(initial=1.0), -1.0, 1.0),
        "gaps": gaps,
    }
    return {name: x.astype(np.float32) for name, x in signals.items()}


# -- representations ------------------------------------------------------------------


def check_round_trip(rep: Representation) -> None:
    """``from_dict(to_dict())`` (also through JSON) gives back an equal, equally hashed spec."""
    data = rep.to_dict()
    for label, plain in (("dict", data), ("JSON", json.loads(json.dumps(data)))):
        back = Representation.from_dict(plain)
        changed = [f.name for f in attrs.fields(Representation)
                   if getattr(back, f.name) != getattr(rep, f.name)]
        if type(back) is not type(rep):
            changed.insert(0, f"type {type(rep).__name__}")
        assert back == rep, f"{rep.name}: the {label} round trip changed the spec: {changed}"
        assert hash(back) == hash(rep), f"{rep.name}: the {label} round trip changed the hash"


def check_filterbank(rep: Representation) -> None:
    """The derived matrix is (n_bands, n_fft // 2 + 1), finite, non-negative, read-only,
    with at least one FFT bin per band."""
    matrix = filterbank_matrix(rep.filterbank, framing=rep.framing)
    expected = (rep.n_bands, rep.framing.n_bins)
    assert matrix.shape == expected, f"{rep.name}: matrix shape {matrix.shape}, expected {expected}"
    assert np.isfinite(matrix).all(), f"{rep.name}: the filterbank matrix is not finite"
    assert (matrix >= 0).all(), f"{rep.name}: the filterbank matrix has negative weights"
    assert not matrix.flags.writeable, f"{rep.name}: the cached matrix must be read-only"
    empty = np.flatnonzero(~matrix.any(axis=1))
    assert empty.size == 0, f"{rep.name}: bands {empty.tolist()} hold no FFT bin"


def check_frontend(rep: Representation, *, durations: Iterable[float] = DURATIONS) -> None:
    """The front end keeps its promises on every contract signal.

    For each duration and signal: output (frames, n_bands) float32 with
    ``rep.n_frames(samples)`` frames, finite; a batch gives the rows computed
    one by one. Inputs shorter than a frame either work or raise
    :class:`~specxform.errors.InputError` naming the representation.
    """
    transform = RepresentationTransform(rep)
    for seconds in durations:
        signals = contract_signals(rep.sample_rate, seconds)
        batch = torch.from_numpy(np.stack(list(signals.values())))
        out = transform(batch)
        n = batch.shape[-1]
        expected = (len(signals), rep.n_frames(n), rep.n_bands)
        assert tuple(out.shape) == expected, (
            f"{rep.name}: {n} samples gave shape {tuple(out.shape)}, expected {expected}"
        )
        assert out.dtype == torch.float32, f"{rep.name}: output dtype {out.dtype}, expected float32"
        for name, row in zip(signals, out, strict=True):
            assert torch.isfinite(row).all(), f"{rep.name}: non-finite output for {name}"
        single = transform(batch[1])
        gap = float((single - out[1]).abs().max())
        assert gap < 1e-3, f"{rep.name}: batched and single outputs differ by {gap:.3g}"
    _check_short_inputs(rep, transform)


def _check_short_inputs(rep: Representation, transform: RepresentationTransform) -> None:
    for n in sorted({1, 16, rep.framing.frame_length // 2, rep.framing.frame_length}):
        try:
            out = transform(torch.ones(n) * 0.5)
        except InputError as exc:
            assert rep.name in str(exc), f"{rep.name}: the error for {n} samples omits the name"
            continue
        assert out.shape[0] == rep.n_frames(n), (
            f"{rep.name}: {n} samples gave {out.shape[0]} frames, expected {rep.n_frames(n)}"
        )
        assert torch.isfinite(out).all(), f"{rep.name}: non-finite output for {n} samples"


def check_representation(rep: Representation) -> None:
    """All representation checks: round trip, filterbank, front end."""
    check_round_trip(rep)
    check_filterbank(rep)
    check_frontend(rep)


# -- pairs ----------------------------------------------------------------------------


def _source_levels(source: Representation, audio: np.ndarray) -> torch.Tensor:
    return RepresentationTransform(source)(torch.from_numpy(audio))


class Consistency(NamedTuple):
    """Band powers before and after a PINV round trip (see :func:`band_power_consistency`)."""

    power: np.ndarray  # (frames, bands): raw source band powers P
    reconstructed: np.ndarray  # (frames, bands): group_columns @ S
    unclipped: np.ndarray | None  # (frames, bands): the same before clipping; None for nnls
    psd: np.ndarray  # (frames, groups): the reconstructed group PSD S


def band_power_consistency(transcoder: PinvTranscoder, levels: torch.Tensor) -> Consistency:
    """Source band powers and the band powers of the transcoder's reconstructed spectrum.

    Follows the model of :mod:`specxform.pinv`: the source levels map back to
    raw band powers ``P`` (inverse scaling), the transcoder reconstructs a
    PSD ``S`` (mean square per Hz) per bin group, and the source filterbank
    applied to it gives ``group_columns @ S``. Runs on a float64 copy of the
    transcoder, so that the check measures the algebra, not float32 rounding
    of the levels.

    Parameters
    ----------
    transcoder : PinvTranscoder
    levels : torch.Tensor, shape (frames, source bands)
        Source levels in the source's unit.

    Returns
    -------
    Consistency
        NumPy arrays of shape (frames, source bands), the PSD (frames, groups).
    """
    model = copy.deepcopy(transcoder).double()
    batch = levels.double()[None]
    power = invert_scaling(batch, model.source.scaling, gain=model.source_gain,
                           mean=model.src_mean, std=model.src_std)
    psd = model.group_psd(batch)[0].numpy()
    columns = model.mats.group_columns.T
    unclipped = None
    if model.inverse_t is not None:
        unclipped = (power @ model.inverse_t)[0].numpy() @ columns
    return Consistency(power[0].numpy(), psd @ columns, unclipped, psd)


def check_pair_consistency(source: Representation, target: Representation, method: str,
                           *, seconds: float = 1.0) -> None:
    """The reconstructed spectrum gives back the source band powers, as ``method`` promises.

    ``"nnls"``: exactly, since levels computed from audio always have an
    exact non-negative solution (the true spectrum's group means). ``"pinv"``
    and ``"ridge"``: the PSD is never negative and clipping only adds power
    (``group_columns >= 0``), so band powers are at least the unclipped
    solution's; for ``"pinv"`` the unclipped solution is exact when the
    source bands are linearly independent. Errors are relative to the frame's
    loudest band, the scale of the solvers' rounding.
    """
    transcoder = PinvTranscoder(source, target, method=method)
    pair = f"{source.name}->{target.name} ({method})"
    for name, audio in contract_signals(source.sample_rate, seconds).items():
        result = band_power_consistency(transcoder, _source_levels(source, audio))
        assert (result.psd >= 0).all(), f"{pair}: negative PSD reconstructed for {name}"
        scale = result.power.max(axis=1, keepdims=True)
        if result.unclipped is None:
            error = float((np.abs(result.reconstructed - result.power) / scale).max())
            assert error <= EXACT_RTOL, f"{pair}: band powers off by {error:.3g} for {name}"
            continue
        removed = float(((result.unclipped - result.reconstructed) / scale).max())
        assert removed <= EXACT_RTOL, f"{pair}: clipping removed power ({removed:.3g}) for {name}"
        if method == "pinv":
            error = float((np.abs(result.unclipped - result.power) / scale).max())
            rank = np.linalg.matrix_rank(transcoder.mats.group_columns)
            assert error <= EXACT_RTOL, (
                f"{pair}: the pseudo-inverse misses the band powers by {error:.3g} for {name}; "
                f"the source filterbank has rank {rank} for {source.n_bands} bands"
            )


def check_pair_frames(source: Representation, target: Representation, method: str,
                      *, durations: Iterable[float] = DURATIONS) -> None:
    """The transcoder yields as many frames as the target front end for the same audio."""
    transcoder = PinvTranscoder(source, target, method=method)
    for seconds in durations:
        audio = contract_signals(source.sample_rate, seconds)["noise"]
        out = transcoder(_source_levels(source, audio))
        expected = (target.n_frames(round(seconds * target.sample_rate)), target.n_bands)
        assert tuple(out.shape) == expected, (
            f"{source.name}->{target.name} ({method}): {seconds} s gave shape "
            f"{tuple(out.shape)}, the target front end gives {expected}"
        )


def check_pair_finite(source: Representation, target: Representation, method: str,
                      *, seconds: float = 1.0) -> None:
    """No NaN or infinity for silence, full-scale noise, clipped audio or level gaps."""
    transcoder = PinvTranscoder(source, target, method=method)
    for name, audio in contract_signals(source.sample_rate, seconds).items():
        out = transcoder(_source_levels(source, audio))
        assert torch.isfinite(out).all(), (
            f"{source.name}->{target.name} ({method}): non-finite output for {name}"
        )


def check_pair(source: Representation, target: Representation, *,
               methods: Iterable[str] = METHODS) -> None:
    """All pair checks (frames, finiteness, consistency) for each PINV method."""
    for method in methods:
        check_pair_frames(source, target, method)
        check_pair_finite(source, target, method)
        check_pair_consistency(source, target, method)
