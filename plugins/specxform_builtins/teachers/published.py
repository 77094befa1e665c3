"""The class-method trio of teachers built from published files: labels, checkpoint, pretrained.

A built-in teacher whose class names and official weights are registered weight
files (PANN CNN14 and ResNet38, EfficientAT MN04, YAMNet) derives from
:class:`PublishedTeacher` and declares the two file names and how a file loads
into a fresh model; the three class methods are written once here.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Mapping
from typing import ClassVar, Self

from torch import Tensor, nn

from specxform import weights as catalogue
from specxform.errors import CheckpointError
from specxform.teachers.base import Teacher
from specxform.teachers.labels import read_label_file

__all__ = ["PublishedTeacher", "load_matching_state"]


class PublishedTeacher(Teacher):
    """A teacher whose labels and official weights are registered weight files.

    Subclasses set :attr:`label_file` (weight-file name of the class names,
    :attr:`num_classes` rows) and :attr:`weights_name` (weight-file name of the
    official checkpoint) and implement :meth:`load_weights`.
    """

    #: Weight-file name of the class names (``read_label_file``).
    label_file: ClassVar[str]
    #: Weight-file name of the official checkpoint (``specxform weights list``).
    weights_name: ClassVar[str]

    @classmethod
    def labels(cls) -> tuple[str, ...]:
        """The :attr:`num_classes` class names, from :attr:`label_file` in the weight cache.

        Raises :class:`~specxform.errors.WeightsError` naming the fetch command
        when the file is not cached.
        """
        return read_label_file(cls.label_file, cls.num_classes)

    @abc.abstractmethod
    def load_weights(self, file: str | os.PathLike[str]) -> None:
        """Load the official (or a re-saved) checkpoint ``file`` into this model, strictly."""

    @classmethod
    def from_checkpoint(cls, file: str | os.PathLike[str]) -> Self:
        """Build the model and load ``file`` (:meth:`load_weights`), in eval mode."""
        model = cls()
        model.load_weights(file)
        return model.eval()

    @classmethod
    def pretrained(
        cls, weights: str | os.PathLike[str] | None = None, *, download: bool = True
    ) -> Self:
        """The official model: from ``weights`` (a path), the cache, or a download.

        See :func:`specxform.weights.resolve`; offline, the error says where to put the file.
        """
        file = catalogue.resolve(catalogue.get(cls.weights_name), weights, download=download)
        return cls.from_checkpoint(file)


def load_matching_state(model: nn.Module, state: Mapping[str, Tensor], *, hint: str) -> None:
    """Load ``state`` into ``model`` strictly, or say every way in which it does not fit.

    Parameters
    ----------
    model : nn.Module
        Target module.
    state : mapping of str to Tensor
        A state dict already in the module's own key layout.
    hint : str
        The sentence that ends the error: which file was expected.

    Raises
    ------
    CheckpointError
        Listing the missing and unexpected keys and the shape mismatches (eight of each).
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        f"{k}: {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
        for k in set(state) & set(expected) if state[k].shape != expected[k].shape
    )
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"checkpoint does not match {type(model).__name__}: missing keys {_first(missing)}; "
            f"unexpected keys {_first(unexpected)}; shape mismatches {_first(wrong)}. {hint}"
        )
    model.load_state_dict(state, strict=True)


def _first(names: list[str], most: int = 8) -> str:
    # a wrong file can mismatch hundreds of keys: eight show which kind it is
    more = f" (+{len(names) - most} more)" if len(names) > most else ""
    return f"{names[:most]}{more}"
