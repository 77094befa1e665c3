"""The torch module of the ``coarse_texture`` student (:mod:`specxform_builtins.coarse_texture`).

Kept apart from the registration module so that listing plugins does not import torch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from specxform.errors import InputError
from specxform_builtins.coarse_texture import NOISE_FRAMES, CoarseTextureConfig

__all__ = ["CoarseTexture"]


class _Block(nn.Module):
    """``x + conv(relu(conv(x)))`` with 3 (time) x 5 (Mel) kernels, replication-padded."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pad = nn.ReplicationPad2d((2, 2, 1, 1))
        self.conv1 = nn.Conv2d(channels, channels, (3, 5))
        self.conv2 = nn.Conv2d(channels, channels, (3, 5))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.pad(torch.relu(self.conv1(self.pad(x)))))


class CoarseTexture(nn.Module):
    """PINV log-Mel ``(batch, frames, mels)`` -> refined log-Mel of the same shape.

    Parameters
    ----------
    config : CoarseTextureConfig
    n_mels : int
        Bands of the target Mel.
    time_ratio : float
        Target frames per source frame (12.5 for Cense -> a 10 ms Mel); the
        coarse stage runs at ``frames / time_ratio`` frames.
    gain_unit : float
        One natural-log unit of power in the target's unit (scales the initial
        texture gain).
    """

    def __init__(self, config: CoarseTextureConfig, *, n_mels: int, time_ratio: float,
                 gain_unit: float = 1.0) -> None:
        super().__init__()
        if not time_ratio >= 1:
            raise InputError(f"coarse_texture needs a target at least as fast as its source, "
                             f"got a frame-rate ratio of {time_ratio!r}.")
        self.config = config
        self.n_mels = n_mels
        self.time_ratio = float(time_ratio)
        c, cf = config.channels, config.fine_channels
        self.stem = nn.Conv2d(1, c, (3, 5), padding=(1, 2), padding_mode="replicate")
        self.blocks = nn.Sequential(*(_Block(c) for _ in range(config.blocks)))
        # Two maps for the explicit texture model (offset, gain) and cf features for `fine`.
        self.head = nn.Conv2d(c, 2 + cf, 1)
        self.fine1 = nn.Conv2d(2 + cf, cf, 3, padding=1, padding_mode="replicate")
        self.fine2 = nn.Conv2d(cf, 1, 3, padding=1, padding_mode="replicate")
        # Start as "PINV plus texture of the initial gain": offset 0, fine path 0.
        initial = config.noise_gain * gain_unit
        with torch.no_grad():
            self.head.weight.zero_()
            self.fine2.weight.zero_()
            for conv in (self.head, self.fine2):
                assert conv.bias is not None
                conv.bias.zero_()
            assert self.head.bias is not None
            self.head.bias[1] = _softplus_inverse(initial) if initial > 0 else -20.0
        self.noise: Tensor
        self.register_buffer("noise", self.field(config.seed), persistent=False)

    def field(self, seed: int) -> Tensor:
        """The noise field of ``seed``, ``(NOISE_FRAMES, n_mels)``; the student's own is
        ``field(config.seed)``. Setting :attr:`noise` to another seed's field measures how
        much the student relies on its own (``benchmarks/texture_fields.py``)."""
        generator = torch.Generator().manual_seed(seed)
        return torch.randn(NOISE_FRAMES, self.n_mels, generator=generator)

    def coarse_frames(self, frames: int) -> int:
        """Frames of the coarse stage for an input of ``frames`` target frames."""
        return max(1, math.ceil(frames / self.time_ratio))

    def texture(self, frames: int) -> Tensor:
        """The fixed noise field for ``frames`` frames, ``(frames, n_mels)`` (tiled past 4,096)."""
        reps = -(-frames // NOISE_FRAMES)
        field = self.noise if reps == 1 else self.noise.repeat(reps, 1)
        return field[:frames]

    def noise_field(self, batch: int, frames: int) -> Tensor:
        """``(batch, 1, frames, n_mels)``: the fixed field, or fresh draws while training
        with ``train_noise="fresh"`` (torch's generator: the trainer seeds and saves it)."""
        if self.training and self.config.train_noise == "fresh":
            return torch.randn(batch, 1, frames, self.n_mels, device=self.noise.device)
        return self.texture(frames)[None, None].expand(batch, 1, frames, self.n_mels)

    def forward(self, mel: Tensor) -> Tensor:
        """Refine ``mel`` (batch, frames, mels) -> (batch, frames, mels)."""
        if mel.dim() != 3 or mel.shape[-1] != self.n_mels:
            raise InputError(f"coarse_texture expects a PINV log-Mel shaped (batch, frames, "
                             f"{self.n_mels}), got {tuple(mel.shape)}.")
        batch, frames, mels = mel.shape
        x = mel[:, None]
        coarse = F.adaptive_avg_pool2d(x, (self.coarse_frames(frames), mels))
        h = self.head(self.blocks(self.stem(coarse)))
        h = F.interpolate(h, size=(frames, mels), mode="bilinear", align_corners=False)
        offset, gain, features = h[:, :1], F.softplus(h[:, 1:2]), h[:, 2:]
        noise = self.noise_field(batch, frames).to(mel.dtype)
        fine = self.fine2(torch.relu(self.fine1(torch.cat([x, noise, features], dim=1))))
        return (x + offset + gain * noise + fine)[:, 0]


def _softplus_inverse(y: float) -> float:
    return y + math.log(-math.expm1(-y))
