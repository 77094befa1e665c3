"""The main job on an example built in code: an urban scene, its Cense levels, PINV Mels.

:func:`urban_scene` synthesises 10 s of a street at 32 kHz from a fixed seed
(a siren sweeping 600-1,400 Hz, two car-horn blasts, an idling engine, pink
background noise). :func:`run_demo` computes the scene's Cense third-octave
levels, transcodes them with the derived PINV into the Mel inputs of PANN and
YAMNet, compares each with the true Mel of the audio (Mel MSE) and writes the
audio, the levels and one comparison PNG per target.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import scipy.signal
import soundfile

from specxform import api
from specxform.io import atomic_write, write_array
from specxform.plotting import plot_comparison

SAMPLE_RATE = 32_000
DURATION = 10.0
SOURCE = "cense"
TARGETS = ("pann", "yamnet")
#: Peak level of the mix (the paper peak-normalised each clip; 0.9 leaves headroom).
PEAK = 0.9
#: (start, end) of the car-horn blasts in seconds.
HORN_BLASTS = ((2.0, 2.6), (6.5, 7.4))


def _ramp(t: np.ndarray, start: float, end: float, fade: float = 0.01) -> np.ndarray:
    """Gate of 1 between ``start`` and ``end`` seconds with raised-cosine fades (no clicks)."""
    rise = np.clip((t - start) / fade, 0.0, 1.0)
    fall = np.clip((end - t) / fade, 0.0, 1.0)
    return np.sin(np.pi / 2 * np.minimum(rise, fall)) ** 2


def siren(t: np.ndarray, *, low: float = 600.0, high: float = 1400.0, period: float = 4.0
          ) -> np.ndarray:
    """Wail siren: a tone whose frequency sweeps sinusoidally between ``low`` and ``high`` Hz.

    Parameters
    ----------
    t : np.ndarray, shape (samples,)
        Sample times in seconds.

    Returns
    -------
    np.ndarray, shape (samples,)
        Fundamental plus weaker 2nd and 3rd harmonics, under a pass-by envelope
        peaking mid-scene (peak amplitude about 1).
    """
    sr = 1.0 / (t[1] - t[0])
    freq = (low + high) / 2 - (high - low) / 2 * np.cos(2 * np.pi * t / period)
    phase = 2 * np.pi * np.cumsum(freq) / sr
    tone = sum(a * np.sin(k * phase) for k, a in ((1, 1.0), (2, 0.3), (3, 0.1)))
    passby = np.exp(-(((t - t[-1] / 2) / (0.35 * t[-1])) ** 2))
    return np.asarray(passby * tone / 1.4)


def car_horn(t: np.ndarray, *, blasts: tuple[tuple[float, float], ...] = HORN_BLASTS,
             f0: float = 400.0, harmonics: int = 5) -> np.ndarray:
    """Car-horn blasts: a harmonic stack on ``f0`` Hz (amplitudes 1/k) gated by ``blasts``.

    Returns
    -------
    np.ndarray, shape (samples,)
    """
    stack = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, harmonics + 1))
    gate = sum(_ramp(t, start, end) for start, end in blasts)
    return np.asarray(gate * stack / 2.3)


def idling_engine(t: np.ndarray, rng: np.random.Generator, *, firing_rate: float = 30.0
                  ) -> np.ndarray:
    """Idling engine: noise low-passed at 200 Hz, pulsed at ``firing_rate`` Hz.

    Returns
    -------
    np.ndarray, shape (samples,), unit RMS
    """
    sr = 1.0 / (t[1] - t[0])
    lowpass = scipy.signal.butter(4, 200.0, fs=sr, output="sos")
    rumble = scipy.signal.sosfilt(lowpass, rng.standard_normal(t.size))
    pulses = (0.5 + 0.5 * np.cos(2 * np.pi * firing_rate * t)) ** 3
    out = rumble * pulses
    return np.asarray(out / np.sqrt(np.mean(out**2)))


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f power) noise of ``n`` samples and unit RMS, shaped in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum[1:] /= np.sqrt(np.arange(1, spectrum.size))
    spectrum[0] = 0.0
    out = np.fft.irfft(spectrum, n)
    return np.asarray(out / np.sqrt(np.mean(out**2)))


def urban_scene(*, duration: float = DURATION, sample_rate: int = SAMPLE_RATE, seed: int = 0
                ) -> np.ndarray:
    """Synthesise the demo's street scene.

    Parameters
    ----------
    duration : float
        Length in seconds.
    sample_rate : int
        In Hz.
    seed : int
        Seed of the noise generators; the scene is a pure function of the arguments.

    Returns
    -------
    np.ndarray, shape (round(duration * sample_rate),), float32
        Peak-normalised to :data:`PEAK`.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(round(duration * sample_rate)) / sample_rate
    mix = (0.30 * siren(t) + 0.25 * car_horn(t) + 0.06 * idling_engine(t, rng)
           + 0.02 * pink_noise(t.size, rng))
    return (PEAK * mix / np.max(np.abs(mix))).astype(np.float32)


@attrs.frozen
class TargetResult:
    """One target of the demo: Mel MSE of the PINV Mel against the true Mel, and its PNG."""

    target: str
    mse: float
    frames: int
    png: Path


@attrs.frozen
class DemoResult:
    """Everything :func:`run_demo` wrote and measured."""

    folder: Path
    audio: Path
    levels: Path
    source: str
    source_frames: int
    targets: tuple[TargetResult, ...]


def run_demo(folder: str | Path = "specxform-demo", *, source: str = SOURCE,
             targets: tuple[str, ...] = TARGETS, seed: int = 0) -> DemoResult:
    """Run the main job on :func:`urban_scene` and write its outputs into ``folder``.

    Writes ``scene.wav`` (32 kHz float), ``<source>.npz`` (the levels) and
    ``<source>_to_<target>.png`` per target; every file is written atomically.

    Returns
    -------
    DemoResult
    """
    folder = Path(folder)
    audio = urban_scene(seed=seed)
    levels = api.compute(source, audio, SAMPLE_RATE)
    wav = folder / "scene.wav"
    with atomic_write(wav) as tmp:
        soundfile.write(tmp, audio, SAMPLE_RATE, subtype="FLOAT", format="WAV")
    npz = write_array(folder / f"{source}.npz", levels, api.representation(source))
    results = []
    for target in targets:
        transcoded = api.transcode(levels, source, target)
        true_mel = api.compute(target, audio, SAMPLE_RATE)
        png = plot_comparison(
            folder / f"{source}_to_{target}.png", levels=levels,
            source=api.representation(source), transcoded=transcoded,
            target=api.representation(target), true_mel=true_mel,
            title=f"specxform demo: {source} -> {target} (synthetic street scene)",
        )
        results.append(TargetResult(target, api.mel_mse(transcoded, true_mel),
                                    transcoded.shape[0], png))
    return DemoResult(folder, wav, npz, source, levels.shape[0], tuple(results))
