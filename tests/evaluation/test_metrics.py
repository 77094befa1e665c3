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
    resample_groups,
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


def test_group_draws_hold_whole_groups_and_repeat_for_a_seed():
    groups = ["a"] * 3 + ["b"] * 2 + ["c"]
    draws = resample_groups(groups, 50, seed=1)
    members = {"a": {0, 1, 2}, "b": {3, 4}, "c": {5}}
    for draw in draws:
        counts = np.bincount(draw, minlength=6)
        # every picked group comes whole: its members are drawn equally often
        assert all(len({counts[i] for i in m}) == 1 for m in members.values())
        assert sum(counts[min(m)] for m in members.values()) == 3  # three groups picked
    assert all((x == y).all() for x, y in zip(draws, resample_groups(groups, 50, seed=1),
                                              strict=True))


def _two_recordings() -> AgreementAccumulator:
    """20 files of two recordings: every file of the first agrees, none of the second."""
    acc = AgreementAccumulator(20, 2)
    true = np.tile([[0.9, 0.1]], (20, 1))
    probs = np.concatenate([np.tile([[0.9, 0.1]], (10, 1)), np.tile([[0.1, 0.9]], (10, 1))])
    acc.update(np.arange(20), true, probs)
    return acc


def test_intervals_over_recordings_are_wider_than_over_files_when_files_are_alike():
    acc = _two_recordings()
    by_file = acc.result(n_boot=400)["ptopa_fc"]
    by_group = acc.result(n_boot=400, groups=["r1"] * 10 + ["r2"] * 10)
    estimate = by_group["ptopa_fc"]
    assert by_file.value == estimate.value == 0.5
    assert by_file.low > 0.2 and by_file.high < 0.8  # 20 "independent" files
    assert (estimate.low, estimate.high) == (0.0, 1.0)  # really two observations
    assert by_group.n_groups == 2 and acc.result(n_boot=10).n_groups == 0
    assert by_group.to_dict()["n_groups"] == 2
    assert by_group.agree == {i: i < 10 for i in range(20)}  # per file, by file index
    assert by_group.true_top == dict.fromkeys(range(20), 0)
    assert by_group.top == {i: 0 if i < 10 else 1 for i in range(20)}
    with pytest.raises(InputError, match="one label per file"):
        acc.result(groups=["r1"] * 3)


def test_bootstrap_of_a_mean_can_resample_groups():
    values = [1.0] * 5 + [0.0] * 5
    est = bootstrap(values, n_boot=400, groups=["x"] * 5 + ["y"] * 5)
    assert (est.value, est.low, est.high) == (0.5, 0.0, 1.0)
    with pytest.raises(InputError, match="one label per value"):
        bootstrap(values, groups=["x"])
