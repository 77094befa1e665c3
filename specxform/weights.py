"""Official weight files: descriptions, search path, cache, verified download, safe loading.

A :class:`WeightFile` describes one published file (where it comes from and how
to check it). Plugins register the files their teachers load with
``registry.add_weight_file(WeightFile(...))``; :func:`get` and
:func:`catalogue` read that catalogue from the process-wide registry, so the
core names no file of its own. Every other function takes a
:class:`WeightFile`, so a test can describe a file (for example one served
from ``127.0.0.1``) without registering it.

A file is looked for, in order:

1. in the folders of ``$SPECXFORM_WEIGHTS_PATH`` (separated by
   :data:`os.pathsep`), under its official file name: a read-only collection
   of official files that needs no download (``./dev`` points it at
   ``../shared/weights`` when that folder exists);
2. in the cache, ``<home>/weights/``, where ``<home>`` is ``$SPECXFORM_HOME``
   when set, else the platform's user cache directory for ``specxform``
   (``~/.cache/specxform`` on Linux).

:func:`resolve` verifies the file it returns, from either place, by size and
checksum (or by parsing it when nothing is published), once per process and
file version. :func:`fetch` downloads into a ``.part`` file next to the
target, resumes it with an HTTP ``Range`` request after an interruption,
verifies size and checksum, and only then renames it into place, so the cache
never holds a half-written or corrupt file under the final name.

Checkpoints are read with ``torch.load(weights_only=True)``: a file that needs
arbitrary pickled Python objects to load is refused with an explanation.
"""

from __future__ import annotations

import csv
import hashlib
import os
import pickle
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs
import platformdirs

from specxform import plugins
from specxform.errors import CheckpointError, WeightsError
from specxform.io import move_into_place
from specxform.progress import ProgressCallback, report
from specxform.weight_file import WeightFile

if TYPE_CHECKING:  # imported on use: listing weight files must stay fast
    import http.client

__all__ = [
    "SEARCH_PATH_ENV",
    "Location",
    "WeightFile",
    "cache_path",
    "catalogue",
    "fetch",
    "find",
    "first_found",
    "get",
    "home",
    "load_torch_file",
    "path",
    "resolve",
    "resolve_any",
    "search_path",
    "verify",
    "verify_once",
    "weights_dir",
]

#: Environment variable listing folders of official weight files, searched before the cache.
SEARCH_PATH_ENV = "SPECXFORM_WEIGHTS_PATH"

_CHUNK = 1 << 20  # 1 MiB per read: a progress update per chunk is cheap at this size
_USER_AGENT = "specxform (+https://pypi.org/project/specxform)"


def __getattr__(name: str) -> Any:
    if name == "CATALOGUE":
        raise AttributeError(
            "specxform.weights.CATALOGUE was removed: plugins register their weight files "
            "with registry.add_weight_file(WeightFile(...)); read them with "
            "specxform.weights.catalogue() or specxform.weights.get(name)."
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ------------------------------------------------------------------------ catalogue


def get(name: str) -> WeightFile:
    """The weight file a plugin registered as ``name`` (process-wide registry).

    Raises
    ------
    UnknownNameError
        If no plugin registered ``name``; the message lists the closest names.
    """
    return plugins.get_registry().weight_file(name)


def catalogue() -> list[WeightFile]:
    """Every registered weight file, sorted by name (process-wide registry)."""
    return plugins.get_registry().weight_files()


# -------------------------------------------------------------------- locations


def home() -> Path:
    """specxform's cache root: ``$SPECXFORM_HOME`` or the user cache dir ``.../specxform``."""
    env = os.environ.get("SPECXFORM_HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("specxform"))


def weights_dir(root: Path | None = None) -> Path:
    """Cache directory of weight files (``<home>/weights`` unless ``root`` is given)."""
    return Path(root) if root is not None else home() / "weights"


def search_path() -> list[Path]:
    """The folders of ``$SPECXFORM_WEIGHTS_PATH``, in order (empty entries skipped).

    Folders are separated by :data:`os.pathsep` (``:`` on Linux and macOS,
    ``;`` on Windows); ``~`` is expanded. A folder that does not exist is kept
    (it simply holds nothing).
    """
    value = os.environ.get(SEARCH_PATH_ENV, "")
    return [Path(entry).expanduser() for entry in value.split(os.pathsep) if entry.strip()]


def cache_path(weight: WeightFile, root: Path | None = None) -> Path:
    """Where ``weight`` lives (or will live) in the cache; the file may not exist."""
    return weights_dir(root) / weight.filename


@attrs.frozen
class Location:
    """Where a weight file was found.

    Attributes
    ----------
    path : Path
        The file.
    where : {"search path", "cache"}
        A folder of ``$SPECXFORM_WEIGHTS_PATH``, or the cache.
    size_ok : bool
        Whether its size is the published one (true when none is published):
        the cheap check of listings; :func:`verify` also compares digests.
    """

    path: Path
    where: Literal["search path", "cache"]
    size_ok: bool


def _location(weight: WeightFile, file: Path, where: Literal["search path", "cache"]
              ) -> Location | None:
    if not file.is_file():
        return None
    return Location(file, where, weight.size is None or file.stat().st_size == weight.size)


def find(weight: WeightFile, root: Path | None = None) -> Location | None:
    """The first copy of ``weight``: on the search path, else in the cache; None if neither.

    Only the file name is matched and the size compared (:attr:`Location.size_ok`);
    nothing is read, so listings stay fast. :func:`resolve` verifies the file.
    """
    for folder in search_path():
        found = _location(weight, folder / weight.filename, "search path")
        if found is not None:
            return found
    return _location(weight, cache_path(weight, root), "cache")


def path(weight: WeightFile, root: Path | None = None) -> Path:
    """Where ``weight`` is: its first copy (:func:`find`), else its place in the cache.

    The returned file may not exist; :func:`cache_path` is always the cache location.
    """
    found = find(weight, root)
    return found.path if found is not None else cache_path(weight, root)


# --------------------------------------------------------------------------- verify


def _digests(file: Path) -> dict[str, str]:
    md5 = hashlib.md5(usedforsecurity=False)
    sha = hashlib.sha256()
    with file.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            md5.update(chunk)
            sha.update(chunk)
    return {"md5": md5.hexdigest(), "sha256": sha.hexdigest()}


def _check_parses(weight: WeightFile, file: Path) -> None:
    """Best available check for a file without a published checksum: it parses."""
    suffix = file.suffix.lower() if file.suffix != ".part" else Path(file.stem).suffix.lower()
    try:
        if suffix in (".h5", ".hdf5"):
            import h5py

            found: list[str] = []

            def collect(name: str, node: object) -> None:
                if isinstance(node, h5py.Dataset):
                    found.append(name)

            with h5py.File(file, "r") as h5:
                h5.visititems(collect)
            if not found:
                raise ValueError("no datasets in the file")
        elif suffix == ".csv":
            with file.open(newline="", encoding="utf-8") as fh:
                rows = list(csv.reader(fh))
            if len(rows) < 2:
                raise ValueError("fewer than two rows")
        elif suffix in (".pth", ".pt", ".ckpt"):
            load_torch_file(file)
    except (OSError, ValueError, UnicodeDecodeError, CheckpointError) as exc:
        raise WeightsError(
            f"{weight.filename} at {file} does not parse ({exc}); it is probably truncated or "
            f"not the official file. Delete it and fetch it again from {weight.url}."
        ) from exc


def verify(weight: WeightFile, file: Path | None = None, *, full: bool = True) -> Path:
    """Check that a file is the one ``weight`` describes.

    Parameters
    ----------
    weight : WeightFile
        The expected file.
    file : Path, optional
        File to check; defaults to its first copy on the search path or in the
        cache (:func:`path`).
    full : bool
        Also compare digests (reads the whole file: ~1 s for 300 MB). With
        ``False`` only the size is compared when it is known. Files with neither a
        size nor a digest are always checked by parsing them.

    Returns
    -------
    Path
        The verified file.

    Raises
    ------
    WeightsError
        If the file is missing, has the wrong size or digest, or does not parse.
    """
    file = Path(file) if file is not None else path(weight)
    if not file.is_file():
        raise WeightsError(f"{weight.filename} not found at {file}.")
    actual = file.stat().st_size
    if weight.size is not None and actual != weight.size:
        raise WeightsError(
            f"{weight.filename} at {file} has {actual:,} bytes, expected {weight.size:,}; "
            f"delete it and fetch it again from {weight.url}."
        )
    if full and weight.has_checksum:
        digests = _digests(file)
        for algo in ("md5", "sha256"):
            expected = getattr(weight, algo)
            if expected is not None and digests[algo] != expected:
                raise WeightsError(
                    f"{weight.filename} at {file} has {algo} {digests[algo]}, expected "
                    f"{expected}: the file is corrupt or not the official one. Delete it and "
                    f"fetch it again from {weight.url}."
                )
    if weight.size is None and not weight.has_checksum:
        _check_parses(weight, file)
    return file


#: Files :func:`verify_once` has verified in this process, by file version and description.
_VERIFIED: set[tuple[object, ...]] = set()


def verify_once(weight: WeightFile, file: Path) -> Path:
    """:func:`verify` with digests, remembered for the process.

    A success is remembered under the file's resolved path, modification time
    and size and the description's size and digests, so a file is read in
    full once per process (about 1 s for 300 MB) however often it is
    resolved, and again after it changes.

    Raises
    ------
    WeightsError
        As :func:`verify`; failures are not remembered.
    """
    file = Path(file)
    key = _version_key(weight, file)
    if key is None or key not in _VERIFIED:
        verify(weight, file, full=True)  # a missing file raises the usual message
        _remember(weight, file)
    return file


def _version_key(weight: WeightFile, file: Path) -> tuple[object, ...] | None:
    try:
        stat = file.stat()
    except OSError:
        return None
    return (str(file.resolve()), stat.st_mtime_ns, stat.st_size,
            weight.size, weight.md5, weight.sha256)


def _remember(weight: WeightFile, file: Path) -> None:
    key = _version_key(weight, file)
    if key is not None:
        _VERIFIED.add(key)


# ---------------------------------------------------------------------------- fetch


def _offline_message(weight: WeightFile, target: Path, reason: object) -> str:
    return (
        f"cannot download {weight.filename} from {weight.url} ({reason}). "
        f"Download it yourself and put it at {target} (the cache directory is "
        f"{target.parent}; set SPECXFORM_HOME to move it) or in a folder listed in "
        f"{SEARCH_PATH_ENV}, or pass the file explicitly with `weights=PATH`."
    )


#: Where downloads report when their caller passes no ``progress``: the command line sets
#: one (:func:`downloads_report_to`), so that a teacher's first download shows a bar.
_DOWNLOAD_PROGRESS: ContextVar[ProgressCallback | None] = ContextVar("download_progress",
                                                                     default=None)


@contextmanager
def downloads_report_to(progress: ProgressCallback | None) -> Iterator[None]:
    """Within the block, downloads without their own ``progress`` report to ``progress``."""
    token = _DOWNLOAD_PROGRESS.set(progress)
    try:
        yield
    finally:
        _DOWNLOAD_PROGRESS.reset(token)


def _open(weight: WeightFile, offset: int, timeout: float) -> http.client.HTTPResponse:
    import urllib.request

    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(weight.url, headers=headers)
    return urllib.request.urlopen(request, timeout=timeout)


def _resume_offset(response: http.client.HTTPResponse, offset: int) -> int:
    """Byte offset the response body starts at (0 when the server ignored ``Range``)."""
    if offset and response.status == 206:
        match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
        if match and int(match.group(1)) == offset:
            return offset
    return 0


def _download_once(
    weight: WeightFile, part: Path, progress: ProgressCallback | None, timeout: float
) -> bool:
    """One HTTP request appending to ``part``; returns whether the body was complete."""
    import urllib.error

    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _open(weight, offset, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not offset:
            raise
        if offset == weight.size:
            return True  # the .part already holds the whole file
        part.unlink()  # range not satisfiable: the .part is stale, start over
        return False
    with response:
        start = _resume_offset(response, offset)
        length = response.headers.get("Content-Length")
        expected_end = start + int(length) if length is not None else weight.size
        task, done = f"downloading {weight.filename}", start
        report(progress, task, done, expected_end)
        with part.open("r+b" if start else "wb") as fh:
            fh.seek(start)
            fh.truncate()
            while chunk := response.read(_CHUNK):
                fh.write(chunk)
                done += len(chunk)
                report(progress, task, done, expected_end)
            written = fh.tell()
    # http.client returns EOF quietly when the server closes early: compare lengths.
    return expected_end is None or written >= expected_end


def fetch(
    weight: WeightFile,
    *,
    root: Path | None = None,
    progress: ProgressCallback | None = None,
    timeout: float = 60.0,
    attempts: int = 5,
) -> Path:
    """Download ``weight`` into the cache (if not already there) and verify it.

    The download goes to ``<target>.part``; an interrupted transfer is resumed
    with an HTTP ``Range`` request (up to ``attempts`` requests, and again on the
    next call, since the ``.part`` is kept). After the transfer the ``.part`` is
    verified (size and digest) and atomically renamed to the target. A file that
    fails verification is deleted. Two processes fetching the same file at the
    same time are not coordinated (no lock): run one fetch first.

    Parameters
    ----------
    weight : WeightFile
        What to download.
    root : Path, optional
        Cache directory; defaults to :func:`weights_dir`.
    progress : callable, optional
        Receives :class:`~specxform.progress.ProgressEvent` values in bytes
        (default: the callback of :func:`downloads_report_to`, if any).
    timeout : float
        Socket timeout per request, in seconds.
    attempts : int
        Requests to make before giving up on an interrupted transfer.

    Returns
    -------
    Path
        The verified file in the cache.

    Raises
    ------
    WeightsError
        When offline (the message says where to put the file by hand and
        mentions ``--weights PATH``), on an HTTP error, or when verification fails.
    """
    target = cache_path(weight, root)
    if target.is_file():
        try:
            return verify_once(weight, target)
        except WeightsError:
            target.unlink()  # a corrupt cached file is replaced, not trusted
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    if weight.size is not None and part.exists() and part.stat().st_size > weight.size:
        part.unlink()
    _transfer(weight, part, target, progress=progress, timeout=timeout, attempts=attempts)
    try:
        verify(weight, part)
    except WeightsError:
        part.unlink(missing_ok=True)
        raise
    move_into_place(part, target)  # keeps the modification time: remember it as verified
    _remember(weight, target)
    return target


def _transfer(
    weight: WeightFile, part: Path, target: Path, *, progress: ProgressCallback | None,
    timeout: float, attempts: int
) -> None:
    import http.client
    import urllib.error

    reason: object = None
    progress = progress if progress is not None else _DOWNLOAD_PROGRESS.get()
    for _ in range(max(1, attempts)):
        try:
            if _download_once(weight, part, progress, timeout):
                return
            reason = "the server closed the connection early"
        except urllib.error.HTTPError as exc:
            raise WeightsError(
                f"HTTP {exc.code} {exc.reason} for {weight.url}. "
                + _offline_message(weight, target, f"HTTP {exc.code}")
            ) from exc
        except urllib.error.URLError as exc:
            raise WeightsError(_offline_message(weight, target, exc.reason)) from exc
        except (http.client.HTTPException, ConnectionError, TimeoutError) as exc:
            reason = exc
    raise WeightsError(
        f"download of {weight.filename} was interrupted {attempts} times ({reason}); the "
        f"partial file {part} is kept and the next fetch resumes it. "
        + _offline_message(weight, target, "interrupted")
    )


def resolve(
    weight: WeightFile,
    explicit: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    root: Path | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Find the file to load: ``--weights PATH``, the search path, the cache, or a download.

    Parameters
    ----------
    weight : WeightFile
        The official file.
    explicit : path-like, optional
        A file the user chose (``--weights PATH``); used as is, only checked to exist,
        so that fine-tuned or re-saved weights can be loaded.
    download : bool
        Download when the file is neither on the search path nor cached; with
        ``False`` a missing file raises.
    root : Path, optional
        Cache directory; defaults to :func:`weights_dir`.
    progress : callable, optional
        Download progress, as for :func:`fetch`.

    Returns
    -------
    Path
        An existing file. One found on the search path or in the cache is
        verified by size and checksum (:func:`verify_once`: the digest is
        computed once per process and file version).

    Raises
    ------
    WeightsError
        If ``explicit`` does not exist, the copy found fails verification (the
        message says where it was found), or the file cannot be downloaded.
    """
    if explicit is not None:
        file = Path(explicit).expanduser()
        if not file.is_file():
            raise WeightsError(
                f"`weights={file}`: no such file (expected {weight.filename}, "
                f"official copy at {weight.url})."
            )
        return file
    found = find(weight, root)
    if found is not None:
        try:
            return verify_once(weight, found.path)
        except WeightsError as exc:
            if found.where == "cache":
                raise
            raise WeightsError(
                f"{weight.name}: the copy on the search path ({SEARCH_PATH_ENV}) is not the "
                f"official file: {exc} Since it is on the search path, replace it there, or "
                f"take {found.path.parent} off {SEARCH_PATH_ENV}."
            ) from exc
    if not download:
        raise WeightsError(
            _offline_message(weight, cache_path(weight, root), "downloads are disabled")
        )
    return fetch(weight, root=root, progress=progress)


def first_found(alternatives: Sequence[WeightFile], root: Path | None = None) -> WeightFile | None:
    """The first of ``alternatives`` with a copy on the search path or in the cache.

    Only names and sizes are looked at (:func:`find`), so listings stay fast;
    ``None`` when none of them is there.
    """
    return next((w for w in alternatives if find(w, root) is not None), None)


def resolve_any(
    alternatives: Sequence[WeightFile],
    explicit: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    root: Path | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Find the file to load among interchangeable files (a teacher's ``weights_any``).

    ``explicit`` (``--weights PATH``) wins as in :func:`resolve`. Otherwise the
    first of ``alternatives``, in order, that has a copy on the search path or
    in the cache is verified and returned; when none has one, the first is
    downloaded.

    Parameters
    ----------
    alternatives : sequence of WeightFile
        Files any one of which the model loads, in order of preference.
    explicit, download, root, progress
        As for :func:`resolve`.

    Returns
    -------
    Path
        An existing (and, unless ``explicit``, verified) file.

    Raises
    ------
    WeightsError
        If ``alternatives`` is empty, a copy found fails verification, or none is
        present and the first cannot be downloaded (or ``download`` is false); the
        message then names every file that would do.
    """
    if not alternatives:
        raise WeightsError("resolve_any needs at least one weight file, got none.")
    if explicit is not None:
        return resolve(alternatives[0], explicit, root=root)
    chosen = first_found(alternatives, root)
    if chosen is not None:
        return resolve(chosen, download=False, root=root)
    if download:
        try:
            return resolve(alternatives[0], root=root, progress=progress)
        except WeightsError as exc:
            raise WeightsError(f"{exc} {_any_hint(alternatives, root)}") from exc
    raise WeightsError(
        f"none of {', '.join(w.filename for w in alternatives)} is on {SEARCH_PATH_ENV} "
        f"({os.pathsep.join(map(str, search_path())) or 'unset'}) or in the cache "
        f"({weights_dir(root)}), and downloads are disabled. {_any_hint(alternatives, root)}"
    )


def _any_hint(alternatives: Sequence[WeightFile], root: Path | None) -> str:
    files = "; ".join(f"{w.filename} ({w.url})" for w in alternatives)
    return (f"Any one of these files will do: {files}. Put one in a folder listed in "
            f"{SEARCH_PATH_ENV} or in {weights_dir(root)}, or pass it with `weights=PATH`.")


# ----------------------------------------------------------------------------- load


def load_torch_file(file: str | os.PathLike[str]) -> Any:
    """Load a PyTorch checkpoint safely (``weights_only=True``) on the CPU.

    Raises
    ------
    WeightsError
        If the file does not exist.
    CheckpointError
        If the file needs arbitrary pickled objects (code) to load, or is not a
        PyTorch file at all.
    """
    file = Path(file)
    if not file.is_file():
        raise WeightsError(f"checkpoint {file} does not exist.")
    try:
        import torch  # deferred: listing weight files must not pay torch's import time

        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first_line = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
        raise CheckpointError(
            f"{file} is not a plain weights file: loading it would run pickled Python code, "
            f"which specxform refuses (torch.load(weights_only=True); {first_line}). "
            f"If you trust its origin, re-save only its tensors, e.g. "
            f"torch.save({{'model': model.state_dict()}}, 'clean.pth'), and load that."
        ) from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(
            f"{file} is not a readable PyTorch checkpoint ({exc}); it may be truncated: "
            f"delete it and download it again."
        ) from exc
