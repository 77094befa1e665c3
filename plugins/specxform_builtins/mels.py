"""Targets: the Mel inputs of the pretrained classifiers (PANN, YAMNet)."""

from __future__ import annotations

import specxform
from specxform import Framing, MelFilterbank, Registry, Representation, Scaling


def pann() -> Representation:
    """PANN (32 kHz models): periodic Hann 1024, hop 320, centred reflect, power,
    Slaney Mel 64 bands 50-14,000 Hz, ``10 log10(max(x, 1e-10))``."""
    return Representation(
        name="pann",
        framing=Framing(
            sample_rate=32_000,
            frame_length=1024,
            hop_length=320,
            n_fft=1024,
            window="hann",
            padding="center",
            pad_mode="reflect",
        ),
        filterbank=MelFilterbank.slaney(n_mels=64, fmin=50.0, fmax=14_000.0),
        scaling=Scaling(domain="power", reference="raw", log="db", floor=1e-10),
        roles={"target"},
        unit="dB",
        description="PANN log-Mel: 32 kHz, 10 ms hop, 64 Slaney Mel bands 50 Hz-14 kHz",
    )


def yamnet() -> Representation:
    """YAMNet: 16 kHz, periodic Hann 400 zero-padded to 512, hop 160, not centred,
    magnitude, TensorFlow Mel 64 bands 125-7,500 Hz, ``ln(x + 0.001)``."""
    return Representation(
        name="yamnet",
        framing=Framing(
            sample_rate=16_000,
            frame_length=400,
            hop_length=160,
            n_fft=512,
            window="hann",
            padding="none",
        ),
        filterbank=MelFilterbank.tensorflow(n_mels=64, fmin=125.0, fmax=7_500.0),
        scaling=Scaling(domain="magnitude", reference="raw", log="ln", floor=0.0, add=0.001),
        roles={"target"},
        unit="ln",
        description="YAMNet log-Mel: 16 kHz, 10 ms hop, 64 TensorFlow Mel bands 125 Hz-7.5 kHz",
    )


@specxform.hookimpl
def specxform_add_representations(registry: Registry) -> None:
    registry.add_representation(pann())
    registry.add_representation(yamnet())
