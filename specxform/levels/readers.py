"""Stored band levels (no audio): NPY, HDF5 and CSV files, read block by block and validated.

Noise-monitoring networks store third-octave levels, not audio. This module
reads such files in blocks of :data:`BLOCK_FRAMES` frames whatever their
length and checks their layout; :mod:`specxform.levels.windows` checks their
timestamps, splits them into segments at gaps and cuts the segments into the
windows :mod:`specxform.levels.classify` classifies, and
:mod:`specxform.levels.statistics` measures them. The layouts are documented
with examples in ``docs/levels.md``:

NPY
    One ``(frames, bands)`` array of levels in the source representation's unit;
    frame ``i`` starts at ``i * P`` seconds (``P`` the representation's frame
    period, 0.125 s for ``cense``). A ``(chunks, frames, bands)`` array (the
    layout of the fast-to-ears tool) is a series of chunks, each a segment of
    its own: no window spans two chunks.
HDF5 (``.h5``, ``.hdf5``)
    A dataset ``levels`` ``(frames, bands)``; optionally a dataset
    ``timestamps`` ``(frames,)`` holding each frame's start in seconds (numbers)
    or as ISO 8601 strings, and a root attribute ``start`` (ISO 8601) naming the
    absolute time of second 0. A root attribute ``representation`` (written by
    ``specxform features``) must describe the ``--source`` representation.
    Also read: a group ``levels`` holding one dataset per recording (what
    ``specxform features -o x.h5`` writes; :func:`hdf5_recordings` lists
    them), a root dataset ``fast_125ms`` ``(chunks, frames, bands)``
    (fast-to-ears), or any dataset named with ``key``.
CSV
    A header line, then one line per frame: the frame's start time (ISO 8601 or
    seconds) in the first column, then one column per band in band order. Band
    columns are named by their centre frequency in Hz (``20``, ``25``, ``31.5``,
    ..., ``1k``, ``12500Hz``, ``LZeq_1000``: the last number, with an optional
    ``k``); each must lie within a twelfth of an octave of the band's centre.
    Empty cells are missing values. The delimiter (``,``, ``;`` or tab) is the
    one the header uses most.

Frame times (a ``timestamps`` dataset, a CSV time column, or ``i * P``) are
passed on with each :class:`LevelBlock`; their rules (gaps, missing values)
are those of :mod:`specxform.levels.windows`.

May import: the representations, :mod:`specxform.io` and :mod:`specxform.errors`.
"""

from __future__ import annotations

import abc
import codecs
import csv
import math
import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from specxform.errors import InputError
from specxform.io import visible_files
from specxform.representations.specs import BandFilterbank, Representation

__all__ = [
    "BLOCK_FRAMES",
    "LEVEL_SUFFIXES",
    "LevelBlock",
    "LevelReader",
    "find_level_files",
    "hdf5_recordings",
    "level_inputs",
    "open_levels",
    "timestamp_text",
]

#: Suffixes of the level files :func:`open_levels` reads.
LEVEL_SUFFIXES = (".npy", ".h5", ".hdf5", ".csv")
#: Frames per block read from a file (about 8.5 minutes of Cense levels, 475 kB).
BLOCK_FRAMES = 4096
#: HDF5 dataset of the fast-to-ears tool: (chunks, frames, 29) fast Cense levels.
FAST_TO_EARS_KEY = "fast_125ms"
#: Largest tolerated distance, in octaves, between a CSV column's frequency and its band centre.
_BAND_TOLERANCE_OCTAVES = 1 / 12
_FREQUENCY = re.compile(r"(\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*(k?)\s*(?:hz)?\s*$", re.IGNORECASE)


# ----------------------------------------------------------------------------- inputs


def find_level_files(inputs: Sequence[str | Path]) -> list[tuple[Path, str]]:
    """Expand files and folders (recursively) into level files and their output names.

    Hidden names below a folder (staging folders and temporary files of killed
    runs) are skipped (:func:`specxform.io.visible_files`).

    Parameters
    ----------
    inputs : sequence of path-like
        Level files (:data:`LEVEL_SUFFIXES`) or folders holding them.

    Returns
    -------
    list of (Path, str)
        Each file and its name: the path relative to its folder without suffix
        (POSIX separators), or the stem of a file given directly.

    Raises
    ------
    InputError
        A missing path, a file of another type, nothing found, or two inputs
        with the same output name.
    """
    found: dict[str, Path] = {}
    for item in map(Path, inputs):
        if item.is_dir():
            files = [p for p in visible_files(item) if p.suffix.lower() in LEVEL_SUFFIXES]
            entries = [(p, p.relative_to(item).with_suffix("").as_posix()) for p in files]
        elif item.is_file():
            if item.suffix.lower() not in LEVEL_SUFFIXES:
                raise InputError(
                    f"{item}: unsupported level file type {item.suffix or '(no suffix)'!r}; "
                    f"give {', '.join(LEVEL_SUFFIXES)} files or folders holding them "
                    "(see docs/levels.md)."
                )
            entries = [(item, item.stem)]
        else:
            raise InputError(f"{item}: no such file or folder; check the path.")
        for path, name in entries:
            if name in found:
                raise InputError(f"{found[name]} and {path} would both be named {name!r} in "
                                 "the results; rename one or classify them separately.")
            found[name] = path
    if not found:
        raise InputError(f"no level files ({', '.join(LEVEL_SUFFIXES)}) found in "
                         f"{', '.join(map(str, inputs))}.")
    return [(path, name) for name, path in found.items()]


def level_inputs(inputs: Sequence[str | Path], key: str | None = None
                 ) -> list[tuple[Path, str, str | None]]:
    """Level files, and the recordings of each HDF5 file that holds several.

    :func:`find_level_files` expanded: an HDF5 file with a ``levels`` group of
    several datasets (``specxform features a.wav b.wav -o all.h5``) gives one
    input per dataset, named ``<file name>/<dataset name>``; ``key`` names the
    one dataset to read in every HDF5 file instead.

    Returns
    -------
    list of (Path, str, str or None)
        Each file, its output name and the HDF5 dataset to read (None: the default).
    """
    out: list[tuple[Path, str, str | None]] = []
    for path, name in find_level_files(inputs):
        is_h5 = path.suffix.lower() in (".h5", ".hdf5")
        recordings = hdf5_recordings(path) if is_h5 and key is None else []
        if recordings:
            out += [(path, f"{name}/{k.removeprefix('levels/')}", k) for k in recordings]
        else:
            out.append((path, name, key if is_h5 else None))
    return out


@attrs.frozen
class LevelBlock:
    """Consecutive frames read from a level file.

    Attributes
    ----------
    levels : np.ndarray, shape (frames, bands), float32
        Levels as stored (NaN or inf where a value is missing).
    times_s : np.ndarray, shape (frames,), float64
        Start of each frame in seconds from the reader's time origin.
    positions : np.ndarray, shape (frames,), int64
        Where each frame is in the file: its line (CSV, 1-based) or its index (NPY, HDF5).
    done : int
        Progress units (frames or bytes, see :attr:`LevelReader.total`) read so far.
    starts_segment : np.ndarray of bool, shape (frames,), optional
        Frames that start a new segment whatever their timestamps (the first
        frame of each chunk of a ``(chunks, frames, bands)`` file).
    """

    levels: np.ndarray
    times_s: np.ndarray
    positions: np.ndarray
    done: int
    starts_segment: np.ndarray | None = None


class LevelReader(abc.ABC):
    """A level file opened for reading in blocks; :meth:`blocks` may be called again.

    Attributes
    ----------
    path : Path
    source : Representation
        The representation the levels are in.
    position_unit : str
        ``"line"`` (CSV) or ``"frame"``: what :attr:`LevelBlock.positions` count.
    origin : datetime or None
        Absolute time of second 0, when the file gives one (ISO 8601 timestamps
        or an HDF5 ``start`` attribute).
    total : int
        Progress units of the whole file: frames (NPY, HDF5) or bytes (CSV).
    """

    position_unit = "frame"

    def __init__(self, path: Path, source: Representation, block_frames: int) -> None:
        self.path, self.source, self.block_frames = path, source, block_frames
        self.origin: datetime | None = None
        self.total = 0

    @property
    def period_s(self) -> float:
        """Frame period of the source representation in seconds."""
        return float(self.source.framing.frame_seconds)

    def where(self, position: int) -> str:
        """``"<path>, line 12"`` or ``"<path>, frame 11"`` for error messages."""
        return f"{self.path}, {self.position_unit} {position}"

    @abc.abstractmethod
    def blocks(self) -> Iterator[LevelBlock]:
        """Yield the file's frames in blocks of at most ``block_frames``, in file order."""


def open_levels(path: str | Path, source: Representation, *,
                block_frames: int = BLOCK_FRAMES, key: str | None = None) -> LevelReader:
    """Open a level file (by suffix) and check its header: layout, band count, metadata.

    Parameters
    ----------
    path : path-like
        ``.npy``, ``.h5``/``.hdf5`` or ``.csv`` (see the module docstring).
    source : Representation
        The representation of the stored levels (``--source``).
    block_frames : int
        Frames per block.
    key : str, optional
        HDF5 only: the dataset holding the levels (``--levels-key``); default
        ``levels``, the one dataset of a ``levels`` group, or ``fast_125ms``.

    Raises
    ------
    InputError
        The file is missing, empty, corrupt, or its layout or band count do not
        match ``source``; the message names the file and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; check the path.")
    if block_frames < 1:
        raise InputError(f"block_frames must be >= 1, got {block_frames}.")
    suffix = path.suffix.lower()
    readers: dict[str, type[LevelReader]] = {".npy": NpyLevels, ".h5": Hdf5Levels,
                                            ".hdf5": Hdf5Levels, ".csv": CsvLevels}
    if suffix not in readers:
        raise InputError(f"{path}: unsupported level file type {suffix or '(no suffix)'!r}; "
                         f"use one of {', '.join(LEVEL_SUFFIXES)}.")
    if suffix in (".h5", ".hdf5"):
        return Hdf5Levels(path, source, block_frames, key=key)
    return readers[suffix](path, source, block_frames)


def _chunk_starts(index: np.ndarray, chunk_frames: int | None) -> np.ndarray | None:
    """Frames of ``index`` that start a chunk of a (chunks, frames, bands) file."""
    return None if chunk_frames is None else index % chunk_frames == 0


def _check_shape(path: Path, shape: tuple[int, ...], dtype: np.dtype, source: Representation
                 ) -> None:
    if len(shape) not in (2, 3):
        raise InputError(f"{path}: expected levels shaped (frames, {source.n_bands}) or "
                         f"(chunks, frames, {source.n_bands}), got shape {shape}; store one "
                         "recording per file, one row per frame.")
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise InputError(f"{path}: levels must be numbers, got dtype {dtype}.")
    if shape[-1] != source.n_bands:
        raise InputError(
            f"{path}: {shape[-1]} bands per frame, but {source.name!r} has {source.n_bands}; "
            "pass the `source` the levels were stored in (see `specxform list`)."
        )
    if math.prod(shape[:-1]) == 0:
        raise InputError(f"{path}: the file holds no frames; give a file with levels.")


# ----------------------------------------------------------------------------- NPY


class NpyLevels(LevelReader):
    """``(frames, bands)`` ``.npy`` array, read with plain file reads (no memory map)."""

    def __init__(self, path: Path, source: Representation, block_frames: int) -> None:
        super().__init__(path, source, block_frames)
        try:
            with path.open("rb") as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
                else:
                    raise ValueError(f"unsupported .npy format version {version}")
                self._offset = fh.tell()
        except (ValueError, OSError, EOFError) as exc:
            raise InputError(f"{path}: cannot read it as .npy ({exc}); the file is corrupt or "
                             "not a NumPy array; save the levels with numpy.save.") from exc
        _check_shape(path, shape, dtype, source)
        if fortran:
            raise InputError(f"{path}: the array is stored in Fortran order; save it with "
                             "numpy.save(path, numpy.ascontiguousarray(levels)).")
        #: Frames per chunk of a (chunks, frames, bands) array, else None.
        self.chunk_frames = shape[1] if len(shape) == 3 else None
        shape = (math.prod(shape[:-1]), shape[-1])
        self.dtype, self.shape = dtype, shape
        expected = self._offset + shape[0] * shape[1] * dtype.itemsize
        if path.stat().st_size < expected:
            raise InputError(f"{path}: truncated: the header announces {shape[0]} frames "
                             f"({expected} bytes) but the file has {path.stat().st_size} bytes; "
                             "copy or save the file again.")
        self.total = shape[0]

    def blocks(self) -> Iterator[LevelBlock]:
        frames, bands = self.shape
        with self.path.open("rb") as fh:
            fh.seek(self._offset)
            for start in range(0, frames, self.block_frames):
                n = min(self.block_frames, frames - start)
                levels = np.fromfile(fh, dtype=self.dtype, count=n * bands).reshape(n, bands)
                index = np.arange(start, start + n)
                yield LevelBlock(levels.astype(np.float32), index * self.period_s,
                                 index.astype(np.int64), start + n,
                                 _chunk_starts(index, self.chunk_frames))


# ----------------------------------------------------------------------------- HDF5


def _datasets(group: Any, h5py: Any) -> dict[str, Any]:
    """Every dataset under ``group`` by its path relative to it."""
    found: dict[str, Any] = {}

    def collect(name: str, node: object) -> None:
        if isinstance(node, h5py.Dataset):
            found[name] = node

    group.visititems(collect)
    return found


def hdf5_recordings(path: str | Path) -> list[str]:
    """Keys (``levels/<name>``) of the recordings an HDF5 file holds in a ``levels`` group.

    Empty unless the file has a group ``levels`` with two or more datasets (a
    file written by ``specxform features a.wav b.wav -o all.h5``); each of them
    is opened with ``open_levels(path, source, key=...)``.
    """
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            group = h5.get("levels")
            if not isinstance(group, h5py.Group):
                return []
            names = sorted(_datasets(group, h5py))
    except OSError:
        return []  # open_levels names the problem
    return [f"levels/{name}" for name in names] if len(names) > 1 else []


class Hdf5Levels(LevelReader):
    """HDF5: dataset ``levels`` (or see :func:`open_levels`'s ``key``), optional dataset
    ``timestamps`` and root attribute ``start``."""

    def __init__(self, path: Path, source: Representation, block_frames: int, *,
                 key: str | None = None) -> None:
        super().__init__(path, source, block_frames)
        import h5py  # deferred: only HDF5 inputs need it

        self.key = key
        try:
            with h5py.File(path, "r") as h5:
                self._check_layout(h5, h5py)
        except OSError as exc:
            raise InputError(f"{path}: cannot read it as HDF5 ({exc}); the file is corrupt "
                             "or not HDF5.") from exc

    def _find(self, h5: Any, h5py: Any) -> str:
        """The path of the levels dataset in ``h5``."""
        path = self.path
        if self.key is not None:
            if not isinstance(h5.get(self.key), h5py.Dataset):
                raise InputError(f"{path}: no dataset {self.key!r} (`levels_key`); it holds "
                                 f"{_listing(h5, h5py)}.")
            return self.key
        levels = h5.get("levels")
        if isinstance(levels, h5py.Dataset):
            return "levels"
        if isinstance(levels, h5py.Group):
            members = sorted(_datasets(levels, h5py))
            if len(members) == 1:
                return f"levels/{members[0]}"
            if len(members) > 1:
                shown = ", ".join(f"levels/{m}" for m in members[:5])
                raise InputError(f"{path}: holds {len(members)} recordings in the group "
                                 f"'levels' ({shown}{', ...' if len(members) > 5 else ''}); "
                                 "choose one with `levels_key`, or give the file to "
                                 "`specxform classify`, which classifies each.")
        if isinstance(h5.get(FAST_TO_EARS_KEY), h5py.Dataset):
            return FAST_TO_EARS_KEY
        raise InputError(f"{path}: no dataset 'levels' or {FAST_TO_EARS_KEY!r}; it holds "
                         f"{_listing(h5, h5py)}; name the dataset of levels with "
                         "`levels_key=NAME`, or store them as the dataset 'levels' "
                         "(docs/levels.md).")

    def _check_layout(self, h5: Any, h5py: Any) -> None:
        path, source = self.path, self.source
        self._key = self._find(h5, h5py)
        levels = h5[self._key]
        _check_shape(path, levels.shape, levels.dtype, source)
        #: Frames per chunk of a (chunks, frames, bands) dataset, else None.
        self.chunk_frames = int(levels.shape[1]) if levels.ndim == 3 else None
        self.total = math.prod(levels.shape[:-1])
        _check_stored_representation(path, h5.attrs.get("representation"), source)
        parent = self._key.rpartition("/")[0]
        self._stamps_key = f"{parent}/timestamps" if parent else "timestamps"
        self._timestamps = parent != "levels" and self._stamps_key in h5
        if self._timestamps and self.chunk_frames is not None:
            raise InputError(f"{path}: {self._key!r} is chunked (shape {levels.shape}) and has "
                             "'timestamps'; give timestamps only with (frames, bands) levels.")
        if self._timestamps:
            stamps = h5[self._stamps_key]
            if not isinstance(stamps, h5py.Dataset) or stamps.shape != (self.total,):
                raise InputError(f"{path}: 'timestamps' must be a dataset of one time per "
                                 f"frame, shape ({self.total},); got "
                                 f"{getattr(stamps, 'shape', 'a group')}.")
        start = h5.attrs.get("start")
        if start is not None:
            text = start.decode() if isinstance(start, bytes) else str(start)
            self.origin = _parse_iso(text, f"{path}, attribute 'start'")

    def blocks(self) -> Iterator[LevelBlock]:
        import h5py

        timing = _Timestamps(self.origin, self.where)
        with h5py.File(self.path, "r") as h5:
            levels = h5[self._key]
            stamps = h5[self._stamps_key] if self._timestamps else None
            for start in range(0, self.total, self.block_frames):
                stop = min(start + self.block_frames, self.total)
                index = np.arange(start, stop)
                if stamps is None:
                    times = index * self.period_s
                else:
                    times = timing.parse(stamps[start:stop], index)
                yield LevelBlock(self._read(levels, start, stop), times, index.astype(np.int64),
                                 stop, _chunk_starts(index, self.chunk_frames))
        if timing.origin is not None:
            self.origin = timing.origin


    def _read(self, levels: Any, start: int, stop: int) -> np.ndarray:
        """Frames ``[start, stop)`` as (frames, bands) float32, from either layout."""
        if self.chunk_frames is None:
            return np.asarray(levels[start:stop], dtype=np.float32)
        f = self.chunk_frames
        first, last = start // f, (stop - 1) // f + 1
        flat = np.asarray(levels[first:last], dtype=np.float32).reshape(-1, levels.shape[-1])
        return flat[start - first * f : stop - first * f]


def _listing(h5: Any, h5py: Any) -> str:
    found = _datasets(h5, h5py)
    shown = [f"{name} {tuple(node.shape)}" for name, node in sorted(found.items())[:8]]
    return ("datasets " + ", ".join(shown) + (", ..." if len(found) > 8 else "")
            if found else "no dataset")


def _check_stored_representation(path: Path, meta: Any, source: Representation) -> None:
    """An HDF5 file that records its representation must record ``source``."""
    if meta is None:
        return
    import json

    from specxform.errors import SpecError

    text = meta.decode() if isinstance(meta, bytes) else str(meta)
    try:
        data = json.loads(text)
        stored = None if data is None else Representation.from_dict(data)
    except (json.JSONDecodeError, SpecError, TypeError, KeyError) as exc:
        raise InputError(f"{path}: unreadable 'representation' attribute ({exc}); delete it "
                         "or rewrite the file.") from exc
    if stored is None:
        return
    if stored.name != source.name:
        raise InputError(f"{path}: holds {stored.name!r} levels, not {source.name!r}; pass "
                         f"`source={stored.name}`.")
    mine, theirs = source.to_dict(), stored.to_dict()
    mine.pop("description"), theirs.pop("description")
    if mine != theirs:
        raise InputError(f"{path}: its levels were computed with another definition of "
                         f"{source.name!r} than the installed one (framing, bands or scaling "
                         "differ); recompute them with `specxform features`.")


# ----------------------------------------------------------------------------- timestamps


def _parse_iso(text: str, where: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"{where}: {text!r} is not an ISO 8601 time; write times such as "
                         "2024-05-01T08:00:00.125+00:00.") from None


class _Timestamps:
    """Turns stored timestamps (numbers of seconds or ISO 8601 strings) into seconds.

    ISO times are counted from ``origin`` (the first time read when none is
    given); numbers are used as they are. One file uses one kind.
    """

    def __init__(self, origin: datetime | None, where: Any) -> None:
        self.origin, self.where = origin, where
        self.kind: str | None = None  # "seconds" or "iso"

    def parse(self, values: Any, positions: np.ndarray) -> np.ndarray:
        """Seconds of each value, shape (n,), float64."""
        values = np.asarray(values)
        if values.dtype.kind in "iuf":
            self._set_kind("seconds", positions[0] if len(positions) else 0)
            return values.astype(np.float64)
        out = np.empty(len(values))
        for i, (value, pos) in enumerate(zip(values, positions, strict=True)):
            text = value.decode() if isinstance(value, bytes) else str(value)
            out[i] = self.one(text, int(pos))
        return out

    def one(self, text: str, position: int) -> float:
        """Seconds of one timestamp ``text`` found at ``position``."""
        if self.kind != "iso":
            try:
                value = float(text)
            except ValueError:
                value = None
            if value is not None:
                self._set_kind("seconds", position)
                return value
        stamp = _parse_iso(text, self.where(position)) if text.strip() else None
        if stamp is None:
            raise InputError(f"{self.where(position)}: empty timestamp; every frame needs "
                             "its start time (ISO 8601 or seconds).")
        self._set_kind("iso", position)
        if self.origin is None:
            self.origin = stamp
        try:
            return (stamp - self.origin).total_seconds()
        except TypeError:  # naive and aware times mixed
            raise InputError(f"{self.where(position)}: {text!r} mixes times with and without "
                             "a UTC offset; give every timestamp an offset (e.g. +00:00) or "
                             "none.") from None

    def _set_kind(self, kind: str, position: int) -> None:
        if self.kind is None:
            self.kind = kind
        elif self.kind != kind:
            raise InputError(f"{self.where(position)}: timestamps mix ISO 8601 times and "
                             "numbers of seconds; use one kind in a file.")


# ----------------------------------------------------------------------------- CSV


def _is_time(text: str) -> bool:
    """Whether ``text`` reads as a timestamp: a number of seconds or an ISO 8601 time."""
    text = text.strip()
    try:
        float(text)
        return True
    except ValueError:
        pass
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _band_frequency(name: str) -> float | None:
    match = _FREQUENCY.search(name.strip())
    if match is None:
        return None
    return float(match.group(1)) * (1000.0 if match.group(2) else 1.0)


class CsvLevels(LevelReader):
    """CSV: header, then ``time, band_1, ..., band_n`` per line; read line by line."""

    position_unit = "line"

    def __init__(self, path: Path, source: Representation, block_frames: int) -> None:
        super().__init__(path, source, block_frames)
        self.total = path.stat().st_size
        if self.total == 0:
            raise InputError(f"{path}: the file is empty; a level CSV starts with a header "
                             "line (docs/levels.md).")
        with path.open("rb") as fh:
            lines = self._lines(fh)
            header_line = next(lines, None)
            first_row = next(lines, None)
        if header_line is None or not header_line[0].strip():
            raise InputError(f"{path}: no header line; the first line names the time column "
                             "and the band columns (docs/levels.md).")
        counts = {d: header_line[0].count(d) for d in (",", ";", "\t")}
        self.delimiter = max(counts, key=lambda d: counts[d])
        header = next(csv.reader([header_line[0]], delimiter=self.delimiter))
        self._check_not_data(header)
        self._check_header(header)
        if first_row is None or not any(c.strip() for c in first_row[0]):
            raise InputError(f"{path}: the file holds a header but no frames; give a file "
                             "with levels.")

    def _lines(self, fh: Any) -> Iterator[tuple[str, int]]:
        """Decoded lines and the bytes read so far."""
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        done = 0
        for number, raw in enumerate(fh, start=1):
            done += len(raw)
            try:
                yield decoder.decode(raw), done
            except UnicodeDecodeError as exc:
                raise InputError(f"{self.path}, line {number}: not UTF-8 text ({exc.reason}); "
                                 "the file is corrupt or not a CSV file.") from None

    def _check_not_data(self, header: list[str]) -> None:
        """Refuse a first line that is a frame (a time and numbers), not column names."""
        if len(header) < 2 or not _is_time(header[0]):
            return
        try:
            values = [float(cell) for cell in header[1:] if cell.strip()]
        except ValueError:
            return
        bank = self.source.filterbank
        centres = bank.centres if isinstance(bank, BandFilterbank) else ()
        if len(values) == len(centres) and all(
                v > 0 and abs(math.log2(v / c)) <= _BAND_TOLERANCE_OCTAVES
                for v, c in zip(values, centres, strict=True)):
            return  # band names after a numeric time column name: a header after all
        shown = self.delimiter.join(header[:3])
        example = ",".join(["time", *(f"{c:.3g}" for c in centres[:4])]) + ",..."
        raise InputError(
            f"{self.path}: no header line: line 1 holds a frame ({shown}...), not column "
            f"names; add a first line naming the time column and the band centres in Hz, "
            f"e.g. {example} (docs/levels.md)."
        )

    def _check_header(self, header: list[str]) -> None:
        bands = self.source.n_bands
        if len(header) != bands + 1:
            raise InputError(
                f"{self.path}, line 1: {len(header) - 1} band columns after the time column, "
                f"but {self.source.name!r} has {bands} bands; give one column per band (or "
                "pass the `source` the levels were stored in)."
            )
        bank = self.source.filterbank
        if not isinstance(bank, BandFilterbank):
            return
        for band, (column, centre) in enumerate(zip(header[1:], bank.centres, strict=True)):
            freq = _band_frequency(column)
            if freq is None or freq <= 0:
                raise InputError(f"{self.path}, line 1: band column {column!r} does not name "
                                 f"a frequency; name it by its centre in Hz, e.g. {centre:.4g}.")
            if abs(math.log2(freq / centre)) > _BAND_TOLERANCE_OCTAVES:
                raise InputError(
                    f"{self.path}, line 1: column {column!r} ({freq:g} Hz) is not band "
                    f"{band} of {self.source.name!r} (centre {centre:.4g} Hz); "
                    "give the band columns in order, one per band."
                )

    def blocks(self) -> Iterator[LevelBlock]:
        timing = _Timestamps(None, self.where)
        bands = self.source.n_bands
        with self.path.open("rb") as fh:
            lines = self._lines(fh)
            next(lines)  # the header, checked on opening
            done = 0

            def text() -> Iterator[str]:
                nonlocal done
                for line, read in lines:
                    done = read
                    yield line

            reader = csv.reader(text(), delimiter=self.delimiter)
            rows: list[list[float]] = []
            times: list[float] = []
            positions: list[int] = []
            try:
                for row in reader:
                    if not row or not any(cell.strip() for cell in row):
                        continue  # blank line
                    line = reader.line_num + 1  # the header was read before the reader
                    if len(row) != bands + 1:
                        raise InputError(f"{self.where(line)}: {len(row)} columns, expected "
                                         f"{bands + 1} (time and {bands} bands); fix the line.")
                    times.append(timing.one(row[0], line))
                    rows.append(self._values(row, line))
                    positions.append(line)
                    if len(rows) == self.block_frames:
                        yield self._block(rows, times, positions, done)
                        rows, times, positions = [], [], []
            except csv.Error as exc:
                raise InputError(f"{self.where(reader.line_num + 1)}: malformed CSV ({exc}); "
                                 "fix the quoting on that line.") from None
            if rows:
                yield self._block(rows, times, positions, done)
        self.origin = timing.origin

    def _values(self, row: list[str], line: int) -> list[float]:
        try:
            return [float(cell) for cell in row[1:]]
        except ValueError:
            pass
        values = []
        for column, cell in enumerate(row[1:], start=2):
            if not cell.strip():
                values.append(math.nan)  # an empty cell is a missing value
                continue
            try:
                values.append(float(cell))
            except ValueError:
                raise InputError(f"{self.where(line)}, column {column}: {cell!r} is not a "
                                 "number; write levels in dB with a decimal point, or leave "
                                 "the cell empty for a missing value.") from None
        return values

    @staticmethod
    def _block(rows: list[list[float]], times: list[float], positions: list[int], done: int
               ) -> LevelBlock:
        return LevelBlock(np.asarray(rows, dtype=np.float32), np.asarray(times, np.float64),
                          np.asarray(positions, np.int64), done)


def timestamp_text(origin: datetime | None, seconds: float) -> str:
    """ISO 8601 time ``seconds`` after ``origin``, or "" without an origin."""
    if origin is None:
        return ""
    return (origin + timedelta(seconds=float(seconds))).isoformat()
