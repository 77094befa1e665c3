"""Class names of a teacher's outputs, with placeholders when they are not available.

A teacher class tells its class names through a ``labels()`` classmethod
returning one name per output, in output order. Names that ship with the code
(SoundAQnet's 15 events) are returned directly; names that live in a published
``index,mid,display_name`` file (AudioSet's ``class_labels_indices.csv`` for
PANNs and EfficientAT, ``yamnet_class_map.csv`` for YAMNet), registered as a
weight file, are read from the search path or the weight cache with
:func:`read_label_file` (parsed by :func:`read_class_map`), which raises
:class:`~specxform.errors.WeightsError` saying which file to fetch. Public API
(``specxform.PUBLIC_MODULES``).

:func:`teacher_labels` is what a command uses: it works for any teacher object,
registered or not, and falls back to ``class_<index>`` names with one warning
line when the names cannot be had.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import attrs

from specxform.errors import InputError, PluginError, WeightsError

__all__ = [
    "ClassLabels",
    "ClassMapEntry",
    "parse_class_map",
    "placeholder_names",
    "read_class_map",
    "read_label_file",
    "teacher_labels",
]


@attrs.frozen
class ClassLabels:
    """Names of a teacher's outputs.

    Attributes
    ----------
    names : tuple of str
        One name per output class, in output order.
    warning : str or None
        Why ``names`` are placeholders (``class_<index>``) and how to get the real
        ones; None when they are the real names.
    """

    names: tuple[str, ...]
    warning: str | None = None

    @property
    def placeholders(self) -> bool:
        """Whether :attr:`names` are ``class_<index>`` placeholders."""
        return self.warning is not None


def placeholder_names(num_classes: int) -> tuple[str, ...]:
    """``("class_0", ..., "class_<num_classes - 1>")``."""
    if num_classes < 1:
        raise InputError(f"num_classes must be >= 1, got {num_classes}.")
    return tuple(f"class_{i}" for i in range(num_classes))


@attrs.frozen
class ClassMapEntry:
    """One row of ``yamnet_class_map.csv`` / AudioSet's ``class_labels_indices.csv``."""

    index: int
    mid: str
    display_name: str


def parse_class_map(text: str, source: str = "class map") -> tuple[ClassMapEntry, ...]:
    """Parse ``index,mid,display_name`` CSV text (header required, indices 0..n-1).

    Raises
    ------
    InputError
        On a wrong header, a malformed row or non-contiguous indices.
    """
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip() for c in rows[0]] != ["index", "mid", "display_name"]:
        raise InputError(
            f"{source}: header must be 'index,mid,display_name', got {rows[0] if rows else []}."
        )
    entries: list[ClassMapEntry] = []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 3 or not row[0].strip().isdigit():
            raise InputError(f"{source} line {line}: expected index,mid,display_name, got {row}.")
        entry = ClassMapEntry(int(row[0]), row[1].strip(), row[2])
        if entry.index != len(entries):
            raise InputError(
                f"{source} line {line}: index {entry.index}, expected {len(entries)} "
                f"(indices must run 0, 1, 2, ... in order)."
            )
        entries.append(entry)
    return tuple(entries)


def read_class_map(file: str | os.PathLike[str]) -> tuple[ClassMapEntry, ...]:
    """Read ``yamnet_class_map.csv`` (or AudioSet's ``class_labels_indices.csv``)."""
    return parse_class_map(Path(file).read_text(encoding="utf-8"), source=str(file))


def read_label_file(weight_name: str, num_classes: int) -> tuple[str, ...]:
    """Display names from a registered class-map CSV, read from the search path or cache.

    Parameters
    ----------
    weight_name : str
        Registered weight-file name (``registry.add_weight_file``) of an
        ``index,mid,display_name`` CSV, e.g. ``"audioset-class-labels"``.
    num_classes : int
        Number of rows the file must hold.

    Returns
    -------
    tuple of str
        ``display_name`` of each row, in index order.

    Raises
    ------
    WeightsError
        If the file is not in the cache (the message gives the
        ``specxform weights fetch`` command), does not parse, or holds another
        number of classes. Nothing is downloaded here.
    """
    from specxform import weights

    wf = weights.get(weight_name)
    file = weights.path(wf)
    if not file.is_file():
        raise WeightsError(
            f"class names: {wf.filename} is not in the cache ({file}); run "
            f"`specxform weights fetch {weight_name}` to download it."
        )
    try:
        entries = read_class_map(file)
    except (InputError, UnicodeDecodeError) as exc:
        raise WeightsError(
            f"class names: {file} does not parse ({exc}); delete it and run "
            f"`specxform weights fetch {weight_name}` again."
        ) from exc
    if len(entries) != num_classes:
        raise WeightsError(
            f"class names: {file} lists {len(entries)} classes, expected {num_classes}; "
            f"delete it and run `specxform weights fetch {weight_name}` again."
        )
    return tuple(entry.display_name for entry in entries)


def teacher_labels(teacher: object, num_classes: int) -> ClassLabels:
    """The class names of ``teacher``, or placeholders with the reason.

    Parameters
    ----------
    teacher : object
        A teacher module (or class). Its ``labels()`` is called when it has one.
    num_classes : int
        Number of outputs of the teacher.

    Returns
    -------
    ClassLabels
        The real names; or ``class_<index>`` names with a one-line warning when
        ``labels()`` raises :class:`~specxform.errors.WeightsError` (a label file
        is missing) or the teacher has no ``labels()``.

    Raises
    ------
    PluginError
        If ``labels()`` returns a number of names other than ``num_classes``.
    """
    name = teacher.__name__ if isinstance(teacher, type) else type(teacher).__name__
    labels = getattr(teacher, "labels", None)
    if not callable(labels):
        return ClassLabels(
            placeholder_names(num_classes),
            f"{name} defines no labels(); showing class_<index> names.",
        )
    try:
        names = tuple(str(n) for n in labels())
    except NotImplementedError:  # the Teacher base's labels(): none defined
        return ClassLabels(
            placeholder_names(num_classes),
            f"{name} defines no labels(); showing class_<index> names.",
        )
    except WeightsError as exc:
        return ClassLabels(placeholder_names(num_classes), f"{exc} Showing class_<index> names.")
    if len(names) != num_classes:
        raise PluginError(
            f"{name}.labels() returned {len(names)} names for {num_classes} classes; "
            "it must return one name per output, in output order."
        )
    return ClassLabels(names)
