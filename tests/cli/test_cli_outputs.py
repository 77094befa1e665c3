"""Outputs are never lost or contaminated: killed runs, concurrent runs, unwritable folders.

Issue 12, items 1, 2 and 8: a killed ``features`` run leaves a staging folder
that readers must not take for data and a rerun must clean; two runs into one
output refuse instead of silently mixing; a read-only output names the target.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from specxform import io
from specxform.cli.main import main
from specxform.levels.readers import find_level_files


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def levels_dir(tmp_path: Path, rng: np.random.Generator) -> Path:
    """Three Cense level files and the leftovers of a killed run beside them."""
    folder = tmp_path / "levels"
    folder.mkdir()
    for i in range(3):
        np.save(folder / f"clip{i}.npy", rng.normal(-40, 5, (16, 29)).astype(np.float32))
    stale = folder / ".specxform-staging-dead1234"  # what SIGKILL during `features` leaves
    (stale / "sub").mkdir(parents=True)
    for i in range(4):
        np.save(stale / f"half{i}.npy", np.zeros((16, 29), np.float32))
    np.save(stale / "sub" / "deep.npy", np.zeros((16, 29), np.float32))
    (folder / ".clip0.npy.x1y2.tmp").write_bytes(b"partial")  # a killed atomic write
    return folder


def test_readers_skip_staging_folders_and_temporary_files(capsys, tmp_path: Path,
                                                          levels_dir: Path) -> None:
    code, out, err = run(capsys, "transcode", "--source", "cense", "--target", "pann",
                         levels_dir, "-o", tmp_path / "mels", "--json")
    assert code == 0, err
    assert sorted(i["name"] for i in json.loads(out)["items"]) == ["clip0", "clip1", "clip2"]
    assert [name for _, name in find_level_files([levels_dir])] == ["clip0", "clip1", "clip2"]


def test_folder_dataset_skips_staging_folders(levels_dir: Path) -> None:
    import soundfile
    from specxform_builtins.datasets import folder

    root = levels_dir.parent / "data"
    (root / "dog").mkdir(parents=True)
    (root / "dog" / ".specxform-staging-x").mkdir()
    for where in (root / "dog", root / "dog" / ".specxform-staging-x"):
        soundfile.write(where / "bark.wav", np.zeros(1600, np.float32), 16_000)
    assert [c.name for c in folder(root).clips] == ["dog/bark.wav"]


def test_rerun_removes_stale_staging_folders(capsys, levels_dir: Path,
                                             excerpt_files: list[Path]) -> None:
    code, _, err = run(capsys, "features", "--rep", "cense", excerpt_files[0], "-o", levels_dir)
    assert code == 0, err
    hidden = sorted(p.name for p in levels_dir.iterdir() if p.name.startswith(".specxform"))
    assert hidden == [], hidden


def test_a_held_lock_refuses_a_second_run(capsys, tmp_path: Path,
                                          excerpt_files: list[Path]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "kept.npy").write_bytes(b"not touched")
    with io.output_lock(out, folder=True):
        code, stdout, err = run(capsys, "features", "--rep", "bark", excerpt_files[0], "-o", out)
    assert code == 1 and stdout == ""
    assert "another specxform run" in err and f"pid {os.getpid()}" in err and str(out) in err
    assert sorted(p.name for p in out.iterdir()) == ["kept.npy"]  # no lock file left either
    with io.output_lock(tmp_path / "all.h5", folder=False):
        code, _, err = run(capsys, "features", "--rep", "bark", excerpt_files[0],
                           "-o", tmp_path / "all.h5")
    assert code == 1 and "all.h5" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    # Free again: the run goes through.
    code, _, err = run(capsys, "features", "--rep", "bark", excerpt_files[0], "-o", out)
    assert code == 0, err


def test_lock_is_released_and_reusable(tmp_path: Path) -> None:
    for _ in range(2):
        with io.output_lock(tmp_path, folder=True):
            assert (tmp_path / io.LOCK_NAME).is_file()
        assert not (tmp_path / io.LOCK_NAME).exists()


def test_read_only_output_names_the_target(capsys, tmp_path: Path, excerpt_files: list[Path],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulated: the tests may run as root, who can write into a folder whatever its mode.
    def read_only(*args: object, **kwargs: object) -> object:
        raise OSError(errno.EROFS, "Read-only file system",
                      str(tmp_path / "ro" / ".specxform-staging-abc"))

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    real_open = os.open

    def no_lock(path: str | os.PathLike[str], flags: int, *args: int) -> int:
        if str(path).endswith("lock"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args)

    for target in (tmp_path / "ro", tmp_path / "ro.h5"):
        code, _, err = run(capsys, "features", "--rep", "cense", excerpt_files[0], "-o", target)
        assert code == 2, err
        assert f"-o {target}" in err and "read-only" in err.lower(), err
        assert "writable" in err and "Errno" not in err and "staging" not in err, err
        monkeypatch.setattr(os, "open", no_lock)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.slow
def test_two_concurrent_runs_never_mix(tmp_path: Path, excerpt_files: list[Path]) -> None:
    """Two real processes into one folder: one writes everything, the other refuses."""
    out = tmp_path / "out"
    clips = [str(p) for p in excerpt_files[:12]]
    cmd = [sys.executable, "-m", "specxform.cli.main", "features", *clips, "-o", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([*cmd, "--rep", rep], stderr=subprocess.PIPE, text=True, env=env)
             for rep in ("cense", "bark")]
    codes = [p.wait(timeout=300) for p in procs]
    errors = [p.stderr.read() for p in procs if p.stderr]
    assert sorted(codes) == [0, 1], errors
    assert any("another specxform run" in e for e in errors), errors
    bands = {np.load(f).shape[1] for f in out.rglob("*.npy")}
    assert len(list(out.rglob("*.npy"))) == 12 and len(bands) == 1, bands
