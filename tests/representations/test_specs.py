"""Spec value objects: round trips, validation messages, variants made with attrs.evolve."""

from __future__ import annotations

import json

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specxform.errors import SpecError
from specxform.plugins import get_registry
from specxform.representations.specs import (
    BandFilterbank,
    Framing,
    MelFilterbank,
    Representation,
    Scaling,
    filterbank_from_dict,
)

REPRESENTATIONS = get_registry().representations()
CENSE_FRAMING = Framing(sample_rate=32_000, frame_length=4096, hop_length=4000, n_fft=4096,
                        window="tukey", window_param=0.2, padding="end")


def third_octaves(framing: Framing = CENSE_FRAMING, **scaling: object) -> Representation:
    return Representation(name="test", framing=framing, filterbank=BandFilterbank.third_octave(),
                          scaling=Scaling(**scaling))  # type: ignore[arg-type]


# -- round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("rep", REPRESENTATIONS, ids=lambda r: r.name)
def test_round_trip_every_registered_representation(rep: Representation) -> None:
    data = json.loads(json.dumps(rep.to_dict()))
    back = Representation.from_dict(data)
    assert back == rep
    assert back.to_dict() == rep.to_dict()


@settings(max_examples=30, deadline=None)
@given(
    first=st.integers(0, 10), count=st.integers(1, 18),
    hop=st.integers(1, 8000), rule=st.sampled_from(["partition", "ceil_inclusive"]),
    window=st.sampled_from(["hann", "rectangular", "tukey"]),
    offset=st.floats(-120, 120), padding=st.sampled_from(["center", "none", "end"]),
)
def test_round_trip_generated_specs(first: int, count: int, hop: int, rule: str, window: str,
                                    offset: float, padding: str) -> None:
    framing = Framing(sample_rate=32_000, frame_length=4096, hop_length=hop, n_fft=8192,
                      window=window, window_param=0.5 if window == "tukey" else None,
                      padding=padding)
    rep = Representation(
        name="generated", framing=framing,
        filterbank=BandFilterbank.third_octave(first=first, last=first + count, bin_rule=rule),
        scaling=Scaling(reference="mean_square", offset=offset, mean=(1.0,), std=(2.0,)),
    )
    assert Representation.from_dict(json.loads(json.dumps(rep.to_dict()))) == rep


def test_mel_filterbank_round_trip() -> None:
    bank = MelFilterbank.tensorflow(n_mels=64, fmin=125, fmax=7500)
    assert filterbank_from_dict(bank.to_dict()) == bank


def test_from_dict_rejects_other_dicts() -> None:
    with pytest.raises(SpecError, match="not a representation dict"):
        Representation.from_dict({"name": "x"})
    with pytest.raises(SpecError, match="unknown filterbank kind 'gammatone'"):
        filterbank_from_dict({"kind": "gammatone"})


# -- validation messages name the bad value -------------------------------------------


def test_bands_above_nyquist_are_refused() -> None:
    framing = attrs.evolve(CENSE_FRAMING, sample_rate=16_000)
    with pytest.raises(SpecError, match=r"reaches 14125\.4 Hz, above the Nyquist frequency 8000"):
        third_octaves(framing)


def test_non_increasing_edges_are_refused() -> None:
    with pytest.raises(SpecError, match=r"strictly increasing, got \[100\.0, 50\.0\]"):
        BandFilterbank(edges=[(100, 200), (50, 300)], centres=[150, 120])


@pytest.mark.parametrize("hop", [0, -160])
def test_non_positive_hop_is_refused(hop: int) -> None:
    with pytest.raises(SpecError, match=f"hop_length must be > 0, got {hop}"):
        attrs.evolve(CENSE_FRAMING, hop_length=hop)


def test_empty_band_is_refused() -> None:
    with pytest.raises(SpecError, match=r"band 1 is empty: its upper edge 200\.0 Hz"):
        BandFilterbank(edges=[(50, 100), (200, 200)], centres=[70, 200])


def test_band_without_fft_bin_is_refused() -> None:
    # 128 Mel bands on 129 bins of 62.5 Hz: the narrow low triangles fall between bins.
    with pytest.raises(SpecError, match=r"bands \[0, 3, 6, .*contain no FFT bin at n_fft=256"):
        Representation(
            name="too_fine",
            framing=Framing(sample_rate=16_000, frame_length=256, hop_length=160, n_fft=256),
            filterbank=MelFilterbank.slaney(n_mels=128, fmin=0, fmax=8000),
        )


def test_n_fft_shorter_than_frame_is_refused() -> None:
    with pytest.raises(SpecError, match=r"n_fft \(2048\) must be >= frame_length \(4096\)"):
        attrs.evolve(CENSE_FRAMING, n_fft=2048)


@pytest.mark.parametrize("alpha", [None, 1.5])
def test_tukey_needs_alpha(alpha: float | None) -> None:
    with pytest.raises(SpecError, match=f"Tukey window needs window_param .*got {alpha}"):
        attrs.evolve(CENSE_FRAMING, window_param=alpha)


def test_unknown_window_is_refused() -> None:
    with pytest.raises(SpecError, match="window must be one of 'hann', 'tukey', 'rectangular', "
                                        "got 'hamming'"):
        attrs.evolve(CENSE_FRAMING, window="hamming", window_param=None)


def test_mean_std_length_must_match_bands() -> None:
    with pytest.raises(SpecError, match=r"scaling\.mean has 3 values for 29 bands"):
        third_octaves(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    with pytest.raises(SpecError, match="give both mean and std"):
        Scaling(mean=(0.0,))
    with pytest.raises(SpecError, match=r"must be > 0, got \(1\.0, 0\.0\)"):
        Scaling(mean=(0.0, 0.0), std=(1.0, 0.0))


def test_log_needs_a_positive_floor() -> None:
    with pytest.raises(SpecError, match=r"floor \+ add > 0 \(floor=0\.0, add=0\.0\)"):
        Scaling(log="db", floor=0.0)


def test_centres_must_match_bands() -> None:
    with pytest.raises(SpecError, match="1 centres for 2 bands"):
        BandFilterbank(edges=[(50, 100), (100, 200)], centres=[70])


def test_mel_range_is_checked() -> None:
    with pytest.raises(SpecError, match=r"fmin=8000\.0, fmax=125\.0"):
        MelFilterbank.slaney(n_mels=64, fmin=8000, fmax=125)


def test_roles_are_checked() -> None:
    with pytest.raises(SpecError, match=r"roles must be a non-empty subset .*got set\(\)"):
        attrs.evolve(third_octaves(), roles=set())


# -- variants with attrs.evolve -------------------------------------------------------


def test_slow_is_fast_with_another_framing() -> None:
    registry = get_registry()
    fast, slow = registry.representation("cense"), registry.representation("slow_third_octave")
    assert slow.framing == attrs.evolve(fast.framing, frame_length=32_000, hop_length=32_000,
                                        n_fft=32_000)
    rebuilt = attrs.evolve(fast, name=slow.name, framing=slow.framing,
                           description=slow.description)
    assert rebuilt == slow
    assert slow.n_frames(32_000 * 10) == 10 and fast.n_frames(32_000 * 10) == 80


def test_registered_cense_variants_differ_only_where_named() -> None:
    registry = get_registry()
    cense = registry.representation("cense")
    rect = registry.representation("cense_rectangular")
    companion = registry.representation("cense_companion")
    assert rect.framing == attrs.evolve(cense.framing, window="rectangular", window_param=None)
    assert (rect.filterbank, rect.scaling) == (cense.filterbank, cense.scaling)
    assert companion.filterbank == attrs.evolve(cense.filterbank, bin_rule="ceil_inclusive")
    assert (companion.framing, companion.scaling) == (cense.framing, cense.scaling)


def test_with_offset_changes_only_the_offset() -> None:
    cense = get_registry().representation("cense")
    shifted = cense.with_offset(-88.0)
    assert shifted.scaling.offset == -88.0
    assert attrs.evolve(shifted, scaling=cense.scaling) == cense


def test_evolve_revalidates() -> None:
    cense = get_registry().representation("cense")
    with pytest.raises(SpecError, match="above the Nyquist frequency 4000"):
        attrs.evolve(cense, framing=attrs.evolve(cense.framing, sample_rate=8000))


def test_specs_are_frozen_and_hashable() -> None:
    cense = get_registry().representation("cense")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        cense.name = "other"  # type: ignore[misc]
    assert len({cense, Representation.from_dict(cense.to_dict())}) == 1


# -- framing arithmetic ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("padding", "n_samples", "expected"),
    [("center", 32_000, 101), ("center", 320_000, 1001), ("none", 16_000, 98),
     ("none", 399, 0), ("end", 32_000, 8), ("end", 32_001, 9), ("end", 1, 1)],
)
def test_frame_counts(padding: str, n_samples: int, expected: int) -> None:
    sizes = {"center": (1024, 320), "none": (400, 160), "end": (4096, 4000)}[padding]
    framing = Framing(sample_rate=32_000, frame_length=sizes[0], hop_length=sizes[1],
                      n_fft=4096, padding=padding)
    assert framing.n_frames(n_samples) == expected


def test_frame_centres_and_covered_samples() -> None:
    cense = get_registry().representation("cense").framing
    pann = get_registry().representation("pann").framing
    assert cense.frame_centre(1) == pytest.approx((4000 + 2048) / 32_000)
    assert pann.frame_centre(1) == pytest.approx(320 / 32_000)  # centred frames
    assert cense.covered_samples(8) == 32_000
    assert pann.covered_samples(101) == 32_000
    assert cense.bin_width == 7.8125 and cense.n_bins == 2049
    assert cense.frame_seconds == 0.125
