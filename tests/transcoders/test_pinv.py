"""The derived PINV: properties that follow from its model, for every registered pair and
method, plus its building blocks and a quality sanity check on real clips.

Frame counts (1 s and 10 s), finiteness (silence, full-scale noise, clipped audio, level
gaps) and band-power consistency on those signals are the pair contract, run for every
registered pair and method by tests/test_contracts.py; this file adds real audio.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import attrs
import numpy as np
import pytest
import torch

from specxform.audio import load_audio, resample
from specxform.errors import InputError, SpecError
from specxform.plugins import get_registry
from specxform.registry import PairEntry
from specxform.representations.filterbanks import filterbank_matrix, window
from specxform.representations.frontend import RepresentationTransform, apply_scaling
from specxform.representations.specs import BandFilterbank, Representation, Scaling
from specxform.testing import EXACT_RTOL, band_power_consistency, contract_signals
from specxform.transcoders.pinv import (
    METHODS,
    PinvTranscoder,
    bin_groups,
    derive_matrices,
    frequency_resampler,
    invert_scaling,
    psd_gain,
    time_interpolation,
)

REGISTRY = get_registry()
PAIRS = REGISTRY.pairs()
CENSE = REGISTRY.representation("cense")
COMPANION = REGISTRY.representation("cense_companion")
PANN = REGISTRY.representation("pann")
YAMNET = REGISTRY.representation("yamnet")
SR = 32_000

pair_and_method = pytest.mark.parametrize(
    ("pair", "method"), [(p, m) for p in PAIRS for m in METHODS],
    ids=[f"{p.name}-{m}" for p in PAIRS for m in METHODS],
)


def reps(pair: PairEntry) -> tuple[Representation, Representation]:
    return REGISTRY.representation(pair.source), REGISTRY.representation(pair.target)


def levels_of(rep: Representation, audio: np.ndarray) -> torch.Tensor:
    return RepresentationTransform(rep)(torch.from_numpy(np.asarray(audio, np.float32)))


@functools.cache
def real_audio(path: Path, sample_rate: int) -> np.ndarray:
    return load_audio(path, sample_rate=sample_rate)[0]


@pytest.fixture(scope="module")
def jackhammer(excerpt_files: list[Path]) -> Path:
    return next(f for f in excerpt_files if f.parent.name == "jackhammer")


# -- the reconstruction gives back the source levels ----------------------------------


@pair_and_method
def test_reconstruction_gives_back_the_source_levels(pair: PairEntry, method: str,
                                                     jackhammer: Path) -> None:
    """Model (specxform.transcoders.pinv): source powers P = group_columns @ S for the
    true group PSD S.

    Tolerances are relative to each frame's loudest band (the scale of float64 rounding in
    the solvers): EXACT_RTOL = 1e-6.
    """
    source, target = reps(pair)
    transcoder = PinvTranscoder(source, target, method=method)
    levels = levels_of(source, real_audio(jackhammer, source.sample_rate))
    result = band_power_consistency(transcoder, levels)
    scale = result.power.max(axis=1, keepdims=True)
    assert (result.psd >= 0).all()
    if method == "nnls":
        # The true spectrum's group means are a non-negative exact solution: found exactly.
        assert (np.abs(result.reconstructed - result.power) / scale).max() < EXACT_RTOL
        return
    assert result.unclipped is not None
    # Clipping negatives to zero only adds power, since group_columns >= 0.
    assert ((result.unclipped - result.reconstructed) / scale).max() < EXACT_RTOL
    if method == "pinv":
        # Linearly independent bands: A pinv(A) = I, so the unclipped solution is exact ...
        assert (np.abs(result.unclipped - result.power) / scale).max() < EXACT_RTOL
        # ... and a band none of whose groups were clipped keeps exactly its power.
        mats = transcoder.mats
        assert mats.inverse is not None
        unclipped_psd = result.power @ mats.inverse.T
        clipped_groups = (unclipped_psd < 0).astype(float)
        touched = clipped_groups @ (mats.group_columns.T > 0)
        kept = touched == 0
        assert kept.mean() > 0.3
        np.testing.assert_allclose(result.reconstructed[kept], result.power[kept],
                                   rtol=0, atol=EXACT_RTOL * float(scale.max()))
    else:
        check_ridge_normal_equations(transcoder, result.power)


def check_ridge_normal_equations(transcoder: PinvTranscoder, power: np.ndarray) -> None:
    """``ridge`` minimises ||C S - P||**2 + lam * sum over bins of S**2 (S is constant within
    a group of n_g bins), so S solves (C^T C + lam N) S = C^T P with N = diag(n_g) and lam =
    ridge x the mean diagonal of the per-bin Gram matrix C N^-1 C^T."""
    mats = transcoder.mats
    assert mats.inverse is not None
    columns, sizes = mats.group_columns, mats.group_sizes
    lam = 1e-2 * np.trace(columns @ np.diag(1 / sizes) @ columns.T) / columns.shape[0]
    psd = power @ mats.inverse.T
    lhs = psd @ (columns.T @ columns + lam * np.diag(sizes))
    rhs = power @ columns
    residual = np.abs(lhs - rhs).max(axis=1) / np.abs(rhs).max(axis=1)
    assert residual.max() < 1e-8


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p.name)
def test_nnls_psd_is_non_negative(pair: PairEntry, jackhammer: Path) -> None:
    source, target = reps(pair)
    transcoder = PinvTranscoder(source, target, method="nnls")
    audio = {"clip": real_audio(jackhammer, source.sample_rate),
             **contract_signals(source.sample_rate, 1.0)}
    for name, signal in audio.items():
        psd = transcoder.group_psd(levels_of(source, signal)[None])
        assert (psd >= 0).all(), name
        assert (psd > 0).any(), name


# -- frame counts -----------------------------------------------------------------------


@pytest.mark.parametrize(("n_source", "expected"), [(8, (101, 98)), (80, (1001, 998))])
def test_target_frames(n_source: int, expected: tuple[int, int]) -> None:
    assert PinvTranscoder(CENSE, PANN).target_frames(n_source) == expected[0]
    assert PinvTranscoder(CENSE, YAMNET).target_frames(n_source) == expected[1]


# -- when the ReLU matters -------------------------------------------------------------


def test_pinv_of_a_hard_partition_is_non_negative(rng: np.random.Generator) -> None:
    """Bands whose edges fall on bin boundaries own whole bins: A A^T is diagonal, the
    pseudo-inverse spreads each band's power over its own bins and needs no clipping."""
    edges = [(k + 0.5) * 7.8125 for k in (2, 5, 11, 23, 47, 95, 191, 383, 767, 1535)]
    octaves = attrs.evolve(CENSE, name="octaves", filterbank=BandFilterbank.from_edges(edges))
    mats = derive_matrices(octaves, PANN, "pinv", 1e-2)
    assert mats.inverse is not None and (mats.inverse >= -1e-15 * np.abs(mats.inverse).max()).all()
    levels = levels_of(octaves, rng.standard_normal(SR))
    result = band_power_consistency(PinvTranscoder(octaves, PANN), levels)
    np.testing.assert_allclose(result.reconstructed, result.power, rtol=EXACT_RTOL)


@pytest.mark.parametrize("source", [CENSE, COMPANION], ids=lambda r: r.name)
def test_pinv_of_shared_edge_bins_has_negative_entries_and_needs_the_relu(
        source: Representation, jackhammer: Path) -> None:
    """Cense's bands share bins at their edges: fractional weights (``partition``) or whole
    shared bins (``ceil_inclusive``). A A^T is then tridiagonal with positive off-diagonals,
    its inverse alternates in sign, and a loud band drives the private bins of a quiet
    neighbour negative: the ReLU clips them and that band's power comes back too high."""
    mats = derive_matrices(source, PANN, "pinv", 1e-2)
    assert mats.inverse is not None and (mats.inverse < 0).any()
    levels = levels_of(source, real_audio(jackhammer, SR))
    result = band_power_consistency(PinvTranscoder(source, PANN), levels)
    assert result.unclipped is not None
    unclipped_psd = result.power @ mats.inverse.T
    assert (unclipped_psd < 0).any()
    assert (result.reconstructed > result.power * 1.01).any()


# -- the model on noise of known spectrum ---------------------------------------------


def long_term(target: Representation, values: np.ndarray) -> np.ndarray:
    """The frames' mean power (or magnitude), back in the target's unit."""
    if target.scaling.log == "db":
        return np.asarray(10 * np.log10((10 ** (values / 10)).mean(axis=0)))
    add = target.scaling.add
    return np.asarray(np.log((np.exp(values) - add).mean(axis=0) + add))


def covers(source: Representation, target: Representation) -> bool:
    edges = np.asarray(source.filterbank.edges)
    return bool(edges[0, 0] <= target.filterbank.fmin and edges[-1, 1] >= target.filterbank.fmax)


@pair_and_method
def test_white_noise_gives_the_true_long_term_mel(pair: PairEntry, method: str) -> None:
    """Stationary noise has a smooth PSD, so the model's E|X_j|**2 = c_t S(f_j) holds and the
    transcoded long-term Mel matches the true one. Mel bands 0-3 (below ~100 Hz for PANN)
    straddle the sources' lowest, one-bin bands and are left out; the remaining error is
    the sampling error of 10 s of noise (~0.2 dB) plus the ridge's shrinkage (~0.5 dB)."""
    source, target = reps(pair)
    if not covers(source, target):
        pytest.skip(f"{source.name} does not cover {target.name}'s Mel range")
    x = contract_signals(source.sample_rate, 10.0)["noise"]
    transcoded = PinvTranscoder(source, target, method=method)(levels_of(source, x))
    true = levels_of(target, resample(x, orig_sr=source.sample_rate, target_sr=target.sample_rate))
    error = long_term(target, transcoded.numpy()) - long_term(target, true.numpy())
    tolerance = 1.0 if target.scaling.log == "db" else 0.25  # dB; ln (~2.2 dB)
    assert np.abs(error[4:]).max() < tolerance


def test_rayleigh_magnitude_removes_the_yamnet_bias() -> None:
    """For Gaussian noise E|X| = sqrt(pi)/2 sqrt(E|X|**2): the "rms" model overestimates
    YAMNet's log-Mel by ln(2/sqrt(pi)) = 0.121, the "rayleigh" model does not."""
    x = contract_signals(SR, 10.0)["noise"]
    levels = levels_of(CENSE, x)
    true = long_term(YAMNET, levels_of(YAMNET, resample(x, orig_sr=SR, target_sr=16_000)).numpy())
    bias = {}
    for magnitude in ("rms", "rayleigh"):
        out = PinvTranscoder(CENSE, YAMNET, magnitude=magnitude)(levels).numpy()
        bias[magnitude] = float(np.mean(long_term(YAMNET, out) - true))
    assert bias["rms"] == pytest.approx(math.log(2 / math.sqrt(math.pi)), abs=0.02)
    assert abs(bias["rayleigh"]) < 0.02


def test_psd_gain_is_the_expected_bin_power_per_unit_psd(rng: np.random.Generator) -> None:
    """White noise of variance v has one-sided PSD S = 2 v / sr; E|X_k|**2 = c S."""
    fr = CENSE.framing
    frames = rng.standard_normal((2000, fr.frame_length)) * 0.1
    power = np.abs(np.fft.rfft(frames * window(fr), axis=1)) ** 2
    expected = psd_gain(fr) * 2 * 0.01 / fr.sample_rate
    # Mean of 2000 frames x 2000 interior bins of exponential variables: 0.05 % sd.
    assert power[:, 10:-10].mean() == pytest.approx(expected, rel=3e-3)


# -- quality sanity on real clips -----------------------------------------------------


@pytest.mark.parametrize(("target", "bound"), [(PANN, 80.0), (YAMNET, 1.0)],
                         ids=["pann", "yamnet"])
def test_pinv_mel_mse_on_real_clips(target: Representation, bound: float,
                                    excerpt_files: list[Path]) -> None:
    """The mean log-Mel MSE of the PINV against the true Mel on four clips is finite and
    below a bound that a 5 dB calibration error alone would break for PANN (measured: 55
    dB**2 for PANN, 0.70 for YAMNet; the paper's 12.4 and 3.2 are on TAU scenes, without
    the digital silence of these zero-padded clips), and interpolating the log-PSD in time
    beats interpolating power (module doc of pinv)."""
    clips = [next(f for f in excerpt_files if f.parent.name == label)
             for label in ("street_music", "engine_idling", "dog_bark", "siren")]
    mse: dict[str, list[float]] = {"log": [], "linear": []}
    for path in clips:
        levels = levels_of(CENSE, real_audio(path, SR))
        true = levels_of(target, real_audio(path, target.sample_rate))
        for interpolation, values in mse.items():
            out = PinvTranscoder(CENSE, target, interpolation=interpolation)(levels)
            assert out.shape == true.shape
            values.append(float(((out - true) ** 2).mean()))
    assert np.isfinite(mse["log"]).all() and np.mean(mse["log"]) < bound
    assert np.mean(mse["log"]) < np.mean(mse["linear"])


# -- building blocks ------------------------------------------------------------------


@pytest.mark.parametrize("scaling", [
    Scaling(reference="mean_square", floor=1e-15, offset=-88.0),
    Scaling(log="ln", floor=0.0, add=0.001),
    Scaling(log="none", mean=(1.0,), std=(3.0,)),
])
def test_invert_scaling_inverts_apply_scaling(scaling: Scaling, rng: np.random.Generator) -> None:
    power = torch.from_numpy(rng.uniform(1e-6, 2.0, (2, 5, 29)))
    mean = None if scaling.mean is None else torch.tensor(scaling.mean, dtype=torch.float64)
    std = None if scaling.std is None else torch.tensor(scaling.std, dtype=torch.float64)
    stored = apply_scaling(power * 0.25, scaling, mean=mean, std=std)
    back = invert_scaling(stored, scaling, gain=0.25, mean=mean, std=std)
    np.testing.assert_allclose(back.numpy(), power.numpy(), rtol=1e-10)


def test_invert_scaling_refuses_magnitude_sources() -> None:
    with pytest.raises(SpecError, match=r"magnitude domain.*Scaling\(domain='power'\)"):
        invert_scaling(torch.zeros(1, 1, 1), Scaling(domain="magnitude"), gain=1.0,
                       mean=None, std=None)


@pytest.mark.parametrize("source", [CENSE, COMPANION, REGISTRY.representation("bark")],
                         ids=lambda r: r.name)
def test_bin_groups_rebuild_the_matrix(source: Representation) -> None:
    matrix = filterbank_matrix(source.filterbank, framing=source.framing)
    labels, columns = bin_groups(matrix)
    used = labels >= 0
    np.testing.assert_array_equal(columns[:, labels[used]], matrix[:, used])
    assert not matrix[:, ~used].any()
    assert len(np.unique(columns, axis=1).T) == columns.shape[1]  # one column per group


def test_frequency_resampler_preserves_a_constant_psd() -> None:
    # Row sums are the share of each target bin's width the source covers: all of it
    # between DC and Nyquist; half of the DC bin (the other half lies below 0 Hz); of PANN's
    # Nyquist bin (16 kHz +- 15.6 Hz) the part below the source's top edge, 16 kHz + 3.9 Hz.
    to_pann = frequency_resampler(CENSE.framing, PANN.framing)
    assert to_pann.shape == (513, 2049)
    np.testing.assert_allclose(to_pann.sum(axis=1)[1:-1], 1.0, atol=1e-12)
    to_yamnet = frequency_resampler(CENSE.framing, YAMNET.framing)
    np.testing.assert_allclose(to_yamnet.sum(axis=1)[1:], 1.0, atol=1e-12)
    assert to_pann[0].sum() == to_yamnet[0].sum() == 0.5
    assert to_pann[-1].sum() == pytest.approx((15.625 + 3.90625) / 31.25)
    same = frequency_resampler(PANN.framing, PANN.framing)
    np.testing.assert_allclose(same, np.diag([0.5] + [1.0] * 512), atol=1e-12)


def test_time_interpolation_at_frame_centres() -> None:
    index, weight = time_interpolation(CENSE.framing, PANN.framing, 8, 101)
    t_src = CENSE.framing.frame_centre(np.arange(8))
    t_tgt = PANN.framing.frame_centre(np.arange(101))
    inside = (t_tgt >= t_src[0]) & (t_tgt <= t_src[-1])
    np.testing.assert_allclose((t_src[index] * (1 - weight) + t_src[index + 1] * weight)[inside],
                               t_tgt[inside], atol=1e-12)
    assert (weight[t_tgt < t_src[0]] == 0).all() and (weight[t_tgt > t_src[-1]] == 1).all()


def test_log_interpolation_takes_the_geometric_mean() -> None:
    levels = torch.full((2, 29), -60.0)
    levels[1] = -20.0  # a 40 dB step in every band
    outputs = {i: PinvTranscoder(CENSE, PANN, interpolation=i)(levels).numpy()
               for i in ("log", "linear")}
    _, weight = time_interpolation(CENSE.framing, PANN.framing, 2, outputs["log"].shape[0])
    half = int(np.argmin(np.abs(weight - 0.5)))
    assert 0.4 < weight[half] < 0.6
    # Half way in the log domain is the mean in dB; in power it is 3 dB below the top.
    step = outputs["log"][half] - outputs["log"][0]
    assert np.median(step) == pytest.approx(40 * weight[half], abs=0.1)
    assert np.median(outputs["linear"][half] - outputs["linear"][-1]) == pytest.approx(
        10 * math.log10(weight[half] + (1 - weight[half]) * 1e-4), abs=0.1)


# -- refusals -------------------------------------------------------------------------


def test_bad_options_are_refused() -> None:
    with pytest.raises(SpecError, match="unknown PINV method 'lsqr'"):
        PinvTranscoder(CENSE, PANN, method="lsqr")
    with pytest.raises(SpecError, match=r"magnitude must be one of .*got 'peak'"):
        PinvTranscoder(CENSE, YAMNET, magnitude="peak")
    with pytest.raises(SpecError, match=r"interpolation must be one of .*got 'cubic'"):
        PinvTranscoder(CENSE, PANN, interpolation="cubic")
    with pytest.raises(SpecError, match="'pann' -> 'cense': need a source and a target"):
        PinvTranscoder(PANN, CENSE)


def test_bad_levels_are_refused() -> None:
    transcoder = PinvTranscoder(CENSE, PANN)
    with pytest.raises(InputError, match=r"shape \(batch, frames, 29\), got \(1, 8, 24\)"):
        transcoder(torch.zeros(1, 8, 24))
    with pytest.raises(InputError, match="NaN or infinite"):
        transcoder(torch.full((8, 29), float("nan")))
    with pytest.raises(InputError, match="hold no frames"):
        transcoder(torch.zeros(1, 0, 29))


def test_too_little_audio_for_one_target_frame() -> None:
    tiny = attrs.evolve(CENSE, name="tiny",
                        framing=attrs.evolve(CENSE.framing, hop_length=10))
    with pytest.raises(InputError, match=r"1 tiny frames cover too little audio for one yamnet "
                                         r"frame; give at least 0\.025 s"):
        PinvTranscoder(tiny, YAMNET)(torch.zeros(1, 29))
