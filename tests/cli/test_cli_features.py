"""``specxform features``: audio files to arrays, folders or one file, in process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from specxform import api, io
from specxform.cli.main import main
from specxform.registry import Registry


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def clips(excerpt_files: list[Path]) -> list[Path]:
    """Three real clips from two classes."""
    return [excerpt_files[0], excerpt_files[1], excerpt_files[-1]]


def expected_frames(rep, path: Path) -> int:
    info = soundfile.info(str(path))
    return rep.n_frames(int(np.ceil(info.frames * rep.sample_rate / info.samplerate)))


@pytest.mark.parametrize("name", ["cense", "bark", "pann"])
def test_features_to_a_folder(capsys, tmp_path: Path, clips: list[Path], registry: Registry,
                              name: str) -> None:
    rep = registry.representation(name)
    out = tmp_path / "out"
    code, stdout, _ = run(capsys, "features", "--rep", name, *clips, "-o", out)
    assert code == 0 and "wrote 3 array(s)" in stdout
    for clip in clips:
        array = np.load(out / f"{clip.stem}.npy")
        assert array.shape == (expected_frames(rep, clip), rep.n_bands)
        np.testing.assert_array_equal(array, api.compute_file(rep, clip))


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_features_to_one_file(capsys, tmp_path: Path, clips: list[Path], registry: Registry,
                              suffix: str) -> None:
    cense = registry.representation("cense")
    out = tmp_path / f"all{suffix}"
    code, stdout, _ = run(capsys, "features", "--rep", "cense", *clips, "-o", out, "--json")
    assert code == 0
    report = json.loads(stdout)
    assert report["representation"] == "cense" and report["format"] == suffix[1:]
    arrays = io.read_arrays(out, cense)
    assert sorted(arrays) == sorted(c.stem for c in clips)
    for item in report["items"]:
        assert item["shape"] == list(arrays[item["name"]].shape)
    assert io.read_representation(out) == cense


def test_features_of_a_folder_keeps_its_tree(capsys, tmp_path: Path, shared_data: Path,
                                             registry: Registry) -> None:
    folder = tmp_path / "in"
    for sub, clip in (("a", "car_horn"), ("b", "siren")):
        source = sorted((shared_data / "urbansound8k-excerpt" / clip).glob("*.wav"))[0]
        (folder / sub).mkdir(parents=True)
        (folder / sub / source.name).symlink_to(source)
    (folder / "notes.txt").write_text("ignored: not audio")
    code, stdout, _ = run(capsys, "features", "--rep", "cense", folder, "-o", tmp_path / "out",
                          "--format", "h5", "--json")
    assert code == 0
    names = sorted(i["name"] for i in json.loads(stdout)["items"])
    assert [n.split("/")[0] for n in names] == ["a", "b"]
    for name in names:
        assert io.read_array(tmp_path / "out" / f"{name}.h5").shape == (32, 29)


def test_features_single_npy_file(capsys, tmp_path: Path, clips: list[Path]) -> None:
    code, _, _ = run(capsys, "features", "--rep", "cense", clips[0], "-o", tmp_path / "one.npy")
    assert code == 0 and np.load(tmp_path / "one.npy").shape == (32, 29)


def test_features_output_conflicts(capsys, tmp_path: Path, clips: list[Path]) -> None:
    code, _, err = run(capsys, "features", "--rep", "cense", *clips, "-o", tmp_path / "x.npy")
    assert code == 2 and "a .npy file holds one array, got 3" in err
    code, _, err = run(capsys, "features", "--rep", "cense", clips[0], "-o", tmp_path / "x.npz",
                       "--format", "h5")
    assert code == 2 and "--format is h5" in err
    assert list(tmp_path.iterdir()) == []
