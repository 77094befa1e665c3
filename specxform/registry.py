"""The registry that plugins fill through the ``specxform_add_*`` hooks.

It holds named entries of six kinds (representations, weight files, teachers,
students, datasets and pairs), remembers which plugin registered each one,
refuses a duplicate name with a message naming both plugins, and answers
look-ups of unknown names with the closest registered ones.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import attrs

from specxform.errors import PluginError, SpecError, UnknownNameError
from specxform.representations.specs import Representation
from specxform.weight_file import WeightFile

#: What ``add_teacher(accepts_sources=...)`` takes: source names, or a predicate
#: over the source :class:`Representation`; ``None`` accepts every source.
SourceFilter: TypeAlias = tuple[str, ...] | Callable[[Representation], bool] | None


@attrs.frozen
class Origin:
    """Where an entry came from: the plugin (entry-point) name and its distribution."""

    plugin: str
    distribution: str | None = None

    def __str__(self) -> str:
        dist = f" from distribution {self.distribution!r}" if self.distribution else ""
        return f"plugin {self.plugin!r}{dist}"


@attrs.frozen
class TeacherEntry:
    """A registered teacher: how to build it and what it consumes.

    ``factory(weights=None, *, pretrained=True)`` returns a
    :class:`specxform.teachers.base.Teacher`: with ``weights`` (a path) loaded from
    it, else from the weight cache; ``pretrained=False`` gives the architecture
    with random weights, which is what contract tests and benchmarks use offline.
    ``weights`` names the files in the weight catalogue it loads, all of them;
    ``weights_any`` names interchangeable files of which it loads one, the
    first present (:func:`specxform.weights.resolve_any`), in order of preference.
    ``chunk_seconds`` and ``normalise`` are the default chunking of its
    training and evaluation audio (:class:`specxform.training.cache.Chunking`): the
    paper's 1 s peak-normalised chunks, unless the teacher needs longer input or
    calibrated levels. ``accepts_sources`` says which source representations
    it can be trained from (see :meth:`accepts`).
    """

    name: str
    target: str
    factory: Callable[..., Any]
    num_classes: int
    parameter_count: int | None = None
    weights: tuple[str, ...] = ()
    aux_inputs: tuple[str, ...] = ()
    default: bool = False
    description: str = ""
    origin: Origin = Origin("unknown")
    chunk_seconds: float = 1.0
    normalise: str = "peak"
    accepts_sources: SourceFilter = None
    weights_any: tuple[str, ...] = ()

    def accepts(self, source: Representation) -> bool:
        """Whether the teacher can be trained from ``source`` (its aux inputs computable).

        Raises
        ------
        PluginError
            If the teacher's predicate raises or returns something else than a bool.
        """
        return _accepts(self.accepts_sources, source, f"{self.origin}: teacher {self.name!r}")


def _accepts(rule: SourceFilter, source: Representation, who: str) -> bool:
    """Apply an ``accepts_sources`` rule; ``who`` starts the error message."""
    if rule is None:
        return True
    if isinstance(rule, tuple):
        return source.name in rule
    try:
        verdict = rule(source)
    except Exception as exc:
        raise PluginError(
            f"{who}: accepts_sources raised on source {source.name!r} "
            f"({type(exc).__name__}: {exc}); it must return True or False."
        ) from exc
    if not isinstance(verdict, bool):
        raise PluginError(
            f"{who}: accepts_sources returned {verdict!r} for source {source.name!r}; "
            "it must return True or False."
        )
    return verdict


@attrs.frozen
class StudentEntry:
    """A student architecture; ``factory(source, target, **config)`` returns an ``nn.Module``.

    ``default`` is true for the one student a plugin declared the registry's default.
    """

    name: str
    factory: Callable[..., Any]
    description: str = ""
    origin: Origin = Origin("unknown")
    default: bool = False


@attrs.frozen
class DatasetEntry:
    """A dataset adapter; ``factory(root, **options)`` lists clips, labels and splits.

    ``example(folder)``, when given, writes a tiny tree in the adapter's layout
    into an empty ``folder`` (a few short audio files and the metadata), on
    which :func:`specxform.testing.check_dataset` runs the adapter.
    """

    name: str
    factory: Callable[..., Any]
    description: str = ""
    origin: Origin = Origin("unknown")
    example: Callable[[Path], None] | None = None
    default: bool = False


@attrs.frozen
class DemoEntry:
    """What ``specxform demo`` shows, as a plugin declares it (the core names no built-in).

    ``source`` and ``targets``: the representations of the synthetic-scene demo;
    ``train_target``: the target, and teacher of the same name, of its training demo.
    """

    source: str
    targets: tuple[str, ...]
    train_target: str
    origin: Origin = Origin("unknown")


@attrs.frozen
class PairEntry:
    """A (source, target) combination and its defaults.

    ``explicit`` is true when a plugin declared it with :meth:`Registry.add_pair`.
    ``student`` is the declared student, else :meth:`Registry.default_student`
    (``None`` only while no student is registered).
    """

    source: str
    target: str
    teacher: str | None = None
    student: str | None = None
    student_config: Mapping[str, Any] = attrs.field(factory=dict)
    checkpoint: str | None = None
    description: str = ""
    explicit: bool = False
    origin: Origin = Origin("registry")

    @property
    def name(self) -> str:
        return f"{self.source}->{self.target}"


_KINDS = ("representation", "weight file", "teacher", "student", "dataset", "pair")


class Registry:
    """Named, origin-tracked entries filled by plugins."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Any]] = {kind: {} for kind in _KINDS}
        self._origin = Origin("<direct>")
        self._demo: DemoEntry | None = None

    # -- registration context (used by the plugin manager) -------------------

    @contextlib.contextmanager
    def registering_as(self, origin: Origin) -> Iterator[None]:
        """Attribute what is added inside the block to ``origin``; undo it all on error."""
        previous, self._origin = self._origin, origin
        before = {kind: set(entries) for kind, entries in self._entries.items()}
        try:
            yield
        except BaseException:
            for kind, entries in self._entries.items():
                for name in set(entries) - before[kind]:
                    del entries[name]
            raise
        finally:
            self._origin = previous

    def _add(self, kind: str, name: str, entry: Any) -> None:
        if not isinstance(name, str) or not name or any(c.isspace() for c in name):
            raise PluginError(
                f"{self._origin}: invalid {kind} name {name!r}; use a non-empty word."
            )
        existing = self._entries[kind].get(name)
        if existing is not None:
            raise PluginError(
                f"duplicate {kind} {name!r}: registered by {self.origin_of(kind, name)} "
                f"and again by {self._origin}; rename one or uninstall one of the plugins."
            )
        self._entries[kind][name] = (entry, self._origin)

    def origin_of(self, kind: str, name: str) -> Origin:
        """The plugin that registered ``name`` of ``kind``."""
        return self._get(kind, name)[1]

    def _get(self, kind: str, name: str) -> tuple[Any, Origin]:
        try:
            return self._entries[kind][name]
        except KeyError:
            raise UnknownNameError(kind, name, self._entries[kind]) from None

    # -- representations ----------------------------------------------------

    def add_representation(self, spec: Representation) -> None:
        """Register a representation under ``spec.name``."""
        if not isinstance(spec, Representation):
            raise PluginError(
                f"{self._origin}: add_representation expects a Representation, got {spec!r}."
            )
        self._add("representation", spec.name, spec)

    def representation(self, name: str) -> Representation:
        """The representation registered as ``name``."""
        return self._get("representation", name)[0]

    def representations(self, role: str | None = None) -> list[Representation]:
        """All representations (optionally only those with ``role``), sorted by name."""
        reps = [entry for entry, _ in self._entries["representation"].values()]
        return sorted((r for r in reps if role is None or role in r.roles), key=lambda r: r.name)

    # -- weight files -------------------------------------------------------

    def add_weight_file(self, weight: WeightFile) -> None:
        """Register a published weight (or label) file under ``weight.name``.

        Teachers name it in ``add_teacher(weights=...)``, which requires it to be
        registered first; ``specxform weights list|fetch|verify`` then handles it.
        Two files with the same ``filename`` are refused: they would share one
        place in the cache and on the search path.
        """
        if not isinstance(weight, WeightFile):
            raise PluginError(
                f"{self._origin}: add_weight_file expects a specxform.WeightFile, got "
                f"{weight!r}; describe the file with WeightFile(name=..., filename=..., url=...)."
            )
        for other, origin in self._entries["weight file"].values():
            if other.filename == weight.filename and other.name != weight.name:
                raise PluginError(
                    f"weight files {other.name!r} (registered by {origin}) and "
                    f"{weight.name!r} (registered by {self._origin}) share the file name "
                    f"{weight.filename!r}, hence one cache location; rename one file."
                )
        self._add("weight file", weight.name, weight)

    def weight_file(self, name: str) -> WeightFile:
        """The weight file registered as ``name``."""
        return self._get("weight file", name)[0]

    def weight_files(self) -> list[WeightFile]:
        """All weight files, sorted by name."""
        return [entry for _, (entry, _) in sorted(self._entries["weight file"].items())]

    # -- teachers -----------------------------------------------------------

    def add_teacher(
        self,
        name: str,
        *,
        target: str,
        factory: Callable[..., Any],
        num_classes: int,
        parameter_count: int | None = None,
        weights: Collection[str] = (),
        aux_inputs: tuple[str, ...] = (),
        default: bool = False,
        description: str = "",
        chunk_seconds: float = 1.0,
        normalise: str = "peak",
        accepts_sources: Collection[str] | Callable[[Representation], bool] | None = None,
        weights_any: Collection[str] = (),
    ) -> None:
        """Register a teacher classifier that consumes representation ``target``.

        ``default=True`` makes it the teacher of implicit pairs with that target.
        ``weights`` names registered weight files (:meth:`add_weight_file`, called
        before this) that it needs, all of them; ``weights_any`` names
        interchangeable ones, in order of preference, of which one is enough
        (a model published in several formats). ``chunk_seconds`` and
        ``normalise`` ("peak" or "none") give the default chunking of its
        training audio (see :class:`TeacherEntry`).
        ``accepts_sources``, names of source representations or a predicate
        ``f(source: Representation) -> bool``, limits the sources it can be
        trained from (for example those its aux inputs can be computed from);
        the pairs it refuses are left out of :meth:`pairs`.
        """
        rep = self._require("representation", target, f"teacher {name!r}")
        if "target" not in rep.roles:
            raise PluginError(
                f"{self._origin}: teacher {name!r} consumes {target!r}, which is not a target "
                f"representation (roles {sorted(rep.roles)}); register it with roles={{'target'}}."
            )
        if not isinstance(num_classes, int) or num_classes < 1:
            raise PluginError(
                f"{self._origin}: teacher {name!r} needs num_classes >= 1, got {num_classes!r}."
            )
        self._check_factory("teacher", name, factory)
        if not (isinstance(chunk_seconds, (int, float)) and chunk_seconds > 0):
            raise PluginError(f"{self._origin}: teacher {name!r} needs chunk_seconds > 0, "
                              f"got {chunk_seconds!r}.")
        if normalise not in ("peak", "none"):
            raise PluginError(f"{self._origin}: teacher {name!r}: normalise must be 'peak' or "
                              f"'none', got {normalise!r}.")
        weights = self._names_of("weight file", weights, f"teacher {name!r}", "weights")
        weights_any = self._names_of("weight file", weights_any, f"teacher {name!r}",
                                     "weights_any")
        if both := sorted(set(weights) & set(weights_any)):
            raise PluginError(
                f"{self._origin}: teacher {name!r} names {both} in both weights (all needed) "
                "and weights_any (one of them needed); keep each file in one of the two."
            )
        rule = self._source_filter(name, accepts_sources)
        entry = TeacherEntry(
            name=name,
            target=target,
            factory=factory,
            num_classes=num_classes,
            parameter_count=parameter_count,
            weights=weights,
            aux_inputs=tuple(aux_inputs),
            default=default,
            description=description,
            origin=self._origin,
            chunk_seconds=float(chunk_seconds),
            normalise=normalise,
            accepts_sources=rule,
            weights_any=weights_any,
        )
        self._add("teacher", name, entry)

    def _names_of(self, kind: str, names: object, where: str, argument: str) -> tuple[str, ...]:
        """``names`` as a tuple of registered ``kind`` names, else a PluginError."""
        if isinstance(names, str) or not isinstance(names, Collection):
            raise PluginError(
                f"{self._origin}: {where}: {argument} must be a tuple of {kind} names, got "
                f"{names!r}; write {argument}=({names!r},) for one."
            )
        for item in names:
            try:
                self._get(kind, item)
            except (UnknownNameError, TypeError):
                hint = (" Register it with registry.add_weight_file(WeightFile(...)) before "
                        "add_teacher (in the same hook, or by a plugin that runs earlier)."
                        if kind == "weight file" else "")
                known = ", ".join(sorted(self._entries[kind])) or "none"
                raise PluginError(
                    f"{self._origin}: {where} refers to unknown {kind} {item!r} in {argument}. "
                    f"{self._closest(kind, item)}Registered {kind}s: {known}.{hint}"
                ) from None
        return tuple(names)

    def _closest(self, kind: str, name: object) -> str:
        if not isinstance(name, str):
            return ""
        close = UnknownNameError(kind, name, self._entries[kind]).suggestions
        return f"Did you mean {', '.join(map(repr, close))}? " if close else ""

    def _source_filter(self, name: str, rule: object) -> SourceFilter:
        """Validate ``accepts_sources``: None, registered source names, or a predicate that
        answers True or False for every registered source (tried here, so that a broken
        predicate fails its plugin's registration rather than a later listing)."""
        if rule is None:
            return None
        if callable(rule):
            for source in self.representations("source"):
                _accepts(rule, source, f"{self._origin}: teacher {name!r}")
            return rule
        names = self._names_of("representation", rule, f"teacher {name!r}", "accepts_sources")
        not_sources = [n for n in names if "source" not in self.representation(n).roles]
        if not_sources:
            raise PluginError(
                f"{self._origin}: teacher {name!r}: accepts_sources names {not_sources}, which "
                f"are not source representations."
            )
        return names

    def accepts(self, teacher: str, source: str) -> bool:
        """Whether teacher ``teacher`` can be trained from source ``source``."""
        return self.teacher(teacher).accepts(self.representation(source))

    def accepted_sources(self, teacher: str) -> list[str]:
        """The registered sources ``teacher`` accepts, sorted by name."""
        entry = self.teacher(teacher)
        return [s.name for s in self.representations("source") if entry.accepts(s)]

    def teacher(self, name: str) -> TeacherEntry:
        """The teacher registered as ``name``."""
        return self._get("teacher", name)[0]

    def teachers(self) -> list[TeacherEntry]:
        """All teachers, sorted by name."""
        return [entry for _, (entry, _) in sorted(self._entries["teacher"].items())]

    def default_teacher(self, target: str, source: str | None = None) -> str | None:
        """The teacher marked default for ``target``, else the only one, else None.

        With ``source``, only the teachers that accept it count: the one marked
        default among them, else the only one.
        """
        candidates = [t for t in self.teachers() if t.target == target]
        if source is not None:
            rep = self.representation(source)
            candidates = [t for t in candidates if t.accepts(rep)]
        marked = [t for t in candidates if t.default]
        chosen = marked or (candidates if len(candidates) == 1 else [])
        return chosen[0].name if chosen else None

    # -- students -----------------------------------------------------------

    def add_student(self, name: str, *, factory: Callable[..., Any], description: str = "",
                    default: bool = False) -> None:
        """Register a student architecture.

        ``default=True`` makes it the student of pairs that name none
        (:meth:`default_student`); only one student may be the default.
        """
        self._check_factory("student", name, factory)
        marked = [s for s in self.students() if s.default]
        if default and marked:
            raise PluginError(
                f"{self._origin}: student {name!r} is declared the default, but "
                f"{marked[0].name!r} ({marked[0].origin}) already is; keep default=True "
                "on one of them."
            )
        entry = StudentEntry(name, factory, description, self._origin, bool(default))
        self._add("student", name, entry)

    def default_student(self) -> str | None:
        """The student declared ``default=True``, else the first registered, else None."""
        registered = [entry for entry, _ in self._entries["student"].values()]
        marked = [s for s in registered if s.default]
        chosen = marked or registered
        return chosen[0].name if chosen else None

    def student(self, name: str) -> StudentEntry:
        """The student registered as ``name``."""
        return self._get("student", name)[0]

    def students(self) -> list[StudentEntry]:
        """All students, sorted by name."""
        return [entry for _, (entry, _) in sorted(self._entries["student"].items())]

    # -- datasets -----------------------------------------------------------

    def add_dataset(self, name: str, *, factory: Callable[..., Any], description: str = "",
                    example: Callable[[Path], None] | None = None,
                    default: bool = False) -> None:
        """Register a dataset adapter.

        ``factory(root, **options)`` returns a :class:`specxform.datasets.AudioDataset`;
        ``example(folder)``, optional, writes a tiny tree in the adapter's layout
        (for :func:`specxform.testing.check_dataset`). ``default=True`` makes it the
        adapter used when none is named (:meth:`default_dataset`); only one may be.
        """
        marked = [d for d in self.datasets() if d.default]
        if default and marked:
            raise PluginError(
                f"{self._origin}: dataset {name!r} is declared the default, but "
                f"{marked[0].name!r} ({marked[0].origin}) already is; keep default=True "
                "on one of them."
            )
        self._check_factory("dataset", name, factory)
        if example is not None and not callable(example):
            raise PluginError(
                f"{self._origin}: dataset {name!r}: example must be a function writing a tiny "
                f"tree into a folder, example(folder: Path) -> None, got {example!r}."
            )
        self._add("dataset", name,
                  DatasetEntry(name, factory, description, self._origin, example, bool(default)))

    def default_dataset(self) -> str | None:
        """The dataset declared ``default=True``, else None (then a dataset must be named)."""
        marked = [d for d in self.datasets() if d.default]
        return marked[0].name if marked else None

    # -- demo ---------------------------------------------------------------

    def set_demo(self, *, source: str, targets: Sequence[str], train_target: str) -> None:
        """Declare what ``specxform demo`` shows; the last declaration wins."""
        for name in (source, *targets):
            self._require("representation", name, "the demo")
        self._demo = DemoEntry(source, tuple(targets), train_target, self._origin)

    def demo(self) -> DemoEntry:
        """The declared demo; :class:`PluginError` when no plugin declared one."""
        if self._demo is None:
            raise PluginError("no plugin declares a demo (registry.set_demo); install "
                              "specxform's built-in plugins or one that declares it.")
        return self._demo

    def dataset(self, name: str) -> DatasetEntry:
        """The dataset registered as ``name``."""
        return self._get("dataset", name)[0]

    def datasets(self) -> list[DatasetEntry]:
        """All datasets, sorted by name."""
        return [entry for _, (entry, _) in sorted(self._entries["dataset"].items())]

    # -- pairs --------------------------------------------------------------

    def add_pair(
        self,
        source: str,
        target: str,
        *,
        teacher: str | None = None,
        student: str | None = None,
        student_config: Mapping[str, Any] | None = None,
        checkpoint: str | None = None,
        description: str = "",
    ) -> None:
        """Declare the (source, target) pair with its defaults.

        The representations, the teacher and the student must be registered;
        the teacher must consume ``target``. Without ``student``, the pair takes
        :meth:`default_student` (students are registered before pairs).
        """
        where = f"pair {source}->{target}"
        src, tgt = (
            self._require("representation", source, where),
            self._require("representation", target, where),
        )
        if "source" not in src.roles or "target" not in tgt.roles:
            raise PluginError(
                f"{self._origin}: {where} needs a source and a target; {source!r} has roles "
                f"{sorted(src.roles)}, {target!r} has roles {sorted(tgt.roles)}."
            )
        if teacher is not None:
            entry = self._require("teacher", teacher, where)
            if entry.target != target:
                raise PluginError(
                    f"{self._origin}: {where}: teacher {teacher!r} consumes {entry.target!r}, "
                    f"not {target!r}; pick a teacher of target {target!r}."
                )
            if not entry.accepts(src):
                accepted = ", ".join(self.accepted_sources(teacher)) or "none"
                raise PluginError(
                    f"{self._origin}: {where}: teacher {teacher!r} ({entry.origin}) does not "
                    f"accept source {source!r}; it accepts: {accepted}."
                )
        elif refusing := self._refusing_teachers(source, target):
            raise PluginError(
                f"{self._origin}: {where}: every teacher of target {target!r} refuses source "
                f"{source!r} ({', '.join(map(repr, refusing))}); such a pair cannot be trained."
            )
        if student is None:
            student = self.default_student()
            if student is None:
                raise PluginError(
                    f"{self._origin}: {where} names no student and none is registered; "
                    "register one with add_student (in specxform_add_students) or pass student=."
                )
        self._require("student", student, where)  # students are registered before pairs
        pair = PairEntry(
            source=source,
            target=target,
            teacher=teacher,
            student=student,
            student_config=dict(student_config or {}),
            checkpoint=checkpoint,
            description=description,
            explicit=True,
            origin=self._origin,
        )
        self._add("pair", pair.name, pair)

    def pair(self, source: str, target: str) -> PairEntry:
        """The pair (source, target): declared defaults, or an implicit pair.

        An implicit pair's teacher is :meth:`default_teacher` among the target's
        teachers that accept the source.

        Raises
        ------
        SpecError
            If a name is not a source or a target, or the target has teachers
            but none accepts the source (the message lists the sources they accept).
        """
        declared = self._entries["pair"].get(f"{source}->{target}")
        if declared is not None:
            return declared[0]
        src, tgt = self.representation(source), self.representation(target)
        if "source" not in src.roles:
            raise SpecError(f"{source!r} is not a source representation; see `specxform list`.")
        if "target" not in tgt.roles:
            raise SpecError(f"{target!r} is not a target representation; see `specxform list`.")
        refusing = self._refusing_teachers(source, target)
        if refusing:
            accepted = ", ".join(self.accepted_sources(refusing[0])) or "none"
            raise SpecError(
                f"pair {source}->{target} is not usable: every teacher of target {target!r} "
                f"({', '.join(map(repr, refusing))}) refuses source {source!r}; "
                f"{refusing[0]!r} accepts: {accepted}. See `specxform list pairs`."
            )
        return PairEntry(source=source, target=target,
                         teacher=self.default_teacher(target, source),
                         student=self.default_student())

    def _refusing_teachers(self, source: str, target: str) -> list[str]:
        """The target's teachers when all of them refuse ``source`` (else an empty list)."""
        rep = self.representation(source)
        candidates = [t for t in self.teachers() if t.target == target]
        if any(t.accepts(rep) for t in candidates):
            return []
        return [t.name for t in candidates]

    def pairs(self) -> list[PairEntry]:
        """Every usable (source, target) combination: declared ones with their defaults,
        and implicit ones unless every teacher of the target refuses the source."""
        return [
            self.pair(s.name, t.name)
            for s in self.representations("source")
            for t in self.representations("target")
            if s.name != t.name and (
                f"{s.name}->{t.name}" in self._entries["pair"]
                or not self._refusing_teachers(s.name, t.name)
            )
        ]

    def _check_factory(self, kind: str, name: str, factory: object) -> None:
        if not callable(factory):
            raise PluginError(
                f"{self._origin}: {kind} {name!r} needs a callable factory, got {factory!r}; "
                "pass the class or function that builds it."
            )

    def _require(self, kind: str, name: str, where: str) -> Any:
        try:
            return self._get(kind, name)[0]
        except UnknownNameError as exc:
            raise PluginError(f"{self._origin}: {where} refers to {exc}") from None
