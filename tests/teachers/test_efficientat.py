"""EfficientAT mn04_as: the MobileNetV3 port against the official file and an ONNX export.

The weight files live in ../shared/weights and the clips in ../shared/data (never in
the repository); tests that need them skip with the reason when a folder, a file or
onnxruntime is absent.

Parity (float32, the port against onnxruntime 1.32 running ``mn04_as.onnx`` on the same
``efficientat`` log-Mel, one thread), measured on 30 UrbanSound8K fold-1 clips (the
first 3 of each class, 4 s, 400 frames, one batch): largest |logit difference| 2.2e-5
for logits of magnitude up to 18, i.e. about 150 float32 ulps, what ~50 layers of
differently ordered float32 sums (and the export's BatchNorm folded into the
convolutions) leave; largest |probability difference| 9.4e-7; top-1 agreement 30 of 30
(clip by clip on 24 other clips: 1.7e-5). Tests assert 1e-4 (4.5x the measured maximum).
"""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from specxform_builtins.efficientat import MN04, OFFICIAL_TENSOR_COUNT, divisible
from specxform_builtins.efficientat_plugin import MN04_PARAMETERS, MN04_WEIGHTS
from specxform_builtins.mels import efficientat

from specxform.audio import load_audio
from specxform.errors import CheckpointError, InputError
from specxform.representations.frontend import RepresentationTransform
from specxform.weights import load_torch_file

ROOT = Path(__file__).resolve().parents[2]
SHARED_WEIGHTS = Path(
    os.environ.get("SPECXFORM_SHARED_WEIGHTS", ROOT.parent / "shared" / "weights")
)
OFFICIAL = SHARED_WEIGHTS / "mn04_as_mAP_432.pt"
ONNX = SHARED_WEIGHTS / "mn04_as.onnx"
LABELS = SHARED_WEIGHTS / "class_labels_indices.csv"
SHARED_DATA = Path(os.environ.get("SPECXFORM_SHARED_DATA", ROOT.parent / "shared" / "data"))
US8K = SHARED_DATA / "urbansound8k"
#: Largest |logit difference| to onnxruntime allowed (module doc: 2.2e-5 measured).
LOGIT_TOLERANCE = 1e-4


def _need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"{path.name} not found in {path.parent} (set SPECXFORM_SHARED_WEIGHTS)")
    return path


@pytest.fixture(scope="module")
def model() -> MN04:
    torch.set_num_threads(1)
    return MN04.from_checkpoint(_need(OFFICIAL))


@pytest.fixture(scope="module")
def session():
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (test extra)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(_need(ONNX)), options, providers=["CPUExecutionProvider"])


def fold1(per_class: int, classes: tuple[str, ...] | None = None) -> list[tuple[str, Path]]:
    """(class, file) of the first ``per_class`` fold-1 clips of each class, in metadata order."""
    meta = US8K / "metadata" / "UrbanSound8K.csv"
    if not meta.is_file():
        pytest.skip(f"UrbanSound8K fold 1 not found at {US8K} (set SPECXFORM_SHARED_DATA)")
    with meta.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    wanted = sorted({r["class"] for r in rows}) if classes is None else classes
    return [(label, US8K / "audio" / "fold1" / r["slice_file_name"]) for label in wanted
            for r in [r for r in rows if r["class"] == label][:per_class]]


def mels(files: list[Path]) -> torch.Tensor:
    """``efficientat`` log-Mels of equally long clips, (clips, frames, 128)."""
    transform = RepresentationTransform(efficientat())
    audio = [load_audio(f, sample_rate=32_000)[0] for f in files]
    return transform(torch.from_numpy(np.stack(audio)))


def compare(model: MN04, session, mel: torch.Tensor) -> tuple[float, float, float]:
    """Largest |dlogit|, largest |dprob| and top-1 agreement of the port and onnxruntime."""
    with torch.inference_mode():
        ours = model(mel).logits.numpy()
    spec = mel.transpose(1, 2).unsqueeze(1).numpy()  # (batch, 1, 128, frames)
    reference = session.run(None, {"spec": spec})[0]
    assert ours.shape == reference.shape == (mel.shape[0], 527)
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    return (float(np.abs(ours - reference).max()),
            float(np.abs(sigmoid(ours) - sigmoid(reference)).max()),
            float(np.mean(ours.argmax(1) == reference.argmax(1))))


# -- the official file ----------------------------------------------------------------


def test_weight_file_constant_describes_the_official_release() -> None:
    assert (MN04_WEIGHTS.name, MN04_WEIGHTS.filename) == ("efficientat-mn04", "mn04_as_mAP_432.pt")
    assert MN04_WEIGHTS.url == ("https://github.com/fschmid56/EfficientAT/releases/download/"
                                "v0.0.1/mn04_as_mAP_432.pt")
    assert (MN04_WEIGHTS.size, MN04_WEIGHTS.md5) == (4_066_513, "d288913b10fd32c968b3d756236060a6")


def test_shared_copy_is_the_official_file() -> None:
    data = _need(OFFICIAL).read_bytes()
    assert len(data) == MN04_WEIGHTS.size
    assert hashlib.md5(data, usedforsecurity=False).hexdigest() == MN04_WEIGHTS.md5


def test_official_state_dict_loads_strictly_with_every_tensor() -> None:
    state = load_torch_file(_need(OFFICIAL))  # torch.load(weights_only=True)
    assert len(state) == OFFICIAL_TENSOR_COUNT == 312
    assert tuple(state["classifier.5.weight"].shape) == (527, 512)
    model = MN04()
    assert set(model.state_dict()) == set(state)
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert model.trainable_parameter_count() == MN04_PARAMETERS == 983_599
    assert sum(t.numel() for k, t in state.items()
               if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
               ) == MN04_PARAMETERS


def test_a_foreign_state_dict_is_refused_with_the_keys() -> None:
    state = MN04().state_dict()
    state.pop("classifier.5.bias")
    state["classifier.5.weight"] = torch.zeros(521, 512)
    with pytest.raises(CheckpointError, match=r"missing keys \['classifier.5.bias'\].*"
                       r"classifier.5.weight: \(521, 512\) != \(527, 512\)"):
        _load(state)
    with pytest.raises(CheckpointError, match="plain state dict"):
        _load({"model": state})


def _load(state: object) -> None:
    from specxform_builtins.efficientat import load_efficientat_state_dict

    load_efficientat_state_dict(MN04(), state)


def test_channel_widths_follow_the_width_multiplier() -> None:
    """0.4 x MobileNetV3-Large's channels, rounded to multiples of 8 within 10 %."""
    assert [divisible(c * 0.4) for c in (16, 64, 72, 120, 184, 672, 960, 1280)] == [
        8, 24, 32, 48, 72, 272, 384, 512]


# -- parity with the ONNX export ----------------------------------------------------------


def test_equals_onnxruntime_on_three_real_clips(model: MN04, session) -> None:
    clips = fold1(1, ("dog_bark", "siren", "street_music"))
    logit, prob, top1 = compare(model, session, mels([f for _, f in clips]))
    assert logit < LOGIT_TOLERANCE and prob < LOGIT_TOLERANCE / 4 and top1 == 1.0


@pytest.mark.slow
def test_equals_onnxruntime_on_30_real_clips(model: MN04, session) -> None:
    clips = fold1(3)
    assert len(clips) == 30 and len({label for label, _ in clips}) == 10
    logit, prob, top1 = compare(model, session, mels([f for _, f in clips]))
    assert logit < LOGIT_TOLERANCE and prob < LOGIT_TOLERANCE / 4 and top1 == 1.0


@pytest.mark.parametrize("frames", [32, 33, 101, 1000])
def test_any_length_from_min_frames_works_and_matches(model: MN04, session,
                                                      frames: int) -> None:
    """Odd lengths exercise the ceil of the five stride-2 halvings; 1,000 frames is 10 s."""
    mel = torch.randn(2, frames, 128, generator=torch.Generator().manual_seed(frames))
    logit, _, top1 = compare(model, session, mel)
    assert logit < LOGIT_TOLERANCE and top1 == 1.0


def test_fewer_than_min_frames_is_refused() -> None:
    with pytest.raises(InputError, match="at least 32 frames"):
        MN04().eval()(torch.zeros(1, 31, 128))
    with pytest.raises(InputError, match="128 Mel bands"):
        MN04().eval()(torch.zeros(1, 100, 64))


# -- labels and registration ----------------------------------------------------------------


def test_labels_are_the_audioset_display_names(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    """Read as the PANNs read them (class_labels_indices.csv in the weight cache)."""
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / LABELS.name).symlink_to(_need(LABELS))
    monkeypatch.setenv("SPECXFORM_HOME", str(tmp_path))
    monkeypatch.delenv("SPECXFORM_WEIGHTS_PATH", raising=False)  # only the cache is searched
    names = MN04.labels()
    assert len(names) == 527
    assert (names[0], names[74], names[137], names[396]) == ("Speech", "Dog", "Music", "Siren")


def test_registered_teacher(registry) -> None:
    entry = registry.teacher("efficientat_mn04")
    assert (entry.target, entry.num_classes, entry.parameter_count) == (
        "efficientat", 527, MN04_PARAMETERS)
    assert (entry.chunk_seconds, entry.normalise) == (10.0, "none")
    assert registry.representation("efficientat").n_bands == MN04.n_mels
    teacher = entry.factory(weights=_need(OFFICIAL))
    assert isinstance(teacher, MN04) and not teacher.training
    assert torch.equal(teacher.classifier[5].bias, load_torch_file(OFFICIAL)["classifier.5.bias"])


def test_sensible_classes_on_real_clips(model: MN04) -> None:
    """Top-1 on the first 5 fold-1 clips of three classes, 4 s each, as measured:
    street_music 4 x Music, 1 x Accordion; siren 5 x Emergency vehicle; dog_bark 2 x Dog,
    2 x Animal, 1 x Owl. AudioSet's parent class often wins on dog barks: over all 100
    fold-1 dog_bark clips top-1 is Animal 53, Dog 15; Dog is in the top 3 of 71."""
    names = _labels()
    top: dict[str, list[str]] = {}
    for label in ("street_music", "siren", "dog_bark"):
        files = [f for _, f in fold1(5, (label,))]
        with torch.inference_mode():
            top[label] = [names[i] for i in model(mels(files)).logits.argmax(1).tolist()]
    assert top["street_music"].count("Music") >= 4
    sirens = {"Siren", "Emergency vehicle", "Police car (siren)", "Ambulance (siren)",
              "Fire engine, fire truck (siren)", "Civil defense siren"}
    assert sum(n in sirens for n in top["siren"]) >= 4
    assert sum(n in {"Dog", "Animal", "Domestic animals, pets", "Bark"}
               for n in top["dog_bark"]) >= 4


def _labels() -> list[str]:
    with _need(LABELS).open(newline="", encoding="utf-8") as fh:
        return [row["display_name"] for row in csv.DictReader(fh)]
