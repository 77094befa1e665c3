"""``specxform evaluate``: one table for every method on the same files, outputs, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from specxform_builtins.datasets import folder
from training.training_helpers import EXCERPT, TINY_STUDENT, TinyTeacher, few_clips

from specxform import plugins
from specxform.cli.main import main
from specxform.evaluation import figures as evaluation_figures
from specxform.registry import Registry
from specxform.training import trainer
from specxform.training.cache import build_cache

BASE = ["evaluate", "--source", "cense", "--target", "pann", "--teacher", "tiny",
        "--bootstrap", "50", "--device", "cpu"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def use_tiny(monkeypatch: pytest.MonkeyPatch, tiny_registry: Registry) -> None:
    monkeypatch.setattr(plugins, "get_registry", lambda: tiny_registry)


@pytest.fixture(scope="module")
def setup(shared_data: Path, tiny_registry: Registry,
          tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A dataset folder (links to 12 real clips), its cache, a one-epoch student on its split."""
    root = tmp_path_factory.mktemp("evaluate")
    data = root / "data"
    for clip in few_clips(per_class=2):
        (data / clip.name).parent.mkdir(parents=True, exist_ok=True)
        (data / clip.name).symlink_to(EXCERPT / clip.name)
    dataset = folder(data)
    cache = build_cache(dataset.clips, source=tiny_registry.representation("cense"),
                        target=tiny_registry.representation("pann"), teacher=TinyTeacher(),
                        teacher_name="tiny", root=root / "cache")
    run = trainer.train(cache, dataset.split(seed=0), TinyTeacher(), out_dir=root / "run",
                        teacher_name="tiny", student_config=TINY_STUDENT,
                        config=trainer.TrainConfig(epochs=1, batch_size=8),
                        tensorboard=False, registry=tiny_registry)
    return {"data": data, "cache": root / "cache", "checkpoint": run.best_checkpoint}


def _argv(setup: dict[str, Path], *extra: str) -> list[str]:
    return [*BASE, "--data", str(setup["data"]), "--cache-dir", str(setup["cache"]), *extra]


def test_one_table_for_every_method_on_the_same_test_files(setup, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "out"
    argv = _argv(setup, "--methods", "pinv,cnn,nnls", "--checkpoint",
                 f"cnn={setup['checkpoint']}", "--examples", "2", "-o", str(out), "--json")
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["methods"]) == ["pinv", "cnn", "nnls"]
    split = folder(setup["data"]).split(seed=0)
    test = {c.name for c in split.test}
    assert set(report["files"]) <= test and report["n_clips"] == len(test)
    # the intervals resample the recordings the files come from, not the files
    groups = {c.name: c.group for c in split.test}
    assert report["n_groups"] == len({groups[f] for f in report["files"]}) < report["n_files"]
    for method in report["methods"].values():
        assert (method["n_files"], method["n_chunks"]) == (report["n_files"], report["n_chunks"])
        assert method["overlap"] == 0
        assert {"ptopa_fc", "kl", "kl_reference", "mel_mse", "bce", "top3"} <= set(
            method["metrics"])
    assert report["methods"]["cnn"]["checkpoint"] == str(setup["checkpoint"])
    assert len(list(setup["cache"].iterdir())) == 1  # the training cache was reused
    written = report.pop("written")
    assert sorted(Path(p).name for p in written) == sorted(p.name for p in out.iterdir()) == [
        "example-1.png", "example-2.png", "per-class.png", "results.csv", "results.json",
        "results.md"]
    assert json.loads((out / "results.json").read_text()) == report
    with (out / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["method"], r["metric"]) for r in rows} == {
        (m, k) for m, v in report["methods"].items() for k in v["metrics"]}
    pinv_fc = next(r for r in rows if (r["method"], r["metric"]) == ("pinv", "ptopa_fc"))
    assert float(pinv_fc["value"]) == report["methods"]["pinv"]["metrics"]["ptopa_fc"]["value"]
    text = (out / "results.md").read_text()
    assert all(f"| {m} |" in text for m in report["methods"]) and "Per-class" in text
    assert f"intervals over the files' {report['n_groups']} source recordings (groups)" in text


def test_terminal_table_and_the_overlap_warning(setup, capsys: pytest.CaptureFixture[str]):
    argv = _argv(setup, "--split", "all", "--checkpoint", f"cnn={setup['checkpoint']}")
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert all(word in captured.out for word in ("PtoPa-FC", "reference KL", "pinv", "nnls",
                                                  "cnn", "Mel MSE"))
    assert "warning: cnn was trained or validated on" in captured.err
    assert "pinv was trained" not in captured.err


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str], status: int) -> str:
    assert main(argv) == status
    captured = capsys.readouterr()
    assert captured.out == ""
    return " ".join(captured.err.split())


def test_a_method_without_checkpoint_names_the_option(setup, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "out"
    err = _fails(_argv(setup, "--methods", "pinv,cnn-logits,foo", "-o", str(out)), capsys, 2)
    assert "'cnn-logits', 'foo'" in err and "--checkpoint cnn-logits=CKPT" in err
    assert not out.exists()
    err = _fails(_argv(setup, "--checkpoint", "pinv=x.pt"), capsys, 2)
    assert "built-in method" in err
    err = _fails(_argv(setup, "--checkpoint", "nothing"), capsys, 2)
    assert "is not NAME=CKPT" in err


def test_a_mismatched_checkpoint_is_refused(setup, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]):
    data = torch.load(setup["checkpoint"], weights_only=True)
    data["description"]["teacher"]["name"] = "other"
    edited = tmp_path / "other.pt"
    torch.save(data, edited)
    out = tmp_path / "out"
    err = _fails(_argv(setup, "--checkpoint", f"cnn={edited}", "-o", str(out)), capsys, 2)
    assert "trained for teacher 'other', not 'tiny'" in err and str(edited) in err
    assert not out.exists()


def test_outputs_are_all_or_nothing(setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("old")

    def broken(path, *args, **kwargs):
        raise PermissionError(f"{path}: disk says no")

    monkeypatch.setattr(evaluation_figures, "plot_per_class", broken)
    err = _fails(_argv(setup, "-o", str(out)), capsys, 2)
    assert "disk says no" in err
    assert [p.name for p in out.iterdir()] == ["results.json"]
    assert (out / "results.json").read_text() == "old"
    fresh = tmp_path / "fresh"
    _fails(_argv(setup, "-o", str(fresh)), capsys, 2)
    assert not fresh.exists()


def test_few_files_get_a_warning(setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Issue 12, item 19: one file gave intervals like [100.0, 100.0] without a word."""
    one = tmp_path / "one"
    clip = sorted(setup["data"].rglob("*.wav"))[0]
    (one / clip.parent.name).mkdir(parents=True)
    (one / clip.parent.name / clip.name).symlink_to(clip.resolve())
    argv = [*BASE, "--data", str(one), "--cache-dir", str(tmp_path / "cache"), "--split", "all"]
    assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["n_files"] == 1
    assert "only 1 file" in captured.err and "at least 10" in captured.err, captured.err
    assert any("only 1 file" in w for w in report["warnings"])
    assert main(argv) == 0  # the table says it too
    captured = capsys.readouterr()
    assert "only 1 file" in captured.err and "only 1 file" in captured.out
    assert main(_argv(setup, "--split", "all", "--json")) == 0  # 12 files: no warning
    captured = capsys.readouterr()
    assert "only" not in captured.err and json.loads(captured.out)["warnings"] == []
