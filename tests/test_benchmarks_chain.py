"""The chain benchmark's FLOP count of the student agrees with the convolutions it runs.

``benchmarks/chain.py`` divides :func:`student_flops` by the student's time to
compare it with the GEMM rate; here the formula is checked against a count
taken from the convolutions actually called (forward hooks reading each
layer's weight and output shapes), so a layer it forgets or miscounts shows.
"""

from __future__ import annotations

from types import ModuleType

import pytest
import torch
from benchmark_helpers import import_benchmark
from torch import nn

from specxform.registry import Registry
from specxform.transcoders.students import ResidualCNN, ResidualCNNConfig


@pytest.fixture(scope="module")
def chain() -> ModuleType:
    return import_benchmark("chain")


def hooked_flops(student: nn.Module, mel: torch.Tensor) -> int:
    """2 x multiply-accumulates of every Conv2d called on ``mel``: each output value of a
    convolution costs in_channels / groups x kernel height x kernel width of them."""
    total = 0

    def count(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Conv2d)
        per_output = module.weight.shape[1] * module.weight.shape[2] * module.weight.shape[3]
        total += 2 * output.numel() * per_output

    handles = [m.register_forward_hook(count) for m in student.modules()
               if isinstance(m, nn.Conv2d)]
    with torch.inference_mode():
        student(mel)
    for handle in handles:
        handle.remove()
    return total


@pytest.mark.parametrize("config", [
    {}, {"layers": 1}, {"layers": 3, "channels": 8, "kernel": [4, 6]},
    {"layers": 2, "channels": 5, "dilation": [2, 3], "kernel": [3, 3]},
])
def test_student_flops_match_the_convolutions_run(chain: ModuleType, config: dict):
    cfg = ResidualCNNConfig.from_dict(config)
    mel = torch.randn(2, 13, 16)
    expected = hooked_flops(ResidualCNN(cfg), mel)
    assert chain.student_flops(cfg, frames=13, mels=16, batch=2) == expected


def test_reference_student_costs_2_4_gflop_per_second_of_pann_mel(chain: ModuleType,
                                                                    registry: Registry):
    """The registry's default student, run on one second of PANN Mel (100 frames of 64
    bins), calls convolutions worth 186,240 multiply-accumulates per bin and frame
    (64 x 15 twice, 64 x 64 x 15 three times): what the benchmark divides by its time."""
    pann = registry.representation("pann")
    assert chain.frames_per_second(pann) == 100
    frames = int(chain.frames_per_second(pann))
    name = registry.default_student()
    assert name is not None
    student = registry.student(name).factory(registry.representation("cense"), pann)
    counted = hooked_flops(student, torch.randn(1, frames, pann.n_bands))
    assert counted == 2 * 64 * 100 * (2 * 64 * 15 + 3 * 64 * 64 * 15)
    assert chain.student_flops(student.config, frames, pann.n_bands) == counted
