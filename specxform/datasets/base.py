"""Clips, datasets and splits: what every dataset adapter returns.

A dataset adapter (registered through ``specxform_add_datasets``) turns a
folder on disk into an :class:`AudioDataset`: a sorted list of :class:`Clip`
(path, path relative to the root, label(s), group, official subset).
:meth:`AudioDataset.split` makes train/valid/test splits in which no group
appears in two splits: clips cut from the same recording (the UrbanSound8K
``fsID``) must stay together, or a score measures memorisation. A dataset that
ships an official split (UrbanSound8K folds, SONYC-UST's ``split`` column)
names the subsets that form it, and :func:`subset_split` reproduces it.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from specxform.errors import InputError, SpecError

__all__ = [
    "DEFAULT_FRACTIONS",
    "GROUP_RULES",
    "AudioDataset",
    "Clip",
    "Split",
    "Subsets",
    "check_files",
    "dataset_root",
    "group_of",
    "grouped_split",
    "read_table",
    "subset_split",
    "write_example_audio",
    "write_table",
]

#: UrbanSound8K file names: ``fsID-classID-occurrence-slice``.
_URBANSOUND8K = re.compile(r"^(\d+)-(\d+)-(\d+)-(\d+)$")
DEFAULT_FRACTIONS = (0.75, 0.125, 0.125)  # the paper's split of TAU 2020


def _freesound_group(path: Path) -> str:
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
    "freesound": _freesound_group,  # the fsID of names fsID-classID-occurrence-slice, or refuse
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


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


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
        Class label of a single-label dataset (the parent folder for ``folder``);
        ``None`` for multi-label clips, whose classes are in ``labels``.
    group : str
        Clips of one group never go to different splits.
    labels : tuple of str
        Every class present in a multi-label clip (SONYC-UST), in the
        dataset's class order; empty
        for single-label datasets. Added after ``label`` with a default, so
        ``Clip(path, name, label, group)`` keeps working.
    subset : str or None
        The dataset's own partition the clip belongs to (``"fold3"``,
        ``"validate"``), or ``None`` when the dataset has none.
    """

    path: Path
    name: str
    label: str | None
    group: str
    labels: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    subset: str | None = None


@attrs.frozen
class Split:
    """Train, validation and test clips, and how they were drawn.

    ``scheme`` says how: ``"grouped random"`` (:func:`grouped_split`, where
    ``seed`` and ``fractions`` reproduce it) or the official subsets that make
    each part (:func:`subset_split`, where ``fractions`` are the shares found).
    """

    train: tuple[Clip, ...]
    valid: tuple[Clip, ...]
    test: tuple[Clip, ...]
    seed: int
    fractions: tuple[float, float, float]
    scheme: str = "grouped random"

    def to_dict(self) -> dict[str, Any]:
        """The split as clip names (for checkpoints)."""
        return {
            "seed": self.seed,
            "fractions": list(self.fractions),
            "scheme": self.scheme,
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


def subsample_groups(clips: Sequence[Clip], fraction: float, *, seed: int = 0) -> tuple[Clip, ...]:
    """The clips of a seeded subset of whole groups, about ``fraction`` of the clip count.

    For learning curves: a smaller training set that keeps every recording
    whole, so no group is split between what is kept and what is not. Groups
    are drawn in a seeded order and kept while the count stays at or below
    ``fraction`` of the clips (at least one group). Deterministic for a given
    seed and clip list (whatever its order); the subsets of one seed are nested
    (a smaller fraction keeps a prefix of a larger one's groups).

    Raises
    ------
    SpecError
        If ``fraction`` is not in (0, 1].
    """
    if not 0 < fraction <= 1:
        raise SpecError(f"fraction must be in (0, 1], got {fraction!r}; e.g. 0.25 for a quarter.")
    by_group: dict[str, list[Clip]] = {}
    for clip in sorted(clips, key=lambda c: c.name):
        by_group.setdefault(clip.group, []).append(clip)
    order = list(np.random.default_rng(seed).permutation(sorted(by_group)))
    kept: list[Clip] = []
    for n, group in enumerate(order):
        if n and len(kept) + len(by_group[group]) > fraction * len(clips):
            break
        kept.extend(by_group[group])
    return tuple(sorted(kept, key=lambda c: c.name))


def subset_split(clips: Sequence[Clip], *, train: Sequence[str], valid: Sequence[str] = (),
                 test: Sequence[str] = (), seed: int = 0) -> Split:
    """The split made of the dataset's own subsets (``Clip.subset``).

    Parameters
    ----------
    clips : sequence of Clip
        Clips with their ``subset`` set.
    train, valid, test : sequence of str
        Subset names forming each part; clips of subsets named nowhere are left out.
    seed : int
        Recorded only: an official split draws nothing at random.

    Raises
    ------
    InputError
        If a named subset holds no clip, or the train part is empty.
    SpecError
        If a subset is named in two parts.
    """
    parts = {"train": tuple(train), "valid": tuple(valid), "test": tuple(test)}
    named = [s for names in parts.values() for s in names]
    if len(set(named)) != len(named):
        raise SpecError(f"a subset is named in two parts of the split: {parts}; name each once.")
    known = sorted({c.subset for c in clips if c.subset is not None})
    unknown = [s for s in named if s not in known]
    if unknown:
        raise InputError(
            f"unknown split name(s) {', '.join(map(repr, unknown))}; this dataset's subsets "
            f"are {', '.join(known) or 'none'}."
        )
    if not parts["train"]:
        raise InputError("the train part names no subset; give train=(...) at least one.")
    ordered = sorted(clips, key=lambda c: c.name)
    chosen = [tuple(c for c in ordered if c.subset in names) for names in parts.values()]
    total = sum(len(p) for p in chosen)
    shares = tuple(len(p) / total for p in chosen)
    scheme = "subsets " + "; ".join(f"{k}={','.join(v)}" for k, v in parts.items())
    return Split(chosen[0], chosen[1], chosen[2], seed, (shares[0], shares[1], shares[2]), scheme)


#: An official split as the subsets forming train, valid and test.
Subsets = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]


@attrs.frozen
class AudioDataset:
    """The clips of one dataset under ``root``.

    ``subsets``, when set, is the dataset's official split (the subsets that
    form train, valid and test); :meth:`split` uses it unless given fractions.
    ``folds``, when set, are its official cross-validation splits, each given
    the same way (UrbanSound8K's ten folds); :meth:`cross_validation` makes them.
    """

    name: str
    root: Path
    clips: tuple[Clip, ...]
    subsets: Subsets | None = None
    folds: tuple[Subsets, ...] | None = None

    @property
    def classes(self) -> tuple[str, ...]:
        """Sorted distinct labels, single and multi (clips without one are left out)."""
        single = {c.label for c in self.clips if c.label is not None}
        return tuple(sorted(single.union(*(c.labels for c in self.clips))))

    def split(self, fractions: Sequence[float] | None = None, *, seed: int = 0) -> Split:
        """The official split, or a grouped random one.

        Parameters
        ----------
        fractions : (train, valid, test) or None
            ``None``: the official split when the dataset has one, else
            :data:`DEFAULT_FRACTIONS`. Fractions: a grouped random split
            (see :func:`grouped_split`).
        seed : int
            Seed of the random split.
        """
        if fractions is None and self.subsets is not None:
            train, valid, test = self.subsets
            return subset_split(self.clips, train=train, valid=valid, test=test, seed=seed)
        return grouped_split(self.clips, DEFAULT_FRACTIONS if fractions is None else fractions,
                             seed=seed)

    def cross_validation(self) -> tuple[Split, ...]:
        """The official cross-validation splits, one per entry of :attr:`folds`.

        Raises
        ------
        InputError
            If the dataset has no official folds.
        """
        if not self.folds:
            raise InputError(
                f"dataset {self.name!r} has no official cross-validation folds; use a grouped "
                "k-fold split instead (specxform.evaluation.folds.grouped_folds)."
            )
        return tuple(subset_split(self.clips, train=train, valid=valid, test=test)
                     for train, valid, test in self.folds)


def dataset_root(root: str | Path, dataset: str) -> Path:
    """``root`` resolved, or an :class:`InputError` saying it does not exist."""
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        raise InputError(f"{path}: no such {dataset} folder; check `data`.")
    return path


def read_table(path: Path, *, columns: Sequence[str], dataset: str,
               delimiter: str = ",") -> list[dict[str, str]]:
    """The rows of a metadata CSV, after checking it has ``columns``.

    Parameters
    ----------
    path : Path
        Metadata file.
    columns : sequence of str
        Columns the file must have (it may have more).
    dataset : str
        Dataset name, for messages.
    delimiter : str
        Field separator.

    Raises
    ------
    InputError
        If the file is missing, lacks a column, or has no row.
    """
    if not path.is_file():
        raise InputError(
            f"{path}: {dataset} metadata file not found; point `data` at the folder the "
            f"{dataset} archive extracts to (it holds {path.parent.name}/{path.name})."
        )
    with path.open(newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream, delimiter=delimiter)
        rows = list(reader)
        header = reader.fieldnames or []
    missing = [c for c in columns if c not in header]
    if missing:
        raise InputError(
            f"{path}: not the {dataset} metadata: column(s) {', '.join(missing)} missing "
            f"(found {', '.join(header) or 'no header'}; separator {delimiter!r}); use the "
            "file from the official download, unedited."
        )
    if not rows:
        raise InputError(f"{path}: {dataset} metadata lists no file; re-extract the download.")
    return rows


def check_files(clips: Sequence[Clip], *, metadata: Path, dataset: str) -> None:
    """Raise an :class:`InputError` naming the listed audio files that are absent."""
    missing = [c.path for c in clips if not c.path.is_file()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise InputError(
            f"{len(missing)} audio file(s) listed in {metadata} are missing: {shown}{more}; "
            f"extract every {dataset} audio archive into the dataset folder."
        )


# -- example trees (for adapters' ``example=`` and tests) ---------------------------


def write_example_audio(path: Path, *, seconds: float = 0.05, sample_rate: int = 8_000,
                        seed: int = 0) -> None:
    """Write a short mono WAV of quiet noise at ``path`` (parents created).

    For the tiny trees that adapters register as ``example`` (see
    :func:`specxform.testing.check_dataset`): real files, a few hundred bytes.
    """
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    noise = 0.01 * np.random.default_rng(seed).standard_normal(round(seconds * sample_rate))
    soundfile.write(path, noise.astype(np.float32), sample_rate)


def write_table(path: Path, columns: Sequence[str], rows: Iterable[dict[str, str]], *,
                delimiter: str = ",") -> None:
    """Write a metadata CSV with a header (the layout :func:`read_table` reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(columns), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
