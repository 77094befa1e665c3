"""Training a (source, target) pair: the one library entry point behind ``specxform train``.

:func:`train_pair` composes the chain that the CLI, the demo and the
benchmarks used to compose each on their own:

1. the pair (:meth:`specxform.registry.Registry.pair`) and its defaults: the
   student and its options (:func:`pair_student`);
2. the teacher: a name, else the pair's, built with its weights
   (:func:`specxform.teachers.resolve.resolve_teacher`);
3. the data: a registered dataset adapter and its grouped split, or a split
   given by the caller;
4. the feature cache (:func:`specxform.training.cache.build_cache`; under
   ``torchrun`` rank 0 builds it and the others reuse it);
5. the training itself (:func:`specxform.training.trainer.train`).

May import: every layer except the CLI.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from specxform.datasets import Clip, Split
from specxform.errors import InputError
from specxform.progress import ProgressCallback
from specxform.registry import Registry
from specxform.teachers.resolve import ResolvedTeacher, resolve_teacher

__all__ = ["PairRun", "pair_student", "run_folder", "train_pair"]


@attrs.frozen
class PairRun:
    """What :func:`train_pair` did.

    Attributes
    ----------
    result : TrainResult
        The training result (:class:`specxform.training.trainer.TrainResult`).
    teacher : str
        The teacher's registry name.
    student : str or None
        The student trained (None for ``retrain_teacher``).
    student_config : dict
        Its options, the pair's defaults unless given.
    split : Split
        The clips that trained, validated and were held out.
    cache : FeatureCache
        The feature cache the run read.
    out_dir : Path
        The run folder.
    cache_seconds : float
        Wall time spent finding or building the cache, in seconds.
    """

    result: Any
    teacher: str
    student: str | None
    student_config: dict[str, Any]
    split: Split
    cache: Any
    out_dir: Path
    cache_seconds: float


def run_folder(source: str, target: str, teacher: str) -> Path:
    """The default run folder of a pair and teacher: ``runs/<source>-<target>-<teacher>``."""
    return Path("runs") / f"{source}-{target}-{teacher}"


def pair_student(registry: Registry, source: str, target: str, student: str | None = None,
                 student_config: Mapping[str, Any] | None = None
                 ) -> tuple[str, dict[str, Any]]:
    """The student of a pair and its options: those given, else the pair's defaults.

    The pair's options apply only to the pair's own student; a student named
    here gets ``student_config`` or no options.

    Raises
    ------
    UnknownNameError
        The pair or the student is not registered.
    InputError
        No student is registered at all.
    """
    pair = registry.pair(source, target)
    name = student or pair.student
    if name is None:
        raise InputError(f"no student is registered for the pair {source!r} -> {target!r}; "
                         "install a plugin that registers one, or pass student=NAME.")
    registry.student(name)  # unknown names: the closest ones are suggested
    if student_config is not None:
        return name, dict(student_config)
    return name, dict(pair.student_config) if name == pair.student else {}


def _data(registry: Registry, dataset: str | None, data: str | Path | None,
          split: Split | None, clips: Sequence[Clip] | None, seed: int
          ) -> tuple[Split, Sequence[Clip]]:
    """The split and the clips to cache (every clip of the dataset, or of the split)."""
    if split is not None:
        if dataset is not None or data is not None:
            raise InputError("give either split=... or dataset=... with data=..., not both.")
        return split, clips if clips is not None else (*split.train, *split.valid, *split.test)
    if data is None or dataset is None:
        raise InputError(f"give data=FOLDER with dataset=NAME (a registered adapter), or "
                         f"split=SPLIT; got data={data!r}, dataset={dataset!r}.")
    loaded = registry.dataset(dataset).factory(data)
    return loaded.split(seed=seed), clips if clips is not None else loaded.clips


def train_pair(source: str, target: str, *, data: str | Path | None = None,
               dataset: str | None = None, split: Split | None = None,
               clips: Sequence[Clip] | None = None,
               teacher: str | ResolvedTeacher | None = None, weights: str | Path | None = None,
               student: str | None = None, student_config: Mapping[str, Any] | None = None,
               out_dir: str | Path | None = None, cache_dir: str | Path | None = None,
               chunk_seconds: float | None = None, normalise: str | None = None,
               loss: Any = None, config: Any = None, seed: int = 0, resume: bool = False,
               retrain_teacher: bool = False, tensorboard: bool = True,
               registry: Registry | None = None, progress: ProgressCallback | None = None,
               on_batch: Callable[[int, int], None] | None = None) -> PairRun:
    """Train a transcoder for ``source -> target`` against a frozen teacher.

    Parameters
    ----------
    source, target : str
        Registered representations of the pair.
    data, dataset : path, str, optional
        A dataset folder and the registered adapter that reads it (both or
        neither); its grouped split (``seed``) gives the training and
        validation clips, and every clip of it is cached.
    split : Split, optional
        Instead of ``data``: the split to train on; its clips are cached
        unless ``clips`` names others (a superset).
    clips : sequence of Clip, optional
        The clips to cache (default: all of the dataset or of the split).
    teacher : str or ResolvedTeacher, optional
        A teacher name (default: the pair's), or one already built.
    weights : path, optional
        The teacher's weight file (default: its registered files).
    student, student_config : str, mapping, optional
        Default: the pair's student and options (:func:`pair_student`).
    out_dir : path, optional
        Run folder (default: :func:`run_folder`).
    cache_dir : path, optional
        Folder of feature caches (default: ``$SPECXFORM_HOME/features``).
    chunk_seconds, normalise : float, str, optional
        Chunking of the audio (default: the teacher's).
    loss, config : LossConfig, TrainConfig, optional
        Passed to :func:`specxform.training.trainer.train`; ``config.seed``
        should equal ``seed`` (the split's seed) to repeat a CLI run.
    seed : int
        Seed of the dataset's split.
    resume, retrain_teacher, tensorboard, on_batch
        As in :func:`specxform.training.trainer.train`.
    registry : Registry, optional
        Default: the installed plugins.
    progress : ProgressCallback, optional
        Receives the caching and training progress events.

    Returns
    -------
    PairRun

    Raises
    ------
    UnknownNameError, NoTeacherError, TeacherTargetError, WeightsError, InputError
        From resolving the pair, the student, the teacher and the data.
    """
    from specxform import weights as weight_files
    from specxform.plugins import get_registry
    from specxform.training import distributed
    from specxform.training.cache import Chunking, build_cache
    from specxform.training.trainer import train

    registry = registry or get_registry()
    student_name, options = pair_student(registry, source, target, student, student_config)
    chosen = (teacher if isinstance(teacher, ResolvedTeacher)
              else resolve_teacher(registry, source, target, teacher, weights))
    the_split, to_cache = _data(registry, dataset, data, split, clips, seed)
    out = Path(out_dir) if out_dir is not None else run_folder(source, target, chosen.name)
    root = Path(cache_dir) if cache_dir is not None else weight_files.home() / "features"
    bar: Any = progress  # the trainer's and the cache's progress argument
    started = time.perf_counter()
    with distributed.main_first():  # under torchrun, rank 0 builds the cache, the others reuse it
        cache = build_cache(
            to_cache, source=registry.representation(source),
            target=registry.representation(target), teacher=chosen.module,
            teacher_name=chosen.name, root=root, progress=bar,
            chunking=Chunking.for_teacher(chosen.entry, seconds=chunk_seconds,
                                          normalise=normalise),
        )
    cache_seconds = time.perf_counter() - started
    result = train(cache, the_split, chosen.module, out_dir=out, teacher_name=chosen.name,
                   student=student_name, student_config=options, loss=loss, config=config,
                   resume=resume, registry=registry, retrain_teacher=retrain_teacher,
                   tensorboard=tensorboard, progress=bar, on_batch=on_batch)
    return PairRun(result, chosen.name, None if retrain_teacher else student_name, options,
                   the_split, cache, out, cache_seconds)
