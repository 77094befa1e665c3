"""EfficientAT ``mn04_as``: MobileNetV3 (width 0.4) AudioSet tagger on a precomputed log-Mel.

F. Schmid, K. Koutini, G. Widmer, "Efficient large-scale audio tagging via
transformer-to-CNN knowledge distillation", ICASSP 2023 (MIT licence). The module
is written from the architecture's facts (A. Howard et al., "Searching for
MobileNetV3", ICCV 2019, the Large configuration) and laid out so that the
official state dict ``mn04_as_mAP_432.pt`` (312 tensors) loads strictly; the
details that the layout alone does not tell were read from the graph of an ONNX
export of the same weights (``mn04_as.onnx``):

- BatchNorm ``eps = 0.001`` (the export's folded convolution weights give
  ``gamma / sqrt(var + eps)`` with ``eps = 1.000e-3`` to 4 digits on every layer);
- squeeze-excitation: mean over frequency and time, ``Linear`` -> ReLU ->
  ``Linear`` -> *sigmoid* (not hard-sigmoid), channels scaled; the official
  block wraps it as ``conc_se_layers`` (one channel SE here, combined by a max
  over the list, which for one entry is the identity);
- head ("mlp"): global mean over frequency and time, ``Linear(384, 512)``,
  Hardswish, dropout (identity in eval), ``Linear(512, 527)``: pre-sigmoid logits.

Input: the ``efficientat`` representation, ``(batch, frames, 128)``, which the
network sees as an image ``(batch, 1, 128 mels, frames)``. The stem and four
stride-2 blocks halve both axes five times (ceil): 1,000 frames (10 s) give 32
time steps, 128 Mel bands give 4.

Counts (checked by the tests): 983,599 trainable parameters; the official file's
312 tensors are 46 convolution weights, 46 BatchNorms x 5 entries (weight, bias,
running mean and variance, ``num_batches_tracked``), 8 squeeze-excitations x 4 and
the head's 2 ``Linear`` x 2.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from specxform.errors import CheckpointError
from specxform.teachers.base import TeacherOutput
from specxform_builtins.teachers.published import PublishedTeacher, load_matching_state

__all__ = [
    "AUDIOSET_NUM_CLASSES",
    "BLOCKS",
    "MN04",
    "OFFICIAL_TENSOR_COUNT",
    "BlockConfig",
    "divisible",
    "load_efficientat_state_dict",
]

AUDIOSET_NUM_CLASSES = 527
#: Entries of the official state dict ``mn04_as_mAP_432.pt``.
OFFICIAL_TENSOR_COUNT = 312
_N_MELS = 128
_BN_EPS = 1e-3
_WIDTH = 0.4


def divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor`` without losing more than 10 %.

    MobileNet's rule: nearest multiple (halves round up), at least ``divisor``,
    one more step when rounding down would drop below 90 % of ``value``.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class BlockConfig(NamedTuple):
    """One inverted-residual block of MobileNetV3-Large, channels at width 1.0.

    Attributes
    ----------
    kernel : int
        Depthwise kernel size (3 or 5), "same" padding ``kernel // 2``.
    expanded, out : int
        Expanded (depthwise) and output channels before the width multiplier.
    se : bool
        Squeeze-excitation after the depthwise convolution.
    hardswish : bool
        Hardswish activations (else ReLU).
    stride : int
        Stride of the depthwise convolution on both axes.
    """

    kernel: int
    expanded: int
    out: int
    se: bool
    hardswish: bool
    stride: int


#: MobileNetV3-Large's 15 blocks (Howard et al., table 1); the stem outputs 16 channels.
BLOCKS: tuple[BlockConfig, ...] = (
    BlockConfig(3, 16, 16, False, False, 1),
    BlockConfig(3, 64, 24, False, False, 2),
    BlockConfig(3, 72, 24, False, False, 1),
    BlockConfig(5, 72, 40, True, False, 2),
    BlockConfig(5, 120, 40, True, False, 1),
    BlockConfig(5, 120, 40, True, False, 1),
    BlockConfig(3, 240, 80, False, True, 2),
    BlockConfig(3, 200, 80, False, True, 1),
    BlockConfig(3, 184, 80, False, True, 1),
    BlockConfig(3, 184, 80, False, True, 1),
    BlockConfig(3, 480, 112, True, True, 1),
    BlockConfig(3, 672, 112, True, True, 1),
    BlockConfig(5, 672, 160, True, True, 2),
    BlockConfig(5, 960, 160, True, True, 1),
    BlockConfig(5, 960, 160, True, True, 1),
)
_STEM = 16
_LAST_CONV = 960  # 6 x 160
_HIDDEN = 1280


def _conv_bn(c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1,
             activation: type[nn.Module] | None = None) -> nn.Sequential:
    """Conv2d (no bias), BatchNorm (eps 1e-3), optional activation: keys ``0.*``, ``1.*``."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out, eps=_BN_EPS),
    ]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


class _SqueezeExcite(nn.Module):
    """Channel attention: ``x * sigmoid(fc2(relu(fc1(mean over freq, time))))``."""

    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, squeezed)
        self.fc2 = nn.Linear(squeezed, channels)

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, c, f, t) -> (batch, c, f, t)``."""
        scale = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * scale[:, :, None, None]


class _ConcurrentSE(nn.Module):
    """The official wrapper of SE variants (``conc_se_layers``), combined by a max."""

    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.conc_se_layers = nn.ModuleList([_SqueezeExcite(channels, squeezed)])

    def forward(self, x: Tensor) -> Tensor:
        outputs = [layer(x) for layer in self.conc_se_layers]
        return outputs[0] if len(outputs) == 1 else torch.stack(outputs).amax(dim=0)


class _InvertedResidual(nn.Module):
    """Expand 1x1, depthwise kxk, optional SE, project 1x1; residual when shapes agree.

    Submodules live in ``block`` (keys ``block.<i>.*`` as in the official file);
    the expansion is left out when it would not change the channel count.
    """

    def __init__(self, c_in: int, cfg: BlockConfig, width: float) -> None:
        super().__init__()
        expanded, out = divisible(cfg.expanded * width), divisible(cfg.out * width)
        act: type[nn.Module] = nn.Hardswish if cfg.hardswish else nn.ReLU
        layers: list[nn.Module] = []
        if expanded != c_in:
            layers.append(_conv_bn(c_in, expanded, activation=act))
        layers.append(_conv_bn(expanded, expanded, cfg.kernel, cfg.stride, groups=expanded,
                               activation=act))
        if cfg.se:
            layers.append(_ConcurrentSE(expanded, divisible(expanded / 4)))
        layers.append(_conv_bn(expanded, out))
        self.block = nn.Sequential(*layers)
        self.residual = cfg.stride == 1 and c_in == out
        self.out_channels = out

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, c_in, f, t) -> (batch, out, ceil(f / s), ceil(t / s))``."""
        y = self.block(x)
        return x + y if self.residual else y


class MN04(PublishedTeacher):
    """EfficientAT ``mn04_as`` (AudioSet mAP 0.432) on the ``efficientat`` log-Mel.

    983,599 parameters (see the module doc); the official state dict has 312
    entries, which load strictly.
    """

    num_classes: ClassVar[int] = AUDIOSET_NUM_CLASSES
    #: The 527 AudioSet display names, as for the PANNs; the official ``mn04_as`` state dict.
    label_file: ClassVar[str] = "audioset-class-labels"
    weights_name: ClassVar[str] = "efficientat-mn04"
    n_mels: ClassVar[int] = _N_MELS
    #: One output time step of the 32x-downsampling body: 0.31 s of audio.
    min_frames: ClassVar[int] = 32

    def __init__(self, width: float = _WIDTH, num_classes: int = AUDIOSET_NUM_CLASSES) -> None:
        super().__init__()
        if num_classes != self.num_classes:
            raise CheckpointError(
                f"MN04 has {self.num_classes} AudioSet outputs, got num_classes={num_classes}."
            )
        channels = divisible(_STEM * width)
        layers: list[nn.Module] = [_conv_bn(1, channels, 3, 2, activation=nn.Hardswish)]
        for cfg in BLOCKS:
            block = _InvertedResidual(channels, cfg, width)
            layers.append(block)
            channels = block.out_channels
        last = divisible(_LAST_CONV * width)
        layers.append(_conv_bn(channels, last, activation=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        hidden = divisible(_HIDDEN * width)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(last, hidden),
            nn.Hardswish(),
            nn.Dropout(0.2),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, mel: Tensor, aux: Mapping[str, Tensor] | None = None) -> TeacherOutput:
        """Classify ``efficientat`` log-Mels.

        Parameters
        ----------
        mel : Tensor
            ``(ln(mel + 1e-5) + 4.5) / 5``, shape ``(batch, frames, 128)``,
            ``frames >= 32``; any length works (trained on 10 s, 1,000 frames).
        aux : None
            EfficientAT takes no extra input.

        Returns
        -------
        TeacherOutput
            ``logits`` and ``probs`` shaped ``(batch, 527)``.
        """
        self.check_input(mel, aux)
        logits = self.logits(mel.transpose(1, 2).unsqueeze(1))
        return TeacherOutput(logits, torch.sigmoid(logits))

    def logits(self, spec: Tensor) -> Tensor:
        """The official network: ``(batch, 1, 128, frames)`` -> logits ``(batch, 527)``."""
        return self.classifier(self.features(spec))

    def load_weights(self, file: str | os.PathLike[str]) -> None:
        """Load an official (or re-saved) state dict (:func:`load_efficientat_state_dict`)."""
        from specxform.weights import load_torch_file

        load_efficientat_state_dict(self, load_torch_file(file))


def load_efficientat_state_dict(model: MN04, state: Any) -> None:
    """Load the official ``mn04_as`` state dict into ``model``, strictly.

    Parameters
    ----------
    model : MN04
        Target module.
    state : mapping of str to Tensor
        A plain state dict (the official file is one: 312 tensors).

    Raises
    ------
    CheckpointError
        If ``state`` is not a state dict, or lists its missing and unexpected keys
        and shape mismatches.
    """
    if not (isinstance(state, Mapping) and state
            and all(isinstance(v, Tensor) for v in state.values())):
        kind = type(state).__name__
        raise CheckpointError(
            f"expected a plain state dict of tensors (the official mn04_as_mAP_432.pt is "
            f"one), got a {kind}; re-save it with torch.save(model.state_dict(), path)."
        )
    load_matching_state(model, state, hint="Is it EfficientAT's mn04_as_mAP_432.pt (width "
                        "0.4, 527 classes)?")
