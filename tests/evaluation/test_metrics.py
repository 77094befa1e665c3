"""Agreement metrics: definitions checked against independent computations."""

import numpy as np
import pytest
import torch
from scipy.stats import entropy

from specxform.errors import InputError
from specxform.evaluation.metrics import (
    AgreementAccumulator,
    bootstrap,
    kl_normalised,
    kl_reference,
)


def test_kl_reference_is_what_kldivloss_batchmean_gives_on_1d_sigmoid_vectors(rng):
    p, q = rng.uniform(0.01, 0.99, (2, 27))
    loss = torch.nn.KLDivLoss(reduction="batchmean", log_target=True)
    expected = float(loss(torch.tensor(q), torch.tensor(p)))
    assert kl_reference(p[None], q[None])[0] == pytest.approx(expected, rel=1e-12)


def test_kl_normalised_equals_scipy_entropy_of_normalised_vectors(rng):
    p, q = rng.uniform(0.01, 0.99, (2, 4, 10))
    expected = [entropy(a, b) for a, b in zip(p, q, strict=True)]
    np.testing.assert_allclose(kl_normalised(p, q), expected, rtol=1e-10)
    np.testing.assert_allclose(kl_normalised(p, p), 0, atol=1e-12)


def test_ptopa_fc_averages_chunks_per_file_before_comparing():
    acc = AgreementAccumulator(3, 3, top_k=(1, 2))
    true = np.array([[0.9, 0.1, 0.0], [0.8, 0.1, 0.0],   # file 0: class 0
                     [0.1, 0.7, 0.0],                    # file 1: class 1
                     [0.0, 0.2, 0.9]])                   # file 2: class 2
    # file 0: chunk 1 disagrees but the file mean still ranks class 0 first
    pred = np.array([[0.9, 0.0, 0.0], [0.3, 0.4, 0.0],
                     [0.6, 0.5, 0.0],
                     [0.0, 0.1, 0.8]])
    acc.update([0, 0, 1, 2], true, pred)
    result = acc.result(n_boot=200)
    assert result["ptopa_fc"].value == pytest.approx(2 / 3)
    assert result["top2"].value == 1.0
    assert result["chunk_top1"].value == pytest.approx(2 / 4)
    assert result.per_class == {0: (1, 1), 1: (1, 0), 2: (1, 1)}
    assert result.n_files == 3 and result.n_chunks == 4
    assert "mel_mse" not in result.estimates


def test_mel_mse_and_intervals_bracket_the_value(rng):
    n_files, n_classes = 40, 5
    acc = AgreementAccumulator(n_files + 2, n_classes)  # two files never seen
    files = np.repeat(np.arange(n_files), 3)
    true = rng.uniform(0, 1, (len(files), n_classes))
    pred = np.clip(true + rng.normal(0, 0.2, true.shape), 0, 1)
    true_mel = rng.normal(size=(len(files), 8, 4))
    acc.update(files, true, pred, true_mel=true_mel, mel=true_mel + 2.0)
    result = acc.result(n_boot=300, seed=1)
    assert result["mel_mse"].value == pytest.approx(4.0)
    assert result.n_files == n_files
    for name, est in result.estimates.items():
        assert est.low <= est.value <= est.high, name
    assert result["kl"].high > result["kl"].low
    assert result.to_dict()["metrics"]["ptopa_fc"]["value"] == result["ptopa_fc"].value


def test_identical_outputs_score_perfectly(rng):
    acc = AgreementAccumulator(4, 6)
    probs = rng.uniform(0, 1, (8, 6))
    acc.update(np.arange(8) % 4, probs, probs)
    values = acc.result(n_boot=0).values()
    assert values["ptopa_fc"] == 1.0 and values["chunk_top1"] == 1.0
    assert values["kl"] == pytest.approx(0, abs=1e-12)
    assert values["kl_reference"] == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("bad", [np.nan, 1.5, -0.1])
def test_bad_probabilities_are_refused(bad):
    acc = AgreementAccumulator(1, 2)
    with pytest.raises(InputError, match="probabilities"):
        acc.update([0], [[0.5, bad]], [[0.5, 0.5]])


def test_mismatched_shapes_and_empty_accumulators_are_refused():
    acc = AgreementAccumulator(2, 3)
    with pytest.raises(InputError, match="shapes differ"):
        acc.update([0], [[0.1, 0.2, 0.3]], [[0.1, 0.2]])
    with pytest.raises(InputError, match="out of range"):
        acc.update([5], [[0.1, 0.2, 0.3]], [[0.1, 0.2, 0.3]])
    with pytest.raises(InputError, match="no chunk"):
        acc.result()


def test_bootstrap_of_constant_values_has_zero_width():
    est = bootstrap([0.5] * 10)
    assert (est.value, est.low, est.high) == (0.5, 0.5, 0.5)
