"""Stored levels: what monitoring networks keep instead of audio.

Owns the readers of level files (CSV, NPY, HDF5, Cense exports) and their
validation (:mod:`~specxform.levels.readers`), the cutting of levels into
windows that never cross a gap (:mod:`~specxform.levels.windows`), the
statistics of stored levels (broadband level, its histogram:
:mod:`~specxform.levels.statistics`), the classification of stored levels into
per-window classes (:mod:`~specxform.levels.classify`) and the reports of those
classes: records, CSV/JSON files, timelines, runs (:mod:`~specxform.levels.reports`).

May import: everything up to :mod:`specxform.api`, and
:mod:`specxform.evaluation.plotting` for the timeline figure. Never the rest of
the evaluation, the pipeline, the archive or the CLI.
"""
