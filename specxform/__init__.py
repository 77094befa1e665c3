"""specxform: transcode undersampled spectral representations into classifier Mels.

Public API: the hook marker for plugins, the spec value objects, the registry,
the description of a published weight file, and the main entry points (front
ends, the derived PINV).
"""

from __future__ import annotations

from specxform.hookspecs import hookimpl
from specxform.registry import Registry
from specxform.specs import (
    BandFilterbank,
    Framing,
    MelFilterbank,
    Representation,
    Scaling,
)
from specxform.weights import WeightFile

__version__ = "0.1.0"

__all__ = [
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
