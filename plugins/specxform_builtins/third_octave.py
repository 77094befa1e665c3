"""Third-octave sources: the Cense sensor's fast levels and a slow (1 s) variant."""

from __future__ import annotations

import attrs

import specxform
from specxform import BandFilterbank, Framing, Registry, Representation, Scaling

#: Levels in dB re full scale: a full-scale sine reads -3.01 dB in its band.
LEVELS = Scaling(domain="power", reference="mean_square", log="db", floor=1e-15)


def cense(
    *, window: str = "tukey", bin_rule: str = "partition", offset: float = 0.0, name: str = "cense"
) -> Representation:
    """Cense fast third-octave levels: 29 bands (20 Hz-12.5 kHz), 125 ms frames.

    32 kHz audio, frames of 4,096 samples every 4,000 (exactly 8 per second,
    one per started hop, the last one zero-padded), periodic Tukey(0.2)
    window as in the sensor firmware (``window="rectangular"`` for the
    paper's table), no hidden offset (``offset`` is a user calibration in dB).
    """
    framing = Framing(
        sample_rate=32_000,
        frame_length=4096,
        hop_length=4000,
        n_fft=4096,
        window=window,
        window_param=0.2 if window == "tukey" else None,
        padding="end",
    )
    return Representation(
        name=name,
        framing=framing,
        filterbank=BandFilterbank.third_octave(bin_rule=bin_rule),
        scaling=attrs.evolve(LEVELS, offset=offset),
        roles={"source"},
        unit="dB re full scale",
        description=f"Cense fast third-octave levels, 29 bands, 125 ms, {window} window",
    )


def slow_third_octave() -> Representation:
    """The same bands integrated over 1 s frames with a 1 s hop (IEC 61672-1 'slow' rate)."""
    fast = cense(name="slow_third_octave")
    framing = attrs.evolve(fast.framing, frame_length=32_000, hop_length=32_000, n_fft=32_000)
    return attrs.evolve(
        fast,
        framing=framing,
        description="Slow third-octave levels, 29 bands, 1 s frames, Tukey(0.2) window",
    )


@specxform.hookimpl
def specxform_add_representations(registry: Registry) -> None:
    registry.add_representation(cense())
    registry.add_representation(cense(window="rectangular", name="cense_rectangular"))
    registry.add_representation(
        attrs.evolve(
            cense(bin_rule="ceil_inclusive", name="cense_companion"),
            description="Cense levels with the companion code's bin rule "
            "(bins ceil(lo/df)..ceil(hi/df), neighbours share a bin)",
        )
    )
    registry.add_representation(slow_third_octave())
