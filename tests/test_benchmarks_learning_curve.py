"""The learning-curve benchmark on hand-made run folders: points, the log-data fit, the output."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
from benchmark_helpers import import_benchmark


@pytest.fixture(scope="module")
def curve() -> ModuleType:
    return import_benchmark("learning_curve")


def _run(folder: Path, clips: int, ptopa: list[float], *, pair: str = "cense-efficientat",
         best: int | None = None) -> Path:
    """A run folder as train_table2.py writes it: summary.json and log.csv."""
    folder.mkdir(parents=True)
    best = best or len(ptopa)
    rows = ["epoch,train_loss,valid_loss,valid_mel_mse,valid_kl,valid_top1,valid_ptopa_fc,"
            "seconds,chunks_per_s", "0,,0.02,0.1,2.5,0.1,0.1,,"]
    rows += [f"{e},0.01,0.015,0.3,1.5,{p},{p},30,25" for e, p in enumerate(ptopa, 1)]
    (folder / "log.csv").write_text("\n".join(rows) + "\n")
    summary = {"pair": pair, "student": "coarse_texture", "train_fraction": clips / 896,
               "train_clips": clips, "valid_clips": 147, "epochs": len(ptopa),
               "best_epoch": best, "train_seconds": 30.0 * len(ptopa),
               "best_valid": {"valid_ptopa_fc": ptopa[best - 1], "valid_kl": 1.5}}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_fit_recovers_the_gain_per_doubling_and_the_data_for_the_goal(curve, tmp_path: Path):
    # 10 points at 100 clips, +5 points per doubling: 89 % needs 2 ** (79 / 5) times 100 clips.
    runs = [_run(tmp_path / str(n), n, [0.1 + 0.05 * k] * 6) for k, n in enumerate((100, 200, 400))]
    report = curve.learning_curve(list(reversed(runs)), goal=0.89)
    assert [p["train_clips"] for p in report["points"]] == [100, 200, 400]
    for key in ("best", "late"):
        fit = report["fits"][key]
        assert fit["per_doubling"] == pytest.approx(0.05)
        assert fit["rms_residual"] == pytest.approx(0, abs=1e-9)
        assert fit["clips_for_goal"] == pytest.approx(100 * 2 ** (0.79 / 0.05))
        assert fit["doublings_over_largest"] == pytest.approx(0.79 / 0.05 - 2)
    assert report["fits"]["best"]["per_doubling"] == pytest.approx(0.05)
    assert report["kl_fit"]["per_doubling"] == pytest.approx(0, abs=1e-9)  # 1.5 in every run
    assert "clips_for_goal" not in report["kl_fit"]


def test_late_epochs_average_the_last_five_and_best_is_the_checkpoint_epoch(curve, tmp_path):
    point = curve.read_run(_run(tmp_path / "r", 100, [0.1, 0.9, 0.2, 0.3, 0.2, 0.3, 0.5], best=2))
    assert point["best_ptopa_fc"] == 0.9
    assert point["late_ptopa_fc"] == pytest.approx((0.2 + 0.3 + 0.2 + 0.3 + 0.5) / 5)


def test_no_gain_with_data_says_never(curve, tmp_path: Path):
    runs = [_run(tmp_path / str(n), n, [0.3] * 5) for n in (100, 400)]
    fit = curve.learning_curve(runs, goal=0.89)["fits"]["late"]
    assert fit["clips_for_goal"] is None
    assert "never" in curve.markdown(curve.learning_curve(runs, goal=0.89))


@pytest.mark.parametrize("problem", ["one size", "two pairs"])
def test_runs_that_do_not_make_a_curve_are_refused(curve, tmp_path: Path, problem: str):
    other = {"one size": {}, "two pairs": {"pair": "cense-yamnet"}}[problem]
    runs = [_run(tmp_path / "a", 100, [0.3] * 5),
            _run(tmp_path / "b", 100 if problem == "one size" else 200, [0.4] * 5, **other)]
    with pytest.raises(SystemExit, match=r"at least two different|differ in pair"):
        curve.learning_curve(runs, goal=0.89)


def test_command_writes_json_markdown_and_png(curve, tmp_path: Path):
    runs = [_run(tmp_path / str(n), n, [0.1 + 0.05 * k] * 6) for k, n in enumerate((100, 200))]
    out = tmp_path / "results" / "curve"
    assert curve.main([*map(str, runs), "--output", str(out)]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["fits"]["best"]["per_doubling"] == pytest.approx(0.05)
    text = out.with_suffix(".md").read_text()
    assert "+5.0 points" in text and "| 100 |" in text
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
