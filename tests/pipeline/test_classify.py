"""specxform.pipeline.classify (windows, clip mean, top-k) and plotting.plot_timeline."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import matplotlib.image
import numpy as np
import pytest
import torch
from torch import Tensor

from specxform import api
from specxform.errors import InputError, PluginError
from specxform.evaluation.plotting import plot_timeline
from specxform.pipeline.classify import (
    Classification,
    check_window,
    classify_audio,
    min_window_seconds,
    timeline_classes,
    top_k,
)
from specxform.registry import Registry
from specxform.teachers.base import Teacher, TeacherOutput


class MeanTeacher(Teacher):
    """Two classes: sigmoid of the mean Mel level / 10 and of its negative."""

    num_classes: ClassVar[int] = 2
    min_frames: ClassVar[int] = 32

    def forward(self, mel: Tensor, aux: Mapping[str, Tensor] | None = None) -> TeacherOutput:
        self.check_input(mel, aux)
        level = mel.mean(dim=(1, 2)) / 10
        logits = torch.stack([level, -level], dim=1)
        return TeacherOutput(logits, torch.sigmoid(logits))


class AuxWithoutProvider(MeanTeacher):
    aux_inputs: ClassVar[tuple[str, ...]] = ("loudness",)


def test_min_window_seconds(registry: Registry) -> None:
    yamnet, pann = registry.representation("yamnet"), registry.representation("pann")
    assert min_window_seconds(yamnet, 96) == pytest.approx(15_600 / 16_000)  # 0.975 s
    assert yamnet.n_frames(15_600) == 96 and yamnet.n_frames(15_599) == 95
    assert min_window_seconds(pann, 32) == pytest.approx(9_920 / 32_000)
    assert pann.n_frames(9_920) == 32 and pann.n_frames(9_919) == 31
    assert min_window_seconds(pann, 1) == pytest.approx(1 / 32_000)


def test_check_window(registry: Registry) -> None:
    pann = registry.representation("pann")
    check_window(MeanTeacher(), pann, 0.31)
    with pytest.raises(InputError, match=r"0\.1 s window gives 11 'pann' frames"):
        check_window(MeanTeacher(), pann, 0.1)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(InputError, match="positive number of seconds"):
            check_window(MeanTeacher(), pann, bad)
    with pytest.raises(PluginError, match="aux_from_audio"):
        check_window(AuxWithoutProvider(), pann, 1.0)


def test_classify_audio_windows_and_mean(registry: Registry, rng: np.random.Generator) -> None:
    pann = registry.representation("pann")
    sr = 16_000
    # 1 s quiet, 1 s loud, then 0.7 s loud: the 0.7 s tail (>= half) becomes a padded window.
    audio = np.concatenate([0.001 * rng.standard_normal(sr), 0.5 * rng.standard_normal(
        round(1.7 * sr))]).astype(np.float32)
    result = classify_audio(MeanTeacher(), pann, audio, sr, window_s=1.0)
    assert result.window_probs.shape == (3, 2)
    np.testing.assert_allclose(result.starts_s, [0.0, 1.0, 2.0])
    np.testing.assert_allclose(result.ends_s, [1.0, 2.0, 2.7])
    assert result.duration_s == pytest.approx(2.7)
    np.testing.assert_allclose(result.probs, result.window_probs.mean(axis=0), rtol=1e-15)
    assert result.window_probs[1, 0] > result.window_probs[0, 0]  # the loud window is louder
    mel = api.compute(pann, audio[sr: 2 * sr], sr)  # the second window on its own
    with torch.no_grad():
        alone = MeanTeacher()(torch.from_numpy(mel)[None]).probs[0].double().numpy()
    # Cutting after or before resampling differs only at the window edges.
    np.testing.assert_allclose(result.window_probs[1], alone, atol=2e-3)


def test_short_clip_gives_one_padded_window(registry: Registry,
                                            rng: np.random.Generator) -> None:
    audio = 0.1 * rng.standard_normal(4_000).astype(np.float32)  # 0.25 s at 16 kHz
    result = classify_audio(MeanTeacher(), registry.representation("pann"), audio, 16_000)
    assert result.window_probs.shape == (1, 2)
    np.testing.assert_allclose(result.ends_s, [0.25])


def test_classify_audio_refuses_bad_input(registry: Registry) -> None:
    pann = registry.representation("pann")
    with pytest.raises(InputError, match="one clip at a time"):
        classify_audio(MeanTeacher(), pann, np.zeros((2, 16_000), np.float32), 16_000)
    with pytest.raises(InputError, match="NaN"):
        classify_audio(MeanTeacher(), pann, np.full(16_000, np.nan, np.float32), 16_000)
    with pytest.raises(InputError, match="whole number"):
        classify_audio(MeanTeacher(), pann, np.zeros(32_000, np.float32), 16_000,
                       window_s=1 / 3)


def test_top_k() -> None:
    probs = np.array([0.2, 0.9, 0.2, 0.5])
    assert top_k(probs, 2).tolist() == [1, 3]
    assert top_k(probs, 10).tolist() == [1, 3, 0, 2]  # ties: lower index first
    with pytest.raises(InputError, match="k must be >= 1"):
        top_k(probs, 0)
    with pytest.raises(InputError, match="one probability vector"):
        top_k(probs[None], 1)


def test_timeline_classes_add_every_window_top() -> None:
    windows = np.array([[0.9, 0.1, 0.0, 0.2], [0.1, 0.2, 0.8, 0.3], [0.7, 0.1, 0.0, 0.6]])
    result = Classification(probs=windows.mean(axis=0), window_probs=windows,
                            starts_s=np.arange(3.0), ends_s=np.arange(1.0, 4.0), duration_s=3.0)
    # clip top-1 is class 0; windows add class 2; ordered by clip probability.
    assert timeline_classes(result, 1).tolist() == [0, 2]
    assert timeline_classes(result, 2).tolist() == [0, 3, 2]


def test_plot_timeline_writes_a_png(tmp_path: Path) -> None:
    path = plot_timeline(tmp_path / "t.png", np.array([[0.9, 0.1], [0.2, 0.7]]),
                         starts_s=np.array([0.0, 1.0]), ends_s=np.array([1.0, 1.5]),
                         row_labels=["Siren", "Dog"], title="clip")
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[1] > image.shape[0]
    assert [p.name for p in tmp_path.iterdir()] == ["t.png"]


def test_plot_timeline_refuses_mismatches(tmp_path: Path) -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.7]])
    with pytest.raises(InputError, match="row labels"):
        plot_timeline(tmp_path / "t.png", probs, starts_s=np.array([0.0, 1.0]),
                      ends_s=np.array([1.0, 2.0]), row_labels=["only one"])
    with pytest.raises(InputError, match="consecutive"):
        plot_timeline(tmp_path / "t.png", probs, starts_s=np.array([0.0, 5.0]),
                      ends_s=np.array([1.0, 6.0]), row_labels=["a", "b"])
    assert not list(tmp_path.iterdir())
