"""The residual CNN student, its config, its registration and the PINV + student transcoder."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from specxform.errors import InputError, SpecError
from specxform.plugins import get_registry, load_plugins
from specxform.registry import Registry
from specxform.testing import check_student
from specxform.transcoders.pinv import PinvTranscoder
from specxform.transcoders.students import ResidualCNN, ResidualCNNConfig, Transcoder, residual_cnn

REGISTRY = get_registry()
STUDENT_PAIRS = [(s.name, p.name) for p in REGISTRY.pairs() for s in REGISTRY.students()]


def test_reference_student_has_the_shipped_checkpoints_parameter_count(registry: Registry):
    student = residual_cnn(registry.representation("cense"), registry.representation("pann"))
    assert sum(p.numel() for p in student.parameters()) == 186_497


def test_reference_layers_pad_by_replication_then_convolve_3x5_with_relu_but_last():
    layers = list(ResidualCNN().conv)
    pads = [m for m in layers if isinstance(m, nn.ReplicationPad2d)]
    convs = [m for m in layers if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (1, 64), (64, 64), (64, 64), (64, 64), (64, 1)]
    assert all(c.kernel_size == (3, 5) for c in convs)
    assert all(p.padding == (2, 2, 1, 1) for p in pads) and len(pads) == 5
    assert sum(isinstance(m, nn.ReLU) for m in layers) == 4
    assert isinstance(layers[-1], nn.Conv2d)  # no ReLU after the last convolution
    for pad, conv in zip(pads, convs, strict=True):
        assert layers.index(pad) + 1 == layers.index(conv)


def test_output_is_input_minus_convolution():
    torch.manual_seed(0)
    student = ResidualCNN(ResidualCNNConfig(layers=2, channels=3))
    mel = torch.randn(2, 7, 10)
    expected = mel - student.conv(mel[:, None])[:, 0]
    assert torch.allclose(student(mel), expected)
    with torch.no_grad():  # a zero last layer makes the student the identity
        student.conv[-1].weight.zero_()
        student.conv[-1].bias.zero_()
    assert torch.equal(student(mel), mel)


@pytest.mark.parametrize("config", [
    {"kernel": [4, 6]}, {"dilation": [2, 3]}, {"layers": 1}, {"kernel": 1, "channels": 2},
])
def test_every_config_keeps_the_shape(config: dict):
    mel = torch.randn(3, 9, 16)
    assert ResidualCNN(ResidualCNNConfig.from_dict(config))(mel).shape == mel.shape


def test_config_round_trips_and_counts_follow_it():
    config = ResidualCNNConfig(layers=3, channels=8, kernel=(5, 3), dilation=(2, 1))
    assert ResidualCNNConfig.from_dict(config.to_dict()) == config
    # 1->8, 8->8, 8->1 convolutions of 5x3 weights plus biases.
    expected = (1 * 8 + 8 * 8 + 8 * 1) * 15 + 8 + 8 + 1
    assert sum(p.numel() for p in ResidualCNN(config).parameters()) == expected


@pytest.mark.parametrize(("data", "word"), [
    ({"width": 3}, "width"), ({"layers": 0}, "layers"), ({"kernel": (3, 0)}, "(3, 0)"),
    ({"dilation": (1, 2, 3)}, "(1, 2, 3)"), ({"channels": 2.5}, "channels"),
])
def test_bad_config_names_the_value(data: dict, word: str):
    with pytest.raises(SpecError, match=word.replace("(", r"\(").replace(")", r"\)")):
        ResidualCNNConfig.from_dict(data)


def test_wrong_input_shape_is_refused(registry: Registry):
    student = residual_cnn(registry.representation("cense"), registry.representation("pann"))
    with pytest.raises(InputError, match=r"\(2, 10, 32\)"):
        student(torch.zeros(2, 10, 32))


def test_transcoder_is_pinv_then_student(registry: Registry):
    source, target = registry.representation("cense"), registry.representation("pann")
    pinv = PinvTranscoder(source, target)
    student = residual_cnn(source, target, layers=2, channels=4)
    model = Transcoder(pinv, student)
    levels = torch.randn(2, 8, 29) * 10 - 60
    out = model(levels)
    assert out.shape == (2, pinv.target_frames(8), 64)
    assert torch.allclose(out, student(pinv(levels)))
    assert torch.allclose(model(levels[0]), out[0], atol=1e-5)
    assert set(model.state_dict()) == {f"student.{k}" for k in student.state_dict()}


@pytest.mark.parametrize(("student", "pair"), STUDENT_PAIRS)
def test_every_registered_student_refines_every_pair(student: str, pair: str,
                                                     one_torch_thread) -> None:
    """The student contract (specxform.testing.check_student): same shape out, finite, and
    gradients reach the parameters; with the pair's own student_config for its student."""
    source, target = pair.split("->")
    entry = REGISTRY.pair(source, target)
    config = entry.student_config if entry.student == student else None
    check_student(student, source, target, config=config)


def test_the_student_contract_names_what_is_wrong(registry: Registry) -> None:
    fresh = load_plugins(autoload=False).registry
    fresh.add_student("wrong_shape", factory=lambda source, target, **config: nn.Linear(64, 3))
    with pytest.raises(AssertionError, match=r"student wrong_shape on cense->pann: output"):
        check_student("wrong_shape", "cense", "pann", registry=fresh)
    fresh.add_student("identity", factory=lambda source, target, **config: nn.Identity())
    check_student("identity", "cense", "pann", registry=fresh)  # nothing to train is allowed
