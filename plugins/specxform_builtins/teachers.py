"""Built-in teachers: PANN ResNet38 and Cnn14 (target `pann`), YAMNet (target `yamnet`).

Factories import the model modules lazily, so listing plugins stays fast, and
take ``weights`` (a path given with ``--weights``, else the cache or a download);
``pretrained=False`` builds the architecture with random weights (contract tests,
benchmarks).
"""

from __future__ import annotations

import os
from typing import Any

import specxform
from specxform import Registry


def _resnet38(
    weights: str | os.PathLike[str] | None = None, *, pretrained: bool = True, **kwargs: Any
) -> Any:
    from specxform.teachers.pann import ResNet38

    return ResNet38.pretrained(weights, **kwargs) if pretrained else ResNet38().eval()


def _cnn14(
    weights: str | os.PathLike[str] | None = None, *, pretrained: bool = True, **kwargs: Any
) -> Any:
    from specxform.teachers.pann import Cnn14

    return Cnn14.pretrained(weights, **kwargs) if pretrained else Cnn14().eval()


def _yamnet(
    weights: str | os.PathLike[str] | None = None, *, pretrained: bool = True, **kwargs: Any
) -> Any:
    """YAMNet from ``yamnet.h5``, an official ``.tflite`` file or a state dict (by content)."""
    from specxform.teachers.yamnet import YAMNet

    return YAMNet.pretrained(weights, **kwargs) if pretrained else YAMNet().eval()


@specxform.hookimpl
def specxform_add_teachers(registry: Registry) -> None:
    registry.add_teacher(
        "pann_resnet38", target="pann", factory=_resnet38, num_classes=527,
        parameter_count=73_783_247, weights=("pann-resnet38", "audioset-class-labels"),
        default=True,
        description="PANN ResNet38 (AudioSet mAP 0.434), clip-wise, 527 AudioSet classes",
    )
    registry.add_teacher(
        "pann_cnn14", target="pann", factory=_cnn14, num_classes=527,
        parameter_count=80_753_615, weights=("pann-cnn14", "audioset-class-labels"),
        description="PANN Cnn14 (AudioSet mAP 0.431), clip-wise, 527 AudioSet classes",
    )
    registry.add_teacher(
        "yamnet", target="yamnet", factory=_yamnet, num_classes=521,
        parameter_count=3_729_481, weights=("yamnet", "yamnet-class-map"), default=True,
        description="YAMNet MobileNetV1, 0.96 s patches (hop 0.48 s) averaged, 521 classes; "
        "3,729,481 Keras-trainable parameters (3,740,425 with affine BatchNorm)",
    )
