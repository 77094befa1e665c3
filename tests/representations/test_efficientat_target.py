"""The `efficientat` target: EfficientAT's front end, checked against independent computations.

The specs' new pieces (pre-emphasis and a symmetric window on the framing, Kaldi's
Mel banks) and the PINV's handling of them; the registry-wide contracts run on
this target and its pairs in tests/test_contracts.py (``-k efficientat``).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import attrs
import numpy as np
import pytest
import torch
from conftest import SHARED_DATA
from specxform_builtins import third_octave
from specxform_builtins.mels import efficientat

from specxform.audio import load_audio
from specxform.errors import SpecError
from specxform.representations.filterbanks import filterbank_matrix, mel_to_hz, window
from specxform.representations.frontend import RepresentationTransform
from specxform.representations.specs import Framing, MelFilterbank, Representation
from specxform.testing import check_pair, contract_signals
from specxform.transcoders.pinv import PinvTranscoder, preemphasis_response

REP = efficientat()
US8K = SHARED_DATA / "urbansound8k"


@pytest.fixture(scope="module")
def us8k_clip() -> Path:
    if not US8K.is_dir():
        pytest.skip(f"UrbanSound8K fold 1 not found at {US8K} (set SPECXFORM_SHARED_DATA)")
    with (US8K / "metadata" / "UrbanSound8K.csv").open(newline="") as fh:
        first = next(r for r in csv.DictReader(fh) if r["class"] == "street_music")
    return US8K / "audio" / "fold1" / first["slice_file_name"]


# -- Kaldi's Mel banks ----------------------------------------------------------------


def kaldi_mel_banks(num_bins: int, window_length_padded: int, sample_freq: float,
                    low_freq: float, high_freq: float) -> np.ndarray:
    """Kaldi's ``get_mel_banks`` (mel-banks.cc, torchaudio.compliance.kaldi) at VTLN warp 1.0,
    transcribed from its formulas, plus EfficientAT's zero column for the Nyquist bin."""
    num_fft_bins = window_length_padded // 2
    fft_bin_width = sample_freq / window_length_padded

    def mel(f: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    mel_low, mel_high = mel(low_freq), mel(high_freq)
    delta = (mel_high - mel_low) / (num_bins + 1)
    bins = np.arange(num_bins)[:, None]
    left, centre, right = mel_low + bins * delta, mel_low + (bins + 1) * delta, (
        mel_low + (bins + 2) * delta)
    m = mel(fft_bin_width * np.arange(num_fft_bins))[None, :]
    up, down = (m - left) / (centre - left), (right - m) / (right - centre)
    banks = np.maximum(0.0, np.minimum(up, down))
    return np.pad(banks, ((0, 0), (0, 1)))  # (num_bins, num_fft_bins + 1)


def test_kaldi_mel_matrix_matches_kaldis_formulas() -> None:
    """Both are float64 evaluations of the same triangles (our edges from linspace, Kaldi's
    from mel_low + i * delta), so they agree to rounding: 1e-12, where the weights are
    O(1). (torchaudio evaluates them in float32, ~1e-7 away from either.)"""
    ours = filterbank_matrix(REP.filterbank, framing=REP.framing)
    reference = kaldi_mel_banks(128, 1024, 32_000.0, 0.0, 15_000.0)
    assert ours.shape == reference.shape == (128, 513)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-12)
    assert not ours[:, -1].any() and not ours[:, 0].any()  # Nyquist zeroed; DC at fmin = 0


def test_kaldi_bank_zeroes_the_nyquist_bin_even_when_fmax_reaches_it() -> None:
    bank = MelFilterbank.kaldi(n_mels=40, fmin=20.0, fmax=8_000.0)
    ours = filterbank_matrix(bank, framing=Framing(16_000, 400, 160, 512))
    np.testing.assert_allclose(ours, kaldi_mel_banks(40, 512, 16_000.0, 20.0, 8_000.0),
                               rtol=0, atol=1e-12)
    assert (bank.scale, bank.norm, bank.triangles_in, bank.zero_dc, bank.zero_nyquist) == (
        "htk", None, "mel", False, True)


# -- framing: symmetric window, pre-emphasis ------------------------------------------


def test_window_is_torchs_symmetric_hann_of_800() -> None:
    w = window(REP.framing)
    expected = torch.hann_window(800, periodic=False, dtype=torch.float64).numpy()
    np.testing.assert_allclose(w[:800], expected, rtol=0, atol=1e-15)
    assert w.shape == (1024,) and not w[800:].any()
    assert window(attrs.evolve(REP.framing, symmetric_window=False))[799] > 0  # periodic


def test_preemphasis_makes_the_signal_one_sample_shorter() -> None:
    fr = REP.framing
    # 1 + (N - 1) // 320: 10 s give 1,000 frames, 4 s give 400 (not 1 + N // 320).
    assert [fr.n_frames(n) for n in (320_000, 128_000, 321, 320, 2)] == [1000, 400, 2, 1, 1]
    assert fr.min_samples() == 2
    for frames in (1, 32, 400, 1000):
        assert fr.n_frames(fr.covered_samples(frames)) == frames
    # y[n] = x[n + 1] - a x[n]: frame 0 is centred on audio sample 1.
    assert fr.frame_centre(0) == pytest.approx(1 / 32_000)
    assert fr.frame_centre(100) == pytest.approx((100 * 320 + 1) / 32_000)


@pytest.mark.parametrize("value", [-0.1, 1.0, math.nan])
def test_preemphasis_outside_0_1_is_refused(value: float) -> None:
    with pytest.raises(SpecError, match="preemphasis must be in"):
        attrs.evolve(REP.framing, preemphasis=value)


def test_dicts_without_the_new_fields_still_load() -> None:
    """Checkpoints written before these fields existed rebuild the same specs."""
    data = REP.to_dict()
    assert Representation.from_dict(data) == REP
    for key in ("symmetric_window", "preemphasis"):
        data["framing"].pop(key)
    data["filterbank"].pop("zero_nyquist")
    old = Representation.from_dict(data)
    assert (old.framing.preemphasis, old.framing.symmetric_window) == (0.0, False)
    assert old.filterbank.zero_nyquist is False


# -- the whole front end on a real clip -----------------------------------------------


def recipe(audio: np.ndarray) -> torch.Tensor:
    """EfficientAT's front end written out with torch.stft, float64: (frames, 128)."""
    x = torch.from_numpy(audio).double()
    y = x[1:] - 0.97 * x[:-1]
    hann = torch.hann_window(800, periodic=False, dtype=torch.float64)
    spec = torch.stft(y, 1024, hop_length=320, win_length=800, window=hann, center=True,
                      pad_mode="reflect", return_complex=True)
    power = spec.real**2 + spec.imag**2  # (513, frames)
    banks = torch.from_numpy(kaldi_mel_banks(128, 1024, 32_000.0, 0.0, 15_000.0))
    return ((torch.log(banks @ power + 1e-5) + 4.5) / 5).T


def test_front_end_equals_the_recipe_on_a_real_clip(us8k_clip: Path) -> None:
    """Tolerances from float32 rounding, which the log turns into absolute errors in the
    quiet bands. Run in float64, the front end still holds its window and Mel weights as
    float32 buffers (relative rounding 6e-8, leaking into bands 60 dB below the loudest):
    measured 3.1e-6, bound 2e-5. In float32 the 1,024-point FFT and the matmul add
    relative errors of ~1e-6 of the loudest bin: measured 2.7e-5 (1.3e-4 ln before the
    / 5), bound 2e-4."""
    audio, _ = load_audio(us8k_clip, sample_rate=32_000)
    expected = recipe(audio)
    assert expected.shape == (400, 128)
    wide = RepresentationTransform(REP).double()(torch.from_numpy(audio).double())
    assert float((wide - expected).abs().max()) < 2e-5
    fast = RepresentationTransform(REP)(torch.from_numpy(audio))
    assert fast.dtype == torch.float32
    assert float((fast.double() - expected).abs().max()) < 2e-4


# -- the derived PINV ---------------------------------------------------------------------


def test_preemphasis_response() -> None:
    fr = REP.framing
    h = preemphasis_response(fr, np.array([0.0, 8_000.0, 16_000.0]))
    np.testing.assert_allclose(h, [0.03**2, 1 + 0.97**2, 1.97**2], rtol=1e-12)
    assert (preemphasis_response(attrs.evolve(fr, preemphasis=0.0), np.arange(5.0)) == 1).all()


def test_pinv_from_cense_gives_the_true_long_term_mel_of_white_noise() -> None:
    """The PINV undoes (x + 4.5) / 5 and ln, and weights the target spectrum by the
    pre-emphasis response |1 - 0.97 e^(-jw)|^2, which spans -29 dB at 100 Hz to +5.8 dB
    at 15 kHz: without it the long-term Mel would be off by that much. With it, the Mel
    bands inside the Cense bands (17.8 Hz to 14.1 kHz) match to the sampling error of
    10 s of noise and the one-bin bands' edge effects (measured at most 0.47 dB)."""
    cense = third_octave.cense()
    x = contract_signals(32_000, 10.0)["noise"]
    levels = RepresentationTransform(cense)(torch.from_numpy(x))
    out = PinvTranscoder(cense, REP)(levels).numpy()
    true = RepresentationTransform(REP)(torch.from_numpy(x)).numpy()

    def long_term_db(values: np.ndarray) -> np.ndarray:
        power = np.exp(values * 5.0 - 4.5) - 1e-5
        return np.asarray(10 * np.log10(power.mean(axis=0)))

    edges = mel_to_hz(np.linspace(0.0, 1127 * math.log1p(15_000 / 700), 130), scale="htk")
    inside = (edges[:-2] >= 17.78) & (edges[2:] <= 14_125.0)
    assert inside.sum() == 123
    error = long_term_db(out) - long_term_db(true)
    assert np.abs(error[inside]).max() < 1.0


def test_a_preemphasised_source_passes_the_pair_contract() -> None:
    """The source side is generic too: its filterbank is weighted by H_s before the bins
    are grouped, so the reconstructed spectrum still gives its band powers back."""
    cense = third_octave.cense()
    source = attrs.evolve(cense, name="cense_preemphasis",
                          framing=attrs.evolve(cense.framing, preemphasis=0.97))
    check_pair(source, REP, methods=("pinv", "nnls"))
