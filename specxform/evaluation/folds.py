"""Evaluation folds of a downstream task: which clips train, validate and test.

Schemes (:func:`dataset_folds`; ``scheme="auto"`` picks the first the dataset has):

- ``folds``: its official cross-validation folds, each testing once
  (UrbanSound8K's ten; ESC-50's five, or those present);
- ``split``: its official split (SONYC-UST): train on ``train``, test on
  ``test`` (``validate`` selects the epoch when asked);
- ``grouped``: grouped K-fold cross-validation, no group in two folds, groups
  spread so that each fold gets a similar number of clips of each class
  (:func:`assign_group_folds`); any dataset.

A dataset supplies its own official folds and split
(:meth:`~specxform.datasets.AudioDataset.cross_validation`,
:meth:`~specxform.datasets.AudioDataset.split`); nothing here names a dataset.

May import: :mod:`specxform.datasets` and :mod:`specxform.errors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from specxform.datasets import AudioDataset, Clip, Split
from specxform.errors import InputError, SpecError

__all__ = [
    "DEFAULT_FOLDS",
    "SCHEMES",
    "Fold",
    "assign_group_folds",
    "dataset_folds",
    "grouped_folds",
    "resolve_scheme",
]


@attrs.frozen
class Fold:
    """One train / valid / test partition of the clips (names relative to the dataset root)."""

    name: str
    train: tuple[str, ...]
    valid: tuple[str, ...]
    test: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "train": len(self.train), "valid": len(self.valid),
                "test": len(self.test)}


def _names(clips: Sequence[Clip]) -> tuple[str, ...]:
    return tuple(c.name for c in clips)


def _from_split(name: str, split: Split, *, validate: bool, merge_valid: bool) -> Fold:
    train, valid = _names(split.train), _names(split.valid)
    if not validate:
        train, valid = (tuple(sorted(train + valid)) if merge_valid else train), ()
    return Fold(name, train, valid, _names(split.test))


def assign_group_folds(clips: Sequence[Clip], k: int, *, seed: int = 0) -> dict[str, int]:
    """Give every group of ``clips`` a fold ``0 .. k - 1``, balancing classes and sizes.

    Groups are shuffled with ``seed``, then taken largest first (stable); each
    goes to the fold holding the fewest clips of the group's most common label,
    then the fewest clips, then the lowest index. A group never spans folds.

    Raises
    ------
    InputError
        If there are fewer groups than folds.
    SpecError
        If ``k < 2``.
    """
    if not isinstance(k, int) or k < 2:
        raise SpecError(f"cross-validation needs at least 2 folds, got {k!r}; e.g. `k=5`.")
    members: dict[str, list[Clip]] = {}
    for clip in sorted(clips, key=lambda c: c.name):
        members.setdefault(clip.group, []).append(clip)
    if len(members) < k:
        raise InputError(
            f"{len(members)} group(s) cannot fill {k} folds (no group may span two folds); "
            f"use `k={max(2, len(members))}` or fewer, or add recordings."
        )
    shuffled = [str(g) for g in np.random.default_rng(seed).permutation(sorted(members))]
    order = sorted(shuffled, key=lambda g: -len(members[g]))
    sizes = np.zeros(k, dtype=np.int64)
    per_label: dict[str | None, np.ndarray] = {}
    folds: dict[str, int] = {}
    for group in order:
        labels = [c.label for c in members[group]]
        main = max(sorted(set(labels), key=str), key=labels.count)
        counts = per_label.setdefault(main, np.zeros(k, dtype=np.int64))
        fold = min(range(k), key=lambda f: (counts[f], sizes[f], f))
        folds[group] = fold
        counts[fold] += len(members[group])
        sizes[fold] += len(members[group])
    return folds


def grouped_folds(clips: Sequence[Clip], k: int = 5, *, seed: int = 0,
                  validate: bool = False) -> tuple[Fold, ...]:
    """Grouped K-fold cross-validation (see :func:`assign_group_folds`).

    Fold ``i`` tests; with ``validate`` the previous fold (cyclically)
    validates and the others train, otherwise all the others train.
    """
    assignment = assign_group_folds(clips, k, seed=seed)
    parts: list[list[str]] = [[] for _ in range(k)]
    for clip in sorted(clips, key=lambda c: c.name):
        parts[assignment[clip.group]].append(clip.name)
    folds = []
    for i in range(k):
        held = {i, (i - 1) % k} if validate else {i}
        train = tuple(sorted(n for f in range(k) if f not in held for n in parts[f]))
        valid = tuple(parts[(i - 1) % k]) if validate else ()
        folds.append(Fold(f"fold{i + 1}", train, valid, tuple(parts[i])))
    return tuple(folds)


#: Evaluation schemes of :func:`dataset_folds`.
SCHEMES = ("auto", "folds", "split", "grouped")
#: Folds of the grouped scheme when none are given.
DEFAULT_FOLDS = 5


def _official_folds(dataset: AudioDataset, validate: bool) -> tuple[tuple[Fold, ...], str]:
    if not dataset.folds:
        raise InputError(
            f"dataset {dataset.name!r} has no official cross-validation folds; use "
            "`scheme='split'` for its official split, or `scheme='grouped'` for grouped K-fold "
            "cross-validation."
        )
    try:
        splits = dataset.cross_validation()
    except InputError as exc:
        raise InputError(f"{exc} The official folds cannot be made on this copy of "
                         f"{dataset.name}; use `scheme='grouped'`.") from exc
    return (tuple(_from_split(f"fold{k}", s, validate=validate, merge_valid=True)
                  for k, s in enumerate(splits, start=1)),
            f"{dataset.name} official {len(splits)}-fold cross-validation")


def _official_split(dataset: AudioDataset, validate: bool) -> tuple[tuple[Fold, ...], str]:
    if dataset.subsets is None:
        raise InputError(
            f"dataset {dataset.name!r} has no official split; use `scheme='grouped'` for "
            "grouped K-fold cross-validation."
        )
    try:
        split = dataset.split()
    except InputError as exc:
        raise InputError(f"{exc} The official split cannot be made on this copy of "
                         f"{dataset.name}; use `scheme='grouped'`.") from exc
    return ((_from_split("test", split, validate=validate, merge_valid=False),),
            f"official split ({split.scheme.removeprefix('subsets ')})")


def resolve_scheme(dataset: AudioDataset, scheme: str = "auto") -> str:
    """The scheme ``"auto"`` stands for on ``dataset`` (``folds``, ``split`` or ``grouped``)."""
    if scheme not in SCHEMES:
        raise SpecError(f"unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}.")
    if scheme != "auto":
        return scheme
    return "folds" if dataset.folds else "split" if dataset.subsets is not None else "grouped"


def dataset_folds(dataset: AudioDataset, *, scheme: str = "auto", folds: int | None = None,
                  seed: int = 0, validate: bool = False) -> tuple[tuple[Fold, ...], str]:
    """The evaluation folds of ``dataset`` and a description of the scheme.

    Parameters
    ----------
    dataset : AudioDataset
    scheme : {"auto", "folds", "split", "grouped"}
        ``"folds"``: the dataset's official cross-validation folds
        (:meth:`AudioDataset.cross_validation`; with ``validate`` each fold's
        validation subsets select the probe's epoch, without they train).
        ``"split"``: its official split, train / test (``validate`` adds its
        validation part, otherwise unused). ``"grouped"``:
        :func:`grouped_folds` with ``folds`` folds over the dataset's groups,
        whatever official partition it has (e.g. UrbanSound8K fold 1 alone,
        grouped by ``fsID``). ``"auto"``: the first of these the dataset has
        (:func:`resolve_scheme`).
    folds : int, optional
        Folds of the grouped scheme (default :data:`DEFAULT_FOLDS`); refused
        with an official scheme, which has its own.
    seed : int
        Seed of the grouped folds.
    validate : bool
        Hold out a validation part (see ``scheme``).

    Raises
    ------
    InputError
        If the dataset lacks the official folds or split asked for, or they
        cannot be made from the clips on disk.
    SpecError
        If ``folds`` is given with an official scheme, or the scheme is unknown.
    """
    chosen = resolve_scheme(dataset, scheme)
    if chosen != "grouped" and folds is not None:
        raise SpecError(
            f"`folds={folds}` sets the folds of grouped cross-validation, but {dataset.name} is "
            f"evaluated by its official {'folds' if chosen == 'folds' else 'split'}; add "
            f"`scheme='grouped'` to use {folds} grouped folds, or leave `folds` out."
        )
    if chosen == "folds":
        return _official_folds(dataset, validate)
    if chosen == "split":
        return _official_split(dataset, validate)
    k = DEFAULT_FOLDS if folds is None else folds
    return (grouped_folds(dataset.clips, k, seed=seed, validate=validate),
            f"grouped {k}-fold cross-validation (seed {seed})")
