"""``specxform train`` (the module the main CLI wires in): a whole run, resume, and errors."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import attrs
import pytest
from training_helpers import EXCERPT, TinyPlugin, few_clips

import specxform
from specxform import plugins
from specxform.cli import train as train_cli
from specxform.errors import SpecError, WeightsError
from specxform.registry import Registry
from specxform.training.checkpoint import read_checkpoint


def _missing_weights(weights=None):
    raise WeightsError("model.h5 not found at /nowhere/model.h5.")


class _OfflinePlugin:
    """A teacher whose weights are missing, and a target that no teacher consumes."""

    @specxform.hookimpl
    def specxform_add_representations(self, registry: Registry) -> None:
        registry.add_representation(attrs.evolve(registry.representation("pann"),
                                                 name="untaught"))

    @specxform.hookimpl
    def specxform_add_teachers(self, registry: Registry) -> None:
        registry.add_teacher("needs_weights", target="pann", factory=_missing_weights,
                             num_classes=5)


@pytest.fixture
def registry_with_tiny(monkeypatch: pytest.MonkeyPatch, shared_data: Path) -> Registry:
    loaded = plugins.load_plugins(extra=[("tiny", TinyPlugin()), ("offline", _OfflinePlugin())])
    monkeypatch.setattr(plugins, "get_registry", lambda: loaded.registry)
    return loaded.registry


@pytest.fixture
def data(tmp_path: Path, shared_data: Path) -> Path:
    """Six clips of six recordings, as a dataset folder of links."""
    root = tmp_path / "data"
    for clip in few_clips(per_class=1):
        (root / clip.label).mkdir(parents=True, exist_ok=True)
        (root / clip.name).symlink_to(EXCERPT / clip.name)
    return root


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="specxform")
    train_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train", *argv])
    return args.func(args)


def test_train_then_resume_from_the_command_line(registry_with_tiny, data: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]):
    out, cache = tmp_path / "run", tmp_path / "cache"
    argv = ["--source", "cense", "--target", "pann", "--teacher", "tiny", "--data", str(data),
            "--epochs", "1", "--batch-size", "8", "--student-config",
            '{"layers": 2, "channels": 4}', "--out", str(out), "--cache-dir", str(cache),
            "--device", "cpu", "--kl-weight", "0.5"]
    assert _run(argv) == 0
    printed = capsys.readouterr().out
    assert "PINV" in printed and "student (epoch 1)" in printed and "best.pt" in printed
    assert read_checkpoint(out / "best.pt")["description"]["loss"]["kl_weight"] == 0.5
    assert (out / "best.pt").is_file() and len(list(cache.iterdir())) == 1
    longer = [("2" if a == "1" and argv[i - 1] == "--epochs" else a) for i, a in enumerate(argv)]
    assert _run([*longer, "--resume"]) == 0
    with (out / "log.csv").open() as fh:
        assert [row["epoch"] for row in csv.DictReader(fh)] == ["0", "1", "2"]
    assert len(list(cache.iterdir())) == 1  # the second run reused the cache


def test_missing_weights_suggest_the_offline_teacher(registry_with_tiny, data: Path):
    with pytest.raises(WeightsError) as info:
        _run(["--source", "cense", "--target", "pann", "--teacher", "needs_weights",
              "--data", str(data)])
    message = str(info.value)
    assert "model.h5 not found" in message
    assert "--teacher soundaqnet --target soundaqnet" in message


def test_student_config_must_be_a_json_object(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        _run(["--source", "cense", "--target", "pann", "--data", ".", "--student-config", "[4]"])
    assert "a JSON object" in capsys.readouterr().err


def test_teacher_must_exist_and_consume_the_target(registry_with_tiny, data: Path):
    with pytest.raises(SpecError, match="--teacher NAME") as info:
        _run(["--source", "cense", "--target", "untaught", "--data", str(data)])
    assert "soundaqnet" in str(info.value)
    with pytest.raises(SpecError, match="use --target pann"):
        _run(["--source", "cense", "--target", "yamnet", "--teacher", "tiny", "--data",
              str(data)])


def test_the_parser_copies_of_the_choices_match_the_library():
    from specxform.training import losses, trainer

    assert train_cli.METHODS == losses.METHODS
    assert train_cli.PRECISIONS == trainer.PRECISIONS
    assert train_cli.LR_SCHEDULES == trainer.LR_SCHEDULES
