"""Generated datasets in the official layouts (UrbanSound8K, also fold 1 alone; SONYC-UST;
ESC-50; a folder), with audible class-dependent audio, and the
training tests' tiny teachers (re-exported), shared by tests/evaluation/test_downstream.py and
tests/cli/test_cli_downstream.py."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
from specxform_builtins.datasets.esc50 import META_COLUMNS as ESC50_COLUMNS
from specxform_builtins.datasets.sonyc import COLUMNS as SONYC_COLUMNS
from specxform_builtins.datasets.sonyc import PRESENCE
from specxform_builtins.datasets.urbansound8k import METADATA_COLUMNS
from training.training_helpers import TinyAuxTeacher, TinyPlugin, TinyTeacher

__all__ = ["RATE", "TinyAuxTeacher", "TinyPlugin", "TinyTeacher", "make_esc50", "make_folder",
           "make_sonyc", "make_urbansound8k", "make_urbansound8k_fold1", "sound"]

RATE = 32000
#: Tone frequency (Hz) of each generated class: classes differ clearly in their Mels.
TONES = {"dog_bark": 300.0, "siren": 2500.0, "engine": 150.0, "alert-signal": 1800.0,
         "music": 700.0}


def sound(labels: Sequence[str], seed: int, seconds: float = 1.0) -> np.ndarray:
    """``seconds`` of a tone per label plus a little noise, at :data:`RATE`, peak 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    audio = 0.05 * rng.standard_normal(len(t))
    for label in labels:
        f = TONES[label] * (1 + 0.05 * rng.standard_normal())
        audio += np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    return (0.5 * audio / np.max(np.abs(audio))).astype(np.float32)


def _table(path: Path, columns: Sequence[str], rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _wav(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, RATE)


def make_urbansound8k(root: Path) -> Path:
    """10 folds x 2 recordings (one dog_bark, one siren; fsID unique) x 1 slice of 1 s."""
    rows = []
    for fold in range(1, 11):
        for label, class_id in (("dog_bark", "3"), ("siren", "8")):
            fsid = str(100 * fold + int(class_id))
            name = f"{fsid}-{class_id}-0-0.wav"
            rows.append({"slice_file_name": name, "fsID": fsid, "start": "0", "end": "1",
                         "salience": "1", "fold": str(fold), "classID": class_id,
                         "class": label})
            _wav(root / "audio" / f"fold{fold}" / name, sound([label], int(fsid)))
    _table(root / "metadata" / "UrbanSound8K.csv", METADATA_COLUMNS, rows)
    return root


def make_urbansound8k_fold1(root: Path, recordings: int = 5, slices: int = 2) -> Path:
    """Fold 1 alone (as in ../shared/data/urbansound8k): ``recordings`` fsIDs per class
    (dog_bark, siren) of ``slices`` 1 s slices each."""
    rows = []
    for label, class_id in (("dog_bark", "3"), ("siren", "8")):
        for r in range(recordings):
            fsid = str(1000 * (r + 1) + int(class_id))
            for piece in range(slices):
                name = f"{fsid}-{class_id}-0-{piece}.wav"
                rows.append({"slice_file_name": name, "fsID": fsid, "start": str(piece),
                             "end": str(piece + 1), "salience": "1", "fold": "1",
                             "classID": class_id, "class": label})
                _wav(root / "audio" / "fold1" / name, sound([label], int(fsid) + piece))
    _table(root / "metadata" / "UrbanSound8K.csv", METADATA_COLUMNS, rows)
    return root


def make_esc50(root: Path, folds: Sequence[int] = (1, 2, 3, 4), meta: str = "esc10.csv") -> Path:
    """ESC-50 layout, per fold two takes of a dog_bark recording and one of a siren one."""
    rows = []
    for fold in folds:
        for category, target, take in (("dog_bark", 0, "A"), ("dog_bark", 0, "B"),
                                       ("siren", 1, "A")):
            src = str(100 * fold + target)
            name = f"{fold}-{src}-{take}-{target}.wav"
            rows.append({"filename": name, "fold": str(fold), "target": str(target),
                         "category": category, "esc10": "True", "src_file": src, "take": take})
            _wav(root / "audio" / name, sound([category], 10 * int(src) + ord(take)))
    _table(root / "meta" / meta, ESC50_COLUMNS, rows)
    return root


#: SONYC clips: (split, file, sensor, coarse classes present).
SONYC_CLIPS = [
    *((("train", f"t{i}.wav", str(i % 4), labels) for i, labels in enumerate(
        [("engine",), ("alert-signal",), ("music",), ("engine", "music")] * 3))),
    ("validate", "v0.wav", "5", ("engine",)), ("validate", "v1.wav", "5", ("music",)),
    *((("test", f"s{i}.wav", "6", labels) for i, labels in enumerate(
        [("engine",), ("alert-signal",), ("music",), ("alert-signal", "music")]))),
]


def make_sonyc(root: Path) -> Path:
    """annotations.csv (one verified row per file) and audio/ for :data:`SONYC_CLIPS`."""
    rows = []
    for i, (split, name, sensor, labels) in enumerate(SONYC_CLIPS):
        row = dict.fromkeys(SONYC_COLUMNS, "0")
        row |= {"split": split, "sensor_id": sensor, "audio_filename": name, "annotator_id": "0"}
        for column in PRESENCE:
            coarse = column.split("_", 1)[1].removesuffix("_presence")
            row[column] = "1" if coarse in labels else "0"
        rows.append(row)
        _wav(root / "audio" / name, sound(labels, 1000 + i))
    _table(root / "annotations.csv", SONYC_COLUMNS, rows)
    return root


def make_folder(root: Path, recordings: int = 4, slices: int = 2) -> Path:
    """``<class>/<fsID>-<classID>-0-<slice>.wav``: ``recordings`` fsIDs per class."""
    for class_id, label in enumerate(("dog_bark", "siren")):
        for r in range(recordings):
            fsid = 10 * r + class_id + 1
            for s in range(slices):
                _wav(root / label / f"{fsid}-{class_id}-0-{s}.wav", sound([label], 7 * fsid + s))
    return root
