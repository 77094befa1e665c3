"""Clips, datasets and splits: what every dataset adapter returns (public API).

:mod:`~specxform.datasets.base` holds the generic machinery: :class:`Clip`,
:class:`AudioDataset` (with its official split or folds), :class:`Split`,
:func:`grouped_split`, :func:`subsample_groups`, :func:`subset_split`, group rules, and the helpers
adapters use to read metadata (:func:`read_table`, :func:`check_files`,
:func:`dataset_root`) and to write their tiny example trees
(:func:`write_example_audio`, :func:`write_table`). The adapters themselves
(``folder``, ``tau2020``, ``urbansound8k``, ``sonyc``) are plugins: the
built-in ones live in ``specxform_builtins.datasets``.
"""

from specxform.datasets.base import (
    DEFAULT_FRACTIONS,
    GROUP_RULES,
    AudioDataset,
    Clip,
    Split,
    Subsets,
    check_files,
    dataset_root,
    group_of,
    grouped_split,
    read_table,
    subsample_groups,
    subset_split,
    write_example_audio,
    write_table,
)

__all__ = [
    "DEFAULT_FRACTIONS",
    "GROUP_RULES",
    "AudioDataset",
    "Clip",
    "Split",
    "Subsets",
    "check_files",
    "dataset_root",
    "group_of",
    "grouped_split",
    "read_table",
    "subsample_groups",
    "subset_split",
    "write_example_audio",
    "write_table",
]
