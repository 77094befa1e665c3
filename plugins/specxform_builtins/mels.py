"""Targets: the Mel inputs of the pretrained classifiers (PANN, YAMNet, EfficientAT)."""

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


def efficientat() -> Representation:
    """EfficientAT (mn04_as and its siblings): 32 kHz, pre-emphasis 0.97, symmetric Hann
    800 centred in n_fft 1024, hop 320, centred reflect, power, Kaldi Mel 128 bands
    0-15,000 Hz, ``(ln(x + 1e-5) + 4.5) / 5``."""
    return Representation(
        name="efficientat",
        framing=Framing(
            sample_rate=32_000,
            frame_length=800,
            hop_length=320,
            n_fft=1024,
            window="hann",
            padding="center",
            pad_mode="reflect",
            symmetric_window=True,
            preemphasis=0.97,
        ),
        filterbank=MelFilterbank.kaldi(n_mels=128, fmin=0.0, fmax=15_000.0),
        # (x + 4.5) / 5 is the standardisation (x - mean) / std with mean -4.5, std 5.
        scaling=Scaling(domain="power", reference="raw", log="ln", floor=0.0, add=1e-5,
                        mean=(-4.5,), std=(5.0,)),
        roles={"target"},
        unit="(ln + 4.5) / 5",
        description="EfficientAT log-Mel: 32 kHz, pre-emphasis 0.97, 10 ms hop, "
        "128 Kaldi Mel bands 0-15 kHz, (ln(x + 1e-5) + 4.5) / 5",
    )


@specxform.hookimpl
def specxform_add_representations(registry: Registry) -> None:
    registry.add_representation(pann())
    registry.add_representation(yamnet())
    registry.add_representation(efficientat())
