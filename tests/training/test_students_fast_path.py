"""The residual CNN's CPU inference path computes what its layers compute, only faster.

Outside autograd, :class:`ResidualCNN` runs its layers with channels-last
convolution inputs and in-place ReLUs (:meth:`ResidualCNN._convolve_fast`).
These tests hold it to the plain path ``mel - conv(mel)`` run through the same
``nn.Sequential``. Tolerance: float32 convolutions in another memory layout sum
in another order; over five layers of up to 64 x 15 products the outputs (tens
of dB) differ by a few 1e-6 relative, so 1e-5 relative (plus 1e-4 absolute for
values near 0) separates rounding from a wrong layer by orders of magnitude.
"""

from __future__ import annotations

import pytest
import torch

from specxform.transcoders.students import ResidualCNN, ResidualCNNConfig


def plain(student: ResidualCNN, mel: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return (mel[:, None] - student.conv(mel[:, None]))[:, 0]


@pytest.mark.parametrize("config", [
    {}, {"layers": 1}, {"layers": 2, "channels": 3, "kernel": [4, 6]},
    {"layers": 3, "channels": 8, "dilation": [2, 3]},
])
@pytest.mark.parametrize("shape", [(1, 40, 64), (3, 9, 16)])
def test_inference_path_matches_the_layers(config: dict, shape: tuple[int, int, int]):
    torch.manual_seed(0)
    student = ResidualCNN(ResidualCNNConfig.from_dict(config)).eval()
    mel = 20 * torch.randn(shape) - 40  # dB-like values
    expected = plain(student, mel)
    with torch.inference_mode():
        fast = student(mel)
    assert fast.shape == mel.shape and fast.is_contiguous()
    torch.testing.assert_close(fast, expected, rtol=1e-5, atol=1e-4)
    assert not torch.equal(fast, mel)  # the convolutions did run


def test_inference_path_is_taken_without_autograd_and_leaves_the_input_alone(monkeypatch):
    student = ResidualCNN(ResidualCNNConfig(layers=2, channels=4))
    calls: list[tuple[int, ...]] = []
    original = ResidualCNN._convolve_fast

    def spy(self: ResidualCNN, x: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return original(self, x)

    monkeypatch.setattr(ResidualCNN, "_convolve_fast", spy)
    mel = torch.randn(2, 7, 10)
    kept = mel.clone()
    with torch.no_grad():
        student(mel)
    with torch.inference_mode():
        student(mel)
    assert calls == [(2, 1, 7, 10)] * 2
    assert torch.equal(mel, kept)  # in-place ReLUs touch only intermediate tensors


def test_training_keeps_the_plain_path_and_its_gradients(monkeypatch):
    torch.manual_seed(0)
    student = ResidualCNN(ResidualCNNConfig(layers=3, channels=4)).train()
    monkeypatch.setattr(ResidualCNN, "_convolve_fast", lambda self, x: pytest.fail("fast path"))
    mel = torch.randn(2, 7, 10, requires_grad=True)
    student(mel).square().sum().backward()
    assert mel.grad is not None and all(p.grad is not None for p in student.parameters())
    frozen = ResidualCNN(ResidualCNNConfig(layers=2, channels=4)).requires_grad_(False)
    mel.grad = None
    frozen(mel).sum().backward()  # gradients to the input only: still the plain path
    assert mel.grad is not None
