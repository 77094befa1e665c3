"""Classify a sensor network's whole archive of levels: stores in, Parquet out, on Dask.

- :mod:`~specxform.archive.stores`: the archive layouts (folder trees of level
  files, HDF5 with one node per sensor, Zarr with a time axis) cut into
  chunks, the units of work;
- :mod:`~specxform.archive.mapping`: the map function :func:`classify_chunk`,
  pure, for any engine (Dask, Ray, Beam or a plain loop);
- :mod:`~specxform.archive.output`: the Parquet output folder, written so
  that a run resumes and nothing is read half-written;
- :mod:`~specxform.archive.runner`: :func:`classify_archive` on a
  ``dask.distributed`` cluster;
- :mod:`~specxform.archive.convert`: level files into a Zarr store chunked by time.

They need the ``archive`` extra (``pip install 'specxform[archive]'``:
dask.distributed, pyarrow, zarr). See ``docs/archives.md``.
"""

from __future__ import annotations

from specxform.archive.mapping import (
    ChunkResult,
    HourlyPresence,
    MapSettings,
    ModelSpec,
    chunk_histogram,
    classify_chunk,
    merge_histograms,
    offset_from_histogram,
    window_schema,
)
from specxform.archive.output import OutputFolder, read_failures, read_hourly, read_windows
from specxform.archive.stores import Archive, Chunk, open_archive

__all__ = [
    "Archive",
    "Chunk",
    "ChunkResult",
    "HourlyPresence",
    "MapSettings",
    "ModelSpec",
    "OutputFolder",
    "chunk_histogram",
    "classify_chunk",
    "merge_histograms",
    "offset_from_histogram",
    "open_archive",
    "read_failures",
    "read_hourly",
    "read_windows",
    "window_schema",
]
