"""Audio datasets for training: clips, labels, group keys and grouped splits.

A dataset adapter (registered through ``specxform_add_datasets``) turns a
folder on disk into an :class:`AudioDataset`: a sorted list of :class:`Clip`
(path, path relative to the root, label, group). :meth:`AudioDataset.split`
makes train/valid/test splits in which no group appears in two splits: clips
cut from the same recording (the UrbanSound8K ``fsID``) must stay together,
or a score measures memorisation.

The built-in ``folder`` adapter (:func:`folder`) takes any audio tree; the
label of a clip is its parent folder's name (``None`` at the root).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from specxform.audio import AUDIO_SUFFIXES
from specxform.errors import InputError, SpecError

__all__ = [
    "GROUP_RULES",
    "AudioDataset",
    "Clip",
    "Split",
    "folder",
    "group_of",
    "grouped_split",
]

#: UrbanSound8K file names: ``fsID-classID-occurrence-slice``.
_URBANSOUND8K = re.compile(r"^(\d+)-(\d+)-(\d+)-(\d+)$")
DEFAULT_FRACTIONS = (0.75, 0.125, 0.125)  # the paper's split of TAU 2020


def _urbansound8k_group(path: Path) -> str:
    match = _URBANSOUND8K.match(path.stem)
    if match is None:
        raise InputError(
            f"{path.name}: not an UrbanSound8K name (fsID-classID-occurrence-slice.wav); "
            "use group='auto' or group='file'."
        )
    return match.group(1)


def _auto_group(path: Path) -> str:
    match = _URBANSOUND8K.match(path.stem)
    return match.group(1) if match else path.stem


#: Group rules by name: how a clip's group key follows from its path.
GROUP_RULES: dict[str, Callable[[Path], str]] = {
    "auto": _auto_group,  # the UrbanSound8K fsID when the name has that form, else the stem
    "urbansound8k": _urbansound8k_group,
    "file": lambda path: path.stem,
}


def group_of(path: Path, rule: str = "auto") -> str:
    """The group key of ``path`` under ``rule`` (a key of :data:`GROUP_RULES`)."""
    try:
        return GROUP_RULES[rule](path)
    except KeyError:
        raise SpecError(
            f"unknown group rule {rule!r}; choose one of {', '.join(GROUP_RULES)}."
        ) from None


@attrs.frozen
class Clip:
    """One audio file of a dataset.

    Attributes
    ----------
    path : Path
        Absolute file path.
    name : str
        Path relative to the dataset root, POSIX separators (a stable id).
    label : str or None
        Class label (the parent folder for ``folder``).
    group : str
        Clips of one group never go to different splits.
    """

    path: Path
    name: str
    label: str | None
    group: str


@attrs.frozen
class Split:
    """Train, validation and test clips, and how they were drawn."""

    train: tuple[Clip, ...]
    valid: tuple[Clip, ...]
    test: tuple[Clip, ...]
    seed: int
    fractions: tuple[float, float, float]

    def to_dict(self) -> dict[str, Any]:
        """The split as clip names (for checkpoints)."""
        return {
            "seed": self.seed,
            "fractions": list(self.fractions),
            **{part: [c.name for c in getattr(self, part)] for part in ("train", "valid", "test")},
        }


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(f) for f in fractions)
    if len(values) != 3 or min(values) < 0 or not abs(sum(values) - 1.0) < 1e-9 or not values[0]:
        raise SpecError(
            f"split fractions must be three non-negative numbers (train, valid, test) summing "
            f"to 1 with train > 0, got {fractions!r}; e.g. (0.75, 0.125, 0.125)."
        )
    return values


def grouped_split(clips: Sequence[Clip], fractions: Sequence[float] = DEFAULT_FRACTIONS, *,
                  seed: int = 0) -> Split:
    """Split clips by group, close to ``fractions`` of the clip count.

    Groups are shuffled with ``seed``; the first ones go one to each split
    with a positive fraction (so none is empty), then each next group goes to
    the split furthest below its target count. Deterministic for a given seed
    and clip list (whatever its order).

    Raises
    ------
    InputError
        If there are fewer groups than splits with a positive fraction.
    """
    shares = _check_fractions(fractions)
    by_group: dict[str, list[Clip]] = {}
    for clip in sorted(clips, key=lambda c: c.name):
        by_group.setdefault(clip.group, []).append(clip)
    wanted = sum(1 for s in shares if s > 0)
    if len(by_group) < wanted:
        raise InputError(
            f"{len(by_group)} group(s) cannot fill {wanted} splits; add recordings, or set the "
            "empty splits' fractions to 0."
        )
    order = list(np.random.default_rng(seed).permutation(sorted(by_group)))
    targets = np.array(shares) * len(clips)
    counts = np.zeros(3)
    parts: list[list[Clip]] = [[], [], []]
    # The first groups seed every split that must not be empty; the rest fill the largest gap.
    seeds = [i for i, share in enumerate(shares) if share > 0]
    for n, group in enumerate(order):
        gap = np.where(np.array(shares) > 0, targets - counts, -np.inf)
        part = seeds[n] if n < len(seeds) else int(np.argmax(gap))
        parts[part].extend(by_group[group])
        counts[part] += len(by_group[group])
    train, valid, test = (tuple(sorted(p, key=lambda c: c.name)) for p in parts)
    return Split(train, valid, test, seed, shares)


@attrs.frozen
class AudioDataset:
    """The clips of one dataset under ``root``."""

    name: str
    root: Path
    clips: tuple[Clip, ...]

    @property
    def classes(self) -> tuple[str, ...]:
        """Sorted distinct labels (clips without a label are left out)."""
        return tuple(sorted({c.label for c in self.clips if c.label is not None}))

    def split(self, fractions: Sequence[float] = DEFAULT_FRACTIONS, *, seed: int = 0) -> Split:
        """Grouped train/valid/test split (see :func:`grouped_split`)."""
        return grouped_split(self.clips, fractions, seed=seed)


def folder(root: str | Path, *, group: str = "auto") -> AudioDataset:
    """Every audio file under ``root`` (recursively), labelled by its parent folder.

    Parameters
    ----------
    root : path
        Dataset folder.
    group : {"auto", "urbansound8k", "file"}
        Group rule (see :data:`GROUP_RULES`): ``"auto"`` groups UrbanSound8K
        names by fsID and treats any other file as its own group.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise InputError(f"{root}: no such dataset folder; check --data.")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise InputError(
            f"{root}: no audio files ({', '.join(AUDIO_SUFFIXES)}) found; check --data."
        )
    clips = tuple(
        Clip(
            path=path,
            name=path.relative_to(root).as_posix(),
            label=path.parent.name if path.parent != root else None,
            group=group_of(path, group),
        )
        for path in files
    )
    return AudioDataset("folder", root, clips)
