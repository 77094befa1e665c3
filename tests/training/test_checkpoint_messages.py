"""Checkpoint messages (issue 12, items 11 and 12): unsafe files and changed --resume settings.

Item 11: loading a checkpoint that needs pickled code repeated torch's advice
that ``weights_only=False`` "will likely succeed": the unsafe load specxform
refuses on purpose. Item 12: ``--resume`` with changed settings said "(train
differ)" without naming the setting or its values.
"""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch
from training_helpers import TINY_STUDENT, TinyTeacher

from specxform.errors import CheckpointError
from specxform.training import checkpoint, trainer


class Evil:
    """Any object that is not a tensor or a plain container: torch pickles its class."""


def test_a_checkpoint_holding_objects_is_refused_without_unsafe_advice(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.CHECKPOINT_FORMAT, "payload": Evil()}, path)
    with pytest.raises(CheckpointError) as info:
        checkpoint.read_checkpoint(path)
    message = str(info.value)
    assert "evil.pt" in message and "objects or code" in message and "Evil" in message
    assert "weights_only" not in message and "likely succeed" not in message, message


def test_a_file_that_is_not_a_checkpoint_says_so(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError) as info:
        checkpoint.read_checkpoint(path)
    message = str(info.value)
    assert "not a PyTorch checkpoint" in message and "weights_only" not in message, message


def test_plain_containers_still_load(tmp_path: Path) -> None:
    path = tmp_path / "plain.pt"
    torch.save({"format": checkpoint.CHECKPOINT_FORMAT, "d": collections.OrderedDict(a=1)}, path)
    assert checkpoint.read_checkpoint(path)["d"] == {"a": 1}


def test_resume_with_other_settings_names_them(tiny_cache, split, tmp_path: Path) -> None:
    def run(**changes: float) -> None:
        trainer.train(tiny_cache, split, TinyTeacher(), out_dir=tmp_path / "run",
                      teacher_name="tiny", student_config=TINY_STUDENT,
                      tensorboard=False, resume=True,
                      config=trainer.TrainConfig(epochs=1, batch_size=8, **changes))

    run()
    with pytest.raises(CheckpointError) as info:
        run(lr=0.01, seed=3)
    message = str(info.value)
    assert "train.lr: 0.001 -> 0.01" in message and "train.seed: 0 -> 3" in message, message
