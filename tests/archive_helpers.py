"""Small sensor archives for the archive tests: CSV folder trees, HDF5 files, Zarr stores.

Levels come from :func:`levels_helpers.sensor_levels`; the checkpoint is the
tiny one of the level tests (:func:`levels_helpers.make_checkpoint`), shared
through the same session folder.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from levels_helpers import make_checkpoint, sensor_levels

CENTRES = [1000 * 10 ** ((i - 17) / 10) for i in range(29)]
PERIOD = 0.125
START = datetime(2024, 5, 1, 22, 0, 0)


def checkpoint_for(factory: pytest.TempPathFactory) -> Path:
    """The session's tiny ``cense -> pann`` checkpoint (trained once, shared with other tests)."""
    folder = factory.getbasetemp() / "levels-checkpoint"
    best = folder / "run" / "best.pt"
    return best if best.is_file() else make_checkpoint(folder)


def write_csv(path: Path, levels: np.ndarray, start: datetime, *,
              gap_after: int | None = None, gap_s: float = 0.0) -> Path:
    """A sensor CSV with ISO 8601 UTC times; NaN levels become empty cells.

    ``gap_after``: frames from this index on start ``gap_s`` seconds later.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fh.write("time," + ",".join(f"{c:.4g}" for c in CENTRES) + "\n")
        for i, row in enumerate(levels):
            extra = gap_s if gap_after is not None and i >= gap_after else 0.0
            stamp = start + timedelta(seconds=PERIOD * i + extra)
            cells = ["" if np.isnan(v) else f"{v:.2f}" for v in row]
            fh.write(stamp.isoformat(timespec="milliseconds") + "Z," + ",".join(cells) + "\n")
    return path


def csv_tree(root: Path, sensors: dict[str, int], *, minutes: float = 5.0) -> Path:
    """``root/<sensor>/<start>.csv``: per sensor that many consecutive files of ``minutes`` each."""
    frames = round(minutes * 60 / PERIOD)
    for s, (sensor, files) in enumerate(sensors.items()):
        for f in range(files):
            levels = sensor_levels(minutes * 60, seed=10 * s + f)
            start = START + timedelta(minutes=minutes * f)
            write_csv(root / sensor / f"{start:%Y%m%dT%H%M%S}.csv", levels[:frames], start)
    return root


def hdf5_archive(path: Path, sensors: dict[str, float], *, start: str = "2024-05-01T22:30:00Z"
                 ) -> Path:
    """One dataset ``(frames, 29)`` per sensor (``seconds`` of levels), attribute ``start``."""
    import h5py

    with h5py.File(path, "w") as h5:
        for s, (sensor, seconds) in enumerate(sensors.items()):
            dataset = h5.create_dataset(sensor, data=sensor_levels(seconds, seed=s))
            dataset.attrs["start"] = start
    return path
