"""The contract every teacher (frozen pretrained classifier) follows: public API.

A teacher takes a precomputed log-Mel spectrogram shaped ``(batch, frames, mels)``
(the classifier's own STFT/Mel front end is *not* part of the module: the
transcoder produces that Mel) and returns clip-wise pre-sigmoid logits and
sigmoid probabilities shaped ``(batch, classes)``.

What a third-party teacher implements, all checked by
:func:`specxform.testing.check_teacher` (the check every built-in passes):

- a subclass of :class:`Teacher` with ``num_classes``, ``min_frames``,
  ``n_mels`` and ``aux_inputs`` set, whose :meth:`Teacher.forward` refuses a
  wrong shape with :class:`~specxform.errors.InputError`
  (:meth:`Teacher.check_input` does it);
- :meth:`Teacher.labels`, the class names;
- for each name in ``aux_inputs``, the extra input computed two ways:
  ``aux_from_audio(audio, sample_rate)`` from a chunk's audio (for the true
  Mel) and ``aux_from_source(levels, source)`` from the source levels only
  (for the transcoded Mel); both return ``{name: np.ndarray}`` with the same
  shapes for the same duration (SoundAQnet's loudness);
- a factory registered with ``registry.add_teacher(...)``, called as
  ``factory(weights=None, *, pretrained=True)`` (see :class:`TeacherFactory`),
  together with its chunking, weight files and accepted sources.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Mapping
from typing import ClassVar, NamedTuple, Protocol

import torch
from torch import Tensor

from specxform.errors import InputError

__all__ = ["Teacher", "TeacherFactory", "TeacherOutput"]


class TeacherFactory(Protocol):
    """What ``registry.add_teacher(factory=...)`` takes, exactly as specxform calls it.

    ``factory(weights=None)``: the pretrained teacher, from the user's
    ``--weights PATH`` when given, else from its registered weight files
    (:func:`specxform.weights.resolve`: the search path, the cache, or a
    download). ``factory(pretrained=False)``: the same architecture with random
    weights and no file read (contract checks, benchmarks). Either returns a
    :class:`Teacher` in eval mode. More keyword arguments, with defaults, are
    allowed (the built-ins take ``download=True``).
    """

    def __call__(
        self, weights: str | os.PathLike[str] | None = None, *, pretrained: bool = True
    ) -> Teacher: ...


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

    @classmethod
    def labels(cls) -> tuple[str, ...]:
        """The class names, one per output, in output order.

        Names that ship with the code are returned directly; names kept in a
        published file are read with
        :func:`specxform.teachers.labels.read_label_file`, which raises
        :class:`~specxform.errors.WeightsError` naming the fetch command when the
        file is absent. Subclasses override this; the base raises
        :class:`NotImplementedError` (commands then show ``class_<index>``).

        Returns
        -------
        tuple of str
            ``num_classes`` names.
        """
        raise NotImplementedError(
            f"{cls.__name__} defines no labels(); add a labels() classmethod returning "
            f"its {getattr(cls, 'num_classes', '?')} class names."
        )

    def shaped_like(self, state: Mapping[str, Tensor]) -> Teacher:
        """An untrained module of this teacher's kind whose structure fits ``state``.

        A retrained teacher's checkpoint holds only its state dict; when a
        teacher's structure depends on the weights it was built from (YAMNet
        from TFLite files folds its BatchNorms into biases), the checkpoint
        loader asks the factory's untrained module for the right shape here.
        The base returns ``self``: the structure does not depend on the weights.
        """
        return self

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
