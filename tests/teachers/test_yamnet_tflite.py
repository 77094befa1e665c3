"""YAMNet from Google's official int8 TFLite files, read with the LiteRT interpreter.

The weight files live in ../shared/weights (never in the repository); the tests
that need them skip with the reason when that folder or ai-edge-litert is absent.
The format tests write small files of their own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch

from specxform.errors import CheckpointError, InputError
from specxform.registry import Registry
from specxform.teachers import yamnet as yamnet_module
from specxform.teachers.yamnet import (
    YAMNet,
    fold_batchnorm,
    load_yamnet_weights,
    state_dict_from_tflite,
    weight_file_format,
)

ROOT = Path(__file__).resolve().parents[2]
SHARED_WEIGHTS = Path(
    os.environ.get("SPECXFORM_SHARED_WEIGHTS", ROOT.parent / "shared" / "weights")
)
CORAL = SHARED_WEIGHTS / "yamnet_spectra_in.tflite"
HUB = SHARED_WEIGHTS / "lite-model_yamnet_classification_tflite_1.tflite"


def _need(file: Path) -> Path:
    pytest.importorskip("ai_edge_litert", reason="the LiteRT interpreter (ai-edge-litert)")
    if not file.is_file():
        pytest.skip(f"official weight file {file.name} not found in {SHARED_WEIGHTS}")
    return file


@pytest.fixture(scope="module")
def coral() -> Path:
    return _need(CORAL)


@pytest.fixture(scope="module")
def coral_state(coral: Path) -> dict[str, torch.Tensor]:
    return state_dict_from_tflite(coral)


@pytest.fixture(scope="module")
def coral_model(coral: Path) -> YAMNet:
    return YAMNet.from_tflite(coral)


def _interpreter(file: Path) -> Any:
    """LiteRT's interpreter on ``file``, one thread, tensors allocated."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(file), num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


def _random_unfolded_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A YAMNet state dict with BatchNorm statistics far from the identity."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in YAMNet().state_dict().items():
        if key.endswith("running_var"):
            state[key] = torch.rand(value.shape, generator=gen) * 1.5 + 0.5
        elif key.endswith(("running_mean", "bias")):
            state[key] = torch.rand(value.shape, generator=gen) * 0.6 - 0.3
        else:
            fan_in = value[0].numel()
            state[key] = torch.randn(value.shape, generator=gen) * (2.0 / fan_in) ** 0.5
    return state


# ------------------------------------------------------------------ module variants


def test_folded_variant_has_conv_biases_and_the_keras_parameter_count() -> None:
    folded = YAMNet(activation="relu6", folded_batchnorm=True)
    state = folded.state_dict()
    assert len(state) == 56  # 27 kernels + 27 biases + logits weight and bias
    assert state["layer1.conv.bias"].shape == (32,)
    assert state["layer14.depthwise_conv.bias"].shape == (1024,)
    assert not any("_bn." in key or ".bn." in key for key in state)
    # each Keras beta becomes one conv bias: the count does not change
    assert folded.trainable_parameter_count() == 3_729_481
    assert folded.batchnorm_channels() == 0
    assert "relu6" in repr(folded)


def test_unknown_activation_is_refused() -> None:
    with pytest.raises(InputError, match="'gelu' is not one of"):
        YAMNet(activation="gelu")  # type: ignore[arg-type]


def test_fold_batchnorm_preserves_the_function(one_torch_thread: None) -> None:
    """Folding is exact up to float32 rounding; 1e-4 on logits of size ~1 is ~100 ulp."""
    state = _random_unfolded_state()
    plain, folded = YAMNet().eval(), YAMNet(folded_batchnorm=True).eval()
    plain.load_state_dict(state)
    folded.load_state_dict(fold_batchnorm(state))
    mel = torch.randn(2, 96, 64) - 4.0
    with torch.no_grad():
        torch.testing.assert_close(folded(mel).logits, plain(mel).logits, rtol=1e-4, atol=1e-4)


def test_relu6_clips_where_relu_does_not(one_torch_thread: None) -> None:
    state = fold_batchnorm(_random_unfolded_state())
    relu, relu6 = (YAMNet(activation=a, folded_batchnorm=True).eval() for a in ("relu", "relu6"))
    relu.load_state_dict(state)
    relu6.load_state_dict(state)
    x = torch.full((1, 1, 8, 8), 100.0)
    with torch.no_grad():
        assert relu6.layer1(x).max() <= 6.0 < relu.layer1(x).max()


# --------------------------------------------------------------------- file formats


def _tflite_like(file: Path) -> Path:
    file.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(24))  # FlatBuffers root offset + id
    return file


def test_weight_file_format_reads_content_not_name(tmp_path: Path) -> None:
    h5 = tmp_path / "weights.tflite"  # names deliberately wrong
    with h5py.File(h5, "w") as f:
        f["x"] = np.zeros(2)
    pt = tmp_path / "weights.h5"
    torch.save({"a": torch.zeros(1)}, pt)
    legacy = tmp_path / "legacy.bin"
    torch.save({"a": torch.zeros(1)}, legacy, _use_new_zipfile_serialization=False)
    lite = _tflite_like(tmp_path / "model.pt")
    assert weight_file_format(h5) == "hdf5"
    assert weight_file_format(pt) == "torch"
    assert weight_file_format(legacy) == "torch"
    assert weight_file_format(lite) == "tflite"
    junk = tmp_path / "yamnet.h5"
    junk.write_bytes(b"ONNX....")
    with pytest.raises(CheckpointError, match=r"yamnet\.h5 is not a YAMNet weight file"):
        weight_file_format(junk)


def test_unreadable_tflite_is_refused_naming_the_file(tmp_path: Path) -> None:
    pytest.importorskip("ai_edge_litert", reason="the LiteRT interpreter (ai-edge-litert)")
    bad = _tflite_like(tmp_path / "broken.tflite")
    with pytest.raises(CheckpointError, match=r"broken\.tflite"):
        YAMNet.pretrained(bad)


# ----------------------------------------------------------------- the official file


def test_coral_file_gives_all_56_tensors_in_pytorch_layouts(
    coral_state: dict[str, torch.Tensor],
) -> None:
    expected = YAMNet(folded_batchnorm=True).state_dict()
    assert list(coral_state) == list(expected)
    for key, value in coral_state.items():
        assert value.dtype == torch.float32 and value.shape == expected[key].shape, key
        assert torch.isfinite(value).all(), key
    assert coral_state["layer1.conv.weight"].shape == (32, 1, 3, 3)
    assert coral_state["layer2.depthwise_conv.weight"].shape == (32, 1, 3, 3)
    assert coral_state["layer14.pointwise_conv.weight"].shape == (1024, 1024, 1, 1)


def test_dequantization_is_per_output_channel(
    coral: Path, coral_state: dict[str, torch.Tensor]
) -> None:
    """Layer 2's depthwise kernel (1, 3, 3, 32), quantized along axis 3, recomputed here."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(coral))
    detail = next(
        d
        for d in interpreter.get_tensor_details()
        if d["name"].startswith("tower0/network/layer2/sepconv/")
        and len(d["shape"]) == 4
        and d["dtype"] == np.int8
        and d["name"].endswith("/depthwise")
    )
    quant = detail["quantization_parameters"]
    assert quant["quantized_dimension"] == 3 and len(quant["scales"]) == 32
    q = interpreter.get_tensor(detail["index"]).astype(np.float64)
    real = (q - quant["zero_points"]) * quant["scales"]  # broadcasts along the last axis
    want = torch.from_numpy(real.transpose(3, 0, 1, 2).astype(np.float32))
    assert torch.equal(coral_state["layer2.depthwise_conv.weight"], want)


def test_port_matches_the_interpreter_on_one_patch(coral: Path, coral_model: YAMNet) -> None:
    """Same top class; the int8 graph quantizes every activation, the port does not.

    0.1 bounds the largest of 521 probability differences on a synthetic patch
    (measured 0.043); with wrong layouts or biases the outputs are unrelated.
    """
    interpreter = _interpreter(coral)
    patch = np.random.default_rng(0).normal(-4.0, 2.0, (1, 96, 64)).astype(np.float32)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], patch)
    interpreter.invoke()
    ref = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
    with torch.no_grad():
        ours = coral_model.forward_patches(torch.from_numpy(patch)).probs[0, 0].numpy()
    assert ours.argmax() == ref.argmax()
    assert np.abs(ours - ref).max() < 0.1


def test_missing_or_misshaped_tensor_is_refused_naming_the_file(
    coral: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = yamnet_module._tflite_tensors(coral)
    broken = dict(real)
    del broken["layer5.pointwise_conv.bias"]
    name, value = broken["logits.weight"]
    broken["logits.weight"] = (name, value[:520])
    monkeypatch.setattr(yamnet_module, "_tflite_tensors", lambda _file: broken)
    with pytest.raises(CheckpointError) as info:
        state_dict_from_tflite(coral)
    message = str(info.value)
    assert str(coral) in message
    assert "missing tensors for ['layer5.pointwise_conv.bias']" in message
    assert "logits.weight from 'tower0/network/layer29/fc/MatMul': (520, 1024)" in message


def test_pretrained_detects_tflite_by_content(
    coral: Path, coral_state: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    misnamed = tmp_path / "yamnet.h5"
    misnamed.symlink_to(coral)  # a link, not a copy of the weights
    model = YAMNet.pretrained(misnamed)
    assert model.activation == "relu6" and model.folded_batchnorm and not model.training
    for key, value in coral_state.items():
        assert torch.equal(model.state_dict()[key], value)


def test_folded_state_dict_file_loads_as_relu6(coral_model: YAMNet, tmp_path: Path) -> None:
    file = tmp_path / "yamnet_folded.pt"
    torch.save({"state_dict": coral_model.state_dict()}, file)
    model = YAMNet.pretrained(file)
    assert model.activation == "relu6" and model.folded_batchnorm
    assert YAMNet.pretrained(file, activation="relu").activation == "relu"


def test_loading_tflite_into_an_unfolded_model_says_how(coral: Path) -> None:
    with pytest.raises(
        CheckpointError, match=r"folded BatchNorm weights .* use YAMNet\.pretrained"
    ):
        load_yamnet_weights(YAMNet(), coral)
    folded = YAMNet(activation="relu6", folded_batchnorm=True)
    load_yamnet_weights(folded, coral)  # the right variant loads


def test_plugin_factory_accepts_the_tflite_file(coral: Path, registry: Registry) -> None:
    model = registry.teacher("yamnet").factory(weights=coral)
    assert isinstance(model, YAMNet)
    assert model.activation == "relu6" and model.folded_batchnorm
