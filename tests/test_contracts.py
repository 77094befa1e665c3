"""Registry-wide contracts: every registered representation and pair, through the checks
that specxform.testing exports for plugin authors (a new plugin is tested without a test)."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import pytest
import torch

import specxform.testing
from specxform.plugins import get_registry
from specxform.registry import PairEntry
from specxform.representations.filterbanks import filterbank_matrix
from specxform.representations.specs import Representation
from specxform.testing import (
    check_filterbank,
    check_frontend,
    check_pair,
    check_pair_consistency,
    check_pair_finite,
    check_pair_frames,
    check_representation,
    check_round_trip,
    contract_signals,
)
from specxform.transcoders.pinv import METHODS, PinvTranscoder

REGISTRY = get_registry()


@pytest.mark.parametrize("rep", REGISTRY.representations(), ids=lambda r: r.name)
def test_representation_contract(rep: Representation) -> None:
    check_representation(rep)


@pytest.mark.parametrize(
    ("pair", "method"), [(p, m) for p in REGISTRY.pairs() for m in METHODS],
    ids=[f"{p.name}-{m}" for p in REGISTRY.pairs() for m in METHODS],
)
def test_pair_contract(pair: PairEntry, method: str) -> None:
    """Frames as the target front end (1 s, 10 s), finite on silence, full-scale noise,
    clipped audio and level gaps, band powers given back as the method promises."""
    source, target = REGISTRY.representation(pair.source), REGISTRY.representation(pair.target)
    check_pair(source, target, methods=(method,))


def _usable(source: str, target: str) -> bool:
    """Some teacher of ``target`` accepts ``source`` (or the target has no teacher)."""
    teachers = [t.name for t in REGISTRY.teachers() if t.target == target]
    return not teachers or any(REGISTRY.accepts(t, source) for t in teachers)


def test_every_pair_joins_a_source_and_a_target() -> None:
    sources = {r.name for r in REGISTRY.representations("source")}
    targets = {r.name for r in REGISTRY.representations("target")}
    assert {(p.source, p.target) for p in REGISTRY.pairs()} >= {
        (s, t) for s in sources for t in targets if s != t and _usable(s, t)
    }


# -- the checks catch what they promise to catch --------------------------------------


def test_consistency_check_catches_a_wrong_inverse(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pseudo-inverse 10 % too large no longer gives the band powers back."""

    class Skewed(PinvTranscoder):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if self.inverse_t is not None:
                self.inverse_t = self.inverse_t * 1.1

    monkeypatch.setattr(specxform.testing, "PinvTranscoder", Skewed)
    cense, pann = REGISTRY.representation("cense"), REGISTRY.representation("pann")
    with pytest.raises(AssertionError, match=r"cense->pann \(pinv\): the pseudo-inverse misses"):
        check_pair_consistency(cense, pann, "pinv")


class Truncating(PinvTranscoder):
    def forward(self, levels: torch.Tensor) -> torch.Tensor:
        return super().forward(levels)[..., :-1, :]


class NaNOnSilence(PinvTranscoder):
    def forward(self, levels: torch.Tensor) -> torch.Tensor:
        out = super().forward(levels)
        return out * torch.nan if bool((levels < -100).all()) else out


@pytest.mark.parametrize(("broken", "check", "message"), [
    (Truncating, check_pair_frames, r"1\.0 s gave shape \(100, 64\), the target front end "
                                    r"gives \(101, 64\)"),
    (NaNOnSilence, check_pair_finite, "non-finite output for silence"),
], ids=["frames", "finite"])
def test_pair_checks_catch_broken_transcoders(broken: type[PinvTranscoder], check: Any,
                                              message: str, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    monkeypatch.setattr(specxform.testing, "PinvTranscoder", broken)
    cense, pann = REGISTRY.representation("cense"), REGISTRY.representation("pann")
    with pytest.raises(AssertionError, match=message):
        check(cense, pann, "pinv")


def test_filterbank_check_catches_a_writable_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(specxform.testing, "filterbank_matrix",
                        lambda bank, framing: np.array(filterbank_matrix(bank, framing=framing)))
    with pytest.raises(AssertionError, match="cense: the cached matrix must be read-only"):
        check_filterbank(REGISTRY.representation("cense"))


def test_representation_check_catches_a_wrong_frame_count() -> None:
    """A spec whose frame arithmetic disagrees with its front end fails the contract."""

    @attrs.frozen
    class Liar(Representation):  # type: ignore[misc]
        def n_frames(self, n_samples: int) -> int:
            return super().n_frames(n_samples) + 1

    cense = REGISTRY.representation("cense")
    liar = Liar(name="liar", framing=cense.framing, filterbank=cense.filterbank,
                scaling=cense.scaling)
    with pytest.raises(AssertionError, match=r"liar: 32000 samples gave shape \(4, 8, 29\), "
                                             r"expected \(4, 9, 29\)"):
        check_frontend(liar)
    with pytest.raises(AssertionError, match="liar: the dict round trip changed the spec"):
        check_round_trip(liar)  # from_dict builds a plain Representation


def test_contract_signals_are_what_they_claim() -> None:
    signals = contract_signals(16_000, 0.5)
    assert set(signals) == {"silence", "noise", "clipped", "gaps"}
    assert all(x.shape == (8000,) and x.dtype.name == "float32" for x in signals.values())
    assert not signals["silence"].any()
    assert abs(signals["noise"]).max() == 1.0
    assert (abs(signals["clipped"]) == 1.0).mean() > 0.5
    assert not signals["gaps"][2700:5300].any() and signals["gaps"][:2600].any()
