"""Array files: round trips, metadata, validation, atomic and all-or-nothing writes."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from specxform import io
from specxform.errors import InputError
from specxform.registry import Registry


@pytest.fixture
def cense(registry: Registry):
    return registry.representation("cense")


@pytest.fixture
def levels(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(-40.0, 10.0, size=(12, 29)).astype(np.float32)


def leftovers(folder: Path) -> list[str]:
    """Hidden temporary files or staging folders left in ``folder``."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".h5", ".hdf5"])
def test_single_array_round_trip(tmp_path: Path, suffix: str, levels: np.ndarray, cense) -> None:
    path = io.write_array(tmp_path / f"clip{suffix}", levels, cense)
    arrays = io.read_arrays(path, cense)
    assert list(arrays) == ["clip"]
    np.testing.assert_array_equal(arrays["clip"], levels)
    np.testing.assert_array_equal(io.read_array(path), levels)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_metadata_records_the_representation(tmp_path: Path, suffix: str, levels, cense) -> None:
    path = io.write_array(tmp_path / f"clip{suffix}", levels, cense)
    assert io.read_representation(path) == cense
    key = "levels"
    if suffix == ".npz":
        with np.load(path) as data:
            assert set(data.files) == {key, "representation"}
    else:
        with h5py.File(path) as h5:
            assert isinstance(h5[key], h5py.Dataset)


def test_target_arrays_are_stored_as_mel(tmp_path: Path, registry: Registry, rng) -> None:
    pann = registry.representation("pann")
    mel = rng.normal(size=(5, 64))
    with np.load(io.write_array(tmp_path / "m.npz", mel, pann)) as data:
        assert "mel" in data.files
    assert io.array_key(pann) == "mel"
    assert io.array_key(registry.representation("bark")) == "levels"
    assert io.array_key(None) == "levels"


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_collection_round_trip_keeps_nested_names(tmp_path: Path, suffix: str, cense, rng) -> None:
    arrays = {"siren/a": rng.normal(size=(3, 29)), "dog/b.c": rng.normal(size=(7, 29))}
    path = io.write_arrays(tmp_path / f"all{suffix}", arrays, cense)
    back = io.read_arrays(path, cense)
    assert sorted(back) == sorted(arrays)
    for name, array in arrays.items():
        np.testing.assert_allclose(back[name], array.astype(np.float32))
    with pytest.raises(InputError, match="holds 2 arrays"):
        io.read_array(path)


def test_collection_refuses_npy_and_nothing(tmp_path: Path, levels) -> None:
    with pytest.raises(InputError, match="one array"):
        io.write_arrays(tmp_path / "all.npy", {"a": levels, "b": levels})
    with pytest.raises(InputError, match="nothing to write"):
        io.write_arrays(tmp_path / "all.npz", {})
    assert list(tmp_path.iterdir()) == []


def test_file_format_by_suffix() -> None:
    assert io.file_format("x.NPY") == "npy"
    assert io.file_format("a/b.hdf5") == "h5"
    with pytest.raises(InputError, match=r"'\.txt'.*\.npy"):
        io.file_format("x.txt")


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros(29), "shape"),
        (np.zeros((1, 2, 3, 29)), "shape"),
        (np.zeros((4, 30)), "30 bands, but 'cense' has 29"),
        (np.zeros((0, 29)), "no frames"),
        (np.array([["a"] * 29]), "numeric"),
        (np.full((4, 29), np.nan), "116 values are NaN"),
        (np.where(np.eye(4, 29) > 0, np.inf, 0.0), "4 values are NaN or infinite"),
    ],
)
def test_check_levels_rejects(array: np.ndarray, message: str, cense) -> None:
    with pytest.raises(InputError, match=message) as info:
        io.check_levels(array, cense, name="clip.npy")
    assert str(info.value).startswith("clip.npy: ")


def test_check_levels_returns_float32(cense) -> None:
    out = io.check_levels(np.ones((2, 3, 29), dtype=np.int16), cense)
    assert out.dtype == np.float32 and out.shape == (2, 3, 29)


def test_read_validates_against_the_representation(tmp_path: Path, registry: Registry, levels
                                                   ) -> None:
    path = io.write_array(tmp_path / "clip.npy", levels)
    with pytest.raises(InputError, match="29 bands, but 'bark' has 24"):
        io.read_arrays(path, registry.representation("bark"))
    nan = levels.copy()
    nan[3, 4] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(InputError, match=r"nan\.npy.*1 values are NaN"):
        io.read_arrays(tmp_path / "nan.npy")


def test_read_refuses_another_representation(tmp_path: Path, registry: Registry, levels,
                                             cense) -> None:
    companion = registry.representation("cense_companion")  # same shape, other bin rule
    path = io.write_array(tmp_path / "clip.npz", levels, companion)
    with pytest.raises(InputError, match="'cense_companion' levels, not 'cense'"):
        io.read_arrays(path, cense)
    calibrated = io.write_array(tmp_path / "cal.h5", levels, cense.with_offset(-88.0))
    with pytest.raises(InputError, match="another definition of 'cense'"):
        io.read_arrays(calibrated, cense)


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".h5"])
def test_read_corrupt_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(b"this is not an array file" * 10)
    with pytest.raises(InputError, match=rf"bad\{suffix}: cannot read it as"):
        io.read_arrays(path)


def test_read_missing_file_and_missing_key(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        io.read_arrays(tmp_path / "absent.npz")
    np.savez(tmp_path / "other.npz", spectrum=np.zeros((2, 29)))
    with pytest.raises(InputError, match=r"no 'levels' or 'mel' entry.*spectrum"):
        io.read_arrays(tmp_path / "other.npz")


def test_hand_made_npz_without_metadata_is_read(tmp_path: Path, levels, cense) -> None:
    np.savez(tmp_path / "hand.npz", levels=levels)
    np.testing.assert_array_equal(io.read_array(tmp_path / "hand.npz", cense), levels)
    assert io.read_representation(tmp_path / "hand.npz") is None


def test_failed_write_leaves_nothing(tmp_path: Path, levels) -> None:
    bad = levels.copy()
    bad[0, 0] = np.inf
    for suffix in (".npy", ".npz", ".h5"):
        with pytest.raises(InputError):
            io.write_array(tmp_path / f"out{suffix}", bad)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_the_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), io.atomic_write(target) as tmp:
        tmp.write_bytes(b"new, half written")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_atomic_write_replaces_and_follows_umask(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.bin"
    old = os.umask(0o022)
    try:
        with io.atomic_write(target) as tmp:
            tmp.write_bytes(b"new")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o644
    assert leftovers(target.parent) == []


def test_write_atomic_bytes_replaces_the_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "state.json"
    assert io.write_atomic_bytes(target, b"old") == target
    assert io.write_atomic_bytes(target, b"new") == target
    assert target.read_bytes() == b"new" and leftovers(target.parent) == []


def test_move_into_place_keeps_the_modification_time(tmp_path: Path) -> None:
    part, target = tmp_path / "w.bin.part", tmp_path / "w.bin"
    target.write_bytes(b"stale")
    part.write_bytes(b"verified")
    os.utime(part, ns=(1_000_000_000, 1_000_000_000))
    assert io.move_into_place(part, target) == target
    assert target.read_bytes() == b"verified" and not part.exists()
    assert target.stat().st_mtime_ns == 1_000_000_000


def test_the_cache_and_the_weights_use_the_io_atomic_write() -> None:
    from specxform import weights
    from specxform.training import cache

    assert cache.atomic_path is io.atomic_write
    assert cache.atomic_write_bytes is io.write_atomic_bytes
    assert weights.move_into_place is io.move_into_place


def test_staged_folder_moves_outputs_on_success(tmp_path: Path, levels) -> None:
    out = tmp_path / "out"
    with io.StagedFolder(out) as staged:
        io.write_array(staged.path("a/b.npy"), levels)
        assert not (out / "a" / "b.npy").exists()  # nothing visible before the end
    np.testing.assert_array_equal(np.load(out / "a" / "b.npy"), levels)
    assert leftovers(out) == []


def test_staged_folder_leaves_nothing_on_error(tmp_path: Path, levels) -> None:
    out = tmp_path / "new"
    with pytest.raises(InputError), io.StagedFolder(out) as staged:
        io.write_array(staged.path("a.npy"), levels)
        raise InputError("second input is corrupt")
    assert not out.exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    with pytest.raises(InputError), io.StagedFolder(existing) as staged:
        io.write_array(staged.path("a.npy"), levels)
        raise InputError("boom")
    assert sorted(p.name for p in existing.iterdir()) == ["keep.txt"]


def test_staged_folder_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="not a folder"), io.StagedFolder(tmp_path / "f"):
        pass
