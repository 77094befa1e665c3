"""specxform.levels.reports from Python: records, files, plots and runs of classified levels,
and the progress events of the level pipeline (specxform.progress)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from levels_helpers import level_registry, make_checkpoint, sensor_levels

from specxform.levels.classify import (
    LevelModel,
    LevelResult,
    LevelSettings,
    classify_level_files,
    load_level_model,
)
from specxform.levels.reports import (
    LEVEL_CSV_COLUMNS,
    duration_text,
    json_chunks,
    level_report,
    top_runs,
    write_outputs,
)
from specxform.progress import ProgressEvent


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> LevelModel:
    folder = tmp_path_factory.getbasetemp() / "levels-checkpoint"
    best = folder / "run" / "best.pt"
    checkpoint = best if best.is_file() else make_checkpoint(folder)
    torch.set_num_threads(1)
    return load_level_model(checkpoint, "cense", registry=level_registry())


@pytest.fixture(scope="module")
def classified(model: LevelModel, tmp_path_factory: pytest.TempPathFactory
               ) -> tuple[dict[str, LevelResult], list[ProgressEvent]]:
    folder = tmp_path_factory.mktemp("reports")
    np.save(folder / "a.npy", sensor_levels(6, seed=1))
    np.save(folder / "b.npy", sensor_levels(3, seed=2))
    events: list[ProgressEvent] = []
    results = classify_level_files(model, [(folder / "a.npy", "a"), (folder / "b.npy", "b")],
                                   LevelSettings(), folder, progress=events.append)
    return results, events


def test_the_pipeline_reports_each_file_and_the_whole(classified) -> None:
    _, events = classified
    overall = [e for e in events if e.task == "classifying 2 level file(s)"]
    assert [(e.done, e.total) for e in overall] == [(0, 2), (1, 2), (2, 2)]
    for name in ("a", "b"):
        mine = [e for e in events if e.task == f"classifying {name}"]
        assert mine and mine[-1].finished
        assert [e.done for e in mine] == sorted(e.done for e in mine)


def test_the_report_and_its_streamed_json(model: LevelModel, classified) -> None:
    results, _ = classified
    report = level_report(model, results, 1.5, k=3, window_s=1.0)
    assert (report["k"], report["window_s"], list(report["clips"])) == (3, 1.0, ["a", "b"])
    parsed = json.loads("".join(json_chunks(report)))
    assert len(parsed["clips"]["a"]["timeline"]) == results["a"].windows
    assert all(len(w["top"]) == 3 for w in parsed["clips"]["b"]["timeline"])


def test_write_outputs_writes_the_csv_and_one_plot_per_file(model: LevelModel, classified,
                                                            tmp_path: Path) -> None:
    results, _ = classified
    written = write_outputs(model, results, 1.0, k=2, window_s=1.0,
                            output=tmp_path / "r.csv", plots=tmp_path / "plots")
    assert written == [str(tmp_path / "r.csv"), str(tmp_path / "plots" / "a.png"),
                       str(tmp_path / "plots" / "b.png")]
    with (tmp_path / "r.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == LEVEL_CSV_COLUMNS
    windows = sum(r.windows for r in results.values())
    assert len(rows) == 2 * (windows + len(results))  # k rows per window and per file


def test_runs_cover_every_window_once(classified) -> None:
    results, _ = classified
    runs, count = top_runs(results["a"], tuple(f"c{i}" for i in range(100)))
    assert count == len(runs) and sum(n for _, _, _, n, _ in runs) == results["a"].windows
    assert (duration_text(30), duration_text(600), duration_text(9000)) == (
        "30.0 s", "10.0 min", "2.50 h")
