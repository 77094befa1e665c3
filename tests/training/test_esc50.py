"""The esc50 adapter on tiny generated trees in the ESC-50 layout, and on the real ESC-10
copy of ../shared/data/esc10 (folds 1 to 4; skipped when absent)."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import pytest
from specxform_builtins.datasets import esc50
from specxform_builtins.datasets.esc50 import META_COLUMNS, write_example

from specxform.datasets import AudioDataset, Split
from specxform.errors import InputError, InputWarning
from specxform.registry import Registry
from specxform.testing import check_dataset


def _tree(root: Path, **options) -> Path:
    write_example(root, **options)
    return root


def _groups(clips) -> set[str]:
    return {c.group for c in clips}


def _disjoint(split: Split) -> bool:
    parts = [_groups(p) for p in (split.train, split.valid, split.test)]
    return all(not (a & b) for i, a in enumerate(parts) for b in parts[i + 1:])


def _folds_of(clips) -> set[str]:
    return {str(c.subset) for c in clips}


def test_esc50_reads_category_src_file_and_fold(tmp_path: Path):
    dataset = esc50(_tree(tmp_path))
    assert dataset.name == "esc50" and len(dataset.clips) == 16
    assert dataset.classes == ("cat", "dog", "rooster")
    clip = next(c for c in dataset.clips if c.name == "audio/2-2000-B-0.wav")
    assert (clip.label, clip.group, clip.subset) == ("dog", "2000", "fold2")
    assert clip.path == tmp_path / "audio" / "2-2000-B-0.wav"


def test_esc10_subset_from_the_column_or_from_its_own_metadata(tmp_path: Path):
    subset = esc50(_tree(tmp_path / "full"), esc10=True)
    assert subset.name == "esc10" and "cat" not in subset.classes and len(subset.clips) == 15
    own = esc50(_tree(tmp_path / "own", meta="esc10.csv"))
    assert own.name == "esc10" and "cat" not in own.classes


def test_split_tests_the_last_fold_and_validates_the_one_before(tmp_path: Path):
    dataset = esc50(_tree(tmp_path))
    split = dataset.split()
    assert _folds_of(split.test) == {"fold5"} and _folds_of(split.valid) == {"fold4"}
    assert _folds_of(split.train) == {"fold1", "fold2", "fold3"} and _disjoint(split)
    other = esc50(tmp_path, test_fold=2, valid_fold=None).split()
    assert _folds_of(other.test) == {"fold2"} and not other.valid
    assert _folds_of(esc50(tmp_path, test_fold=1).split().valid) == {"fold5"}  # cyclic


def test_cross_validation_uses_the_folds_present(tmp_path: Path):
    dataset = esc50(_tree(tmp_path, folds=(1, 2, 3, 4)))
    splits = dataset.cross_validation()
    assert [_folds_of(s.test) for s in splits] == [{f"fold{k}"} for k in (1, 2, 3, 4)]
    assert [_folds_of(s.valid) for s in splits] == [{f"fold{k}"} for k in (4, 1, 2, 3)]
    assert all(_disjoint(s) for s in splits)
    assert sorted(c.name for s in splits for c in s.test) == [c.name for c in dataset.clips]
    split = dataset.split()
    assert _folds_of(split.test) == {"fold4"} and _folds_of(split.valid) == {"fold3"}


def test_two_folds_have_no_validation_fold_and_one_fold_falls_back(tmp_path: Path):
    two = esc50(_tree(tmp_path / "two", folds=(2, 3)))
    split = two.split()
    assert _folds_of(split.train) == {"fold2"} and not split.valid
    assert [len(s.valid) for s in two.cross_validation()] == [0, 0]
    with pytest.raises(InputError, match=r"lists fold\(s\) 2, 3 only.*no fold is left"):
        esc50(tmp_path / "two", valid_fold=2)
    with pytest.warns(InputWarning, match=r"lists fold 1 only.*grouped by src_file"):
        one = esc50(_tree(tmp_path / "one", folds=(1,)))  # 3 recordings
    assert one.subsets is None and one.folds is None
    assert _disjoint(one.split())


@pytest.mark.parametrize(("options", "message"), [
    ({"test_fold": 5}, r"test_fold=5: .* lists fold\(s\) 1, 2, 3 only"),
    ({"valid_fold": 3}, r"valid_fold=3: choose a fold among 1, 2, 3 other than the test fold 3"),
    ({"valid_fold": "next"}, r"valid_fold='next'"),
])
def test_folds_that_are_absent_are_refused(tmp_path: Path, options: dict, message: str):
    root = _tree(tmp_path, folds=(1, 2, 3))
    with pytest.raises(InputError, match=message):
        esc50(root, **options)


def _rewrite(meta: Path, change) -> None:
    with meta.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    change(rows)
    with meta.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_broken_trees_are_named(tmp_path: Path):
    with pytest.raises(InputError, match=r"neither meta/esc50\.csv nor meta/esc10\.csv"):
        esc50(tmp_path)
    root = _tree(tmp_path / "tree")
    meta = root / "meta" / "esc50.csv"
    _rewrite(meta, lambda rows: rows[0].update(fold="6"))
    with pytest.raises(InputError, match=r"has fold '6', not 1 to 5"):
        esc50(root)
    _rewrite(meta, lambda rows: rows[0].update(fold="1", src_file=rows[-1]["src_file"]))
    with pytest.raises(InputError, match=r"src_file \d+ is in folds 1, 5"):
        esc50(root)
    write_example(root)
    (root / "audio" / "3-3000-A-0.wav").unlink()
    with pytest.raises(InputError, match=r"1 audio file\(s\) listed in .*esc50\.csv are missing"):
        esc50(root)
    _rewrite(meta, lambda rows: [r.pop("src_file") for r in rows])
    with pytest.raises(InputError, match="column\\(s\\) src_file missing"):
        esc50(root)


def test_registered_with_an_example_that_passes_the_contract(registry: Registry):
    entry = registry.dataset("esc50")
    assert entry.example is not None
    check_dataset("esc50")
    check_dataset("esc50", options={"esc10": True})


# -- the real ESC-10 copy ------------------------------------------------------------------------


@pytest.fixture
def esc10_root(shared_data: Path) -> Path:
    root = shared_data / "esc10"
    if not (root / "meta" / "esc10.csv").is_file():
        pytest.skip(f"ESC-10 not found at {root} (see ../shared/data/README.md)")
    return root


def test_real_esc10_lists_320_clips_in_folds_1_to_4(esc10_root: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # four folds: no fallback warning
        dataset = esc50(esc10_root)
    assert isinstance(dataset, AudioDataset) and dataset.name == "esc10"
    assert len(dataset.clips) == 320 and len(dataset.classes) == 10
    assert _folds_of(dataset.clips) == {"fold1", "fold2", "fold3", "fold4"}
    assert len(_groups(dataset.clips)) == 247  # src_file recordings, from the metadata
    split = dataset.split()
    assert _folds_of(split.test) == {"fold4"} and _folds_of(split.valid) == {"fold3"}
    assert len(split.train) == 160 and _disjoint(split)
    assert [len(s.test) for s in dataset.cross_validation()] == [80, 80, 80, 80]
    assert set(META_COLUMNS) <= set(next(csv.reader((esc10_root / "meta" / "esc10.csv").open())))


def test_real_esc10_passes_the_contract(esc10_root: Path):
    check_dataset("esc50", esc10_root)
