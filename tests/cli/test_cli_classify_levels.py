"""``specxform classify --source S --checkpoint CKPT``: level files, no audio.

A tiny student trained for one epoch (levels_helpers.make_checkpoint) against a
tiny teacher registered by a test plugin; the registry is swapped in through
``plugins.get_registry`` (a module-level function, so --jobs workers rebuild it).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import h5py
import matplotlib.image
import numpy as np
import pytest
from levels_helpers import LABELS, LevelTeacher, level_registry, make_checkpoint, sensor_levels

from specxform import plugins
from specxform.cli.main import main
from specxform.levels.classify import AUTO_TARGET_DB
from specxform.levels.reports import LEVEL_CSV_COLUMNS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CENTRES = [1000 * 10 ** ((i - 17) / 10) for i in range(29)]


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.getbasetemp() / "levels-checkpoint"
    best = folder / "run" / "best.pt"
    return best if best.is_file() else make_checkpoint(folder)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "get_registry", level_registry)


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    """A 6.5 s NPY file, and a CSV with ISO times, a 10 s gap and a missing value."""
    folder = tmp_path / "in"
    folder.mkdir()
    np.save(folder / "short.npy", sensor_levels(6.5, seed=1))
    levels = sensor_levels(12, seed=2)
    levels[40, 3] = np.nan
    start = datetime(2024, 5, 1, 8, 0, 0)
    times = [start + timedelta(seconds=0.125 * i + (10.0 if i >= 48 else 0.0))
             for i in range(len(levels))]
    with (folder / "street.csv").open("w") as fh:
        fh.write("time," + ",".join(f"{c:.4g}" for c in CENTRES) + "\n")
        for t, row in zip(times, levels, strict=True):
            cells = ["" if np.isnan(v) else f"{v:.2f}" for v in row]
            fh.write(t.isoformat() + "Z," + ",".join(cells) + "\n")
    return {"short": folder / "short.npy", "street": folder / "street.csv"}


def run(argv: list[Any], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["classify", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def vector(top: list[dict[str, Any]]) -> np.ndarray:
    """Probability vector from a top list that holds every class."""
    out = np.full(len(LABELS), np.nan)
    for entry in top:
        out[entry["index"]] = entry["probability"]
    assert not np.isnan(out).any()
    return out


def test_json_report(registry: None, checkpoint: Path, inputs: dict[str, Path], tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "res.json"
    status, printed, err = run(["--source", "cense", "--checkpoint", checkpoint, "--top", "4",
                                "--json", "-o", out, *inputs.values()], capsys)
    assert status == 0, err
    report = json.loads(printed)
    assert (report["teacher"], report["target"], report["source"], report["kind"]) == (
        "lvl", "pann", "cense", "student")
    assert report["written"] == [str(out)]
    assert json.loads(out.read_text()) == {k: v for k, v in report.items() if k != "written"}
    short, street = report["clips"]["short"], report["clips"]["street"]
    # 52 frames: 6 windows and a 4-frame tail (half a window) padded into a 7th.
    assert [(w["start_s"], w["end_s"]) for w in short["timeline"]] == [
        *((float(i), float(i + 1)) for i in range(6)), (6.0, 6.5)]
    assert short["start_time"] is None and "start_time" not in short["timeline"][0]
    # street: frames 0-39 | missing frame 40 | 41-47 | 10 s gap | 48-95.
    assert (street["n_segments"], street["gaps"], street["missing_frames"]) == (3, 1, 1)
    assert [s["frames"] for s in street["segments"]] == [40, 7, 48]
    assert [s["windows"] for s in street["segments"]] == [5, 1, 6]
    assert street["timeline"][5]["start_s"] == pytest.approx(5.125)
    assert street["timeline"][6]["start_s"] == pytest.approx(16.0)
    assert street["timeline"][6]["start_time"] == "2024-05-01T08:00:16+00:00"
    for clip in (short, street):
        assert clip["db_offset_mode"] == "auto"
        assert clip["db_offset"] == pytest.approx(AUTO_TARGET_DB - clip["broadband_p99_db"])
        windows = np.stack([vector(w["top"]) for w in clip["timeline"]])
        np.testing.assert_allclose(vector(clip["top"]), windows.mean(axis=0), rtol=1e-9)
        for w in clip["timeline"]:
            probs = [e["probability"] for e in w["top"]]
            assert probs == sorted(probs, reverse=True)
            assert [e["label"] for e in w["top"]] == [LABELS[e["index"]] for e in w["top"]]
        assert clip["rtf"] > 0 and clip["windows"] == len(clip["timeline"])


def test_csv_and_tables(registry: None, checkpoint: Path, inputs: dict[str, Path],
                        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "res.csv"
    status, printed, _ = run(["--source", "cense", "--checkpoint", checkpoint, "--top", "2",
                              "--db-offset", "-80", "-o", out, inputs["street"]], capsys)
    assert status == 0
    assert "street" in printed and "top class over time" in printed and f"wrote {out}" in printed
    assert "offset -80.00 dB (given)" in printed and "x real time" in printed
    with out.open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == LEVEL_CSV_COLUMNS
        rows = list(reader)
    assert len(rows) == (1 + 12) * 2
    assert [r["window"] for r in rows[:4]] == ["clip", "clip", "0", "0"]
    assert rows[0]["start_time"] == "2024-05-01T08:00:00+00:00"
    assert {r["segment"] for r in rows[2:]} == {"0", "1", "2"}
    assert all(r["label"] == LABELS[int(r["index"])] for r in rows)


def test_plots(registry: None, checkpoint: Path, inputs: dict[str, Path], tmp_path: Path,
               capsys: pytest.CaptureFixture[str]) -> None:
    plots = tmp_path / "plots"
    status, _, _ = run(["--source", "cense", "--checkpoint", checkpoint, "--plots", plots,
                        *inputs.values()], capsys)
    assert status == 0
    pngs = sorted(plots.glob("*.png"))
    assert [p.stem for p in pngs] == ["short", "street"]
    for png in pngs:  # short: the audio mode's timeline; street (gaps): the heat map
        assert png.read_bytes()[:8] == PNG_MAGIC
        image = matplotlib.image.imread(png)
        assert image.shape[0] > 100 and image.shape[1] > 300 and image[..., :3].std() > 0.05


def test_weights_other_than_trained_against_warn(registry: None, checkpoint: Path,
                                                inputs: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    other = tmp_path / "other.pt"
    torch.save(LevelTeacher(seed=1).state_dict(), other)
    argv = ["--source", "cense", "--checkpoint", checkpoint, "--top", "4", "--json",
            inputs["short"]]
    status, same, err = run(argv, capsys)
    assert status == 0 and err == ""
    status, changed, err = run([*argv, "--weights", other], capsys)
    assert status == 0
    assert err.startswith("specxform: warning: teacher 'lvl' does not have the weights")
    assert err.count("\n") == 1 and "--weights" in err
    assert (json.loads(changed)["clips"]["short"]["top"]
            != json.loads(same)["clips"]["short"]["top"])


# ----------------------------------------------------------------------------- errors


def fails(capsys: pytest.CaptureFixture[str], argv: list[Any], *needles: str,
          code: int = 2) -> None:
    status, out, err = run(argv, capsys)
    assert status == code, err
    assert out == "" and err.startswith("specxform: error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err


@pytest.mark.parametrize(("name", "content", "needles"), [
    ("wide.npy", np.zeros((16, 30), np.float32), ("wide.npy", "30 bands", "--source")),
    ("empty.npy", np.zeros((0, 29), np.float32), ("empty.npy", "no frames")),
    ("nan.npy", np.full((16, 29), np.nan, np.float32), ("nan.npy", "NaN or infinite")),
    ("corrupt.h5", b"\x89HDF\r\n\x1a\n garbage", ("corrupt.h5", "cannot read it as HDF5")),
    ("back.csv", "time," + ",".join(f"{c:.4g}" for c in CENTRES) + "\n"
     + "".join(f"{t}" + ",50" * 29 + "\n" for t in ("0", "0.125", "0.25", "0.125")),
     ("back.csv, line 5", "does not increase", "sort the frames")),
])
def test_bad_level_files_leave_no_output(registry: None, checkpoint: Path,
                                         inputs: dict[str, Path], tmp_path: Path, name: str,
                                         content: Any, needles: tuple[str, ...],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "in" / name
    if isinstance(content, np.ndarray):
        np.save(bad, content)
    elif isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        bad.write_text(content)
    out, plots = tmp_path / "res.csv", tmp_path / "plots"
    fails(capsys, ["--source", "cense", "--checkpoint", checkpoint, "-o", out, "--plots", plots,
                   inputs["short"], bad], *needles)
    assert not out.exists() and not plots.exists()


def test_hdf5_of_another_representation(registry: None, checkpoint: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    slow = level_registry().representation("slow_third_octave")
    with h5py.File(tmp_path / "slow.h5", "w") as h5:
        h5["levels"] = sensor_levels(4)
        h5.attrs["representation"] = json.dumps(slow.to_dict())
    fails(capsys, ["--source", "cense", "--checkpoint", checkpoint, tmp_path / "slow.h5"],
          "holds 'slow_third_octave' levels", "--source slow_third_octave")


@pytest.mark.parametrize(("argv", "needles", "code"), [
    (["--teacher", "lvl", "--checkpoint", "{ckpt}"], ("either --teacher",), 2),
    (["--source", "cense"], ("needs --checkpoint CKPT", "add it"), 2),
    (["--teacher", "lvl", "--db-offset", "3"], ("--db-offset apply to level files",), 2),
    (["--source", "bark", "--checkpoint", "{ckpt}"],
     ("trained on 'cense' levels, but --source is 'bark'", "--source cense"), 2),
    (["--source", "cense", "--checkpoint", "{ckpt}", "--window", "1.1"],
     ("8.8 'cense' frames", "multiple of 0.125 s"), 2),
    (["--source", "cense", "--checkpoint", "{ckpt}", "--plot", "x.png", "{short}", "{street}"],
     ("--plots DIR",), 2),
    (["--source", "cense", "--checkpoint", "{missing}"], ("no such checkpoint",), 2),
])
def test_usage_errors(registry: None, checkpoint: Path, inputs: dict[str, Path], tmp_path: Path,
                      argv: list[str], needles: tuple[str, ...], code: int,
                      capsys: pytest.CaptureFixture[str]) -> None:
    values = {"ckpt": checkpoint, "missing": tmp_path / "none.pt", **inputs}
    argv = [a.format(**values) for a in argv]
    if not any(a.endswith((".npy", ".csv")) for a in argv):
        argv.append(str(inputs["short"]))
    fails(capsys, argv, *needles, code=code)


def test_db_offset_is_auto_or_a_number(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(["--source", "cense", "--checkpoint", "c.pt", "--db-offset", "loud",
                          "x.npy"], capsys)
    assert status == 2 and "neither 'auto' nor a number" in err


@pytest.mark.slow
def test_jobs_give_the_same_results(registry: None, checkpoint: Path, inputs: dict[str, Path],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Two worker processes (spawned, rebuilding the test registry) match one process."""
    reports = []
    for jobs in ("1", "2"):
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            status = main(["classify", "--source", "cense", "--checkpoint", str(checkpoint),
                           "--jobs", jobs, "--top", "4", "--json", *map(str, inputs.values())])
        assert status == 0
        reports.append(json.loads(stdout.getvalue()))
    for name in ("short", "street"):
        one, two = (r["clips"][name] for r in reports)
        assert [w["start_s"] for w in one["timeline"]] == [w["start_s"] for w in two["timeline"]]
        np.testing.assert_allclose(
            np.stack([vector(w["top"]) for w in one["timeline"]]),
            np.stack([vector(w["top"]) for w in two["timeline"]]), rtol=1e-5)
