"""YAMNet (MobileNetV1 on 0.96 s log-Mel patches) in PyTorch, exact to the Keras model.

Architecture (tensorflow/models ``research/audioset/yamnet/yamnet.py``): a 3x3
stride-2 convolution with 32 filters, then 13 depthwise-separable layers (3x3
depthwise + 1x1 pointwise: 64, 128 s2, 128, 256 s2, 256, 512 s2, 512 x5,
1024 s2, 1024), each convolution followed by BatchNorm and ReLU; global average
pooling to a 1024-d embedding; ``Dense(521)``; sigmoid.

Details that make it exact rather than close:

* TensorFlow ``"SAME"`` padding. For the 3x3 stride-2 layers on the even sizes
  met here it pads 0 before and 1 after (PyTorch's ``padding=1`` would pad 1 and
  1 and shift every output by one sample); stride-1 layers pad 1 and 1.
* BatchNorm ``epsilon=1e-4`` with ``center=True, scale=False``: there is a
  learned offset ``beta`` but no scale (gamma is fixed at 1), so the Keras model
  has 3,729,481 trainable parameters. PyTorch ports that use an affine
  ``nn.BatchNorm2d`` (gamma kept at 1) count 10,944 more: 3,740,425, the figure
  usually quoted. This module has no gamma: :meth:`YAMNet.trainable_parameter_count`
  gives 3,729,481 and :meth:`YAMNet.port_parameter_count` the port figure.
* Kernel layouts converted from TensorFlow: conv ``(H, W, in, out) -> (out, in, H, W)``,
  depthwise ``(H, W, C, 1) -> (C, 1, H, W)``, dense ``(in, out) -> (out, in)``.
  H is time (96 frames), W is Mel (64 bands), as in Keras' ``Reshape((96, 64, 1))``.

Input to :class:`YAMNet` is the natural-log Mel ``(batch, frames, 64)`` (spec
section 3); it is cut into 96-frame patches with hop 48 (:func:`patch_frames`,
only complete patches, like ``tf.signal.frame``). The clip-wise probability is
the mean of the per-patch probabilities (the way per-second outputs are pooled
in the paper's metrics); the clip-wise logit is its exact logit, so
``probs == sigmoid(logits)`` holds. :meth:`YAMNet.forward_patches` returns the
per-patch outputs.

Weights: :func:`load_yamnet_h5` reads the official ``yamnet.h5`` (Keras HDF5
weights, 110 datasets named like ``layer2/depthwise_conv/layer2/depthwise_conv/
depthwise_kernel:0`` and ``logits/logits/kernel:0``); :func:`load_yamnet_state_dict`
reads this module's own state dict (110 entries, one per HDF5 dataset) or that of
the w-hc/torch_audioset port; :func:`state_dict_from_tflite` reads Google's int8
TFLite files (TensorFlow Hub's waveform-in ``lite-model_yamnet_classification_tflite_1``
and Coral's patch-in ``yamnet_spectra_in``) with the LiteRT interpreter.

The TFLite files fold each BatchNorm into a bias and use ReLU6, so the module has
two switches: ``folded_batchnorm=True`` replaces every BatchNorm by a bias on the
preceding convolution (state-dict keys ``...conv.bias``, 56 entries) and
``activation="relu6"`` clips at 6. :meth:`YAMNet.pretrained` picks both from the
weight file, whose format is detected from its content (:func:`weight_file_format`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from specxform.errors import CheckpointError, InputError
from specxform.teachers.base import TeacherOutput
from specxform.teachers.labels import ClassMapEntry, parse_class_map, read_class_map
from specxform_builtins.teachers import YAMNET_WEIGHTS
from specxform_builtins.teachers.published import PublishedTeacher, load_matching_state

__all__ = [
    "AUDIOSET_NUM_CLASSES",
    "DEFAULT_WEIGHTS",
    "KERAS_TRAINABLE_PARAMETERS",
    "PATCH_FRAMES",
    "PATCH_HOP_FRAMES",
    "PORT_PARAMETERS",
    "YAMNET_DROPPED_AUDIOSET_INDICES",
    "YAMNET_NUM_CLASSES",
    "YAMNET_TO_AUDIOSET",
    "Activation",
    "ClassMapEntry",
    "WeightFormat",
    "YAMNet",
    "audioset_to_yamnet",
    "check_class_maps",
    "default_weight_file",
    "fold_batchnorm",
    "h5_dataset_names",
    "load_yamnet_h5",
    "load_yamnet_state_dict",
    "load_yamnet_weights",
    "pad_waveform",
    "padded_length",
    "parse_class_map",
    "patch_frames",
    "read_class_map",
    "read_yamnet_weights",
    "state_dict_from_h5",
    "state_dict_from_tflite",
    "weight_file_format",
    "yamnet_to_audioset",
]

YAMNET_NUM_CLASSES = 521
AUDIOSET_NUM_CLASSES = 527
N_MELS = 64
PATCH_FRAMES = 96  # 0.96 s at a 10 ms hop
PATCH_HOP_FRAMES = 48  # 0.48 s
SAMPLE_RATE = 16_000
#: Shortest waveform giving one patch: (0.96 + 0.025 - 0.010) s at 16 kHz.
MIN_WAVEFORM_SAMPLES = 15_600
PATCH_HOP_SAMPLES = 7_680  # 0.48 s at 16 kHz
BN_EPSILON = 1e-4
KERAS_TRAINABLE_PARAMETERS = 3_729_481
PORT_PARAMETERS = 3_740_425

#: The nonlinearity after every convolution: Keras' ``yamnet.h5`` uses ReLU, the
#: TFLite graphs ReLU6 (their activation tensors are named ``.../Relu6``).
Activation = Literal["relu", "relu6"]
_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"relu": F.relu, "relu6": F.relu6}

#: (stride, filters) of the 14 layers; layer 1 is a full conv, 2..14 separable.
LAYERS: tuple[tuple[int, int], ...] = (
    (2, 32), (1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
    (1, 512), (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024),
)  # fmt: skip


# ------------------------------------------------------------------------ building blocks


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Padding TensorFlow's ``"SAME"`` applies along one axis.

    Parameters
    ----------
    size, kernel, stride : int
        Input length, kernel length and stride along the axis.

    Returns
    -------
    tuple of int
        ``(before, after)``; the odd sample, if any, goes after.
    """
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + kernel - size)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose padding follows TensorFlow's ``"SAME"`` rule.

    Without bias unless ``bias=True`` (the folded-BatchNorm variant).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        bias: bool = False,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel, stride, padding=0, groups=groups, bias=bias
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, in, H, W) -> (batch, out, ceil(H / s), ceil(W / s))``."""
        top, bottom = tf_same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
        left, right = tf_same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


class KerasBatchNorm2d(nn.Module):
    """Keras ``BatchNormalization(center=True, scale=False, epsilon=1e-4)``.

    ``y = (x - moving_mean) / sqrt(moving_variance + eps) + beta``: a learned
    offset (``bias`` = Keras ``beta``) and no scale. Training mode uses batch
    statistics like PyTorch (moving averages with Keras' momentum 0.99).
    """

    running_mean: Tensor
    running_var: Tensor

    def __init__(self, channels: int, eps: float = BN_EPSILON) -> None:
        super().__init__()
        self.eps = eps
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``(batch, channels, H, W)`` per channel."""
        momentum = 0.01  # Keras' 0.99 in PyTorch's convention
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            None,
            self.bias,
            self.training,
            momentum,
            self.eps,
        )


def _norm(channels: int, folded: bool) -> nn.Module:
    """BatchNorm, or identity when it is folded into the convolution's bias."""
    return nn.Identity() if folded else KerasBatchNorm2d(channels)


class _ConvLayer(nn.Module):
    """Layer 1: 3x3 conv, BatchNorm (or a folded bias), ReLU or ReLU6."""

    def __init__(
        self, in_channels: int, filters: int, stride: int, folded: bool, act: Activation
    ) -> None:
        super().__init__()
        self.conv = SameConv2d(in_channels, filters, 3, stride, bias=folded)
        self.bn = _norm(filters, folded)
        self.act = _ACTIVATIONS[act]

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, in, H, W) -> (batch, filters, ceil(H / s), ceil(W / s))``."""
        return self.act(self.bn(self.conv(x)))


class _SeparableLayer(nn.Module):
    """Layers 2..14: 3x3 depthwise conv, BN, act, 1x1 pointwise conv, BN, act."""

    def __init__(
        self, in_channels: int, filters: int, stride: int, folded: bool, act: Activation
    ) -> None:
        super().__init__()
        self.depthwise_conv = SameConv2d(
            in_channels, in_channels, 3, stride, in_channels, bias=folded
        )
        self.depthwise_bn = _norm(in_channels, folded)
        self.pointwise_conv = SameConv2d(in_channels, filters, 1, bias=folded)
        self.pointwise_bn = _norm(filters, folded)
        self.act = _ACTIVATIONS[act]

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, in, H, W) -> (batch, filters, ceil(H / s), ceil(W / s))``."""
        x = self.act(self.depthwise_bn(self.depthwise_conv(x)))
        return self.act(self.pointwise_bn(self.pointwise_conv(x)))


# -------------------------------------------------------------------------------- patches


def patch_frames(mel: Tensor, patch: int = PATCH_FRAMES, hop: int = PATCH_HOP_FRAMES) -> Tensor:
    """Cut a log-Mel into YAMNet's overlapping patches (complete patches only).

    Parameters
    ----------
    mel : Tensor
        Shape ``(batch, frames, mels)``.
    patch, hop : int
        Patch length and hop, in frames (96 and 48: 0.96 s and 0.48 s).

    Returns
    -------
    Tensor
        Shape ``(batch, n_patches, patch, mels)`` with
        ``n_patches = 1 + (frames - patch) // hop``; trailing frames that do not
        fill a patch are dropped, as ``tf.signal.frame`` does.

    Raises
    ------
    InputError
        If ``frames < patch``.
    """
    if mel.ndim != 3:
        raise InputError(f"patch_frames expects (batch, frames, mels), got {tuple(mel.shape)}.")
    if mel.shape[1] < patch:
        raise InputError(
            f"YAMNet needs at least {patch} frames for one patch, got {mel.shape[1]}; "
            f"zero-pad the waveform with pad_waveform() before computing the Mel."
        )
    return mel.unfold(1, patch, hop).transpose(-1, -2)


def padded_length(num_samples: int) -> int:
    """Length YAMNet zero-pads a 16 kHz waveform to (``features.pad_waveform``).

    At least :data:`MIN_WAVEFORM_SAMPLES` (15,600 = 0.975 s, one full patch),
    then rounded up so the samples after the first patch are a whole number of
    patch hops (7,680), so that the last patch is complete.
    """
    n = max(int(num_samples), MIN_WAVEFORM_SAMPLES)
    hops = math.ceil((n - MIN_WAVEFORM_SAMPLES) / PATCH_HOP_SAMPLES)
    return MIN_WAVEFORM_SAMPLES + hops * PATCH_HOP_SAMPLES


def pad_waveform(waveform: Tensor | np.ndarray) -> Tensor | np.ndarray:
    """Zero-pad the last axis of a 16 kHz waveform to :func:`padded_length`.

    Parameters
    ----------
    waveform : Tensor or ndarray
        Samples on the last axis, ``(..., samples)``.

    Returns
    -------
    Tensor or ndarray
        Same type, ``(..., padded_length(samples))``; zeros appended at the end.
    """
    extra = padded_length(waveform.shape[-1]) - waveform.shape[-1]
    if isinstance(waveform, Tensor):
        return F.pad(waveform, (0, extra))
    pad = [(0, 0)] * (waveform.ndim - 1) + [(0, extra)]
    return np.pad(waveform, pad)


# ---------------------------------------------------------------------------------- model


def _clip_logits(patch_logits: Tensor) -> Tensor:
    """Logit of the mean patch probability, ``(batch, patches, C) -> (batch, C)``.

    ``logit(mean sigmoid(z)) = logsumexp(logsigmoid(z)) - logsumexp(logsigmoid(-z))``
    (the 1/n cancels); stable where sigmoid saturates.
    """
    if patch_logits.shape[1] == 1:
        return patch_logits[:, 0]
    log_p = F.logsigmoid(patch_logits).logsumexp(dim=1)
    log_q = F.logsigmoid(-patch_logits).logsumexp(dim=1)
    return log_p - log_q


class YAMNet(PublishedTeacher):
    """YAMNet classifier on precomputed natural-log Mel spectrograms.

    Parameters
    ----------
    activation : {"relu", "relu6"}
        Nonlinearity after each convolution: ``"relu"`` for the Keras ``yamnet.h5``,
        ``"relu6"`` for the weights of the TFLite files (their graph's op).
    folded_batchnorm : bool
        ``True``: every BatchNorm is folded into a bias of the preceding convolution
        (the TFLite files' form); the BatchNorm modules are identities.

    Attributes
    ----------
    layer1 ... layer14 : nn.Module
        The convolution stack (state-dict names ``layerN.{conv,bn}`` for layer 1,
        ``layerN.{depthwise,pointwise}_{conv,bn}`` for the others; folded:
        ``layerN.conv.{weight,bias}``, ``layerN.{depthwise,pointwise}_conv.{weight,bias}``).
    logits : nn.Linear
        ``Dense(521)`` on the 1024-d embedding.
    """

    num_classes: ClassVar[int] = YAMNET_NUM_CLASSES
    label_file: ClassVar[str] = "yamnet-class-map"
    weights_name: ClassVar[str] = YAMNET_WEIGHTS[0]
    min_frames: ClassVar[int] = PATCH_FRAMES
    n_mels: ClassVar[int] = N_MELS

    def __init__(self, activation: Activation = "relu", folded_batchnorm: bool = False) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise InputError(
                f"YAMNet activation {activation!r} is not one of {sorted(_ACTIVATIONS)}; "
                f"use 'relu' for yamnet.h5 weights, 'relu6' for the TFLite files'."
            )
        self.activation: Activation = activation
        self.folded_batchnorm = bool(folded_batchnorm)
        channels = 1
        for i, (stride, filters) in enumerate(LAYERS, start=1):
            block = _ConvLayer if i == 1 else _SeparableLayer
            self.add_module(
                f"layer{i}", block(channels, filters, stride, self.folded_batchnorm, activation)
            )
            channels = filters
        self.logits = nn.Linear(channels, YAMNET_NUM_CLASSES)

    def extra_repr(self) -> str:
        """Activation and BatchNorm form, shown by ``print(model)``."""
        return f"activation={self.activation!r}, folded_batchnorm={self.folded_batchnorm}"

    def embed(self, patches: Tensor) -> Tensor:
        """1024-d embeddings of patches.

        Parameters
        ----------
        patches : Tensor
            ``(n, 96, 64)`` log-Mel patches (time, Mel).

        Returns
        -------
        Tensor
            ``(n, 1024)``: the last feature map ``(n, 1024, 3, 2)`` averaged.
        """
        x = patches.unsqueeze(1)  # (n, 1, time, mel): Keras NHWC with H = time
        for i in range(1, len(LAYERS) + 1):
            x = getattr(self, f"layer{i}")(x)
        return x.mean(dim=(2, 3))

    def forward_patches(self, mel: Tensor) -> TeacherOutput:
        """Per-patch outputs.

        Parameters
        ----------
        mel : Tensor
            ``(batch, frames, 64)`` natural-log Mel, ``frames >= 96``.

        Returns
        -------
        TeacherOutput
            ``logits`` and ``probs`` shaped ``(batch, n_patches, 521)``.
        """
        self.check_input(mel)
        patches = patch_frames(mel)
        batch, n_patches = patches.shape[:2]
        logits = self.logits(self.embed(patches.reshape(batch * n_patches, *patches.shape[2:])))
        logits = logits.reshape(batch, n_patches, -1)
        return TeacherOutput(logits, torch.sigmoid(logits))

    def forward(self, mel: Tensor, aux: Mapping[str, Tensor] | None = None) -> TeacherOutput:
        """Clip-wise outputs: mean of the per-patch probabilities.

        Parameters
        ----------
        mel : Tensor
            ``(batch, frames, 64)`` natural-log Mel, ``frames >= 96``.
        aux : None
            YAMNet takes no extra input.

        Returns
        -------
        TeacherOutput
            ``probs`` = mean over patches of the patch probabilities and
            ``logits`` = its logit, both ``(batch, 521)``. With a single patch
            (96 to 143 frames) these are exactly the patch's outputs.
        """
        self.check_input(mel, aux)
        patch_logits = self.forward_patches(mel).logits
        return TeacherOutput(_clip_logits(patch_logits), torch.sigmoid(patch_logits).mean(dim=1))

    def batchnorm_channels(self) -> int:
        """Number of BatchNorm channels (10,944; 0 when folded): the gammas an affine port adds.

        Folding keeps :meth:`trainable_parameter_count` at 3,729,481: each beta
        becomes one conv bias.
        """
        return sum(m.bias.numel() for m in self.modules() if isinstance(m, KerasBatchNorm2d))

    def port_parameter_count(self) -> int:
        """Parameter count of a PyTorch port with affine BatchNorm (3,740,425).

        :meth:`trainable_parameter_count` is the Keras figure, 3,729,481.
        """
        return self.trainable_parameter_count() + self.batchnorm_channels()

    @classmethod
    def from_h5(cls, file: str | os.PathLike[str]) -> Self:
        """Build the model from the official ``yamnet.h5``, in eval mode."""
        model = cls()
        load_yamnet_h5(model, file)
        return model.eval()

    @classmethod
    def from_tflite(cls, file: str | os.PathLike[str], activation: Activation = "relu6") -> Self:
        """Build the folded, ReLU6 model from an official YAMNet ``.tflite`` file, in eval mode.

        ``activation="relu"`` is only for measuring what ReLU6 changes.
        """
        model = cls(activation=activation, folded_batchnorm=True)
        load_yamnet_state_dict(model, state_dict_from_tflite(file))
        return model.eval()

    @classmethod
    def pretrained(
        cls,
        weights: str | os.PathLike[str] | None = None,
        *,
        download: bool = True,
        activation: Activation | None = None,
    ) -> Self:
        """The official model from ``weights`` (``--weights PATH``), else the first official
        file found on the search path or in the cache (:func:`default_weight_file`), else a
        download of ``yamnet.h5``.

        ``weights`` may be a Keras HDF5 file (``yamnet.h5``), one of Google's YAMNet
        TFLite files, or a PyTorch file holding a state dict (this module's, folded
        or not, or the torch_audioset port's), bare or under ``"state_dict"`` or
        ``"model"``; the format is read from the file's first bytes, not its name
        (:func:`weight_file_format`). See :func:`specxform.weights.resolve`.

        ``activation`` defaults to the file's own: ReLU for HDF5 and unfolded state
        dicts, ReLU6 for TFLite files and folded state dicts (whose only official
        source is the TFLite files).
        """
        file = default_weight_file(weights, download=download)
        state, fmt = read_yamnet_weights(file)
        folded = _is_folded(state)
        if activation is None:
            activation = "relu6" if folded else "relu"
        model = cls(activation=activation, folded_batchnorm=folded)
        model._load_state(state, f"{file} ({fmt})")
        return model.eval()

    def shaped_like(self, state: Mapping[str, Tensor]) -> YAMNet:
        """An untrained YAMNet in the form of ``state``: folded (ReLU6, as the TFLite files it
        comes from) or not (ReLU); a retrained teacher's checkpoint loads into it."""
        folded = _is_folded(state)
        if folded == self.folded_batchnorm:
            return self
        return type(self)(activation="relu6" if folded else "relu", folded_batchnorm=folded)

    def load_weights(self, file: str | os.PathLike[str]) -> None:
        """Load any YAMNet weight file (:func:`read_yamnet_weights`) into this model.

        The file must match the model's form (folded or not); :meth:`pretrained`
        picks the form from the file.
        """
        state, fmt = read_yamnet_weights(file)
        self._load_state(state, f"{file} ({fmt})")

    def _load_state(self, state: Mapping[str, Tensor], what: str) -> None:
        try:
            load_yamnet_state_dict(self, state)
        except CheckpointError as exc:
            raise CheckpointError(f"{what}: {exc}") from exc


# -------------------------------------------------------------------------------- weights

#: The official files YAMNet loads with no ``--weights``, in order of preference: the
#: float Keras weights, then Coral's and TensorFlow Hub's int8 TFLite files (weight-file
#: names; the plugin registers them as the teacher's ``weights_any``).
DEFAULT_WEIGHTS: tuple[str, ...] = YAMNET_WEIGHTS


def default_weight_file(
    weights: str | os.PathLike[str] | None = None, *, download: bool = True
) -> Path:
    """The file :meth:`YAMNet.pretrained` loads.

    ``weights`` (``--weights PATH``) if given; else the first of
    :data:`DEFAULT_WEIGHTS` present on the search path or in the cache
    (verified); else ``yamnet.h5``, downloaded (see
    :func:`specxform.weights.resolve_any`).

    Raises
    ------
    WeightsError
        If none is present and ``download`` is false or the download fails: the
        message names the three files.
    """
    from specxform import weights as catalogue

    alternatives = [catalogue.get(name) for name in DEFAULT_WEIGHTS]
    return catalogue.resolve_any(alternatives, weights, download=download)



def _bn_names(keras: str, torch_prefix: str) -> list[tuple[str, str]]:
    return [
        (f"{torch_prefix}.bias", f"{keras}/beta:0"),
        (f"{torch_prefix}.running_mean", f"{keras}/moving_mean:0"),
        (f"{torch_prefix}.running_var", f"{keras}/moving_variance:0"),
    ]


def _weight_names() -> list[tuple[str, str]]:
    """(state-dict key, Keras weight name) pairs, in model order: 110 of them."""
    pairs = [("layer1.conv.weight", "layer1/conv/kernel:0")]
    pairs += _bn_names("layer1/conv/bn", "layer1.bn")
    for i in range(2, len(LAYERS) + 1):
        dw_kernel = f"layer{i}/depthwise_conv/depthwise_kernel:0"
        pairs.append((f"layer{i}.depthwise_conv.weight", dw_kernel))
        pairs += _bn_names(f"layer{i}/depthwise_conv/bn", f"layer{i}.depthwise_bn")
        pairs.append((f"layer{i}.pointwise_conv.weight", f"layer{i}/pointwise_conv/kernel:0"))
        pairs += _bn_names(f"layer{i}/pointwise_conv/bn", f"layer{i}.pointwise_bn")
    pairs += [("logits.weight", "logits/kernel:0"), ("logits.bias", "logits/bias:0")]
    return pairs


def h5_dataset_names() -> dict[str, str]:
    """Official HDF5 dataset path for each state-dict key (110 entries).

    Keras stores weight ``w`` of layer ``L`` at ``L/w``; YAMNet's layer names
    contain slashes (``layer1/conv``) and its weight names repeat the layer
    name, hence paths like ``layer1/conv/layer1/conv/kernel:0``.
    """
    names = {}
    for key, weight in _weight_names():
        layer = weight.rsplit("/", 1)[0]
        names[key] = f"{layer}/{weight}"
    return names


def _from_keras(key: str, array: np.ndarray) -> Tensor:
    """Convert one Keras array to this module's layout."""
    if array.ndim == 4 and "depthwise" in key:
        array = array.transpose(2, 3, 0, 1)  # (H, W, C, 1) -> (C, 1, H, W)
    elif array.ndim == 4:
        array = array.transpose(3, 2, 0, 1)  # (H, W, in, out) -> (out, in, H, W)
    elif array.ndim == 2:
        array = array.T  # (in, out) -> (out, in)
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _h5_datasets(h5: Any) -> dict[str, Any]:
    import h5py

    found: dict[str, Any] = {}

    def collect(name: str, node: object) -> None:
        if isinstance(node, h5py.Dataset):
            found[name] = node

    h5.visititems(collect)
    return found


def state_dict_from_h5(file: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read the official ``yamnet.h5`` into a :class:`YAMNet` state dict.

    Datasets are matched by their official path; a file saved as a whole model
    (paths under ``model_weights/``) is accepted too.

    Raises
    ------
    CheckpointError
        If datasets are missing or extra (both are listed).
    """
    import h5py

    expected = h5_dataset_names()
    try:
        with h5py.File(file, "r") as h5:
            datasets = _h5_datasets(h5)
            # A whole-model save nests the same layout under model_weights/.
            nested = any(n.startswith("model_weights/") for n in datasets)
            prefix = "model_weights/" if nested else ""
            arrays = {
                k: datasets[prefix + n][()] for k, n in expected.items() if prefix + n in datasets
            }
    except OSError as exc:
        raise CheckpointError(f"{file} is not a readable HDF5 file ({exc}).") from exc
    missing = sorted(n for k, n in expected.items() if k not in arrays)
    unexpected = sorted(set(datasets) - {prefix + n for n in expected.values()})
    if missing or unexpected:
        raise CheckpointError(
            f"{file} is not YAMNet's Keras weight file: missing datasets {missing}; "
            f"unexpected datasets {unexpected}. Use the official yamnet.h5."
        )
    return {key: _from_keras(key, arrays[key]) for key in expected}


_PORT_RENAMES = (  # w-hc/torch_audioset key fragment -> ours
    (".fused.conv.", ".conv."), (".fused.bn.", ".bn."),
    (".depthwise_conv.conv.", ".depthwise_conv."), (".depthwise_conv.bn.", ".depthwise_bn."),
    (".pointwise_conv.conv.", ".pointwise_conv."), (".pointwise_conv.bn.", ".pointwise_bn."),
    ("classifier.", "logits."),
)  # fmt: skip


def _from_port(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename a torch_audioset port state dict; its BN gammas must all be 1."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        for old, new in _PORT_RENAMES:
            key = key.replace(old, new)
        if key.endswith("num_batches_tracked"):
            continue
        if key.endswith("bn.weight"):
            if not torch.all(value == 1):
                raise CheckpointError(
                    f"port entry {key} has BatchNorm scales != 1: YAMNet has no BatchNorm "
                    f"scale, so these weights are not YAMNet's."
                )
            continue
        out[key] = value
    return out


def load_yamnet_state_dict(model: YAMNet, state: Mapping[str, Tensor]) -> None:
    """Load a state dict strictly: this module's own or the torch_audioset port's.

    Raises
    ------
    CheckpointError
        Listing missing and unexpected keys and shape mismatches.
    """
    if "classifier.weight" in state:
        state = _from_port(state)
    load_matching_state(model, state, hint="Is it YAMNet's own state dict, or the "
                        "torch_audioset port's?")


def load_yamnet_h5(model: YAMNet, file: str | os.PathLike[str]) -> None:
    """Load the official Keras ``yamnet.h5`` into ``model``."""
    load_yamnet_state_dict(model, state_dict_from_h5(file))


def _torch_state_dict(file: str | os.PathLike[str]) -> Mapping[str, Tensor]:
    """The state dict in a PyTorch file, bare or under ``"state_dict"`` / ``"model"``."""
    from specxform.weights import load_torch_file

    content = load_torch_file(file)
    for key in ("state_dict", "model"):
        if isinstance(content, Mapping) and isinstance(content.get(key), Mapping):
            content = content[key]
    if not isinstance(content, Mapping):
        raise CheckpointError(f"{file} holds a {type(content).__name__}, not a state dict.")
    return content


def read_yamnet_weights(
    file: str | os.PathLike[str],
) -> tuple[Mapping[str, Tensor], WeightFormat]:
    """Read any YAMNet weight file into a state dict, by the format of its content.

    Returns
    -------
    state : mapping of str to Tensor
        Unfolded (110 entries, HDF5 and most PyTorch files) or folded (56, TFLite).
    format : {"hdf5", "tflite", "torch"}
        What :func:`weight_file_format` found.
    """
    fmt = weight_file_format(file)
    if fmt == "hdf5":
        return state_dict_from_h5(file), fmt
    if fmt == "tflite":
        return state_dict_from_tflite(file), fmt
    return _torch_state_dict(file), fmt


def load_yamnet_weights(model: YAMNet, file: str | os.PathLike[str]) -> None:
    """Load ``file`` into ``model``, by its content: Keras HDF5, TFLite or PyTorch.

    Raises
    ------
    CheckpointError
        If the file's BatchNorm form (folded or not) differs from ``model``'s: TFLite
        weights need ``YAMNet(activation="relu6", folded_batchnorm=True)``
        (or :meth:`YAMNet.pretrained`, which builds the right one).
    """
    state, fmt = read_yamnet_weights(file)
    if _is_folded(state) != model.folded_batchnorm:
        want = "folded" if _is_folded(state) else "unfolded"
        raise CheckpointError(
            f"{file} ({fmt}) holds {want} BatchNorm weights but the model has "
            f"folded_batchnorm={model.folded_batchnorm}; build "
            f"YAMNet(folded_batchnorm={not model.folded_batchnorm}) or use YAMNet.pretrained()."
        )
    load_yamnet_state_dict(model, state)


def _is_folded(state: Mapping[str, Tensor]) -> bool:
    """Whether a state dict has BatchNorm folded into conv biases."""
    return "layer1.conv.bias" in state


def _bn_to_conv() -> dict[str, str]:
    """Module prefix of each BatchNorm -> prefix of the convolution it follows."""
    pairs = {"layer1.bn": "layer1.conv"}
    for i in range(2, len(LAYERS) + 1):
        pairs[f"layer{i}.depthwise_bn"] = f"layer{i}.depthwise_conv"
        pairs[f"layer{i}.pointwise_bn"] = f"layer{i}.pointwise_conv"
    return pairs


def fold_batchnorm(state: Mapping[str, Tensor], eps: float = BN_EPSILON) -> dict[str, Tensor]:
    """Fold each BatchNorm of an unfolded state dict into its convolution.

    With ``s = 1 / sqrt(running_var + eps)``: ``weight' = weight * s`` per output
    channel and ``bias' = bias_bn - running_mean * s``, so that
    ``YAMNet(folded_batchnorm=True)`` with the result computes the same function
    (in eval mode) as ``YAMNet()`` with ``state``.

    Parameters
    ----------
    state : mapping of str to Tensor
        A :class:`YAMNet` state dict with BatchNorm (110 entries).

    Returns
    -------
    dict of str to Tensor
        The folded state dict (56 entries).
    """
    out = {k: v for k, v in state.items() if k.startswith("logits.")}
    for bn, conv in _bn_to_conv().items():
        scale = (state[f"{bn}.running_var"].double() + eps).rsqrt()
        weight = state[f"{conv}.weight"].double() * scale[:, None, None, None]
        bias = state[f"{bn}.bias"].double() - state[f"{bn}.running_mean"].double() * scale
        out[f"{conv}.weight"] = weight.float()
        out[f"{conv}.bias"] = bias.float()
    return out


# ------------------------------------------------------------------------- file formats

#: What a YAMNet weight file can be; see :func:`weight_file_format`.
WeightFormat = Literal["hdf5", "tflite", "torch"]
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_TFLITE_IDENTIFIER = b"TFL3"  # FlatBuffers file identifier, bytes 4..8
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default (zip) format
_PICKLE_PROTO = b"\x80"  # legacy torch.save: a pickle, protocol >= 2


def weight_file_format(file: str | os.PathLike[str]) -> WeightFormat:
    """Format of a weight file, read from its first bytes (never from its name).

    Parameters
    ----------
    file : path-like
        The file to inspect.

    Returns
    -------
    {"hdf5", "tflite", "torch"}
        ``"hdf5"``: HDF5 signature ``\\x89HDF\\r\\n\\x1a\\n`` (at byte 0, or after a
        user block); ``"tflite"``: FlatBuffers identifier ``TFL3`` at bytes 4..8;
        ``"torch"``: a zip archive or a pickle (``torch.save``).

    Raises
    ------
    CheckpointError
        If the file is none of these (the message shows its first bytes).
    """
    with open(file, "rb") as handle:
        head = handle.read(8)
    if head == _HDF5_MAGIC:
        return "hdf5"
    if head[4:8] == _TFLITE_IDENTIFIER:
        return "tflite"
    if head.startswith((_ZIP_MAGIC, _PICKLE_PROTO)):
        return "torch"
    import h5py

    if h5py.is_hdf5(file):  # the signature may follow a user block (512, 1024, ... bytes)
        return "hdf5"
    raise CheckpointError(
        f"{file} is not a YAMNet weight file: its first bytes {head!r} are neither HDF5 "
        f"(yamnet.h5), TFLite ('TFL3' at bytes 4..8) nor a PyTorch file (zip or pickle). "
        f"Pass yamnet.h5, a YAMNet .tflite file or a torch.save'd state dict."
    )


# --------------------------------------------------------------------------------- TFLite

#: ``tower0/network/layerN/<op>`` as the first of a TFLite tensor's ``;``-joined names.
_TFLITE_NAME = re.compile(
    r"(?:^|/)layer(\d+)/(conv|sepconv|fc)/(Conv2D|BatchNorm/FusedBatchNormV3"
    r"|MatMul|biases)$"
)


def _litert_interpreter(file: str | os.PathLike[str]) -> Any:
    """A LiteRT interpreter on ``file`` (tensors not allocated: only constants readable)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"reading {file} needs the LiteRT interpreter: pip install 'specxform[tflite]' "
            f"(ai-edge-litert)"
        ) from exc
    try:
        return Interpreter(model_path=str(file))
    except (ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{file} is not a readable TFLite model ({exc}).") from exc


#: (kind, op, is_bias) of a weight tensor's first name -> its role.
_TFLITE_ROLES: dict[tuple[str, str, bool], str] = {
    ("conv", "Conv2D", False): "conv",
    ("sepconv", "BatchNorm/FusedBatchNormV3", False): "depthwise",  # kernel named after BN
    ("conv", "BatchNorm/FusedBatchNormV3", True): "conv",
    ("sepconv", "BatchNorm/FusedBatchNormV3", True): "depthwise",
    ("fc", "MatMul", False): "logits",
    ("fc", "biases", True): "logits",
}


def _tflite_key(name: str, ndim: int, integer_bits: int) -> str | None:
    """State-dict key of a TFLite weight tensor, or ``None`` for other tensors.

    The TFLite graph numbers ops, not YAMNet layers: ``layer1/conv`` is layer 1's
    conv, ``layer{2k}/sepconv`` the depthwise and ``layer{2k+1}/conv`` the pointwise
    conv of layer ``k + 1`` (k = 1..13), ``layer29/fc`` the logits. Int8 tensors
    (4-D, or 2-D for the logits) are kernels, int32 vectors biases (BatchNorm folded).
    """
    match = _TFLITE_NAME.search(name.split(";")[0])
    is_bias = integer_bits == 32 and ndim == 1
    if match is None or not (is_bias or (integer_bits == 8 and ndim in (2, 4))):
        return None
    role = _TFLITE_ROLES.get((match[2], match[3], is_bias))
    number, part = int(match[1]), "bias" if is_bias else "weight"
    if role == "logits":
        return f"logits.{part}"
    if role == "conv" and number == 1:
        return f"layer1.conv.{part}"
    if role == "conv" and number % 2 == 1:
        return f"layer{(number + 1) // 2}.pointwise_conv.{part}"
    if role == "depthwise" and number % 2 == 0:
        return f"layer{number // 2 + 1}.depthwise_conv.{part}"
    return None


def _dequantize(values: np.ndarray, quant: Mapping[str, Any], file: object, name: str) -> Tensor:
    """``(q - zero_point) * scale``, per channel along ``quantized_dimension`` or per tensor."""
    scales = np.asarray(quant["scales"], np.float64)
    zeros = np.asarray(quant["zero_points"], np.float64)
    axis = int(quant["quantized_dimension"])
    if scales.size not in (1, values.shape[axis]) or zeros.size != scales.size:
        raise CheckpointError(
            f"{file}: tensor {name!r} of shape {values.shape} has {scales.size} scales and "
            f"{zeros.size} zero points; expected 1 or {values.shape[axis]} (axis {axis})."
        )
    shape = [1] * values.ndim
    shape[axis] = scales.size
    real = (values.astype(np.float64) - zeros.reshape(shape)) * scales.reshape(shape)
    return torch.from_numpy(real.astype(np.float32))


def _to_torch_layout(key: str, value: Tensor) -> Tensor:
    """TFLite kernel layouts -> PyTorch: conv OHWI -> OIHW, depthwise 1HWC -> C1HW."""
    if value.ndim == 4 and ".depthwise_conv." in key:
        return value.permute(3, 0, 1, 2).contiguous()
    if value.ndim == 4:
        return value.permute(0, 3, 1, 2).contiguous()
    return value  # fc (out, in) and biases are already PyTorch's


def _tflite_tensors(file: str | os.PathLike[str]) -> dict[str, tuple[str, Tensor]]:
    """State-dict key -> (TFLite tensor name, dequantized value) of the weight tensors."""
    interpreter = _litert_interpreter(file)
    found: dict[str, tuple[str, Tensor]] = {}
    for detail in interpreter.get_tensor_details():
        dtype = np.dtype(detail["dtype"])
        if dtype.kind != "i":
            continue
        key = _tflite_key(detail["name"], len(detail["shape"]), dtype.itemsize * 8)
        if key is None:
            continue
        try:
            values = interpreter.get_tensor(detail["index"])
        except ValueError:
            continue  # not a constant: an activation (no data before allocation)
        if key in found:
            raise CheckpointError(
                f"{file}: tensors {found[key][0]!r} and {detail['name']!r} both map to {key}; "
                f"this is not one of the official YAMNet TFLite files."
            )
        value = _dequantize(values, detail["quantization_parameters"], file, detail["name"])
        found[key] = (detail["name"], _to_torch_layout(key, value))
    return found


def state_dict_from_tflite(file: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read an official int8 YAMNet TFLite file into a folded :class:`YAMNet` state dict.

    Works for TensorFlow Hub's ``lite-model_yamnet_classification_tflite_1.tflite``
    (waveform in; its front end is skipped) and Coral's ``yamnet_spectra_in.tflite``
    (log-Mel patch in). The flatbuffer is read with the LiteRT interpreter
    (``ai-edge-litert``). Kernels are int8 per output channel and biases int32 (the
    folded BatchNorm), both dequantized as ``(q - zero_point) * scale``; the 56
    tensors are found by their names (``tower0/network/layerN/...``) and checked
    against the shapes of ``YAMNet(folded_batchnorm=True)``. Load the result into
    ``YAMNet(activation="relu6", folded_batchnorm=True)`` (:meth:`YAMNet.from_tflite`).

    Returns
    -------
    dict of str to Tensor
        56 float32 tensors in PyTorch layouts.

    Raises
    ------
    CheckpointError
        Naming the file and the tensors that are missing, duplicated or mis-shaped.
    """
    found = _tflite_tensors(file)
    expected = {k: tuple(v.shape) for k, v in YAMNet(folded_batchnorm=True).state_dict().items()}
    missing = sorted(set(expected) - set(found))
    wrong = sorted(
        f"{k} from {found[k][0]!r}: {tuple(found[k][1].shape)} != {shape}"
        for k, shape in expected.items()
        if k in found and tuple(found[k][1].shape) != shape
    )
    if missing or wrong:
        raise CheckpointError(
            f"{file} is not an official YAMNet TFLite file: missing tensors for {missing}; "
            f"shape mismatches {wrong}. Use lite-model_yamnet_classification_tflite_1.tflite "
            f"(TensorFlow Hub) or yamnet_spectra_in.tflite (Coral)."
        )
    return {key: found[key][1] for key in expected}


# ------------------------------------------------------------------------------ class maps


#: AudioSet classes YAMNet does not predict ("Male speech, man speaking",
#: "Female speech, woman speaking", "Battle cry", "Male singing",
#: "Female singing", "Funny music"); YAMNet keeps the others in order.
YAMNET_DROPPED_AUDIOSET_INDICES: tuple[int, ...] = (1, 2, 12, 32, 33, 277)
#: AudioSet index of each YAMNet class (521 entries).
YAMNET_TO_AUDIOSET: tuple[int, ...] = tuple(
    i for i in range(AUDIOSET_NUM_CLASSES) if i not in YAMNET_DROPPED_AUDIOSET_INDICES
)


def audioset_to_yamnet(scores: Tensor) -> Tensor:
    """Select YAMNet's 521 classes from AudioSet-527 scores, ``(..., 527) -> (..., 521)``."""
    if scores.shape[-1] != AUDIOSET_NUM_CLASSES:
        raise InputError(f"expected {AUDIOSET_NUM_CLASSES} classes last, got {scores.shape[-1]}.")
    index = torch.tensor(YAMNET_TO_AUDIOSET, device=scores.device)
    return scores.index_select(-1, index)


def yamnet_to_audioset(scores: Tensor, fill: float = 0.0) -> Tensor:
    """Place YAMNet scores in AudioSet order, ``(..., 521) -> (..., 527)``.

    The 6 classes YAMNet lacks get ``fill``.
    """
    if scores.shape[-1] != YAMNET_NUM_CLASSES:
        raise InputError(f"expected {YAMNET_NUM_CLASSES} classes last, got {scores.shape[-1]}.")
    out = scores.new_full((*scores.shape[:-1], AUDIOSET_NUM_CLASSES), fill)
    out[..., list(YAMNET_TO_AUDIOSET)] = scores
    return out


def check_class_maps(yamnet: Sequence[ClassMapEntry], audioset: Sequence[ClassMapEntry]) -> None:
    """Check that two class maps agree with :data:`YAMNET_TO_AUDIOSET` (by ``mid``).

    Raises
    ------
    InputError
        Naming the first classes whose mids differ.
    """
    if len(yamnet) != YAMNET_NUM_CLASSES or len(audioset) != AUDIOSET_NUM_CLASSES:
        raise InputError(
            f"expected {YAMNET_NUM_CLASSES} YAMNet and {AUDIOSET_NUM_CLASSES} AudioSet classes, "
            f"got {len(yamnet)} and {len(audioset)}."
        )
    bad: Iterable[str] = (
        f"YAMNet {y.index} {y.mid} vs AudioSet {a} {audioset[a].mid}"
        for y, a in zip(yamnet, YAMNET_TO_AUDIOSET, strict=True)
        if y.mid != audioset[a].mid
    )
    first = list(zip(range(5), bad, strict=False))
    if first:
        raise InputError(f"class maps disagree: {'; '.join(b for _, b in first)}.")
