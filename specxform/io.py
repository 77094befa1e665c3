"""Array files: spectrograms as ``.npy``, ``.npz`` or HDF5, written atomically.

A file holds either one array or a *collection* of named arrays (one per
input clip):

- ``.npy``: one array, no metadata.
- ``.npz``: one array under the key ``"levels"`` (source representations) or
  ``"mel"`` (targets), or a collection under ``"levels/<name>"``; the key
  ``"representation"`` holds :meth:`Representation.to_dict` as a JSON string.
- ``.h5`` / ``.hdf5``: a dataset ``levels`` (or ``mel``), or a group of that
  name with one dataset per ``<name>``; the root attribute ``representation``
  holds the same JSON.

Every write goes to a temporary file in the destination folder and is renamed
into place with :func:`os.replace`, so an error never leaves a partial file
under the final name. Reading validates rank, band count and finiteness and
raises :class:`~specxform.errors.InputError` naming the file and the fix.

Outputs of a command are locked (:func:`output_lock`): a second process that
writes to the same folder or file is refused with
:class:`~specxform.errors.OutputBusyError` instead of mixing its files with the
first one's. Staging folders, lock files and temporary files have hidden names
(a leading ``.``), and :func:`visible_files`, which every reader of folders
uses, skips hidden names, so a run killed mid-way never leaves anything a later
command reads as data; the next run into that folder deletes the leftovers.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from specxform.errors import InputError, OutputBusyError, SpecError
from specxform.representations.specs import Representation

#: Array file formats by name and the suffixes that select them.
FORMATS = {"npy": (".npy",), "npz": (".npz",), "h5": (".h5", ".hdf5")}
ARRAY_SUFFIXES = tuple(s for suffixes in FORMATS.values() for s in suffixes)
_KEYS = ("levels", "mel")
_META = "representation"
#: Lock file of an output folder (a single output file ``x.h5`` has ``.x.h5.specxform-lock``).
LOCK_NAME = ".specxform-lock"
#: Name prefix of the staging folders of :class:`StagedFolder`.
STAGING_PREFIX = ".specxform-staging-"
#: errno values that mean "this location cannot be written" (a bad ``-o``, exit status 2).
_UNWRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}


def visible_files(folder: str | Path) -> list[Path]:
    """Every file under ``folder`` (recursively, sorted) whose path below it has no hidden part.

    A name starting with ``.`` anywhere below ``folder`` is skipped: the staging
    folders, lock files and temporary files that specxform writes (a killed run
    can leave them behind), and those of other tools (``.git``, ``.DS_Store``).
    Symbolic links to files are followed; links to folders are not entered
    (as :meth:`pathlib.Path.rglob`).
    """
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root) / f for f in files if not f.startswith(".")]
    return sorted(p for p in found if p.is_file())


def _unwritable(path: Path, exc: OSError) -> OSError | InputError:
    """The error to raise when creating something for the output ``path`` failed."""
    reason = exc.strerror or str(exc)
    if exc.errno in _UNWRITABLE or isinstance(exc, PermissionError):
        return InputError(
            f"-o {path}: cannot write there ({reason.lower()}); choose a writable folder for -o, "
            "or make this one writable."
        )
    return OSError(exc.errno, f"cannot write -o {path} ({reason}); free space or choose "
                   "another -o")


def _lock_file(path: Path, folder: bool) -> Path:
    return path / LOCK_NAME if folder else path.with_name(f".{path.name}.specxform-lock")


def _try_lock(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting; False when another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(lock: Path) -> str:
    try:
        text = lock.read_text().strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""


@contextlib.contextmanager
def output_lock(path: str | Path, *, folder: bool) -> Iterator[Path]:
    """Hold the output ``path`` (a folder, or one file) for this process while the block runs.

    The lock is an exclusive ``flock`` on a hidden file: ``path/.specxform-lock``
    for a folder, ``.<name>.specxform-lock`` beside a file. The operating system
    releases it when the process dies, so a killed run never blocks the next
    one. The lock file is deleted on exit; missing parent folders are created
    (and removed again if the block fails and leaves them empty).

    Raises
    ------
    OutputBusyError
        Another process holds the lock: it is writing to the same output.
    InputError
        The location cannot be written (read-only, permission denied).
    """
    path = Path(path)
    lock = _lock_file(path, folder)
    created = _make_folders(lock.parent, path)
    ok = False
    try:
        fd = _acquire(lock, path)
        try:
            yield lock
            ok = True
        finally:
            with contextlib.suppress(OSError):
                lock.unlink()  # before closing: a waiter holding the old file sees it is gone
            os.close(fd)
    finally:
        if not ok:
            for made in created:
                with contextlib.suppress(OSError):
                    made.rmdir()  # only when empty


def _make_folders(folder: Path, target: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, deepest first."""
    missing = []
    for parent in (folder, *folder.parents):
        if parent.exists():
            break
        missing.append(parent)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InputError(f"-o {target}: a file is in the way ({folder} or a folder above it is "
                         "a file, not a folder); give another -o.") from None
    except OSError as exc:
        raise _unwritable(target, exc) from exc
    return missing


def _acquire(lock: Path, target: Path) -> int:
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise _unwritable(target, exc) from exc
        if not _try_lock(fd):
            os.close(fd)
            raise OutputBusyError(
                f"another specxform run{_holder(lock)} is writing to -o {target}; wait for it "
                "to finish, or give another -o (two runs into one output would mix their files)."
            )
        try:  # the previous holder may have deleted the file between our open and lock
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            return fd
        os.close(fd)


def file_format(path: str | Path) -> str:
    """The format name (``"npy"``, ``"npz"`` or ``"h5"``) that ``path``'s suffix selects."""
    suffix = Path(path).suffix.lower()
    for name, suffixes in FORMATS.items():
        if suffix in suffixes:
            return name
    raise InputError(
        f"{path}: unknown array file type {suffix or '(no suffix)'!r}; "
        f"use one of {', '.join(ARRAY_SUFFIXES)}."
    )


def array_key(rep: Representation | None) -> str:
    """Key an array of ``rep`` is stored under: ``"mel"`` for targets, else ``"levels"``."""
    if rep is not None and "target" in rep.roles and "source" not in rep.roles:
        return "mel"
    return "levels"


def check_levels(array: Any, rep: Representation | None = None, *, name: str = "array"
                 ) -> np.ndarray:
    """Validate a spectrogram and return it as float32.

    Parameters
    ----------
    array : array_like, shape (frames, bands) or (batch, frames, bands)
        Values in ``rep.unit``.
    rep : Representation, optional
        When given, the band count must equal ``rep.n_bands``.
    name : str
        What to call the array in error messages (a file name).

    Raises
    ------
    InputError
        On a wrong rank or band count, no frames, a non-numeric dtype, or NaN/inf.
    """
    array = np.asarray(array)
    what = f"{rep.name} " if rep is not None else ""
    bands = rep.n_bands if rep is not None else "bands"
    if array.ndim not in (2, 3):
        raise InputError(
            f"{name}: expected {what}levels of shape (frames, {bands}) or (batch, frames, "
            f"{bands}), got shape {array.shape}; save one spectrogram per array."
        )
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise InputError(f"{name}: levels must be numeric, got dtype {array.dtype}.")
    if rep is not None and array.shape[-1] != rep.n_bands:
        raise InputError(
            f"{name}: {array.shape[-1]} bands, but {rep.name!r} has {rep.n_bands}; "
            f"pass the representation the array was computed with (see `specxform list`)."
        )
    if array.shape[-2] == 0:
        raise InputError(f"{name}: the array holds no frames; give at least one frame.")
    finite = np.isfinite(array)
    if not finite.all():
        raise InputError(
            f"{name}: {array.size - int(finite.sum())} values are NaN or infinite; "
            "fill or drop those frames before transcoding."
        )
    return array.astype(np.float32, copy=False)


# ----------------------------------------------------------------------------
# Atomic writes
# ----------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds.

    The temporary file lives in the destination folder (created if needed) so
    that :func:`os.replace` is an atomic rename; on any exception it is
    deleted and ``path`` is left as it was.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _unwritable(path, exc) from exc
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates the file private (0600); give it the permissions open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        move_into_place(Path(tmp), path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    Parameters
    ----------
    path : path-like
        The destination; its folder is created if needed.
    data : bytes
        The whole content.

    Returns
    -------
    Path
        ``path``.
    """
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def move_into_place(finished: str | Path, path: str | Path) -> Path:
    """Rename the complete file ``finished`` onto ``path`` in one atomic step.

    The last step of every atomic write (:func:`atomic_write`, and a verified
    download's ``.part`` in :func:`specxform.weights.fetch`): ``finished`` must
    be in the same folder as ``path`` (same file system), so that readers see
    the old file or the whole new one. The modification time is kept.

    Returns
    -------
    Path
        ``path``.
    """
    os.replace(finished, path)
    return Path(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _metadata(rep: Representation | None) -> str:
    return json.dumps(rep.to_dict() if rep is not None else None)


def write_array(path: str | Path, array: np.ndarray, rep: Representation | None = None) -> Path:
    """Write one spectrogram atomically; the format follows the suffix.

    Parameters
    ----------
    path : path-like
        ``.npy``, ``.npz``, ``.h5`` or ``.hdf5``.
    array : np.ndarray, shape (frames, bands) or (batch, frames, bands)
    rep : Representation, optional
        Recorded as metadata (``.npz``, ``.h5``) and used to check the band count.
    """
    path = Path(path)
    array = check_levels(array, rep, name=str(path))
    key = array_key(rep)
    fmt = file_format(path)
    with atomic_write(path) as tmp:
        if fmt == "npy":
            with tmp.open("wb") as fh:
                np.save(fh, array)
        elif fmt == "npz":
            entries: dict[str, Any] = {key: array, _META: np.array(_metadata(rep))}
            with tmp.open("wb") as fh:
                np.savez(fh, **entries)
        else:
            _write_h5(tmp, {key: array}, rep)
    return path


def write_arrays(path: str | Path, arrays: Mapping[str, np.ndarray],
                 rep: Representation | None = None) -> Path:
    """Write a collection of named spectrograms to one ``.npz`` or ``.h5`` file, atomically.

    Parameters
    ----------
    path : path-like
        ``.npz``, ``.h5`` or ``.hdf5``.
    arrays : mapping of str to np.ndarray, each (frames, bands)
        Names are stored as ``"<key>/<name>"`` (``/`` makes HDF5 sub-groups).
    rep : Representation, optional
        Recorded as metadata and used to check band counts.
    """
    path = Path(path)
    fmt = file_format(path)
    if fmt == "npy":
        raise InputError(
            f"{path}: a .npy file holds one array, not {len(arrays)}; write to a folder, "
            "or to a .npz or .h5 file."
        )
    if not arrays:
        raise InputError(f"{path}: nothing to write (no arrays).")
    key = array_key(rep)
    checked: dict[str, Any] = {
        f"{key}/{name}": check_levels(a, rep, name=name) for name, a in arrays.items()
    }
    with atomic_write(path) as tmp:
        if fmt == "npz":
            with tmp.open("wb") as fh:
                np.savez(fh, **{**checked, _META: np.array(_metadata(rep))})
        else:
            _write_h5(tmp, checked, rep)
    return path


def _write_h5(path: Path, arrays: Mapping[str, np.ndarray], rep: Representation | None) -> None:
    import h5py  # deferred: h5py is only needed for HDF5 files

    with h5py.File(path, "w") as h5:
        h5.attrs[_META] = _metadata(rep)
        for key, array in arrays.items():
            h5.create_dataset(key, data=array)


class StagedFolder:
    """Write many outputs into a folder all-or-nothing, holding the folder's lock.

    Files are written inside a hidden staging folder in ``folder`` (same file
    system, so moving them is a rename) and moved into place when the ``with``
    block succeeds. On an exception the staging folder is deleted, and so is
    ``folder`` if this object created it and it is empty. While the block runs
    the folder is locked (:func:`output_lock`), so staging folders found on
    entry are the leftovers of killed runs: they are deleted.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._staging: Path | None = None
        self._written: list[str] = []
        self._lock: contextlib.ExitStack | None = None

    def __enter__(self) -> StagedFolder:
        if self.folder.exists() and not self.folder.is_dir():
            raise InputError(
                f"{self.folder}: exists and is not a folder; give a folder, or a .npz/.h5 file."
            )
        with contextlib.ExitStack() as stack:
            stack.enter_context(output_lock(self.folder, folder=True))
            for stale in self.folder.glob(STAGING_PREFIX + "*"):
                shutil.rmtree(stale, ignore_errors=True)  # a killed run's: we hold the lock
            try:
                self._staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.folder))
            except OSError as exc:
                raise _unwritable(self.folder, exc) from exc
            self._lock = stack.pop_all()
        return self

    def path(self, relative: str) -> Path:
        """Where to write the output that will end up at ``folder / relative``."""
        if self._staging is None:
            raise RuntimeError("StagedFolder.path() called outside its with block")
        self._written.append(relative)
        target = self._staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self._staging is not None and self._lock is not None
        try:
            if exc_type is None:
                for relative in self._written:
                    final = self.folder / relative
                    final.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(self._staging / relative, final)
        except BaseException:
            exc_type, exc, tb = sys.exc_info()
            raise
        finally:
            shutil.rmtree(self._staging, ignore_errors=True)
            # Releasing the lock removes the folder again if it created it and it is empty.
            self._lock.__exit__(exc_type, exc, tb)


# ----------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------


def read_representation(path: str | Path) -> Representation | None:
    """The representation recorded in a ``.npz`` / ``.h5`` file, or None if absent.

    Only the metadata is read, not the arrays. A ``.npy`` file records none.
    """
    path = Path(path)
    fmt = file_format(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; check the path.")
    if fmt == "npy":
        return None
    try:
        if fmt == "npz":
            with np.load(path, allow_pickle=False) as data:
                text = str(data[_META]) if _META in data.files else None
        else:
            import h5py

            with h5py.File(path, "r") as h5:
                meta = h5.attrs.get(_META)
            text = None if meta is None else (meta.decode() if isinstance(meta, bytes)
                                              else str(meta))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(
            f"{path}: cannot read it as {fmt} ({exc}); the file is corrupt or not an "
            "array file; recreate it with `specxform features`."
        ) from exc
    return _parse_meta(path, text)


def read_arrays(path: str | Path, rep: Representation | None = None) -> dict[str, np.ndarray]:
    """Read every spectrogram of an array file, validated.

    Parameters
    ----------
    path : path-like
        ``.npy``, ``.npz`` or ``.h5`` written by :func:`write_array`,
        :func:`write_arrays` or by hand (``.npy``, or ``.npz`` with a key
        ``"levels"`` or ``"mel"``).
    rep : Representation, optional
        Expected representation: band counts are checked against it, and a
        file that records another representation is refused.

    Returns
    -------
    dict of str to np.ndarray, each (frames, bands) float32
        A single array is named after the file's stem; a collection keeps its names.
    """
    path = Path(path)
    arrays, stored = _read(path)
    if rep is not None and stored is not None:
        _check_same(path, stored, rep)
    return {name: check_levels(a, rep, name=f"{path}[{name}]") for name, a in arrays.items()}


def read_array(path: str | Path, rep: Representation | None = None) -> np.ndarray:
    """Read a file that holds exactly one spectrogram (see :func:`read_arrays`)."""
    arrays = read_arrays(path, rep)
    if len(arrays) != 1:
        raise InputError(
            f"{path}: holds {len(arrays)} arrays ({', '.join(list(arrays)[:3])}, ...); "
            "give a file with one array."
        )
    return next(iter(arrays.values()))


def _check_same(path: Path, stored: Representation, rep: Representation) -> None:
    if stored.name != rep.name:
        raise InputError(
            f"{path}: holds {stored.name!r} levels, not {rep.name!r}; pass {stored.name!r} "
            "as the representation (e.g. `source`)."
        )
    mine, theirs = rep.to_dict(), stored.to_dict()
    mine.pop("description"), theirs.pop("description")
    if mine != theirs:
        raise InputError(
            f"{path}: was computed with another definition of {rep.name!r} than the installed "
            "one (framing, bands or scaling differ); recompute it with `specxform features`."
        )


def _read(path: Path) -> tuple[dict[str, np.ndarray], Representation | None]:
    fmt = file_format(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; check the path.")
    try:
        if fmt == "npy":
            return {path.stem: np.load(path, allow_pickle=False)}, None
        if fmt == "npz":
            return _read_npz(path)
        return _read_h5(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(
            f"{path}: cannot read it as {fmt} ({exc}); the file is corrupt or not an "
            "array file; recreate it with `specxform features`."
        ) from exc


def _split(path: Path, entries: Mapping[str, Any]) -> dict[str, Any]:
    """Pick the single array or the collection out of a file's entries."""
    for key in _KEYS:
        if key in entries:
            return {path.stem: entries[key]}
        prefix = f"{key}/"
        items = {k[len(prefix):]: v for k, v in entries.items() if k.startswith(prefix)}
        if items:
            return items
    raise InputError(
        f"{path}: no 'levels' or 'mel' entry (found {', '.join(sorted(entries)) or 'none'}); "
        "store the array under the key 'levels'."
    )


def _parse_meta(path: Path, text: str | None) -> Representation | None:
    if text is None:
        return None
    try:
        data = json.loads(text)
        return None if data is None else Representation.from_dict(data)
    except (json.JSONDecodeError, SpecError) as exc:
        raise InputError(f"{path}: unreadable representation metadata ({exc}).") from exc


def _read_npz(path: Path) -> tuple[dict[str, np.ndarray], Representation | None]:
    with np.load(path, allow_pickle=False) as data:
        entries = {k: data[k] for k in data.files if k != _META}
        meta = str(data[_META]) if _META in data.files else None
    return _split(path, entries), _parse_meta(path, meta)


def _read_h5(path: Path) -> tuple[dict[str, np.ndarray], Representation | None]:
    import h5py

    entries: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as h5:

        def collect(name: str, node: object) -> None:
            if isinstance(node, h5py.Dataset):
                entries[name] = node[()]

        h5.visititems(collect)
        meta = h5.attrs.get(_META)
    text = meta.decode() if isinstance(meta, bytes) else meta
    return _split(path, entries), _parse_meta(path, None if text is None else str(text))
