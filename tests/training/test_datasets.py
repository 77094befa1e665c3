"""The folder dataset and grouped splits, on the real UrbanSound8K excerpt."""

from __future__ import annotations

from pathlib import Path

import pytest
from specxform_builtins.datasets import folder

from specxform.datasets import Clip, group_of, grouped_split, subsample_groups
from specxform.errors import InputError, SpecError
from specxform.registry import Registry


@pytest.fixture(scope="module")
def excerpt(shared_data: Path):
    return folder(shared_data / "urbansound8k-excerpt")


def test_folder_lists_every_clip_with_its_class_and_fsid(excerpt, excerpt_files):
    assert [c.path for c in excerpt.clips] == [p.resolve() for p in excerpt_files]
    assert len(excerpt.classes) == 9 and "air_conditioner" not in excerpt.classes
    for clip in excerpt.clips:
        assert clip.label == clip.path.parent.name
        assert clip.name == f"{clip.label}/{clip.path.name}"
        assert clip.group == clip.path.name.split("-")[0]
    assert len({c.group for c in excerpt.clips}) == 32  # the README's 32 source recordings


def test_split_keeps_each_recording_in_one_split(excerpt):
    split = excerpt.split(seed=0)
    parts = (split.train, split.valid, split.test)
    groups = [{c.group for c in part} for part in parts]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    assert sorted(c.name for part in parts for c in part) == sorted(c.name for c in excerpt.clips)
    assert all(parts)
    # Whole groups of up to a few clips: each share lands within 10 points of its target.
    for part, share in zip(parts, (0.75, 0.125, 0.125), strict=True):
        assert abs(len(part) / len(excerpt.clips) - share) < 0.10


def test_split_depends_only_on_seed_and_clips(excerpt):
    first = excerpt.split(seed=0)
    assert grouped_split(list(reversed(excerpt.clips)), seed=0) == first
    assert excerpt.split(seed=1).valid != first.valid
    assert first.to_dict()["valid"] == [c.name for c in first.valid]


def test_zero_fraction_leaves_a_split_empty(excerpt):
    split = excerpt.split((0.5, 0.5, 0.0), seed=3)
    assert not split.test and split.train and split.valid


def test_every_split_with_a_share_gets_a_group_even_with_few_groups(tmp_path: Path):
    clips = [Clip(tmp_path / f"{g}.wav", f"{g}.wav", None, str(g)) for g in range(4)]
    for seed in range(5):
        split = grouped_split(clips, seed=seed)
        assert (len(split.train), len(split.valid), len(split.test)) == (2, 1, 1)


def test_too_few_groups_and_bad_fractions_are_refused(tmp_path: Path):
    clips = [Clip(tmp_path / f"{i}.wav", f"{i}.wav", None, "one") for i in range(5)]
    with pytest.raises(InputError, match="1 group"):
        grouped_split(clips)
    with pytest.raises(SpecError, match=r"\(0.5, 0.6, 0.0\)"):
        grouped_split(clips, (0.5, 0.6, 0.0))


def test_group_rules(tmp_path: Path):
    us8k = Path("fold1/100032-3-0-0.wav")
    assert group_of(us8k) == "100032" and group_of(us8k, "file") == "100032-3-0-0"
    assert group_of(Path("street.wav")) == "street"
    with pytest.raises(InputError, match=r"street\.wav"):
        group_of(Path("street.wav"), "freesound")
    with pytest.raises(SpecError, match="'fsid'"):
        group_of(us8k, "fsid")


def test_clips_at_the_root_have_no_label(shared_data: Path, tmp_path: Path):
    source = next((shared_data / "urbansound8k-excerpt" / "siren").glob("*.wav"))
    (tmp_path / "a.wav").symlink_to(source)
    (tmp_path / "dogs").mkdir()
    (tmp_path / "dogs" / "b.wav").symlink_to(source)
    (tmp_path / "notes.txt").write_text("not audio")
    dataset = folder(tmp_path)
    assert [(c.name, c.label) for c in dataset.clips] == [("a.wav", None), ("dogs/b.wav", "dogs")]
    assert dataset.classes == ("dogs",)


def test_missing_or_empty_folder_is_refused(tmp_path: Path):
    with pytest.raises(InputError, match="nowhere"):
        folder(tmp_path / "nowhere")
    with pytest.raises(InputError, match="no audio files"):
        folder(tmp_path)


def test_folder_is_registered(registry: Registry, excerpt):
    entry = registry.dataset("folder")
    assert entry.factory(excerpt.root).clips == excerpt.clips


def test_subsample_keeps_whole_groups_nested_and_near_the_fraction(excerpt):
    clips = excerpt.clips
    half, quarter = (subsample_groups(clips, f, seed=0) for f in (0.5, 0.25))
    groups = {f: {c.group for c in part} for f, part in (("half", half), ("quarter", quarter))}
    # whole recordings: every clip of a kept group is kept
    kept = sorted(c.name for c in clips if c.group in groups["half"])
    assert sorted(c.name for c in half) == kept
    assert groups["quarter"] < groups["half"]  # nested, so a learning curve adds data
    assert len(quarter) <= 0.25 * len(clips) < len(half) <= 0.5 * len(clips)
    assert len(half) >= 0.4 * len(clips)  # stops short by less than one group of a few clips
    assert subsample_groups(list(reversed(clips)), 0.5, seed=0) == half
    assert subsample_groups(clips, 0.5, seed=1) != half
    assert subsample_groups(clips, 1.0, seed=0) == tuple(sorted(clips, key=lambda c: c.name))


@pytest.mark.parametrize("fraction", [0, -0.5, 1.5, float("nan")])
def test_subsample_refuses_a_fraction_outside_zero_one(excerpt, fraction):
    with pytest.raises(SpecError, match="fraction must be in"):
        subsample_groups(excerpt.clips, fraction)
