"""The ``coarse_texture`` student: most of the work at the source's frame rate, texture at the end.

Why this shape. A third-octave source carries information at its own frame
rate (8 frames/s for Cense, 1 for slow third octaves); the target Mel has 100.
The PINV Mel between two source frames is an interpolation, so a network that
convolves it at 100 frames/s (the reference :class:`~specxform.transcoders.students.ResidualCNN`)
spends most of its 2.4 GFLOP per second of audio on redundant frames. This
student averages the PINV Mel down to the source's frame rate, refines it there
with a residual stack of 2-D convolutions (time x Mel), and comes back to the
target rate only for two thin convolutions.

The second reason is texture (SPEC section 5): real Mels fluctuate from frame
to frame by about 0.4 natural-log units, PINV Mels by 0.06, and a classifier
hears the smooth PINV Mel as a synthesizer. A deterministic network cannot
invent fluctuation from a smooth input, so the student is given one: a fixed
Gaussian field (generated from ``seed``, not stored in checkpoints) whose gain
per (time, band) the coarse stage predicts. The output is::

    mel + offset(t, f) + gain(t, f) * noise(t, f) + fine(mel, features, noise)

with ``offset`` and ``gain`` predicted at the coarse rate and interpolated, and
``fine`` two 3x3 convolutions at the target rate. The same input gives the
same output (the field is fixed), so transcoding stays reproducible.

With ``train_noise="fresh"`` training draws a new field for every chunk (from
torch's seeded generator, so a run stays reproducible and resumable) instead of
showing the student one field it could learn; evaluation and transcoding keep
the fixed field. It lowered the held-out KL in all four runs measured and
raised PtoPa-FC in three of them (docs/training.md, "Fresh texture fields").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from specxform.errors import SpecError

__all__ = ["NOISE_FRAMES", "TRAIN_NOISE", "CoarseTextureConfig", "coarse_texture"]

#: Length of the fixed noise field, in target frames; longer inputs tile it.
NOISE_FRAMES = 4096

#: What field training uses: the fixed one, or a new draw for every chunk.
TRAIN_NOISE = ("fixed", "fresh")


def _at_least(minimum: int):
    def check(instance: object, attribute: attrs.Attribute, value: int) -> None:
        if not isinstance(value, int) or value < minimum:
            raise SpecError(f"coarse_texture {attribute.name} must be an int >= {minimum}, "
                            f"got {value!r}.")

    return check


@attrs.frozen
class CoarseTextureConfig:
    """Shape of a :class:`CoarseTexture` student.

    Parameters
    ----------
    channels : int
        Width of the coarse-rate stack.
    blocks : int
        Residual blocks (two 3x5 convolutions each) at the coarse rate.
    fine_channels : int
        Width of the target-rate refinement (two 3x3 convolutions).
    noise_gain : float
        Initial texture gain, in natural-log units of power (converted to the
        target's unit); 1.0 is about the fluctuation of real Mels.
    seed : int
        Seed of the fixed noise field.
    coarse_rate : float
        Frames per second of the coarse stage; 0 (the default) runs it at the
        source's own rate, and a rate between the source's and the target's
        raises it. For slow third octaves (1 frame/s) 8 frames/s lowered the
        held-out KL by 0.18 nats and left PtoPa-FC within the noise
        (docs/training.md).
    train_noise : str
        ``"fixed"`` (the default) trains on the fixed field; ``"fresh"`` draws
        a new field for every training chunk, so the student cannot learn one
        field's pattern. Evaluation and transcoding always use the fixed field.
    """

    channels: int = attrs.field(default=48, validator=_at_least(1))
    blocks: int = attrs.field(default=3, validator=_at_least(0))
    fine_channels: int = attrs.field(default=16, validator=_at_least(1))
    noise_gain: float = attrs.field(default=1.0, converter=float)
    seed: int = attrs.field(default=0, validator=_at_least(0))
    coarse_rate: float = attrs.field(default=0.0, converter=float)
    train_noise: str = attrs.field(default="fixed")

    @train_noise.validator
    def _check_noise(self, attribute: attrs.Attribute, value: str) -> None:
        if value not in TRAIN_NOISE:
            raise SpecError(f"coarse_texture train_noise must be one of {', '.join(TRAIN_NOISE)}, "
                            f"got {value!r}.")

    @coarse_rate.validator
    def _check_rate(self, attribute: attrs.Attribute, value: float) -> None:
        if not value >= 0:
            raise SpecError(f"coarse_texture coarse_rate must be >= 0 frames/s (0: the "
                            f"source's rate), got {value!r}.")

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON- and checkpoint-safe)."""
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CoarseTextureConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys are refused."""
        known = [f.name for f in attrs.fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise SpecError(f"unknown coarse_texture option(s) {unknown}; valid options are "
                            f"{known}.")
        return cls(**data)


def log_power_unit(target: Any) -> float:
    """How many of the target's units one natural-log unit of power is.

    dB of power: 10 / ln 10; natural log of a magnitude: 1/2; a per-band
    standardisation divides by its mean standard deviation.
    """
    scaling = target.scaling
    unit = {"db": 10.0 / math.log(10.0), "ln": 1.0, "none": 1.0}[scaling.log]
    if scaling.domain == "magnitude" and scaling.log == "ln":
        unit = 0.5
    if scaling.std is not None:
        unit /= sum(scaling.std) / len(scaling.std)
    return unit


def coarse_texture(source: Any, target: Any, **config: Any) -> Any:
    """Student factory registered as ``coarse_texture``.

    The coarse rate is the source's frame rate unless ``coarse_rate`` asks
    for more (never more than the target's); ``config`` holds
    :class:`CoarseTextureConfig` fields.
    """
    from specxform_builtins._coarse_texture_model import CoarseTexture

    cfg = CoarseTextureConfig.from_dict(config)
    target_rate = target.framing.sample_rate / target.framing.hop_length
    coarse_rate = source.framing.sample_rate / source.framing.hop_length
    if cfg.coarse_rate > coarse_rate:
        coarse_rate = min(cfg.coarse_rate, target_rate)
    ratio = target_rate / coarse_rate
    return CoarseTexture(cfg, n_mels=target.n_bands, time_ratio=ratio,
                         gain_unit=log_power_unit(target))
