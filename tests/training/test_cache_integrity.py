"""A damaged feature cache is found when it is opened: rebuilt by build_cache, named otherwise.

Issue 12, item 3: a cached array cut short gave ``ValueError: mmap length is
greater than file size`` from numpy; NaN in a cached array was blamed on the
teacher's "mel" input instead of the cache.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from training_helpers import TinyTeacher, few_clips

from specxform.datasets import Clip
from specxform.errors import InputError
from specxform.registry import Registry
from specxform.training.cache import FeatureCache, build_cache, open_cache


@pytest.fixture(scope="module")
def two(shared_data: Path) -> list[Clip]:
    """Two real 4 s clips (their silent chunks are dropped)."""
    return few_clips(per_class=1, classes=2)


@pytest.fixture(scope="module")
def pristine(two: list[Clip], registry: Registry, tmp_path_factory: pytest.TempPathFactory
             ) -> Path:
    root = tmp_path_factory.mktemp("pristine")
    return _build(two, registry, root).folder


def _build(clips: list[Clip], registry: Registry, root: Path) -> FeatureCache:
    return build_cache(clips, source=registry.representation("cense"),
                       target=registry.representation("pann"), teacher=TinyTeacher(),
                       teacher_name="tiny", root=root)


@pytest.fixture
def damaged(pristine: Path, tmp_path: Path) -> Path:
    """A copy of the pristine cache, in a root of its own, to be damaged by the test."""
    copy = tmp_path / "root" / pristine.name
    shutil.copytree(pristine, copy)
    return copy


def _cut(path: Path, n_bytes: int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-n_bytes])


def _poison(path: Path, chunk: int) -> None:
    array = np.load(path, mmap_mode="r+")
    array[chunk] = np.nan
    array.flush()
    del array


@pytest.mark.parametrize("name", ["probs", "source", "file_index"])
def test_a_truncated_array_is_named_when_opened(damaged: Path, name: str) -> None:
    _cut(damaged / f"{name}.npy", 100)
    with pytest.raises(InputError) as info:
        open_cache(damaged)
    message = str(info.value)
    assert f"{name}.npy" in message and "truncated" in message
    assert "mmap" not in message and f"delete {damaged}" in message, message


def test_a_nan_array_names_the_array_the_chunk_and_the_clip(damaged: Path) -> None:
    chunk = len(np.load(damaged / "probs.npy")) - 1
    clip = open_cache(damaged).files[int(np.load(damaged / "file_index.npy")[chunk])]
    _poison(damaged / "target.npy", chunk)
    with pytest.raises(InputError) as info:
        open_cache(damaged)
    message = str(info.value)
    assert "target.npy" in message and f"chunk {chunk}" in message, message
    assert clip in message and "NaN" in message, message


def test_build_cache_rebuilds_a_damaged_cache(damaged: Path, pristine: Path, two: list[Clip],
                                              registry: Registry,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _cut(damaged / "probs.npy", 100)
    _poison(damaged / "source.npy", 2)
    rebuilt = _build(two, registry, damaged.parent)
    assert rebuilt.folder == damaged
    assert "rebuilding" in capsys.readouterr().err
    good = open_cache(pristine)
    for name in ("source", "target", "probs", "file_index", "chunk_index"):
        np.testing.assert_array_equal(getattr(rebuilt, name), getattr(good, name))


def test_a_missing_array_is_named(damaged: Path) -> None:
    (damaged / "chunk_index.npy").unlink()
    with pytest.raises(InputError, match=r"chunk_index\.npy"):
        open_cache(damaged)
