"""Windows and filterbank matrices against their definitions (librosa, TensorFlow, Cense)."""

from __future__ import annotations

import math

import librosa
import numpy as np
import pytest

from specxform.errors import SpecError
from specxform.plugins import get_registry
from specxform.representations.filterbanks import (
    band_matrix,
    energy_correction,
    fft_frequencies,
    filterbank_matrix,
    hz_to_mel,
    mel_matrix,
    mel_to_hz,
    reference_gain,
    window,
)
from specxform.representations.specs import BandFilterbank, Framing, MelFilterbank

REGISTRY = get_registry()
CENSE = REGISTRY.representation("cense")
PANN = REGISTRY.representation("pann")
YAMNET = REGISTRY.representation("yamnet")
DF = 32_000 / 4096  # Cense bin width, 7.8125 Hz


def tf_linear_to_mel_weight_matrix(num_mel_bins: int, num_spectrogram_bins: int,
                                   sample_rate: float, lower_edge_hertz: float,
                                   upper_edge_hertz: float) -> np.ndarray:
    """NumPy transcription of ``tf.signal.linear_to_mel_weight_matrix``, shape (bins, mels)."""
    def hertz_to_mel(f: np.ndarray) -> np.ndarray:
        return 1127.0 * np.log(1.0 + f / 700.0)

    bands_to_zero = 1  # TF drops the DC bin, then pads it back as zeros
    linear_frequencies = np.linspace(0.0, sample_rate / 2, num_spectrogram_bins)[bands_to_zero:]
    spectrogram_bins_mel = hertz_to_mel(linear_frequencies)[:, None]
    band_edges_mel = np.linspace(hertz_to_mel(np.float64(lower_edge_hertz)),
                                 hertz_to_mel(np.float64(upper_edge_hertz)), num_mel_bins + 2)
    lower, center, upper = band_edges_mel[:-2], band_edges_mel[1:-1], band_edges_mel[2:]
    lower_slopes = (spectrogram_bins_mel - lower) / (center - lower)
    upper_slopes = (upper - spectrogram_bins_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(lower_slopes, upper_slopes))
    return np.pad(weights, [[bands_to_zero, 0], [0, 0]])


# -- Mel matrices ---------------------------------------------------------------------


def test_pann_mel_matrix_equals_librosa() -> None:
    ours = filterbank_matrix(PANN.filterbank, framing=PANN.framing)
    ref = librosa.filters.mel(sr=32_000, n_fft=1024, n_mels=64, fmin=50, fmax=14_000,
                              dtype=np.float64)
    # Same float64 formula: only summation order can differ, at the level of 1e-15.
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-15)


def test_yamnet_mel_matrix_equals_tensorflow_formula() -> None:
    ours = filterbank_matrix(YAMNET.filterbank, framing=YAMNET.framing)
    ref = tf_linear_to_mel_weight_matrix(64, 257, 16_000, 125.0, 7_500.0).T
    # Same float64 arithmetic (HTK mel, slopes in mel): equal to rounding, 1e-12.
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
    assert (ours[:, 0] == 0).all()
    assert ours.max() <= 1.0 and ours.max(axis=1).min() > 0.5  # peak 1, no area normalisation


def test_librosa_htk_bank_is_close_to_tensorflow_but_not_equal() -> None:
    """librosa's HTK triangles are linear in Hz: the SPEC's "close, not equal"."""
    tf = filterbank_matrix(YAMNET.filterbank, framing=YAMNET.framing)
    htk = librosa.filters.mel(sr=16_000, n_fft=512, n_mels=64, fmin=125, fmax=7_500, htk=True,
                              norm=None, dtype=np.float64)
    assert np.abs(tf - htk).max() > 1e-3
    assert np.abs(tf - htk).max() < 0.2


def test_slaney_scale_matches_librosa() -> None:
    freqs = np.array([0.0, 50.0, 700.0, 999.0, 1000.0, 1001.0, 7500.0, 14_000.0])
    mels = hz_to_mel(freqs, scale="slaney")
    np.testing.assert_allclose(mels, librosa.hz_to_mel(freqs), rtol=1e-12)
    np.testing.assert_allclose(mel_to_hz(mels, scale="slaney"), freqs, rtol=1e-12, atol=1e-9)


def test_htk_scale_is_tensorflows_1127_ln() -> None:
    freqs = np.array([0.0, 125.0, 700.0, 7500.0])
    mels = hz_to_mel(freqs, scale="htk")
    np.testing.assert_allclose(mels, 1127.0 * np.log(1.0 + freqs / 700.0), rtol=1e-14)
    np.testing.assert_allclose(mel_to_hz(mels, scale="htk"), freqs, rtol=1e-12, atol=1e-9)
    # librosa's HTK is 2595 log10(1 + f/700): 5e-6 apart in mel, which is why the
    # Mel points are built in one convention only.
    assert np.abs(mels / np.maximum(librosa.hz_to_mel(freqs, htk=True), 1) - 1).max() > 1e-6


def test_htk_triangles_in_hz_match_librosa() -> None:
    # Mel points are equally spaced, so the scale's constant factor cancels in Hz.
    bank = MelFilterbank(n_mels=8, fmin=100, fmax=4000, scale="htk", norm=None)
    in_hz = mel_matrix(bank, sample_rate=16_000, n_fft=512)
    ref = librosa.filters.mel(sr=16_000, n_fft=512, n_mels=8, fmin=100, fmax=4000, htk=True,
                              norm=None, dtype=np.float64)
    np.testing.assert_allclose(in_hz, ref, atol=1e-12)


def test_fft_frequencies_match_librosa() -> None:
    np.testing.assert_array_equal(fft_frequencies(sample_rate=32_000, n_fft=1024),
                                  librosa.fft_frequencies(sr=32_000, n_fft=1024))


# -- band matrices --------------------------------------------------------------------


def ceil_inclusive_definition(edges: list[tuple[float, float]], n_bins: int) -> np.ndarray:
    """The companion code's rule, written from its definition with plain loops."""
    matrix = np.zeros((len(edges), n_bins))
    for b, (low, high) in enumerate(edges):
        for k in range(math.ceil(low / DF), math.ceil(high / DF) + 1):
            matrix[b, k] = 1.0
    return matrix


def test_ceil_inclusive_rule_matches_its_definition() -> None:
    bank = REGISTRY.representation("cense_companion").filterbank
    ours = band_matrix(bank, sample_rate=32_000, n_fft=4096)
    np.testing.assert_array_equal(ours, ceil_inclusive_definition(list(bank.edges), 2049))
    assert np.flatnonzero(ours[0]).tolist() == [3]  # band 0 (17.8-22.4 Hz) is one bin
    for b in range(bank.n_bands - 1):  # neighbours share their boundary bin
        assert np.flatnonzero(ours[b])[-1] == np.flatnonzero(ours[b + 1])[0]


def partition_definition(edges: list[tuple[float, float]], n_bins: int) -> np.ndarray:
    """Fraction of each bin's interval [k df - df/2, k df + df/2) inside each band, by loops."""
    matrix = np.zeros((len(edges), n_bins))
    for b, (low, high) in enumerate(edges):
        for k in range(n_bins):
            overlap = min(high, (k + 0.5) * DF) - max(low, (k - 0.5) * DF)
            matrix[b, k] = max(overlap, 0.0) / DF
    return matrix


def test_partition_rule_matches_its_definition() -> None:
    bank = CENSE.filterbank
    ours = band_matrix(bank, sample_rate=32_000, n_fft=4096)
    np.testing.assert_allclose(ours, partition_definition(list(bank.edges), 2049), atol=1e-12)
    # Each band holds its width in bins.
    widths = np.array([(high - low) / DF for low, high in bank.edges])
    np.testing.assert_allclose(ours.sum(axis=1), widths, rtol=1e-12)


def test_partition_columns_sum_to_one_inside_the_covered_range() -> None:
    bank = CENSE.filterbank
    columns = band_matrix(bank, sample_rate=32_000, n_fft=4096).sum(axis=0)
    k = np.arange(2049)
    inside = ((k - 0.5) * DF >= bank.edges[0][0]) & ((k + 0.5) * DF <= bank.edges[-1][1])
    assert inside.sum() > 1700
    np.testing.assert_allclose(columns[inside], 1.0, atol=1e-12)
    assert (columns[~inside] < 1.0).all()


def test_bark_bands_from_zwicker_edges() -> None:
    bark = REGISTRY.representation("bark")
    assert bark.n_bands == 24
    assert bark.filterbank.edges[0] == (0.0, 100.0) and bark.filterbank.edges[-1][1] == 15_500.0
    matrix = filterbank_matrix(bark.filterbank, framing=bark.framing)
    assert matrix[0, 0] == pytest.approx(0.5)  # the DC bin's interval is half above 0 Hz
    np.testing.assert_allclose(matrix.sum(axis=0)[1:1980], 1.0, atol=1e-12)


def test_third_octave_centres_and_edges() -> None:
    bank = BandFilterbank.third_octave()
    assert bank.centres[17] == 1000.0
    assert bank.centres[0] == pytest.approx(19.953, abs=1e-3)
    assert bank.centres[28] == pytest.approx(12_589.25, abs=1e-2)
    for (low, high), centre in zip(bank.edges, bank.centres, strict=True):
        assert high / low == pytest.approx(10 ** 0.1)
        assert math.sqrt(low * high) == pytest.approx(centre)


# -- windows and gains ----------------------------------------------------------------


def test_hann_is_periodic_and_yamnet_window_is_zero_padded_at_the_end() -> None:
    n = np.arange(400)
    w = window(YAMNET.framing)
    assert w.shape == (512,)
    np.testing.assert_allclose(w[:400], 0.5 - 0.5 * np.cos(2 * np.pi * n / 400), atol=1e-15)
    assert (w[400:] == 0).all()


def test_cense_energy_correction() -> None:
    # 1.06904 is the sensor's figure; the symmetric Tukey window would give 1.06918.
    assert energy_correction(CENSE.framing) == pytest.approx(1.06904, abs=1e-5)
    rect = REGISTRY.representation("cense_rectangular")
    assert energy_correction(rect.framing) == 1.0
    w = window(CENSE.framing)
    assert w[0] == 0.0 and w[2048] == 1.0 and w[200] < 1.0 and w[500] == 1.0


def test_reference_gain_is_censes_rms_formula_squared() -> None:
    n = 4096
    ec = energy_correction(CENSE.framing)
    # rms**2 = (sqrt(sum X / 2) / (N / 2) * ec)**2 = sum X * gain
    assert reference_gain(CENSE.framing, "mean_square") == pytest.approx(
        (ec / (n / 2)) ** 2 / 2, rel=1e-12
    )
    assert reference_gain(CENSE.framing, "raw") == 1.0


def test_filterbank_matrix_is_cached_and_read_only() -> None:
    first = filterbank_matrix(CENSE.filterbank, framing=CENSE.framing)
    assert filterbank_matrix(CENSE.filterbank, framing=CENSE.framing) is first
    with pytest.raises(ValueError, match="read-only"):
        first[0, 0] = 1.0


def test_filterbank_matrix_refuses_other_objects() -> None:
    framing = Framing(sample_rate=16_000, frame_length=400, hop_length=160, n_fft=512)
    with pytest.raises(SpecError, match="unsupported filterbank 'gammatone'"):
        filterbank_matrix("gammatone", framing=framing)  # type: ignore[arg-type]
