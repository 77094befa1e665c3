"""The downstream benchmark's summary: per-clip scores on the held-out clips, paired drops, and
its Markdown, on a hand-made report of ``specxform downstream`` (no teacher runs)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from benchmark_helpers import import_benchmark


@pytest.fixture(scope="module")
def table() -> ModuleType:
    return import_benchmark("downstream_table")


LABELS = {"audio/fold1/1-3-0-0.wav": "dog", "audio/fold1/2-3-0-0.wav": "dog",
          "audio/fold1/3-8-0-0.wav": "siren", "audio/fold1/4-8-0-0.wav": "siren"}


def _method(name: str, wrong: int, folds: list[float]) -> dict:
    """Predictions that get the first ``wrong`` clips wrong."""
    flip = {"dog": "siren", "siren": "dog"}
    predictions = {n: flip[c] if i < wrong else c for i, (n, c) in enumerate(LABELS.items())}
    return {"method": name, "value": sum(folds) / len(folds), "low": 0.0, "high": 1.0,
            "std": 0.0, "folds": [{"value": v} for v in folds], "predictions": predictions}


REPORT = {"target": "yamnet", "scheme": "grouped 2-fold cross-validation (seed 0)",
          "n_clips": 4, "classes": ["dog", "siren"], "chunk_seconds": 1.0, "normalise": "peak",
          "probe": {"epochs": 300, "batch_size": 32, "lr": 1e-3, "standardise": True,
                    "seed": 0},
          "command": "specxform downstream ...",
          "methods": [_method("true", 0, [1.0, 1.0]), _method("pinv", 2, [0.5, 0.5]),
                      _method("transcoded", 1, [1.0, 0.5])]}
CKPT = {"path": "runs/best.pt", "copy": Path("/tmp/x.pt"), "epoch": 7, "sha256": "ab" * 32,
        "student": "coarse_texture", "metrics": {},
        "held_out": {"valid": [], "test": ["urbansound8k/1-3-0-0.wav", "esc10/1-3-0-0.wav",
                                           "urbansound8k/3-8-0-0.wav"]}}


def test_held_out_clips_are_matched_by_dataset_prefix_and_file_name(table: ModuleType):
    names = table._held_out_names(REPORT, CKPT, "urbansound8k/", "test")
    assert names == ["audio/fold1/1-3-0-0.wav", "audio/fold1/3-8-0-0.wav"]
    assert table._held_out_names(REPORT, CKPT, "esc10/", "valid") == []


def test_clip_scores_are_accuracies_and_paired_drops_in_points(table: ModuleType):
    scores = table._clip_scores(REPORT, sorted(LABELS), LABELS, n_boot=200, seed=0)
    assert scores["n_clips"] == 4
    assert scores["true"]["value"] == 1.0 and scores["pinv"]["value"] == 0.5
    assert scores["transcoded"]["value"] == 0.75
    assert scores["drop_transcoded"]["value"] == pytest.approx(25.0)  # 1 clip of 4, in points
    assert scores["drop_pinv"]["low"] <= 50.0 <= scores["drop_pinv"]["high"]
    assert table._clip_scores(REPORT, [], LABELS, n_boot=10, seed=0) == {"n_clips": 0}
    # the clips of one recording are resampled together: two recordings, two observations
    groups = {n: "a" if n.split("/")[-1][0] in "12" else "b" for n in LABELS}
    grouped = table._clip_scores(REPORT, sorted(LABELS), LABELS, n_boot=200, seed=0,
                                 groups=groups)
    assert grouped["n_groups"] == 2 and grouped["pinv"]["value"] == 0.5
    assert (grouped["pinv"]["low"], grouped["pinv"]["high"]) == (0.0, 1.0)


def test_markdown_has_one_row_per_run_with_the_drop_and_the_epoch(table: ModuleType,
                                                                  monkeypatch):
    monkeypatch.setattr(table, "_listing", lambda args, dataset: (LABELS, {}))
    args = table.parse_args(["--bootstrap", "100"])
    row = table.summarise(args, "urbansound8k", "yamnet", REPORT, CKPT, 12.0)
    assert row["drop_transcoded"]["value"] == pytest.approx(25.0)  # folds: 0 and 50 points
    assert not row["goal_met"] and row["held_out_test"]["n_clips"] == 2
    report = {"rows": [row], "machine": {"cpu": "cpu", "cores": 2, "torch": "2",
                                         "load_average_1min": 1.0},
              "torch_threads": 1, "load_average_end": 1.0, "date": "today"}
    text = table.markdown(report)  # intervals of the three methods: the report's own
    assert ("| urbansound8k | yamnet | grouped 2-fold cross-validation (seed 0) | 4 | "
            "100.0 [0.0, 100.0] | 50.0 [0.0, 100.0] | 75.0 [0.0, 100.0] | +25.0") in text
    assert "| not met by 10.0 points | 7 |" in text and "epoch 7" in text


def test_rerun_rows_replace_their_own_and_keep_the_others_in_order(table: ModuleType):
    old = [{"dataset": d, "teacher": t, "v": 0} for t in ("yamnet", "mn04")
           for d in ("urbansound8k", "esc10")]
    new = [{"dataset": "esc10", "teacher": "mn04", "v": 1},
           {"dataset": "urbansound8k", "teacher": "mn04", "v": 1},
           {"dataset": "esc50", "teacher": "mn04", "v": 1}]
    merged = table.merge_rows(old, new)
    assert [(r["dataset"], r["teacher"], r["v"]) for r in merged] == [
        ("urbansound8k", "yamnet", 0), ("esc10", "yamnet", 0), ("urbansound8k", "mn04", 1),
        ("esc10", "mn04", 1), ("esc50", "mn04", 1)]
