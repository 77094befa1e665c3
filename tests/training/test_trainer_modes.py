"""The retrained-teacher baseline, mixed precision and TensorBoard logs of the trainer."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from training_helpers import TINY_STUDENT, TinyPlugin, TinyTeacher

from specxform.datasets import Split
from specxform.errors import CheckpointError, SpecError
from specxform.plugins import load_plugins
from specxform.registry import Registry
from specxform.training import checkpoint, trainer
from specxform.training.cache import FeatureCache, teacher_digest
from specxform.training.losses import LossConfig
from specxform.transcoders.pinv import PinvTranscoder
from specxform.transcoders.students import Transcoder

SMALL = trainer.TrainConfig(epochs=2, batch_size=4)


@pytest.fixture(scope="module")
def retrained(tiny_cache: FeatureCache, split: Split, tmp_path_factory: pytest.TempPathFactory):
    teacher = TinyTeacher()
    before = teacher_digest(teacher)
    result = trainer.train(tiny_cache, split, teacher, out_dir=tmp_path_factory.mktemp("rt"),
                           teacher_name="tiny", config=SMALL,
                           retrain_teacher=True)
    assert teacher_digest(teacher) == before, "the frozen teacher itself must not change"
    return result


def _tiny_registry() -> Registry:
    """The installed plugins plus the tiny test teachers."""
    return load_plugins(extra=[("tiny", TinyPlugin())]).registry


def test_retrained_teacher_learns_from_the_pinv_mel(retrained: trainer.TrainResult,
                                                    tiny_cache: FeatureCache, split: Split):
    model = checkpoint.load_model(retrained.out_dir, registry=_tiny_registry())
    assert model.kind == "retrained" and isinstance(model.transcoder, PinvTranscoder)
    assert isinstance(model.classifier, TinyTeacher) and not model.classifier.training
    assert teacher_digest(model.classifier) != teacher_digest(TinyTeacher())
    # on the chunks it was fine-tuned on, it beats the frozen teacher on PINV input
    train_rows = tiny_cache.rows([c.name for c in split.train])
    tuned = trainer.evaluate(model.transcoder, tiny_cache, train_rows, model.classifier,
                             loss=LossConfig())
    frozen = trainer.evaluate(model.transcoder, tiny_cache, train_rows, TinyTeacher(),
                              loss=LossConfig())
    assert tuned["loss"] < frozen["loss"]
    rows = tiny_cache.rows([c.name for c in split.valid])
    again = trainer.evaluate(model.transcoder, tiny_cache, rows, model.classifier,
                             loss=LossConfig())
    assert again["loss"] == pytest.approx(retrained.best_loss, rel=1e-5)
    assert again["mel_mse"] == pytest.approx(retrained.pinv_metrics["mel_mse"], rel=1e-6)


def test_retrained_checkpoint_is_not_a_student(retrained: trainer.TrainResult):
    data = checkpoint.read_checkpoint(retrained.out_dir)
    assert data["description"]["kind"] == "retrained" and data["description"]["student"] is None
    with pytest.raises(CheckpointError, match="retrained teacher"):
        checkpoint.load_student(retrained.out_dir, registry=_tiny_registry())


def test_retraining_on_the_mel_loss_alone_is_refused(tiny_cache, split, tmp_path: Path):
    with pytest.raises(SpecError, match="'logits' or 'hybrid'"):
        trainer.train(tiny_cache, split, TinyTeacher(), out_dir=tmp_path, teacher_name="tiny",
                      config=SMALL, retrain_teacher=True,
                      loss=LossConfig(method="mels"))


def test_load_model_of_a_student_checkpoint(tiny_cache, split, tmp_path: Path):
    result = trainer.train(tiny_cache, split, TinyTeacher(), out_dir=tmp_path,
                           teacher_name="tiny", student_config=TINY_STUDENT,
                           config=trainer.TrainConfig(epochs=1, batch_size=4))
    model = checkpoint.load_model(result.out_dir, registry=_tiny_registry())
    assert model.kind == "student" and model.classifier is None
    assert isinstance(model.transcoder, Transcoder) and model.teacher_name == "tiny"
    assert model.source.name == "cense" and model.target.name == "pann"


def test_tensorboard_events_hold_every_logged_value(retrained: trainer.TrainResult):
    board = EventAccumulator(str(retrained.out_dir / "tensorboard"))
    board.Reload()
    with (retrained.out_dir / "log.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    scalars = board.Tags()["scalars"]
    assert {"valid/loss", "valid/ptopa_fc", "train/loss", "chunks/per_s"} <= set(scalars)
    events = board.Scalars("valid/loss")
    assert [e.step for e in events] == [int(r["epoch"]) for r in rows] == [0, 1, 2]
    for event, row in zip(events, rows, strict=True):
        assert event.value == pytest.approx(float(row["valid_loss"]), rel=1e-6)


def test_tensorboard_can_be_turned_off(tiny_cache, split, tmp_path: Path):
    trainer.train(tiny_cache, split, TinyTeacher(), out_dir=tmp_path, teacher_name="tiny",
                  student_config=TINY_STUDENT, config=trainer.TrainConfig(epochs=1, batch_size=4),
                  tensorboard=False)
    assert not (tmp_path / "tensorboard").exists() and (tmp_path / "log.csv").is_file()


def test_autocast_dtype_per_device_and_setting():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert trainer.autocast_dtype("auto", cpu) is None
    assert trainer.autocast_dtype("fp32", cuda, bf16_supported=True) is None
    assert trainer.autocast_dtype("auto", cuda, bf16_supported=True) is torch.bfloat16
    assert trainer.autocast_dtype("auto", cuda, bf16_supported=False) is torch.float16
    assert trainer.autocast_dtype("bf16", cpu) is torch.bfloat16
    with pytest.raises(SpecError, match="needs CUDA"):
        trainer.autocast_dtype("fp16", cpu)
    with pytest.raises(SpecError, match="unknown precision"):
        trainer.TrainConfig(precision="fp8")


def test_bf16_training_follows_float32(tiny_cache, split, tmp_path: Path):
    def first_loss(precision: str) -> float:
        config = trainer.TrainConfig(epochs=1, batch_size=4, precision=precision)
        result = trainer.train(tiny_cache, split, TinyTeacher(), out_dir=tmp_path / precision,
                               teacher_name="tiny", student_config=TINY_STUDENT, config=config,
                               tensorboard=False)
        return result.history[0]["train_loss"]

    fp32, bf16 = first_loss("fp32"), first_loss("bf16")
    assert bf16 == pytest.approx(fp32, rel=0.05) and bf16 != fp32


def test_pinv_stays_float32_under_autocast(tiny_cache: FeatureCache, registry: Registry):
    reg = registry
    model = Transcoder(PinvTranscoder(reg.representation("cense"), reg.representation("pann")),
                       torch.nn.Identity())
    levels = torch.from_numpy(tiny_cache.take(tiny_cache.rows(tiny_cache.files[:1]))["source"])
    exact = model(levels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model(levels)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, exact, rtol=0, atol=0)
