"""Built-in dataset adapter: any folder of audio files, labelled by sub-folder."""

from __future__ import annotations

import specxform
from specxform import Registry
from specxform.datasets import folder


@specxform.hookimpl
def specxform_add_datasets(registry: Registry) -> None:
    registry.add_dataset(
        "folder",
        factory=folder,
        description="any audio tree; label = parent folder; groups = UrbanSound8K fsID "
        "when file names have that form, else one group per file",
    )
