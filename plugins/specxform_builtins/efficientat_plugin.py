"""Built-in teacher ``efficientat_mn04``: EfficientAT's MobileNetV3 (width 0.4) on target
``efficientat``, 527 AudioSet classes (the PANN label space).

The factory imports the model lazily, so listing plugins stays fast. It takes
``weights`` (a path given with ``--weights``), else resolves the official file
:data:`MN04_WEIGHTS` (cache, or a verified download); ``pretrained=False`` builds
the architecture with random weights (contract tests, benchmarks).
"""

from __future__ import annotations

import os
from typing import Any

import specxform
from specxform import Registry, WeightFile
from specxform.weights import resolve

#: The official state dict of the EfficientAT GitHub release v0.0.1 (MIT licence).
MN04_WEIGHTS = WeightFile(
    name="efficientat-mn04",
    filename="mn04_as_mAP_432.pt",
    url="https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/mn04_as_mAP_432.pt",
    size=4_066_513,
    md5="d288913b10fd32c968b3d756236060a6",
    description="EfficientAT mn04_as (MobileNetV3 width 0.4), AudioSet 527 classes, "
    "mAP 0.432 (Schmid et al. 2023); plain state dict of 312 tensors",
)

#: Trainable parameters of the model (checked by the teacher contract tests).
MN04_PARAMETERS = 983_599


def _mn04(
    weights: str | os.PathLike[str] | None = None,
    *,
    pretrained: bool = True,
    download: bool = True,
    **kwargs: Any,
) -> Any:
    from specxform_builtins.efficientat import MN04

    if not pretrained:
        return MN04().eval()
    return MN04.from_checkpoint(resolve(MN04_WEIGHTS, weights, download=download, **kwargs))


@specxform.hookimpl
def specxform_add_teachers(registry: Registry) -> None:
    registry.add_weight_file(MN04_WEIGHTS)
    registry.add_teacher(
        "efficientat_mn04", target="efficientat", factory=_mn04, num_classes=527,
        parameter_count=MN04_PARAMETERS, weights=("efficientat-mn04", "audioset-class-labels"),
        description="EfficientAT mn04_as MobileNetV3 (width 0.4, AudioSet mAP 0.432), "
        "527 AudioSet classes; trained on 10 s clips",
        # AudioSet clips as they come (no peak normalisation), 10 s as in training.
        chunk_seconds=10.0,
        normalise="none",
    )
