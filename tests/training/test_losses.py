"""Losses on cases small enough to compute by hand."""

from __future__ import annotations

import math

import pytest
import torch

from specxform.errors import InputError, SpecError
from specxform.training.losses import (
    LossConfig,
    kl_divergence,
    logits_loss,
    mels_loss,
    transcoder_loss,
)


def test_logits_loss_is_bce_of_sigmoid_outputs():
    # sigmoid(0) = 0.5: BCE is ln 2 whatever the target; sigmoid(ln 3) = 0.75 vs target 1: -ln 0.75.
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), math.log(3.0)]])
    targets = torch.tensor([[1.0, 0.2], [1.0, 0.0]])
    expected = (math.log(2) + math.log(2) - math.log(0.75) - math.log(0.25)) / 4
    assert logits_loss(logits, targets).item() == pytest.approx(expected, rel=1e-6)


def test_logits_loss_matches_torch_bce_on_probabilities():
    logits, targets = torch.randn(3, 7), torch.rand(3, 7)
    reference = torch.nn.functional.binary_cross_entropy(torch.sigmoid(logits), targets)
    assert logits_loss(logits, targets).item() == pytest.approx(reference.item(), rel=1e-5)


def test_mels_loss_is_mean_squared_error():
    assert mels_loss(torch.tensor([[[1.0, 2.0]]]), torch.zeros(1, 1, 2)).item() == 2.5


def test_kl_normalises_the_probability_vectors():
    # p = [0.2, 0.2] -> [0.5, 0.5]; q = [0.1, 0.3] -> [0.25, 0.75].
    p, q = torch.tensor([[0.2, 0.2]]), torch.tensor([[0.1, 0.3]])
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl_divergence(p, q).item() == pytest.approx(expected, rel=1e-6)
    assert kl_divergence(p, p * 3).item() == pytest.approx(0.0, abs=1e-7)


def test_methods_combine_the_terms():
    mel, true = torch.tensor([[[1.0, 2.0]]]), torch.zeros(1, 1, 2)  # MSE 2.5
    logits, probs = torch.zeros(1, 2), torch.tensor([[0.3, 0.6]])  # BCE ln 2
    kwargs = {"student_mel": mel, "true_mel": true, "student_logits": logits,
              "teacher_probs": probs}
    assert transcoder_loss(LossConfig("logits"), **kwargs).total.item() == pytest.approx(
        math.log(2))
    assert transcoder_loss(LossConfig("mels"), **kwargs).total.item() == pytest.approx(2.5)
    hybrid = transcoder_loss(LossConfig("hybrid", mels_weight=0.1), **kwargs)
    assert hybrid.total.item() == pytest.approx(math.log(2) + 0.25)
    # KL([1/3, 2/3] || [1/2, 1/2]) added with weight 2.
    kl = (1 / 3) * math.log(2 / 3) + (2 / 3) * math.log(4 / 3)
    with_kl = transcoder_loss(LossConfig("mels", kl_weight=2.0), **kwargs)
    assert with_kl.total.item() == pytest.approx(2.5 + 2 * kl, rel=1e-6)
    assert with_kl.kl.item() == pytest.approx(kl, rel=1e-6) and with_kl.logits is None


def test_gradient_of_the_logits_loss_reaches_the_logits():
    logits = torch.zeros(1, 2, requires_grad=True)
    transcoder_loss(LossConfig("logits"), student_mel=torch.zeros(1, 1, 1),
                    true_mel=torch.zeros(1, 1, 1), student_logits=logits,
                    teacher_probs=torch.tensor([[1.0, 0.0]])).total.backward()
    # d BCE / d logit = (sigmoid(logit) - target) / n = (0.5 - t) / 2.
    assert torch.allclose(logits.grad, torch.tensor([[-0.25, 0.25]]))


def test_only_mels_without_kl_skips_the_teacher():
    assert not LossConfig("mels").needs_teacher
    assert LossConfig("mels", kl_weight=0.1).needs_teacher
    assert LossConfig("logits").needs_teacher and LossConfig("hybrid").needs_teacher
    terms = transcoder_loss(LossConfig("mels"), student_mel=torch.ones(1, 2, 2),
                            true_mel=torch.zeros(1, 2, 2), student_logits=None,
                            teacher_probs=torch.zeros(1, 3))
    assert terms.total.item() == 1.0


def test_bad_inputs_and_settings_are_named():
    with pytest.raises(SpecError, match="'bce'"):
        LossConfig("bce")
    with pytest.raises(SpecError, match="-1"):
        LossConfig("hybrid", mels_weight=-1)
    with pytest.raises(InputError, match=r"\(1, 3\) vs \(1, 2\)"):
        logits_loss(torch.zeros(1, 3), torch.zeros(1, 2))
    with pytest.raises(InputError, match="student_logits"):
        transcoder_loss(LossConfig("logits"), student_mel=torch.zeros(1, 1, 1),
                        true_mel=torch.zeros(1, 1, 1), student_logits=None,
                        teacher_probs=torch.zeros(1, 1))
    assert LossConfig.from_dict(LossConfig("hybrid", 0.5, 0.1).to_dict()) == LossConfig(
        "hybrid", 0.5, 0.1)
