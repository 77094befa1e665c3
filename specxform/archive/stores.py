"""Archives of many sensors' levels, cut into time chunks: the units of work.

Three layouts are read (``docs/archives.md`` gives examples):

Folder tree
    ``ARCHIVE/<sensor>/**/<file>`` with the NPY, HDF5 and CSV level files of
    ``specxform classify`` (:mod:`specxform.levels.readers`); a level file directly
    in ``ARCHIVE`` is a sensor of its own, named after its stem. Each file is
    one chunk, read by :func:`specxform.levels.readers.open_levels`.
HDF5 file (``.h5``, ``.hdf5``)
    One node per sensor, named by its path in the file: a ``(frames, bands)``
    dataset, or a group holding the datasets ``levels`` and optionally
    ``timestamps`` (the single-file HDF5 layout of ``docs/levels.md``). The
    attribute ``start`` (ISO 8601) of the node, or of the file's root, is the
    absolute time of second 0. A root attribute ``representation`` must
    describe the source.
Zarr store (a folder holding ``zarr.json`` or ``.zgroup``)
    The same nodes as in HDF5: one group per sensor holding an array
    ``levels`` ``(frames, bands)`` (and optionally ``timestamps``), or one
    array per sensor, with the attribute ``start``. Without ``timestamps``,
    frame ``i`` starts at ``start + i * P``: the first axis is a regular time
    axis and missing frames are NaN, as ``specxform archive convert`` writes
    it (:mod:`specxform.archive.convert`).

HDF5 and Zarr sensors are cut into chunks of ``chunk_seconds`` of frames
(default: a Zarr array's own chunk length along time, one hour of frames for
HDF5). Every chunk is read, validated and windowed with the rules of
:mod:`specxform.levels.readers` as if it were a file of its own: a segment, and so a
window, never crosses a chunk boundary.

Times are absolute: a reader's origin (ISO timestamps, a ``start``
attribute) plus its seconds; a chunk without an origin counts its seconds
from the Unix epoch, so numeric Unix timestamps come out right. Times
without a UTC offset are read as UTC.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from specxform.errors import InputError
from specxform.levels.readers import (
    BLOCK_FRAMES,
    LEVEL_SUFFIXES,
    LevelBlock,
    LevelReader,
    _check_shape,
    _check_stored_representation,
    _parse_iso,
    _Timestamps,
    find_level_files,
    open_levels,
)
from specxform.representations.specs import Representation

__all__ = [
    "ARCHIVE_KINDS",
    "DEFAULT_CHUNK_SECONDS",
    "Archive",
    "Chunk",
    "open_archive",
    "to_utc",
]

#: The layouts :func:`open_archive` reads.
ARCHIVE_KINDS = ("folder", "hdf5", "zarr")
#: Chunk length of HDF5 sensors (s) when none is given.
DEFAULT_CHUNK_SECONDS = 3600.0
_HDF5_SUFFIXES = (".h5", ".hdf5")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_utc(moment: datetime | None) -> datetime:
    """``moment`` in UTC (naive times are read as UTC); the Unix epoch for None."""
    if moment is None:
        return _EPOCH
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def epoch_us(moment: datetime | None) -> int:
    """Microseconds from the Unix epoch to ``moment`` (see :func:`to_utc`)."""
    return (to_utc(moment) - _EPOCH) // timedelta(microseconds=1)


# ----------------------------------------------------------------------------- chunks


@attrs.frozen
class Chunk:
    """One time chunk of one sensor: what the map function reads (small and picklable).

    Attributes
    ----------
    sensor : str
    key : str
        Where the chunk is, for people: the file (relative to the archive) or
        ``"<node>[a:b]"``, the frames ``a`` to ``b`` of a node.
    kind : {"folder", "hdf5", "zarr"}
    path : str
        The level file (folder trees), or the HDF5 file or Zarr store.
    node : str
        The sensor's dataset, array or group in the HDF5 file or Zarr store.
    start_frame, stop_frame : int
        The frames ``[start_frame, stop_frame)`` of the node (0, 0 for files).
    origin : str or None
        ISO 8601 time of second 0 of the node (its ``start`` attribute).
    period_s : float
        Frame period of the source (s).
    gridded : bool
        Frame ``i`` starts at ``i * period_s`` (no ``timestamps``), so the
        chunk's time range is known before reading it.
    """

    sensor: str
    key: str
    kind: str
    path: str
    node: str = ""
    start_frame: int = 0
    stop_frame: int = 0
    origin: str | None = None
    period_s: float = 0.125
    gridded: bool = False

    @property
    def id(self) -> str:
        """A file-name-safe identifier, stable across runs: 16 hex digits of SHA-1."""
        text = json.dumps([self.sensor, self.key, self.kind])
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    def time_range_us(self) -> tuple[int | None, int | None]:
        """Start and end of the chunk (Unix microseconds), when known before reading it."""
        if not self.gridded:
            return None, None
        origin = epoch_us(None if self.origin is None else datetime.fromisoformat(self.origin))
        step = self.period_s * 1e6
        return (origin + round(self.start_frame * step), origin + round(self.stop_frame * step))

    def open(self, source: Representation, block_frames: int = BLOCK_FRAMES) -> LevelReader:
        """A reader of the chunk's levels (:class:`~specxform.levels.readers.LevelReader`).

        Raises
        ------
        InputError
            The file or node is missing, unreadable or not ``source`` levels.
        """
        if self.kind == "folder":
            return open_levels(self.path, source, block_frames=block_frames)
        return NodeLevels(self, source, block_frames)


# ----------------------------------------------------------------------------- node reader


def _open_node(kind: str, path: str) -> Any:
    """The open HDF5 file or Zarr root group (a context manager for HDF5)."""
    if kind == "hdf5":
        import h5py

        return h5py.File(path, "r")
    import zarr

    return zarr.open_group(path, mode="r")


def _node_arrays(root: Any, node: str) -> tuple[Any, Any, Any]:
    """(levels, timestamps or None, the node holding the attributes) of a sensor node."""
    item = root[node] if node else root
    if _is_array(item):
        return item, None, item
    return item["levels"], item.get("timestamps"), item


def _is_array(item: Any) -> bool:
    return hasattr(item, "shape") and hasattr(item, "dtype")


class NodeLevels(LevelReader):
    """The frames ``[start_frame, stop_frame)`` of a sensor node of an HDF5 file or Zarr store.

    Timestamps follow :mod:`specxform.levels.readers`: a ``timestamps`` array of
    seconds (after ``start``) or ISO 8601 strings, or frame ``i`` at ``i * P``.
    Positions in errors are frame indices of the node.
    """

    def __init__(self, chunk: Chunk, source: Representation, block_frames: int) -> None:
        super().__init__(Path(chunk.path), source, block_frames)
        self.chunk = chunk
        self.origin = None if chunk.origin is None else datetime.fromisoformat(chunk.origin)
        self.total = chunk.stop_frame - chunk.start_frame

    def where(self, position: int) -> str:
        return f"{self.path}, sensor {self.chunk.sensor!r}, frame {position}"

    def blocks(self) -> Iterator[LevelBlock]:
        chunk = self.chunk
        root = _open_node(chunk.kind, chunk.path)
        try:
            levels, stamps, _ = _node_arrays(root, chunk.node)
            timing = _Timestamps(self.origin, self.where)
            for start in range(chunk.start_frame, chunk.stop_frame, self.block_frames):
                stop = min(start + self.block_frames, chunk.stop_frame)
                index = np.arange(start, stop)
                values = np.asarray(levels[start:stop], dtype=np.float32)
                if values.shape != (stop - start, self.source.n_bands):
                    raise InputError(f"{self.where(start)}: read {values.shape} levels, "
                                     f"expected ({stop - start}, {self.source.n_bands}); "
                                     "the store is corrupt.")
                times = (index * self.period_s if stamps is None
                         else timing.parse(stamps[start:stop], index))
                yield LevelBlock(values, times, index.astype(np.int64), stop - chunk.start_frame)
        finally:
            if chunk.kind == "hdf5":
                root.close()


# ----------------------------------------------------------------------------- archives


@attrs.frozen
class Archive:
    """An opened archive: its layout, sensors and chunks (see the module docstring).

    Attributes
    ----------
    path : Path
    kind : {"folder", "hdf5", "zarr"}
    source : Representation
    chunks : tuple of Chunk
        Every chunk, by sensor then time.
    """

    path: Path
    kind: str
    source: Representation
    chunks: tuple[Chunk, ...]

    @property
    def sensors(self) -> tuple[str, ...]:
        """The sensors, in order."""
        return tuple(dict.fromkeys(c.sensor for c in self.chunks))

    def describe(self) -> dict[str, Any]:
        """Layout, sensors and chunk counts, for reports."""
        counts: dict[str, int] = {}
        for chunk in self.chunks:
            counts[chunk.sensor] = counts.get(chunk.sensor, 0) + 1
        return {"path": str(self.path), "kind": self.kind, "source": self.source.name,
                "sensors": counts, "chunks": len(self.chunks)}


def archive_kind(path: str | Path) -> str:
    """``"folder"``, ``"hdf5"`` or ``"zarr"``: the layout of ``path``.

    Raises
    ------
    InputError
        ``path`` does not exist or is another kind of file.
    """
    path = Path(path)
    if path.is_dir():
        if (path / "zarr.json").is_file() or (path / ".zgroup").is_file():
            return "zarr"
        return "folder"
    if path.is_file() and path.suffix.lower() in _HDF5_SUFFIXES:
        return "hdf5"
    if path.is_file():
        raise InputError(f"{path}: an archive is a folder of level files, an HDF5 file "
                         "(.h5/.hdf5) with one dataset per sensor, or a Zarr store; got a "
                         f"{path.suffix or 'suffix-less'} file (docs/archives.md).")
    raise InputError(f"{path}: no such archive; check the path.")


def open_archive(path: str | Path, source: Representation, *,
                 chunk_seconds: float | None = None) -> Archive:
    """List the sensors and time chunks of an archive.

    Parameters
    ----------
    path : path-like
        A folder tree of level files, an HDF5 file or a Zarr store.
    source : Representation
        The representation of the stored levels.
    chunk_seconds : float, optional
        Chunk length for HDF5 and Zarr sensors (rounded to whole frames);
        default: a Zarr array's own time chunks, one hour for HDF5. Ignored
        for folder trees (one file, one chunk).

    Raises
    ------
    InputError
        Nothing to classify, a sensor node of the wrong shape, or levels of
        another representation.
    """
    path = Path(path)
    kind = archive_kind(path)
    if chunk_seconds is not None and not (math.isfinite(chunk_seconds) and chunk_seconds > 0):
        raise InputError(f"chunk length must be a positive number of seconds, got "
                         f"{chunk_seconds!r}.")
    if kind == "folder":
        chunks = _folder_chunks(path, source)
    else:
        chunks = _node_chunks(path, kind, source, chunk_seconds)
    if not chunks:
        raise InputError(f"{path}: the archive holds no sensor levels; see docs/archives.md "
                         "for the layouts.")
    return Archive(path, kind, source, tuple(chunks))


def _folder_chunks(root: Path, source: Representation) -> list[Chunk]:
    chunks = []
    period = float(source.framing.frame_seconds)
    for item in sorted(root.iterdir()):
        if item.name.startswith((".", "_")):
            continue
        if item.is_file() and item.suffix.lower() in LEVEL_SUFFIXES:
            chunks.append(Chunk(item.stem, item.name, "folder", str(item), period_s=period))
        elif item.is_dir() and any(p.suffix.lower() in LEVEL_SUFFIXES for p in item.rglob("*")
                                   if p.is_file()):
            for file, _ in find_level_files([item]):
                chunks.append(Chunk(item.name, file.relative_to(root).as_posix(), "folder",
                                    str(file), period_s=period))
    names = [c.sensor for c in chunks if "/" not in c.key]
    clash = sorted({n for n in names if (root / n).is_dir()})
    if clash:
        raise InputError(f"{root}: sensor {clash[0]!r} is both a file and a folder; rename "
                         "one of them.")
    return chunks


def _is_sensor(name: str, item: Any) -> bool:
    """A group holding an array ``levels``, or an array not named levels/timestamps."""
    if _is_array(item):
        return name.rsplit("/", 1)[-1] not in ("levels", "timestamps")
    return "levels" in item and _is_array(item["levels"])


def _sensor_nodes(root: Any, kind: str) -> list[str]:
    """Node paths of the sensors of an HDF5 file or Zarr group, sorted."""
    if "levels" in root and _is_array(root["levels"]):
        return [""]  # a single-sensor file
    nodes: list[str] = []
    if kind == "hdf5":
        root.visititems(lambda name, item: nodes.append(name) if _is_sensor(name, item) else None)
    else:
        nodes = [name for name, item in root.members(max_depth=None) if _is_sensor(name, item)]
    # An array inside a sensor group (other than levels/timestamps) is not a sensor.
    groups = [n for n in nodes if not _is_array(root[n])]
    return sorted(n for n in nodes if not any(n.startswith(g + "/") for g in groups))


def _node_chunks(path: Path, kind: str, source: Representation, chunk_seconds: float | None
                 ) -> list[Chunk]:
    period = float(source.framing.frame_seconds)
    try:
        root = _open_node(kind, str(path))
    except Exception as exc:
        what = "HDF5" if kind == "hdf5" else "a Zarr store"
        raise InputError(f"{path}: cannot read it as {what} ({exc}); the file is corrupt or "
                         "not an archive.") from exc
    try:
        _check_stored_representation(path, _attr(root.attrs, "representation"), source)
        chunks: list[Chunk] = []
        for node in _sensor_nodes(root, kind):
            chunks += _sensor_chunks(path, kind, root, node, source, period, chunk_seconds)
        return chunks
    finally:
        if kind == "hdf5":
            root.close()


def _attr(attrs_: Any, name: str) -> Any:
    value = attrs_.get(name)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, dict):
        return json.dumps(value)
    return value


def _sensor_chunks(path: Path, kind: str, root: Any, node: str, source: Representation,
                   period: float, chunk_seconds: float | None) -> list[Chunk]:
    levels, stamps, holder = _node_arrays(root, node)
    sensor = node or path.stem
    where = f"{path}, sensor {sensor!r}"
    _check_shape(Path(where), tuple(levels.shape), np.dtype(levels.dtype), source)
    if len(levels.shape) != 2:
        raise InputError(f"{where}: levels shaped {tuple(levels.shape)}; an archive sensor "
                         f"holds one (frames, {source.n_bands}) time series.")
    frames = int(levels.shape[0])
    if stamps is not None and tuple(stamps.shape) != (frames,):
        raise InputError(f"{where}: 'timestamps' must hold one time per frame, shape "
                         f"({frames},); got {tuple(stamps.shape)}.")
    start = _attr(holder.attrs, "start") or _attr(root.attrs, "start")
    origin = None if start is None else _parse_iso(str(start), f"{where}, 'start'")
    if origin is None and stamps is not None and frames:
        first = np.asarray(stamps[0:1])
        if first.dtype.kind not in "iuf":  # ISO strings: times count from the first one
            text = first[0].decode() if isinstance(first[0], bytes) else str(first[0])
            origin = _parse_iso(text, f"{where}, frame 0")
    if chunk_seconds is not None:
        step = max(1, round(chunk_seconds / period))
    elif kind == "zarr":
        step = int(levels.chunks[0])
    else:
        step = max(1, round(DEFAULT_CHUNK_SECONDS / period))
    iso = None if origin is None else origin.isoformat()
    return [Chunk(sensor, f"{node or '/'}[{a}:{min(a + step, frames)}]", kind, str(path), node,
                  a, min(a + step, frames), iso, period, stamps is None)
            for a in range(0, frames, step)]
