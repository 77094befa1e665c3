"""CLI plumbing: input expansion and output planning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from specxform.cli import common
from specxform.errors import InputError
from specxform.registry import Registry


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_expand_inputs_names_and_kinds(tmp_path: Path) -> None:
    touch(tmp_path / "in" / "a" / "x.WAV")
    touch(tmp_path / "in" / "b" / "y.npz")
    touch(tmp_path / "in" / "readme.md")
    single = touch(tmp_path / "z.flac")
    found = common.expand_inputs([tmp_path / "in", single], kinds=("audio", "array"))
    assert [(f.name, f.kind) for f in found] == [("a/x", "audio"), ("b/y", "array"),
                                                 ("z", "audio")]
    audio_only = common.expand_inputs([tmp_path / "in"], kinds=("audio",))
    assert [f.path for f in audio_only] == [tmp_path / "in" / "a" / "x.WAV"]


def test_expand_inputs_refuses_colliding_names(tmp_path: Path) -> None:
    first, second = touch(tmp_path / "1" / "clip.wav"), touch(tmp_path / "2" / "clip.ogg")
    with pytest.raises(InputError, match=r"would both write the output 'clip'"):
        common.expand_inputs([first, second], kinds=("audio",))


def test_output_plan(tmp_path: Path) -> None:
    assert common.OutputPlan.from_args(tmp_path / "o.HDF5", None) == common.OutputPlan(
        tmp_path / "o.HDF5", "h5", True)
    assert common.OutputPlan.from_args(tmp_path / "o", None).fmt == "npy"
    assert common.OutputPlan.from_args(tmp_path / "o", "npz") == common.OutputPlan(
        tmp_path / "o", "npz", False)
    with pytest.raises(InputError, match="--format is npy"):
        common.OutputPlan.from_args(tmp_path / "o.h5", "npy")


def test_write_outputs_records_and_stops_on_error(tmp_path: Path, registry: Registry) -> None:
    cense = registry.representation("cense")

    def items(fail: bool):
        yield "a/one", Path("one.wav"), np.zeros((3, 29))
        if fail:
            raise InputError("two.wav: corrupt")
        yield "two", Path("two.wav"), np.zeros((5, 29))

    plan = common.OutputPlan(tmp_path / "out", "npz", False)
    records = common.write_outputs(plan, items(False), cense)
    assert [(r["name"], r["shape"]) for r in records] == [("a/one", [3, 29]), ("two", [5, 29])]
    assert (tmp_path / "out" / "a" / "one.npz").is_file()
    for failing in (common.OutputPlan(tmp_path / "new", "npy", False),
                    common.OutputPlan(tmp_path / "all.h5", "h5", True)):
        with pytest.raises(InputError, match="corrupt"):
            common.write_outputs(failing, items(True), cense)
        assert not failing.path.exists()
