"""Evaluation: how well a transcoder serves its teacher.

Owns the metrics with their bootstrap intervals
(:mod:`~specxform.evaluation.metrics`: PtoPa-FC, KL, Mel MSE), the comparison
of methods on one split (:mod:`~specxform.evaluation.comparison`), the
downstream probe on true against transcoded Mels
(:mod:`~specxform.evaluation.downstream`, with its folds
:mod:`~specxform.evaluation.folds` and probe :mod:`~specxform.evaluation.probe`) and the figures
(:mod:`~specxform.evaluation.figures`, :mod:`~specxform.evaluation.plotting`).

May import: everything below it (contracts, transcoders, training, api).
Never the levels, the pipeline, the archive or the CLI.
"""
