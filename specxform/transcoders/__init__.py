"""Transcoders: from a source representation to a target Mel.

Owns the pseudo-inverse derived from the two filterbank definitions
(:mod:`~specxform.transcoders.pinv`) and the student contract with the
reference residual CNN (:mod:`~specxform.transcoders.students`). Other
students are plugins.

May import: :mod:`specxform.errors` and :mod:`specxform.representations`.
"""
