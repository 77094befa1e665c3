"""Classify stored levels (no audio) with a trained checkpoint, streaming, in bounded memory.

Pipeline, per level file (:func:`classify_level_file`)
    1. *Offset.* The model was trained on peak-normalised audio, so stored
       sensor levels (dB SPL) are shifted by ``db_offset`` dB before anything
       else. ``"auto"`` estimates it in a first pass over the file: it brings the
       99th percentile of the frames' broadband level to :data:`AUTO_TARGET_DB`
       (plus the source's own calibration ``scaling.offset``, 0 for ``cense``),
       where that percentile lies for peak-normalised real clips
       (:class:`~specxform.levels.statistics.BroadbandHistogram`).
    2. *Windows.* The file is read in blocks, validated and cut into windows of
       ``W`` frames that never cross a gap (:class:`~specxform.levels.windows.WindowCutter`);
       a padded last window is padded with silence (after the shift).
    3. *Transcoding.* Each window goes through the checkpoint's transcoder on
       its own, exactly as each training chunk did: the PINV holds the edge
       frames of the window (no context from neighbouring windows) and the
       student sees one window's Mel. Blocks therefore need no context frames,
       and block-wise processing gives the probabilities of whole-file
       processing (a test checks it).
    4. *Classification.* The checkpoint's teacher (the registered one, or the
       fine-tuned classifier of a ``"retrained"`` checkpoint) classifies each
       window's Mel; a teacher with aux inputs gets
       ``teacher.aux_from_source(window_levels, source)`` from the shifted levels.
    5. *Results.* Window probabilities are spilled to a file in a temporary
       folder (:class:`WindowStore`), not kept in memory; the file's
       probabilities are the mean over its windows.

Memory therefore stays bounded whatever the file length: one block of levels,
one batch of windows, and the running sums.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from torch import nn

from specxform.errors import CheckpointError, InputError, PluginError, WeightsError
from specxform.levels.readers import BLOCK_FRAMES, LevelReader, open_levels, timestamp_text
from specxform.levels.statistics import BroadbandHistogram
from specxform.levels.windows import WindowBatch, WindowCutter, silence_levels, window_frames
from specxform.progress import ProgressCallback, report
from specxform.registry import Registry
from specxform.representations.specs import Representation
from specxform.teachers.labels import ClassLabels
from specxform.teachers.resolve import load_teacher

__all__ = [
    "LevelModel",
    "LevelResult",
    "LevelSettings",
    "WindowStore",
    "auto_offset",
    "classify_level_file",
    "classify_level_files",
    "estimate_offset",
    "load_level_model",
    "trained_chunk_seconds",
]

#: Percentile of the frame broadband level that ``--db-offset auto`` brings to AUTO_TARGET_DB.
AUTO_PERCENTILE = 99.0
#: Where ``auto`` puts that percentile (dB re full scale): its median over 185 real clips
#: (UrbanSound8K excerpt, ESC-10, TAU 2020) once peak-normalised as in training, interquartile
#: range -14.3 to -10.0 dB. Not 0 dB: peak normalisation puts the *sample* peak at 0 dBFS, and
#: a 125 ms frame's power lies below it by the clip's crest factor. The percentile is taken
#: with numpy's "higher" rank: the loudest frame of a file of fewer than 101 frames.
AUTO_TARGET_DB = -12.0
#: Windows per transcoder and teacher call.
BATCH_WINDOWS = 64

# ----------------------------------------------------------------------------- model


@attrs.frozen
class LevelModel:
    """What classifies levels: a checkpoint's transcoder and the teacher that reads its Mels.

    Attributes
    ----------
    transcoder : nn.Module
        Levels ``(batch, frames, source bands)`` -> Mel ``(batch, target frames, mels)``.
    classifier : nn.Module
        The teacher (registered, or fine-tuned for a ``"retrained"`` checkpoint), eval mode.
    kind : {"student", "retrained"}
    teacher_name : str
    source, target : Representation
    labels : ClassLabels
        Class names (or placeholders and the warning that says why).
    checkpoint : Path
    warnings : tuple of str
        One line each, e.g. a teacher whose weights are not those trained against.
    """

    transcoder: nn.Module
    classifier: nn.Module
    kind: str
    teacher_name: str
    source: Representation
    target: Representation
    labels: ClassLabels
    checkpoint: Path
    warnings: tuple[str, ...] = ()

    def target_frames(self, source_frames: int) -> int:
        """Mel frames the transcoder gives for ``source_frames`` level frames."""
        pinv: Any = getattr(self.transcoder, "pinv", self.transcoder)
        return int(pinv.target_frames(source_frames))


def _same_spec(a: Representation, b: Representation) -> bool:
    mine, theirs = a.to_dict(), b.to_dict()
    mine.pop("description"), theirs.pop("description")
    return mine == theirs


def _check_source(registry: Registry, source_name: str, trained: Any, checkpoint: Path
                  ) -> Representation:
    """The registered ``--source``, which must be the checkpoint's source."""
    source = registry.representation(source_name)
    if "source" not in source.roles:
        raise InputError(f"`source={source_name}`: {source_name!r} is not a source "
                         "representation; see `specxform list` for the sources.")
    if source.name != trained.source.name:
        raise CheckpointError(
            f"{checkpoint} was trained on {trained.source.name!r} levels, but `source` is "
            f"{source.name!r}; pass `source={trained.source.name}` if the files hold those "
            f"levels, or a checkpoint trained on {source.name!r}."
        )
    if not _same_spec(source, trained.source):
        version = trained.description.get("versions", {}).get("specxform", "?")
        raise CheckpointError(
            f"{checkpoint} was trained on a definition of {source.name!r} other than the "
            f"installed one (framing, bands or scaling differ); retrain it, or use specxform "
            f"{version}, which it was trained with."
        )
    return source


def _teacher(registry: Registry, trained: Any, weights: str | Path | None, checkpoint: Path
             ) -> tuple[nn.Module, list[str]]:
    """The classifier of the Mels and any warning about it."""
    entry = registry.teacher(trained.teacher_name)
    if entry.target != trained.target.name:
        raise CheckpointError(
            f"{checkpoint} transcodes into {trained.target.name!r}, but its teacher "
            f"{entry.name!r} is registered for {entry.target!r}; use the plugin version the "
            "checkpoint was trained with."
        )
    if trained.classifier is not None:
        if weights is not None:
            raise InputError(f"`weights={weights}`: {checkpoint} holds its own fine-tuned "
                             "teacher; drop `weights`.")
        return trained.classifier.eval(), []
    try:
        teacher = load_teacher(entry, weights)
    except WeightsError as exc:
        if weights is not None:  # the file the user gave: bad input (exit status 2)
            raise InputError(f"`weights={weights}`: teacher {entry.name!r} of {checkpoint} "
                             f"cannot load it: {exc}") from exc
        raise WeightsError(f"teacher {entry.name!r} of {checkpoint}: {exc}") from exc
    return teacher, _digest_warning(teacher, trained, entry.name)


def _digest_warning(teacher: nn.Module, trained: Any, name: str) -> list[str]:
    from specxform.training.cache import teacher_digest

    expected = trained.description.get("teacher", {}).get("digest")
    if expected is None or teacher_digest(teacher) == expected:
        return []
    return [f"teacher {name!r} does not have the weights the checkpoint was trained against "
            "(their digests differ); its classes may be off. Pass those weights with `weights`."]


def load_level_model(checkpoint: str | Path, source_name: str | None = None, *,
                     weights: str | Path | None = None, registry: Registry | None = None
                     ) -> LevelModel:
    """Load a checkpoint for classifying ``source_name`` levels.

    Parameters
    ----------
    checkpoint : path-like
        A ``specxform train`` checkpoint (file or run folder).
    source_name : str, optional
        ``--source``: the registered representation of the level files; it
        must be the checkpoint's. Default: the checkpoint's source.
    weights : path-like, optional
        Weight file of the registered teacher (``--weights``).
    registry : Registry, optional
        Default: the installed plugins.

    Raises
    ------
    CheckpointError
        The checkpoint is unreadable, or was trained on another source or
        another definition of it.
    UnknownNameError, WeightsError
        The source or teacher is not registered, or the teacher's weights are missing.
    """
    from specxform.plugins import get_registry
    from specxform.teachers.labels import teacher_labels
    from specxform.training.checkpoint import load_model

    registry = registry or get_registry()
    checkpoint = Path(checkpoint)
    from specxform.api import check_weights

    trained = load_model(checkpoint, registry=registry)
    check_weights(trained.transcoder, checkpoint, "transcoder")
    if trained.classifier is not None:
        check_weights(trained.classifier, checkpoint, "fine-tuned teacher")
    source = _check_source(registry, source_name or trained.source.name, trained, checkpoint)
    classifier, warnings = _teacher(registry, trained, weights, checkpoint)
    for parameter in classifier.parameters():
        parameter.requires_grad_(False)
    labels = teacher_labels(classifier, registry.teacher(trained.teacher_name).num_classes)
    if labels.warning:
        warnings.append(labels.warning)
    return LevelModel(trained.transcoder.eval(), classifier, trained.kind, trained.teacher_name,
                      source, trained.target, labels, checkpoint, tuple(warnings))


def trained_chunk_seconds(checkpoint: str | Path) -> float:
    """The chunk length in seconds a checkpoint was trained on (1 s when it does not say)."""
    from specxform.training.checkpoint import read_checkpoint

    chunking = read_checkpoint(checkpoint)["description"].get("cache", {}).get("chunking", {})
    return float(chunking.get("seconds", 1.0))


def check_level_window(model: LevelModel, window_s: float) -> int:
    """Frames per window; refuses windows too short for the teacher or without aux support.

    Raises
    ------
    InputError
        The window is not a whole number of frames, or gives fewer Mel frames
        than the teacher's ``min_frames`` (the message gives the shortest usable one).
    PluginError
        The teacher has aux inputs but no ``aux_from_source``.
    """
    if not (math.isfinite(window_s) and window_s > 0):
        raise InputError(f"window must be a positive number of seconds, got {window_s!r}.")
    frames = window_frames(model.source, window_s)
    min_frames = int(getattr(model.classifier, "min_frames", 1))
    if model.target_frames(frames) < min_frames:
        shortest = next(k for k in range(frames, frames + 100_000)
                        if model.target_frames(k) >= min_frames)
        period = model.source.framing.frame_seconds
        raise InputError(
            f"a {window_s:g} s window gives {model.target_frames(frames)} {model.target.name!r} "
            f"frames, but the teacher needs at least {min_frames}; use a window of "
            f"{shortest * period:g} s or more."
        )
    aux = tuple(getattr(model.classifier, "aux_inputs", ()))
    if aux and not callable(getattr(model.classifier, "aux_from_source", None)):
        raise PluginError(
            f"teacher {model.teacher_name!r} needs aux inputs {list(aux)} but defines no "
            "aux_from_source(levels, source); add it to the teacher class."
        )
    return frames


# ----------------------------------------------------------------------------- settings


@attrs.frozen
class LevelSettings:
    """How level files are classified.

    Parameters
    ----------
    window_s : float
        Window length in seconds, a whole number of frame periods (1.0).
    db_offset : float or None
        dB added to the stored levels; None estimates it per file (``auto``).
    block_frames : int
        Frames read per block.
    batch_windows : int
        Windows per transcoder and teacher call.
    """

    window_s: float = 1.0
    db_offset: float | None = None
    block_frames: int = BLOCK_FRAMES
    batch_windows: int = BATCH_WINDOWS


# ----------------------------------------------------------------------------- results


class WindowStore:
    """Per-window results in a binary file, appended in batches and read back in blocks.

    Each record holds ``start`` and ``end`` (s, float64), ``segment`` (int64) and
    ``probs`` (float64, one per class). Nothing is kept in memory.
    """

    def __init__(self, path: str | Path, n_classes: int) -> None:
        self.path, self.n_classes = Path(path), n_classes
        self.dtype = np.dtype([("start", "<f8"), ("end", "<f8"), ("segment", "<i8"),
                               ("probs", "<f8", (n_classes,))])
        self.count = 0

    def append(self, windows: WindowBatch, probs: np.ndarray) -> None:
        """Add the windows of a batch and their probabilities (windows, classes)."""
        records = np.empty(len(windows), self.dtype)
        records["start"], records["end"] = windows.starts_s, windows.ends_s
        records["segment"], records["probs"] = windows.segments, probs
        with self.path.open("ab") as fh:
            fh.write(records.tobytes())
        self.count += len(records)

    def blocks(self, size: int = 4096) -> Iterator[np.ndarray]:
        """The records in order, ``size`` at a time (structured arrays)."""
        if not self.path.exists():
            return
        with self.path.open("rb") as fh:
            while True:
                block = np.fromfile(fh, dtype=self.dtype, count=size)
                if len(block) == 0:
                    return
                yield block


@attrs.frozen
class LevelResult:
    """The classification of one level file (picklable; the windows are in :attr:`store`).

    Attributes
    ----------
    name, input : str
        Output name and path of the file.
    store : WindowStore
        Per-window start, end, segment and probabilities.
    probs : np.ndarray, shape (classes,)
        Mean of the window probabilities.
    frames, missing_frames, gaps : int
        Frames read, frames with a NaN/inf level, timestamp gaps.
    segments : list of dict
        ``start_s``, ``end_s``, ``frames``, ``windows`` of the first
        :data:`~specxform.levels.windows.MAX_LISTED_SEGMENTS` segments; ``n_segments`` counts all.
    start_s, end_s : float
        Start of the first frame and end of the last one (s).
    origin : str or None
        ISO 8601 time of second 0 when the file gives absolute times.
    db_offset : float
        dB added to the stored levels.
    offset_mode : {"auto", "given"}
    broadband_p99_db : float or None
        The stored levels' 99th percentile broadband level (auto mode).
    period_s : float
        Frame period of the source (s).
    seconds : float
        Wall time of reading and classifying the file.
    """

    name: str
    input: str
    store: WindowStore
    probs: np.ndarray
    frames: int
    missing_frames: int
    gaps: int
    n_segments: int
    segments: list[dict[str, Any]]
    start_s: float
    end_s: float
    origin: str | None
    db_offset: float
    offset_mode: str
    broadband_p99_db: float | None
    period_s: float
    seconds: float

    @property
    def windows(self) -> int:
        return self.store.count

    @property
    def levels_seconds(self) -> float:
        """Seconds of levels read (frames times the frame period)."""
        return self.frames * self.period_s

    @property
    def rtf(self) -> float:
        """Real-time factor: seconds of levels per second of wall time."""
        return self.levels_seconds / max(self.seconds, 1e-9)

    def time_text(self, seconds: float) -> str:
        """ISO 8601 time of ``seconds``, or "" when the file gives no absolute time."""
        from datetime import datetime

        origin = None if self.origin is None else datetime.fromisoformat(self.origin)
        return timestamp_text(origin, seconds)


# ----------------------------------------------------------------------------- pipeline


def _passes(reader: LevelReader, passes: int, pass_index: int,
            progress: ProgressCallback | None, task: str) -> Iterator[Any]:
    for block in reader.blocks():
        report(progress, task, pass_index * reader.total + block.done, passes * reader.total)
        yield block


def _task(reader: LevelReader) -> str:
    """The progress task of one file: ``classifying <file name>``."""
    return f"classifying {Path(reader.path).name}"


def estimate_offset(reader: LevelReader, *, progress: ProgressCallback | None = None,
                    passes: int = 2, task: str | None = None) -> tuple[float, float]:
    """``--db-offset auto``: ``(offset, p99)`` in dB, from one streaming pass over ``reader``.

    ``p99`` is the 99th percentile of the stored frames' broadband level
    (finite frames only) and ``offset = scaling.offset + AUTO_TARGET_DB - p99``:
    after adding it, that percentile is where it lies for peak-normalised clips
    (:data:`AUTO_TARGET_DB`, -12 dB re full scale). The rank is numpy's
    ``"higher"``: a file of fewer than 101 frames is shifted by its loudest
    frame, since its second loudest may be silence (a short car horn).

    Raises
    ------
    InputError
        The source is not in dB (or is standardised), or the file has no finite frame.
    """
    scaling = reader.source.scaling
    if scaling.log != "db" or scaling.mean is not None:
        raise InputError(
            f"`db_offset=auto` needs levels in dB; {reader.source.name!r} is scaled "
            f"'{scaling.log}'{' and standardised' if scaling.mean is not None else ''}; "
            "give `db_offset=0` or the offset in its unit."
        )
    histogram = BroadbandHistogram()
    for block in _passes(reader, passes, 0, progress, task or _task(reader)):
        histogram.add(block.levels)
    if histogram.n == 0:
        raise InputError(f"{reader.path}: every frame holds a NaN or infinite level; nothing "
                         "to classify.")
    return auto_offset(reader.source, histogram)


def auto_offset(source: Representation, histogram: BroadbandHistogram) -> tuple[float, float]:
    """``(offset, p99)`` of ``--db-offset auto`` from the broadband levels counted so far.

    ``p99`` takes numpy's "higher" rank, and ``offset = source.scaling.offset +
    AUTO_TARGET_DB - p99`` (see :data:`AUTO_TARGET_DB`). Any code estimating the
    offset of stored levels (one file, or a sensor's archive) should use this.
    """
    p99 = histogram.percentile(AUTO_PERCENTILE, higher=True)
    return source.scaling.offset + AUTO_TARGET_DB - p99, p99


def _aux(model: LevelModel, levels: np.ndarray) -> dict[str, torch.Tensor] | None:
    names = tuple(getattr(model.classifier, "aux_inputs", ()))
    if not names:
        return None
    source_aux: Any = getattr(model.classifier, "aux_from_source")  # noqa: B009 (typed Any)
    values = [source_aux(window, model.source) for window in levels]
    return {n: torch.from_numpy(np.stack([np.asarray(v[n], np.float32) for v in values]))
            for n in names}


def window_probs(model: LevelModel, levels: np.ndarray) -> np.ndarray:
    """Class probabilities of windows of (already shifted) levels.

    Parameters
    ----------
    model : LevelModel
    levels : np.ndarray, shape (windows, W, bands)
        Levels in the source's unit, the offset applied.

    Returns
    -------
    np.ndarray, shape (windows, classes), float64
    """
    with torch.inference_mode():
        mel = model.transcoder(torch.from_numpy(np.ascontiguousarray(levels, np.float32)))
        out = model.classifier(mel, _aux(model, levels))
    return out.probs.double().numpy()


def classify_level_file(model: LevelModel, path: str | Path, name: str,
                        settings: LevelSettings, store_dir: str | Path, *,
                        progress: ProgressCallback | None = None, key: str | None = None
                        ) -> LevelResult:
    """Classify one level file window by window (see the module docstring).

    Parameters
    ----------
    model : LevelModel
    path : path-like
        NPY, HDF5 or CSV levels in ``model.source`` (see :mod:`specxform.levels.readers`).
    name : str
        Its output name.
    settings : LevelSettings
    store_dir : path-like
        Folder for the window store (a temporary folder).
    progress : ProgressCallback, optional
        Receives :class:`~specxform.progress.ProgressEvent` values of the task
        ``classifying <name>`` in arbitrary units (frames read, over both
        passes), as blocks are read.
    key : str, optional
        HDF5: the dataset holding the levels (see :func:`specxform.levels.readers.open_levels`).

    Raises
    ------
    InputError
        A file that cannot be read or fails validation; the message names the
        file, the position and the fix.
    """
    started = time.perf_counter()
    w = check_level_window(model, settings.window_s)
    reader = open_levels(path, model.source, block_frames=settings.block_frames, key=key)
    passes = 1 if settings.db_offset is not None else 2
    p99 = None
    if settings.db_offset is None:
        offset, p99 = estimate_offset(reader, progress=progress, passes=passes,
                                      task=f"classifying {name}")
    else:
        offset = float(settings.db_offset)
    store = WindowStore(Path(store_dir) / f"{uuid.uuid4().hex}.windows", len(model.labels.names))
    # Padding is silence in the model's domain, i.e. after the shift.
    cutter = WindowCutter(reader, w, pad=silence_levels(model.source) - np.float32(offset))
    total = np.zeros(store.n_classes)

    def run(batches: Iterator[WindowBatch]) -> None:
        nonlocal total
        for batch in batches:
            for start in range(0, len(batch), settings.batch_windows):
                part = _slice(batch, start, start + settings.batch_windows)
                probs = _probs_or_hint(model, part.levels + np.float32(offset), offset, path)
                store.append(part, probs)
                total += probs.sum(axis=0)

    for block in _passes(reader, passes, passes - 1, progress, f"classifying {name}"):
        run(cutter.feed(block))
    run(cutter.finish())
    segments = cutter.segments
    return LevelResult(
        name=name, input=str(path), store=store, probs=total / max(store.count, 1),
        frames=cutter.frames, missing_frames=cutter.missing_frames, gaps=cutter.n_gaps,
        n_segments=cutter.n_segments, segments=[s.to_dict() for s in segments],
        start_s=segments[0].start_s, end_s=cutter.last_end_s,
        origin=None if reader.origin is None else reader.origin.isoformat(),
        db_offset=offset, offset_mode="auto" if p99 is not None else "given",
        broadband_p99_db=p99, period_s=reader.period_s, seconds=time.perf_counter() - started,
    )


def _slice(batch: WindowBatch, start: int, stop: int) -> WindowBatch:
    return WindowBatch(batch.levels[start:stop], batch.starts_s[start:stop],
                       batch.ends_s[start:stop], batch.segments[start:stop])


def _probs_or_hint(model: LevelModel, levels: np.ndarray, offset: float, path: str | Path
                   ) -> np.ndarray:
    try:
        return window_probs(model, levels)
    except InputError as exc:
        raise InputError(f"{path}: {exc} (levels shifted by `db_offset={offset:.2f}` dB; check "
                         "the offset)") from exc


# ----------------------------------------------------------------------------- many files


_WORKER: dict[str, Any] = {}


def _init_worker(checkpoint: str, source: str, weights: str | None,
                 registry_factory: Callable[[], Registry]) -> None:
    torch.set_num_threads(1)
    _WORKER["model"] = load_level_model(checkpoint, source, weights=weights,
                                        registry=registry_factory())


def _work(path: str, name: str, settings: LevelSettings, store_dir: str, key: str | None
          ) -> LevelResult:
    return classify_level_file(_WORKER["model"], path, name, settings, store_dir, key=key)


def _entry(file: Sequence[Any]) -> tuple[Path, str, str | None]:
    """``(path, name)`` or ``(path, name, key)`` as a triple."""
    path, name, *rest = file
    return Path(path), str(name), (rest[0] if rest else None)


def classify_level_files(model: LevelModel, files: Sequence[Sequence[Any]],
                         settings: LevelSettings, store_dir: str | Path, *, jobs: int = 1,
                         weights: str | Path | None = None,
                         registry_factory: Callable[[], Registry] | None = None,
                         progress: ProgressCallback | None = None
                         ) -> dict[str, LevelResult]:
    """Classify many level files, in this process or across ``jobs`` worker processes.

    Parameters
    ----------
    model : LevelModel
        Used in this process (``jobs == 1``); workers load their own from
        ``model.checkpoint`` (with ``weights``) through ``registry_factory``.
    files : sequence of (Path, str) or (Path, str, str or None)
        Paths and output names (:func:`specxform.levels.readers.find_level_files`),
        optionally with the HDF5 dataset of each (``key``).
    jobs : int
        Worker processes (spawned, one torch thread each); 1 runs here.
    registry_factory : callable, optional
        Builds the registry in each worker (a picklable function; default:
        :func:`specxform.plugins.get_registry`).
    progress : ProgressCallback, optional
        Receives the events of each file's task ``classifying <name>`` (with
        workers, one as each file completes) and of the task
        ``classifying N level file(s)`` (files done of all).

    Returns
    -------
    dict of str to LevelResult
        In the order of ``files``. The first error stops everything and is raised.
    """
    entries = [_entry(file) for file in files]
    overall = f"classifying {len(entries)} level file(s)"
    report(progress, overall, 0, len(entries))
    if jobs <= 1 or len(entries) == 1:
        results = {}
        for i, (path, name, key) in enumerate(entries):
            results[name] = classify_level_file(model, path, name, settings, store_dir,
                                                progress=progress, key=key)
            report(progress, overall, i + 1, len(entries))
        return results
    from multiprocessing import get_context

    from specxform.plugins import get_registry

    factory = registry_factory or get_registry
    init = (str(model.checkpoint), model.source.name, None if weights is None else str(weights),
            factory)
    with ProcessPoolExecutor(max_workers=min(jobs, len(entries)),
                             mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=init) as pool:
        futures: dict[Future[LevelResult], str] = {
            pool.submit(_work, str(path), name, settings, str(store_dir), key): name
            for path, name, key in entries}
        pending = set(futures)
        finished = 0
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                error = future.exception()
                if error is not None:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise error
                report(progress, f"classifying {futures[future]}", 1, 1)
                finished += 1
                report(progress, overall, finished, len(entries))
        by_name = {futures[f]: f.result() for f in futures}
    return {name: by_name[name] for _, name, _ in entries}
