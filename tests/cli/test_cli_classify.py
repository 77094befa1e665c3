"""``specxform classify``: a teacher on true Mels of audio, per window and per clip.

SoundAQnet (the real offline teacher) runs once per session on short excerpts of
real clips (its ISO 532-1 loudness costs about 2.5 s per second of audio); the
output formats and error paths use a tiny fake teacher registered as a plugin.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import matplotlib.image
import numpy as np
import pytest
import soundfile
import torch
from torch import Tensor, nn

import specxform
from specxform import api, plugins
from specxform.audio import load_audio, resample
from specxform.cli.classify import CSV_COLUMNS
from specxform.cli.main import main
from specxform.plugins import get_registry
from specxform.registry import Registry
from specxform.teachers.base import Teacher, TeacherOutput
from specxform.teachers.labels import read_label_file
from specxform.weights import WeightFile

EXCERPT = "urbansound8k-excerpt"
#: Real clips with sound from their first sample (4 s each, 22,050 Hz).
CLIPS = ("street_music/108041-9-0-11.wav", "dog_bark/101415-3-0-3.wav")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- fakes


class FakeTeacher(Teacher):
    """4 classes on the PANN Mel: sigmoid of a fixed linear map of the time-mean Mel."""

    num_classes: ClassVar[int] = 4
    min_frames: ClassVar[int] = 32

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, self.num_classes)
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in self.fc.parameters():
                p.copy_(0.05 * torch.randn(p.shape, generator=generator))

    @classmethod
    def labels(cls) -> tuple[str, ...]:
        return read_label_file("fake-labels", cls.num_classes)

    def forward(self, mel: Tensor, aux: Mapping[str, Tensor] | None = None) -> TeacherOutput:
        self.check_input(mel, aux)
        logits = self.fc(mel.mean(dim=1) / 10)
        return TeacherOutput(logits, torch.sigmoid(logits))


class FakeAuxTeacher(FakeTeacher):
    """FakeTeacher plus an aux input, the window's length in samples at the file's rate."""

    aux_inputs: ClassVar[tuple[str, ...]] = ("length",)

    def aux_from_audio(self, audio: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        return {"length": np.array([len(audio) / sample_rate])}

    def forward(self, mel: Tensor, aux: Mapping[str, Tensor] | None = None) -> TeacherOutput:
        self.check_input(mel, aux)
        assert aux is not None
        logits = self.fc(mel.mean(dim=1) / 10) + aux["length"]
        return TeacherOutput(logits, torch.sigmoid(logits))


factory_calls: list[Any] = []


def _fake(weights: Any = None, *, pretrained: bool = True) -> FakeTeacher:
    factory_calls.append(weights)
    return FakeTeacher()


FAKE_LABELS = WeightFile(name="fake-labels", filename="fake_labels.csv",
                         url="http://127.0.0.1:9/fake.csv")


class FakePlugin:
    @specxform.hookimpl
    def specxform_add_teachers(self, registry: Registry) -> None:
        registry.add_weight_file(FAKE_LABELS)
        registry.add_teacher("fake", target="pann", factory=_fake, num_classes=4)
        registry.add_teacher("fake_aux", target="pann", num_classes=4, aux_inputs=("length",),
                             factory=lambda weights=None, **_: FakeAuxTeacher())


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty weight cache, no search path, and no network."""
    monkeypatch.setenv("SPECXFORM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SPECXFORM_WEIGHTS_PATH", raising=False)

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    return tmp_path / "home"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, home: Path) -> Registry:
    loaded = plugins.load_plugins(extra=[("fake", FakePlugin())])
    monkeypatch.setattr(plugins, "get_registry", lambda: loaded.registry)
    factory_calls.clear()
    return loaded.registry


@pytest.fixture
def clip(shared_data: Path) -> Path:
    return shared_data / EXCERPT / CLIPS[0]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["classify", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def _full_vectors(timeline_or_top: list[dict[str, Any]], n: int) -> np.ndarray:
    """Probability vector rebuilt from a top-n list that holds every class."""
    vector = np.full(n, np.nan)
    for entry in timeline_or_top:
        vector[entry["index"]] = entry["probability"]
    assert not np.isnan(vector).any()
    return vector


# ------------------------------------------------------------ the real teacher: SoundAQnet


@pytest.fixture(scope="module")
def soundaqnet_run(tmp_path_factory: pytest.TempPathFactory, shared_data: Path
                   ) -> dict[str, Any]:
    """One run on 2.6 s and 1.3 s excerpts of two real clips, 1 s windows, every class."""
    if "soundaqnet" not in {t.name for t in get_registry().teachers()}:
        pytest.skip("the soundaqnet package is not installed (./dev setup installs it)")
    tmp = tmp_path_factory.mktemp("classify")
    inputs = []
    for rel, seconds in zip(CLIPS, (2.6, 1.3), strict=True):
        audio, sr = soundfile.read(shared_data / EXCERPT / rel, dtype="float32")
        path = tmp / "in" / Path(rel).name
        path.parent.mkdir(exist_ok=True)
        soundfile.write(path, audio[: round(seconds * sr)], sr, subtype="FLOAT")
        inputs.append(path)
    out, plots = tmp / "result.json", tmp / "plots"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        status = main(["classify", "--teacher", "soundaqnet", "--window", "1", "--top", "15",
                       "--json", "-o", str(out), "--plots", str(plots), *map(str, inputs)])
    return {"status": status, "json": json.loads(stdout.getvalue()), "out": out,
            "plots": plots, "inputs": inputs}


def test_soundaqnet_json_structure(soundaqnet_run: dict[str, Any]) -> None:
    from specxform_builtins.teachers.soundaqnet import EVENT_LABELS

    assert soundaqnet_run["status"] == 0
    report = soundaqnet_run["json"]
    assert (report["teacher"], report["target"], report["labels"]) == ("soundaqnet",
                                                                       "soundaqnet", "names")
    assert list(report["clips"]) == [p.stem for p in soundaqnet_run["inputs"]]
    first, second = report["clips"].values()
    # 2.6 s: two full windows and a 0.6 s tail (>= half a window) zero-padded into a third.
    assert [(w["start_s"], w["end_s"]) for w in first["timeline"]] == [
        (0.0, 1.0), (1.0, 2.0), (2.0, pytest.approx(2.6))]
    # 1.3 s: the 0.3 s tail (< half a window) is dropped.
    assert [(w["start_s"], w["end_s"]) for w in second["timeline"]] == [(0.0, 1.0)]
    for clip in report["clips"].values():
        for ranking in [clip["top"], *(w["top"] for w in clip["timeline"])]:
            assert [e["rank"] for e in ranking] == list(range(1, 16))
            probs = [e["probability"] for e in ranking]
            assert probs == sorted(probs, reverse=True)
            assert all(0.0 <= p <= 1.0 for p in probs)
            assert [e["label"] for e in ranking] == [EVENT_LABELS[e["index"]] for e in ranking]


def test_soundaqnet_clip_is_the_mean_of_its_windows(soundaqnet_run: dict[str, Any]) -> None:
    for clip in soundaqnet_run["json"]["clips"].values():
        windows = np.stack([_full_vectors(w["top"], 15) for w in clip["timeline"]])
        np.testing.assert_allclose(_full_vectors(clip["top"], 15), windows.mean(axis=0),
                                   rtol=1e-12)


def test_soundaqnet_outputs_written(soundaqnet_run: dict[str, Any]) -> None:
    report = soundaqnet_run["json"]
    written = json.loads(soundaqnet_run["out"].read_text())
    assert written == {k: v for k, v in report.items() if k != "written"}
    pngs = sorted(soundaqnet_run["plots"].glob("*.png"))
    assert [p.stem for p in pngs] == sorted(report["clips"])
    assert report["written"] == [str(soundaqnet_run["out"]),
                                 *(str(soundaqnet_run["plots"] / f"{n}.png")
                                   for n in report["clips"])]
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_MAGIC
        image = matplotlib.image.imread(png)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 300
        assert image[..., :3].std() > 0.05  # a picture, not a blank canvas
    assert not [p for p in soundaqnet_run["plots"].iterdir() if p.name.startswith(".")]


# -------------------------------------------------------------- formats, with the fake


def test_windows_are_the_teacher_on_true_mels(fake: Registry, clip: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(["--teacher", "fake", "--top", "4", "--json", str(clip)], capsys)
    assert status == 0
    timeline = json.loads(out)["clips"][clip.stem]["timeline"]
    audio, sr = load_audio(clip)
    at_32k = resample(audio, orig_sr=sr, target_sr=32_000)
    windows = torch.from_numpy(at_32k.reshape(4, 32_000))  # 4 s clip, 1 s windows
    mel = api.transform(fake.representation("pann"))(windows)
    with torch.no_grad():
        expected = FakeTeacher()(mel).probs.double().numpy()
    got = np.stack([_full_vectors(w["top"], 4) for w in timeline])
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_aux_inputs_come_from_each_window_at_the_file_rate(
        fake: Registry, clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(["--teacher", "fake_aux", "--window", "2", "--top", "4", "--json",
                           str(clip)], capsys)
    assert status == 0
    plain = json.loads(_run(["--teacher", "fake", "--window", "2", "--top", "4", "--json",
                             str(clip)], capsys)[1])
    for with_aux, without in zip(json.loads(out)["clips"][clip.stem]["timeline"],
                                 plain["clips"][clip.stem]["timeline"], strict=True):
        logit = np.log(_full_vectors(with_aux["top"], 4) / (1 - _full_vectors(with_aux["top"],
                                                                                 4)))
        base = np.log(_full_vectors(without["top"], 4) / (1 - _full_vectors(without["top"], 4)))
        np.testing.assert_allclose(logit - base, 2.0, atol=1e-4)  # aux = 2 s of audio


def test_labels_fall_back_to_indices_with_one_warning(
        fake: Registry, clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _run(["--teacher", "fake", "--top", "2", "--json", str(clip)], capsys)
    assert status == 0
    warnings = err.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("specxform: warning:")
    assert "`specxform weights fetch fake-labels`" in warnings[0]
    report = json.loads(out)
    assert report["labels"] == "placeholders"
    top = report["clips"][clip.stem]["top"]
    assert [e["label"] for e in top] == [f"class_{e['index']}" for e in top]


def test_cached_label_file_gives_names(fake: Registry, home: Path, clip: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    (home / "weights").mkdir(parents=True)
    names = ["Siren", "Dog", "Music, live", "Engine"]
    (home / "weights" / "fake_labels.csv").write_text(
        "index,mid,display_name\n" + "".join(f'{i},/m/{i},"{n}"\n' for i, n in enumerate(names)))
    status, out, err = _run(["--teacher", "fake", "--top", "4", str(clip)], capsys)
    assert status == 0 and err == ""
    for name in names:
        assert name in out
    assert clip.stem in out and "top class over time" in out


def test_csv_layout(fake: Registry, clip: Path, tmp_path: Path,
                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "res" / "result.csv"
    status, printed, _ = _run(["--teacher", "fake", "--top", "4", "--window", "2", "-o",
                               str(out), str(clip)], capsys)
    assert status == 0 and f"wrote {out}" in printed
    assert os.listdir(out.parent) == ["result.csv"]  # no temporary file left
    with out.open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        rows = list(reader)
    assert len(rows) == (1 + 2) * 4  # the clip, then 2 windows, 4 ranks each
    by_window: dict[str, np.ndarray] = {}
    for window in ("clip", "0", "1"):
        chosen = [r for r in rows if r["window"] == window]
        assert [int(r["rank"]) for r in chosen] == [1, 2, 3, 4]
        assert all(r["clip"] == clip.stem and r["input"] == str(clip) for r in chosen)
        by_window[window] = _full_vectors(
            [{"index": int(r["index"]), "probability": float(r["probability"])} for r in chosen],
            4)
    np.testing.assert_allclose(by_window["clip"], (by_window["0"] + by_window["1"]) / 2)
    assert [(r["start_s"], r["end_s"]) for r in rows if r["rank"] == "1"] == [
        ("0.0", "4.0"), ("0.0", "2.0"), ("2.0", "4.0")]


def test_failure_leaves_no_output(fake: Registry, clip: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    corrupt = tmp_path / "in" / "corrupt.wav"
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"RIFF....WAVEfmt garbage")
    out, plots = tmp_path / "result.csv", tmp_path / "plots"
    status, _, err = _run(["--teacher", "fake", "-o", str(out), "--plots", str(plots),
                           str(clip), str(corrupt)], capsys)
    assert status == 2 and "corrupt.wav" in err and len(err.strip().splitlines()) == 2
    assert not out.exists() and not plots.exists()


def test_single_plot(fake: Registry, clip: Path, shared_data: Path, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "timeline.png"
    status, _, _ = _run(["--teacher", "fake", "--plot", str(png), str(clip)], capsys)
    assert status == 0 and png.read_bytes()[:8] == PNG_MAGIC
    other = shared_data / EXCERPT / CLIPS[1]
    status, _, err = _run(["--teacher", "fake", "--plot", str(png), str(clip), str(other)],
                          capsys)
    assert status == 2 and "--plots DIR" in err


def test_weights_path_goes_to_the_factory(fake: Registry, clip: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["--teacher", "fake", "--weights", str(tmp_path / "w.pth"), str(clip)],
                capsys)[0] == 0
    assert factory_calls == [tmp_path / "w.pth"]


# ------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("top", ["0", "-3", "two"])
def test_top_must_be_a_positive_integer(top: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _run(["--teacher", "soundaqnet", "--top", top, "x.wav"], capsys)
    assert status == 2 and out == ""
    assert "--top" in err and ("at least 1" in err or "whole number" in err)


def test_window_must_be_positive_and_long_enough(fake: Registry, clip: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _run(["--teacher", "fake", "--window", "0", str(clip)], capsys)
    assert status == 2 and "--window" in err
    status, _, err = _run(["--teacher", "fake", "--window", "0.2", str(clip)], capsys)
    assert status == 2 and "needs at least 32" in err and "0.31 s or more" in err


def test_unknown_teacher_suggests_the_closest(capsys: pytest.CaptureFixture[str],
                                              clip: Path) -> None:
    status, _, err = _run(["--teacher", "pann_resnet", str(clip)], capsys)
    assert status == 2 and "'pann_resnet38'" in err and len(err.strip().splitlines()) == 1


def test_bad_output_suffix(fake: Registry, clip: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _run(["--teacher", "fake", "-o", str(tmp_path / "r.txt"), str(clip)],
                          capsys)
    assert status == 2 and ".csv or .json" in err


def test_missing_pann_weights_point_to_the_offline_teacher(
        home: Path, clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _run(["--teacher", "pann_resnet38", str(clip)], capsys)
    assert status == 1 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert str(home / "weights" / "ResNet38_mAP=0.434.pth") in err
    assert "--weights PATH" in err and "`--teacher soundaqnet` works offline" in err


def test_missing_weights_file_given_with_weights(home: Path, clip: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "mine.pth"
    status, _, err = _run(["--teacher", "pann_cnn14", "--weights", str(missing), str(clip)],
                          capsys)
    assert status == 2 and f"--weights {missing}: no such file" in err


@pytest.mark.slow
def test_one_window_per_clip_is_the_teacher_on_the_whole_clip(
        shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two whole 4 s clips, --window 4: each clip is the teacher's output on all of it."""
    registry = get_registry()
    if "soundaqnet" not in {t.name for t in registry.teachers()}:
        pytest.skip("the soundaqnet package is not installed (./dev setup installs it)")
    paths = [shared_data / EXCERPT / rel for rel in CLIPS]
    status, out, _ = _run(["--teacher", "soundaqnet", "--window", "4", "--top", "15",
                           "--json", *map(str, paths)], capsys)
    assert status == 0
    teacher = registry.teacher("soundaqnet").factory()
    for path in paths:
        audio, sr = load_audio(path)
        mel = torch.from_numpy(api.compute_file("soundaqnet", path))[None]
        loudness = torch.from_numpy(teacher.aux_from_audio(audio, sr)["loudness"])[None]
        with torch.no_grad():
            expected = teacher(mel, {"loudness": loudness.float()}).probs[0].double().numpy()
        clip = json.loads(out)["clips"][path.stem]
        assert clip["windows"] == 1
        np.testing.assert_allclose(_full_vectors(clip["top"], 15), expected, rtol=1e-5)
