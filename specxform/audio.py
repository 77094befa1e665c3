"""Audio input: reading, validation, downmix and polyphase resampling.

Checks beyond "can it be decoded":

- A WAV file whose ``data`` chunk promises more samples than the file holds
  (a copy cut short) is read as far as it goes, with an
  :class:`~specxform.errors.InputWarning` giving both counts.
- Sample rates below :data:`MIN_SAMPLE_RATE` cannot be audio (a header
  written wrong): refused.
- :func:`warn_bandwidth` warns when bands of a representation lie entirely
  above the input's Nyquist frequency (8 kHz audio has nothing in Cense's
  5 kHz to 12.5 kHz bands, which read as silence), naming the bands.

The command line prints warnings as one line each and ``--strict`` turns them
into errors.
"""

from __future__ import annotations

import struct
import warnings
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile

from specxform.errors import InputError, InputWarning

if TYPE_CHECKING:
    from specxform.representations.specs import Representation

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
#: Lowest sample rate (Hz) accepted as audio; lower rates are refused.
MIN_SAMPLE_RATE = 1000


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
    check_sample_rate(sr, name=str(path))
    declared = wav_declared_frames(path)
    if declared is not None and data.shape[0] < declared:
        warnings.warn(
            f"{path}: truncated: its header declares {declared} frames ({declared / sr:.3f} s) "
            f"but the file holds {data.shape[0]} ({data.shape[0] / sr:.3f} s); copy or export it "
            "again (without `strict`, the frames present are used).",
            InputWarning, stacklevel=2,
        )
    audio = check_audio(data.mean(axis=1), name=str(path))
    if sample_rate is not None:
        audio = resample(audio, orig_sr=sr, target_sr=sample_rate)
        sr = sample_rate
    return audio, int(sr)


def check_sample_rate(sample_rate: int, *, name: str = "audio") -> None:
    """Refuse sample rates that cannot be audio (below :data:`MIN_SAMPLE_RATE`).

    Raises
    ------
    InputError
    """
    if sample_rate < MIN_SAMPLE_RATE:
        raise InputError(
            f"{name}: a sample rate of {sample_rate} Hz cannot be audio (the lowest accepted is "
            f"{MIN_SAMPLE_RATE} Hz); the file's header is probably wrong: rewrite it with the "
            "rate the samples were recorded at."
        )


def wav_declared_frames(path: str | Path) -> int | None:
    """Frames the ``data`` chunk of a RIFF/WAVE file declares, or None (other formats, RF64,
    streamed files of unknown length, unreadable headers)."""
    try:
        with Path(path).open("rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block_align = 0
            while True:
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                kind, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if kind == b"fmt ":
                    fmt = fh.read(size + (size & 1))
                    if len(fmt) < 14:
                        return None
                    block_align = struct.unpack("<H", fmt[12:14])[0]
                elif kind == b"data":
                    if block_align == 0 or size in (0, 0xFFFFFFFF):
                        return None  # no format yet, or a length the writer left unknown
                    return size // block_align
                else:
                    fh.seek(size + (size & 1), 1)
    except OSError:
        return None


def _band_edges(rep: Representation) -> list[tuple[float, float]]:
    """(lower edge, centre) in Hz of each band of ``rep``."""
    from specxform.representations.specs import BandFilterbank

    bank = rep.filterbank
    if isinstance(bank, BandFilterbank):
        return [(lo, c) for (lo, _), c in zip(bank.edges, bank.centres, strict=True)]
    from specxform.representations.filterbanks import hz_to_mel, mel_to_hz

    points = np.linspace(float(hz_to_mel(bank.fmin, scale=bank.scale)),
                         float(hz_to_mel(bank.fmax, scale=bank.scale)), bank.n_mels + 2)
    hz = np.asarray(mel_to_hz(points, scale=bank.scale), dtype=np.float64)
    return [(float(hz[i]), float(hz[i + 1])) for i in range(bank.n_mels)]


def bands_above_nyquist(rep: Representation, sample_rate: int) -> dict[int, float]:
    """Bands of ``rep`` that lie entirely above the Nyquist frequency of ``sample_rate``.

    Returns
    -------
    dict of int to float
        Band index (0-based) to its centre frequency in Hz, for every band
        whose lower edge is at or above ``sample_rate / 2``: audio at that rate
        holds nothing there.
    """
    nyquist = sample_rate / 2
    return {i: centre for i, (low, centre) in enumerate(_band_edges(rep)) if low >= nyquist}


def _hz(value: float) -> str:
    return f"{value / 1000:.3g} kHz" if value >= 1000 else f"{value:.3g} Hz"


def warn_bandwidth(rep: Representation, sample_rate: int) -> None:
    """Warn (:class:`~specxform.errors.InputWarning`) when bands of ``rep`` lie above the
    Nyquist frequency of audio at ``sample_rate``, naming them.

    The message does not name a file, so that a folder of files at one rate
    gives one warning (Python shows a repeated warning once).
    """
    above = bands_above_nyquist(rep, sample_rate)
    if not above:
        return
    first, last = min(above), max(above)
    which = (f"band {first} ({_hz(above[first])})" if first == last else
             f"bands {first}-{last} ({_hz(above[first])} to {_hz(above[last])})")
    needed = 2 * max(low for low, _ in _band_edges(rep))
    verb = "lies" if first == last else "lie"
    warnings.warn(
        f"audio at {sample_rate} Hz holds nothing above {_hz(sample_rate / 2)}, but "
        f"{rep.name!r} {which} {verb} above it: silent for every file at this rate; use audio "
        f"recorded at {needed / 1000:.1f} kHz or more for every band (without `strict`, those "
        "bands are kept, silent).",
        InputWarning, stacklevel=3,
    )


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
