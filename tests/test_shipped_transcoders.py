"""The transcoders that ship in the package: loadable by name, small, carded, runnable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from specxform.plugins import get_registry
from specxform.training.checkpoint import load_model, resolve_checkpoint

SHIPPED = [p for p in get_registry().pairs() if p.checkpoint]


def test_the_two_audioset_transcoders_ship():
    assert {f"{p.source}-{p.target}" for p in SHIPPED} >= {"cense-yamnet", "cense-efficientat"}


@pytest.mark.parametrize("pair", SHIPPED, ids=lambda p: f"{p.source}-{p.target}")
def test_a_shipped_transcoder_loads_by_name_and_has_a_card(pair):
    name = f"{pair.source}-{pair.target}"
    path = Path(pair.checkpoint)
    assert resolve_checkpoint(name) == path
    assert path.stat().st_size < 1_000_000  # "a reference student is under 1 MB"
    card = path.with_suffix(".md").read_text()
    for needed in ("CC BY-NC 3.0", "Held-out figures", "PtoPa-FC", "## Reproduce",
                   pair.teacher or ""):
        assert needed in card
    model = load_model(name)
    assert (model.source.name, model.target.name, model.teacher_name) == (
        pair.source, pair.target, pair.teacher)
    assert model.description["student"]["name"] == pair.student


@pytest.mark.parametrize("pair", SHIPPED, ids=lambda p: f"{p.source}-{p.target}")
def test_a_shipped_transcoder_maps_levels_to_a_finite_mel(pair):
    model = load_model(f"{pair.source}-{pair.target}")
    levels = torch.from_numpy(np.random.default_rng(0).uniform(-80, -20, (1, 32, 29))
                              .astype(np.float32))
    with torch.inference_mode():
        mel = model.transcoder(levels)
    assert mel.shape[-1] == model.target.n_bands and torch.isfinite(mel).all()
    assert mel.shape[1] == model.transcoder.pinv.target_frames(32)


def test_operators_classify_stored_levels_with_a_shipped_name(tmp_path: Path, capsys):
    """The README's command: classify stored levels straight after install."""
    from specxform.cli.main import main
    from specxform.weights import first_found

    entry = get_registry().teacher("yamnet")
    if first_found([get_registry().weight_file(n) for n in entry.weights_any]) is None:
        pytest.skip("no YAMNet weight file on the search path or in the cache")
    levels = np.random.default_rng(1).uniform(-70, -30, (80, 29)).astype(np.float32)
    np.save(tmp_path / "sensor.npy", levels)
    code = main(["classify", "--source", "cense", "--checkpoint", "cense-yamnet",
                 str(tmp_path / "sensor.npy"), "--db-offset", "0", "--json"])
    assert code == 0
    assert "sensor.npy" in capsys.readouterr().out
