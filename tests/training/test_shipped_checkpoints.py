"""Shipped transcoders: a pair declared with a checkpoint is loadable by its name."""

from __future__ import annotations

from pathlib import Path

import specxform
from specxform.plugins import load_plugins
from specxform.registry import Registry
from specxform.training.checkpoint import resolve_checkpoint, shipped_checkpoint


class _ShippingPlugin:
    def __init__(self, checkpoint: Path) -> None:
        self.checkpoint = checkpoint

    @specxform.hookimpl
    def specxform_add_pairs(self, registry: Registry) -> None:
        registry.add_pair("bark", "pann", teacher="pann_cnn14", checkpoint=str(self.checkpoint))


def test_a_pair_name_resolves_to_its_shipped_checkpoint(tmp_path: Path):
    shipped = tmp_path / "bark-pann.pt"
    registry = load_plugins(extra=[("ship", _ShippingPlugin(shipped))]).registry
    assert shipped_checkpoint("bark-pann", registry) == shipped
    assert shipped_checkpoint("bark->pann", registry) == shipped
    assert shipped_checkpoint("cense-pann", registry) is None
    assert resolve_checkpoint("bark-pann", registry) == shipped


def test_an_existing_path_wins_over_a_shipped_name(tmp_path: Path, monkeypatch):
    registry = load_plugins(extra=[("ship", _ShippingPlugin(tmp_path / "x.pt"))]).registry
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bark-pann").mkdir()
    assert resolve_checkpoint("bark-pann", registry) == Path("bark-pann")
    assert resolve_checkpoint("nowhere", registry) == Path("nowhere")
