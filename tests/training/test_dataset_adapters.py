"""The tau2020, urbansound8k and sonyc adapters on tiny fake trees in the official layouts."""

from __future__ import annotations

import csv
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from specxform_builtins.datasets import cross_validation, sonyc, tau2020, urbansound8k
from specxform_builtins.datasets.sonyc import CLASSES, PRESENCE
from specxform_builtins.datasets.sonyc import COLUMNS as SONYC_COLUMNS
from specxform_builtins.datasets.tau2020 import META_COLUMNS
from specxform_builtins.datasets.urbansound8k import METADATA_COLUMNS

from specxform.datasets import AudioDataset, Clip, Split, grouped_split, subset_split
from specxform.errors import InputError, InputWarning, SpecError
from specxform.registry import Registry


def _wav(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(80, dtype=np.float32), 8000)


def _table(path: Path, columns: Sequence[str], rows: list[dict[str, str]],
           delimiter: str = ",") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns, delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)


def _parts(split: Split) -> tuple[tuple[Clip, ...], ...]:
    return split.train, split.valid, split.test


def _disjoint_groups(split: Split) -> bool:
    groups = [{c.group for c in part} for part in _parts(split)]
    return not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])


# -- tau2020 ------------------------------------------------------------------------------------

TAU_DEVICES = ("a", "b", "s1")


@pytest.fixture
def tau_root(tmp_path: Path) -> Path:
    """2 scenes x 2 cities x 2 locations x 3 segments, each on devices a, b and s1."""
    rows = []
    for scene in ("airport", "park"):
        for city in ("lyon", "paris"):
            for location in (0, 1):
                for segment in range(3):
                    for device in TAU_DEVICES:
                        name = f"audio/{scene}-{city}-{location}-{segment}-{device}.wav"
                        rows.append({"filename": name, "scene_label": scene,
                                     "identifier": f"{city}-{location}", "source_label": device})
                        _wav(tmp_path / name)
    _table(tmp_path / "meta.csv", META_COLUMNS, rows, delimiter="\t")
    return tmp_path


def test_tau2020_keeps_device_a_labelled_by_scene_grouped_by_location(tau_root: Path):
    dataset = tau2020(tau_root)
    assert len(dataset.clips) == 24 and dataset.classes == ("airport", "park")
    for clip in dataset.clips:
        scene, city, location, _, device = Path(clip.name).stem.split("-")
        assert device == "a" and clip.label == scene and clip.group == f"{city}-{location}"
        assert clip.path == tau_root / clip.name and clip.path.is_file()
    assert len(tau2020(tau_root, devices="all").clips) == 72
    assert {Path(c.name).stem[-1] for c in tau2020(tau_root, devices=("a", "b")).clips} == {"a",
                                                                                           "b"}


def test_tau2020_split_is_the_papers_random_split_by_location_or_by_file(tau_root: Path):
    split = tau2020(tau_root).split()
    assert split.seed == 0 and split.fractions == (0.75, 0.125, 0.125)
    assert _disjoint_groups(split) and all(_parts(split))
    assert sorted(c.name for p in _parts(split) for c in p) == sorted(
        c.name for c in tau2020(tau_root).clips)
    assert tau2020(tau_root).split() == split  # fixed seed: the same split every run
    by_file = tau2020(tau_root, group_by="file").split()
    # One group per file: 24 clips fall exactly into 18 / 3 / 3.
    assert [len(p) for p in _parts(by_file)] == [18, 3, 3]
    assert len({c.group for c in by_file.train}) == 18


def test_tau2020_refuses_bad_options_and_broken_trees(tau_root: Path, tmp_path: Path):
    with pytest.raises(InputError, match=r"'s7'.*a, b, s1"):
        tau2020(tau_root, devices=("a", "s7"))
    with pytest.raises(SpecError, match="'city'"):
        tau2020(tau_root, group_by="city")
    (tau_root / "audio" / "park-paris-1-2-a.wav").unlink()
    with pytest.raises(InputError, match=r"1 audio file.*park-paris-1-2-a\.wav"):
        tau2020(tau_root)
    tau2020(tau_root, devices="b")  # a missing device-a file does not matter for device b
    with pytest.raises(InputError, match=r"meta\.csv: tau2020 metadata file not found"):
        tau2020(tmp_path / "audio")
    rows = [{c: "x" for c in META_COLUMNS}]
    _table(tau_root / "meta.csv", META_COLUMNS, rows, delimiter=",")  # commas, not tabs
    with pytest.raises(InputError, match=r"scene_label, identifier, source_label missing"):
        tau2020(tau_root)


# -- urbansound8k -------------------------------------------------------------------------------


@pytest.fixture
def us8k_root(tmp_path: Path) -> Path:
    """Two slices of one recording per fold, classes alternating dog_bark and siren."""
    rows = []
    for fold in range(1, 11):
        fsid = str(1000 + fold)
        label, class_id = ("dog_bark", "3") if fold % 2 else ("siren", "8")
        for occurrence in range(2):
            name = f"{fsid}-{class_id}-{occurrence}-0.wav"
            rows.append({"slice_file_name": name, "fsID": fsid, "start": "0", "end": "0.01",
                         "salience": "1", "fold": str(fold), "classID": class_id,
                         "class": label})
            _wav(tmp_path / "audio" / f"fold{fold}" / name)
    _table(tmp_path / "metadata" / "UrbanSound8K.csv", METADATA_COLUMNS, rows)
    return tmp_path


def _folds(clips: Sequence[Clip]) -> set[str]:
    return {c.subset for c in clips if c.subset}


def test_urbansound8k_reads_classes_fsids_and_folds(us8k_root: Path):
    dataset = urbansound8k(us8k_root)
    assert len(dataset.clips) == 20 and dataset.classes == ("dog_bark", "siren")
    for clip in dataset.clips:
        fsid, class_id, _, _ = clip.path.stem.split("-")
        assert clip.group == fsid and clip.subset == f"fold{int(fsid) - 1000}"
        assert clip.label == ("dog_bark" if class_id == "3" else "siren")
        assert clip.name == f"audio/{clip.subset}/{clip.path.name}" and clip.path.is_file()


def test_urbansound8k_splits_by_official_folds(us8k_root: Path):
    split = urbansound8k(us8k_root).split()
    assert _folds(split.test) == {"fold10"} and _folds(split.valid) == {"fold9"}
    assert _folds(split.train) == {f"fold{k}" for k in range(1, 9)}
    assert split.fractions == (0.8, 0.1, 0.1) and "test=fold10" in split.scheme
    other = urbansound8k(us8k_root, test_fold=3, valid_fold=None).split()
    assert _folds(other.test) == {"fold3"} and not other.valid and len(other.train) == 18
    # Fractions still ask for a grouped random split.
    assert _disjoint_groups(urbansound8k(us8k_root).split((0.5, 0.25, 0.25), seed=1))


def test_urbansound8k_cross_validation_tests_every_clip_once(us8k_root: Path):
    dataset = urbansound8k(us8k_root)
    splits = cross_validation(dataset)
    assert len(splits) == 10
    tested = sorted(c.name for s in splits for c in s.test)
    assert tested == sorted(c.name for c in dataset.clips)
    for k, split in enumerate(splits, start=1):
        assert _folds(split.test) == {f"fold{k}"}
        assert _folds(split.valid) == {f"fold{10 if k == 1 else k - 1}"}
        assert len(split.train) == 16 and _disjoint_groups(split)
    assert splits[9] == dataset.split()


def _us8k_tree(root: Path, folds: Sequence[int], recordings: int = 2) -> Path:
    """``recordings`` recordings (two slices each) in every fold of ``folds``."""
    rows = []
    for fold in folds:
        for r in range(recordings):
            fsid, label, class_id = str(100 * fold + r), *(("dog_bark", "3") if r % 2
                                                         else ("siren", "8"))
            for occurrence in range(2):
                name = f"{fsid}-{class_id}-{occurrence}-0.wav"
                rows.append({"slice_file_name": name, "fsID": fsid, "start": "0",
                             "end": "0.01", "salience": "1", "fold": str(fold),
                             "classID": class_id, "class": label})
                _wav(root / "audio" / f"fold{fold}" / name)
    _table(root / "metadata" / "UrbanSound8K.csv", METADATA_COLUMNS, rows)
    return root


def test_urbansound8k_with_only_fold_1_falls_back_to_a_split_grouped_by_fsid(tmp_path: Path):
    """The shared copy holds fold 1 only: the default test fold 10 and valid fold 9 are
    absent, so the split is the grouped random one, with a warning naming the folds."""
    root = _us8k_tree(tmp_path, folds=(1,), recordings=8)
    with pytest.warns(InputWarning, match=r"lists fold\(s\) 1 only.*test fold 10, valid fold "
                                          r"9.*grouped by fsID"):
        dataset = urbansound8k(root)
    assert dataset.subsets is None and dataset.folds is None and len(dataset.clips) == 16
    split = dataset.split()
    assert split.scheme == "grouped random" and all(_parts(split)) and _disjoint_groups(split)
    assert split == grouped_split(dataset.clips)  # the default fractions and seed
    with pytest.warns(InputWarning, match="test fold 1(?!0)"):  # fold 1 tests: none trains
        assert urbansound8k(root, test_fold=1, valid_fold=None).subsets is None


def test_urbansound8k_keeps_the_official_split_when_its_folds_are_there(tmp_path: Path):
    root = _us8k_tree(tmp_path, folds=(1, 2, 9, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset = urbansound8k(root)
    split = dataset.split()
    assert _folds(split.test) == {"fold10"} and _folds(split.valid) == {"fold9"}
    assert _folds(split.train) == {"fold1", "fold2"}
    assert dataset.folds is None  # cross-validation needs all ten folds
    with pytest.raises(InputError, match="no official cross-validation folds"):
        cross_validation(dataset)


def test_urbansound8k_refuses_bad_folds_and_broken_trees(us8k_root: Path):
    for test_fold, valid_fold in ((11, 9), (10, 10), (0, None)):
        with pytest.raises(InputError, match=f"test_fold={test_fold}"):
            urbansound8k(us8k_root, test_fold=test_fold, valid_fold=valid_fold)
    (us8k_root / "audio" / "fold4" / "1004-8-1-0.wav").unlink()
    with pytest.raises(InputError, match=r"UrbanSound8K\.csv are missing: .*1004-8-1-0\.wav"):
        urbansound8k(us8k_root)
    metadata = us8k_root / "metadata" / "UrbanSound8K.csv"
    row = dict.fromkeys(METADATA_COLUMNS, "1") | {"slice_file_name": "x.wav", "fold": "11"}
    _table(metadata, METADATA_COLUMNS, [row])
    with pytest.raises(InputError, match=r"x\.wav has fold '11'"):
        urbansound8k(us8k_root)
    _table(metadata, [c for c in METADATA_COLUMNS if c != "fsID"], [])
    with pytest.raises(InputError, match=r"column\(s\) fsID missing"):
        urbansound8k(us8k_root)
    metadata.unlink()
    with pytest.raises(InputError, match=r"UrbanSound8K\.csv: urbansound8k metadata file not"):
        urbansound8k(us8k_root)


# -- sonyc --------------------------------------------------------------------------------------


def _annotation(split: str, filename: str, annotator: str, sensor: str = "7",
                **present: str) -> dict[str, str]:
    """One annotations.csv row; ``present`` maps a coarse class (``_`` for ``-``) to its value."""
    row = dict.fromkeys(SONYC_COLUMNS, "0")
    row |= {"split": split, "sensor_id": sensor, "audio_filename": filename,
            "annotator_id": annotator}
    assert {k.replace("_", "-") for k in present} <= set(CLASSES)
    for column in PRESENCE:
        name = column.split("_", 1)[1].removesuffix("_presence").replace("-", "_")
        row[column] = present.get(name, "0")
    return row


@pytest.fixture
def sonyc_root(tmp_path: Path) -> Path:
    rows = [
        # Three volunteers: engine 2 of 3 (majority), dog 1 of 3 (any only).
        _annotation("train", "a.wav", "11", engine="1", dog="1"),
        _annotation("train", "a.wav", "12", engine="1"),
        _annotation("train", "a.wav", "13"),
        # A tie (1 of 2) is absent under the majority rule.
        _annotation("train", "d.wav", "14", sensor="7", dog="1"),
        _annotation("train", "d.wav", "15", sensor="7"),
        # Volunteers hear music; the verified consensus (annotator 0) hears a voice.
        _annotation("validate", "b.wav", "21", sensor="8", music="1"),
        _annotation("validate", "b.wav", "22", sensor="8", music="1"),
        _annotation("validate", "b.wav", "0", sensor="8", human_voice="1"),
        _annotation("test", "c.wav", "0", sensor="9", alert_signal="1", powered_saw="1"),
    ]
    _table(tmp_path / "annotations.csv", SONYC_COLUMNS, rows)
    for name in ("a.wav", "b.wav", "c.wav", "d.wav"):
        _wav(tmp_path / "audio" / name)
    return tmp_path


def test_sonyc_aggregates_annotators_into_coarse_multi_labels(sonyc_root: Path):
    clips = {c.name: c for c in sonyc(sonyc_root).clips}
    assert list(clips) == ["audio/a.wav", "audio/b.wav", "audio/c.wav", "audio/d.wav"]
    assert clips["audio/a.wav"].labels == ("engine",) and clips["audio/d.wav"].labels == ()
    assert clips["audio/b.wav"].labels == ("human-voice",)
    assert clips["audio/c.wav"].labels == ("powered-saw", "alert-signal")  # taxonomy order
    assert all(c.label is None and c.path.is_file() for c in clips.values())
    assert [c.group for c in clips.values()] == ["sensor 7", "sensor 8", "sensor 9", "sensor 7"]
    anyone = {c.name: c.labels for c in sonyc(sonyc_root, aggregate="any").clips}
    assert anyone["audio/a.wav"] == ("engine", "dog") and anyone["audio/d.wav"] == ("dog",)
    volunteers = {c.name: c.labels for c in sonyc(sonyc_root, prefer_verified=False).clips}
    assert volunteers["audio/b.wav"] == ("music",)  # 2 of 3 votes
    assert sonyc(sonyc_root).classes == ("alert-signal", "engine", "human-voice", "powered-saw")


def test_sonyc_split_follows_the_split_column(sonyc_root: Path):
    split = sonyc(sonyc_root).split()
    assert [[c.name for c in p] for p in _parts(split)] == [
        ["audio/a.wav", "audio/d.wav"], ["audio/b.wav"], ["audio/c.wav"]]
    assert split.to_dict()["scheme"] == "subsets train=train; valid=validate; test=test"


def test_sonyc_refuses_bad_values_and_broken_trees(sonyc_root: Path):
    with pytest.raises(SpecError, match="'vote'"):
        sonyc(sonyc_root, aggregate="vote")
    (sonyc_root / "audio" / "c.wav").unlink()
    with pytest.raises(InputError, match=r"annotations\.csv are missing: .*c\.wav"):
        sonyc(sonyc_root)
    annotations = sonyc_root / "annotations.csv"
    _table(annotations, SONYC_COLUMNS, [_annotation("eval", "a.wav", "1")])
    with pytest.raises(InputError, match=r"a\.wav has split eval; expected one of train"):
        sonyc(sonyc_root)
    _table(annotations, SONYC_COLUMNS, [_annotation("train", "a.wav", "1", dog="yes")])
    with pytest.raises(InputError, match="8_dog_presence = 'yes' is not a number"):
        sonyc(sonyc_root)
    _table(annotations, SONYC_COLUMNS[:-1], [])
    with pytest.raises(InputError, match="8_dog_presence missing"):
        sonyc(sonyc_root)
    annotations.unlink()
    with pytest.raises(InputError, match=r"annotations\.csv: sonyc metadata file not found"):
        sonyc(sonyc_root)


# -- shared -------------------------------------------------------------------------------------


def test_subset_split_refuses_unknown_or_repeated_subsets(tmp_path: Path):
    clips = [Clip(tmp_path / f"{s}.wav", f"{s}.wav", None, s, subset=s) for s in ("x", "y")]
    assert Clip(tmp_path, "n", "l", "g").labels == () and Clip(tmp_path, "n", "l", "g").subset \
        is None  # the original four-field Clip still works
    with pytest.raises(InputError, match=r"unknown split name\(s\) 'training'.* x, y"):
        subset_split(clips, train=("training",))
    with pytest.raises(SpecError, match="named in two parts"):
        subset_split(clips, train=("x",), test=("x",))
    with pytest.raises(InputError, match="train part names no subset"):
        subset_split(clips, train=(), test=("x",))
    split = subset_split(clips, train=("y",), test=("x",))
    assert [c.name for c in split.train] == ["y.wav"] and split.fractions == (0.5, 0.0, 0.5)


@pytest.mark.parametrize("name", ["tau2020", "urbansound8k", "sonyc"])
def test_adapters_are_registered(registry: Registry, name: str, request: pytest.FixtureRequest):
    root = request.getfixturevalue({"tau2020": "tau_root", "urbansound8k": "us8k_root",
                                    "sonyc": "sonyc_root"}[name])
    dataset = registry.dataset(name).factory(root)
    assert isinstance(dataset, AudioDataset) and dataset.name == name and dataset.clips
    assert all(_parts(dataset.split(seed=0)))
