"""Students: small networks that refine the PINV transcoding of a (source, target) pair.

A student takes the PINV log-Mel ``(batch, frames, mels)`` in the target's unit
and returns a refined log-Mel of the same shape. :class:`Transcoder` chains the
fixed :class:`~specxform.transcoders.pinv.PinvTranscoder` and a student, so that the whole
model maps source levels to the target Mel and never sees audio.

The built-in student is the companion code's residual CNN
(:class:`ResidualCNN`): each layer pads by replication then convolves, ReLU
after all layers but the last, and the output is ``pinv - conv(pinv)``. Its
reference configuration (5 layers, 64 channels, kernel 3 in time x 5 in Mel)
has 186,497 parameters, the count of the shipped checkpoints.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import attrs
import torch
from torch import Tensor, nn

from specxform.errors import InputError, SpecError
from specxform.representations.specs import Representation
from specxform.transcoders.pinv import PinvTranscoder

__all__ = ["ResidualCNN", "ResidualCNNConfig", "Transcoder", "residual_cnn"]


def _pair(value: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise SpecError(
            f"expected a positive int or a (time, mel) pair of positive ints, got {value!r}."
        )
    return pair


def _at_least_one(instance: object, attribute: attrs.Attribute, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise SpecError(f"{attribute.name} must be an int >= 1, got {value!r}.")


@attrs.frozen
class ResidualCNNConfig:
    """Shape of a :class:`ResidualCNN`.

    Parameters
    ----------
    layers : int
        Number of convolutions (1 -> channels -> ... -> channels -> 1).
    channels : int
        Width of the hidden layers.
    kernel : (int, int)
        Kernel size (time frames, Mel bands).
    dilation : (int, int)
        Dilation (time, Mel); padding grows with it so the shape is kept.
    """

    layers: int = attrs.field(default=5, validator=_at_least_one)
    channels: int = attrs.field(default=64, validator=_at_least_one)
    kernel: tuple[int, int] = attrs.field(default=(3, 5), converter=_pair)
    dilation: tuple[int, int] = attrs.field(default=(1, 1), converter=_pair)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON- and checkpoint-safe)."""
        return {"layers": self.layers, "channels": self.channels,
                "kernel": list(self.kernel), "dilation": list(self.dilation)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResidualCNNConfig:
        """Rebuild a config from :meth:`to_dict` output; unknown keys are refused."""
        unknown = sorted(set(data) - {f.name for f in attrs.fields(cls)})
        if unknown:
            raise SpecError(
                f"unknown residual_cnn option(s) {unknown}; valid options are "
                f"{[f.name for f in attrs.fields(cls)]}."
            )
        return cls(**data)


def _same_padding(kernel: int, dilation: int) -> tuple[int, int]:
    """(before, after) padding that keeps the length; an even kernel pads one more after."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


class ResidualCNN(nn.Module):
    """``pinv - conv(pinv)`` on a log-Mel.

    Input and output: ``(batch, frames, mels)`` in the target's unit (e.g. dB).
    Internally ``(batch, 1, frames, mels)``.
    """

    def __init__(self, config: ResidualCNNConfig | None = None, *, n_mels: int | None = None
                 ) -> None:
        super().__init__()
        self.config = config or ResidualCNNConfig()
        self.n_mels = n_mels
        cfg = self.config
        time_pad = _same_padding(cfg.kernel[0], cfg.dilation[0])
        mel_pad = _same_padding(cfg.kernel[1], cfg.dilation[1])
        widths = [1] + [cfg.channels] * (cfg.layers - 1) + [1]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(itertools.pairwise(widths)):
            # ReplicationPad2d takes (left, right, top, bottom) = (mel, mel, time, time).
            layers.append(nn.ReplicationPad2d((*mel_pad, *time_pad)))
            layers.append(nn.Conv2d(c_in, c_out, cfg.kernel, dilation=cfg.dilation))
            if i < cfg.layers - 1:
                layers.append(nn.ReLU())
        self.conv = nn.Sequential(*layers)

    def forward(self, mel: Tensor) -> Tensor:
        """Refine ``mel`` (batch, frames, mels) -> (batch, frames, mels)."""
        if mel.dim() != 3 or (self.n_mels is not None and mel.shape[-1] != self.n_mels):
            raise InputError(
                f"residual_cnn expects a PINV log-Mel shaped (batch, frames, "
                f"{self.n_mels or 'mels'}), got {tuple(mel.shape)}."
            )
        x = mel[:, None]
        if x.device.type == "cpu" and not _needs_grad(x, self):
            return (x - self._convolve_fast(x))[:, 0]
        return (x - self.conv(x))[:, 0]

    def _convolve_fast(self, x: Tensor) -> Tensor:
        """``self.conv(x)`` for inference on CPU, the same layers run faster.

        Every convolution gets its input in channels-last layout (NHWC), which
        oneDNN convolves without reordering it, and the ReLUs run in place. The
        gain is in the thin layers (1 -> 64, and 64 -> 1, about twice as fast);
        over the five layers, fp32 on one core, 1.05 to 1.35 times as fast as
        the plain path, depending on the machine's load
        (``benchmarks/results/chain.md``). The output equals ``self.conv(x)``
        up to float32 rounding (another summation order inside the
        convolutions). Training keeps the plain path: channels-last made the
        backward pass 1.2 to 1.6 times slower.

        Parameters
        ----------
        x : Tensor, shape (batch, 1, frames, mels)

        Returns
        -------
        Tensor, shape (batch, 1, frames, mels), contiguous
        """
        h = x
        for layer in self.conv:
            if isinstance(layer, nn.ReLU):
                h = torch.relu_(h)
                continue
            if isinstance(layer, nn.Conv2d):
                h = h.contiguous(memory_format=torch.channels_last)
            h = layer(h)
        return h.contiguous()


def _needs_grad(x: Tensor, module: nn.Module) -> bool:
    """Whether autograd records a pass of ``module`` on ``x`` (training, or input gradients)."""
    if not torch.is_grad_enabled():
        return False
    return x.requires_grad or any(p.requires_grad for p in module.parameters())


def residual_cnn(source: Representation, target: Representation, **config: Any) -> ResidualCNN:
    """Student factory registered as ``residual_cnn``: a :class:`ResidualCNN` for ``target``.

    ``config`` holds :class:`ResidualCNNConfig` fields; the source does not
    change the architecture (the student sees only the target-shaped PINV Mel).
    """
    return ResidualCNN(ResidualCNNConfig.from_dict(config), n_mels=target.n_bands)


class Transcoder(nn.Module):
    """Source levels -> target log-Mel: the fixed PINV, then a trainable student.

    Input: ``(batch, source frames, source bands)``; output: ``(batch, target
    frames, target bands)`` (2-D input and output without the batch axis work too).
    Only the student has parameters, so ``state_dict()`` holds only ``student.*``.
    """

    def __init__(self, pinv: PinvTranscoder, student: nn.Module) -> None:
        super().__init__()
        self.pinv = pinv
        self.student = student

    @property
    def source(self) -> Representation:
        return self.pinv.source

    @property
    def target(self) -> Representation:
        return self.pinv.target

    def forward(self, levels: Tensor) -> Tensor:
        squeeze = levels.dim() == 2
        # The fixed PINV stays in float32 under mixed precision: its log-domain time
        # interpolation would lose about 0.1 dB in bfloat16.
        with torch.autocast(levels.device.type, enabled=False):
            base = self.pinv((levels[None] if squeeze else levels).float())
        out = self.student(base)
        return out[0] if squeeze else out
