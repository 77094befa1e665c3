"""Which teacher a task uses, and building it: the one resolution of a teacher by name or pair.

A task names its teacher (``teacher="yamnet"``) or leaves it to the pair
(:meth:`specxform.registry.Registry.pair`: the pair's teacher, else the
target's default). :func:`pair_teacher` picks the entry and checks that it
consumes the target; :func:`load_teacher` builds it with its weights;
:func:`resolve_teacher` does both. :func:`works_offline` says whether a teacher
can be built without a download: all its registered weight files (and one of
its interchangeable ones) are bundled or already found on the search path or
in the cache. Nothing here names a particular teacher.

Errors name the parameters (``teacher``, ``target``); the CLI words them in
its flags (:mod:`specxform.cli.common`).

May import: the mechanisms (:mod:`specxform.errors`, :mod:`specxform.weights`,
:mod:`specxform.registry`, :mod:`specxform.plugins`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from specxform.errors import SpecError
from specxform.registry import Registry, TeacherEntry

__all__ = ["NoTeacherError", "ResolvedTeacher", "TeacherTargetError", "load_teacher",
           "offline_teachers", "pair_teacher", "resolve_teacher", "works_offline"]


class NoTeacherError(SpecError):
    """No teacher was named and the pair has none.

    Attributes
    ----------
    target : str
        The target representation no registered teacher is the default of.
    registered : tuple of TeacherEntry
        Every registered teacher, for the message.
    """

    def __init__(self, target: str, registered: tuple[TeacherEntry, ...]) -> None:
        self.target, self.registered = target, registered
        known = ", ".join(f"{t.name} ({t.target})" for t in registered) or "none"
        super().__init__(f"no teacher for target {target!r}; pass teacher=NAME (registered: "
                         f"{known}).")


class TeacherTargetError(SpecError):
    """The named teacher consumes another target representation than the task's.

    Attributes
    ----------
    teacher, consumes, target : str
        The teacher's name, the representation it consumes, and the task's target.
    """

    def __init__(self, teacher: str, consumes: str, target: str) -> None:
        self.teacher, self.consumes, self.target = teacher, consumes, target
        super().__init__(f"teacher {teacher!r} consumes {consumes!r}, not {target!r}; pass "
                         f"target={consumes!r}.")


@attrs.frozen
class ResolvedTeacher:
    """A teacher ready for a task: its registry entry and the built module (eval mode)."""

    entry: TeacherEntry
    module: Any

    @property
    def name(self) -> str:
        """The teacher's registry name."""
        return self.entry.name


def pair_teacher(registry: Registry, source: str, target: str, teacher: str | None = None
                 ) -> TeacherEntry:
    """The entry of ``teacher``, or of the pair's teacher when it is None.

    Raises
    ------
    UnknownNameError
        ``source``, ``target`` or ``teacher`` is not registered (closest names suggested).
    NoTeacherError
        ``teacher`` is None and the pair has no teacher.
    TeacherTargetError
        The teacher consumes another representation than ``target``.
    """
    name = teacher or registry.pair(source, target).teacher
    if name is None:
        raise NoTeacherError(target, tuple(registry.teachers()))
    entry = registry.teacher(name)
    if entry.target != target:
        raise TeacherTargetError(name, entry.target, target)
    return entry


def load_teacher(entry: TeacherEntry, weights: str | Path | None = None) -> Any:
    """Build the teacher of ``entry`` in eval mode, from ``weights`` or its registered files.

    Raises
    ------
    WeightsError
        A weight file is missing (and downloads are off or failed), or ``weights``
        cannot be loaded; raised by the teacher's factory, unchanged.
    """
    module = entry.factory(weights=Path(weights) if weights else None)
    return module.eval()


def resolve_teacher(registry: Registry, source: str, target: str, teacher: str | None = None,
                    weights: str | Path | None = None) -> ResolvedTeacher:
    """:func:`pair_teacher`, then :func:`load_teacher`: the task's teacher, built."""
    entry = pair_teacher(registry, source, target, teacher)
    return ResolvedTeacher(entry, load_teacher(entry, weights))


def works_offline(registry: Registry, entry: TeacherEntry) -> bool:
    """Whether ``entry`` builds without a download.

    True when every file of ``entry.weights`` is found (search path or cache,
    of the published size) and, if it names ``weights_any``, one of those is;
    a teacher that registers no weight file ships its weights (bundled) and
    works offline. Nothing is read or verified.
    """
    from specxform import weights

    def found(name: str) -> bool:
        location = weights.find(registry.weight_file(name))
        return location is not None and location.size_ok

    if not all(found(name) for name in entry.weights):
        return False
    return not entry.weights_any or any(found(name) for name in entry.weights_any)


def offline_teachers(registry: Registry, *, exclude: str | None = None) -> list[TeacherEntry]:
    """The registered teachers that :func:`works_offline`, by name, but ``exclude``."""
    return [entry for entry in registry.teachers()
            if entry.name != exclude and works_offline(registry, entry)]
