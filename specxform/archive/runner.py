"""Classify a whole archive on a Dask cluster (or in a plain loop), resumably.

:func:`classify_archive` is what ``specxform classify-archive`` runs:

1. open the archive and list its chunks (:func:`specxform.archive.open_archive`);
2. lock ``OUT/`` and check that a resumed run has the same settings
   (:class:`~specxform.archive.output.OutputFolder`); chunks with a
   completion marker are skipped, anything half-written is deleted;
3. with ``--db-offset auto``, sum each sensor's broadband histogram over its
   chunks (map tasks, then a tree of merges on the cluster) and record the
   offsets in ``OUT/_work/offsets.json``, so that a resumed run uses the same;
4. run :func:`process_chunk` for every chunk left: the map function
   :func:`~specxform.archive.mapping.classify_chunk` and the chunk's files,
   written on the worker;
5. write the hourly presence table, the failures table and ``summary.json``.

The model is loaded once per worker process (:meth:`ModelSpec.load` keeps
it). When a worker dies, Dask's scheduler runs its tasks again on another
worker (up to ``distributed.scheduler.allowed-failures`` times, 3 by default);
since a task's output files are a deterministic function of its chunk and
are renamed into place, the result equals that of an uninterrupted run.
Workers read the archive and write ``OUT/`` themselves: on a cluster of
several machines both must be on a file system every worker sees under the
same path.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from specxform.archive.mapping import (
    Histogram,
    MapSettings,
    ModelSpec,
    chunk_histogram,
    classify_chunk,
    merge_histograms,
    offset_from_histogram,
)
from specxform.archive.output import OutputFolder
from specxform.archive.stores import Archive, Chunk, archive_kind, open_archive
from specxform.errors import InputError, SpecxformError
from specxform.levels.statistics import BroadbandHistogram

__all__ = ["ArchiveRun", "classify_archive", "process_chunk"]

ProgressFn = Callable[[str, int, int], None]


def _status_mib(key: str) -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def process_chunk(spec: ModelSpec, chunk: Chunk, settings: MapSettings, db_offset: float,
                  out: str) -> dict[str, Any]:
    """One task: classify ``chunk`` and write its files into ``out``; returns its marker.

    The marker also says where the task ran: ``pid``, the worker's peak
    resident memory ``peak_mib`` (``VmHWM``) and whether the model was
    loaded by this task (``loads``, the process's count so far).
    """
    from specxform.archive.mapping import model_loads

    model = spec.load()
    result = classify_chunk(model, chunk, settings, db_offset)
    marker = OutputFolder(out).write_chunk(result)
    return {**marker, "pid": os.getpid(), "peak_mib": _status_mib("VmHWM"),
            "loads": model_loads()}


def _histogram_task(chunks: list[Chunk], source: Any, block_frames: int
                    ) -> tuple[str, Histogram]:
    """The summed histogram of some chunks of one sensor."""
    return chunks[0].sensor, merge_histograms(chunk_histogram(c, source, block_frames)
                                              for c in chunks)


# ----------------------------------------------------------------------------- engines


class LoopEngine:
    """Runs tasks one after another in this process (``--workers 0``, the benchmark's baseline)."""

    name = "loop"

    def map(self, fn: Callable[..., Any], calls: Iterable[tuple[Any, ...]], kind: str
            ) -> Iterator[Any]:
        """``fn(*args)`` for each of ``calls``, in order."""
        for args in calls:
            yield fn(*args)

    def close(self) -> None:
        pass


def _worker_environ() -> dict[str, Any]:
    """Dask's environment for new worker processes, without ``MALLOC_TRIM_THRESHOLD_``.

    Dask sets it to 64 kB to return memory to the system early; torch then
    maps and faults in its large transient buffers (the PINV's spectra) again
    at every batch, which made the map function 2 to 3 times slower.
    """
    import dask
    import distributed  # noqa: F401 (loads distributed's configuration)

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return environ


class DaskEngine:
    """Runs tasks on a ``dask.distributed`` client: a local cluster, or the one at ``address``.

    At most :attr:`in_flight` tasks are submitted at a time (a new one as
    each finishes), so that neither the scheduler nor this process holds a
    whole archive's tasks.

    Parameters
    ----------
    client : distributed.Client, optional
        An existing client (not closed by :meth:`close`).
    address : str, optional
        Scheduler address of an existing cluster (``tcp://host:8786``).
    workers : int
        Worker processes of the local cluster started otherwise (one thread each).
    """

    name = "dask"

    def __init__(self, client: Any = None, address: str | None = None, workers: int = 2) -> None:
        import dask
        from distributed import Client, LocalCluster

        self._own: list[Any] = []
        if client is None and address is not None:
            try:
                client = Client(address, timeout="20s")
            except OSError as exc:
                raise InputError(f"`scheduler={address}`: cannot reach the Dask scheduler "
                                 f"({exc}); check the address (tcp://host:8786) and that it "
                                 "runs.") from exc
            self._own.append(client)
        elif client is None:
            with dask.config.set({"distributed.nanny.pre-spawn-environ": _worker_environ()}):
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                       processes=True, dashboard_address=None,
                                       silence_logs=logging.ERROR)
            client = Client(cluster)
            self._own += [client, cluster]
        self.client = client
        self.token = uuid.uuid4().hex[:8]

    @property
    def in_flight(self) -> int:
        """Tasks submitted ahead: 8 per worker thread, at least 64."""
        return max(64, 8 * sum(self.client.nthreads().values()))

    def map(self, fn: Callable[..., Any], calls: Iterable[tuple[Any, ...]], kind: str
            ) -> Iterator[Any]:
        """``fn(*args)`` for each of ``calls`` on the cluster, as they complete."""
        from distributed import as_completed

        pending = iter(enumerate(calls))
        futures = as_completed()
        submitted: list[Any] = []

        def submit() -> None:
            for i, args in pending:
                future = self.client.submit(fn, *args, key=f"specxform-{kind}-{self.token}-{i}",
                                            pure=False)
                futures.add(future)
                submitted.append(future)
                return

        try:
            for _ in range(self.in_flight):
                submit()
            for future in futures:
                result = future.result()
                submitted.remove(future)
                submit()
                yield result
        finally:
            self.client.cancel(submitted)

    def close(self) -> None:
        for item in self._own:
            item.close()


# ----------------------------------------------------------------------------- run


@attrs.frozen
class ArchiveRun:
    """What :func:`classify_archive` did (also written to ``OUT/summary.json``).

    Attributes
    ----------
    out : Path
    archive : Archive
    markers : dict of str to dict
        Every complete chunk's marker (this run's and earlier runs').
    computed, skipped, failed : int
        Chunks classified by this run, already complete, and unreadable.
    offsets : dict of str to float
        dB offset per sensor.
    seconds : float
        Wall time of the classification tasks (offset pass excluded).
    workers : dict of str to dict
        Per worker process (pid): ``tasks``, ``peak_mib``, ``loads``.
    resumed : bool
    """

    out: Path
    archive: Archive
    markers: dict[str, dict[str, Any]]
    computed: int
    skipped: int
    failed: int
    offsets: dict[str, float]
    seconds: float
    offset_seconds: float
    workers: dict[str, dict[str, Any]]
    resumed: bool
    engine: str

    @property
    def windows(self) -> int:
        return sum(m["windows"] for m in self.markers.values())

    @property
    def sensor_hours(self) -> float:
        """Hours of levels read by this run's tasks (frames times the frame period)."""
        period = self.archive.source.framing.frame_seconds
        return sum(m["frames"] for m in self._mine()) * period / 3600

    def _mine(self) -> list[dict[str, Any]]:
        return [m for m in self.markers.values() if m.get("run") == "this"]

    def summary(self) -> dict[str, Any]:
        hours = self.sensor_hours
        return {
            "archive": self.archive.describe(), "engine": self.engine, "resumed": self.resumed,
            "chunks": len(self.archive.chunks), "computed": self.computed,
            "skipped": self.skipped, "failed": self.failed, "windows": self.windows,
            "complete": len(self.markers) >= len(self.archive.chunks),
            "sensor_hours": hours, "seconds": self.seconds,
            "offset_seconds": self.offset_seconds,
            "sensor_hours_per_s": hours / self.seconds if self.seconds > 0 else None,
            "db_offsets": self.offsets, "workers": self.workers,
        }


def _file_sha256(path: Path) -> str:
    if path.is_dir():
        path = path / "best.pt"
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _settings_record(archive: Archive, spec: ModelSpec, settings: MapSettings,
                     db_offset: float | None, chunk_seconds: float | None) -> dict[str, Any]:
    return {"archive": str(archive.path.resolve()), "kind": archive.kind,
            "source": archive.source.name, "checkpoint_sha256": _file_sha256(Path(spec.checkpoint)),
            "weights": spec.weights, "window_s": settings.window_s, "top_k": settings.top_k,
            "threshold": settings.threshold,
            "db_offset": "auto" if db_offset is None else db_offset,
            "chunk_seconds": chunk_seconds}


#: Chunks per histogram task of the auto dB offset (one day of hour chunks).
_HISTOGRAM_GROUP = 24


def _sensor_offsets(engine: Any, archive: Archive, folder: OutputFolder,
                    db_offset: float | None, block_frames: int) -> dict[str, float]:
    """The dB offset of each sensor: given, recorded by an earlier run, or auto."""
    if db_offset is not None:
        return {s: float(db_offset) for s in archive.sensors}
    known = folder.offsets()
    missing = [s for s in archive.sensors if s not in known]
    if missing:
        calls = []
        for sensor in missing:
            chunks = [c for c in archive.chunks if c.sensor == sensor]
            calls += [(chunks[i:i + _HISTOGRAM_GROUP], archive.source, block_frames)
                      for i in range(0, len(chunks), _HISTOGRAM_GROUP)]
        merged = {s: BroadbandHistogram() for s in missing}
        for sensor, histogram in engine.map(_histogram_task, calls, "histogram"):
            np.add.at(merged[sensor].counts, histogram.bins, histogram.counts)
            merged[sensor].outside += histogram.outside
        for sensor in missing:
            offset, p99 = offset_from_histogram(Histogram.of(merged[sensor]), archive.source,
                                                sensor)
            known[sensor] = {"offset": offset, "p99": p99}
        folder.save_offsets(known)
    return {s: float(known[s]["offset"]) for s in archive.sensors}


def classify_archive(archive_path: str | Path, spec: ModelSpec, out: str | Path, *,
                     settings: MapSettings | None = None, db_offset: float | None = None,
                     chunk_seconds: float | None = None, engine: Any = None,
                     retry_failed: bool = False, progress: ProgressFn | None = None
                     ) -> ArchiveRun:
    """Classify every chunk of an archive into ``out`` (see the module docstring).

    Parameters
    ----------
    archive_path : path-like
        Folder tree, HDF5 file or Zarr store (:mod:`specxform.archive.stores`).
    spec : ModelSpec
        The checkpoint, source and registry; loaded here once (to check the
        settings and name the classes) and once in each worker.
    out : path-like
        The output folder (:mod:`specxform.archive.output`); a folder of an
        earlier run with the same settings is resumed.
    settings : MapSettings, optional
    db_offset : float, optional
        dB added to every sensor's levels; None: auto, per sensor.
    chunk_seconds : float, optional
        Chunk length for HDF5 and Zarr sensors.
    engine : LoopEngine or DaskEngine, optional
        Default: a :class:`DaskEngine` with a local cluster of 2 workers
        (closed at the end; an engine passed in is left open).
    retry_failed : bool
        Classify again the chunks an earlier run could not read.
    progress : callable, optional
        ``progress(phase, done, total)`` with phase ``"offsets"`` or ``"classify"``.

    Raises
    ------
    InputError
        A bad archive, settings that differ from the run recorded in ``out``.
    OutputBusyError
        Another run holds ``out``.
    SpecxformError
        A task failed for another reason than an unreadable chunk.
    """
    from specxform.levels.classify import check_level_window

    settings = settings or MapSettings()
    archive_kind(archive_path)  # a missing archive fails before the model loads
    model = spec.load()
    check_level_window(model, settings.window_s)
    archive = open_archive(archive_path, model.source, chunk_seconds=chunk_seconds)
    folder = OutputFolder(out)
    own_engine = engine is None
    with folder.locked():
        resumed = folder.check_settings(_settings_record(archive, spec, settings, db_offset,
                                                         chunk_seconds))
        done = {i: m for i, m in folder.markers().items()
                if not (retry_failed and m["status"] == "failed")}
        folder.sweep(done)
        ids = {c.id for c in archive.chunks}
        todo = [c for c in archive.chunks if c.id not in done]
        engine = engine if engine is not None else DaskEngine()
        try:
            started = time.perf_counter()
            if progress is not None and db_offset is None:
                progress("offsets", 0, len(archive.sensors))
            offsets = _sensor_offsets(engine, archive, folder, db_offset,
                                      settings.block_frames)
            offset_seconds = time.perf_counter() - started
            started = time.perf_counter()
            markers = _run_tasks(engine, todo, spec, settings, offsets, folder, progress)
            seconds = time.perf_counter() - started
        finally:
            if own_engine:
                engine.close()
        workers: dict[str, dict[str, Any]] = {}
        for marker in markers:
            entry = workers.setdefault(str(marker.pop("pid")), {"tasks": 0, "peak_mib": 0.0})
            entry["tasks"] += 1
            entry["peak_mib"] = max(entry["peak_mib"], marker.pop("peak_mib"))
            entry["loads"] = max(entry.get("loads", 0), marker.pop("loads"))
            marker["run"] = "this"
        complete = {i: m for i, m in done.items() if i in ids}
        complete.update({m["id"]: m for m in markers})
        failed = sum(m["status"] == "failed" for m in complete.values())
        run = ArchiveRun(folder.root, archive, complete, len(markers),
                         sum(i in ids for i in done), failed, offsets, seconds, offset_seconds,
                         workers, resumed, engine.name)
        folder.finalize(complete, model.labels.names, run.summary())
    return run


def _run_tasks(engine: Any, todo: list[Chunk], spec: ModelSpec, settings: MapSettings,
               offsets: dict[str, float], folder: OutputFolder, progress: ProgressFn | None
               ) -> list[dict[str, Any]]:
    calls = [(spec, c, settings, offsets[c.sensor], str(folder.root)) for c in todo]
    markers = []
    if progress is not None:
        progress("classify", 0, len(calls))
    try:
        for marker in engine.map(process_chunk, calls, "classify"):
            markers.append(marker)
            if progress is not None:
                progress("classify", len(markers), len(calls))
    except SpecxformError:
        raise
    except Exception as exc:
        if type(exc).__name__ == "KilledWorker":
            raise SpecxformError(f"a chunk killed its worker again and again ({exc}); the "
                                 "workers may lack memory: give them more, or use shorter "
                                 "`chunk_seconds`. Rerun to resume.") from exc
        raise
    return markers
