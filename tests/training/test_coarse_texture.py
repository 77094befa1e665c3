"""The coarse_texture student: coarse-rate refinement, a fixed texture field, its config."""

from __future__ import annotations

import math

import pytest
import torch
from specxform_builtins.coarse_texture import CoarseTextureConfig, coarse_texture, log_power_unit

from specxform.errors import InputError, SpecError
from specxform.registry import Registry
from specxform.transcoders.pinv import PinvTranscoder


def _student(registry: Registry, source: str = "cense", target: str = "yamnet", **config):
    return coarse_texture(registry.representation(source), registry.representation(target),
                          **config)


def test_coarse_stage_runs_at_the_source_frame_rate(registry: Registry):
    fast = _student(registry)
    slow = _student(registry, "slow_third_octave", "yamnet")
    assert fast.time_ratio == pytest.approx(12.5)  # 100 Mel frames/s over 8 Cense frames/s
    assert slow.time_ratio == pytest.approx(100.0)
    assert fast.coarse_frames(100) == 8 and slow.coarse_frames(100) == 1



def test_coarse_rate_raises_the_coarse_stage_rate_up_to_the_target_rate(registry: Registry):
    slow8 = _student(registry, "slow_third_octave", "yamnet", coarse_rate=8)
    assert slow8.time_ratio == pytest.approx(12.5) and slow8.coarse_frames(400) == 32
    assert _student(registry, coarse_rate=4).time_ratio == pytest.approx(12.5)  # below: source's
    assert _student(registry, coarse_rate=1000).time_ratio == pytest.approx(1.0)  # capped
    with pytest.raises(SpecError, match="-1"):
        CoarseTextureConfig(coarse_rate=-1)

def test_untrained_output_is_pinv_plus_the_texture_at_its_initial_gain(registry: Registry):
    student = _student(registry)  # yamnet: ln of magnitude, 1 ln of power = 0.5 of its unit
    mel = torch.randn(2, 98, 64)
    with torch.no_grad():
        added = student(mel) - mel
    expected = 0.5 * student.texture(98)
    assert torch.allclose(added, expected.expand_as(added), atol=1e-5)


@pytest.mark.parametrize(("target", "unit"), [("yamnet", 0.5), ("pann", 10 / math.log(10))])
def test_initial_gain_is_converted_to_the_target_unit(registry: Registry, target: str,
                                                      unit: float):
    assert log_power_unit(registry.representation(target)) == pytest.approx(unit)


def test_same_input_same_output_and_the_field_comes_from_the_seed(registry: Registry):
    a, b = _student(registry), _student(registry)
    b.load_state_dict(a.state_dict())
    mel = torch.randn(1, 300, 64)
    assert torch.equal(a(mel), b(mel))
    assert "noise" not in a.state_dict()  # regenerated from the seed, not stored
    other = _student(registry, seed=1)
    assert not torch.equal(other.texture(300), a.texture(300))


def test_long_inputs_tile_the_field_and_keep_the_shape(registry: Registry):
    student = _student(registry)
    assert student.texture(5000).shape == (5000, 64)
    assert torch.equal(student.texture(5000)[4096:4100], student.texture(4))
    assert student(torch.randn(1, 5000, 64)).shape == (1, 5000, 64)


def test_every_layer_learns_after_one_step(registry: Registry):
    source, target = registry.representation("cense"), registry.representation("yamnet")
    student = _student(registry, channels=8, blocks=1, fine_channels=4)
    optimiser = torch.optim.SGD(student.parameters(), lr=0.1)
    mel = PinvTranscoder(source, target)(torch.randn(2, 8, 29) - 60)
    for _ in range(2):  # zero-initialised head: the stack gets gradient from the second step
        optimiser.zero_grad()
        ((student(mel) - mel - 1.0) ** 2).mean().backward()
        optimiser.step()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())


def test_config_round_trips_and_bad_values_are_named():
    config = CoarseTextureConfig(channels=8, blocks=2, fine_channels=4, noise_gain=0.5, seed=3)
    assert CoarseTextureConfig.from_dict(config.to_dict()) == config
    with pytest.raises(SpecError, match="width"):
        CoarseTextureConfig.from_dict({"width": 3})
    with pytest.raises(SpecError, match="channels"):
        CoarseTextureConfig(channels=0)


def test_wrong_input_shape_is_refused(registry: Registry):
    with pytest.raises(InputError, match=r"\(2, 10, 32\)"):
        _student(registry)(torch.zeros(2, 10, 32))


def test_fresh_train_noise_draws_a_field_per_chunk_in_training_only(registry: Registry):
    student = _student(registry, train_noise="fresh")
    with torch.no_grad():
        mel = torch.zeros(2, 98, 64)
        torch.manual_seed(3)
        first = student(mel)
        torch.manual_seed(3)
        again = student(mel)
        second = student(mel)
        student.eval()
        evaluated = student(mel)
    assert torch.equal(first, again)  # torch's seeded generator: reproducible and resumable
    assert not torch.equal(first, second)
    assert not torch.equal(first[0], first[1])  # one draw per chunk
    assert torch.allclose(evaluated, (0.5 * student.texture(98)).expand_as(evaluated), atol=1e-5)
    assert CoarseTextureConfig().train_noise == "fixed"  # checkpoints from before keep theirs
    with pytest.raises(SpecError, match="'random'"):
        CoarseTextureConfig(train_noise="random")
