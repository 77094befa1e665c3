"""The main job on an example built in code: an urban scene, its Cense levels, PINV Mels.

:func:`urban_scene` synthesises 10 s of a street at 32 kHz from a fixed seed
(a siren sweeping 600-1,400 Hz, two car-horn blasts, an idling engine, pink
background noise). :func:`run_demo` computes the scene's Cense third-octave
levels, transcodes them with the derived PINV into the Mel inputs of PANN and
YAMNet, compares each with the true Mel of the audio (Mel MSE) and writes the
audio, the levels and one comparison PNG per target.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import attrs
import numpy as np
import scipy.signal
import soundfile

from specxform import api
from specxform.datasets import Clip, Split
from specxform.errors import InputError
from specxform.evaluation.plotting import plot_comparison
from specxform.io import atomic_write, write_array
from specxform.progress import ProgressCallback

SAMPLE_RATE = 32_000
DURATION = 10.0
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


def run_demo(folder: str | Path = "specxform-demo", *, source: str | None = None,
             targets: tuple[str, ...] | None = None, seed: int = 0) -> DemoResult:
    """Run the main job on :func:`urban_scene` and write its outputs into ``folder``.

    Writes ``scene.wav`` (32 kHz float), ``<source>.npz`` (the levels) and
    ``<source>_to_<target>.png`` per target; every file is written atomically.
    ``source`` and ``targets`` default to the demo a plugin declares
    (:meth:`~specxform.registry.Registry.demo`).

    Returns
    -------
    DemoResult
    """
    from specxform.plugins import get_registry

    declared = get_registry().demo()
    source = declared.source if source is None else source
    targets = declared.targets if targets is None else targets
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


#: A small residual CNN (the pair's default has 5 layers of 64 channels): it trains in minutes.
STUDENT_CONFIG = {"layers": 3, "channels": 16}
#: Length of each training scene: SoundAQnet's loudness costs ~2.5 s of CPU per second of audio.
#: Two of SoundAQnet's 4 s chunks per scene.
TRAIN_SECONDS = 8.0


def varied_scene(seed: int, *, duration: float = DURATION, sample_rate: int = SAMPLE_RATE
                 ) -> np.ndarray:
    """A street scene whose events and mix are drawn from ``seed`` (training examples).

    The siren's range and period, the horn's pitch and blast times, the engine's
    firing rate and the gains of the four sources vary with the seed.

    Returns
    -------
    np.ndarray, shape (round(duration * sample_rate),), float32
        Peak-normalised to :data:`PEAK`.
    """
    rng = np.random.default_rng([seed, 1])
    t = np.arange(round(duration * sample_rate)) / sample_rate
    low = rng.uniform(450.0, 800.0)
    starts = np.sort(rng.uniform(0.0, duration - 1.0, size=rng.integers(1, 4)))
    blasts = tuple((float(s), float(s + rng.uniform(0.3, 1.0))) for s in starts)
    gains = rng.uniform([0.05, 0.05, 0.02, 0.005], [0.4, 0.35, 0.15, 0.05])
    parts = (siren(t, low=low, high=low + rng.uniform(500.0, 1000.0),
                   period=rng.uniform(2.0, 6.0)),
             car_horn(t, blasts=blasts, f0=rng.uniform(300.0, 500.0)),
             idling_engine(t, rng, firing_rate=rng.uniform(20.0, 40.0)),
             pink_noise(t.size, rng))
    mix = sum(g * p for g, p in zip(gains, parts, strict=True))
    return (PEAK * mix / np.max(np.abs(mix))).astype(np.float32)


@attrs.frozen
class TrainDemoResult:
    """The training part of the demo: PINV and the best student on the validation scenes.

    ``pinv`` and ``student`` hold :func:`specxform.training.trainer.evaluate`'s metrics:
    ``loss`` (BCE of the teacher on the transcoded Mel against its
    probabilities on the true Mel), ``top1`` (chunks), ``ptopa_fc`` (scenes:
    chunk probabilities averaged per scene), ``mel_mse`` (standardised dB²).
    """

    run: Path
    target: str
    train_scenes: int
    valid_scenes: int
    valid_chunks: int
    best_epoch: int
    epochs: int
    pinv: dict[str, float]
    student: dict[str, float]
    seconds: float


def _write_scenes(folder: Path, seeds: range, duration: float) -> list[Clip]:
    """Write each seed's :func:`varied_scene` once (a rerun reuses the files and the cache)."""
    clips = []
    for seed in seeds:
        path = folder / f"scene{seed:02d}.wav"
        if not path.is_file():
            with atomic_write(path) as tmp:
                soundfile.write(tmp, varied_scene(seed, duration=duration), SAMPLE_RATE,
                                subtype="FLOAT", format="WAV")
        clips.append(Clip(path.resolve(), path.name, None, path.stem))
    return clips


def train_demo(folder: str | Path = "specxform-demo", *, train_scenes: int = 4,
               valid_scenes: int = 2, duration: float = TRAIN_SECONDS, epochs: int = 6,
               progress: ProgressCallback | None = None) -> TrainDemoResult:
    """Train a small ``cense -> soundaqnet`` transcoder on generated scenes.

    Writes ``scenes/`` (the audio), ``cache/`` (features and SoundAQnet's
    outputs on the true Mels, reused by a rerun) and ``run/`` (checkpoints,
    replaced on each run) into ``folder``, then trains with
    :func:`specxform.pipeline.training.train_pair` (the pair's student, small) on
    ``train_scenes`` scenes and validates on ``valid_scenes`` others.

    Returns
    -------
    TrainDemoResult
    """
    from specxform.pipeline.training import train_pair
    from specxform.plugins import get_registry
    from specxform.training.trainer import TrainConfig

    if train_scenes < 1 or valid_scenes < 1:
        raise InputError(f"need at least one training and one validation scene, got "
                         f"{train_scenes} and {valid_scenes}; e.g. 4 and 2.")
    started = time.perf_counter()
    registry = get_registry()
    train_target = registry.demo().train_target
    if train_target not in {t.name for t in registry.teachers()}:
        raise InputError(f"the training demo needs the {train_target!r} teacher, which is not "
                         "installed (./dev installs it); install it or skip the training "
                         "demo (`no_train`).")
    folder = Path(folder)
    clips = _write_scenes(folder / "scenes", range(train_scenes + valid_scenes), duration)
    split = Split(tuple(clips[:train_scenes]), tuple(clips[train_scenes:]), (), seed=0,
                  fractions=(train_scenes / len(clips), valid_scenes / len(clips), 0.0),
                  scheme="demo scenes")
    run = folder / "run"
    shutil.rmtree(run, ignore_errors=True)
    pair_run = train_pair(registry.demo().source, train_target, split=split, teacher=train_target,
                          student_config=STUDENT_CONFIG, out_dir=run,
                          cache_dir=folder / "cache", registry=registry, progress=progress,
                          config=TrainConfig(epochs=epochs, batch_size=8, lr=1e-3,
                                             device="cpu"))
    result, cache = pair_run.result, pair_run.cache
    best = next(row for row in result.history if row["epoch"] == result.best_epoch)
    student = {k: best[f"valid_{k}"] for k in result.pinv_metrics}
    return TrainDemoResult(run, train_target, train_scenes, valid_scenes,
                           len(cache.rows([c.name for c in split.valid])), result.best_epoch,
                           len(result.history), dict(result.pinv_metrics), student,
                           time.perf_counter() - started)
