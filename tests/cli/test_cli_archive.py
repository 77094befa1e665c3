"""``specxform archive convert|info`` and ``specxform classify-archive``.

The tiny checkpoint and test teacher of the level tests; ``--workers 0`` (the
in-process loop) keeps these fast: tests/test_archive.py runs the Dask engines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed", reason="the archive extra is not installed")
pytest.importorskip("pyarrow", reason="the archive extra is not installed")
pytest.importorskip("zarr", reason="the archive extra is not installed")

import matplotlib.image
from archive_helpers import checkpoint_for, csv_tree
from levels_helpers import level_registry

from specxform import plugins
from specxform.cli.main import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return checkpoint_for(tmp_path_factory)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "get_registry", level_registry)


def run(argv: list[Any], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_convert_info_classify_and_resume(registry: None, checkpoint: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    tree = csv_tree(tmp_path / "csv", {"north": 2, "south": 1}, minutes=1.0)
    store = tmp_path / "net.zarr"
    status, out, err = run(["archive", "convert", tree, "-o", store, "--source", "cense",
                            "--chunk-seconds", "60", "--json"], capsys)
    assert status == 0, err
    converted = json.loads(out)
    assert converted["chunk_frames"] == 480 and converted["sensors"]["north"]["frames"] == 960
    status, out, _ = run(["archive", "info", store, "--source", "cense", "--json"], capsys)
    info = json.loads(out)
    assert info["kind"] == "zarr" and info["sensors"]["north"]["chunks"] == 2
    assert info["sensors"]["south"] == {"chunks": 1, "start": "2024-05-01T22:00:00+00:00",
                                        "end": "2024-05-01T22:01:00+00:00"}
    results, plots = tmp_path / "out", tmp_path / "plots"
    argv = ["classify-archive", store, "--checkpoint", checkpoint, "-o", results,
            "--workers", "0", "--top", "2", "--plots", plots]
    status, out, err = run([*argv, "--json"], capsys)
    assert status == 0, err
    summary = json.loads(out)
    assert (summary["computed"], summary["skipped"], summary["failed"]) == (3, 0, 0)
    assert summary["windows"] == 180 and summary["complete"] and summary["failures"] == []
    assert summary["archive"]["source"] == "cense"  # the checkpoint's source by default
    for sensor in ("north", "south"):
        png = plots / f"{sensor}.png"
        assert str(png) in summary["written"] and png.read_bytes()[:8] == PNG_MAGIC
        assert matplotlib.image.imread(png).shape[1] > 300
    status, out, err = run(argv, capsys)
    assert status == 0, err
    assert "0 processed now, 3 done before, 0 unreadable" in out and "180 windows" in out


def test_unreadable_file_is_reported(registry: None, checkpoint: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    tree = csv_tree(tmp_path / "csv", {"north": 1}, minutes=0.5)
    (tree / "north" / "broken.csv").write_text("time,1,2\n0,3,4\n")
    status, out, err = run(["classify-archive", tree, "--checkpoint", checkpoint, "-o",
                            tmp_path / "out", "--workers", "0"], capsys)
    assert status == 0
    assert "1 chunk(s) could not be read" in err and "failures.parquet" in err
    assert "unreadable chunks" in out and "north/broken.csv" in out and "band columns" in out


@pytest.mark.parametrize(("argv", "needles"), [
    (["classify-archive", "{missing}", "--checkpoint", "{ckpt}", "-o", "{out}"],
     ("no such archive",)),
    (["classify-archive", "{csv}", "--checkpoint", "{ckpt}", "-o", "{out}", "--window", "1.1"],
     ("multiple of 0.125 s",)),
    (["archive", "convert", "{csv}", "-o", "{csv}", "--source", "cense"], ("exists",)),
    (["archive", "info", "{csv}", "--source", "pann"], ("not a source",)),
])
def test_usage_errors(registry: None, checkpoint: Path, tmp_path: Path, argv: list[str],
                      needles: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    tree = csv_tree(tmp_path / "csv", {"north": 1}, minutes=0.25)
    values = {"missing": tmp_path / "none", "ckpt": checkpoint, "out": tmp_path / "out",
              "csv": tree}
    status, out, err = run([a.format(**values) for a in argv], capsys)
    assert status == 2 and out == "" and err.startswith("specxform: error: "), err
    for needle in needles:
        assert needle in err, err


def test_threshold_must_be_a_probability(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(["classify-archive", "a", "--checkpoint", "c", "-o", "o",
                          "--threshold", "2"], capsys)
    assert status == 2 and "must be in (0, 1]" in err
