"""Representations: what a spectrogram is, and how audio becomes one.

Owns the frozen value objects that describe a representation
(:mod:`~specxform.representations.specs`: framing, filterbank, scaling), the
pure filterbank builders (:mod:`~specxform.representations.filterbanks`) and
the torch front end that computes a representation from audio
(:mod:`~specxform.representations.frontend`).

May import: :mod:`specxform.errors` only. Everything else builds on this layer.
"""
