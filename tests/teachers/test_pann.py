"""PANN ResNet38 / Cnn14 without the front end: counts, names, shapes, checkpoints.

The published figures are checked exactly. Outputs were also compared once,
outside the test suite, with the official classes (copied in the PyPI package
panns_AT_inference 0.1.4) loaded with the same random weights: identical
probabilities (max difference 0.0) on a 1 s input.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from specxform_builtins.teachers.pann import (
    FRONT_END_KEYS,
    FRONT_END_PARAMETER_COUNT,
    FRONT_END_SHAPES,
    OFFICIAL_KEY_COUNTS,
    Cnn14,
    ResNet38,
    load_pann_checkpoint,
    load_pann_state_dict,
)
from torch import nn

from specxform.errors import CheckpointError, InputError, WeightsError
from specxform.teachers.base import Teacher, TeacherOutput

PUBLISHED = {  # (without front end, with front end), the paper's figures
    "ResNet38": (73_783_247, 74_866_703),
    "Cnn14": (80_753_615, 81_837_071),
}


@pytest.fixture(scope="module")
def resnet38() -> ResNet38:
    torch.manual_seed(0)
    return ResNet38().eval()


@pytest.fixture(scope="module")
def cnn14() -> Cnn14:
    torch.manual_seed(0)
    return Cnn14().eval()


@pytest.fixture(params=["resnet38", "cnn14"])
def model(request: pytest.FixtureRequest) -> ResNet38 | Cnn14:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def _official_checkpoint(model: nn.Module) -> dict[str, dict[str, torch.Tensor]]:
    """A checkpoint in the official layout: {"model": state dict with the front end}."""
    front = {k: torch.randn(FRONT_END_SHAPES[k]) for k in FRONT_END_KEYS}
    return {"model": {**front, **model.state_dict()}}


def test_front_end_arithmetic() -> None:
    # STFT as two Conv1d (real, imaginary): 513 = 1024 // 2 + 1 outputs, kernel 1024,
    # plus the 513 x 64 Mel matrix.
    assert FRONT_END_PARAMETER_COUNT == 2 * 513 * 1024 + 513 * 64 == 1_083_456
    for without, with_front in PUBLISHED.values():
        assert without + FRONT_END_PARAMETER_COUNT == with_front


def test_parameter_counts_are_the_published_ones(model: ResNet38 | Cnn14) -> None:
    without, with_front = PUBLISHED[type(model).__name__]
    assert model.trainable_parameter_count() == without
    assert model.trainable_parameter_count() + FRONT_END_PARAMETER_COUNT == with_front


def test_state_dict_key_counts(model: ResNet38 | Cnn14) -> None:
    """The official files hold 246 / 84 entries: this module's, plus 3 front-end ones.

    Each BatchNorm contributes 5 entries (weight, bias, running_mean, running_var,
    num_batches_tracked), each bias-free conv 1, each linear layer 2.
    """
    modules = list(model.modules())
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in modules)
    n_conv = sum(isinstance(m, nn.Conv2d) for m in modules)
    n_linear = sum(isinstance(m, nn.Linear) for m in modules)
    own = len(model.state_dict())
    assert own == 5 * n_bn + n_conv + 2 * n_linear
    assert own + len(FRONT_END_KEYS) == OFFICIAL_KEY_COUNTS[type(model).__name__]
    assert (own, n_bn) == {"ResNet38": (243, 40), "Cnn14": (81, 13)}[type(model).__name__]


def test_official_key_names(resnet38: ResNet38, cnn14: Cnn14) -> None:
    keys = set(resnet38.state_dict())
    for key in (
        "bn0.num_batches_tracked",
        "conv_block1.conv1.weight",
        "resnet.layer1.2.bn2.running_var",
        "resnet.layer2.0.downsample.1.weight",
        "resnet.layer4.0.downsample.2.running_mean",
        "conv_block_after1.bn2.weight",
        "fc1.bias",
        "fc_audioset.weight",
    ):
        assert key in keys
    assert "resnet.layer1.0.downsample.1.weight" not in keys  # stage 1 keeps its width
    assert resnet38.state_dict()["fc_audioset.weight"].shape == (527, 2048)
    assert "conv_block6.conv2.weight" in cnn14.state_dict()
    assert not set(FRONT_END_KEYS) & (keys | set(cnn14.state_dict()))


def test_forward_returns_logits_and_sigmoid(model: ResNet38 | Cnn14) -> None:
    assert isinstance(model, Teacher)
    with torch.no_grad():
        out = model(torch.randn(2, 32, 64))
    assert isinstance(out, TeacherOutput)
    assert out.logits.shape == out.probs.shape == (2, 527)
    torch.testing.assert_close(out.probs, torch.sigmoid(out.logits))


def test_short_or_misshapen_input_is_refused(resnet38: ResNet38) -> None:
    with pytest.raises(InputError, match=r"at least 32 frames, got 31") as info:
        resnet38(torch.zeros(1, 31, 64))
    assert isinstance(info.value, ValueError)
    with pytest.raises(InputError, match="64 Mel bands"):
        resnet38(torch.zeros(1, 64, 128))
    with pytest.raises(InputError, match="batch"):
        resnet38(torch.zeros(32, 64))
    with pytest.raises(InputError, match="aux"):
        resnet38(torch.zeros(1, 32, 64), {"loudness": torch.zeros(1, 32, 1)})


@pytest.mark.slow
def test_min_frames_is_where_the_network_breaks(model: ResNet38 | Cnn14) -> None:
    """32 frames work; 31 reach a zero-length time axis after five halvings."""
    assert type(model).min_frames == 32
    with torch.no_grad(), pytest.raises(RuntimeError):
        model._logits(torch.zeros(1, 31, 64))


def test_bn0_normalises_each_mel_band(cnn14: Cnn14) -> None:
    """Raising bn0's mean for band 5 equals lowering band 5 of the input."""
    mel = torch.randn(1, 32, 64)
    shifted = mel.clone()
    shifted[..., 5] -= 2.0
    with torch.no_grad():
        reference = cnn14(shifted).logits
        cnn14.bn0.running_mean[5] += 2.0
        try:
            moved = cnn14(mel).logits
        finally:
            cnn14.bn0.running_mean[5] -= 2.0
    torch.testing.assert_close(moved, reference, rtol=1e-4, atol=1e-4)


def test_official_layout_checkpoint_loads_strictly(cnn14: Cnn14) -> None:
    checkpoint = _official_checkpoint(cnn14)
    assert len(checkpoint["model"]) == OFFICIAL_KEY_COUNTS["Cnn14"]
    new_bias = torch.randn(527)
    checkpoint["model"]["fc_audioset.bias"] = new_bias
    front = load_pann_state_dict(cnn14, checkpoint)
    assert sorted(front) == sorted(FRONT_END_KEYS)  # set aside, returned for checks
    assert torch.equal(cnn14.fc_audioset.bias.detach(), new_bias)


def test_bare_state_dict_without_front_end_loads(cnn14: Cnn14) -> None:
    assert load_pann_state_dict(cnn14, cnn14.state_dict()) == {}


def test_mismatched_checkpoint_lists_keys(cnn14: Cnn14) -> None:
    state = _official_checkpoint(cnn14)["model"]
    del state["conv_block3.bn1.running_mean"]
    state["head.weight"] = torch.zeros(1)
    state["fc1.weight"] = torch.zeros(2048, 1024)
    with pytest.raises(CheckpointError) as info:
        load_pann_state_dict(cnn14, {"model": state})
    message = str(info.value)
    assert "missing keys ['conv_block3.bn1.running_mean']" in message
    assert "unexpected keys ['head.weight']" in message
    assert "fc1.weight: (2048, 1024) != (2048, 2048)" in message


def test_other_front_end_is_refused(cnn14: Cnn14) -> None:
    state = _official_checkpoint(cnn14)["model"]
    state["spectrogram_extractor.stft.conv_real.weight"] = torch.zeros(257, 1, 512)
    with pytest.raises(CheckpointError, match="16 kHz"):
        load_pann_state_dict(cnn14, {"model": state})


def test_checkpoint_without_model_entry_is_refused(cnn14: Cnn14) -> None:
    with pytest.raises(CheckpointError, match="'model'"):
        load_pann_state_dict(cnn14, {"iteration": 10, "state": {"x": 1}})
    with pytest.raises(CheckpointError, match="list"):
        load_pann_state_dict(cnn14, [1, 2])


def test_checkpoint_file_for_another_model_is_refused(cnn14: Cnn14, tmp_path: Path) -> None:
    file = tmp_path / "other.pth"
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, file)
    with pytest.raises(CheckpointError, match="missing keys"):
        load_pann_checkpoint(cnn14, file)


def test_pretrained_offline_says_where_to_put_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SPECXFORM_HOME", str(tmp_path))
    monkeypatch.delenv("SPECXFORM_WEIGHTS_PATH", raising=False)  # only the cache is searched
    with pytest.raises(WeightsError) as info:
        Cnn14.pretrained(download=False)
    message = str(info.value)
    assert str(tmp_path / "weights" / "Cnn14_mAP=0.431.pth") in message
    assert "`weights=PATH`" in message and "zenodo.org/record/3987831" in message


@pytest.mark.slow
def test_official_layout_file_round_trip(model: ResNet38 | Cnn14, tmp_path: Path) -> None:
    """Write a full-size checkpoint as the official files are laid out; load it back."""
    file = tmp_path / "official.pth"
    torch.save(_official_checkpoint(model), file)
    loaded = type(model).pretrained(file)  # as with --weights PATH
    assert not loaded.training
    mel = torch.randn(1, 40, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(mel).logits, model(mel).logits, rtol=0, atol=0)
