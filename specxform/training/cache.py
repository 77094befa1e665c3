"""Feature cache: per-chunk source levels, true target Mels and teacher outputs, on disk.

Training reads, for each chunk of audio, the source representation (the
student's only input), the true target Mel (for the Mel loss and metrics) and
the frozen teacher's probabilities on that true Mel. These never change
during training, so :func:`build_cache` computes them once into
memory-mapped ``.npy`` files; training then streams batches from disk and its
memory does not grow with the dataset.

Chunks. Each clip is peak-normalised (the paper's training audio was), cut
into chunks of :attr:`Chunking.seconds` (a trailing part of at least half a
chunk is zero-padded into one more chunk; a clip shorter than that still
gives one), and chunks whose peak is below :attr:`Chunking.min_peak`
(digital silence, e.g. the zero padding of UrbanSound8K clips) are dropped.

Auxiliary teacher inputs. A teacher whose ``aux_inputs`` is non-empty (e.g.
SoundAQnet's loudness) provides two methods, per chunk (:class:`AuxProvider`):
``aux_from_audio(audio, sample_rate)`` gives the inputs that go with the *true*
Mel (computed from the chunk's audio at the clip's own rate), and
``aux_from_source(levels, source)`` gives those that go with the *transcoded*
Mel (computed from the source levels only, since the student never sees
audio). Both are stored, as ``aux_teacher.<name>.npy`` and
``aux_student.<name>.npy``.

Layout and keys. A cache lives in ``<root>/<source>-<target>-<teacher>-<key>``
where ``key`` hashes every spec involved (:class:`CacheSpec`: both
representations' ``to_dict``, the teacher's name, class and a digest of its
weights, the chunking, and the dataset's file names, sizes and content
digests): a re-run finds it, and changing anything gives a new folder. The
files are named by content, not modification time, so a copied or re-mounted
dataset finds its cache and resumes its runs. The build
writes one ``parts/<i>.npz`` per clip (atomically: temporary file, then
``os.replace``), so an interrupted build resumes at the first missing clip;
the parts are then gathered into the final arrays and ``complete.json`` is
written last.

Integrity. Opening a cache checks every array against ``complete.json``: the
file exists, its size is the one its ``.npy`` header announces, it holds one
row per chunk, and its values are finite (a scan in blocks; a fraction of a
second per 100 MB). A damaged cache raises :class:`CacheDamagedError`, which
names the array, the chunk and its clip; :func:`build_cache` then rebuilds the
cache (one warning line on stderr) instead of training on it.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import sys
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs
import numpy as np
import torch
from numpy.lib.format import open_memmap
from torch import nn

from specxform.audio import load_audio, resample, warn_bandwidth
from specxform.datasets import Clip
from specxform.errors import InputError, PluginError, SpecError
from specxform.io import atomic_write as atomic_path  # one atomic-write mechanism
from specxform.io import write_atomic_bytes as atomic_write_bytes
from specxform.progress import ProgressCallback, report
from specxform.representations.frontend import RepresentationTransform
from specxform.representations.specs import Representation
from specxform.transcoders.pinv import PinvTranscoder

__all__ = [
    "CACHE_FORMAT",
    "AuxProvider",
    "CacheDamagedError",
    "CacheSpec",
    "Chunking",
    "FeatureCache",
    "atomic_path",
    "atomic_write_bytes",
    "build_cache",
    "chunk_clip",
    "open_cache",
    "teacher_digest",
]

#: Bumped whenever what a cache holds or how it is computed changes.
CACHE_FORMAT = 1
_MAIN_ARRAYS = ("source", "target", "probs", "file_index", "chunk_index")
#: Chunks per teacher call while caching: bounds memory for hour-long recordings.
_TEACHER_BATCH = 64
#: Bytes read at a time when a cache is opened and its arrays are checked for NaN.
_VERIFY_BYTES = 1 << 25


class CacheDamagedError(InputError):
    """A cache folder is incomplete or damaged (a truncated, missing or non-finite array).

    Attributes
    ----------
    folder : Path
    array : str or None
        File name of the damaged array (``probs.npy``), when one is to blame.
    """

    def __init__(self, folder: Path, what: str, array: str | None = None) -> None:
        super().__init__(f"feature cache {folder}: {what}; the cache is damaged: delete "
                         f"{folder} and run the command again, which rebuilds it.")
        self.folder, self.array, self.what = folder, array, what


@runtime_checkable
class AuxProvider(Protocol):
    """What a teacher with auxiliary inputs provides to the cache (see module doc)."""

    aux_inputs: tuple[str, ...]

    def aux_from_audio(self, audio: np.ndarray, sample_rate: int) -> Mapping[str, np.ndarray]:
        """Aux inputs for the true Mel of one chunk of audio (samples,) at ``sample_rate``."""
        ...

    def aux_from_source(self, levels: np.ndarray, source: Representation
                        ) -> Mapping[str, np.ndarray]:
        """Aux inputs for the transcoded Mel of one chunk of source levels (frames, bands)."""
        ...


@attrs.frozen
class Chunking:
    """How clips become training chunks.

    Parameters
    ----------
    seconds : float
        Chunk length (1 s in the paper).
    normalise : {"peak", "none"}
        ``"peak"`` divides each clip by its absolute peak (the paper); ``"none"``
        keeps the calibration of the files.
    min_peak : float
        Chunks whose absolute peak (after normalisation, full scale 1) is below
        this are dropped; 0 keeps every chunk.
    """

    seconds: float = attrs.field(default=1.0, converter=float)
    normalise: str = attrs.field(default="peak")
    min_peak: float = attrs.field(default=1e-5, converter=float)

    def __attrs_post_init__(self) -> None:
        if not (math.isfinite(self.seconds) and self.seconds > 0):
            raise SpecError(f"chunk seconds must be > 0, got {self.seconds!r}; e.g. 1.0.")
        if self.normalise not in ("peak", "none"):
            raise SpecError(f"normalise must be 'peak' or 'none', got {self.normalise!r}.")
        if not self.min_peak >= 0:
            raise SpecError(f"min_peak must be >= 0, got {self.min_peak!r}.")

    @classmethod
    def for_teacher(cls, entry: Any, *, seconds: float | None = None,
                    normalise: str | None = None) -> Chunking:
        """The chunking a registered teacher asks for (``TeacherEntry.chunk_seconds`` and
        ``.normalise``), with either overridden when given."""
        return cls(seconds=entry.chunk_seconds if seconds is None else seconds,
                   normalise=entry.normalise if normalise is None else normalise)

    def samples(self, sample_rate: int) -> int:
        """Chunk length in samples at ``sample_rate``; it must be a whole number."""
        exact = self.seconds * sample_rate
        if abs(exact - round(exact)) > 1e-6:
            raise SpecError(
                f"chunks of {self.seconds} s are {exact} samples at {sample_rate} Hz, not a whole "
                f"number; choose a chunk length that is a multiple of 1/{sample_rate} s (e.g. 1.0)."
            )
        return round(exact)

    def count(self, n_samples: int, sample_rate: int) -> int:
        """Chunks cut from a clip of ``n_samples`` at ``sample_rate`` (at least one)."""
        return max(1, math.floor(n_samples / (self.seconds * sample_rate) + 0.5))

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def teacher_digest(teacher: nn.Module) -> str:
    """SHA-256 of the teacher's class name and state dict (names, dtypes, shapes, values).

    The class's module is left out on purpose: moving a teacher to another module
    or plugin package must not invalidate the caches and checkpoints made with
    the same weights.
    """
    digest = hashlib.sha256(type(teacher).__qualname__.encode())
    for name, tensor in teacher.state_dict().items():
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{value.dtype}:{tuple(value.shape)}".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    """BLAKE2b (16 bytes, hex) of a file's bytes: about 1 s per GB, read in 1 MiB blocks."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _key(spec: Mapping[str, Any]) -> str:
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@attrs.frozen
class CacheSpec:
    """Everything a cache's contents depend on; :attr:`key` hashes it."""

    source: Representation
    target: Representation
    teacher_name: str
    teacher_digest: str
    chunking: Chunking
    files: tuple[tuple[str, int, str], ...]  # (name, size in bytes, BLAKE2b of the bytes)

    @classmethod
    def of(cls, clips: Sequence[Clip], *, source: Representation, target: Representation,
           teacher: nn.Module, teacher_name: str, chunking: Chunking) -> CacheSpec:
        files = tuple((c.name, c.path.stat().st_size, file_digest(c.path))
                      for c in sorted(clips, key=lambda c: c.name))
        return cls(source, target, teacher_name, teacher_digest(teacher), chunking, files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CACHE_FORMAT,
            "source": self.source.to_dict(),
            "target": self.target.to_dict(),
            "teacher": {"name": self.teacher_name, "digest": self.teacher_digest},
            "chunking": self.chunking.to_dict(),
            "files": [list(f) for f in self.files],
        }

    @property
    def key(self) -> str:
        """SHA-256 of :meth:`to_dict` (canonical JSON)."""
        return _key(self.to_dict())

    def folder(self, root: Path) -> Path:
        name = f"{self.source.name}-{self.target.name}-{self.teacher_name}-{self.key[:16]}"
        return Path(root) / name


# ------------------------------------------------------------------------- chunking


def _cut(signal: np.ndarray, n_chunks: int, step: float, width: int) -> np.ndarray:
    """``n_chunks`` windows of ``width`` samples starting every ``step``; zero-padded at the end."""
    starts = [round(i * step) for i in range(n_chunks)]
    total = starts[-1] + width
    signal = np.pad(signal[:total], (0, max(0, total - len(signal))))
    return np.stack([signal[s : s + width] for s in starts]).astype(np.float32, copy=False)


def chunk_clip(audio: np.ndarray, sample_rate: int, *, rates: Sequence[int],
               chunking: Chunking) -> tuple[list[np.ndarray], np.ndarray]:
    """Normalise one clip and cut it into chunks at each rate in ``rates`` and at its own rate.

    Parameters
    ----------
    audio : np.ndarray, shape (samples,)
        The clip at ``sample_rate``, full scale 1.
    sample_rate : int
        Its rate in Hz.
    rates : sequence of int
        Rates to resample to (the source's, then the target's); the first one
        decides which chunks are silent.
    chunking : Chunking

    Returns
    -------
    chunks : list of np.ndarray
        For each rate in ``rates``, then for ``sample_rate`` itself, a float32
        array (kept chunks, samples per chunk at that rate).
    kept : np.ndarray of int
        Positions (0-based, in the clip) of the kept chunks.
    """
    if chunking.normalise == "peak":
        peak = float(np.max(np.abs(audio)))
        audio = audio / peak if peak > 0 else audio
    n_chunks = chunking.count(len(audio), sample_rate)
    cut = []
    for rate in rates:
        size = chunking.samples(rate)
        cut.append(_cut(resample(audio, orig_sr=sample_rate, target_sr=rate), n_chunks, size, size))
    step = chunking.seconds * sample_rate  # the clip's own rate need not give whole chunks
    cut.append(_cut(audio, n_chunks, step, math.floor(step + 1e-6)))
    kept = np.arange(n_chunks)
    if chunking.min_peak > 0:
        kept = np.flatnonzero(np.abs(cut[0]).max(axis=1) >= chunking.min_peak)
    return [c[kept] for c in cut], kept


# ---------------------------------------------------------------------- the cache


class FeatureCache:
    """A complete cache folder, its arrays memory-mapped read-only.

    Attributes
    ----------
    source : np.ndarray, shape (chunks, source frames, source bands)
    target : np.ndarray, shape (chunks, target frames, target bands)
    probs : np.ndarray, shape (chunks, classes)
        Teacher probabilities on the true Mel.
    file_index : np.ndarray of int32, shape (chunks,)
        Index into :attr:`files` of each chunk's clip.
    chunk_index : np.ndarray of int32, shape (chunks,)
        Position of the chunk within its clip.
    aux_teacher, aux_student : dict of str to np.ndarray
        Aux inputs for the teacher on the true and on the transcoded Mel.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        marker = self.folder / "complete.json"
        if not marker.is_file():
            raise InputError(
                f"{self.folder} is not a complete feature cache (no complete.json); "
                "run build_cache again to finish it."
            )
        try:
            self.manifest: dict[str, Any] = json.loads(
                (self.folder / "manifest.json").read_text())
            done = json.loads(marker.read_text())
            self.aux_names: tuple[str, ...] = tuple(done["aux"])
            self._chunks = int(done["chunks"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CacheDamagedError(self.folder, f"unreadable manifest.json or complete.json "
                                    f"({exc})") from exc
        arrays = {name: self._open(name) for name in _MAIN_ARRAYS}
        self.source, self.target, self.probs = arrays["source"], arrays["target"], arrays["probs"]
        self.file_index, self.chunk_index = arrays["file_index"], arrays["chunk_index"]
        self.aux_teacher = {a: self._open(f"aux_teacher.{a}") for a in self.aux_names}
        self.aux_student = {a: self._open(f"aux_student.{a}") for a in self.aux_names}
        self._verify_values(arrays)

    def _open(self, name: str) -> np.ndarray:
        """Memory-map ``<name>.npy`` after checking its header and size against the chunks."""
        path = self.folder / f"{name}.npy"
        what = path.name
        try:
            with path.open("rb") as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
                offset = fh.tell()
            size = path.stat().st_size
        except FileNotFoundError:
            raise CacheDamagedError(self.folder, f"{what} is missing", what) from None
        except (OSError, ValueError, EOFError) as exc:
            raise CacheDamagedError(self.folder, f"{what} has no readable .npy header ({exc})",
                                    what) from exc
        expected = offset + math.prod(shape) * dtype.itemsize
        if size != expected:
            kind = "truncated" if size < expected else "longer than its header says"
            raise CacheDamagedError(self.folder, f"{what} is {kind} ({size} bytes, its header "
                                    f"announces {expected})", what)
        if not shape or shape[0] != self._chunks or fortran:
            raise CacheDamagedError(self.folder, f"{what} holds shape {shape}, but the cache "
                                    f"has {self._chunks} chunks", what)
        return np.load(path, mmap_mode="r")

    def _verify_values(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Every chunk of every array is finite, and file indices point at files."""
        index = arrays["file_index"]
        if len(index) and not (int(index.min()) >= 0 and int(index.max()) < len(self.files)):
            raise CacheDamagedError(self.folder, "file_index.npy points at clips the manifest "
                                    "does not list", "file_index.npy")
        named = {**arrays, **{f"aux_teacher.{a}": v for a, v in self.aux_teacher.items()},
                 **{f"aux_student.{a}": v for a, v in self.aux_student.items()}}
        for name, array in named.items():
            if not np.issubdtype(array.dtype, np.floating) or not len(array):
                continue
            step = max(1, _VERIFY_BYTES // max(1, array[0].nbytes))
            for start in range(0, len(array), step):
                block = np.asarray(array[start : start + step])
                bad = ~np.isfinite(block.reshape(len(block), -1)).all(axis=1)
                if bad.any():
                    chunk = start + int(np.argmax(bad))
                    clip = self.files[int(index[chunk])]
                    raise CacheDamagedError(
                        self.folder, f"{name}.npy holds NaN or infinite values in chunk {chunk} "
                        f"(clip {clip!r}, its chunk {int(self.chunk_index[chunk])})",
                        f"{name}.npy")

    @property
    def key(self) -> str:
        """The :attr:`CacheSpec.key` this cache was built for."""
        return _key(self.manifest)

    @property
    def files(self) -> tuple[str, ...]:
        """Clip names in file-index order."""
        return tuple(f[0] for f in self.manifest["files"])

    def __len__(self) -> int:
        return len(self.probs)

    def rows(self, names: Sequence[str]) -> np.ndarray:
        """Chunk indices (sorted) of the clips named ``names``; unknown names are an error."""
        index = {name: i for i, name in enumerate(self.files)}
        missing = [n for n in names if n not in index]
        if missing:
            raise InputError(
                f"{len(missing)} clip(s) are not in the cache {self.folder.name} (first: "
                f"{missing[0]!r}); build the cache from the same dataset."
            )
        wanted = np.zeros(len(self.files), dtype=bool)
        wanted[[index[n] for n in names]] = True
        return np.flatnonzero(wanted[np.asarray(self.file_index)])

    def take(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Arrays of chunks ``rows`` (read from disk): source, target, probs, aux_*."""
        rows = np.sort(np.asarray(rows))
        out = {"source": self.source[rows], "target": self.target[rows],
               "probs": self.probs[rows], "file_index": self.file_index[rows]}
        for name in self.aux_names:
            out[f"aux_teacher.{name}"] = self.aux_teacher[name][rows]
            out[f"aux_student.{name}"] = self.aux_student[name][rows]
        return out


def open_cache(folder: str | Path) -> FeatureCache:
    """Open a complete cache folder."""
    return FeatureCache(Path(folder))


class _Featurizer:
    """Computes one clip's part: features, teacher probabilities and aux inputs."""

    def __init__(self, source: Representation, target: Representation, teacher: nn.Module,
                 chunking: Chunking) -> None:
        self.source, self.target, self.chunking = source, target, chunking
        self.teacher = teacher.eval()
        self.aux_names = tuple(getattr(teacher, "aux_inputs", ()))
        if self.aux_names and not isinstance(teacher, AuxProvider):
            raise PluginError(
                f"teacher {type(teacher).__name__} needs aux inputs {list(self.aux_names)} but "
                "does not define aux_from_audio(audio, sample_rate) and aux_from_source(levels, "
                "source); add both methods to the teacher class (see "
                "specxform.training.cache.AuxProvider)."
            )
        self.src_tf = RepresentationTransform(source)
        self.tgt_tf = RepresentationTransform(target)
        self._check_frames(teacher)

    def _check_frames(self, teacher: nn.Module) -> None:
        src_n = self.source.n_frames(self.chunking.samples(self.source.sample_rate))
        tgt_n = self.target.n_frames(self.chunking.samples(self.target.sample_rate))
        pinv_n = PinvTranscoder(self.source, self.target).target_frames(src_n)
        if pinv_n != tgt_n:
            raise SpecError(
                f"a {self.chunking.seconds} s chunk gives {tgt_n} true {self.target.name} frames "
                f"but the PINV of its {src_n} {self.source.name} frames gives {pinv_n}; choose a "
                f"chunk length that is a whole number of {self.source.name} hops "
                f"({self.source.framing.frame_seconds} s)."
            )
        min_frames = getattr(teacher, "min_frames", 1)
        if tgt_n < min_frames:
            raise SpecError(
                f"{self.chunking.seconds} s chunks give {tgt_n} {self.target.name} frames, fewer "
                f"than the {min_frames} the teacher needs; use longer chunks (`Chunking.seconds`)."
            )

    @torch.no_grad()
    def __call__(self, clip: Clip) -> dict[str, np.ndarray]:
        audio, sr = load_audio(clip.path)
        warn_bandwidth(self.source, sr)  # once per rate: Python shows a repeated warning once
        (src_audio, tgt_audio, raw), kept = chunk_clip(
            audio, sr, rates=(self.source.sample_rate, self.target.sample_rate),
            chunking=self.chunking,
        )
        levels = self.src_tf(torch.from_numpy(src_audio)).numpy()
        mel = self.tgt_tf(torch.from_numpy(tgt_audio))
        part = {"source": levels, "target": mel.numpy(), "chunk_index": kept.astype(np.int32)}
        if self.aux_names and len(kept):
            part |= self._aux(raw, sr, levels)
        part["probs"] = self._probs(mel, part) if len(kept) else np.zeros((0, 0), np.float32)
        return part

    def _probs(self, mel: torch.Tensor, part: Mapping[str, np.ndarray]) -> np.ndarray:
        """Teacher probabilities on the true Mels, a bounded batch at a time (long clips)."""
        out = []
        for start in range(0, len(mel), _TEACHER_BATCH):
            rows = slice(start, start + _TEACHER_BATCH)
            aux = {a: torch.from_numpy(part[f"aux_teacher.{a}"][rows]) for a in self.aux_names}
            out.append(self.teacher(mel[rows], aux or None).probs.float().numpy())
        return np.concatenate(out)

    def _aux(self, raw: np.ndarray, sr: int, levels: np.ndarray) -> dict[str, np.ndarray]:
        teacher: AuxProvider = self.teacher  # type: ignore[assignment]
        sides = {
            "aux_teacher": [teacher.aux_from_audio(chunk, sr) for chunk in raw],
            "aux_student": [teacher.aux_from_source(chunk, self.source) for chunk in levels],
        }
        out = {}
        for side, values in sides.items():
            for got in values:
                if set(got) != set(self.aux_names):
                    raise PluginError(
                        f"teacher {type(teacher).__name__}: {side} returned aux {sorted(got)}, "
                        f"expected {sorted(self.aux_names)}."
                    )
            for name in self.aux_names:
                out[f"{side}.{name}"] = np.stack([np.asarray(v[name], np.float32) for v in values])
        return out


def build_cache(clips: Sequence[Clip], *, source: Representation, target: Representation,
                teacher: nn.Module, teacher_name: str, root: str | Path,
                chunking: Chunking | None = None,
                progress: ProgressCallback | None = None) -> FeatureCache:
    """Compute (or find, or finish) the feature cache of ``clips``.

    Parameters
    ----------
    clips : sequence of Clip
        Every clip that training may use (all splits).
    source, target : Representation
        The pair: the student's input and the teacher's Mel.
    teacher : nn.Module
        A :class:`~specxform.teachers.base.Teacher` (frozen; run in eval mode).
    teacher_name : str
        Registry name of the teacher (recorded in the key and the folder name).
    root : path
        Folder holding caches.
    chunking : Chunking, optional
        Defaults to 1 s peak-normalised chunks.
    progress : callable, optional
        Receives a :class:`~specxform.progress.ProgressEvent` per clip (task
        ``"caching <folder>"``: clips done of all, with ``chunks`` so far).

    Returns
    -------
    FeatureCache
        The complete cache, memory-mapped.
    """
    chunking = chunking or Chunking()
    if not clips:
        raise InputError("no clips to cache; check the dataset folder and split.")
    spec = CacheSpec.of(clips, source=source, target=target, teacher=teacher,
                        teacher_name=teacher_name, chunking=chunking)
    folder = spec.folder(Path(root))
    if (folder / "complete.json").is_file():
        try:
            return FeatureCache(folder)
        except CacheDamagedError as exc:
            _discard(folder, exc)
    parts = folder / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "manifest.json", json.dumps(spec.to_dict(), indent=1).encode())
    featurize = _Featurizer(source, target, teacher, chunking)
    ordered = sorted(clips, key=lambda c: c.name)
    task, chunks = f"caching {folder.name}", 0
    report(progress, task, 0, len(ordered), chunks=0)
    for i, clip in enumerate(ordered):
        path = parts / f"{i:06d}.npz"
        if not path.is_file():
            part = featurize(clip)
            with atomic_path(path) as tmp, tmp.open("wb") as fh:
                np.savez(fh, **part)  # type: ignore[arg-type]
        chunks += _part_rows(path)
        report(progress, task, i + 1, len(ordered), chunks=chunks)
    _gather(folder, len(ordered), featurize.aux_names)
    try:
        return FeatureCache(folder)
    except CacheDamagedError as exc:  # just computed: the features themselves are bad
        raise InputError(
            f"computing the feature cache {folder} gave bad values: {exc.what}; check that "
            "clip's audio and the teacher (delete the folder to retry)."
        ) from exc


def _discard(folder: Path, exc: CacheDamagedError) -> None:
    """Delete a damaged cache's arrays so that :func:`build_cache` computes it again."""
    sys.stderr.write(f"specxform: warning: {' '.join(exc.what.split())} in the feature cache "
                     f"{folder}; rebuilding it.\n")
    (folder / "complete.json").unlink(missing_ok=True)
    for array in folder.glob("*.npy"):
        array.unlink(missing_ok=True)


def _part_rows(path: Path) -> int:
    with np.load(path) as part:
        return len(part["chunk_index"])


def _gather(folder: Path, n_parts: int, aux_names: tuple[str, ...]) -> None:
    """Concatenate the parts into memory-mapped arrays, one part in memory at a time."""
    paths = [folder / "parts" / f"{i:06d}.npz" for i in range(n_parts)]
    counts = [_part_rows(p) for p in paths]
    total = sum(counts)
    if total == 0:
        raise InputError(
            f"no chunk of the {n_parts} clip(s) is louder than min_peak; check the audio or "
            "lower Chunking.min_peak."
        )
    with np.load(paths[int(np.argmax(counts))]) as sample:
        names = [k for k in sample.files if k != "chunk_index"]
        layout = {k: (sample[k].shape[1:], sample[k].dtype) for k in names}
    layout["file_index"] = ((), np.dtype(np.int32))
    layout["chunk_index"] = ((), np.dtype(np.int32))
    with ExitStack() as stack:
        outputs = {}
        for name, (shape, dtype) in layout.items():
            tmp = stack.enter_context(atomic_path(folder / f"{name}.npy"))
            outputs[name] = open_memmap(tmp, mode="w+", dtype=dtype, shape=(total, *shape))
        start = 0
        for i, (path, count) in enumerate(zip(paths, counts, strict=True)):
            if count:
                with np.load(path) as part:
                    for name in [*names, "chunk_index"]:
                        outputs[name][start : start + count] = part[name]
                outputs["file_index"][start : start + count] = i
            start += count
        for array in outputs.values():
            array.flush()
        del outputs
    done = {"chunks": total, "files": n_parts, "aux": list(aux_names)}
    atomic_write_bytes(folder / "complete.json", json.dumps(done).encode())
    shutil.rmtree(folder / "parts", ignore_errors=True)
