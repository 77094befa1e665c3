"""The hooks a specxform plugin implements.

A plugin is a module (or object) exposed under the entry-point group
``specxform`` whose functions are decorated with :data:`specxform.hookimpl`.
Every hook receives the :class:`~specxform.registry.Registry` and calls its
``add_*`` methods; nothing is returned, so a bad registration fails at one
place with one message that names the plugin.

Hooks are called in the order listed here (all plugins for one hook, then the
next hook), so a pair can refer to representations and teachers registered by
any plugin. Within a hook, plugins run in registration order (built-ins
first); ``@hookimpl(tryfirst=True)`` and ``trylast=True`` move one to the
front or the back. A plugin whose hook raises is dropped with everything it
registered (see :func:`specxform.plugins.load_plugins`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from specxform.registry import Registry

PROJECT_NAME = "specxform"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# -- Representations ---------------------------------------------------------


@hookspec
def specxform_add_representations(registry: Registry) -> None:
    """Register spectral representations (sources, targets or both).

    Call ``registry.add_representation(spec)`` with a
    :class:`~specxform.representations.specs.Representation` for each one.

    .. versionadded:: 0.1
    """


# -- Teachers ----------------------------------------------------------------


@hookspec
def specxform_add_teachers(registry: Registry) -> None:
    """Register pretrained classifiers used as teachers.

    Call ``registry.add_teacher(name, target=..., factory=..., num_classes=...)``;
    the target must be a representation with the role ``"target"``,
    registered by some plugin.

    .. versionadded:: 0.1
    """


# -- Students ----------------------------------------------------------------


@hookspec
def specxform_add_students(registry: Registry) -> None:
    """Register student architectures that refine a PINV transcoding.

    Call ``registry.add_student(name, factory=...)``; ``default=True`` makes
    it the student of pairs that name none (else the first registered is).

    .. versionadded:: 0.1
    """


# -- Datasets ----------------------------------------------------------------


@hookspec
def specxform_add_datasets(registry: Registry) -> None:
    """Register dataset adapters that list audio files, labels and splits.

    Call ``registry.add_dataset(name, factory=...)``.

    .. versionadded:: 0.1
    """


# -- Pairs -------------------------------------------------------------------


@hookspec
def specxform_add_pairs(registry: Registry) -> None:
    """Declare (source, target) pairs with their own defaults.

    Call ``registry.add_pair(source, target, teacher=..., student=...,
    checkpoint=...)``. Any registered source and target also form an implicit
    pair (the target's default teacher, the registry's default student); an
    explicit declaration gives the pair its own defaults. Called last, after
    every other hook.

    .. versionadded:: 0.1
    """


HOOK_ORDER = (
    "specxform_add_representations",
    "specxform_add_teachers",
    "specxform_add_students",
    "specxform_add_datasets",
    "specxform_add_pairs",
)
