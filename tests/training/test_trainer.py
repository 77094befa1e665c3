"""Training runs on a small real cache: checkpoints, logs, metrics, resume after SIGKILL."""

from __future__ import annotations

import csv
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from training_helpers import EXCERPT, TINY_STUDENT, TinyAuxTeacher, TinyTeacher

from specxform.datasets import Clip, Split, grouped_split
from specxform.errors import CheckpointError, InputError, SpecError
from specxform.registry import Registry
from specxform.representations.specs import Representation
from specxform.training import checkpoint, trainer
from specxform.training.cache import FeatureCache, build_cache
from specxform.training.losses import LossConfig
from specxform.transcoders.pinv import PinvTranscoder
from specxform.transcoders.students import Transcoder

HERE = Path(__file__).resolve().parent
SMALL = trainer.TrainConfig(epochs=2, batch_size=4)


def _train(cache: FeatureCache, split: Split, out: Path, **options) -> trainer.TrainResult:
    options = {"teacher_name": "tiny", "student_config": TINY_STUDENT, "config": SMALL} | options
    return trainer.train(cache, split, TinyTeacher(), out_dir=out, **options)


@pytest.fixture(scope="module")
def run(tiny_cache: FeatureCache, split: Split, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("run")
    return _train(tiny_cache, split, out)


def test_run_writes_checkpoints_and_a_csv_row_per_epoch(run: trainer.TrainResult):
    with (run.out_dir / "log.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]  # 0 is the PINV baseline
    assert rows[0]["train_loss"] == ""
    assert float(rows[0]["valid_loss"]) == pytest.approx(run.pinv_metrics["loss"])
    for row, logged in zip(rows[1:], run.history, strict=True):
        assert float(row["valid_loss"]) == pytest.approx(logged["valid_loss"])
        assert float(row["chunks_per_s"]) > 0
    losses = [h["valid_loss"] for h in run.history]
    assert run.best_epoch == 1 + int(np.argmin(losses)) and run.best_loss == min(losses)
    assert run.best_checkpoint.is_file() and run.last_checkpoint.is_file()


def test_checkpoint_describes_the_run(run: trainer.TrainResult, split: Split,
                                      tiny_cache: FeatureCache):
    data = checkpoint.read_checkpoint(run.best_checkpoint)
    desc = data["description"]
    assert Representation.from_dict(desc["source"]).name == "cense"
    assert Representation.from_dict(desc["target"]).to_dict() == tiny_cache.manifest["target"]
    assert desc["teacher"] == {"name": "tiny", "digest": tiny_cache.manifest["teacher"]["digest"]}
    assert desc["student"] == {"name": "residual_cnn",
                               "config": {"layers": 2, "channels": 4, "kernel": [3, 5],
                                          "dilation": [1, 1]}}
    assert desc["split"] == split.to_dict() and desc["cache"]["key"] == tiny_cache.key
    assert desc["train"]["epochs"] == 2 and desc["loss"]["method"] == "logits"
    assert desc["versions"]["torch"] == str(torch.__version__)
    assert data["epoch"] == run.best_epoch
    assert data["metrics"]["valid_loss"] == pytest.approx(run.best_loss)
    assert not any(p.name.endswith(".tmp") for p in run.out_dir.iterdir())


def test_load_student_gives_the_best_transcoder(run: trainer.TrainResult,
                                                tiny_cache: FeatureCache, split: Split):
    model = checkpoint.load_student(run.out_dir)
    assert isinstance(model, Transcoder) and not model.training
    rows = tiny_cache.rows([c.name for c in split.valid])
    metrics = trainer.evaluate(model, tiny_cache, rows, TinyTeacher(), loss=LossConfig())
    assert metrics["loss"] == pytest.approx(run.best_loss, rel=1e-5)


def test_evaluate_matches_a_direct_computation(tiny_cache: FeatureCache, registry: Registry):
    pinv = PinvTranscoder(registry.representation("cense"), registry.representation("pann"))
    rows = np.arange(len(tiny_cache))
    metrics = trainer.evaluate(pinv, tiny_cache, rows, TinyTeacher(), loss=LossConfig("mels"),
                               batch_size=5)
    with torch.no_grad():
        mel = pinv(torch.from_numpy(np.array(tiny_cache.source)))
        probs = TinyTeacher()(mel).probs.numpy()
    mse = float(((mel.numpy() - tiny_cache.target) ** 2).mean())
    assert metrics["mel_mse"] == pytest.approx(mse, rel=1e-4)
    assert metrics["loss"] == pytest.approx(mse, rel=1e-4)
    true = np.asarray(tiny_cache.probs)
    assert metrics["top1"] == pytest.approx(np.mean(probs.argmax(1) == true.argmax(1)))
    files = np.asarray(tiny_cache.file_index)
    agree = [np.argmax(probs[files == f].mean(0)) == np.argmax(true[files == f].mean(0))
             for f in np.unique(files)]
    assert metrics["ptopa_fc"] == pytest.approx(np.mean(agree))


def test_same_seed_same_weights_other_seed_other_weights(tiny_cache, split, tmp_path: Path):
    config = trainer.TrainConfig(epochs=1, batch_size=8)
    a = _train(tiny_cache, split, tmp_path / "a", config=config)
    b = _train(tiny_cache, split, tmp_path / "b", config=config)
    c = _train(tiny_cache, split, tmp_path / "c", config=trainer.TrainConfig(
        epochs=1, batch_size=8, seed=1))
    weights = [checkpoint.read_checkpoint(r.last_checkpoint)["state_dict"] for r in (a, b, c)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


def test_mels_method_trains_without_running_the_teacher(tiny_cache, split, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    calls = []
    original = TinyTeacher.forward

    def spy(self, mel, aux=None):
        calls.append(torch.is_grad_enabled())
        return original(self, mel, aux)

    monkeypatch.setattr(TinyTeacher, "forward", spy)
    _train(tiny_cache, split, tmp_path, loss=LossConfig("mels"),
           config=trainer.TrainConfig(epochs=1, batch_size=8))
    assert calls and not any(calls)  # only validation ran the teacher, without gradients


def test_teacher_gets_student_side_aux_on_transcoded_mels(few: list[Clip], registry: Registry,
                                                          tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    cache = build_cache(few[:4], source=registry.representation("cense"),
                        target=registry.representation("pann"), teacher=TinyAuxTeacher(),
                        teacher_name="tiny_aux", root=tmp_path / "cache")
    seen: list[np.ndarray] = []
    original = TinyAuxTeacher.forward

    def spy(self, mel, aux=None):
        seen.append(aux["level"].detach().numpy().ravel())
        return original(self, mel, aux)

    monkeypatch.setattr(TinyAuxTeacher, "forward", spy)
    split = grouped_split(few[:4], (0.5, 0.5, 0.0), seed=0)
    trainer.train(cache, split, TinyAuxTeacher(), out_dir=tmp_path / "run",
                  teacher_name="tiny_aux", student_config=TINY_STUDENT,
                  config=trainer.TrainConfig(epochs=1, batch_size=4))
    passed = np.concatenate(seen)
    n_train = len(cache.rows([c.name for c in split.train]))
    n_valid = len(cache.rows([c.name for c in split.valid]))
    assert len(passed) == n_train + 2 * n_valid  # one epoch, then PINV and epoch validation
    assert np.isin(passed, np.asarray(cache.aux_student["level"])).all()
    assert not np.isin(passed, np.asarray(cache.aux_teacher["level"])).any()


def test_early_stopping_stops_after_patience_epochs(tiny_cache, split, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch):
    losses = iter([9.0, 1.0, 2.0, 3.0, 0.5, 0.1])  # PINV, then epochs 1, 2, 3, ...

    def fake_evaluate(*args, **kwargs):
        return {"loss": next(losses), "mel_mse": 0.0, "kl": 0.0, "top1": 1.0, "ptopa_fc": 1.0}

    monkeypatch.setattr(trainer, "evaluate", fake_evaluate)
    result = _train(tiny_cache, split, tmp_path,
                    config=trainer.TrainConfig(epochs=6, batch_size=16, patience=2))
    assert result.stopped_early and len(result.history) == 3 and result.best_epoch == 1
    again = _train(tiny_cache, split, tmp_path, resume=True,
                   config=trainer.TrainConfig(epochs=6, batch_size=16, patience=2))
    assert len(again.history) == 3  # a stopped run stays stopped


def test_existing_run_needs_resume_and_the_same_settings(run: trainer.TrainResult,
                                                         tiny_cache, split):
    with pytest.raises(CheckpointError, match="`resume=True`"):
        _train(tiny_cache, split, run.out_dir)
    with pytest.raises(CheckpointError, match="loss"):
        _train(tiny_cache, split, run.out_dir, resume=True, loss=LossConfig("mels"))
    finished = _train(tiny_cache, split, run.out_dir, resume=True)
    assert finished.history == run.history  # nothing left to do: no epoch rerun


def test_a_teacher_other_than_the_cached_one_is_refused(tiny_cache, split, tmp_path: Path):
    with pytest.raises(InputError, match="teacher's weights differ"):
        trainer.train(tiny_cache, split, TinyTeacher(seed=3), out_dir=tmp_path,
                      teacher_name="tiny")


def test_bad_settings_and_files_are_named(tmp_path: Path):
    with pytest.raises(SpecError, match="batch_size"):
        trainer.TrainConfig(batch_size=0)
    with pytest.raises(SpecError, match=r"-0\.1"):
        trainer.TrainConfig(lr=-0.1)
    with pytest.raises(SpecError, match=r"`balance=1\.5` must lie in \[0, 1\]"):
        trainer.TrainConfig(balance=1.5)
    with pytest.raises(SpecError, match=r"`lr_schedule='linear'`.*constant, cosine"):
        trainer.TrainConfig(lr_schedule="linear")
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"x\.pt"):
        checkpoint.read_checkpoint(tmp_path / "x.pt")
    torch.save({"format": "other"}, tmp_path / "y.pt")
    with pytest.raises(CheckpointError, match="'other'"):
        checkpoint.load_student(tmp_path / "y.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        checkpoint.load_student(tmp_path / "missing")


def test_mismatched_weights_are_a_checkpoint_error(run: trainer.TrainResult, tmp_path: Path):
    data = checkpoint.read_checkpoint(run.best_checkpoint)
    data["description"]["student"]["config"]["channels"] = 8
    torch.save(data, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        checkpoint.load_student(tmp_path / "bad.pt")


def test_device_selection():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert trainer.select_device("auto").type == expected
    assert trainer.select_device("cpu") == torch.device("cpu")
    with pytest.raises(SpecError, match="'nonsense'"):
        trainer.select_device("nonsense")
    if not torch.cuda.is_available():
        with pytest.raises(SpecError, match="device='cpu'"):
            trainer.select_device("cuda")


# ------------------------------------------------------------- resume after SIGKILL

CHILD = r"""
import json, sys, time
import torch
torch.set_num_threads(1)  # the same arithmetic in every process
here, cache_dir, out, kill_at, marker = sys.argv[1:6]
sys.path.insert(0, here)
from training_helpers import TINY_STUDENT, TinyTeacher, small_split
from specxform.training.cache import open_cache
from specxform.training.trainer import TrainConfig, train

def on_batch(epoch, step):
    if [epoch, step] == json.loads(kill_at):
        open(marker, "w").close()
        time.sleep(600)  # killed here, in the middle of an epoch

train(open_cache(cache_dir), small_split(), TinyTeacher(), out_dir=out, teacher_name="tiny",
      student_config=TINY_STUDENT, config=TrainConfig(epochs=3, batch_size=4), on_batch=on_batch)
"""


def _child(cache: FeatureCache, out: Path, *, kill_at: list[int]) -> subprocess.Popen:
    args = [sys.executable, "-c", CHILD, str(HERE), str(cache.folder), str(out),
            json.dumps(kill_at), str(out) + ".killed-here"]
    return subprocess.Popen(args, env=os.environ | {"OMP_NUM_THREADS": "1"})


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, "the training process ended before the kill point"
        assert time.monotonic() < deadline, "the training process never reached the kill point"
        time.sleep(0.05)


def test_run_killed_mid_epoch_resumes_to_the_same_weights(tiny_cache: FeatureCache, split: Split,
                                                          tmp_path: Path):
    """A separate process is SIGKILLed in epoch 2; resuming its folder (here) must end
    exactly where an uninterrupted run of the same seed ends (one thread in both)."""
    config = trainer.TrainConfig(epochs=3, batch_size=4)
    killed = _child(tiny_cache, tmp_path / "killed", kill_at=[2, 2])
    _train(tiny_cache, split, tmp_path / "straight", config=config)  # while the child starts
    _wait_for(Path(str(tmp_path / "killed") + ".killed-here"), killed)
    os.kill(killed.pid, signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL
    interrupted = checkpoint.read_checkpoint(tmp_path / "killed" / "last.pt")
    assert interrupted["epoch"] == 1  # epoch 2 was cut short
    _train(tiny_cache, split, tmp_path / "killed", config=config, resume=True)

    for name in ("last.pt", "best.pt"):
        a = checkpoint.read_checkpoint(tmp_path / "straight" / name)
        b = checkpoint.read_checkpoint(tmp_path / "killed" / name)
        assert a["epoch"] == b["epoch"]
        assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    a = checkpoint.read_checkpoint(tmp_path / "straight" / "last.pt")
    b = checkpoint.read_checkpoint(tmp_path / "killed" / "last.pt")
    assert a["epoch"] == 3
    for state_a, state_b in zip(a["optimizer"]["state"].values(),
                                b["optimizer"]["state"].values(), strict=True):
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    timing = ("seconds", "chunks_per_s")
    assert [{k: v for k, v in h.items() if k not in timing} for h in a["history"]] == [
        {k: v for k, v in h.items() if k not in timing} for h in b["history"]]


def test_transcode_command_uses_a_trained_checkpoint(run: trainer.TrainResult, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]):
    from specxform import api
    from specxform.cli.main import main

    levels = np.asarray(api.compute_file("cense", sorted(EXCERPT.glob("*/*.wav"))[0]))
    src = tmp_path / "clip.npy"
    np.save(src, levels)
    out = tmp_path / "mel.npy"
    assert main(["transcode", "--checkpoint", str(run.out_dir / "best.pt"), str(src),
                 "-o", str(out)]) == 0
    model = checkpoint.load_student(run.out_dir / "best.pt")
    with torch.inference_mode():
        expected = model(torch.from_numpy(levels)).numpy()
        pinv_only = model.pinv(torch.from_numpy(levels)[None])[0].numpy()
    got = np.load(out)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    assert np.abs(got - pinv_only).max() > 1e-3  # the student changed the PINV Mel
    # A checkpoint of another pair is refused, naming both pairs.
    assert main(["transcode", "--checkpoint", str(run.out_dir / "best.pt"), "--target", "yamnet",
                 str(src), "-o", str(tmp_path / "other.npy")]) != 0
    err = capsys.readouterr().err
    assert "'cense' -> 'pann'" in err and not (tmp_path / "other.npy").exists()


class _Probs:
    """The part of a FeatureCache that epoch_order reads: the teacher's true outputs."""

    def __init__(self, top: list[int], n_classes: int = 3) -> None:
        self.probs = np.eye(n_classes)[top] * 0.8 + 0.1


def test_balance_zero_is_a_permutation_and_one_draws_classes_equally():
    cache = _Probs([0] * 90 + [1] * 9 + [2])  # 90 / 9 / 1 chunks per top-1 class
    rows = np.arange(100)
    plain = trainer.epoch_order(cache, rows, trainer.TrainConfig(seed=4), epoch=1)
    assert sorted(plain) == list(rows) and (plain != rows).any()
    drawn = np.concatenate([trainer.epoch_order(cache, rows, trainer.TrainConfig(
        seed=4, balance=1.0), epoch=e) for e in range(1, 31)])
    shares = np.bincount(cache.probs[drawn].argmax(1), minlength=3) / len(drawn)
    assert np.allclose(shares, 1 / 3, atol=0.03)  # 3,000 draws: one class each third
    half = np.concatenate([trainer.epoch_order(cache, rows, trainer.TrainConfig(
        seed=4, balance=0.5), epoch=e) for e in range(1, 31)])
    expected = np.array([90, 9, 1]) ** 0.5 / np.sum(np.array([90, 9, 1]) ** 0.5)
    assert np.allclose(np.bincount(cache.probs[half].argmax(1), minlength=3) / len(half),
                       expected, atol=0.03)
    again = trainer.epoch_order(cache, rows, trainer.TrainConfig(seed=4, balance=1.0), epoch=1)
    assert (again == drawn[:100]).all()  # the same seed and epoch: the same draw


def test_runs_from_before_balancing_resume(run: trainer.TrainResult, tiny_cache, split):
    path = run.out_dir / "last.pt"
    saved = checkpoint.read_checkpoint(path)["description"]
    newer = ("balance", "lr_schedule")
    old = {**saved, "train": {k: v for k, v in saved["train"].items() if k not in newer}}
    checkpoint.check_compatible(path, old, saved)  # missing: balance 0, a constant rate
    with pytest.raises(CheckpointError, match="lr_schedule"):
        checkpoint.check_compatible(path, old, {**saved, "train": {**saved["train"],
                                                                   "lr_schedule": "cosine"}})
    with pytest.raises(CheckpointError, match="balance"):
        checkpoint.check_compatible(path, old, {**saved, "train": {**saved["train"],
                                                                   "balance": 0.5}})


def test_cosine_schedule_decays_from_lr_to_zero_and_constant_keeps_lr():
    cosine = trainer.TrainConfig(lr=2e-3, lr_schedule="cosine")
    rates = [trainer.learning_rate(cosine, step, 100) for step in range(101)]
    assert rates[0] == pytest.approx(2e-3) and rates[50] == pytest.approx(1e-3)
    assert rates[100] == pytest.approx(0.0, abs=1e-12)
    assert all(a > b for a, b in itertools.pairwise(rates))  # strictly decreasing
    assert trainer.learning_rate(trainer.TrainConfig(lr=2e-3), 77, 100) == 2e-3


class _Stop(Exception):
    pass


def test_an_interrupted_cosine_run_resumes_on_the_same_curve(tiny_cache, split, tmp_path: Path):
    config = trainer.TrainConfig(epochs=3, batch_size=4, lr_schedule="cosine")
    straight = _train(tiny_cache, split, tmp_path / "straight", config=config)

    def stop_in_epoch_2(epoch: int, step: int) -> None:
        if (epoch, step) == (2, 1):
            raise _Stop

    with pytest.raises(_Stop):
        _train(tiny_cache, split, tmp_path / "cut", config=config, on_batch=stop_in_epoch_2)
    again = _train(tiny_cache, split, tmp_path / "cut", config=config, resume=True)
    a = checkpoint.read_checkpoint(straight.last_checkpoint)
    b = checkpoint.read_checkpoint(again.last_checkpoint)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    n_steps = -(-len(tiny_cache.rows([c.name for c in split.train])) // 4)
    last = trainer.learning_rate(config, 3 * n_steps - 1, 3 * n_steps)
    assert 0 < last < 1e-3 / 10  # the last step ran near the end of the curve
    assert a["optimizer"]["param_groups"][0]["lr"] == pytest.approx(last)
    assert b["optimizer"]["param_groups"][0]["lr"] == pytest.approx(last)
