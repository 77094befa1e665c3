"""Bark source: Zwicker's 24 critical bands."""

from __future__ import annotations

import specxform
from specxform import BandFilterbank, Registry, Representation
from specxform_builtins.third_octave import cense

#: Zwicker's critical-band edges in Hz (24 bands, 0 Hz to 15.5 kHz).
ZWICKER_EDGES = (
    0,
    100,
    200,
    300,
    400,
    510,
    630,
    770,
    920,
    1080,
    1270,
    1480,
    1720,
    2000,
    2320,
    2700,
    3150,
    3700,
    4400,
    5300,
    6400,
    7700,
    9500,
    12000,
    15500,
)


def bark() -> Representation:
    """24 Bark bands in dB re full scale on the Cense framing.

    Bark has no standard frame rate; we take the sensor's (32 kHz, frames of
    4,096 samples every 4,000, Tukey 0.2, 8 frames per second) so a Cense
    device could compute both. 32 kHz audio covers the top edge (15.5 kHz).
    """
    sensor = cense()  # same framing and level scaling as the Cense sensor
    return Representation(
        name="bark",
        framing=sensor.framing,
        filterbank=BandFilterbank.from_edges(ZWICKER_EDGES),
        scaling=sensor.scaling,
        roles={"source"},
        unit="dB re full scale",
        description="Zwicker Bark bands, 24 bands, 125 ms, Tukey(0.2) window",
    )


@specxform.hookimpl
def specxform_add_representations(registry: Registry) -> None:
    registry.add_representation(bark())
