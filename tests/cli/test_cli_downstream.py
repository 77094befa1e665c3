"""``specxform downstream`` on generated datasets in the official layouts, with a tiny teacher:
the evaluation schemes (official folds, official split, grouped K-fold on any dataset), trained
checkpoints, output files, and errors."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from downstream_helpers import (
    TinyTeacher,
    make_esc50,
    make_folder,
    make_sonyc,
    make_urbansound8k,
    make_urbansound8k_fold1,
)
from specxform_builtins.datasets import urbansound8k
from training.training_helpers import TINY_STUDENT

from specxform import plugins
from specxform.cli.main import main
from specxform.registry import Registry
from specxform.training.cache import build_cache
from specxform.training.trainer import TrainConfig, train

FILES = ("downstream.json", "downstream.csv", "downstream.md")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def use_tiny(monkeypatch: pytest.MonkeyPatch, tiny_registry: Registry) -> None:
    monkeypatch.setattr(plugins, "get_registry", lambda: tiny_registry)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("downstream")
    make_urbansound8k(root / "us8k")
    make_sonyc(root / "sonyc")
    make_folder(root / "folder")
    make_urbansound8k_fold1(root / "us8k-fold1")
    make_esc50(root / "esc")
    return root


@pytest.fixture(scope="module")
def checkpoint(data: Path, tiny_registry: Registry) -> Path:
    """A student trained for one epoch on the generated UrbanSound8K (tiny teacher)."""
    dataset = urbansound8k(data / "us8k")
    cache = build_cache(dataset.clips, source=tiny_registry.representation("cense"),
                        target=tiny_registry.representation("pann"), teacher=TinyTeacher(),
                        teacher_name="tiny", root=data / "cache")
    result = train(cache, dataset.split(), TinyTeacher(), out_dir=data / "run",
                   teacher_name="tiny", student_config=TINY_STUDENT,
                   config=TrainConfig(epochs=1, device="cpu"), registry=tiny_registry,
                   tensorboard=False)
    return result.best_checkpoint


def _argv(data: Path, dataset: str, *extra: str, folder: str | None = None) -> list[str]:
    folder = folder or {"urbansound8k": "us8k", "esc50": "esc"}.get(dataset, dataset)
    return ["downstream", "--dataset", dataset, "--data", str(data / folder), "--source",
            "cense", "--target", "pann", "--teacher", "tiny", "--cache-dir",
            str(data / "cache"), "--epochs", "5", "--bootstrap", "50", *extra]


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_urbansound8k_ten_folds_with_a_checkpoint_and_output_files(
        data: Path, checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "out"
    report = _json(capsys, _argv(data, "urbansound8k", "--methods", "true,pinv", "--checkpoint",
                                 f"student={checkpoint}", "-o", str(out), "--json"))
    assert report["metric"] == "accuracy" and "10-fold" in report["scheme"]
    assert report["n_clips"] == 20 and report["classes"] == ["dog_bark", "siren"]
    assert [m["method"] for m in report["methods"]] == ["true", "pinv", "student"]
    for method in report["methods"]:
        assert [f["fold"] for f in method["folds"]] == [f"fold{k}" for k in range(1, 11)]
        assert all(f["n_train"] == 18 and f["n_test"] == 2 for f in method["folds"])
        values = [f["value"] for f in method["folds"]]
        assert method["value"] == pytest.approx(sum(values) / 10)
        assert method["low"] <= method["value"] <= method["high"]
    assert report["written"] == [str(out / name) for name in FILES]
    saved = json.loads((out / "downstream.json").read_text())
    assert saved == {k: v for k, v in report.items() if k != "written"}
    rows = list(csv.DictReader((out / "downstream.csv").open()))
    assert len(rows) == 3 * 11
    summary = [r for r in rows if r["fold"] == "all"]
    assert [r["method"] for r in summary] == ["true", "pinv", "student"]
    assert float(summary[0]["value"]) == pytest.approx(report["methods"][0]["value"])
    text = (out / "downstream.md").read_text()
    assert "| method | score | 95% interval |" in text and "| student |" in text
    assert "fold10" in text


def test_sonyc_macro_auprc_on_the_test_split_as_tables(data: Path,
                                                       capsys: pytest.CaptureFixture[str]):
    assert main(_argv(data, "sonyc", "--methods", "true,nnls", "--validate")) == 0
    out = capsys.readouterr().out
    assert "macro_auprc" in out and "official" in out and "micro_f1" in out
    assert "│ true " in out and "│ nnls " in out
    report = _json(capsys, [*_argv(data, "sonyc", "--validate"), "--json"])
    (fold,) = report["methods"][0]["folds"]
    assert (fold["n_train"], fold["n_valid"], fold["n_test"]) == (12, 2, 4)
    assert report["task"] == "multi" and report["methods"][0]["std"] == 0.0
    assert 0.0 <= report["methods"][0]["value"] <= 1.0


def test_folder_grouped_cross_validation(data: Path, capsys: pytest.CaptureFixture[str]):
    report = _json(capsys, _argv(data, "folder", "--folds", "4", "--seed", "2", "--json",
                                 "--standardise", "--chunk-seconds", "0.5"))
    assert report["scheme"] == "grouped 4-fold cross-validation (seed 2)"
    assert report["chunk_seconds"] == 0.5
    assert report["probe"]["standardise"] and report["probe"]["seed"] == 2
    (true, pinv) = report["methods"]
    assert sum(f["n_test"] for f in true["folds"]) == 16 == report["n_clips"]
    assert [f["n_test"] for f in true["folds"]] == [f["n_test"] for f in pinv["folds"]]


def test_urbansound8k_fold1_by_grouped_five_fold_cross_validation(
        data: Path, capsys: pytest.CaptureFixture[str]):
    argv = _argv(data, "urbansound8k", "--scheme", "grouped", "--folds", "5", "--json",
                 folder="us8k-fold1")
    report = _json(capsys, argv)
    assert "warning" not in capsys.readouterr().err  # the adapter's own split is not used
    assert report["scheme"] == "grouped 5-fold cross-validation (seed 0)"
    assert report["n_clips"] == 20 and report["classes"] == ["dog_bark", "siren"]
    for method in report["methods"]:
        assert [f["n_test"] for f in method["folds"]] == [4] * 5  # 2 recordings x 2 slices
        assert all(f["n_train"] == 16 and f["n_valid"] == 0 for f in method["folds"])
        assert len(method["predictions"]) == 20
        assert set(method["predictions"].values()) <= {"dog_bark", "siren"}
    validated = _json(capsys, [*argv, "--validate"])
    assert all((f["n_train"], f["n_valid"]) == (12, 4) for f in validated["methods"][0]["folds"])


def test_esc50_by_the_folds_present_or_grouped(data: Path, capsys: pytest.CaptureFixture[str]):
    report = _json(capsys, _argv(data, "esc50", "--json"))
    assert report["scheme"] == "esc10 official 4-fold cross-validation"
    assert [f["name"] for f in report["folds"]] == ["fold1", "fold2", "fold3", "fold4"]
    assert all((f["train"], f["test"]) == (9, 3) for f in report["folds"])
    validated = _json(capsys, _argv(data, "esc50", "--json", "--validate"))
    assert all((f["train"], f["valid"], f["test"]) == (6, 3, 3) for f in validated["folds"])
    grouped = _json(capsys, _argv(data, "esc50", "--json", "--scheme", "grouped", "--folds", "2"))
    assert grouped["scheme"] == "grouped 2-fold cross-validation (seed 0)"
    assert sum(f["test"] for f in grouped["folds"]) == 12


@pytest.mark.parametrize(("dataset", "extra", "message"), [
    ("urbansound8k", ["--folds", "5"],
     "--folds 5 sets the folds of grouped cross-validation, but urbansound8k is evaluated by "
     "its official folds; add --scheme grouped"),
    ("folder", ["--scheme", "split"], "dataset 'folder' has no official split; use --scheme "
     "grouped"),
    ("sonyc", ["--scheme", "folds"], "dataset 'sonyc' has no official cross-validation folds"),
    ("folder", ["--scheme", "kfold"], "invalid choice: 'kfold'"),
])
def test_schemes_the_dataset_lacks_are_refused(data: Path, dataset: str, extra: list[str],
                                               message: str,
                                               capsys: pytest.CaptureFixture[str]):
    assert main(_argv(data, dataset, *extra)) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("extra", "message"), [
    (["--methods", "true,pinv2"], r"unknown method\(s\) 'pinv2'.*true, pinv, nnls, ridge"),
    (["--folds", "1"], "--folds must be at least 2, got 1"),
    (["--target", "yamnet"], "teacher 'tiny' consumes 'pann', not 'yamnet'"),
    (["--checkpoint", "x=/nowhere/best.pt"], r"/nowhere/best\.pt: no such checkpoint"),
])
def test_bad_arguments_fail_with_one_line(data: Path, extra: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str]):
    status = main(_argv(data, "folder", *extra))
    err = capsys.readouterr().err
    assert status in (1, 2) and err.startswith("specxform: error:") and err.count("\n") == 1
    assert re.search(message, err), err


def test_checkpoint_must_match_teacher_and_pair(data: Path, checkpoint: Path,
                                                capsys: pytest.CaptureFixture[str]):
    argv = _argv(data, "folder", "--checkpoint", f"s={checkpoint}")
    argv[argv.index("tiny")] = "tiny_aux"
    assert main(argv) == 2
    assert "trained for teacher 'tiny', not 'tiny_aux'" in capsys.readouterr().err
    for bad, message in (("true=x.pt", "'true' is taken"), ("noequals.pt", "is not NAME=CKPT"),
                         ("=x.pt", "is not NAME=CKPT")):
        assert main(_argv(data, "folder", "--checkpoint", bad)) == 2  # argparse's usage error
        assert message in capsys.readouterr().err


def test_output_must_be_a_folder_and_nothing_is_written_on_error(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    taken = tmp_path / "file.txt"
    taken.write_text("keep")
    assert main(_argv(data, "folder", "-o", str(taken))) == 2
    assert "is not a folder" in capsys.readouterr().err and taken.read_text() == "keep"
    out = tmp_path / "out"
    assert main(_argv(data, "folder", "--folds", "9", "-o", str(out))) == 2  # 8 groups
    assert "cannot fill 9 folds" in capsys.readouterr().err and not out.exists()
