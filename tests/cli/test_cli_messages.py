"""Messages that name the real culprit, and one exit-status rule over the commands.

Issue 12: item 9 (levels of 1e30 dB blamed on the output file), item 10 (NaN
weights blamed on the input or on --db-offset), item 13 (names checked before
any work), item 14 (exit status 2 for usage and bad input, 1 for runtime
failures) item 16 (`show` on a folder) and item 17 (what `transcode --checkpoint`
reports).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from levels_helpers import level_registry, make_checkpoint, sensor_levels

import specxform
from specxform import io, plugins
from specxform.cli.main import main
from specxform.errors import WeightsError
from specxform.registry import Registry


def run(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def fails(capsys: pytest.CaptureFixture[str], argv: list[Any], code: int, *needles: str,
          absent: tuple[str, ...] = ()) -> str:
    status, out, err = run(capsys, *argv)
    assert status == code, err
    assert out == "" and err.startswith("specxform: error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err
    for needle in absent:
        assert needle not in err, err
    return err


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.getbasetemp() / "levels-checkpoint"
    best = folder / "run" / "best.pt"
    return best if best.is_file() else make_checkpoint(folder)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "get_registry", level_registry)


@pytest.fixture
def nan_checkpoint(checkpoint: Path, tmp_path: Path) -> Path:
    """The tiny checkpoint with one student weight set to NaN (a diverged run)."""
    data = torch.load(checkpoint, weights_only=True)
    name = next(k for k, v in data["state_dict"].items() if v.is_floating_point())
    data["state_dict"][name] = torch.full_like(data["state_dict"][name], float("nan"))
    path = tmp_path / "diverged.pt"
    torch.save(data, path)
    return path


@pytest.fixture
def levels(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "levels.npy"
    path.parent.mkdir()
    np.save(path, sensor_levels(2) - 90)
    return path


# ----------------------------------------------------------------------------- items 9, 10


def test_overflowing_levels_blame_the_input(capsys, tmp_path: Path) -> None:
    path = tmp_path / "in" / "huge.npy"
    path.parent.mkdir()
    np.save(path, np.full((16, 29), 1e30, np.float32))
    fails(capsys, ["transcode", "--source", "cense", "--target", "pann", path,
                   "-o", tmp_path / "out.npy"], 2, "huge.npy", "overflow", "1e+30", "dB",
          absent=("out.npy",))
    assert not (tmp_path / "out.npy").exists()


def test_nan_weights_name_the_checkpoint(registry: None, capsys, tmp_path: Path,
                                         nan_checkpoint: Path, levels: Path) -> None:
    for argv in (["transcode", "--checkpoint", nan_checkpoint, levels, "-o", tmp_path / "o.npy"],
                 ["classify", "--checkpoint", nan_checkpoint, levels]):
        fails(capsys, argv, 2, "diverged.pt", "NaN", "weights",
              absent=("--db-offset", "levels.npy", "o.npy"))


# ----------------------------------------------------------------------------- item 16


def test_show_on_a_folder_asks_for_one_file(capsys, tmp_path: Path, levels: Path) -> None:
    np.save(levels.parent / "other.npy", sensor_levels(2))
    fails(capsys, ["show", "--source", "cense", "--target", "pann", levels.parent,
                   "-o", tmp_path / "x.png"], 2, str(levels.parent), "2 files", "levels.npy")


# ----------------------------------------------------------------------------- item 13


@pytest.fixture
def data(tmp_path: Path, excerpt_files: list[Path]) -> Path:
    root = tmp_path / "data"
    for clip in excerpt_files[:2]:
        (root / clip.parent.name).mkdir(parents=True, exist_ok=True)
        (root / clip.parent.name / clip.name).symlink_to(clip)
    return root


class _CountingPlugin:
    """A teacher whose factory counts its calls: names must be checked before it is built."""

    built = 0

    @specxform.hookimpl
    def specxform_add_teachers(self, registry: Registry) -> None:
        def factory(weights: Path | None = None) -> Any:
            _CountingPlugin.built += 1
            raise WeightsError("not needed by this test")

        registry.add_teacher("counting", target="pann", factory=factory, num_classes=5)


@pytest.mark.parametrize(("extra", "needles"), [
    (["--student", "residual_cnnn"], ("unknown student 'residual_cnnn'", "'residual_cnn'")),
    (["--student-config", '{"chanels": 8}'], ("--student-config", "chanels")),
    (["--retrain-teacher", "--student", "residual_cnn"], ("--retrain-teacher", "--student")),
    (["--dataset", "foldr"], ("unknown dataset 'foldr'",)),
    (["--kl-weight", "-1"], ("--kl-weight -1.0", ">= 0")),
    (["--kl-weight", "nan"], ("--kl-weight nan", ">= 0")),
    (["--balance", "2"], ("--balance 2.0", "[0, 1]")),
])
def test_train_checks_names_before_any_work(capsys, tmp_path: Path, data: Path,
                                            monkeypatch: pytest.MonkeyPatch, extra: list[str],
                                            needles: tuple[str, ...]) -> None:
    loaded = plugins.load_plugins(extra=[("counting", _CountingPlugin())])
    monkeypatch.setattr(plugins, "get_registry", lambda: loaded.registry)
    _CountingPlugin.built = 0
    fails(capsys, ["train", "--source", "cense", "--target", "pann", "--teacher", "counting",
                   "--data", data, "--cache-dir", tmp_path / "cache", "--out", tmp_path / "run",
                   *extra], 2, *needles)
    assert _CountingPlugin.built == 0 and not (tmp_path / "cache").exists()


# ----------------------------------------------------------------------------- item 14


def test_exit_status_2_for_bad_input_over_the_commands(registry: None, capsys, tmp_path: Path,
                                                       checkpoint: Path, levels: Path,
                                                       data: Path) -> None:
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    cases: list[tuple[list[Any], str]] = [
        (["features", "--rep", "cens", levels, "-o", tmp_path / "o"], "unknown"),
        (["transcode", "--checkpoint", broken, levels, "-o", tmp_path / "o"], "broken.pt"),
        (["transcode", "--checkpoint", tmp_path / "none.pt", levels, "-o", tmp_path / "o"],
         "none.pt"),
        (["show", "--source", "cense", "--target", "pann", tmp_path / "nowhere.npy"], "nowhere"),
        (["classify", "--checkpoint", broken, levels], "broken.pt"),
        (["classify", "--source", "bark", "--checkpoint", checkpoint, levels], "'bark'"),
        (["classify", "--teacher", "lvl", "--weights", tmp_path / "no.pth", data],
         "no.pth"),
        (["evaluate", "--source", "cense", "--target", "pann", "--teacher", "lvl",
          "--data", data, "--split", "all", "--checkpoint", f"x={broken}",
          "--cache-dir", tmp_path / "c"],
         "broken.pt"),
        (["train", "--source", "cense", "--target", "pann", "--teacher", "lvl",
          "--data", tmp_path / "no-data"], "no-data"),
    ]
    for argv, needle in cases:
        fails(capsys, argv, 2, needle)
    assert not (tmp_path / "c").exists()  # evaluate refused the checkpoint before caching


def test_exit_status_1_for_runtime_failures(capsys, tmp_path: Path, levels: Path) -> None:
    out = tmp_path / "busy"
    with io.output_lock(out, folder=True):
        fails(capsys, ["transcode", "--source", "cense", "--target", "pann", levels,
                       "-o", out], 1, "another specxform run")


def test_docs_state_the_rule() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    assert "### Exit status" in text
    for line in ("| 0 |", "| 1 |", "| 2 |", "| 130 |"):
        assert line in text


# ----------------------------------------------------------------------------- item 17


def test_transcode_with_a_checkpoint_says_what_was_applied(capsys, tmp_path: Path,
                                                           checkpoint: Path,
                                                           levels: Path) -> None:
    status, out, err = run(capsys, "transcode", "--checkpoint", checkpoint, levels,
                           "-o", tmp_path / "a.npy", "--json")
    assert status == 0, err
    report = json.loads(out)
    assert report["checkpoint"] == str(checkpoint) and report["student"] == "residual_cnn"
    assert report["method"] == "checkpoint" and report["pinv_method"] == "pinv"
    status, out, err = run(capsys, "transcode", "--checkpoint", checkpoint, levels,
                           "-o", tmp_path / "b.npy")
    assert status == 0, err
    assert f"checkpoint {checkpoint}" in out and "student residual_cnn" in out, out
    assert "method pinv" not in out
    fails(capsys, ["transcode", "--checkpoint", checkpoint, "--method", "nnls", levels,
                   "-o", tmp_path / "c.npy"], 2, "--method", "checkpoint")
    status, out, err = run(capsys, "transcode", "--source", "cense", "--target", "pann", levels,
                           "-o", tmp_path / "d.npy", "--json")
    assert status == 0 and json.loads(out)["method"] == "pinv"
    assert json.loads(out)["checkpoint"] is None
