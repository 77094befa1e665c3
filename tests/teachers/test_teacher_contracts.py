"""Contract tests run on every registered teacher (new plugins are tested automatically)."""

from __future__ import annotations

import pytest
import torch

from specxform.frontend import RepresentationTransform
from specxform.plugins import get_registry
from specxform.teachers.base import Teacher

TEACHERS = [t.name for t in get_registry().teachers()]


@pytest.fixture(scope="module")
def built() -> dict[str, Teacher]:
    return {}


def _teacher(name: str, cache: dict[str, Teacher]) -> Teacher:
    if name not in cache:
        cache[name] = get_registry().teacher(name).factory(pretrained=False)
    return cache[name]


@pytest.mark.parametrize("name", TEACHERS)
def test_declared_facts_match_the_model(name: str, built: dict[str, Teacher]) -> None:
    entry = get_registry().teacher(name)
    teacher = _teacher(name, built)
    assert isinstance(teacher, Teacher)
    assert teacher.num_classes == entry.num_classes
    assert tuple(teacher.aux_inputs) == entry.aux_inputs
    if entry.parameter_count is not None:
        assert teacher.trainable_parameter_count() == entry.parameter_count
    target = get_registry().representation(entry.target)
    assert teacher.n_mels == target.n_bands


@pytest.mark.parametrize("name", TEACHERS)
def test_forward_on_its_target_representation(name: str, built: dict[str, Teacher]) -> None:
    entry = get_registry().teacher(name)
    teacher = _teacher(name, built)
    target = get_registry().representation(entry.target)
    torch.manual_seed(0)
    audio = 0.1 * torch.randn(2, 2 * target.sample_rate)  # 2 s of noise
    mel = RepresentationTransform(target)(audio)
    frames = mel.shape[1]
    aux = {key: torch.ones(2, frames) for key in teacher.aux_inputs} or None
    with torch.no_grad():
        out = teacher(mel, aux)
    assert out.logits.shape == (2, entry.num_classes)
    assert torch.allclose(out.probs, torch.sigmoid(out.logits), atol=1e-6)
    assert torch.isfinite(out.logits).all()
