"""The ``esc50`` adapter: ESC-50 and its ESC-10 subset, by their official folds.

Layout (K. J. Piczak, "ESC: Dataset for Environmental Sound Classification",
ACM MM 2015; the dataset's README): the archive extracts to a folder holding
``meta/esc50.csv`` (columns ``filename, fold, target, category, esc10,
src_file, take``) and ``audio/``, where ``audio/{fold}-{src_file}-{take}-{target}.wav``
is a 5 s clip. ``esc10`` (``True``/``False``) marks the 400 clips of the
ESC-10 subset; copies of that subset alone may ship ``meta/esc10.csv`` in
the same columns instead. Clips cut from one Freesound recording
(``src_file``, one per ``take``) are in one fold; the author asks for
results by 5-fold cross-validation on those folds.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from specxform.datasets.base import (
    DEFAULT_FRACTIONS,
    AudioDataset,
    Clip,
    Subsets,
    check_files,
    dataset_root,
    read_table,
    write_example_audio,
    write_table,
)
from specxform.errors import InputError, InputWarning

__all__ = ["FOLDS", "META_COLUMNS", "META_FILES", "esc50", "write_example"]

META_COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
#: Metadata files looked for under ``meta/``, in this order.
META_FILES = ("esc50.csv", "esc10.csv")
FOLDS = (1, 2, 3, 4, 5)
#: ``valid_fold`` value meaning "the fold before the test fold among those present".
PREVIOUS = "previous"


def esc50(root: str | Path, *, esc10: bool = False, test_fold: int | None = None,
          valid_fold: int | str | None = PREVIOUS) -> AudioDataset:
    """ESC-50 (or ESC-10), labelled by ``category``, grouped by ``src_file``, split by folds.

    Only the folds present in the metadata are used (a partial copy, such as
    ESC-10 without fold 5, has fewer): they are the official cross-validation
    folds (:attr:`AudioDataset.folds`; fold ``k`` tests, the present fold
    before it validates, the others train), and the default split tests on
    the last fold present and validates on the one before. With two folds
    there is no validation fold; with one, neither folds nor an official split
    can be made, and the dataset falls back to a random split grouped by
    ``src_file`` (an :class:`~specxform.errors.InputWarning` says so).

    Parameters
    ----------
    root : path
        Folder holding ``meta/`` and ``audio/``.
    esc10 : bool
        Keep only the ESC-10 clips (``esc10`` column ``True``). Implied when
        only ``meta/esc10.csv`` is there.
    test_fold : int, optional
        Fold of the default split's test part; default the last fold present.
    valid_fold : int, "previous" or None
        Fold of its validation part: ``"previous"`` (the present fold before
        the test fold, cyclically; none when only two folds are present), a
        fold number, or ``None`` for no validation part.

    Returns
    -------
    AudioDataset
        Named ``"esc10"`` for the ESC-10 subset, else ``"esc50"``.

    Raises
    ------
    InputError
        If the metadata or a listed audio file is missing, a column is
        absent, a fold is not 1 to 5, a ``src_file`` spans two folds, or a
        requested fold is not present.
    """
    root = dataset_root(root, "esc50")
    meta = _meta_file(root)
    subset_only = esc10 or meta.name == "esc10.csv"
    rows = read_table(meta, columns=META_COLUMNS, dataset="esc50")
    if subset_only:
        rows = [row for row in rows if row["esc10"].strip().lower() == "true"]
        if not rows:
            raise InputError(f"{meta}: no row has esc10 = True; pass esc10=False for ESC-50.")
    name = "esc10" if subset_only else "esc50"
    clips = tuple(sorted((_clip(root, row, meta) for row in rows), key=lambda c: c.name))
    check_files(clips, metadata=meta, dataset=name)
    found = _check_groups(clips, meta)
    if len(found) < 2:
        _warn_one_fold(meta, found)
        return AudioDataset(name, root, clips)
    subsets = _split(found, test_fold, valid_fold, meta)
    return AudioDataset(name, root, clips, subsets, folds=_cross_validation(found))


def _meta_file(root: Path) -> Path:
    """``meta/esc50.csv``, else ``meta/esc10.csv``, else an InputError naming both."""
    for name in META_FILES:
        if (root / "meta" / name).is_file():
            return root / "meta" / name
    raise InputError(
        f"{root}: neither meta/esc50.csv nor meta/esc10.csv found; point --data at the folder "
        "the ESC-50 archive extracts to (it holds meta/ and audio/)."
    )


def _clip(root: Path, row: dict[str, str], meta: Path) -> Clip:
    fold = row["fold"].strip()
    if not fold.isdigit() or int(fold) not in FOLDS:
        raise InputError(
            f"{meta}: {row['filename']} has fold {fold!r}, not 1 to 5; use the file from the "
            "official download, unedited."
        )
    name = f"audio/{row['filename']}"
    return Clip(path=root / name, name=name, label=row["category"], group=row["src_file"],
                subset=f"fold{int(fold)}")


def _fold(clip: Clip) -> int:
    return int(str(clip.subset).removeprefix("fold"))


def _check_groups(clips: tuple[Clip, ...], meta: Path) -> list[int]:
    """The folds present, sorted, after checking that no ``src_file`` spans two folds."""
    folds: dict[str, set[int]] = {}
    for clip in clips:
        folds.setdefault(clip.group, set()).add(_fold(clip))
    for group, present in sorted(folds.items()):
        if len(present) > 1:
            raise InputError(
                f"{meta}: src_file {group} is in folds {', '.join(map(str, sorted(present)))}; "
                "the takes of one recording must share a fold (official metadata, unedited)."
            )
    return sorted({_fold(c) for c in clips})


def _warn_one_fold(meta: Path, found: list[int]) -> None:
    shares = "/".join(f"{100 * f:g}" for f in DEFAULT_FRACTIONS)
    warnings.warn(
        f"{meta} lists fold {found[0]} only, so neither the official split nor cross-validation "
        f"by folds can be made (both need at least 2 folds); using a random {shares} % split "
        "grouped by src_file (the takes of one recording stay together) instead. Add folds, "
        "or use a grouped K-fold scheme (specxform downstream --scheme grouped).",
        InputWarning, stacklevel=3,
    )


def _previous(found: list[int], fold: int) -> int:
    """The present fold before ``fold``, cyclically (the last one before the first)."""
    return found[found.index(fold) - 1]


def _split(found: list[int], test_fold: int | None, valid_fold: int | str | None,
           meta: Path) -> Subsets:
    """The default split's subsets: train, valid, test."""
    listed = ", ".join(map(str, found))
    test = found[-1] if test_fold is None else test_fold
    if test not in found:
        raise InputError(f"test_fold={test_fold!r}: {meta} lists fold(s) {listed} only; "
                         "choose one of those.")
    if valid_fold == PREVIOUS:
        valid: int | None = _previous(found, test) if len(found) > 2 else None
    elif valid_fold is None or (isinstance(valid_fold, int) and valid_fold in found
                                and valid_fold != test):
        valid = valid_fold
    else:
        raise InputError(
            f"valid_fold={valid_fold!r}: choose a fold among {listed} other than the test fold "
            f"{test}, 'previous' or None."
        )
    train = tuple(f"fold{k}" for k in found if k not in (test, valid))
    if not train:
        raise InputError(
            f"{meta} lists fold(s) {listed} only: with fold {test} testing and fold {valid} "
            "validating no fold is left to train on; pass valid_fold=None, or add folds."
        )
    return train, () if valid is None else (f"fold{valid}",), (f"fold{test}",)


def _cross_validation(found: list[int]) -> tuple[Subsets, ...]:
    """Each present fold tests once; the present fold before it validates (from 3 folds)."""
    folds = []
    for k in found:
        valid = _previous(found, k) if len(found) > 2 else None
        train = tuple(f"fold{f}" for f in found if f not in (k, valid))
        folds.append((train, () if valid is None else (f"fold{valid}",), (f"fold{k}",)))
    return tuple(folds)


def write_example(root: Path, *, folds: tuple[int, ...] = FOLDS, meta: str = "esc50.csv"
                  ) -> None:
    """A tiny tree in the ESC-50 layout.

    Per fold: two takes (A, B) of one ``dog`` recording and one take of a
    ``rooster`` recording (both ESC-10 classes); fold 1 also holds a ``cat``
    clip outside ESC-10.

    Parameters
    ----------
    root : Path
        Empty folder.
    folds : tuple of int
        The folds written (all five by default; fewer to mimic a partial copy).
    meta : {"esc50.csv", "esc10.csv"}
        Name of the metadata file under ``meta/``.
    """
    rows = []
    for fold in folds:
        clips = [("dog", 0, "A"), ("dog", 0, "B"), ("rooster", 1, "A")]
        clips += [("cat", 5, "A")] if fold == 1 else []
        for category, target, take in clips:
            src = str(1000 * fold + 10 * target)
            name = f"{fold}-{src}-{take}-{target}.wav"
            rows.append({"filename": name, "fold": str(fold), "target": str(target),
                         "category": category, "esc10": str(category != "cat"),
                         "src_file": src, "take": take})
            write_example_audio(root / "audio" / name, seed=fold * 100 + target)
    write_table(root / "meta" / meta, META_COLUMNS, rows)
