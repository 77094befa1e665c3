"""Training losses of the teacher-student transcoder.

``logits`` (the paper's CNN-logits): binary cross-entropy between the frozen
teacher's sigmoid outputs on the transcoded Mel and on the true Mel, averaged
over every class and chunk: ``BCE(sigmoid(teacher(student mel)),
sigmoid(teacher(true mel)))``. It is computed from the student-side logits
(``binary_cross_entropy_with_logits``): the same value, without the
``log(0)`` of a saturated sigmoid.

``mels`` (CNN-mels): mean squared error between transcoded and true log-Mels,
in the target's unit squared (dB^2 for PANN).

``hybrid``: ``logits + mels_weight * mels``. The default weight 0.01 is our
choice, not the paper's: it brings a Mel MSE of tens of dB^2 to the scale of
the BCE.

Any method can add ``kl_weight`` times :func:`kl_divergence`, a proper KL
divergence between the two probability vectors normalised to sum to one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor

from specxform.errors import InputError, SpecError

__all__ = [
    "METHODS",
    "LossConfig",
    "LossTerms",
    "kl_divergence",
    "logits_loss",
    "mels_loss",
    "transcoder_loss",
]

METHODS = ("logits", "mels", "hybrid")
#: Probability floor of the normalised distributions in the KL term (keeps log finite).
_KL_FLOOR = 1e-12


def _non_negative(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not value >= 0:
        raise SpecError(f"`{attribute.name}={value!r}`: a loss weight must be >= 0 (0 turns "
                        "its term off).")


def _method(instance: object, attribute: attrs.Attribute, value: str) -> None:
    if value not in METHODS:
        raise SpecError(f"unknown loss method {value!r}; choose one of {', '.join(METHODS)}.")


@attrs.frozen
class LossConfig:
    """Which loss terms to combine, and their weights.

    Parameters
    ----------
    method : {"logits", "mels", "hybrid"}
    mels_weight : float
        Weight of the Mel MSE in ``hybrid`` (ignored otherwise).
    kl_weight : float
        Weight of the optional KL term (0 disables it).
    """

    method: str = attrs.field(default="logits", validator=_method)
    mels_weight: float = attrs.field(default=0.01, converter=float, validator=_non_negative)
    kl_weight: float = attrs.field(default=0.0, converter=float, validator=_non_negative)

    @property
    def needs_teacher(self) -> bool:
        """Whether the teacher must run on the transcoded Mel during training."""
        return self.method != "mels" or self.kl_weight > 0

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LossConfig:
        return cls(**data)


class LossTerms(NamedTuple):
    """The total loss and each term (detached terms are for logging)."""

    total: Tensor
    logits: Tensor | None
    mels: Tensor | None
    kl: Tensor | None


def _same_shape(a: Tensor, b: Tensor, what: str) -> None:
    if a.shape != b.shape:
        raise InputError(
            f"{what}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}; the transcoded and "
            "true values must come from the same chunks and representation."
        )


def logits_loss(student_logits: Tensor, teacher_probs: Tensor) -> Tensor:
    """Mean BCE between ``sigmoid(student_logits)`` and ``teacher_probs``.

    Parameters
    ----------
    student_logits : Tensor, shape (batch, classes)
        Teacher logits on the transcoded Mel.
    teacher_probs : Tensor, shape (batch, classes)
        Teacher probabilities on the true Mel, in [0, 1].

    Returns
    -------
    Tensor
        Scalar, in nats, averaged over batch and classes.
    """
    _same_shape(student_logits, teacher_probs, "logits loss")
    return F.binary_cross_entropy_with_logits(student_logits, teacher_probs.to(student_logits))


def mels_loss(student_mel: Tensor, true_mel: Tensor) -> Tensor:
    """Mean squared error between log-Mels (batch, frames, mels), in the Mel unit squared."""
    _same_shape(student_mel, true_mel, "Mel loss")
    return F.mse_loss(student_mel, true_mel.to(student_mel))


def kl_divergence(teacher_probs: Tensor, student_probs: Tensor) -> Tensor:
    """``KL(p || q)`` of the class vectors normalised to sum to 1, averaged over the batch.

    ``p`` comes from the true Mel, ``q`` from the transcoded one; both are
    (batch, classes) sigmoid outputs. Result in nats.
    """
    _same_shape(teacher_probs, student_probs, "KL divergence")
    p = teacher_probs.to(student_probs)
    p = p / p.sum(dim=-1, keepdim=True).clamp_min(_KL_FLOOR)
    q = student_probs / student_probs.sum(dim=-1, keepdim=True).clamp_min(_KL_FLOOR)
    terms = p * (p.clamp_min(_KL_FLOOR).log() - q.clamp_min(_KL_FLOOR).log())
    return terms.sum(dim=-1).mean()


def transcoder_loss(config: LossConfig, *, student_mel: Tensor, true_mel: Tensor,
                    student_logits: Tensor | None, teacher_probs: Tensor) -> LossTerms:
    """Combine the terms that ``config`` asks for.

    ``student_logits`` (teacher logits on ``student_mel``) may be ``None``
    only when ``config.needs_teacher`` is false.
    """
    if config.needs_teacher and student_logits is None:
        raise InputError(
            f"loss method {config.method!r} (kl_weight={config.kl_weight}) needs the teacher's "
            "logits on the transcoded Mel; pass student_logits."
        )
    mel_term = mels_loss(student_mel, true_mel) if config.method != "logits" else None
    bce = kl = None
    if student_logits is not None and config.method != "mels":
        bce = logits_loss(student_logits, teacher_probs)
    if student_logits is not None and config.kl_weight > 0:
        kl = kl_divergence(teacher_probs, torch.sigmoid(student_logits))
    weights = {"logits": (1.0, 0.0), "mels": (0.0, 1.0), "hybrid": (1.0, config.mels_weight)}
    parts = [(w, t) for w, t in zip((*weights[config.method], config.kl_weight),
                                    (bce, mel_term, kl), strict=True) if t is not None and w]
    total = torch.stack([w * t for w, t in parts]).sum()
    return LossTerms(total, bce, mel_term, kl)
