"""Output that goes to a pipe or a log file: not wrapped at 80 columns, one line per epoch.

Issue 12, item 20: rich tables wrapped at 80 columns when piped, cutting names;
the training progress bar was cut ("0:0..."); training printed nothing per
epoch when not on a terminal.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from training.training_helpers import EXCERPT, TinyPlugin, few_clips

from specxform import plugins
from specxform.cli.main import main


def test_tables_are_not_wrapped_when_piped(capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch, registry) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # a width set by the caller's shell wins
    assert main(["list", "representations"]) == 0
    out = capsys.readouterr().out
    assert "…" not in out  # no cut cell
    for rep in registry.representations():
        line = next(ln for ln in out.splitlines() if re.search(rf"\b{rep.name}\b", ln))
        assert rep.description[:40] in line, line  # a whole row on one line


@pytest.fixture
def data(tmp_path: Path, shared_data: Path) -> Path:
    root = tmp_path / "data"
    for clip in few_clips(per_class=1):
        (root / clip.label).mkdir(parents=True, exist_ok=True)
        (root / clip.name).symlink_to(EXCERPT / clip.name)
    return root


def test_training_logs_one_line_per_epoch_when_not_on_a_terminal(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, data: Path,
        tmp_path: Path, one_torch_thread: None) -> None:
    loaded = plugins.load_plugins(extra=[("tiny", TinyPlugin())])
    monkeypatch.setattr(plugins, "get_registry", lambda: loaded.registry)
    argv = ["train", "--source", "cense", "--target", "pann", "--teacher", "tiny",
            "--data", str(data), "--epochs", "2", "--batch-size", "8", "--student-config",
            '{"layers": 2, "channels": 4}', "--out", str(tmp_path / "run"),
            "--cache-dir", str(tmp_path / "cache"), "--device", "cpu", "--no-tensorboard",
            "--lr-schedule", "cosine"]
    assert main(argv) == 0
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert saved["description"]["train"]["lr_schedule"] == "cosine"
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("specxform: epoch")]
    assert [ln.split(":")[1].split()[1] for ln in lines] == ["0/2", "1/2", "2/2"], err
    assert "PINV" in lines[0] and "valid loss" in lines[1] and "train loss" in lines[1]
    assert "0:0" not in err and "━" not in err  # no progress bar in a log
