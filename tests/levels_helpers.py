"""Tiny teachers and a real (quickly trained) checkpoint for the level-classification tests.

The teachers are registered by a plugin in the registry :func:`level_registry`
returns; it is a module-level function so that worker processes (``--jobs``)
can rebuild the same registry. :func:`make_checkpoint` trains a tiny student
for one epoch on three generated clips with :func:`specxform.training.trainer.train`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np
import soundfile
import torch
from torch import Tensor, nn

import specxform
from specxform.registry import Registry
from specxform.representations.specs import Representation
from specxform.teachers.base import Teacher, TeacherOutput

#: Class names of the tiny teachers.
LABELS = ("hum", "hiss", "chirp", "thud")


class LevelTeacher(Teacher):
    """A seeded random 4-class classifier of 64-band PANN log-Mels (dB)."""

    num_classes: ClassVar[int] = 4
    min_frames: ClassVar[int] = 4

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.fc = nn.Linear(64, self.num_classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.3)

    @classmethod
    def labels(cls) -> tuple[str, ...]:
        return LABELS

    def logits(self, mel: Tensor) -> Tensor:
        return self.fc((mel.mean(dim=1) + 50.0) / 20.0)

    def forward(self, mel: Tensor, aux: Mapping[str, Tensor] | None = None) -> TeacherOutput:
        self.check_input(mel, aux)
        logits = self.logits(mel)
        return TeacherOutput(logits, torch.sigmoid(logits))


class LevelAuxTeacher(LevelTeacher):
    """LevelTeacher plus an aux input "level": the mean broadband level, from audio or levels."""

    aux_inputs: ClassVar[tuple[str, ...]] = ("level",)

    def forward(self, mel: Tensor, aux: Mapping[str, Tensor] | None = None) -> TeacherOutput:
        self.check_input(mel, aux)
        assert aux is not None
        logits = self.logits(mel) + aux["level"] / 10.0
        return TeacherOutput(logits, torch.sigmoid(logits))

    def aux_from_audio(self, audio: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        return {"level": np.array([10 * np.log10(np.mean(audio**2) + 1e-15)])}

    def aux_from_source(self, levels: np.ndarray, source: Representation
                        ) -> dict[str, np.ndarray]:
        power = np.sum(10 ** (np.asarray(levels, np.float64) / 10), axis=1)
        return {"level": np.array([10 * np.log10(np.mean(power) + 1e-15)])}


def _level_teacher(weights: Path | None = None, **_: object) -> LevelTeacher:
    """``LevelTeacher()``, or with the state dict saved in ``weights``."""
    teacher = LevelTeacher()
    if weights is not None:
        teacher.load_state_dict(torch.load(weights, weights_only=True))
    return teacher


class LevelPlugin:
    """Registers ``lvl`` and ``lvl_aux`` for the PANN target."""

    @specxform.hookimpl
    def specxform_add_teachers(self, registry: Registry) -> None:
        registry.add_teacher("lvl", target="pann", num_classes=4, factory=_level_teacher)
        registry.add_teacher("lvl_aux", target="pann", num_classes=4, aux_inputs=("level",),
                             factory=lambda weights=None, **_: LevelAuxTeacher())


@functools.cache
def level_registry() -> Registry:
    """The installed plugins plus :class:`LevelPlugin` (picklable, cached per process)."""
    from specxform import plugins

    return plugins.load_plugins(extra=[("levels-test", LevelPlugin())]).registry


def _clips(folder: Path) -> list[Path]:
    """Three 2 s clips at 32 kHz: a hum, filtered noise, a chirp."""
    rng = np.random.default_rng(0)
    t = np.arange(64_000) / 32_000
    signals = [0.5 * np.sin(2 * np.pi * 120 * t) + 0.01 * rng.standard_normal(t.size),
               0.3 * rng.standard_normal(t.size),
               0.5 * np.sin(2 * np.pi * (300 + 1500 * t) * t)]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, signal in enumerate(signals):
        path = folder / f"clip{i}.wav"
        soundfile.write(path, signal.astype(np.float32), 32_000)
        paths.append(path)
    return paths


def make_checkpoint(folder: Path, teacher_name: str = "lvl") -> Path:
    """Train a tiny ``cense -> pann`` student for one epoch against ``teacher_name``.

    Returns
    -------
    Path
        The run's ``best.pt``.
    """
    from specxform.datasets import Clip, Split
    from specxform.training.cache import build_cache
    from specxform.training.trainer import TrainConfig, train

    registry = level_registry()
    clips = [Clip(p, p.name, "x", p.stem) for p in _clips(folder / "clips")]
    split = Split(tuple(clips[:2]), tuple(clips[2:]), (), seed=0, fractions=(2 / 3, 1 / 3, 0),
                  scheme="test clips")
    teacher = registry.teacher(teacher_name).factory()
    cache = build_cache(clips, source=registry.representation("cense"),
                        target=registry.representation("pann"), teacher=teacher,
                        teacher_name=teacher_name, root=folder / "cache")
    result = train(cache, split, teacher, out_dir=folder / "run", teacher_name=teacher_name,
                   student_config={"layers": 2, "channels": 4}, registry=registry,
                   tensorboard=False,
                   config=TrainConfig(epochs=1, batch_size=4, device="cpu"))
    return result.best_checkpoint


def sensor_levels(seconds: float, *, seed: int = 0, spl: float = 60.0) -> np.ndarray:
    """Plausible Cense levels in dB SPL: (seconds * 8, 29) float32, slowly varying."""
    rng = np.random.default_rng(seed)
    frames = round(seconds * 8)
    bands = np.arange(29)
    shape = spl - 0.15 * (bands - 12) ** 2 / 4  # louder mid bands
    drift = np.cumsum(rng.normal(0, 0.5, size=(frames, 1)), axis=0)
    drift -= drift.mean()
    noise = rng.normal(0, 2.0, size=(frames, 29))
    return (shape + np.clip(drift, -15, 15) + noise).astype(np.float32)
