"""Augmented training clips: deterministic by seed, made from training clips only, reused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from specxform.datasets.augment import AUGMENT_RATE, Augmentation, augment_clips
from specxform.datasets.base import Clip
from specxform.errors import InputError, SpecError


@pytest.fixture
def sources(tmp_path: Path) -> list[Clip]:
    rng = np.random.default_rng(0)
    clips = []
    for i, freq in enumerate((440.0, 1000.0, 3000.0)):
        t = np.arange(16_000) / 16_000
        path = tmp_path / f"src{i}.wav"
        tone = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
        soundfile.write(path, tone, 16_000)
        clips.append(Clip(path, f"src{i}.wav", "tone", f"g{i}"))
    background = tmp_path / "bg.wav"
    soundfile.write(background, 0.05 * rng.standard_normal(5 * 16_000), 16_000)
    return clips


def _read(clips) -> list[np.ndarray]:
    return [soundfile.read(c.path, dtype="float32")[0] for c in clips]


def test_same_seed_same_files_other_seed_other_files(sources, tmp_path: Path):
    config = Augmentation(mixtures=3, scenes=2, seconds=0.5, seed=7)
    bg = tmp_path / "bg.wav"
    a = augment_clips(sources, tmp_path / "a", config, background=bg)
    b = augment_clips(sources, tmp_path / "b", config, background=bg)
    c = augment_clips(sources, tmp_path / "c", Augmentation(mixtures=3, seconds=0.5, seed=8))
    assert [x.name for x in a] == [f"augment/mix-{i:05d}.flac" for i in range(3)] + [
        "augment/scene-00000.flac", "augment/scene-00001.flac"]
    assert all(np.array_equal(x, y) for x, y in zip(_read(a), _read(b), strict=True))
    assert not np.array_equal(_read(a)[0], _read(c)[0])
    info = soundfile.info(a[0].path)
    assert (info.samplerate, info.frames, info.format) == (AUGMENT_RATE, AUGMENT_RATE // 2, "FLAC")


def test_groups_name_the_source_recordings(sources, tmp_path: Path):
    clips = augment_clips(sources, tmp_path / "a", Augmentation(mixtures=4, seconds=0.25))
    for clip in clips:
        parts = clip.group.removeprefix("augment:").split("+")
        assert clip.group.startswith("augment:") and 1 <= len(parts) <= 2
        assert set(parts) <= {"g0", "g1", "g2"} and clip.label is None


def test_a_mixture_is_louder_than_silence_and_never_clips(sources, tmp_path: Path):
    clips = augment_clips(sources, tmp_path / "a", Augmentation(mixtures=5, seconds=0.5,
                                                                gain_db=(0, 12)))
    for audio in _read(clips):
        assert np.sqrt(np.mean(audio ** 2)) > 0.01 and np.max(np.abs(audio)) <= 1.0


def test_a_complete_folder_is_reused_and_a_changed_config_rewrites_it(sources, tmp_path: Path):
    out = tmp_path / "a"
    first = augment_clips(sources, out, Augmentation(mixtures=2, seconds=0.25))
    stamp = first[0].path.stat().st_mtime_ns
    augment_clips(sources, out, Augmentation(mixtures=2, seconds=0.25))
    assert first[0].path.stat().st_mtime_ns == stamp
    augment_clips(sources, out, Augmentation(mixtures=2, seconds=0.25, seed=1))
    assert first[0].path.stat().st_mtime_ns != stamp


def test_bad_requests_are_refused(sources, tmp_path: Path):
    with pytest.raises(InputError, match="background"):
        augment_clips(sources, tmp_path / "a", Augmentation(scenes=1))
    with pytest.raises(InputError, match="at least 2"):
        augment_clips(sources[:1], tmp_path / "a", Augmentation(mixtures=1))
    with pytest.raises(SpecError, match="gain_db"):
        Augmentation(gain_db=(3, -3))
