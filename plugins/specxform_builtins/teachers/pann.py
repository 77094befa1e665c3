"""PANN ResNet38 and Cnn14 (Kong et al., 2020) on a precomputed log-Mel.

The modules reproduce ``ResNet38`` and ``Cnn14`` of
qiuqiangkong/audioset_tagging_cnn (``pytorch/models.py``) from ``bn0`` onwards:
the frozen STFT/log-Mel front end (torchlibrosa ``Spectrogram`` and
``LogmelFilterBank``) is left out because specxform produces the Mel itself.
Every remaining parameter and buffer has the official state-dict name and shape,
so the official checkpoints load strictly once their three front-end entries
(:data:`FRONT_END_KEYS`) are set aside.

Input: log-Mel in dB, ``(batch, frames, 64)``, 32 kHz, hop 320 (see the spec's
section 3). ``bn0`` normalises each Mel band, as in the original, where the
``(batch, 1, frames, mels)`` tensor is transposed so that bands are channels.

Output: ``logits = fc_audioset(relu(fc1(pooled)))``; ``probs = sigmoid(logits)``
is the original ``clipwise_output``. In eval mode dropout is the identity. In
train mode dropout follows the original; SpecAugment and mixup are not
reproduced (training a teacher is outside specxform's scope).

Counts (checked by the tests):

==========  =====================  =================  ======================
model       parameters (here)      with front end     official state-dict keys
==========  =====================  =================  ======================
ResNet38    73,783,247             74,866,703         246 = 243 + 3 front end
Cnn14       80,753,615             81,837,071         84 = 81 + 3 front end
==========  =====================  =================  ======================

The front end holds 2 * 513 * 1024 (STFT real and imaginary Conv1d kernels,
``n_fft // 2 + 1 = 513`` outputs, kernel 1024) + 513 * 64 (``melW``) =
1,083,456 frozen parameters. The official key counts include the front-end keys
and the ``num_batches_tracked`` buffer of every BatchNorm (5 entries per
BatchNorm: weight, bias, running_mean, running_var, num_batches_tracked).
The published file sizes agree: ResNet38's 299,615,982 bytes are the float32
parameters with front end plus the BatchNorm running statistics (2 x 12,736
channels), 299,568,700 bytes, and 47,282 bytes (~190 per entry) of pickle
overhead; Cnn14's 327,428,481 bytes leave 15,173 bytes over its 84 entries. So
the files hold ``{"model": state_dict}`` and nothing large besides.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from specxform.errors import CheckpointError
from specxform.teachers.base import TeacherOutput
from specxform_builtins.teachers.published import PublishedTeacher, load_matching_state

__all__ = [
    "AUDIOSET_NUM_CLASSES",
    "FRONT_END_KEYS",
    "FRONT_END_PARAMETER_COUNT",
    "FRONT_END_SHAPES",
    "OFFICIAL_KEY_COUNTS",
    "Cnn14",
    "ResNet38",
    "load_pann_checkpoint",
    "load_pann_state_dict",
]

AUDIOSET_NUM_CLASSES = 527
_N_FFT = 1024
_N_BINS = _N_FFT // 2 + 1  # 513
_N_MELS = 64

#: State-dict entries of the frozen front end in the official checkpoints.
FRONT_END_KEYS: tuple[str, ...] = (
    "spectrogram_extractor.stft.conv_real.weight",
    "spectrogram_extractor.stft.conv_imag.weight",
    "logmel_extractor.melW",
)
#: Their shapes for the 32 kHz models (n_fft 1024, 64 Mel bands).
FRONT_END_SHAPES: dict[str, tuple[int, ...]] = {
    FRONT_END_KEYS[0]: (_N_BINS, 1, _N_FFT),
    FRONT_END_KEYS[1]: (_N_BINS, 1, _N_FFT),
    FRONT_END_KEYS[2]: (_N_BINS, _N_MELS),
}
FRONT_END_PARAMETER_COUNT = 2 * _N_BINS * _N_FFT + _N_BINS * _N_MELS  # 1,083,456
#: Number of entries in the official checkpoints' state dicts (front end included).
OFFICIAL_KEY_COUNTS: dict[str, int] = {"ResNet38": 246, "Cnn14": 84}


class _ConvBlock(nn.Module):
    """Two (3x3 conv, BatchNorm, ReLU) then average pooling: PANN ``ConvBlock``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        # Attribute order follows the original so state-dict keys come out in its order.
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor, pool: tuple[int, int] = (2, 2)) -> Tensor:
        """``(batch, in, time, mel) -> (batch, out, time // p0, mel // p1)``."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return x if pool == (1, 1) else F.avg_pool2d(x, kernel_size=pool)


class _BasicBlock(nn.Module):
    """ResNet basic block of PANN ResNet38 (``_ResnetBasicBlock``).

    Stride 2 is done by 2x2 average pooling *before* the first 3x3 conv (not by
    a strided conv); the shortcut then pools too (``downsample``).
    """

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Conv2d(in_planes, planes, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Sequential | None = None
        if stride == 2:
            # Index 0 is the parameter-free pooling: keys are downsample.1.* and .2.*.
            self.downsample = nn.Sequential(
                nn.AvgPool2d(2), nn.Conv2d(in_planes, planes, 1, bias=False), nn.BatchNorm2d(planes)
            )
        elif in_planes != planes:
            raise ValueError("a stride-1 block changing width has no PANN equivalent")

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, in, t, m) -> (batch, planes, t // stride, m // stride)``."""
        out = F.avg_pool2d(x, 2) if self.stride == 2 else x
        out = F.relu(self.bn1(self.conv1(out)))
        out = F.dropout(out, p=0.1, training=self.training)
        out = self.bn2(self.conv2(out))
        identity = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + identity)


class _ResNetBody(nn.Module):
    """The four stages of ResNet38: [3, 4, 6, 3] basic blocks, 64 -> 512 channels."""

    def __init__(self, blocks: tuple[int, int, int, int] = (3, 4, 6, 3)) -> None:
        super().__init__()
        widths = (64, 128, 256, 512)
        in_planes = 64
        for stage, (n_blocks, planes) in enumerate(zip(blocks, widths, strict=True), start=1):
            first_stride = 1 if stage == 1 else 2
            layers = [_BasicBlock(in_planes, planes, first_stride)]
            layers += [_BasicBlock(planes, planes, 1) for _ in range(n_blocks - 1)]
            self.add_module(f"layer{stage}", nn.Sequential(*layers))
            in_planes = planes

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, 64, t, m) -> (batch, 512, t // 8, m // 8)``."""
        for stage in self.children():  # layer1 .. layer4, in order
            x = stage(x)
        return x


class _Pann(PublishedTeacher):
    """Shared input normalisation and head of the PANN CNNs."""

    num_classes: ClassVar[int] = AUDIOSET_NUM_CLASSES
    #: Both models halve time 5 times (floor) before a global pool: 32 frames -> 1.
    min_frames: ClassVar[int] = 32
    n_mels: ClassVar[int] = _N_MELS

    label_file: ClassVar[str] = "audioset-class-labels"

    bn0: nn.BatchNorm2d
    fc1: nn.Linear
    fc_audioset: nn.Linear

    def forward(self, mel: Tensor, aux: Mapping[str, Tensor] | None = None) -> TeacherOutput:
        """Classify log-Mel spectrograms.

        Parameters
        ----------
        mel : Tensor
            Log-Mel in dB, shape ``(batch, frames, 64)``, ``frames >= 32``.
        aux : None
            PANNs take no extra input.

        Returns
        -------
        TeacherOutput
            ``logits`` and ``probs`` shaped ``(batch, 527)``.
        """
        self.check_input(mel, aux)
        logits = self._logits(mel)
        return TeacherOutput(logits, torch.sigmoid(logits))

    def _normalise(self, mel: Tensor) -> Tensor:
        """``(batch, frames, mels) -> (batch, 1, frames, mels)``, bn0 applied per Mel band."""
        x = mel.unsqueeze(1).transpose(1, 3)  # bands become BatchNorm channels
        return self.bn0(x).transpose(1, 3)

    def _head(self, x: Tensor) -> Tensor:
        """``(batch, 2048, t, m) -> logits (batch, 527)``: mean over Mel, max + mean over time."""
        x = x.mean(dim=3)
        x = x.amax(dim=2) + x.mean(dim=2)
        x = F.dropout(x, p=0.5, training=self.training)
        x = F.relu(self.fc1(x))
        # The original applies its last dropout to the returned embedding only, not
        # to the input of fc_audioset.
        return self.fc_audioset(x)

    @abc.abstractmethod
    def _logits(self, mel: Tensor) -> Tensor:
        """``(batch, frames, 64) -> (batch, classes)`` without input checks."""

    def load_weights(self, file: str | os.PathLike[str]) -> None:
        """Load an official (or re-saved) ``.pth`` checkpoint (:func:`load_pann_checkpoint`)."""
        load_pann_checkpoint(self, file)


class ResNet38(_Pann):
    """PANN ResNet38 (AudioSet mAP 0.434) without its STFT/Mel front end.

    73,783,247 parameters; 243 state-dict entries (246 in the official file,
    which also holds the 3 front-end entries).
    """

    weights_name: ClassVar[str] = "pann-resnet38"

    def __init__(self) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(_N_MELS)
        self.conv_block1 = _ConvBlock(1, 64)
        self.resnet = _ResNetBody()
        self.conv_block_after1 = _ConvBlock(512, 2048)
        self.fc1 = nn.Linear(2048, 2048)
        self.fc_audioset = nn.Linear(2048, AUDIOSET_NUM_CLASSES)

    def _logits(self, mel: Tensor) -> Tensor:
        x = self._normalise(mel)
        x = F.dropout(self.conv_block1(x, (2, 2)), p=0.2, training=self.training)
        x = F.avg_pool2d(self.resnet(x), kernel_size=2)
        x = F.dropout(x, p=0.2, training=self.training)
        x = self.conv_block_after1(x, (1, 1))
        x = F.dropout(x, p=0.2, training=self.training)
        return self._head(x)


class Cnn14(_Pann):
    """PANN Cnn14 (AudioSet mAP 0.431) without its STFT/Mel front end.

    80,753,615 parameters; 81 state-dict entries (84 in the official file).
    """

    weights_name: ClassVar[str] = "pann-cnn14"

    def __init__(self) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(_N_MELS)
        widths = (1, 64, 128, 256, 512, 1024, 2048)
        for i in range(6):
            self.add_module(f"conv_block{i + 1}", _ConvBlock(widths[i], widths[i + 1]))
        self.fc1 = nn.Linear(2048, 2048)
        self.fc_audioset = nn.Linear(2048, AUDIOSET_NUM_CLASSES)

    def _logits(self, mel: Tensor) -> Tensor:
        x = self._normalise(mel)
        for i in range(1, 7):
            pool = (2, 2) if i < 6 else (1, 1)  # block 6 does not pool
            x = getattr(self, f"conv_block{i}")(x, pool)
            x = F.dropout(x, p=0.2, training=self.training)
        return self._head(x)


# ---------------------------------------------------------------------------- loading


def _state_dict_of(checkpoint: Any) -> Mapping[str, Tensor]:
    """The state dict inside an official checkpoint (``{"model": ...}``) or a bare one."""
    if isinstance(checkpoint, Mapping):
        if "model" in checkpoint and isinstance(checkpoint["model"], Mapping):
            return checkpoint["model"]
        if checkpoint and all(isinstance(v, Tensor) for v in checkpoint.values()):
            return checkpoint
        keys = sorted(map(str, checkpoint))[:10]
        raise CheckpointError(
            f"checkpoint has no 'model' state dict (top-level keys: {keys}); the official "
            f"PANN files store the weights under 'model'."
        )
    raise CheckpointError(
        f"checkpoint is a {type(checkpoint).__name__}, expected a dict holding a state dict "
        f"under 'model'."
    )


def _check_front_end(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Set the front-end entries aside, checking they belong to a 32 kHz model."""
    front = {k: state[k] for k in FRONT_END_KEYS if k in state}
    for key, tensor in front.items():
        if tuple(tensor.shape) != FRONT_END_SHAPES[key]:
            raise CheckpointError(
                f"front-end entry {key} has shape {tuple(tensor.shape)}, expected "
                f"{FRONT_END_SHAPES[key]} (n_fft 1024, 64 Mel bands): this checkpoint is "
                f"another PANN variant (e.g. 16 kHz); use a 32 kHz checkpoint."
            )
    return front


def load_pann_state_dict(model: _Pann, checkpoint: Any) -> dict[str, Tensor]:
    """Load an official-layout PANN state dict into ``model``, strictly.

    The three front-end entries (:data:`FRONT_END_KEYS`) are dropped on purpose
    (the module has no front end); they may also be absent, e.g. in a state dict
    saved from this module. Every other entry must match by name and shape.

    Parameters
    ----------
    model : ResNet38 or Cnn14
        Target module.
    checkpoint : mapping
        ``{"model": state_dict, ...}`` as in the official files, or a bare state dict.

    Returns
    -------
    dict of str to Tensor
        The front-end tensors that were set aside (empty if there were none), so
        callers can compare them with their own STFT/Mel matrices.

    Raises
    ------
    CheckpointError
        Listing missing and unexpected keys and shape mismatches.
    """
    state = _state_dict_of(checkpoint)
    front = _check_front_end(state)
    state = {k: v for k, v in state.items() if k not in FRONT_END_KEYS}
    load_matching_state(
        model, state, hint=f"Is it a {type(model).__name__} checkpoint of audioset_tagging_cnn?")
    return front


def load_pann_checkpoint(model: _Pann, file: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read a ``.pth`` file safely (weights only) and load it with :func:`load_pann_state_dict`."""
    from specxform.weights import load_torch_file

    return load_pann_state_dict(model, load_torch_file(file))
