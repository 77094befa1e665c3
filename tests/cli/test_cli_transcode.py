"""``specxform transcode``: source arrays or audio to target Mels, in process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from specxform import api, io
from specxform.cli import transcode
from specxform.cli.main import main
from specxform.registry import Registry
from specxform.transcoders import pinv


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def levels_file(tmp_path: Path, excerpt_files: list[Path], registry: Registry) -> Path:
    """Cense levels of two real clips in one .npz collection."""
    cense = registry.representation("cense")
    arrays = {p.stem: api.compute_file(cense, p) for p in excerpt_files[:2]}
    return io.write_arrays(tmp_path / "levels.npz", arrays, cense)


@pytest.mark.parametrize("target", ["pann", "yamnet"])
def test_transcode_a_collection(capsys, tmp_path: Path, levels_file: Path, registry: Registry,
                                target: str) -> None:
    cense, tgt = registry.representation("cense"), registry.representation(target)
    out = tmp_path / f"mel_{target}.h5"
    code, stdout, _ = run(capsys, "transcode", "--source", "cense", "--target", target,
                          levels_file, "-o", out, "--json")
    assert code == 0
    report = json.loads(stdout)
    assert (report["source"], report["target"], report["method"]) == ("cense", target, "pinv")
    mels = io.read_arrays(out, tgt)
    coder = api.transcoder(cense, tgt)
    for name, levels in io.read_arrays(levels_file, cense).items():
        assert mels[name].shape == (coder.target_frames(levels.shape[0]), tgt.n_bands)
        np.testing.assert_allclose(mels[name], api.transcode(levels, cense, tgt), atol=1e-5)
    assert io.read_representation(out) == tgt


def test_transcode_audio_equals_features_then_transcode(capsys, tmp_path: Path,
                                                        excerpt_files: list[Path]) -> None:
    clip = excerpt_files[5]
    code, _, _ = run(capsys, "transcode", "--source", "cense", "--target", "pann", clip,
                     "-o", tmp_path / "out")
    assert code == 0
    mel = np.load(tmp_path / "out" / f"{clip.stem}.npy")
    expected = api.transcode(api.compute_file("cense", clip), "cense", "pann")
    np.testing.assert_allclose(mel, expected, atol=1e-5)
    assert mel.shape == (401, 64)


def test_transcode_method_and_npy_inputs(capsys, tmp_path: Path, levels_file: Path) -> None:
    folder = tmp_path / "npy"
    for name, levels in io.read_arrays(levels_file).items():
        io.write_array(folder / f"{name}.npy", levels)
    code, stdout, _ = run(capsys, "transcode", "--source", "cense", "--target", "yamnet",
                          "--method", "nnls", folder, "-o", tmp_path / "mels.npz")
    assert code == 0 and "method nnls" in stdout
    mels = io.read_arrays(tmp_path / "mels.npz")
    for name, levels in io.read_arrays(levels_file).items():
        np.testing.assert_allclose(
            mels[name], api.transcode(levels, "cense", "yamnet", method="nnls"), atol=1e-5
        )


def test_method_choices_match_pinv() -> None:
    assert transcode.METHODS == pinv.METHODS
