"""Audio that can be read but is not what it claims: truncated files and too low sample rates.

Issue 12, items 4 and 5: a WAV whose header promises more samples than the
file holds was read silently; 8 kHz audio gave 'cense' levels of about -99 dB
in its upper bands without a word; a 1 Hz file was accepted.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile

from specxform import api
from specxform.audio import MIN_SAMPLE_RATE, bands_above_nyquist, load_audio
from specxform.cli.main import main
from specxform.errors import InputError, InputWarning


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def noise(seconds: float, sample_rate: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (0.1 * rng.standard_normal(round(seconds * sample_rate))).astype(np.float32)


@pytest.fixture
def truncated(tmp_path: Path) -> Path:
    """A 1 s, 32 kHz PCM-16 WAV cut to 3/8 of its bytes: the header still says 32,000 frames."""
    full = tmp_path / "full.wav"
    soundfile.write(full, noise(1.0, 32_000), 32_000, subtype="PCM_16")
    data = full.read_bytes()
    path = tmp_path / "in" / "cut.wav"
    path.parent.mkdir()
    path.write_bytes(data[: len(data) * 3 // 8])
    full.unlink()
    return path


def test_truncated_wav_warns_with_both_counts(truncated: Path) -> None:
    with pytest.warns(InputWarning) as record:
        audio, sr = load_audio(truncated)
    (warning,) = record
    message = str(warning.message)
    assert sr == 32_000 and str(len(audio)) in message and "32000" in message, message
    assert str(truncated) in message and "`strict`" in message


def test_intact_files_do_not_warn(tmp_path: Path) -> None:
    for subtype, suffix in (("PCM_16", ".wav"), ("FLOAT", ".wav"), ("PCM_24", ".flac")):
        path = tmp_path / f"ok_{subtype}{suffix}"
        soundfile.write(path, noise(0.5, 32_000), 32_000, subtype=subtype)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            load_audio(path)


def test_features_warns_on_a_truncated_wav_and_strict_refuses_it(capsys, tmp_path: Path,
                                                                truncated: Path) -> None:
    code, out, err = run(capsys, "features", "--rep", "cense", truncated, "-o", tmp_path / "a")
    assert code == 0 and "wrote 1 array(s)" in out
    assert err.startswith("specxform: warning: ") and "truncated" in err and "32000" in err
    assert err.count("\n") == 1, err
    code, out, err = run(capsys, "features", "--rep", "cense", "--strict", truncated,
                         "-o", tmp_path / "b")
    assert code == 2 and out == "" and err.startswith("specxform: error: "), err
    assert "truncated" in err and not (tmp_path / "b").exists()


@pytest.mark.parametrize("rate", [1, 100, 999])
def test_rates_that_cannot_be_audio_are_refused(capsys, tmp_path: Path, rate: int) -> None:
    path = tmp_path / f"r{rate}.wav"
    soundfile.write(path, noise(max(2.0, 64 / rate), rate), rate)
    with pytest.raises(InputError, match=f"{rate} Hz"):
        load_audio(path)
    with pytest.raises(InputError, match=f"{MIN_SAMPLE_RATE}"):
        api.compute("cense", noise(1.0, 1000)[:rate], rate)
    code, _, err = run(capsys, "features", "--rep", "cense", path, "-o", tmp_path / "o")
    assert code == 2 and f"{rate} Hz" in err and not (tmp_path / "o").exists()


def test_bands_above_nyquist_are_named(registry) -> None:
    cense = registry.representation("cense")
    above = bands_above_nyquist(cense, 8000)
    # Bands whose lower edge (centre / 10**0.05) is at or above 4 kHz: 5 kHz to 12.5 kHz.
    assert [round(c) for c in above.values()] == [5012, 6310, 7943, 10000, 12589]
    assert bands_above_nyquist(cense, 32_000) == {}
    pann = registry.representation("pann")
    assert bands_above_nyquist(pann, 32_000) == {}
    assert len(bands_above_nyquist(pann, 16_000)) == 9  # PANN's Mel bands reach 14 kHz


def test_low_rate_audio_warns_which_bands_are_empty(capsys, tmp_path: Path) -> None:
    path = tmp_path / "phone.wav"
    soundfile.write(path, noise(2.0, 8000), 8000)
    with pytest.warns(InputWarning, match="5.01 kHz to 12.6 kHz"):
        levels = api.compute_file("cense", path)
    # What the warning is about: the noise reads about -35 dB per band below 4 kHz, the
    # empty bands only the resampler's leakage (about -65 dB); -60 dB separates the two.
    assert levels[:, -5:].max() < -60 < levels[:, :20].min()
    code, _, err = run(capsys, "features", "--rep", "cense", path, "-o", tmp_path / "o.npy")
    assert code == 0 and "warning" in err and "bands 24-28" in err and "8000 Hz" in err, err
    code, _, err = run(capsys, "features", "--rep", "cense", "--strict", path,
                       "-o", tmp_path / "p.npy")
    assert code == 2 and "bands 24-28" in err and not (tmp_path / "p.npy").exists()


def test_one_warning_per_rate_for_many_files(capsys, tmp_path: Path) -> None:
    for i in range(3):
        soundfile.write(tmp_path / f"c{i}.wav", noise(1.0, 8000), 8000)
    code, _, err = run(capsys, "features", "--rep", "cense", *sorted(tmp_path.glob("*.wav")),
                       "-o", tmp_path / "out")
    assert code == 0 and err.count("warning") == 1, err
