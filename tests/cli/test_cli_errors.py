"""Bad input: one line on stderr naming the value and a fix, exit 2, no partial output."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

from specxform.cli.main import main


@pytest.fixture
def good_wav(tmp_path: Path, rng: np.random.Generator) -> Path:
    path = tmp_path / "in" / "good.wav"
    path.parent.mkdir(exist_ok=True)
    soundfile.write(path, (0.1 * rng.standard_normal(32_000)).astype(np.float32), 32_000)
    return path


@pytest.fixture
def good_npy(tmp_path: Path, rng: np.random.Generator) -> Path:
    path = tmp_path / "in" / "good.npy"
    path.parent.mkdir(exist_ok=True)
    np.save(path, rng.normal(-40, 5, size=(8, 29)).astype(np.float32))
    return path


def bad_file(tmp_path: Path, name: str, content: bytes | np.ndarray) -> Path:
    path = tmp_path / "in" / name
    path.parent.mkdir(exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        np.save(path, content)
    return path


def assert_fails(capsys: pytest.CaptureFixture[str], argv: list[str | Path], *needles: str,
                 code: int = 2) -> str:
    """Run ``argv``; check the exit status, the one-line error and its contents."""
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert status == code, err
    assert out == ""
    assert err.startswith("specxform: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def outputs(tmp_path: Path) -> list[str]:
    """Everything under tmp_path except the inputs."""
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")
                  if "in" not in p.relative_to(tmp_path).parts)


def test_unknown_names_suggest_the_closest(capsys, tmp_path: Path, good_wav: Path) -> None:
    assert_fails(capsys, ["features", "--rep", "cens", good_wav, "-o", tmp_path / "o"],
                 "'cens'", "Did you mean 'cense'")
    assert_fails(capsys, ["transcode", "--source", "cense", "--target", "pan", good_wav,
                          "-o", tmp_path / "o"], "'pan'", "'pann'")
    assert_fails(capsys, ["show", "--source", "barks", "--target", "yamnet", good_wav],
                 "'barks'", "'bark'")
    assert outputs(tmp_path) == []


def test_wrong_roles(capsys, tmp_path: Path, good_npy: Path) -> None:
    assert_fails(capsys, ["transcode", "--source", "pann", "--target", "yamnet", good_npy,
                          "-o", tmp_path / "o"], "'pann' is not a source representation")
    assert outputs(tmp_path) == []


@pytest.mark.parametrize(
    ("name", "content", "needles"),
    [
        ("wide.npy", np.zeros((8, 30), dtype=np.float32), ("wide.npy", "30 bands", "29")),
        ("flat.npy", np.zeros(29, dtype=np.float32), ("flat.npy", "shape (29,)")),
        ("nan.npy", np.full((8, 29), np.nan, dtype=np.float32), ("nan.npy", "NaN")),
        ("inf.npy", np.full((8, 29), -np.inf, dtype=np.float32), ("inf.npy", "infinite")),
        ("empty.npy", np.zeros((0, 29), dtype=np.float32), ("empty.npy", "no frames")),
        ("garbage.npz", b"PK\x03\x04 not really a zip", ("garbage.npz", "cannot read")),
        ("garbage.h5", b"\x89HDF\r\n\x1a\n truncated", ("garbage.h5", "cannot read")),
    ],
)
def test_bad_arrays(capsys, tmp_path: Path, good_npy: Path, name: str,
                    content: bytes | np.ndarray, needles: tuple[str, ...]) -> None:
    bad = bad_file(tmp_path, name, content)
    for out in (tmp_path / "out", tmp_path / "all.npz"):  # good input first, bad one second
        assert_fails(capsys, ["transcode", "--source", "cense", "--target", "pann",
                              good_npy, bad, "-o", out], *needles)
    assert outputs(tmp_path) == []


@pytest.mark.parametrize(
    ("name", "content", "needles"),
    [
        ("corrupt.wav", b"RIFF\x00\x00\x00\x00WAVEjunk" * 4, ("corrupt.wav", "cannot read audio")),
        ("zero.wav", b"", ("zero.wav", "cannot read audio")),
        ("noise.flac", os.urandom(512), ("noise.flac", "cannot read audio")),
    ],
)
def test_corrupt_audio(capsys, tmp_path: Path, good_wav: Path, name: str, content: bytes,
                       needles: tuple[str, ...]) -> None:
    bad = bad_file(tmp_path, name, content)
    for out in (tmp_path / "out", tmp_path / "all.h5"):
        assert_fails(capsys, ["features", "--rep", "cense", good_wav, bad, "-o", out], *needles)
    assert outputs(tmp_path) == []


def test_empty_audio(capsys, tmp_path: Path, good_wav: Path) -> None:
    empty = tmp_path / "in" / "silent.wav"
    soundfile.write(empty, np.zeros(0, dtype=np.float32), 16_000)
    assert_fails(capsys, ["features", "--rep", "cense", good_wav, empty, "-o", tmp_path / "o"],
                 "silent.wav", "no samples")
    assert outputs(tmp_path) == []


def test_too_short_audio_names_the_file(capsys, tmp_path: Path) -> None:
    click = tmp_path / "in" / "click.wav"
    click.parent.mkdir()
    soundfile.write(click, np.ones(50, dtype=np.float32), 32_000)
    assert_fails(capsys, ["show", "--source", "cense", "--target", "yamnet", click,
                          "-o", tmp_path / "c.png"], "click.wav", "shorter than one frame")
    assert outputs(tmp_path) == []


def test_paths(capsys, tmp_path: Path, good_wav: Path) -> None:
    missing = tmp_path / "nowhere.wav"
    assert_fails(capsys, ["features", "--rep", "cense", missing, "-o", tmp_path / "o"],
                 str(missing), "no such file or folder")
    text = bad_file(tmp_path, "notes.txt", b"hello")
    assert_fails(capsys, ["features", "--rep", "cense", text, "-o", tmp_path / "o"],
                 "notes.txt", "unsupported file type '.txt'")
    empty_dir = tmp_path / "in" / "empty"
    empty_dir.mkdir()
    assert_fails(capsys, ["features", "--rep", "cense", empty_dir, "-o", tmp_path / "o"],
                 "no audio files", str(empty_dir))
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    assert_fails(capsys, ["features", "--rep", "cense", good_wav, "-o", blocker],
                 "blocker", "not a folder")
    assert_fails(capsys, ["features", "--rep", "cense", good_wav, "-o", blocker / "x.npz"],
                 "blocker")
    assert outputs(tmp_path) == ["blocker"]


def test_unreadable_file(capsys, tmp_path: Path, good_wav: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulated: the tests may run as root, who reads files whatever their mode.
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != good_wav)
    assert_fails(capsys, ["features", "--rep", "cense", good_wav, "-o", tmp_path / "o"],
                 "good.wav", "permission denied")
    assert outputs(tmp_path) == []


def test_usage_errors_exit_2(capsys, tmp_path: Path, good_npy: Path) -> None:
    status = main(["transcode", "--source", "cense", "--target", "pann", "--method", "svd",
                   str(good_npy), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert status == 2 and "invalid choice: 'svd'" in err
    assert main(["features", "--rep", "cense"]) == 2
    assert "required" in capsys.readouterr().err
    assert main([]) == 2
    assert outputs(tmp_path) == []
