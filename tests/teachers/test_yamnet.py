"""YAMNet: counts, shapes, TF semantics, official HDF5 layout, class maps, padding rules.

The tests write HDF5 files in the official ``yamnet.h5`` layout (110 datasets
named ``<layer>/<layer>/<weight>:0``, Keras kernel layouts) from seeded NumPy
weights. The golden logits below were computed once by Keras itself (tf_keras
2.21, the model rebuilt from tensorflow/models ``yamnet.py``) with exactly those
weights and inputs: they pin the TensorFlow semantics (SAME padding, depthwise
layout, scale-free BatchNorm) independently of this implementation.
"""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from specxform_builtins.teachers.yamnet import (
    KERAS_TRAINABLE_PARAMETERS,
    PORT_PARAMETERS,
    YAMNET_DROPPED_AUDIOSET_INDICES,
    YAMNET_TO_AUDIOSET,
    ClassMapEntry,
    YAMNet,
    audioset_to_yamnet,
    check_class_maps,
    h5_dataset_names,
    load_yamnet_h5,
    load_yamnet_state_dict,
    pad_waveform,
    padded_length,
    parse_class_map,
    patch_frames,
    read_class_map,
    tf_same_padding,
    yamnet_to_audioset,
)

from specxform.errors import CheckpointError, InputError
from specxform.teachers.base import Teacher

FILTERS = (32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)
STRIDES = (2, 1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1)

# Keras' logits for patches rng(1).normal(-4, 2, (2, 96, 64)) with random_keras_weights(0).
GOLDEN_FIRST = [
    [-0.1119332, 0.1429068, 0.0170814, 0.5051486, 0.3813354, 1.9858547],
    [-0.099772, 0.1269201, -0.0356171, 0.470072, 0.4177403, 1.9449135],
]
GOLDEN_LAST = [
    [-0.5343782, 0.7432079, 0.0135802, 0.2950285, -0.1171604, 0.2364707],
    [-0.5036464, 0.750174, 0.0030617, 0.3418498, -0.131911, 0.2682371],
]


# ------------------------------------------------------------------- official layout


def keras_layout() -> list[tuple[str, str, tuple[int, ...]]]:
    """(Keras layer, weight name, Keras shape) of YAMNet's 110 weights, in model order."""
    out: list[tuple[str, str, tuple[int, ...]]] = []

    def bn(layer: str, channels: int) -> None:
        for weight in ("beta", "moving_mean", "moving_variance"):
            out.append((layer, f"{layer}/{weight}:0", (channels,)))

    out.append(("layer1/conv", "layer1/conv/kernel:0", (3, 3, 1, 32)))
    bn("layer1/conv/bn", 32)
    for i in range(2, 15):
        c_in, c_out = FILTERS[i - 2], FILTERS[i - 1]
        dw, pw = f"layer{i}/depthwise_conv", f"layer{i}/pointwise_conv"
        out.append((dw, f"{dw}/depthwise_kernel:0", (3, 3, c_in, 1)))
        bn(f"{dw}/bn", c_in)
        out.append((pw, f"{pw}/kernel:0", (1, 1, c_in, c_out)))
        bn(f"{pw}/bn", c_out)
    out += [("logits", "logits/kernel:0", (1024, 521)), ("logits", "logits/bias:0", (521,))]
    return out


def random_keras_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """He-scaled weights (activations keep their size, so padding errors show)."""
    rng = np.random.default_rng(seed)
    weights = {}
    for _, name, shape in keras_layout():
        if name.endswith("moving_variance:0"):
            value = rng.uniform(0.5, 2.0, shape)
        elif name.endswith(("moving_mean:0", "beta:0", "bias:0")):
            value = rng.uniform(-0.3, 0.3, shape)
        else:
            if len(shape) == 2:
                fan_in = shape[0]
            else:
                fan_in = shape[0] * shape[1] * (1 if "depthwise" in name else shape[2])
            value = rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
        weights[name] = value.astype(np.float32)
    return weights


def write_official_h5(file: Path, weights: dict[str, np.ndarray], prefix: str = "") -> Path:
    """Write ``weights`` as Keras does: dataset ``<layer>/<weight name>``, names in attrs."""
    layers: dict[str, list[str]] = {}
    for layer, name, _ in keras_layout():
        layers.setdefault(layer, []).append(name)
    with h5py.File(file, "w") as h5:
        root = h5.create_group(prefix) if prefix else h5
        root.attrs["layer_names"] = [n.encode() for n in layers]
        for layer, names in layers.items():
            group = root.require_group(layer)
            group.attrs["weight_names"] = [n.encode() for n in names]
            for name in names:
                root[f"{layer}/{name}"] = weights[name]
    return file


def converted_state_dict(weights: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The test's own Keras -> PyTorch conversion, by explicit name mapping."""
    weight_of_dataset = {f"{layer}/{name}": name for layer, name, _ in keras_layout()}
    state = {}
    for key, dataset in h5_dataset_names().items():
        state[key] = torch.from_numpy(weights[weight_of_dataset[dataset]])
    for key, tensor in state.items():
        if tensor.ndim == 4 and "depthwise" in key:
            state[key] = tensor.permute(2, 3, 0, 1).contiguous()  # HWC1 -> C1HW
        elif tensor.ndim == 4:
            state[key] = tensor.permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
        elif tensor.ndim == 2:
            state[key] = tensor.T.contiguous()  # (in, out) -> (out, in)
    return state


@pytest.fixture(scope="module")
def keras_weights() -> dict[str, np.ndarray]:
    return random_keras_weights(0)


@pytest.fixture(scope="module")
def official_h5(tmp_path_factory: pytest.TempPathFactory, keras_weights: dict) -> Path:
    return write_official_h5(tmp_path_factory.mktemp("yamnet") / "yamnet.h5", keras_weights)


@pytest.fixture(scope="module")
def model(official_h5: Path) -> YAMNet:
    return YAMNet.from_h5(official_h5)


@pytest.fixture(scope="module")
def golden_patches() -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(1).normal(-4.0, 2.0, (2, 96, 64)).astype("f4"))


# ------------------------------------------------------------------------ architecture


def test_parameter_counts() -> None:
    yamnet = YAMNet()
    # Keras counts beta only (scale=False): 3,729,481. PyTorch ports with an affine
    # BatchNorm add one gamma per channel (10,944): 3,740,425, the paper's figure.
    assert yamnet.trainable_parameter_count() == KERAS_TRAINABLE_PARAMETERS == 3_729_481
    assert yamnet.batchnorm_channels() == 10_944
    assert yamnet.port_parameter_count() == PORT_PARAMETERS == 3_740_425


def test_one_state_dict_entry_per_official_dataset() -> None:
    state = YAMNet().state_dict()
    names = h5_dataset_names()
    assert len(state) == len(names) == len(keras_layout()) == 110
    assert set(state) == set(names)
    assert set(names.values()) == {f"{layer}/{name}" for layer, name, _ in keras_layout()}
    assert names["logits.weight"] == "logits/logits/kernel:0"
    assert names["layer7.depthwise_bn.running_var"] == (
        "layer7/depthwise_conv/bn/layer7/depthwise_conv/bn/moving_variance:0"
    )


def test_shape_chain_from_96x64_to_3x2(model: YAMNet) -> None:
    shapes: list[tuple[int, ...]] = []
    hooks = [
        getattr(model, f"layer{i}").register_forward_hook(
            lambda _m, _i, out: shapes.append(tuple(out.shape[1:]))
        )
        for i in range(1, 15)
    ]
    try:
        with torch.no_grad():
            embedding = model.embed(torch.zeros(1, 96, 64))
    finally:
        for hook in hooks:
            hook.remove()
    size = [96, 64]
    expected = []
    for filters, stride in zip(FILTERS, STRIDES, strict=True):
        size = [math.ceil(s / stride) for s in size]
        expected.append((filters, *size))
    assert shapes == expected
    assert shapes[-1] == (1024, 3, 2)
    assert embedding.shape == (1, 1024)


def test_tf_same_padding() -> None:
    assert tf_same_padding(96, 3, 2) == (0, 1)  # even size, stride 2: 0 before, 1 after
    assert tf_same_padding(48, 3, 1) == (1, 1)
    assert tf_same_padding(3, 3, 2) == (1, 1)  # odd size: symmetric
    assert tf_same_padding(64, 1, 1) == (0, 0)


def _numpy_same_conv(x: np.ndarray, kernel: np.ndarray, stride: int, depthwise: bool) -> np.ndarray:
    """TensorFlow SAME conv on (H, W, C) with a Keras kernel, by explicit loops."""
    h, w = x.shape[:2]
    kh, kw = kernel.shape[:2]
    (top, _), (left, _) = tf_same_padding(h, kh, stride), tf_same_padding(w, kw, stride)
    out_h, out_w = -(-h // stride), -(-w // stride)
    padded = np.zeros((h + kh, w + kw, x.shape[2]), np.float64)
    padded[top : top + h, left : left + w] = x
    out = []
    for i in range(out_h):
        row = []
        for j in range(out_w):
            window = padded[i * stride : i * stride + kh, j * stride : j * stride + kw]
            if depthwise:  # kernel (kh, kw, C, 1)
                row.append(np.einsum("hwc,hwc->c", window, kernel[..., 0]))
            else:  # kernel (kh, kw, C_in, C_out)
                row.append(np.einsum("hwc,hwco->o", window, kernel))
        out.append(row)
    return np.asarray(out)


def _numpy_bn_relu(x: np.ndarray, weights: dict, prefix: str) -> np.ndarray:
    mean, var = weights[f"{prefix}/moving_mean:0"], weights[f"{prefix}/moving_variance:0"]
    y = (x - mean) / np.sqrt(var + 1e-4) + weights[f"{prefix}/beta:0"]  # no gamma
    return np.maximum(y, 0.0)


def test_first_layers_match_a_numpy_reference(model: YAMNet, keras_weights: dict) -> None:
    """Layer 1 (conv s2) and layer 3's depthwise conv (s2) against explicit TF formulas."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1, 10, 8)).astype(np.float32)
    ref = _numpy_same_conv(x.transpose(1, 2, 0), keras_weights["layer1/conv/kernel:0"], 2, False)
    ref = _numpy_bn_relu(ref, keras_weights, "layer1/conv/bn")
    with torch.no_grad():
        out = model.layer1(torch.from_numpy(x)[:, None])[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)

    feature = rng.normal(size=(64, 6, 4)).astype(np.float32)  # (C, H, W) input of layer 3
    dw = keras_weights["layer3/depthwise_conv/depthwise_kernel:0"]
    ref = _numpy_same_conv(feature.transpose(1, 2, 0), dw, 2, True)
    ref = _numpy_bn_relu(ref, keras_weights, "layer3/depthwise_conv/bn")
    layer3 = model.layer3
    with torch.no_grad():
        out = torch.relu(
            layer3.depthwise_bn(layer3.depthwise_conv(torch.from_numpy(feature)[None]))
        )
    np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), ref, rtol=1e-5, atol=1e-5)


def test_logits_match_keras_golden_numbers(model: YAMNet, golden_patches: torch.Tensor) -> None:
    """Agreement with Keras was 1.2e-6; 1e-5 leaves room for float32 summation order.

    Symmetric (PyTorch-style) padding instead of SAME changes these logits by 0.66.
    """
    with torch.no_grad():
        logits = model.forward_patches(golden_patches.reshape(2, 1, 96, 64)[:, 0]).logits[:, 0]
    np.testing.assert_allclose(logits[:, :6].numpy(), GOLDEN_FIRST, atol=1e-5)
    np.testing.assert_allclose(logits[:, -6:].numpy(), GOLDEN_LAST, atol=1e-5)


# ----------------------------------------------------------------------------- weights


def test_h5_and_converted_state_dict_give_the_same_outputs(
    model: YAMNet, keras_weights: dict
) -> None:
    other = YAMNet().eval()
    load_yamnet_state_dict(other, converted_state_dict(keras_weights))
    mel = torch.randn(1, 144, 64) - 4.0  # two patches
    with torch.no_grad():
        a, b = model(mel), other(mel)
    torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=0)
    torch.testing.assert_close(a.probs, b.probs, rtol=0, atol=0)


def test_pretrained_accepts_h5_and_state_dict_files(
    official_h5: Path, model: YAMNet, tmp_path: Path
) -> None:
    from_h5 = YAMNet.pretrained(official_h5)
    pth = tmp_path / "yamnet.pth"
    torch.save({"state_dict": _port_layout(dict(model.state_dict()))}, pth)
    from_pth = YAMNet.pretrained(pth)
    assert not from_h5.training and not from_pth.training
    for key, value in model.state_dict().items():
        assert torch.equal(from_h5.state_dict()[key], value)
        assert torch.equal(from_pth.state_dict()[key], value)


def test_whole_model_h5_is_accepted(keras_weights: dict, tmp_path: Path, model: YAMNet) -> None:
    file = write_official_h5(tmp_path / "full.h5", keras_weights, prefix="model_weights")
    other = YAMNet.from_h5(file)
    for key, value in model.state_dict().items():
        assert torch.equal(other.state_dict()[key], value)


def test_h5_with_wrong_datasets_is_refused(keras_weights: dict, tmp_path: Path) -> None:
    weights = dict(keras_weights)
    file = write_official_h5(tmp_path / "bad.h5", weights)
    with h5py.File(file, "a") as h5:
        del h5["logits/logits/bias:0"]
        h5["extra/extra/kernel:0"] = np.zeros(3)
    with pytest.raises(CheckpointError) as info:
        load_yamnet_h5(YAMNet(), file)
    assert "missing datasets ['logits/logits/bias:0']" in str(info.value)
    assert "unexpected datasets ['extra/extra/kernel:0']" in str(info.value)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(CheckpointError, match="HDF5"):
        load_yamnet_h5(YAMNet(), junk)


def test_state_dict_mismatch_lists_keys(model: YAMNet) -> None:
    state = dict(model.state_dict())
    del state["layer2.pointwise_bn.bias"]
    state["layer99.weight"] = torch.zeros(1)
    state["logits.bias"] = torch.zeros(527)
    with pytest.raises(CheckpointError) as info:
        load_yamnet_state_dict(YAMNet(), state)
    message = str(info.value)
    assert "missing keys ['layer2.pointwise_bn.bias']" in message
    assert "unexpected keys ['layer99.weight']" in message
    assert "logits.bias: (527,) != (521,)" in message


def _port_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """This module's state dict renamed to the w-hc/torch_audioset port's keys."""
    port: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        layer, rest = key.split(".", 1)
        if layer == "logits":
            port[f"classifier.{rest}"] = value
            continue
        module, name = rest.split(".")
        inner = {"conv": "fused.conv", "bn": "fused.bn"}.get(module)
        if inner is None:  # depthwise_conv, depthwise_bn, pointwise_conv, pointwise_bn
            kind, part = module.split("_")
            inner = f"{kind}_conv.{part}"
        port[f"{layer}.{inner}.{name}"] = value
        if name == "bias":  # the port's affine BatchNorm keeps gamma at 1
            port[f"{layer}.{inner}.weight"] = torch.ones_like(value)
            port[f"{layer}.{inner}.num_batches_tracked"] = torch.tensor(0)
    return port


def test_torch_audioset_port_state_dict_loads(model: YAMNet) -> None:
    port = _port_layout(dict(model.state_dict()))
    assert "layer2.depthwise_conv.conv.weight" in port and "layer1.fused.bn.weight" in port
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    assert sum(v.numel() for k, v in port.items() if not k.endswith(buffers)) == PORT_PARAMETERS
    other = YAMNet().eval()
    load_yamnet_state_dict(other, port)
    for key, value in model.state_dict().items():
        assert torch.equal(other.state_dict()[key], value)
    port["layer5.pointwise_conv.bn.weight"] = torch.full_like(
        port["layer5.pointwise_conv.bn.weight"], 2.0
    )
    with pytest.raises(CheckpointError, match="scales != 1"):
        load_yamnet_state_dict(YAMNet(), port)


# ------------------------------------------------------------------- patches, clip-wise


@pytest.mark.parametrize(("frames", "patches"), [(96, 1), (143, 1), (144, 2), (192, 3)])
def test_patch_frames(frames: int, patches: int) -> None:
    mel = torch.arange(frames, dtype=torch.float32)[None, :, None].expand(2, frames, 64)
    out = patch_frames(mel)
    assert out.shape == (2, patches, 96, 64)
    for k in range(patches):
        assert torch.equal(out[:, k], mel[:, 48 * k : 48 * k + 96])


def test_too_short_input_is_refused(model: YAMNet) -> None:
    with pytest.raises(InputError, match="at least 96 frames, got 95") as info:
        model(torch.zeros(1, 95, 64))
    assert isinstance(info.value, ValueError)
    with pytest.raises(InputError, match="96 frames for one patch, got 50"):
        patch_frames(torch.zeros(1, 50, 64))
    with pytest.raises(InputError, match="64 Mel bands"):
        model(torch.zeros(1, 96, 128))


def test_clipwise_output_is_mean_of_patch_probabilities(model: YAMNet) -> None:
    assert isinstance(model, Teacher) and model.num_classes == 521 and model.min_frames == 96
    mel = torch.randn(2, 144, 64) - 4.0
    with torch.no_grad():
        clip, patches = model(mel), model.forward_patches(mel)
    assert patches.probs.shape == (2, 2, 521) and clip.probs.shape == (2, 521)
    torch.testing.assert_close(clip.probs, patches.probs.mean(dim=1))
    torch.testing.assert_close(torch.sigmoid(clip.logits), clip.probs)
    with torch.no_grad():
        single, single_patch = model(mel[:, :96]), model.forward_patches(mel[:, :96])
    assert torch.equal(single.logits, single_patch.logits[:, 0])  # one patch: exact


def test_clipwise_logits_stay_finite_when_saturated() -> None:
    from specxform_builtins.teachers.yamnet import _clip_logits

    # Two patches, three classes: mean probabilities 1/2, 3/4 and ~(e^-120 + e^-130) / 2,
    # the last of which underflows float32 (a naive logit(mean) would be -inf).
    z = torch.tensor([[[60.0, 60.0, -120.0], [-60.0, 0.0, -130.0]]])
    expected = torch.tensor([[0.0, math.log(3.0), -120.0 + math.log((1 + math.exp(-10)) / 2)]])
    logits = _clip_logits(z)
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(logits, expected)


@pytest.mark.parametrize(
    ("samples", "padded"),
    [(0, 15_600), (8_000, 15_600), (15_600, 15_600), (15_601, 23_280), (16_000, 23_280),
     (23_280, 23_280), (23_281, 30_960), (160_000, 161_520)],
)  # fmt: skip
def test_padded_length(samples: int, padded: int) -> None:
    assert padded_length(samples) == padded
    frames = 1 + (padded - 400) // 160  # 25 ms window, 10 ms hop, not centred
    assert (frames - 96) % 48 == 0  # the last patch is complete


def test_pad_waveform_numpy_and_torch() -> None:
    wave = np.ones((2, 16_000), np.float32)
    padded = pad_waveform(wave)
    assert isinstance(padded, np.ndarray) and padded.shape == (2, 23_280)
    assert padded[:, 16_000:].sum() == 0 and padded[:, :16_000].all()
    tensor = pad_waveform(torch.ones(100))
    assert isinstance(tensor, torch.Tensor) and tensor.shape == (15_600,)


# ------------------------------------------------------------------------- class maps


def test_parse_class_map(tmp_path: Path) -> None:
    text = (
        "index,mid,display_name\n0,/m/09x0r,Speech\n"
        '1,/m/0ytgt,"Child speech, kid speaking"\n2,/m/01h8n0,Conversation\n'
    )
    entries = parse_class_map(text)
    assert entries[1] == ClassMapEntry(1, "/m/0ytgt", "Child speech, kid speaking")
    file = tmp_path / "yamnet_class_map.csv"
    file.write_text(text)
    assert read_class_map(file) == entries
    with pytest.raises(InputError, match="header"):
        parse_class_map("idx,mid,name\n0,/m/x,X\n")
    with pytest.raises(InputError, match="index 5, expected 1"):
        parse_class_map("index,mid,display_name\n0,/m/a,A\n5,/m/b,B\n")
    with pytest.raises(InputError, match="line 2"):
        parse_class_map("index,mid,display_name\n0,/m/a\n")


def test_audioset_index_map() -> None:
    assert len(YAMNET_TO_AUDIOSET) == 521
    assert YAMNET_DROPPED_AUDIOSET_INDICES == (1, 2, 12, 32, 33, 277)
    assert list(YAMNET_TO_AUDIOSET) == sorted(YAMNET_TO_AUDIOSET)  # order kept
    # Spot checks taken from the public class maps (AudioSet index, YAMNet index, mid).
    for audioset, yamnet, _mid in [
        (0, 0, "/m/09x0r"),  # Speech
        (3, 1, "/m/0ytgt"),  # Child speech
        (13, 10, "/t/dd00135"),  # Children shouting (after Battle cry, 12)
        (34, 29, "/t/dd00005"),  # Child singing (after Male/Female singing, 32-33)
        (278, 272, "/t/dd00033"),  # Sad music (after Funny music, 277)
        (283, 277, "/m/03m9d0z"),  # Wind
        (526, 520, "/m/07hvw1"),  # Field recording
    ]:
        assert YAMNET_TO_AUDIOSET[yamnet] == audioset


def test_class_conversions_round_trip() -> None:
    scores = torch.rand(3, 527)
    yamnet = audioset_to_yamnet(scores)
    assert yamnet.shape == (3, 521)
    back = yamnet_to_audioset(yamnet, fill=-1.0)
    kept = list(YAMNET_TO_AUDIOSET)
    assert torch.equal(back[:, kept], scores[:, kept])
    assert (back[:, list(YAMNET_DROPPED_AUDIOSET_INDICES)] == -1.0).all()
    with pytest.raises(InputError, match="527"):
        audioset_to_yamnet(torch.zeros(521))


def test_check_class_maps() -> None:
    audioset = [ClassMapEntry(i, f"/m/{i}", f"c{i}") for i in range(527)]
    yamnet = [ClassMapEntry(j, f"/m/{i}", f"c{i}") for j, i in enumerate(YAMNET_TO_AUDIOSET)]
    check_class_maps(yamnet, audioset)
    yamnet[10] = ClassMapEntry(10, "/m/12", "Battle cry")
    with pytest.raises(InputError, match="YAMNet 10 /m/12 vs AudioSet 13 /m/13"):
        check_class_maps(yamnet, audioset)


def test_a_retrained_teacher_loads_in_the_form_of_its_weights() -> None:
    """A retrained YAMNet built from TFLite weights (BatchNorm folded into biases) is saved as
    a bare state dict; the checkpoint loader's untrained module must take that form."""
    from specxform_builtins.teachers.yamnet import YAMNet

    folded = YAMNet(activation="relu6", folded_batchnorm=True).state_dict()
    untrained = YAMNet()  # what the factory builds without weights: BatchNorm, ReLU
    shaped = untrained.shaped_like(folded)
    assert shaped.folded_batchnorm and shaped.activation == "relu6"
    shaped.load_state_dict(folded, strict=True)
    assert untrained.shaped_like(YAMNet().state_dict()) is untrained
