"""Tests of the octave plugin: run ``pytest`` in this folder after ``pip install -e .``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import specxform_octave_bands as octave_plugin
import torch

from specxform.plugins import get_registry, load_plugins
from specxform.representations.frontend import RepresentationTransform
from specxform.testing import check_pair, check_representation


def test_bands_follow_iec_61260_base_10() -> None:
    bank = octave_plugin.octave_bands()
    assert bank.n_bands == len(octave_plugin.NOMINAL_CENTRES) == 9
    for (low, high), centre in zip(bank.edges, bank.centres, strict=True):
        assert math.isclose(math.sqrt(low * high), centre, rel_tol=1e-12)
        assert math.isclose(high / low, 10 ** (3 / 10), rel_tol=1e-12)
    for (_, high), (low, _) in zip(bank.edges, bank.edges[1:], strict=False):
        assert math.isclose(high, low, rel_tol=1e-12)  # contiguous bands
    # IEC 61260 rounds exact mid-band frequencies to these labels (within 1 %).
    np.testing.assert_allclose(bank.centres, octave_plugin.NOMINAL_CENTRES, rtol=0.01)


def test_full_scale_sine_reads_minus_3_db_in_its_band() -> None:
    rep = octave_plugin.octave()
    t = np.arange(rep.sample_rate) / rep.sample_rate
    sine = torch.tensor(np.sin(2 * np.pi * 1000.0 * t), dtype=torch.float32)
    levels = RepresentationTransform(rep)(sine)
    assert levels.shape == (rep.n_frames(rep.sample_rate), 9)
    full = levels[:-1].numpy()  # the last frame is zero-padded past the end of the sine
    band = octave_plugin.NOMINAL_CENTRES.index(1000.0)
    # 10 log10(0.5) = -3.0103 dB; 0.01 dB covers float32 rounding.
    np.testing.assert_allclose(full[:, band], 10 * math.log10(0.5), atol=0.01)
    others = np.delete(full, band, axis=1)
    assert others.max() < -60.0  # Tukey leakage into the other octaves stays far below


def test_registers_octave_and_its_pairs() -> None:
    registry = load_plugins(extra=[("octave", octave_plugin)]).registry
    assert registry.representation("octave") == octave_plugin.octave()
    assert registry.pair("octave", "pann").explicit
    assert registry.pair("octave", "yamnet").source == "octave"


@pytest.mark.parametrize("target", ["pann", "yamnet"])
def test_contract_checks(target: str) -> None:
    source = octave_plugin.octave()
    check_representation(source)
    check_pair(source, get_registry().representation(target))
