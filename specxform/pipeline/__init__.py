"""Pipeline: the end-to-end tasks composed from the layers below.

Owns training a (source, target) pair, the one entry point behind ``specxform
train``, the demo and the benchmarks (:func:`specxform.pipeline.training.train_pair`),
classification of audio with a teacher through a transcoder
(:mod:`~specxform.pipeline.classify`) and the demos
(:mod:`~specxform.pipeline.demo`, :mod:`~specxform.pipeline.demo_teacher`).
The CLI and the benchmarks call these; they add no logic of their own.

May import: every layer except the CLI.
"""

from specxform.pipeline.training import PairRun, pair_student, run_folder, train_pair

__all__ = ["PairRun", "pair_student", "run_folder", "train_pair"]
