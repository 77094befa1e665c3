"""The checkpoint format of a trained transcoder: writing, reading, checking, loading.

A checkpoint is a ``torch.save`` dict of plain values and tensors (loaded with
``weights_only=True``, so it never runs code) whose ``format`` is
:data:`CHECKPOINT_FORMAT`. Its ``description`` stamps the run: both
representations, the teacher (name and weight digest), the student (name and
full config) or ``kind == "retrained"``, the PINV options, the loss, the
training config, the split, the cache key and the package versions
(:func:`versions`). :func:`check_compatible` verifies that a resumed run has
the settings of the saved one; :func:`load_model` and :func:`load_student`
rebuild ready modules; :func:`resolve_checkpoint` also finds the transcoders
that plugins ship (:func:`shipped_checkpoint`).

May import: the contracts and mechanisms, :mod:`specxform.transcoders` and the
training cache's atomic writes. Never the training loop.
"""

from __future__ import annotations

import inspect
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from torch import nn

import specxform
from specxform.errors import CheckpointError
from specxform.plugins import get_registry
from specxform.registry import Registry
from specxform.representations.specs import Representation
from specxform.teachers.base import Teacher
from specxform.training.cache import atomic_path
from specxform.transcoders.pinv import PinvTranscoder
from specxform.transcoders.students import Transcoder

__all__ = [
    "CHECKPOINT_FORMAT",
    "KINDS",
    "TrainedModel",
    "build_student",
    "check_compatible",
    "load_model",
    "load_student",
    "read_checkpoint",
    "resolve_checkpoint",
    "save_checkpoint",
    "shipped_checkpoint",
    "versions",
]

CHECKPOINT_FORMAT = "specxform-transcoder/1"
#: Training options that may change when a run is resumed.
RESUMABLE_CHANGES = ("epochs", "patience", "device", "precision")
KINDS = ("student", "retrained")


def versions() -> dict[str, str]:
    """The package versions a checkpoint is stamped with."""
    return {"specxform": specxform.__version__, "torch": str(torch.__version__),
            "numpy": np.__version__, "python": platform.python_version()}



def build_student(registry: Registry, name: str, source: Representation,
                  target: Representation, config: Mapping[str, Any]) -> tuple[nn.Module, dict]:
    """The registered student ``name`` for the pair, and its full config (as saved)."""
    student = registry.student(name).factory(source, target, **config)
    to_dict = getattr(getattr(student, "config", None), "to_dict", None)
    return student, (to_dict() if callable(to_dict) else dict(config))


def save_checkpoint(path: Path, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically (a temporary file, then ``os.replace``)."""
    with atomic_path(path) as tmp:
        torch.save(dict(payload), tmp)



def shipped_checkpoint(name: str, registry: Registry | None = None) -> Path | None:
    """The transcoder a plugin ships for pair ``name`` (``"cense-yamnet"`` or ``"cense->yamnet"``).

    A pair declared with ``add_pair(..., checkpoint=PATH)`` ships a trained
    transcoder; its name is ``SOURCE-TARGET``. Returns None when no pair of
    that name ships one.
    """
    for pair in (registry or get_registry()).pairs():
        if pair.checkpoint and name in (pair.name, f"{pair.source}-{pair.target}"):
            return Path(pair.checkpoint)
    return None


def resolve_checkpoint(path: str | Path, registry: Registry | None = None) -> Path:
    """``path`` itself when it exists, else the shipped transcoder of that name."""
    given = Path(path)
    if given.exists():
        return given
    shipped = shipped_checkpoint(str(path), registry)
    return shipped if shipped is not None else given


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint (a file, a run folder meaning its ``best.pt``, or the name of a
    shipped transcoder such as ``cense-yamnet``) and check its format."""
    path = resolve_checkpoint(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no such checkpoint; give a best.pt/last.pt file, a run folder or the name "
            "of a shipped transcoder (`specxform list pairs` shows them)."
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise _unreadable(path, exc) from exc
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(
            f"{path}: not a specxform transcoder checkpoint (format {found!r}, expected "
            f"{CHECKPOINT_FORMAT!r}); train one with `specxform train`."
        )
    return data


def _unreadable(path: Path, exc: Exception) -> CheckpointError:
    """Why ``torch.load(path, weights_only=True)`` failed, without torch's advice to load it
    unsafely (``weights_only=False`` runs whatever code the file holds: never done here)."""
    import pickle
    import re
    import zipfile

    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) and zipfile.is_zipfile(path):
        found = re.search(r"GLOBAL ([\w.]+)", text)
        what = f" ({found.group(1)})" if found else ""
        return CheckpointError(
            f"{path}: holds Python objects or code{what} besides tensors and plain settings, "
            "and specxform does not load such files: loading them would run that code. A "
            "checkpoint of `specxform train` holds none; train again, or give another "
            "checkpoint."
        )
    if isinstance(exc, pickle.UnpicklingError) or not zipfile.is_zipfile(path):
        return CheckpointError(f"{path}: not a PyTorch checkpoint (unreadable, truncated or "
                               "another kind of file); give a best.pt/last.pt of `specxform "
                               "train`.")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return CheckpointError(f"{path}: cannot read the checkpoint ({first}); it may be "
                           "truncated: copy it again, or give another one.")


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """``name: old -> new`` for every setting (nested keys joined by dots) that differs."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            name = f"{prefix}{key}"
            if key not in old or key not in new:
                out.append(f"{name}: {_short(old.get(key))} -> {_short(new.get(key))}")
            else:
                out += _differences(old[key], new[key], f"{name}.")
        return out
    return [] if old == new else [f"{prefix.rstrip('.')}: {_short(old)} -> {_short(new)}"]


def _short(value: Any) -> str:
    text = "(none)" if value is None else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@attrs.frozen
class TrainedModel:
    """A trained checkpoint, ready to run (eval mode).

    Attributes
    ----------
    kind : {"student", "retrained"}
    transcoder : nn.Module
        Source levels ``(batch, frames, source bands)`` -> target Mel: PINV and
        the student, or the PINV alone for a retrained teacher.
    classifier : nn.Module or None
        The fine-tuned teacher of a ``"retrained"`` checkpoint; ``None`` for a
        student, whose Mels go to the registered teacher ``teacher_name``.
    teacher_name : str
    source, target : Representation
    description : dict
        The checkpoint's self-description.
    """

    kind: str
    transcoder: nn.Module
    classifier: nn.Module | None
    teacher_name: str
    source: Representation
    target: Representation
    description: dict[str, Any]


def _kind(data: Mapping[str, Any]) -> str:
    return str(data["description"].get("kind", "student"))


def _pinv_of(desc: Mapping[str, Any], source: Representation,
             target: Representation) -> PinvTranscoder:
    return PinvTranscoder(source, target, method=desc["pinv"]["method"],
                          interpolation=desc["pinv"]["interpolation"])


def _load_state(module: nn.Module, state: Mapping[str, Any], checkpoint: str | Path,
                what: str) -> None:
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{checkpoint}: the weights do not fit {what} ({exc}).") from exc


def _untrained_teacher(registry: Registry, name: str) -> nn.Module:
    """The teacher's architecture, without fetching weights the checkpoint replaces anyway."""
    factory = registry.teacher(name).factory
    accepts = inspect.signature(factory).parameters
    return factory(pretrained=False) if "pretrained" in accepts else factory()


def load_model(checkpoint: str | Path, *, device: torch.device | str = "cpu",
               registry: Registry | None = None) -> TrainedModel:
    """A :class:`TrainedModel` from any checkpoint: a trained student or a retrained teacher."""
    data = read_checkpoint(checkpoint)
    desc, registry = data["description"], registry or get_registry()
    source = Representation.from_dict(desc["source"])
    target = Representation.from_dict(desc["target"])
    pinv = _pinv_of(desc, source, target)
    teacher_name = desc["teacher"]["name"]
    if _kind(data) == "retrained":
        classifier = _untrained_teacher(registry, teacher_name)
        if isinstance(classifier, Teacher):  # its structure may follow its weights
            classifier = classifier.shaped_like(data["state_dict"])
        _load_state(classifier, data["state_dict"], checkpoint, f"teacher {teacher_name!r}")
        return TrainedModel("retrained", pinv.to(device).eval(), classifier.to(device).eval(),
                            teacher_name, source, target, desc)
    student, _ = build_student(registry, desc["student"]["name"], source, target,
                                desc["student"]["config"])
    _load_state(student, data["state_dict"], checkpoint,
                f"student {desc['student']['name']!r} with config {desc['student']['config']}")
    return TrainedModel("student", Transcoder(pinv, student).to(device).eval(), None,
                        teacher_name, source, target, desc)


def load_student(checkpoint: str | Path, *, device: torch.device | str = "cpu",
                 registry: Registry | None = None) -> Transcoder:
    """A ready transcoder (PINV + trained student, eval mode) from a student checkpoint.

    Input: source levels ``(batch, frames, source bands)``; output: target Mel.
    """
    model = load_model(checkpoint, device=device, registry=registry)
    if not isinstance(model.transcoder, Transcoder):
        raise CheckpointError(
            f"{checkpoint} holds a retrained teacher, not a student; load it with "
            "specxform.training.checkpoint.load_model (its classifier takes the PINV Mel)."
        )
    return model.transcoder



def check_compatible(path: Path, saved: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    """Refuse to resume the run saved at ``path`` when its settings differ from ``current``
    (other than :data:`RESUMABLE_CHANGES` and the versions)."""
    def comparable(desc: Mapping[str, Any]) -> dict[str, Any]:
        # Runs from before class balancing and schedules existed shuffled plainly
        # (balance 0) at a constant learning rate.
        older = {"balance": 0.0, "lr_schedule": "constant"}
        train = {k: v for k, v in {**older, **desc["train"]}.items()
                 if k not in RESUMABLE_CHANGES}
        # Runs from before retrained teachers existed are students.
        return {"kind": "student", **{k: v for k, v in desc.items() if k != "versions"},
                "train": train}

    differ = _differences(comparable(saved), comparable(current))
    if differ:
        shown = "; ".join(differ[:6]) + (f"; and {len(differ) - 6} more" if len(differ) > 6
                                         else "")
        raise CheckpointError(
            f"{path} is a run with other settings (setting: in the run -> now: {shown}); "
            "resume it with the run's settings, or start a new run in another `out_dir`."
        )
