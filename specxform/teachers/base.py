"""The contract every teacher (frozen pretrained classifier) follows.

A teacher takes a precomputed log-Mel spectrogram shaped ``(batch, frames, mels)``
(the classifier's own STFT/Mel front end is *not* part of the module: the
transcoder produces that Mel) and returns clip-wise pre-sigmoid logits and
sigmoid probabilities shaped ``(batch, classes)``.

Some teachers need more than the Mel (SoundAQnet also takes loudness); they name
those extra inputs in :attr:`Teacher.aux_inputs` and receive them through the
``aux`` mapping of :meth:`Teacher.forward`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import ClassVar, NamedTuple

import torch
from torch import Tensor

from specxform.errors import InputError

__all__ = ["Teacher", "TeacherOutput"]


class TeacherOutput(NamedTuple):
    """Clip-wise output of a teacher.

    Attributes
    ----------
    logits : Tensor
        Pre-sigmoid scores, shape ``(batch, classes)``.
    probs : Tensor
        ``sigmoid(logits)``, shape ``(batch, classes)``, values in [0, 1].
    """

    logits: Tensor
    probs: Tensor


class Teacher(torch.nn.Module, metaclass=abc.ABCMeta):
    """Abstract base of the teachers.

    Subclasses set the class attributes below and implement :meth:`forward`.

    Attributes
    ----------
    num_classes : int
        Number of output classes (527 for PANNs, 521 for YAMNet).
    min_frames : int
        Shortest input, in Mel frames, the network can process.
    n_mels : int
        Number of Mel bands of the input.
    aux_inputs : tuple of str
        Names of the extra inputs :meth:`forward` requires in ``aux``.
    """

    num_classes: ClassVar[int]
    min_frames: ClassVar[int]
    n_mels: ClassVar[int] = 64
    aux_inputs: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def forward(self, mel: Tensor, aux: Mapping[str, Tensor] | None = None) -> TeacherOutput:
        """Classify a batch of log-Mel spectrograms.

        Parameters
        ----------
        mel : Tensor
            Log-Mel spectrogram, shape ``(batch, frames, n_mels)``, in the units
            of the teacher's own front end (dB for PANNs, natural log for YAMNet).
        aux : mapping of str to Tensor, optional
            Extra inputs named in :attr:`aux_inputs`; ``None`` when there are none.

        Returns
        -------
        TeacherOutput
            Clip-wise ``logits`` and ``probs``, each ``(batch, num_classes)``.
        """

    def trainable_parameter_count(self) -> int:
        """Number of parameters the original model learns.

        All of this module's parameters are counted, whether or not they are
        currently frozen (``requires_grad``), so that the figure describes the
        architecture and can be compared with the published one.

        Returns
        -------
        int
            Total number of scalar parameters.
        """
        return sum(p.numel() for p in self.parameters())

    def check_input(self, mel: Tensor, aux: Mapping[str, Tensor] | None = None) -> None:
        """Raise :class:`~specxform.errors.InputError` if ``mel``/``aux`` cannot be classified.

        Parameters
        ----------
        mel : Tensor
            Expected shape ``(batch, frames, n_mels)`` with ``frames >= min_frames``.
        aux : mapping of str to Tensor, optional
            Must hold exactly the names in :attr:`aux_inputs`.
        """
        name = type(self).__name__
        if mel.ndim != 3:
            raise InputError(
                f"{name} expects a log-Mel shaped (batch, frames, {self.n_mels}), got shape "
                f"{tuple(mel.shape)}; add a batch axis with mel.unsqueeze(0) if needed."
            )
        frames, mels = mel.shape[1], mel.shape[2]
        if mels != self.n_mels:
            raise InputError(
                f"{name} expects {self.n_mels} Mel bands on the last axis, got {mels} "
                f"(shape {tuple(mel.shape)}); compute the Mel with this teacher's front end."
            )
        if frames < self.min_frames:
            raise InputError(
                f"{name} needs at least {self.min_frames} frames, got {frames}; "
                f"pad the input to {self.min_frames} frames or use a longer excerpt."
            )
        given = set(aux or {})
        if given != set(self.aux_inputs):
            raise InputError(
                f"{name} expects aux inputs {sorted(self.aux_inputs)}, got {sorted(given)}."
            )
