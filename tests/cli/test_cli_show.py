"""``specxform show`` and the plotting module behind it."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from specxform import api, io
from specxform.cli.main import main
from specxform.errors import InputError
from specxform.evaluation import plotting
from specxform.registry import Registry


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; fails if the file is not a PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert data[-8:-4] == b"IEND"  # complete file
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_show_audio_draws_three_panels(capsys, tmp_path: Path, excerpt_files: list[Path]
                                       ) -> None:
    clip = excerpt_files[3]
    out = tmp_path / "cmp.png"
    code, stdout, _ = run(capsys, "show", "--source", "cense", "--target", "pann", clip,
                          "-o", out, "--json")
    assert code == 0
    report = json.loads(stdout)
    true = api.compute_file("pann", clip)
    pinv = api.transcode(api.compute_file("cense", clip), "cense", "pann")
    assert report["mel_mse"] == pytest.approx(api.mel_mse(pinv, true), rel=1e-6)
    assert (report["source_frames"], report["target_frames"]) == (32, 401)
    width, height = png_size(out)
    assert (width, height) == (1500, 400)  # 3 panels of 5 x 4 inches at 100 dpi
    assert out.stat().st_size > 20_000  # real image content, not a blank canvas


def test_show_array_draws_two_panels(capsys, tmp_path: Path, excerpt_files: list[Path],
                                     registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    cense = registry.representation("cense")
    levels = io.write_arrays(tmp_path / "lv.h5", {
        "a": api.compute_file(cense, excerpt_files[0]),
        "b": api.compute_file(cense, excerpt_files[1]),
    }, cense)
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "show", "--source", "cense", "--target", "yamnet", levels)
    assert code == 2 and "holds 2 arrays; choose one with --item NAME (a, b)" in err
    code, stdout, _ = run(capsys, "show", "--source", "cense", "--target", "yamnet", levels,
                          "--item", "b")
    assert code == 0 and "Mel MSE" not in stdout
    assert png_size(tmp_path / "lv_cense_to_yamnet.png") == (1000, 400)


def test_show_refuses_a_non_png_output(capsys, tmp_path: Path, excerpt_files: list[Path]) -> None:
    code, _, err = run(capsys, "show", "--source", "cense", "--target", "pann", excerpt_files[0],
                       "-o", tmp_path / "plot.jpg")
    assert code == 2 and "ending in .png" in err
    assert list(tmp_path.iterdir()) == []


def test_band_centres(registry: Registry) -> None:
    cense = plotting.band_centres(registry.representation("cense"))
    np.testing.assert_allclose(cense, 1000 * 10 ** ((np.arange(29) - 17) / 10))
    for name, low, high in (("pann", 50.0, 14_000.0), ("yamnet", 125.0, 7_500.0)):
        mel = plotting.band_centres(registry.representation(name))
        assert mel.shape == (64,) and np.all(np.diff(mel) > 0)
        assert low < mel[0] and mel[-1] < high


def test_plot_comparison_validates_and_writes_atomically(tmp_path: Path, registry: Registry,
                                                         rng: np.random.Generator) -> None:
    cense, pann = registry.representation("cense"), registry.representation("pann")
    levels, mel = rng.normal(size=(8, 29)), rng.normal(size=(101, 64))
    with pytest.raises(InputError, match="true Mel: 63 bands"):
        plotting.plot_comparison(tmp_path / "x.png", levels=levels, source=cense,
                                 transcoded=mel, target=pann, true_mel=mel[:, :63])
    assert list(tmp_path.iterdir()) == []
    path = plotting.plot_comparison(tmp_path / "x.png", levels=levels, source=cense,
                                    transcoded=mel, target=pann, title="t")
    assert png_size(path) == (1000, 400)
