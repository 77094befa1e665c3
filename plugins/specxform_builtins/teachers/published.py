"""The class-method trio of teachers built from published files: labels, checkpoint, pretrained.

A built-in teacher whose class names and official weights are registered weight
files (PANN CNN14 and ResNet38, EfficientAT MN04, YAMNet) derives from
:class:`PublishedTeacher` and declares the two file names and how a file loads
into a fresh model; the three class methods are written once here.
"""

from __future__ import annotations

import abc
import os
from typing import ClassVar, Self

from specxform import weights as catalogue
from specxform.teachers.base import Teacher
from specxform.teachers.labels import read_label_file

__all__ = ["PublishedTeacher"]


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
