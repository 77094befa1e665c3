"""Audio datasets for training: clips, labels, group keys, official and grouped splits.

One module per concept: :mod:`~specxform.datasets.base` (clips, datasets,
splits, metadata reading) and one module per adapter, each registered by the
built-in plugin ``specxform_builtins.datasets``:

- ``folder`` (:func:`folder`): any audio tree, labelled by parent folder.
- ``tau2020`` (:func:`tau2020`): TAU Urban Acoustic Scenes 2020 Mobile development set.
- ``urbansound8k`` (:func:`urbansound8k`): UrbanSound8K and its ten folds.
- ``sonyc`` (:func:`sonyc`): SONYC-UST v2.3, multi-label coarse classes.
"""

from specxform.datasets.base import (
    DEFAULT_FRACTIONS,
    GROUP_RULES,
    AudioDataset,
    Clip,
    Split,
    group_of,
    grouped_split,
    read_table,
    subset_split,
    write_example_audio,
    write_table,
)
from specxform.datasets.folder import folder
from specxform.datasets.sonyc import sonyc
from specxform.datasets.tau2020 import tau2020
from specxform.datasets.urbansound8k import cross_validation, urbansound8k

__all__ = [
    "DEFAULT_FRACTIONS",
    "GROUP_RULES",
    "AudioDataset",
    "Clip",
    "Split",
    "cross_validation",
    "folder",
    "group_of",
    "grouped_split",
    "read_table",
    "sonyc",
    "subset_split",
    "tau2020",
    "urbansound8k",
    "write_example_audio",
    "write_table",
]
