"""The teacher contract (public API): :mod:`~specxform.teachers.base` (the protocol a
teacher implements) and :mod:`~specxform.teachers.labels` (class names and label files).

The teachers themselves are plugins: the built-in ones (PANN, YAMNet, SoundAQnet,
EfficientAT) live in ``specxform_builtins``.
"""
