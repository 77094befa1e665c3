"""The teacher contract (:func:`specxform.testing.check_teacher`) on every registered teacher.

New plugins are tested automatically; the same check is what a third-party
teacher's suite runs. The second half shows that the check catches what it
promises to catch.
"""

from __future__ import annotations

import pytest
import torch

from specxform.errors import InputError
from specxform.plugins import get_registry, load_plugins
from specxform.registry import Registry
from specxform.teachers.base import Teacher, TeacherOutput
from specxform.testing import check_teacher

TEACHERS = [t.name for t in get_registry().teachers()]


@pytest.mark.parametrize("name", TEACHERS)
def test_every_registered_teacher_passes_the_contract(name: str, one_torch_thread) -> None:
    check_teacher(name)


class Tiny(Teacher):
    """A valid teacher on the yamnet target: mean over time, then a linear layer."""

    num_classes = 3
    min_frames = 1
    n_mels = 64

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.head = torch.nn.Linear(64, classes)

    @classmethod
    def labels(cls) -> tuple[str, ...]:
        return ("a", "b", "c")

    def forward(self, mel: torch.Tensor, aux=None) -> TeacherOutput:
        self.check_input(mel, aux)
        logits = self.head(mel.mean(dim=1))
        return TeacherOutput(logits, torch.sigmoid(logits))


class Unchecked(Tiny):
    def forward(self, mel: torch.Tensor, aux=None) -> TeacherOutput:  # no check_input
        logits = self.head(mel[..., :64].mean(dim=-2))
        return TeacherOutput(logits, torch.sigmoid(logits))


class NoLabels(Tiny):
    labels = Teacher.labels  # the base's: NotImplementedError


def tiny(weights=None, *, pretrained=True):
    return Tiny().eval()


def _registry(factory, **teacher) -> Registry:
    registry = load_plugins(autoload=False).registry
    registry.add_teacher("tiny", target="yamnet", factory=factory,
                         num_classes=teacher.pop("num_classes", 3), **teacher)
    return registry


def test_a_factory_name_or_entry_designates_the_teacher() -> None:
    registry = _registry(tiny, parameter_count=64 * 3 + 3)
    for what in (tiny, "tiny", registry.teacher("tiny")):
        check_teacher(what, registry=registry)
    with pytest.raises(AssertionError, match="not registered as a teacher"):
        check_teacher(lambda weights=None, *, pretrained=True: Tiny(), registry=registry)


@pytest.mark.parametrize(("factory", "teacher", "message"), [
    (lambda weights=None, *, pretrained=True: Tiny(), {"num_classes": 4},
     "the model has 3 classes, the entry declares num_classes=4"),
    (tiny, {"parameter_count": 10}, "195 parameters, the entry declares parameter_count=10"),
    (lambda weights=None, *, pretrained=True: Unchecked(), {}, "one band too many"),
    (lambda weights=None, *, pretrained=True: NoLabels(), {}, "defines no labels"),
    (lambda weights=None: Tiny(), {}, "cannot be called as factory\\(pretrained=False\\)"),
    (lambda weights=None, *, pretrained=True: torch.nn.Linear(1, 1), {}, "not a specxform"),
    (tiny, {"chunk_seconds": 0.005}, "fewer than its min_frames"),
    (tiny, {"accepts_sources": ()}, "accepts no registered source"),
])
def test_the_contract_names_what_is_wrong(factory, teacher: dict, message: str) -> None:
    registry = _registry(factory, **teacher)
    with pytest.raises(AssertionError, match=message):
        check_teacher("tiny", registry=registry)


def test_forward_refuses_a_wrong_shape_through_check_input() -> None:
    with pytest.raises(InputError, match="64 Mel bands"):
        Tiny()(torch.zeros(1, 10, 65))
