"""Stored levels: what monitoring networks keep instead of audio.

Owns the readers of level files (CSV, NPY, Cense exports) with their
validation and windowing (:mod:`~specxform.levels.readers`) and the
classification of stored levels into per-window classes with their reports
(:mod:`~specxform.levels.classify`).

May import: everything up to :mod:`specxform.api`. Never the evaluation, the
pipeline, the archive or the CLI.
"""
