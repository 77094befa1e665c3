"""Pipeline: the end-to-end tasks composed from the layers below.

Owns classification of audio with a teacher through a transcoder
(:mod:`~specxform.pipeline.classify`) and the demos
(:mod:`~specxform.pipeline.demo`, :mod:`~specxform.pipeline.demo_teacher`).
The CLI and the benchmarks call these; they add no logic of their own.

May import: every layer except the CLI.
"""
