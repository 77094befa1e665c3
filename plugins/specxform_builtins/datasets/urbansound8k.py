"""The ``urbansound8k`` adapter: UrbanSound8K with its ten official folds.

Layout (the dataset's README; Salamon, Jacoby, Bello, ACM MM 2014): the
archive extracts to a folder holding ``metadata/UrbanSound8K.csv`` (columns
``slice_file_name, fsID, start, end, salience, fold, classID, class``) and
``audio/fold1`` .. ``audio/fold10``. The folds already keep the slices of one
Freesound recording (``fsID``) together; the authors ask for results by
10-fold cross-validation on them, never by a reshuffled split.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from specxform.datasets.base import (
    DEFAULT_FRACTIONS,
    AudioDataset,
    Clip,
    Split,
    Subsets,
    check_files,
    dataset_root,
    read_table,
    write_example_audio,
    write_table,
)
from specxform.errors import InputError, InputWarning

__all__ = ["FOLDS", "METADATA_COLUMNS", "cross_validation", "urbansound8k", "write_example"]

METADATA_COLUMNS = ("slice_file_name", "fsID", "start", "end", "salience", "fold", "classID",
                    "class")
FOLDS = tuple(range(1, 11))


def urbansound8k(root: str | Path, *, test_fold: int = 10,
                 valid_fold: int | None = 9) -> AudioDataset:
    """UrbanSound8K, labelled by class, grouped by ``fsID``, split by folds.

    The official split (``test_fold`` tests, ``valid_fold`` validates, the other
    folds train) needs those folds on disk. A partial copy (say fold 1 only)
    where the test or validation fold, or every training fold, is absent falls
    back to :meth:`AudioDataset.split`'s random split grouped by ``fsID``, with
    an :class:`~specxform.errors.InputWarning` naming the folds found. The ten
    official cross-validation splits (``folds``) are set only when all ten
    folds are there.

    Parameters
    ----------
    root : path
        Folder holding ``metadata/`` and ``audio/``.
    test_fold : int
        Fold (1 to 10) held out for testing.
    valid_fold : int or None
        Fold used for validation; ``None`` leaves the validation part empty.
        The remaining folds train.

    Raises
    ------
    InputError
        If the metadata or a listed audio file is missing, a column is absent,
        a fold is not 1 to 10, or ``valid_fold`` equals ``test_fold``.
    """
    held = _check_folds(test_fold, valid_fold)
    root = dataset_root(root, "urbansound8k")
    metadata = root / "metadata" / "UrbanSound8K.csv"
    rows = read_table(metadata, columns=METADATA_COLUMNS, dataset="urbansound8k")
    clips = tuple(sorted((_clip(root, row, metadata) for row in rows), key=lambda c: c.name))
    check_files(clips, metadata=metadata, dataset="urbansound8k")
    found = sorted({int(c.subset.removeprefix("fold")) for c in clips if c.subset})
    train = tuple(f"fold{k}" for k in FOLDS if k not in held and k in found)
    if not held <= set(found) or not train:
        _warn_grouped(metadata, found, test_fold, valid_fold)
        return AudioDataset("urbansound8k", root, clips)
    valid = () if valid_fold is None else (f"fold{valid_fold}",)
    folds = _official_folds() if found == list(FOLDS) else None
    return AudioDataset("urbansound8k", root, clips, (train, valid, (f"fold{test_fold}",)),
                        folds=folds)


def _warn_grouped(metadata: Path, found: list[int], test_fold: int,
                  valid_fold: int | None) -> None:
    """Say that the official split cannot be made and a grouped random one is used."""
    wanted = f"test fold {test_fold}" + ("" if valid_fold is None
                                        else f", valid fold {valid_fold}")
    shares = "/".join(f"{100 * f:g}" for f in DEFAULT_FRACTIONS)
    warnings.warn(
        f"{metadata} lists fold(s) {', '.join(map(str, found))} only, so the official split "
        f"({wanted}, the other folds training) cannot be made; using a random {shares} % split "
        "grouped by fsID (the slices of one recording stay together) instead. Pass "
        "test_fold/valid_fold among the folds found, or add the missing folds, for the "
        "official split.",
        InputWarning, stacklevel=3,
    )


def _official_folds() -> tuple[Subsets, ...]:
    """Fold k tests, fold k - 1 (fold 10 for k = 1) validates, the other eight train."""
    folds = []
    for k in FOLDS:
        valid = FOLDS[k - 2]  # the previous fold, cyclically: fold 9 validates when 10 tests
        train = tuple(f"fold{f}" for f in FOLDS if f not in (k, valid))
        folds.append((train, (f"fold{valid}",), (f"fold{k}",)))
    return tuple(folds)


def cross_validation(dataset: AudioDataset) -> tuple[Split, ...]:
    """The ten official splits: fold k tests, fold k - 1 (fold 10 for k = 1) validates.

    Parameters
    ----------
    dataset : AudioDataset
        An ``urbansound8k`` dataset (its clips' subsets are ``fold1`` .. ``fold10``).

    Returns
    -------
    tuple of Split
        Ten splits, the k-th testing on fold k; every clip is tested exactly once
        (:meth:`AudioDataset.cross_validation` on its official folds).
    """
    return dataset.cross_validation()


def _check_folds(test_fold: int, valid_fold: int | None) -> set[int]:
    held = {test_fold} if valid_fold is None else {test_fold, valid_fold}
    if not held <= set(FOLDS) or len(held) != (1 if valid_fold is None else 2):
        raise InputError(
            f"test_fold={test_fold!r}, valid_fold={valid_fold!r}: folds must be two different "
            "numbers from 1 to 10 (valid_fold may be None), e.g. test_fold=10, valid_fold=9."
        )
    return held


def _clip(root: Path, row: dict[str, str], metadata: Path) -> Clip:
    fold = row["fold"].strip()
    if not fold.isdigit() or int(fold) not in FOLDS:
        raise InputError(
            f"{metadata}: {row['slice_file_name']} has fold {fold!r}, not 1 to 10; use the "
            "file from the official download, unedited."
        )
    name = f"audio/fold{int(fold)}/{row['slice_file_name']}"
    return Clip(path=root / name, name=name, label=row["class"], group=row["fsID"],
                subset=f"fold{int(fold)}")


def write_example(root: Path, *, folds: tuple[int, ...] = FOLDS) -> None:
    """A tiny tree in the official layout: per fold, two slices of one recording.

    Parameters
    ----------
    root : Path
        Empty folder.
    folds : tuple of int
        The folds written (all ten by default; fewer to mimic a partial copy).
    """
    rows = []
    for fold in folds:
        fsid = str(1000 + fold)
        label, class_id = ("dog_bark", "3") if fold % 2 else ("siren", "8")
        for occurrence in range(2):
            name = f"{fsid}-{class_id}-{occurrence}-0.wav"
            rows.append({"slice_file_name": name, "fsID": fsid, "start": "0", "end": "0.05",
                         "salience": "1", "fold": str(fold), "classID": class_id,
                         "class": label})
            write_example_audio(root / "audio" / f"fold{fold}" / name, seed=fold)
    write_table(root / "metadata" / "UrbanSound8K.csv", METADATA_COLUMNS, rows)
