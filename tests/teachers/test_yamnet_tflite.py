"""YAMNet from Google's official int8 TFLite files, read with the LiteRT interpreter.

The weight files live in ../shared/weights and the clips in ../shared/data (never
in the repository); the tests that need them skip with the reason when a folder
or ai-edge-litert is absent. The format tests write small files of their own.

Parity figures (the port with the dequantized weights, float32, against the int8
interpreter on the same log-Mel patches; patches of 96 frames, hop 48, of 4 s
clips: 7 per clip; clip = mean of the patch probabilities). Measured once with
:func:`parity` and asserted below with a margin:

============================  =======  ========  ==============  ==========
clips, file                   patches  top-1     top-1 per clip  max |dp|
============================  =======  ========  ==============  ==========
excerpt (102), Coral, ReLU6   714      91.7 %    95.1 % (97)     0.100
excerpt (102), Coral, ReLU    714      88.9 %    92.2 % (94)     0.979
excerpt (102), Hub, ReLU6     714      91.6 %    96.1 % (98)     0.083
excerpt (102), Hub, ReLU      714      88.1 %    93.1 % (95)     0.979
fold 1 (873), Coral, ReLU6    6,111    91.8 %    97.7 % (853)    0.110
fold 1 (873), Coral, ReLU     6,111    87.2 %    90.4 % (789)    0.992
fold 1 (873), Hub, ReLU6      6,111    91.1 %    97.1 % (848)    0.130
fold 1 (873), Hub, ReLU       6,111    86.4 %    90.8 % (793)    0.988
============================  =======  ========  ==============  ==========

The Hub file's agreement is measured against its own front end on the waveform
windows (15,600 samples, hop 7,680) that give the same patches. The clips are
16 kHz after the project's resampling and are not zero-padded (7 patches per 4 s).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import attrs
import h5py
import numpy as np
import pytest
import torch
from specxform_builtins.teachers import yamnet as yamnet_module
from specxform_builtins.teachers.yamnet import (
    YAMNet,
    fold_batchnorm,
    load_yamnet_weights,
    patch_frames,
    state_dict_from_tflite,
    weight_file_format,
)

from specxform.errors import CheckpointError, InputError
from specxform.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
SHARED_WEIGHTS = Path(
    os.environ.get("SPECXFORM_SHARED_WEIGHTS", ROOT.parent / "shared" / "weights")
)
CORAL = SHARED_WEIGHTS / "yamnet_spectra_in.tflite"
HUB = SHARED_WEIGHTS / "lite-model_yamnet_classification_tflite_1.tflite"
SHARED_DATA = Path(os.environ.get("SPECXFORM_SHARED_DATA", ROOT.parent / "shared" / "data"))
EXCERPT = SHARED_DATA / "urbansound8k-excerpt"
FOLD1 = SHARED_DATA / "urbansound8k" / "audio" / "fold1"

#: Measured on all clips (module docstring); the slow test asserts them with a margin.
SLOW_FIGURES: dict[str, dict[str, dict[str, float]]] = {
    "excerpt": {
        "coral": {"clips": 102, "patches": 714, "per_patch": 655 / 714, "per_clip": 97 / 102,
                  "max_prob_diff": 0.100},
        "hub": {"clips": 102, "patches": 714, "per_patch": 654 / 714, "per_clip": 98 / 102,
                "max_prob_diff": 0.083},
    },
    "fold1": {
        "coral": {"clips": 873, "patches": 6111, "per_patch": 5612 / 6111,
                  "per_clip": 853 / 873, "max_prob_diff": 0.110},
        "hub": {"clips": 873, "patches": 6111, "per_patch": 5567 / 6111,
                "per_clip": 848 / 873, "max_prob_diff": 0.130},
    },
}  # fmt: skip


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


def _interpreter(file: Path, preserve_all_tensors: bool = False) -> Any:
    """LiteRT's interpreter on ``file``, one thread, tensors allocated.

    ``preserve_all_tensors`` keeps the intermediate tensors readable after
    ``invoke`` (the Hub graph's log-Mel); LiteRT warns that this is for debugging.
    """
    import warnings

    from ai_edge_litert.interpreter import Interpreter

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Warning: Enabling `experimental_preserve_all")
        interpreter = Interpreter(
            model_path=str(file),
            num_threads=1,
            experimental_preserve_all_tensors=preserve_all_tensors,
        )
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


# ------------------------------------------------------------- TensorFlow Hub's file


@pytest.fixture(scope="module")
def hub() -> Path:
    return _need(HUB)


@pytest.fixture(scope="module")
def hub_model(hub: Path) -> YAMNet:
    return YAMNet.from_tflite(hub)


def test_hub_file_holds_the_same_network_after_its_front_end(
    hub: Path, coral_state: dict[str, torch.Tensor]
) -> None:
    """Same 27 int8 kernels; the biases differ by requantization only.

    A bias is stored in units of (input scale x kernel scale), and the two graphs
    calibrated their activation scales separately: measured at most 7.8e-4 of a
    tensor's largest bias (3 of 28 bias tensors differ at all).
    """
    hub_state = state_dict_from_tflite(hub)
    assert list(hub_state) == list(coral_state)
    for key, value in hub_state.items():
        if key.endswith("weight"):
            assert torch.equal(value, coral_state[key]), key
        else:
            scale = coral_state[key].abs().max()
            assert (value - coral_state[key]).abs().max() <= 2e-3 * scale, key
    model = YAMNet.pretrained(hub)
    assert model.activation == "relu6" and model.folded_batchnorm


# ------------------------------------------------------------ parity on real clips


@attrs.frozen
class Parity:
    """Top-1 agreement of the port with the interpreter, per patch and per clip."""

    clips: int
    patches: int
    patch_agree: int
    clip_agree: int
    max_prob_diff: float

    @property
    def per_patch(self) -> float:
        return self.patch_agree / self.patches

    @property
    def per_clip(self) -> float:
        return self.clip_agree / self.clips


@attrs.frozen
class Reference:
    """The interpreter's patch probabilities on one clip, and the clip's own log-Mel."""

    mel: np.ndarray  # (frames, 64): the project's `yamnet` representation
    probs: np.ndarray  # (patches, 521)
    internal_mel: np.ndarray | None  # (patches, 96, 64): the Hub graph's log-Mel tensor
    internal_peak: np.ndarray | None  # (patches,): largest |X| of the Hub graph's spectrum


def excerpt_subset() -> list[Path]:
    """12 clips of the excerpt, every 9th in name order (all 9 classes)."""
    files = sorted(EXCERPT.glob("*/*.wav"))
    if not files:
        pytest.skip(f"real recordings not found at {EXCERPT} (set SPECXFORM_SHARED_DATA)")
    return files[::9]


def _invoke(interpreter: Any, x: np.ndarray) -> np.ndarray:
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0].copy()


def _tensor(interpreter: Any, name: str, shape: tuple[int, ...]) -> int:
    """Index of the one tensor whose name contains ``name`` with shape ``shape``."""
    found = [
        d["index"]
        for d in interpreter.get_tensor_details()
        if name in d["name"] and tuple(d["shape"]) == shape
    ]
    assert len(found) == 1, (name, shape, found)
    return found[0]


def reference(interpreter: Any, file: Path, waveform_in: bool) -> Reference:
    """Run a YAMNet interpreter on every patch of ``file``.

    The Coral file takes the project's log-Mel patches; the Hub file takes the
    waveform windows (15,600 samples, hop 7,680) whose frames are those patches.
    """
    from specxform import api
    from specxform.audio import load_audio

    wave, _ = load_audio(file, sample_rate=16_000)
    mel = api.compute("yamnet", wave, 16_000)
    patches = patch_frames(torch.from_numpy(mel)[None])[0].numpy()
    if not waveform_in:
        probs = [_invoke(interpreter, patch[None]) for patch in patches]
        return Reference(mel, np.stack(probs), None, None)
    log_mel = _tensor(interpreter, "log_mel_spectrogram", (96, 64))
    magnitude = _tensor(interpreter, "magnitude_spectrogram", (96, 257))
    probs, internal, peaks = [], [], []
    for k in range(len(patches)):
        window = np.ascontiguousarray(wave[k * 7_680 : k * 7_680 + 15_600], np.float32)
        probs.append(_invoke(interpreter, window))
        internal.append(interpreter.get_tensor(log_mel).copy())
        peaks.append(float(interpreter.get_tensor(magnitude).max()))
    return Reference(mel, np.stack(probs), np.stack(internal), np.asarray(peaks))


def parity(model: YAMNet, references: list[Reference]) -> Parity:
    """Compare ``model`` on each clip's log-Mel with the interpreter's probabilities."""
    patch_agree = clip_agree = patches = 0
    max_diff = 0.0
    for ref in references:
        with torch.no_grad():
            ours = model.forward_patches(torch.from_numpy(ref.mel)[None]).probs[0].numpy()
        assert ours.shape == ref.probs.shape
        patches += len(ours)
        patch_agree += int((ours.argmax(1) == ref.probs.argmax(1)).sum())
        clip_agree += int(ours.mean(0).argmax() == ref.probs.mean(0).argmax())
        max_diff = max(max_diff, float(np.abs(ours - ref.probs).max()))
    return Parity(len(references), patches, patch_agree, clip_agree, max_diff)


def front_end_difference(references: list[Reference]) -> tuple[float, float]:
    """Largest difference of the Hub graph's log-Mel from the project's ``yamnet`` one.

    Returns
    -------
    log : float
        Max absolute difference of the natural-log Mel values.
    linear : float
        Max over patches of max |Mel difference| / the patch's largest spectral
        magnitude |X| (read from the Hub graph): float32 FFT rounding scales with
        the largest component of the spectrum, in or out of the Mel range. The
        error in the domain where both compute, free of the ``1 / (x + 0.001)``
        amplification of ``ln`` in weak bands.
    """
    log = linear = 0.0
    for ref in references:
        assert ref.internal_mel is not None and ref.internal_peak is not None
        ours = patch_frames(torch.from_numpy(ref.mel)[None])[0].numpy().astype(np.float64)
        theirs = ref.internal_mel.astype(np.float64)
        log = max(log, float(np.abs(ours - theirs).max()))
        error = np.abs(np.exp(ours) - np.exp(theirs)).max(axis=(1, 2))
        # below the log's own floor (0.001) a Mel value is only its rounding: silent patches
        linear = max(linear, float((error / np.maximum(ref.internal_peak, 1e-3)).max()))
    return log, linear


@pytest.fixture(scope="module")
def coral_refs(coral: Path) -> list[Reference]:
    interpreter = _interpreter(coral)
    return [reference(interpreter, f, waveform_in=False) for f in excerpt_subset()]


@pytest.fixture(scope="module")
def hub_refs(hub: Path) -> list[Reference]:
    interpreter = _interpreter(hub, preserve_all_tensors=True)
    return [reference(interpreter, f, waveform_in=True) for f in excerpt_subset()]


def test_parity_with_the_coral_interpreter_on_real_clips(
    coral: Path, coral_model: YAMNet, coral_refs: list[Reference], one_torch_thread: None
) -> None:
    """12 clips, 84 patches. Measured: ReLU6 76/84 patches (90.5 %), 12/12 clips, max
    |dp| 0.088; ReLU 76/84, 12/12, max |dp| 0.24. The margin allows 2 more patches
    (the deterministic interpreter and port give the same figures on every run; the
    margin is for other LiteRT builds). The graph's own activation is ReLU6: its
    probabilities stay within 0.1 of the int8 graph's, ReLU's do not (on all 714
    patches of the excerpt: 0.100 against 0.979, module docstring)."""
    relu6 = parity(coral_model, coral_refs)
    relu = parity(YAMNet.from_tflite(coral, activation="relu"), coral_refs)
    assert (relu6.clips, relu6.patches) == (12, 84)
    assert relu6.patch_agree >= 74 and relu6.clip_agree >= 11
    assert relu6.max_prob_diff < 0.1
    assert relu.max_prob_diff > 0.2


def test_parity_with_the_hub_interpreter_on_real_clips(
    hub_model: YAMNet, hub_refs: list[Reference], one_torch_thread: None
) -> None:
    """Same 12 clips through the Hub file's own front end: measured 78/84 patches
    (92.9 %), 12/12 clips, max |dp| 0.083 (ReLU: 76/84, 0.16)."""
    result = parity(hub_model, hub_refs)
    assert (result.clips, result.patches) == (12, 84)
    assert result.patch_agree >= 76 and result.clip_agree >= 11
    assert result.max_prob_diff < 0.1


def test_hub_front_end_equals_the_yamnet_representation(hub_refs: list[Reference]) -> None:
    """The Hub graph's internal log-Mel is the project's ``yamnet`` target.

    Both compute in float32 with different FFTs, so they agree to float32 rounding
    in the linear Mel domain. That rounding scales with the largest spectral
    magnitude |X| of the patch: measured at most 6.4e-7 of it here (5 float32 eps),
    8.5e-7 on the excerpt's 714 patches and 1.9e-6 (16 eps) on fold 1's 6,111:
    bound 1e-5. ``ln(x + 0.001)`` multiplies an absolute error by up to 1 / 0.001
    in weak bands, so the log-domain figure grows with loudness: measured 1.7e-5
    here, 1.6e-4 on the excerpt and 3.6e-3 on fold 1 (its loudest clips, |X| ~ 100):
    bound 1e-2. Shifting the waveform by one sample already changes the log-Mel by
    0.18 (by 2.7 for the 56 samples of a centred ``torch.stft``): the bound is 18
    times finer than the smallest framing error.
    """
    log, linear = front_end_difference(hub_refs)
    assert linear < 1e-5
    assert log < 1e-2


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["excerpt", "fold1"])
def test_parity_on_all_clips(
    dataset: str, coral: Path, hub: Path, coral_model: YAMNet, hub_model: YAMNet
) -> None:
    """Figures measured on all clips (module docstring), asserted with a margin."""
    folder = EXCERPT if dataset == "excerpt" else FOLD1
    files = sorted(folder.glob("*/*.wav") if dataset == "excerpt" else folder.glob("*.flac"))
    if not files:
        pytest.skip(f"real recordings not found at {folder} (set SPECXFORM_SHARED_DATA)")
    torch.set_num_threads(1)
    coral_it, hub_it = _interpreter(coral), _interpreter(hub, preserve_all_tensors=True)
    coral_p = parity(coral_model, [reference(coral_it, f, waveform_in=False) for f in files])
    hub_refs = [reference(hub_it, f, waveform_in=True) for f in files]
    hub_p = parity(hub_model, hub_refs)
    expected = SLOW_FIGURES[dataset]
    for name, got in (("coral", coral_p), ("hub", hub_p)):
        want = expected[name]
        assert (got.clips, got.patches) == (want["clips"], want["patches"]), name
        assert got.per_patch >= max(0.90, want["per_patch"] - 0.01), (name, got)
        assert got.per_clip >= want["per_clip"] - 0.02, (name, got)
        assert got.max_prob_diff < want["max_prob_diff"] + 0.05, (name, got)
    log, linear = front_end_difference(hub_refs)
    assert linear < 1e-5 and log < 1e-2


# --------------------------------------------------------------------------- the CLI


def test_cli_weights_takes_any_of_the_three_formats_by_content(
    hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``classify --weights`` with the Hub file under a PyTorch-looking name, and a junk
    file under YAMNet's own name. The HDF5 and PyTorch paths are covered by
    ``YAMNet.pretrained`` in test_yamnet.py (the CLI hands the path to the same factory)."""
    from specxform.cli.main import main

    class_map = SHARED_WEIGHTS / "yamnet_class_map.csv"
    clip = EXCERPT / "street_music" / "108041-9-0-11.wav"
    if not (class_map.is_file() and clip.is_file()):
        pytest.skip(f"{class_map.name} or the excerpt clip not found under ../shared")
    cache = tmp_path / "home" / "weights"
    cache.mkdir(parents=True)
    (cache / class_map.name).symlink_to(class_map)  # the class names, linked, not copied
    monkeypatch.setenv("SPECXFORM_HOME", str(tmp_path / "home"))
    misnamed = tmp_path / "yamnet.pt"
    misnamed.symlink_to(hub)
    argv = ["classify", "--teacher", "yamnet", "--top", "3", "--json", str(clip)]
    assert main([*argv, "--weights", str(misnamed)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["clips"]["108041-9-0-11"]["top"][0]["label"] == "Music"  # measured 0.88

    junk = tmp_path / "yamnet.h5"
    junk.write_bytes(b"ONNX" + bytes(60))
    assert main([*argv, "--weights", str(junk)]) != 0
    assert "yamnet.h5 is not a YAMNet weight file" in capsys.readouterr().err
