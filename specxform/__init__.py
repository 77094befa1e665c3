"""specxform: transcode undersampled spectral representations into classifier Mels.

Public API: the hook marker for plugins, the spec value objects, the registry,
the description of a published weight file, and the main entry points (front
ends, the derived PINV).
"""

from __future__ import annotations

from specxform.hookspecs import hookimpl
from specxform.registry import Registry
from specxform.representations.specs import (
    BandFilterbank,
    Framing,
    MelFilterbank,
    Representation,
    Scaling,
)
from specxform.weights import WeightFile

__version__ = "0.1.0"

#: The public API: the names of :data:`__all__` and these modules, which plugins
#: (the built-in ones included, see docs/plugins.md) may import. Every other module of
#: the core is private: it may change without notice, and no plugin imports it.
PUBLIC_MODULES: tuple[str, ...] = (
    "specxform",
    "specxform.audio",  # load_audio, resample, AUDIO_SUFFIXES
    "specxform.datasets",  # Clip, AudioDataset, Split, grouped_split, adapter helpers
    "specxform.datasets.base",
    "specxform.errors",  # the exception family
    "specxform.io",  # spectrogram array files, visible_files
    "specxform.plugins",  # load_plugins, get_registry (for plugins' test suites)
    "specxform.transcoders.students",  # ResidualCNN, residual_cnn, Transcoder
    "specxform.teachers.base",  # the teacher contract: Teacher, TeacherOutput, TeacherFactory
    "specxform.teachers.labels",  # class-name files: read_label_file, read_class_map
    "specxform.testing",  # contract checks: check_teacher, check_student, check_dataset, ...
    "specxform.weights",  # weight files: resolve, resolve_any, load_torch_file
)

__all__ = [
    "PUBLIC_MODULES",
    "BandFilterbank",
    "Framing",
    "MelFilterbank",
    "Registry",
    "Representation",
    "Scaling",
    "WeightFile",
    "__version__",
    "hookimpl",
]
