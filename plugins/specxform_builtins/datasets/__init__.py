"""Built-in dataset adapters: any audio folder, TAU 2020 Mobile, UrbanSound8K, SONYC-UST, ESC-50.

One module per adapter, each written against the public API only (clips, datasets
and splits come from :mod:`specxform.datasets`):

- ``folder`` (:func:`~specxform_builtins.datasets.folder.folder`): any audio tree,
  labelled by parent folder.
- ``tau2020``: TAU Urban Acoustic Scenes 2020 Mobile development set.
- ``urbansound8k``: UrbanSound8K and its ten folds.
- ``sonyc``: SONYC-UST v2.3, multi-label coarse classes.
- ``esc50``: ESC-50 (or its ESC-10 subset) and its five folds.

Each registers ``example``, the writer of a tiny tree in its layout, on which
:func:`specxform.testing.check_dataset` runs it.
"""

from __future__ import annotations

import specxform
from specxform import Registry
from specxform_builtins.datasets.esc50 import esc50
from specxform_builtins.datasets.esc50 import write_example as esc50_example
from specxform_builtins.datasets.folder import folder
from specxform_builtins.datasets.folder import write_example as folder_example
from specxform_builtins.datasets.sonyc import sonyc
from specxform_builtins.datasets.sonyc import write_example as sonyc_example
from specxform_builtins.datasets.tau2020 import tau2020
from specxform_builtins.datasets.tau2020 import write_example as tau2020_example
from specxform_builtins.datasets.urbansound8k import cross_validation, urbansound8k
from specxform_builtins.datasets.urbansound8k import write_example as urbansound8k_example

__all__ = ["cross_validation", "esc50", "folder", "sonyc", "tau2020", "urbansound8k"]


@specxform.hookimpl
def specxform_add_datasets(registry: Registry) -> None:
    registry.add_dataset(
        "folder",
        factory=folder,
        example=folder_example,
        default=True,
        description="any audio tree; label = parent folder; groups = UrbanSound8K fsID "
        "when file names have that form, else one group per file",
    )
    registry.add_dataset(
        "tau2020",
        factory=tau2020,
        example=tau2020_example,
        description="TAU Urban Acoustic Scenes 2020 Mobile development set (meta.csv); "
        "device a; random 75/12.5/12.5 % split grouped by recording location",
    )
    registry.add_dataset(
        "urbansound8k",
        factory=urbansound8k,
        example=urbansound8k_example,
        description="UrbanSound8K (metadata/UrbanSound8K.csv); official folds: "
        "test fold 10, valid fold 9; groups = fsID; a random split grouped by fsID, with "
        "a warning, when those folds are absent",
    )
    registry.add_dataset(
        "sonyc",
        factory=sonyc,
        example=sonyc_example,
        description="SONYC-UST v2.3 (annotations.csv); 8 coarse classes, multi-label "
        "(majority of annotators); official train/validate/test split",
    )
    registry.add_dataset(
        "esc50",
        factory=esc50,
        example=esc50_example,
        description="ESC-50 (meta/esc50.csv) or ESC-10 (meta/esc10.csv, or esc10=True); "
        "label = category; groups = src_file; official folds (those present): "
        "test the last, valid the one before",
    )
