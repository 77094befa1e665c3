"""Plumbing shared by the commands: consoles, JSON, input expansion, all-or-nothing outputs.

Tables and results go to stdout; progress bars, notes and errors to stderr,
so that ``--json`` output on stdout is always machine-readable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from specxform.errors import InputError, SpecError
from specxform.io import (
    ARRAY_SUFFIXES,
    FORMATS,
    StagedFolder,
    file_format,
    output_lock,
    visible_files,
    write_array,
    write_arrays,
)
from specxform.progress import ProgressCallback
from specxform.representations.specs import Representation

#: Exit status of a usage or input error (argparse uses 2 as well).
EXIT_USAGE = 2
#: Console width when the output is not a terminal (a pipe, a file) and $COLUMNS is unset:
#: wide enough that tables keep each row on one line instead of wrapping at 80 columns.
PIPED_WIDTH = 1000


def _console(*, stderr: bool) -> Console:
    console = Console(stderr=stderr, soft_wrap=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console = Console(stderr=stderr, soft_wrap=False, width=PIPED_WIDTH)
    return console


def stdout() -> Console:
    """Console for tables and results (stdout); not wrapped when stdout is not a terminal."""
    return _console(stderr=False)


def stderr() -> Console:
    """Console for progress bars and notes (stderr); not wrapped when not a terminal."""
    return _console(stderr=True)


def print_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout, nothing else."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def positive_int(text: str) -> int:
    """argparse type of a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_seconds(text: str) -> float:
    """argparse type of a finite, positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def db_offset(text: str) -> str | float:
    """argparse type of ``--db-offset``: ``auto`` or a finite number of dB."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither 'auto' nor a number of dB"
                                         ) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number of dB, got {text}")
    return value


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--json`` (machine-readable output on stdout)."""
    parser.add_argument("--json", action="store_true",
                        help="print machine-readable JSON on stdout instead of tables")


def add_strict_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--strict`` (input warnings are errors; see :class:`specxform.errors.InputWarning`)."""
    parser.add_argument("--strict", action="store_true",
                        help="refuse inputs that only get a warning otherwise (a truncated "
                        "file, bands above the audio's Nyquist frequency)")


def progress() -> Progress:
    """A transient progress bar on stderr (files done / total, elapsed time).

    Shown only on a terminal, so that logs and captured stderr hold nothing but
    errors; the commands print a summary line when they finish.
    """
    console = stderr()
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=True,
                    disable=not console.is_terminal)


@attrs.frozen
class InputFile:
    """One file to process: where it is, what it is, and the name its output gets."""

    path: Path
    name: str  # relative to the input folder, without suffix; POSIX separators
    kind: str  # "audio" or "array"


def _kind(path: Path) -> str | None:
    from specxform.audio import AUDIO_SUFFIXES  # deferred: specxform.audio imports scipy.signal

    suffix = path.suffix.lower()
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    return "array" if suffix in ARRAY_SUFFIXES else None


def expand_inputs(inputs: Iterable[str | Path], *, kinds: tuple[str, ...]) -> list[InputFile]:
    """Expand files and folders (recursively) into the files of the accepted ``kinds``.

    Hidden names below a folder (staging folders and temporary files of killed
    runs, ``.git``) are skipped (:func:`specxform.io.visible_files`).

    Raises
    ------
    InputError
        For a missing or unreadable path, a file of another type, an empty
        result, or two inputs that would write the same output name.
    """
    from specxform.audio import AUDIO_SUFFIXES

    accepted = [s for s in AUDIO_SUFFIXES if "audio" in kinds]
    accepted += [s for s in ARRAY_SUFFIXES if "array" in kinds]
    found: dict[str, InputFile] = {}
    for item in map(Path, inputs):
        if item.is_dir():
            files = [p for p in visible_files(item) if _kind(p) in kinds]
            entries = [(p, p.relative_to(item).with_suffix("").as_posix()) for p in files]
        elif item.is_file():
            if _kind(item) not in kinds:
                raise InputError(
                    f"{item}: unsupported file type {item.suffix or '(no suffix)'!r}; "
                    f"give {', '.join(accepted)} files or folders holding them."
                )
            entries = [(item, item.stem)]
        else:
            raise InputError(f"{item}: no such file or folder; check the path.")
        for path, name in entries:
            if not os.access(path, os.R_OK):
                raise InputError(f"{path}: permission denied; make the file readable.")
            if name in found:
                raise InputError(
                    f"{found[name].path} and {path} would both write the output {name!r}; "
                    "rename one or process them separately."
                )
            found[name] = InputFile(path, name, _kind(path) or "")
    if not found:
        raise InputError(
            f"no {' or '.join(kinds)} files ({', '.join(accepted)}) found in "
            f"{', '.join(map(str, inputs))}."
        )
    return list(found.values())


@attrs.frozen
class OutputPlan:
    """Where results go: one file per item in a folder, or all in one file."""

    path: Path
    fmt: str
    single_file: bool

    @classmethod
    def from_args(cls, out: str | Path, fmt: str | None) -> OutputPlan:
        """A path with an array suffix is one file; anything else is a folder."""
        path = Path(out)
        if path.suffix.lower() in ARRAY_SUFFIXES:
            implied = file_format(path)
            if fmt is not None and fmt != implied:
                raise InputError(
                    f"-o {path} is a .{implied} file but --format is {fmt}; drop --format or "
                    f"give an output ending in {FORMATS[fmt][0]}."
                )
            return cls(path, implied, True)
        return cls(path, fmt or "npy", False)


def write_outputs(plan: OutputPlan, items: Iterator[tuple[str, Path, np.ndarray]],
                  rep: Representation) -> list[dict[str, Any]]:
    """Write ``(name, input path, array)`` items all-or-nothing; return one record per item.

    A folder plan writes ``<folder>/<name>.<fmt>`` per item through a
    :class:`~specxform.io.StagedFolder`; a file plan gathers the items and
    writes them at once (a ``.npy`` file takes exactly one). Either way an
    error while producing any item leaves no output behind, and the output is
    locked while the items are produced (:func:`specxform.io.output_lock`): a
    second run into the same output is refused.
    """
    records: list[dict[str, Any]] = []

    def record(name: str, source: Path, array: np.ndarray, output: Path) -> None:
        records.append({"name": name, "input": str(source), "output": str(output),
                        "shape": list(array.shape)})

    if not plan.single_file:
        suffix = FORMATS[plan.fmt][0]
        with StagedFolder(plan.path) as staged:
            for name, source, array in items:
                write_array(staged.path(name + suffix), array, rep)
                record(name, source, array, plan.path / (name + suffix))
        return records
    with output_lock(plan.path, folder=False):
        _write_file(plan, items, rep, record)
    return records


def _write_file(plan: OutputPlan, items: Iterator[tuple[str, Path, np.ndarray]],
                rep: Representation, record: Callable[..., None]) -> None:
    gathered: dict[str, np.ndarray] = {}
    for name, source, array in items:
        gathered[name] = array
        record(name, source, array, plan.path)
    if plan.fmt == "npy":
        if len(gathered) != 1:
            raise InputError(
                f"-o {plan.path}: a .npy file holds one array, got {len(gathered)}; "
                "give a folder, or a .npz or .h5 file."
            )
        write_array(plan.path, next(iter(gathered.values())), rep)
    else:
        write_arrays(plan.path, gathered, rep)


def add_output_args(parser: argparse.ArgumentParser) -> None:
    """``-o OUT`` and ``--format`` of the commands that write arrays."""
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="a folder (one file per input) or one .npy/.npz/.h5 file for all")
    parser.add_argument("--format", choices=tuple(FORMATS),
                        help="file format inside an output folder (default: npy)")


def report_outputs(args: argparse.Namespace, plan: OutputPlan, records: list[dict[str, Any]],
                   **summary: Any) -> None:
    """Print what was written: JSON (``summary`` plus every item) or one line per output."""
    if args.json:
        print_json({**summary, "output": str(plan.path), "format": plan.fmt, "items": records})
        return
    frames = sorted({r["shape"][-2] for r in records})
    span = str(frames[0]) if len(frames) == 1 else f"{frames[0]}..{frames[-1]}"
    if summary.get("checkpoint") is not None:  # transcode --checkpoint: say what was applied
        summary = {k: v for k, v in summary.items() if k not in ("method", "pinv_method")} | {
            "student": f"{summary.get('student')} on its PINV ({summary.get('pinv_method')})"}
    details = ", ".join(f"{key} {value}" for key, value in summary.items() if value is not None)
    stdout().print(
        f"wrote {len(records)} array(s) ({details}; {span} frames each) to {plan.path} "
        f"({plan.fmt})", highlight=False, soft_wrap=True,
    )


def add_chunking_arguments(parser: argparse.ArgumentParser) -> None:
    """``--chunk-seconds`` and ``--normalise``, defaulting to the teacher's chunking."""
    parser.add_argument("--chunk-seconds", type=float, metavar="X",
                        help="chunk length in seconds (default: the teacher's registered "
                        "one; 1.0 for most)")
    parser.add_argument("--normalise", choices=("peak", "none"),
                        help="peak-normalise each clip, or keep its recorded level (default: "
                        "the teacher's; none for teachers whose input depends on the level)")


def checkpoint_option(reserved: tuple[str, ...], example: str
                      ) -> Callable[[str], tuple[str, str]]:
    """argparse type of ``--checkpoint NAME=CKPT``; ``reserved`` names are the built-in methods."""

    def parse(text: str) -> tuple[str, str]:
        name, sep, path = text.partition("=")
        name = name.strip()
        if not sep or not name or not path:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not NAME=CKPT; e.g. --checkpoint {example}=runs/{example}/best.pt"
            )
        if name in reserved or "," in name:
            raise argparse.ArgumentTypeError(
                f"checkpoint name {name!r} is taken by a built-in method or has a comma; use "
                f"another, e.g. {example}"
            )
        return name, path

    return parse


def method_list_option(example: str) -> Callable[[str], tuple[str, ...]]:
    """argparse type of a comma-separated ``--methods`` list."""

    def parse(text: str) -> tuple[str, ...]:
        methods = tuple(m.strip() for m in text.split(",") if m.strip())
        if not methods:
            raise argparse.ArgumentTypeError(f"{text!r} names no method; e.g. {example}")
        return methods

    return parse


def given_weights_error(weights: str, exc: Exception) -> InputError:
    """A teacher that cannot load the ``--weights`` file the user gave: bad input (status 2)."""
    text = str(exc)
    return InputError(text if text.startswith(f"--weights {weights}") else
                      f"--weights {weights}: {text}")


def recorded_source(files: list[InputFile]) -> str:
    """The source representation the array inputs record (``--source`` left out).

    Raises
    ------
    InputError
        An input records no representation (audio, ``.npy``, a hand-written
        file), or the inputs record different ones, or a target.
    """
    from specxform.io import read_representation

    found: dict[str, Path] = {}
    for file in files:
        rep = read_representation(file.path) if file.kind == "array" else None
        if rep is None:
            what = "is audio" if file.kind == "audio" else "records no representation"
            raise InputError(f"{file.path} {what}; give --source NAME (the representation of "
                             "the levels, e.g. cense).")
        if "source" not in rep.roles:
            raise InputError(f"{file.path} holds {rep.name!r} arrays, which are not source "
                             "levels; give source levels (e.g. computed with `specxform "
                             "features --rep cense`).")
        found.setdefault(rep.name, file.path)
    if len(found) > 1:
        listing = ", ".join(f"{name} ({path})" for name, path in found.items())
        raise InputError(f"the inputs hold levels of different representations: {listing}; "
                         "transcode them separately, each with its --source.")
    return next(iter(found))


# ------------------------------------------------------------------ teachers (flag wording)


def offline_hint(registry: Any, failing: str | None = None, *, with_target: bool = True) -> str:
    """Which installed teachers work offline, as the flags that choose them.

    A teacher works offline when its registered weight files are bundled or
    already found (:func:`specxform.teachers.resolve.works_offline`); no
    teacher is named here by hand. ``failing`` is left out.
    """
    from specxform.teachers.resolve import offline_teachers

    found = offline_teachers(registry, exclude=failing)
    if not found:
        return ("no other installed teacher works offline; fetch the weight files with "
                "`specxform weights fetch NAME` while online, or give --weights PATH")
    return ", ".join(
        f"`--teacher {e.name}{f' --target {e.target}' if with_target else ''}` works offline"
        for e in found)


def teacher_weights_error(registry: Any, name: str, weights: str | None, exc: Exception,
                          *, verb: str, with_target: bool = True) -> Exception:
    """The error of a teacher that cannot load its weights, in the words of the flags.

    A ``--weights`` file the user gave is bad input (status 2); a missing
    registered file names the teachers that work without downloads.
    """
    from specxform.errors import WeightsError

    if weights:
        return given_weights_error(weights, exc)
    hint = offline_hint(registry, name, with_target=with_target)
    return WeightsError(f"teacher {name!r}: {exc} To {verb} without downloads: {hint}.")


def load_teacher(registry: Any, entry: Any, weights: str | None, *, verb: str,
                 with_target: bool = True) -> Any:
    """:func:`specxform.teachers.resolve.load_teacher` with errors that name the flags."""
    from specxform.errors import WeightsError
    from specxform.teachers import resolve

    try:
        return resolve.load_teacher(entry, weights)
    except WeightsError as exc:
        raise teacher_weights_error(registry, entry.name, weights, exc, verb=verb,
                                    with_target=with_target) from exc


def pair_teacher(registry: Any, args: argparse.Namespace, *, verb: str = "run"
                 ) -> tuple[str, Any]:
    """``--teacher`` (default: the pair's) and its module with ``--weights``, checked against
    ``--target``; the library's errors reworded in the flags.
    """
    from specxform.teachers import resolve

    try:
        entry = resolve.pair_teacher(registry, args.source, args.target, args.teacher)
    except resolve.NoTeacherError as exc:
        known = ", ".join(f"{t.name} ({t.target})" for t in exc.registered) or "none"
        raise SpecError(f"no teacher for target {exc.target!r}; give --teacher NAME "
                        f"(registered: {known}); {offline_hint(registry)}.") from None
    except resolve.TeacherTargetError as exc:
        raise SpecError(f"teacher {exc.teacher!r} consumes {exc.consumes!r}, not "
                        f"{exc.target!r}; use --target {exc.consumes}.") from None
    return entry.name, load_teacher(registry, entry, args.weights, verb=verb)


# ------------------------------------------------------------------ shared argument blocks


def add_pair_arguments(parser: argparse.ArgumentParser) -> None:
    """``--source``, ``--target``, ``--teacher`` and ``--weights`` of the pair commands."""
    parser.add_argument("--source", required=True, metavar="S", help="source representation")
    parser.add_argument("--target", required=True, metavar="T", help="target representation")
    parser.add_argument("--teacher", metavar="NAME",
                        help="teacher classifier (default: the pair's or the target's)")
    parser.add_argument("--weights", metavar="PATH", help="teacher weight file")


def add_data_arguments(parser: argparse.ArgumentParser, *, dataset_required: bool = False,
                       dataset_help: str = "dataset adapter (default: the registry's default "
                       "adapter, see `specxform list datasets`)") -> None:
    """``--dataset`` (an adapter name; None means the registry's default) and ``--data``."""
    parser.add_argument("--dataset", required=dataset_required, default=None, metavar="NAME",
                        help=dataset_help)
    parser.add_argument("--data", required=True, metavar="PATH", help="dataset folder")


#: Every option string of the command line (filled by :func:`specxform.cli.main.main`).
CLI_FLAGS: set[str] = set()


def warn(text: str) -> None:
    """One ``specxform: warning:`` line on stderr, in the command line's flags."""
    sys.stderr.write(f"specxform: warning: {as_flags(' '.join(text.split()), CLI_FLAGS)}\n")


def as_flags(message: str, flags: Iterable[str]) -> str:
    """A library message in command-line words: `name=value` -> --name value, `name` -> --name.

    Only names that are options of the command line (``flags``) change, so code
    such as `specxform list` stays as written.
    """
    import re

    known = set(flags)

    def flag(found: re.Match[str]) -> str:
        option = "--" + found[1].replace("_", "-")
        if option not in known:
            return found[0]
        value = found[2].strip("'\"") if found[2] else ""
        return option + (f" {value}" if value else "")

    return re.sub(r"`(\w+)(?:=([^`]*))?`", flag, message)


def dataset_name(registry: Any, name: str | None) -> str:
    """``--dataset``, or the registry's default adapter when it was not given."""
    if name is not None:
        registry.dataset(name)  # unknown names: the closest ones are suggested
        return name
    default = registry.default_dataset()
    if default is None:
        names = ", ".join(d.name for d in registry.datasets()) or "none installed"
        raise InputError(f"no default dataset adapter is registered; pass --dataset NAME "
                         f"(installed: {names}).")
    return str(default)


def add_cache_arguments(parser: argparse.ArgumentParser) -> None:
    """``--chunk-seconds``, ``--normalise`` and ``--cache-dir``: how features are cached."""
    add_chunking_arguments(parser)
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="feature caches (default: $SPECXFORM_HOME/features)")


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device`` (default: auto)."""
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")


def cache_root(args: argparse.Namespace) -> Path:
    """``--cache-dir``, else ``$SPECXFORM_HOME/features``."""
    from specxform import weights

    return Path(args.cache_dir) if args.cache_dir else weights.home() / "features"


def pair_cache(registry: Any, args: argparse.Namespace, clips: Any, teacher_name: str,
               teacher: Any, progress: ProgressCallback | None = None) -> tuple[Any, Any]:
    """The feature cache of ``clips`` for ``--source``/``--target`` and the teacher.

    Chunking follows the teacher unless ``--chunk-seconds``/``--normalise``
    say otherwise. Returns ``(cache, chunking)``.
    """
    from specxform.training.cache import Chunking, build_cache

    chunking = Chunking.for_teacher(registry.teacher(teacher_name), seconds=args.chunk_seconds,
                                    normalise=args.normalise)
    cache = build_cache(clips, source=registry.representation(args.source),
                        target=registry.representation(args.target), teacher=teacher,
                        teacher_name=teacher_name, root=cache_root(args), chunking=chunking,
                        progress=progress)
    return cache, chunking
