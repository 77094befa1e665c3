"""Training: teacher-student distillation of a transcoder.

Owns the feature cache of source levels, target Mels and teacher outputs
(:mod:`~specxform.training.cache`), the losses
(:mod:`~specxform.training.losses`), the resumable training loop
(:mod:`~specxform.training.trainer`), its checkpoint format
(:mod:`~specxform.training.checkpoint`), its log (:mod:`~specxform.training.run_log`)
and multi-process
training (:mod:`~specxform.training.distributed`).

May import: the contracts and mechanisms (errors, representations, io, audio,
weights, registry, plugins, teachers, datasets) and :mod:`specxform.transcoders`.
Never the evaluation, the pipeline or the CLI.
"""
