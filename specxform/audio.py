"""Audio input: reading, validation, downmix and polyphase resampling."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile

from specxform.errors import InputError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def check_audio(audio: np.ndarray, *, name: str = "audio") -> np.ndarray:
    """Validate a waveform; return it as float32 of shape (samples,) or (batch, samples)."""
    audio = np.asarray(audio)
    if audio.ndim not in (1, 2):
        raise InputError(
            f"{name}: expected a waveform of shape (samples,) or (batch, samples), "
            f"got shape {audio.shape}."
        )
    if audio.shape[-1] == 0:
        raise InputError(f"{name}: the waveform is empty (0 samples); give non-empty audio.")
    if not np.issubdtype(audio.dtype, np.floating) and not np.issubdtype(audio.dtype, np.integer):
        raise InputError(f"{name}: audio must be numeric, got dtype {audio.dtype}.")
    if not np.all(np.isfinite(audio)):
        bad = int(np.size(audio) - np.count_nonzero(np.isfinite(audio)))
        raise InputError(f"{name}: {bad} samples are NaN or infinite; clean the audio first.")
    return audio.astype(np.float32, copy=False)


def resample(audio: np.ndarray, *, orig_sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``, Kaiser window) along the last axis.

    The ratio is reduced exactly (22,050 -> 32,000 Hz is 640/441), so the
    output has ``ceil(n * target_sr / orig_sr)`` samples.
    """
    if orig_sr <= 0 or target_sr <= 0:
        raise InputError(f"sample rates must be positive, got {orig_sr} -> {target_sr} Hz.")
    if orig_sr == target_sr:
        return audio
    ratio = Fraction(target_sr, orig_sr)
    import scipy.signal  # deferred: ~1 s to import; listing plugins must stay fast

    out = scipy.signal.resample_poly(audio, ratio.numerator, ratio.denominator, axis=-1)
    return out.astype(np.float32, copy=False)


def load_audio(path: str | Path, *, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file as mono float32 in [-1, 1].

    Stereo and multichannel files are downmixed by averaging channels. With
    ``sample_rate`` given, the audio is resampled to it.

    Returns
    -------
    audio : np.ndarray, shape (samples,)
    sample_rate : int
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such audio file; check the path.")
    try:
        data, sr = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise InputError(
            f"{path}: cannot read audio ({exc}); give a WAV, FLAC or OGG file."
        ) from exc
    if data.shape[0] == 0:
        raise InputError(f"{path}: the file holds no samples; give a non-empty recording.")
    audio = check_audio(data.mean(axis=1), name=str(path))
    if sample_rate is not None:
        audio = resample(audio, orig_sr=sr, target_sr=sample_rate)
        sr = sample_rate
    return audio, int(sr)


def find_audio_files(inputs: list[str | Path]) -> list[Path]:
    """Expand files and folders (recursively) into a sorted list of audio files."""
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            from specxform.io import visible_files  # deferred: io is not needed to read audio

            found.extend(p for p in visible_files(item) if p.suffix.lower() in AUDIO_SUFFIXES)
        elif item.exists():
            found.append(item)
        else:
            raise InputError(f"{item}: no such file or folder; check the path.")
    if not found:
        raise InputError(
            f"no audio files ({', '.join(AUDIO_SUFFIXES)}) found in {[str(i) for i in inputs]}."
        )
    return found
