"""The ``sonyc`` adapter: SONYC Urban Sound Tagging v2.3, multi-label, coarse classes.

Layout (the dataset's README on Zenodo, 10.5281/zenodo.3966543): the archives
extract to ``annotations.csv`` and ``audio/``. ``annotations.csv`` has one row
per (file, annotator): ``split`` (``train``, ``validate``, ``test``),
``sensor_id``, ``audio_filename``, ``annotator_id`` (volunteers positive, the
SONYC team negative, ``0`` the team's verified consensus), then per-class
presence columns, among them the eight coarse ones ``1_engine_presence`` ..
``8_dog_presence`` holding 1 (present) or 0 (absent).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from specxform.datasets.base import (
    AudioDataset,
    Clip,
    check_files,
    dataset_root,
    read_table,
    write_example_audio,
    write_table,
)
from specxform.errors import InputError, SpecError

__all__ = ["CLASSES", "SPLITS", "sonyc", "write_example"]

#: Coarse classes in the taxonomy's order (column ``<n>_<class>_presence``).
CLASSES = ("engine", "machinery-impact", "non-machinery-impact", "powered-saw", "alert-signal",
           "music", "human-voice", "dog")
PRESENCE = tuple(f"{n}_{name}_presence" for n, name in enumerate(CLASSES, start=1))
SPLITS = ("train", "validate", "test")
COLUMNS = ("split", "sensor_id", "audio_filename", "annotator_id", *PRESENCE)
VERIFIED = "0"  # annotator_id of the SONYC team's verified consensus

#: How annotators' votes (0/1 per class) make a label.
AGGREGATES: dict[str, Callable[[int, int], bool]] = {
    "majority": lambda votes, annotators: 2 * votes > annotators,  # a tie counts as absent
    "any": lambda votes, annotators: votes > 0,
}


def sonyc(root: str | Path, *, aggregate: str = "majority",
          prefer_verified: bool = True) -> AudioDataset:
    """SONYC-UST clips with their coarse labels, split by the ``split`` column.

    Parameters
    ----------
    root : path
        Folder holding ``annotations.csv`` and ``audio/``.
    aggregate : {"majority", "any"}
        A class is present when more than half of a file's annotators mark it
        (``"majority"``; a tie is absent) or when at least one does (``"any"``).
    prefer_verified : bool
        Where a file has the verified consensus (``annotator_id`` 0, validate
        and test files), use it alone; the volunteers' votes then only label
        the training files.

    Returns
    -------
    AudioDataset
        Clips with ``label=None``, ``labels`` the present coarse classes in
        :data:`CLASSES` order, ``group`` the sensor, ``subset`` the split; the
        official split is train / validate / test.

    Raises
    ------
    InputError
        If ``annotations.csv`` or a listed audio file is missing, a column is
        absent, a split name is unknown or a presence value is not a number.
    """
    if aggregate not in AGGREGATES:
        raise SpecError(f"unknown aggregate {aggregate!r}; choose one of "
                        f"{', '.join(AGGREGATES)}.")
    root = dataset_root(root, "sonyc")
    annotations = root / "annotations.csv"
    rows = read_table(annotations, columns=COLUMNS, dataset="sonyc")
    by_file: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_file.setdefault(row["audio_filename"], []).append(row)
    clips = tuple(_clip(root, annotations, name, votes, AGGREGATES[aggregate], prefer_verified)
                  for name, votes in sorted(by_file.items()))
    check_files(clips, metadata=annotations, dataset="sonyc")
    return AudioDataset("sonyc", root, clips, (("train",), ("validate",), ("test",)))


def _clip(root: Path, annotations: Path, filename: str, rows: list[dict[str, str]],
          rule: Callable[[int, int], bool], prefer_verified: bool) -> Clip:
    splits = {row["split"] for row in rows}
    if len(splits) != 1 or not splits <= set(SPLITS):
        raise InputError(
            f"{annotations}: {filename} has split {', '.join(sorted(splits))}; expected one of "
            f"{', '.join(SPLITS)}; use the file from the official download, unedited."
        )
    verified = [row for row in rows if row["annotator_id"].strip() == VERIFIED]
    voters = verified if prefer_verified and verified else rows
    labels = tuple(name for name, column in zip(CLASSES, PRESENCE, strict=True)
                   if rule(sum(_present(row, column, annotations) for row in voters), len(voters)))
    return Clip(path=root / "audio" / filename, name=f"audio/{filename}", label=None,
                group=f"sensor {rows[0]['sensor_id']}", labels=labels, subset=splits.pop())


def _present(row: dict[str, str], column: str, annotations: Path) -> bool:
    try:
        return float(row[column]) == 1.0
    except ValueError:
        raise InputError(
            f"{annotations}: {row['audio_filename']}, {column} = {row[column]!r} is not a number "
            "(1 present, 0 absent); use the file from the official download, unedited."
        ) from None


def write_example(root: Path) -> None:
    """A tiny tree: two volunteer-annotated training files per sensor 1 and 2, and a
    validate and a test file with the verified consensus (annotator 0), sensors 3 and 4."""
    files = [("train", f"t{i}.wav", str(1 + i % 2), "engine" if i % 2 else "dog")
             for i in range(4)]
    files += [("validate", "v.wav", "3", "music"), ("test", "x.wav", "4", "engine")]
    rows = []
    for split, filename, sensor, present in files:
        annotators = ("11", "12") if split == "train" else ("0",)
        for annotator in annotators:
            row = dict.fromkeys(COLUMNS, "0") | {"split": split, "sensor_id": sensor,
                                                 "audio_filename": filename,
                                                 "annotator_id": annotator}
            row[PRESENCE[CLASSES.index(present)]] = "1"
            rows.append(row)
        write_example_audio(root / "audio" / filename)
    write_table(root / "annotations.csv", COLUMNS, rows)
