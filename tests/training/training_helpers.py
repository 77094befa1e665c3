"""Tiny random teachers and a small real dataset, shared by the training tests and by the
training subprocesses of test_trainer.py (which put this folder on sys.path)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from specxform_builtins.datasets import folder
from torch import Tensor, nn

import specxform
from specxform.datasets import Clip, Split, grouped_split
from specxform.registry import Registry
from specxform.representations.specs import Representation
from specxform.teachers.base import Teacher, TeacherOutput

_ROOT = Path(__file__).resolve().parents[2]
#: The same folder as tests/conftest.py's (SPECXFORM_SHARED_DATA overrides it).
EXCERPT = Path(os.environ.get("SPECXFORM_SHARED_DATA", _ROOT.parent / "shared" / "data")) / (
    "urbansound8k-excerpt")


class TinyTeacher(Teacher):
    """A random 5-class classifier on 64-band log-Mels (dB), seeded."""

    num_classes: ClassVar[int] = 5
    min_frames: ClassVar[int] = 4

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv1d(64, 8, 3)
        self.fc = nn.Linear(8, self.num_classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.3)

    def features(self, mel: Tensor) -> Tensor:
        x = (mel.transpose(1, 2) + 50.0) / 20.0  # dB to order 1
        return torch.relu(self.conv(x)).mean(-1)

    def forward(self, mel: Tensor, aux: Mapping[str, Tensor] | None = None) -> TeacherOutput:
        self.check_input(mel, aux)
        logits = self.fc(self.features(mel))
        return TeacherOutput(logits, torch.sigmoid(logits))


class TinyAuxTeacher(TinyTeacher):
    """TinyTeacher plus a scalar aux input "level": dB RMS from audio, or from band levels."""

    aux_inputs: ClassVar[tuple[str, ...]] = ("level",)

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.aux_fc = nn.Linear(1, self.num_classes)
        generator = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for p in self.aux_fc.parameters():
                p.copy_(torch.randn(p.shape, generator=generator))

    def forward(self, mel: Tensor, aux: Mapping[str, Tensor] | None = None) -> TeacherOutput:
        self.check_input(mel, aux)
        assert aux is not None
        logits = self.fc(self.features(mel)) + self.aux_fc(aux["level"] / 20.0)
        return TeacherOutput(logits, torch.sigmoid(logits))

    def aux_from_audio(self, audio: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        return {"level": np.array([10 * np.log10(np.mean(audio**2) + 1e-15)])}

    def aux_from_source(self, levels: np.ndarray, source: Representation
                        ) -> dict[str, np.ndarray]:
        power = np.sum(10 ** (levels / 10), axis=1)  # sum of the bands, per frame
        return {"level": np.array([10 * np.log10(np.mean(power) + 1e-15)])}


class TinyPlugin:
    """Registers the tiny teachers for the PANN target."""

    @specxform.hookimpl
    def specxform_add_teachers(self, registry: Registry) -> None:
        registry.add_teacher("tiny", target="pann", factory=lambda weights=None: TinyTeacher(),
                             num_classes=TinyTeacher.num_classes)
        registry.add_teacher("tiny_aux", target="pann",
                             factory=lambda weights=None: TinyAuxTeacher(),
                             num_classes=TinyTeacher.num_classes, aux_inputs=("level",))


def few_clips(per_class: int = 1, classes: int = 6) -> list[Clip]:
    """The first clips of the first classes of the excerpt (a small real dataset)."""
    clips = folder(EXCERPT).clips
    chosen: list[Clip] = []
    for label in sorted({c.label for c in clips if c.label})[:classes]:
        chosen += [c for c in clips if c.label == label][:per_class]
    return chosen


def small_split() -> Split:
    """Two clips of each of six classes, split by fsID (seed 0)."""
    return grouped_split(few_clips(per_class=2), (0.6, 0.4, 0.0), seed=0)


#: A student small enough for tests (the reference one costs ~1 GFLOP per chunk).
TINY_STUDENT = {"layers": 2, "channels": 4}
