"""The shared labels/from_checkpoint/pretrained trio of the built-in teachers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from specxform_builtins.efficientat import MN04
from specxform_builtins.teachers.pann import Cnn14, ResNet38
from specxform_builtins.teachers.published import PublishedTeacher, load_matching_state
from specxform_builtins.teachers.yamnet import YAMNet

from specxform.errors import CheckpointError
from specxform.registry import Registry


@pytest.mark.parametrize("cls", [Cnn14, ResNet38, MN04, YAMNet])
def test_each_teacher_names_registered_files(cls: type[PublishedTeacher],
                                             registry: Registry) -> None:
    assert issubclass(cls, PublishedTeacher)
    assert registry.weight_file(cls.label_file).name == cls.label_file
    assert registry.weight_file(cls.weights_name).name == cls.weights_name
    assert cls.labels.__func__ is PublishedTeacher.labels.__func__  # type: ignore[attr-defined]


def test_from_checkpoint_loads_a_saved_state_dict_in_eval_mode(tmp_path: Path) -> None:
    torch.manual_seed(0)
    original = MN04().eval()
    file = tmp_path / "mn04.pt"
    torch.save(original.state_dict(), file)
    loaded = MN04.from_checkpoint(file)
    assert not loaded.training
    for (name, a), (_, b) in zip(original.state_dict().items(), loaded.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name


def test_pretrained_loads_the_file_it_is_given(tmp_path: Path) -> None:
    torch.manual_seed(1)
    original = YAMNet().eval()
    file = tmp_path / "yamnet.pt"
    torch.save(original.state_dict(), file)
    mel = torch.randn(2, 96, 64)
    torch.testing.assert_close(YAMNet.pretrained(file)(mel).logits, original(mel).logits)
    model = YAMNet()
    model.load_weights(file)
    torch.testing.assert_close(model.eval()(mel).logits, original(mel).logits)


def test_load_matching_state_names_every_kind_of_mismatch_and_loads_nothing() -> None:
    model = torch.nn.Sequential(*(torch.nn.Linear(2, 2) for _ in range(12)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = {f"{i}.weight": torch.ones(2, 2) for i in range(12)}  # every bias missing
    state["0.weight"] = torch.ones(3, 2)
    state["extra"] = torch.ones(1)
    with pytest.raises(CheckpointError) as info:
        load_matching_state(model, state, hint="Is it the right file?")
    message = str(info.value)
    assert message.startswith("checkpoint does not match Sequential: missing keys ['0.bias',")
    assert "(+4 more)" in message  # 12 biases: eight named, the count of the rest
    assert "unexpected keys ['extra']" in message
    assert "shape mismatches ['0.weight: (3, 2) != (2, 2)']" in message
    assert message.endswith("Is it the right file?")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_load_matching_state_loads_a_fitting_state() -> None:
    model, other = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    load_matching_state(model, other.state_dict(), hint="unused")
    assert torch.equal(model.weight, other.weight) and torch.equal(model.bias, other.bias)
