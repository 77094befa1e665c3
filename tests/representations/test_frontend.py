"""The front end against independent computations: librosa (PANN), TensorFlow's formulas
(YAMNet) and the Cense sensor's level formula, on real clips and signals of known level."""

from __future__ import annotations

import math
from pathlib import Path

import librosa
import numpy as np
import pytest
import scipy.signal
import soundfile
import torch
from test_filterbanks import (  # the definitions, shared with the filterbank tests
    ceil_inclusive_definition,
    partition_definition,
    tf_linear_to_mel_weight_matrix,
)

from specxform.audio import load_audio, resample
from specxform.errors import InputError
from specxform.plugins import get_registry
from specxform.representations.filterbanks import filterbank_matrix
from specxform.representations.frontend import RepresentationTransform, apply_scaling, frame_audio
from specxform.representations.specs import Representation, Scaling

REGISTRY = get_registry()
CENSE = REGISTRY.representation("cense")
COMPANION = REGISTRY.representation("cense_companion")
PANN = REGISTRY.representation("pann")
YAMNET = REGISTRY.representation("yamnet")
SR = 32_000


def run(rep: Representation, audio: np.ndarray) -> np.ndarray:
    return RepresentationTransform(rep)(torch.from_numpy(np.asarray(audio, np.float32))).numpy()


def clip(files: list[Path], label: str) -> Path:
    return next(f for f in files if f.parent.name == label)


def coloured_noise(exponent: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with PSD proportional to f**-exponent (0 white, 1 pink), peak 1, 32 kHz."""
    n = round(seconds * SR)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    spectrum[1:] /= freqs[1:] ** (exponent / 2)
    spectrum[0] = 0.0
    x = np.fft.irfft(spectrum, n)
    return x / np.abs(x).max()


def mean_band_levels(rep: Representation, audio: np.ndarray) -> np.ndarray:
    """Levels of the frames' mean power, in dB (the long-term spectrum)."""
    levels = run(rep, audio).astype(np.float64)
    return np.asarray(10 * np.log10((10 ** (levels / 10)).mean(axis=0)))


# -- PANN: librosa --------------------------------------------------------------------


def test_pann_equals_librosa_on_a_real_clip(excerpt_files: list[Path]) -> None:
    audio, _ = load_audio(clip(excerpt_files, "street_music"), sample_rate=SR)
    x = audio.astype(np.float64)
    power = np.abs(librosa.stft(x, n_fft=1024, hop_length=320, win_length=1024, window="hann",
                                center=True, pad_mode="reflect")) ** 2
    mel = librosa.filters.mel(sr=SR, n_fft=1024, n_mels=64, fmin=50, fmax=14_000,
                              dtype=np.float64)
    ref = librosa.power_to_db(mel @ power, ref=1.0, amin=1e-10, top_db=None).T
    ours = run(PANN, audio)
    assert ours.shape == ref.shape == (401, 64)  # 1 + 128,000 // 320
    # float32 FFT and window rounding add ~1e-7 of a frame's loudest power to every bin: a
    # band 60 dB below the frame's top is then within 1e-3 dB, one 100 dB below within 0.01 dB.
    error = np.abs(ours - ref)
    assert error.max() < 0.01
    near_top = ref > ref.max(axis=1, keepdims=True) - 60
    assert error[near_top].max() < 1e-3


# -- YAMNet: TensorFlow's formulas ----------------------------------------------------


def tf_hann_window(length: int) -> np.ndarray:
    """``tf.signal.hann_window(length, periodic=True)``."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / length)


def tf_stft_magnitude(x: np.ndarray) -> np.ndarray:
    """``tf.abs(tf.signal.stft(x, frame_length=400, frame_step=160, fft_length=512))``:
    whole frames only, window at the start of the 512 buffer (zero-padded at the end)."""
    n_frames = 1 + (len(x) - 400) // 160
    index = np.arange(400)[None, :] + 160 * np.arange(n_frames)[:, None]
    return np.abs(np.fft.rfft(x[index] * tf_hann_window(400), n=512))


def yamnet_reference(x: np.ndarray) -> np.ndarray:
    """YAMNet's ``waveform_to_log_mel_spectrogram`` in NumPy, (frames, 64)."""
    weights = tf_linear_to_mel_weight_matrix(64, 257, 16_000, 125.0, 7_500.0)
    return np.asarray(np.log(tf_stft_magnitude(x) @ weights + 0.001))


def test_yamnet_equals_tensorflow_formulas_on_a_real_clip(excerpt_files: list[Path]) -> None:
    audio, _ = load_audio(clip(excerpt_files, "dog_bark"), sample_rate=16_000)
    ref = yamnet_reference(audio.astype(np.float64))
    ours = run(YAMNET, audio)
    assert ours.shape == ref.shape == (1 + (64_000 - 400) // 160, 64)
    # float32 rounding adds ~1e-7 of the frame's largest Mel magnitude to every band: check
    # that in the linear domain (5e-6 of the frame's top) and, after ln(x + 0.001), 1e-3.
    linear = np.abs(np.exp(ours) - np.exp(ref)) / np.exp(ref).max(axis=1, keepdims=True)
    assert linear.max() < 5e-6
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-3)


def test_torch_stft_with_win_length_400_is_not_yamnet(excerpt_files: list[Path]) -> None:
    """torch.stft centres the 400-sample window in the 512 buffer: a 56-sample shift."""
    audio, _ = load_audio(clip(excerpt_files, "dog_bark"), sample_rate=16_000)
    x = torch.from_numpy(audio)
    torch_mag = torch.stft(x, n_fft=512, hop_length=160, win_length=400,
                           window=torch.hann_window(400), center=False,
                           return_complex=True).abs().T.numpy()
    ours = tf_stft_magnitude(audio.astype(np.float64))
    assert torch_mag.shape[0] == 1 + (len(audio) - 512) // 160 < ours.shape[0]
    n = torch_mag.shape[0]
    assert np.abs(torch_mag - ours[:n]).max() > 0.1 * ours.max()  # not the same frames
    shifted = tf_stft_magnitude(audio[56:].astype(np.float64))  # the same frames 56 later
    np.testing.assert_allclose(torch_mag, shifted[:n], rtol=0, atol=1e-5 * ours.max())


# -- Cense: levels of known signals ---------------------------------------------------


def test_full_scale_1khz_sine_reads_minus_3_01_db_in_band_17() -> None:
    t = np.arange(SR) / SR
    levels = run(CENSE, np.sin(2 * np.pi * 1000 * t))
    assert levels.shape == (8, 29)
    # 1 kHz is FFT bin 128 and the 4,096-sample frame holds 128 whole periods: the band sums
    # all but ~1e-5 of the power, so the level is 10 log10(0.5) to 1e-4 dB. The last frame
    # is zero-padded by 96 samples and reads lower, by the missing 2 % of its window energy.
    np.testing.assert_allclose(levels[:-1, 17], 10 * math.log10(0.5), atol=1e-4)
    assert levels[-1, 17] < levels[0, 17]
    assert (np.delete(levels[:-1], 17, axis=1) < -50).all()


def test_sine_between_bins_reads_minus_3_01_db() -> None:
    t = np.arange(SR) / SR
    levels = run(CENSE, np.sin(2 * np.pi * 997.3 * t))
    # Off-bin, Tukey leakage spreads the power over a few bins, all inside the band.
    np.testing.assert_allclose(levels[:-1, 17], 10 * math.log10(0.5), atol=0.01)


@pytest.mark.parametrize(("seconds", "frames"), [(1, 8), (10, 80), (0.125, 1), (0.126, 2)])
def test_cense_frame_counts(seconds: float, frames: int) -> None:
    assert run(CENSE, np.zeros(round(seconds * SR))).shape == (frames, 29)


def level_sigma(rep: Representation, seconds: float) -> np.ndarray:
    """Standard error in dB of a band's long-term level from noise: each FFT bin's power is
    exponential (relative spread 1), so averaging K = frames x bins of them leaves
    10 log10(e) / sqrt(K) dB."""
    bins = filterbank_matrix(rep.filterbank, framing=rep.framing).sum(axis=1)
    frames = rep.n_frames(round(seconds * rep.sample_rate))
    return np.asarray(10 * math.log10(math.e) / np.sqrt(frames * bins))


def test_pink_noise_gives_flat_bands(rng: np.random.Generator) -> None:
    levels = mean_band_levels(CENSE, coloured_noise(1.0, 60.0, rng))
    # Bands 0-4 (20-40 Hz) hold at most ~2 FFT bins of 7.8 Hz, and leakage from the
    # stronger bins below them (pink noise rises towards 0 Hz) lifts them by up to ~1 dB:
    # they are left out. The others are flat to 4 standard errors (0.5 dB at 63 Hz).
    flat = levels[5:] - levels[17]
    assert (np.abs(flat) < 4 * level_sigma(CENSE, 60.0)[5:] + 0.02).all()


def test_white_noise_rises_1_db_per_band(rng: np.random.Generator) -> None:
    levels = mean_band_levels(CENSE, coloured_noise(0.0, 60.0, rng))
    slope = np.polyfit(np.arange(5, 29), levels[5:], 1)[0]
    expected = 10 * math.log10(10 ** (1 / 10))  # bandwidth grows by 10**(1/10) per band
    assert slope == pytest.approx(expected, abs=0.02)
    sigma = level_sigma(CENSE, 60.0)
    step_sigma = np.hypot(sigma[5:-1], sigma[6:])  # difference of two independent estimates
    assert (np.abs(np.diff(levels[5:]) - expected) < 4 * step_sigma).all()


def test_parseval_for_band_limited_noise(rng: np.random.Generator) -> None:
    n = 10 * SR
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    spectrum[(freqs < 100) | (freqs > 10_000)] = 0  # well inside 17.8 Hz - 14.1 kHz
    x = np.fft.irfft(spectrum, n)
    x /= np.abs(x).max()
    band_power = (10 ** (run(CENSE, x).astype(np.float64) / 10)).sum(axis=1)
    # Per frame, Parseval is exact for the window-weighted mean square; only leakage out of
    # the covered range (< 1e-6 here) and float32 rounding separate them.
    w = scipy.signal.windows.tukey(4096, 0.2, sym=False)
    padded = np.pad(x, (0, 96))
    weighted = np.array([np.sum((padded[i * 4000:i * 4000 + 4096] * w) ** 2)
                         for i in range(80)]) / np.sum(w**2)
    np.testing.assert_allclose(band_power, weighted, rtol=1e-5)
    # Over 10 s, frames weight the signal unevenly (taper, 96-sample overlaps): 1 %.
    assert band_power.mean() == pytest.approx(np.mean(x**2), rel=0.01)


def cense_reference(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The sensor's formula, frame by frame: X = |rfft(x w)|**2,
    rms = sqrt(sum_band X / 2) / (N / 2) * ec, L = 20 log10(rms)."""
    n, hop = 4096, 4000
    w = scipy.signal.windows.tukey(n, 0.2, sym=False)
    ec = 1 / math.sqrt(np.mean(w**2))
    n_frames = math.ceil(len(x) / hop)
    padded = np.pad(x, (0, (n_frames - 1) * hop + n - len(x)))
    levels = np.empty((n_frames, len(weights)))
    for i in range(n_frames):
        power = np.abs(np.fft.rfft(padded[i * hop:i * hop + n] * w)) ** 2
        rms = np.sqrt(weights @ power / 2) / (n / 2) * ec
        levels[i] = 20 * np.log10(rms)
    return levels


@pytest.mark.parametrize("rep", [CENSE, COMPANION], ids=lambda r: r.name)
def test_cense_equals_the_sensor_formula_on_a_real_clip(rep: Representation,
                                                        excerpt_files: list[Path]) -> None:
    edges = list(rep.filterbank.edges)
    rule = {"ceil_inclusive": ceil_inclusive_definition, "partition": partition_definition}
    weights = rule[rep.filterbank.bin_rule](edges, 2049)
    audio, _ = load_audio(clip(excerpt_files, "jackhammer"), sample_rate=SR)
    ref = cense_reference(audio.astype(np.float64), weights)
    ours = run(rep, audio)
    assert ours.shape == ref.shape == (32, 29)
    # float32 FFT: ~1e-7 of the frame's loudest bins in every band; 0.01 dB covers bands
    # 90 dB below the frame's loudest (this clip spans 70 dB).
    np.testing.assert_allclose(ours, ref, rtol=0, atol=0.01)


# -- other sample rates, channels and lengths -----------------------------------------


def test_excerpt_at_22050_hz_is_resampled(excerpt_files: list[Path]) -> None:
    path = clip(excerpt_files, "siren")
    raw, sr = soundfile.read(path, dtype="float32")
    assert sr == 22_050
    audio, out_sr = load_audio(path, sample_rate=SR)
    assert out_sr == SR and len(audio) == 128_000  # 88,200 * 640 / 441
    np.testing.assert_allclose(audio, scipy.signal.resample_poly(raw, 640, 441), atol=1e-6)
    assert run(CENSE, audio).shape == (32, 29)
    assert run(PANN, audio).shape == (401, 64)


def test_stereo_44100_hz_is_downmixed_and_resampled(shared_data: Path) -> None:
    path = shared_data / "street-clips" / "17-CAR-Rolls-Royce-Horn-2.wav"
    raw, sr = soundfile.read(path, dtype="float32", always_2d=True)
    assert (sr, raw.shape[1]) == (44_100, 2)
    audio, _ = load_audio(path, sample_rate=SR)
    expected = scipy.signal.resample_poly(raw.mean(axis=1), 320, 441)
    np.testing.assert_allclose(audio, expected, atol=1e-6)
    levels = run(CENSE, audio)
    assert levels.shape == (CENSE.n_frames(len(audio)), 29) and np.isfinite(levels).all()


def test_16_khz_clip_feeds_yamnet_directly_and_cense_resampled(shared_data: Path) -> None:
    path = shared_data / "street-clips" / "noise-free-sound-0145.wav"
    raw, _ = soundfile.read(path, dtype="float32")
    audio16, _ = load_audio(path, sample_rate=16_000)
    np.testing.assert_array_equal(audio16, raw)
    np.testing.assert_allclose(run(YAMNET, audio16), yamnet_reference(raw.astype(np.float64)),
                               atol=1e-3)  # float32, as in the test above
    audio32, _ = load_audio(path, sample_rate=SR)
    assert len(audio32) == 2 * len(raw)
    np.testing.assert_allclose(audio32, resample(raw, orig_sr=16_000, target_sr=SR))


def test_short_stereo_clip_works_everywhere(shared_data: Path) -> None:
    path = shared_data / "street-clips" / "dogbark.wav"  # 0.16 s, stereo, 44.1 kHz
    audio32, _ = load_audio(path, sample_rate=SR)
    audio16, _ = load_audio(path, sample_rate=16_000)
    for rep, audio in ((CENSE, audio32), (PANN, audio32), (YAMNET, audio16)):
        out = run(rep, audio)
        assert out.shape == (rep.n_frames(len(audio)), rep.n_bands) and out.shape[0] > 0
        assert np.isfinite(out).all()


@pytest.mark.parametrize(("rep", "samples", "message"), [
    (YAMNET, 300, r"yamnet: 300 samples are shorter than one frame \(400\).*0\.025 s"),
    (PANN, 300, r"pann: 300 samples are too short for reflect padding of 512.*0\.016 s"),
])
def test_too_short_audio_gives_a_clear_error(rep: Representation, samples: int,
                                             message: str) -> None:
    with pytest.raises(InputError, match=message):
        run(rep, np.zeros(samples))


def test_audio_of_wrong_rank_is_refused() -> None:
    with pytest.raises(InputError, match=r"cense: expected audio of shape \(batch, samples\), "
                                         r"got \(1, 2, 32000\)"):
        RepresentationTransform(CENSE)(torch.zeros(1, 2, 32_000))


# -- building blocks ------------------------------------------------------------------


@pytest.mark.parametrize("rep", [CENSE, PANN, YAMNET], ids=lambda r: r.name)
def test_frame_audio_matches_manual_framing(rep: Representation,
                                            rng: np.random.Generator) -> None:
    fr = rep.framing
    x = rng.standard_normal(9_999)
    frames = frame_audio(torch.from_numpy(x)[None], rep)[0].numpy()
    if fr.padding == "center":
        x = np.pad(x, fr.frame_length // 2, mode="reflect")
    elif fr.padding == "end":
        x = np.pad(x, (0, fr.frame_length))
    expected = np.stack([x[i * fr.hop_length:i * fr.hop_length + fr.frame_length]
                         for i in range(rep.n_frames(9_999))])
    np.testing.assert_array_equal(frames, expected)


def test_apply_scaling_formulas() -> None:
    values = torch.tensor([[1e-12, 1e-3, 0.5, 2.0]], dtype=torch.float64)
    x = values.numpy()
    db = apply_scaling(values, Scaling(floor=1e-10, offset=-88.0)).numpy()
    np.testing.assert_allclose(db, 10 * np.log10(np.maximum(x, 1e-10)) - 88.0)
    magnitude_db = apply_scaling(values, Scaling(domain="magnitude", floor=1e-10)).numpy()
    np.testing.assert_allclose(magnitude_db, 20 * np.log10(np.maximum(x, 1e-10)))
    ln = apply_scaling(values, Scaling(domain="magnitude", log="ln", floor=0.0, add=0.001))
    np.testing.assert_allclose(ln.numpy(), np.log(x + 0.001))
    mean, std = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([2.0, 2.0, 4.0, 4.0])
    standard = apply_scaling(values, Scaling(log="none", mean=(0.0,), std=(1.0,)),
                             mean=mean, std=std).numpy()
    np.testing.assert_allclose(standard, (x - mean.numpy()) / std.numpy())


def test_offset_shifts_levels_exactly(rng: np.random.Generator) -> None:
    x = rng.standard_normal(SR) * 0.1
    np.testing.assert_allclose(run(CENSE.with_offset(-88.0), x), run(CENSE, x) - 88.0,
                               atol=1e-4)
