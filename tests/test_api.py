"""High-level API: compute, compute_file, transcode, caching, Mel MSE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from specxform import api
from specxform.audio import load_audio
from specxform.errors import InputError, SpecError, UnknownNameError
from specxform.registry import Registry
from specxform.representations.frontend import RepresentationTransform
from specxform.transcoders.pinv import PinvTranscoder


@pytest.fixture
def noise(rng: np.random.Generator) -> np.ndarray:
    """1 s of white noise at 32 kHz, RMS 0.1."""
    return (0.1 * rng.standard_normal(32_000)).astype(np.float32)


def test_representation_lookup(registry: Registry) -> None:
    cense = registry.representation("cense")
    assert api.representation("cense") is cense
    assert api.representation(cense) is cense
    with pytest.raises(UnknownNameError, match=r"'cens'.*Did you mean 'cense'"):
        api.representation("cens")


@pytest.mark.parametrize("name", ["cense", "bark", "slow_third_octave", "pann", "yamnet"])
def test_compute_shape_matches_the_spec(name: str, registry: Registry, noise) -> None:
    rep = registry.representation(name)
    out = api.compute(name, noise, 32_000)
    n = round(noise.size * rep.sample_rate / 32_000)
    assert out.shape == (rep.n_frames(n), rep.n_bands)
    assert out.dtype == np.float32 and np.isfinite(out).all()


def test_compute_equals_the_front_end(registry: Registry, noise) -> None:
    rep = registry.representation("pann")
    expected = RepresentationTransform(rep)(torch.from_numpy(noise)).numpy()
    np.testing.assert_allclose(api.compute(rep, noise, 32_000), expected, rtol=1e-6, atol=1e-5)


def test_compute_resamples_to_the_representation_rate() -> None:
    # A full-scale 1 kHz sine reads -3.01 dB in its third-octave band (SPEC section 2)
    # after 22,050 -> 32,000 Hz resampling; 0.05 dB allows the resampler's ripple.
    sr = 22_050
    t = np.arange(2 * sr) / sr
    levels = api.compute("cense", np.sin(2 * np.pi * 1000 * t), sr)
    assert levels.shape == (16, 29)
    np.testing.assert_allclose(levels[2:-2, 17], -3.0103, atol=0.05)


def test_compute_batch(noise) -> None:
    batch = np.stack([noise, 0.5 * noise])
    out = api.compute("cense", batch, 32_000)
    assert out.shape == (2, 8, 29)
    # Half the amplitude is 6.02 dB less in every band.
    np.testing.assert_allclose(out[0] - out[1], 20 * np.log10(2), atol=1e-3)


@pytest.mark.parametrize("rate", [0, -16_000, 1.5, True, "32000"])
def test_compute_rejects_bad_sample_rates(rate: object, noise) -> None:
    with pytest.raises(InputError, match="sample_rate must be a positive integer"):
        api.compute("cense", noise, rate)  # type: ignore[arg-type]


def test_compute_rejects_bad_audio(noise) -> None:
    with pytest.raises(InputError, match="empty"):
        api.compute("cense", np.zeros(0), 32_000)
    bad = noise.copy()
    bad[10] = np.nan
    with pytest.raises(InputError, match="NaN"):
        api.compute("cense", bad, 32_000)
    with pytest.raises(InputError, match="shorter than one frame"):
        api.compute("yamnet", noise[:100], 32_000)


def test_front_ends_and_transcoders_are_cached(registry: Registry, noise) -> None:
    cense, pann = registry.representation("cense"), registry.representation("pann")
    assert api.transform(cense) is api.transform(cense)
    assert api.transcoder(cense, pann) is api.transcoder(cense, pann, "pinv")
    assert api.transcoder(cense, pann, "ridge") is not api.transcoder(cense, pann)
    before = api.transform.cache_info().hits
    api.compute("cense", noise, 32_000)
    api.compute("cense", noise, 32_000)
    assert api.transform.cache_info().hits >= before + 2


def test_compute_file_matches_compute(excerpt_files: list[Path]) -> None:
    path = excerpt_files[0]
    audio, sr = load_audio(path)
    np.testing.assert_array_equal(api.compute_file("cense", path), api.compute("cense", audio, sr))
    assert api.compute_file("pann", path).shape == (401, 64)  # 4.00 s clips: 1 + 128000 // 320


def test_compute_file_names_the_file_when_too_short(tmp_path: Path) -> None:
    path = tmp_path / "click.wav"
    soundfile.write(path, np.ones(100, dtype=np.float32), 16_000)
    with pytest.raises(InputError, match=r"click\.wav: .*shorter than one frame"):
        api.compute_file("yamnet", path)


@pytest.mark.parametrize("target", ["pann", "yamnet"])
def test_transcode_shape_and_values(target: str, registry: Registry, noise) -> None:
    src, tgt = registry.representation("cense"), registry.representation(target)
    levels = api.compute(src, noise, 32_000)
    out = api.transcode(levels, "cense", target)
    coder = PinvTranscoder(src, tgt)
    assert out.shape == (coder.target_frames(levels.shape[0]), tgt.n_bands)
    np.testing.assert_allclose(out, coder(torch.from_numpy(levels)).numpy(), rtol=1e-6, atol=1e-5)
    batched = api.transcode(np.stack([levels, levels]), "cense", target)
    assert batched.shape == (2, *out.shape)


def test_transcode_methods_differ(noise) -> None:
    levels = api.compute("cense", noise, 32_000)
    pinv = api.transcode(levels, "cense", "pann", method="pinv")
    nnls = api.transcode(levels, "cense", "pann", method="nnls")
    assert pinv.shape == nnls.shape and not np.allclose(pinv, nnls)
    with pytest.raises(SpecError, match="unknown PINV method 'svd'"):
        api.transcode(levels, "cense", "pann", method="svd")


def test_transcode_of_white_noise_keeps_the_level(noise) -> None:
    # White noise has a flat PSD that third octaves describe exactly, so the PINV Mel
    # matches the true Mel up to periodogram fluctuations (about 6 dB^2 over 1 s).
    for target, bias, mse in (("pann", 1.0, 10.0), ("yamnet", 0.25, 0.3)):
        out = api.transcode(api.compute("cense", noise, 32_000), "cense", target)
        true = api.compute(target, noise, 32_000)
        assert abs(float(np.mean(out - true))) < bias
        assert api.mel_mse(out, true) < mse


def test_transcode_rejects_bad_levels() -> None:
    with pytest.raises(InputError, match="30 bands, but 'cense' has 29"):
        api.transcode(np.zeros((8, 30)), "cense", "pann")
    with pytest.raises(InputError, match="NaN"):
        api.transcode(np.full((8, 29), np.nan), "cense", "pann")
    with pytest.raises(SpecError, match="need a source and a target"):
        api.transcode(np.zeros((8, 64)), "pann", "cense")


def test_mel_mse(rng: np.random.Generator) -> None:
    a = rng.normal(size=(10, 64))
    assert api.mel_mse(a, a + 2.0) == pytest.approx(4.0)
    longer = np.concatenate([a + 1.0, np.full((3, 64), 100.0)])
    assert api.mel_mse(a, longer) == pytest.approx(1.0)  # only the frames both hold
    with pytest.raises(InputError, match="same bands"):
        api.mel_mse(a, a[:, :32])
    with pytest.raises(InputError, match="without frames"):
        api.mel_mse(a[:0], a[:0])
