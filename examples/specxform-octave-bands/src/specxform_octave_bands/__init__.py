"""specxform plugin: octave-band levels as a source representation.

Registers ``octave``: nine 1/1-octave bands (nominal 31.5 Hz to 8 kHz) in dB
re full scale, framed like the Cense sensor (32 kHz, 125 ms). It uses only
specxform's public API (``import specxform``), so it doubles as the template
for a third-party plugin.

Band definition (IEC 61260-1:2014, base-10 octaves, reference 1 kHz):
exact mid-band frequencies ``f_x = 1000 * 10**(3 * x / 10)`` Hz for
``x = -5 .. 3`` and band edges ``f_x * 10**(-3/20)`` and ``f_x * 10**(+3/20)``,
so contiguous bands share their edges and the bands cover 22.39 Hz to
11.22 kHz. :data:`NOMINAL_CENTRES` are the rounded labels the standard uses.
"""

from __future__ import annotations

import specxform
from specxform import BandFilterbank, Framing, Registry, Representation, Scaling

__version__ = "0.1.0"

#: Octave indices relative to 1 kHz (x in IEC 61260-1), giving 31.5 Hz to 8 kHz.
BAND_INDICES = tuple(range(-5, 4))
#: Nominal mid-band frequencies in Hz (labels only; computations use the exact ones).
NOMINAL_CENTRES = (31.5, 63.0, 125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)


def octave_bands() -> BandFilterbank:
    """The nine base-10 octave bands: exact centres and edges ``f * 10**(+-3/20)`` Hz."""
    centres = [1000.0 * 10 ** (3 * x / 10) for x in BAND_INDICES]
    edges = [(f * 10 ** (-3 / 20), f * 10 ** (3 / 20)) for f in centres]
    return BandFilterbank(edges=edges, centres=centres)


def octave() -> Representation:
    """Fast octave-band levels in dB re full scale (a full-scale sine reads -3.01 dB).

    Framed like specxform's ``cense``: 32 kHz audio, frames of 4,096 samples
    every 4,000 (exactly 125 ms, 8 per second, one per started hop), periodic
    Tukey window with alpha 0.2, 4,096-point FFT (7.8125 Hz bins).
    """
    framing = Framing(
        sample_rate=32_000, frame_length=4096, hop_length=4000, n_fft=4096,
        window="tukey", window_param=0.2, padding="end",
    )
    return Representation(
        name="octave",
        framing=framing,
        filterbank=octave_bands(),
        # Mean-square reference: a band holds the signal's mean square in it.
        scaling=Scaling(domain="power", reference="mean_square", log="db", floor=1e-15),
        roles={"source"},
        unit="dB re full scale",
        description="Octave-band levels, 9 bands 31.5 Hz-8 kHz, 125 ms, Tukey(0.2) window",
    )


@specxform.hookimpl
def specxform_add_representations(registry: Registry) -> None:
    """Register ``octave``."""
    registry.add_representation(octave())


@specxform.hookimpl
def specxform_add_pairs(registry: Registry) -> None:
    """Declare ``octave -> pann`` with a description (``octave -> yamnet`` stays implicit)."""
    registry.add_pair(
        "octave", "pann", description="octave-band levels to the PANN classifier's Mel input"
    )
