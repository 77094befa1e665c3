"""specxform.pipeline.train_pair: the one library entry point that trains a pair."""

from __future__ import annotations

from pathlib import Path

import pytest
from training.training_helpers import TINY_STUDENT, TinyPlugin, small_split

from specxform import plugins
from specxform.errors import InputError
from specxform.pipeline import pair_student, run_folder, train_pair
from specxform.progress import ProgressEvent
from specxform.registry import Registry


@pytest.fixture
def tiny_registry(shared_data: Path) -> Registry:
    return plugins.load_plugins(extra=[("tiny", TinyPlugin())]).registry


def test_the_pairs_student_and_options_are_the_defaults(registry: Registry) -> None:
    pair = registry.pair("cense", "pann")
    assert pair_student(registry, "cense", "pann") == (pair.student, dict(pair.student_config))
    assert pair_student(registry, "cense", "pann", student_config={"layers": 1}) == (
        pair.student, {"layers": 1})
    other = next(s.name for s in registry.students() if s.name != pair.student)
    assert pair_student(registry, "cense", "pann", other) == (other, {})


def test_data_is_a_split_or_a_dataset_not_both(tiny_registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not both"):
        train_pair("cense", "pann", split=small_split(), data=tmp_path, dataset="folder",
                   teacher="tiny", registry=tiny_registry)
    with pytest.raises(InputError, match="dataset=None"):
        train_pair("cense", "pann", data=tmp_path, teacher="tiny", registry=tiny_registry)


@pytest.mark.slow  # about 6 s on two busy cores
def test_a_pair_trains_with_its_defaults_and_reports_progress(tiny_registry: Registry,
                                                              tmp_path: Path) -> None:
    from specxform.training.trainer import TrainConfig

    events: list[ProgressEvent] = []
    run = train_pair("cense", "pann", split=small_split(), teacher="tiny",
                     student_config=TINY_STUDENT, out_dir=tmp_path / "run",
                     cache_dir=tmp_path / "cache", registry=tiny_registry,
                     config=TrainConfig(epochs=1, batch_size=8, device="cpu"),
                     tensorboard=False, progress=events.append)
    pair = tiny_registry.pair("cense", "pann")
    assert (run.teacher, run.student, run.student_config) == ("tiny", pair.student, TINY_STUDENT)
    assert run.out_dir == tmp_path / "run"
    assert run_folder("cense", "pann", "tiny") == Path("runs") / "cense-pann-tiny"
    assert run.result.best_checkpoint.is_file()
    assert run.result.history[-1]["epoch"] == 1 == run.result.best_epoch
    assert len(run.cache.files) == len(run.split.train) + len(run.split.valid)
    tasks = {e.task for e in events}
    assert any(t.startswith("caching") for t in tasks) and "training" in tasks
    assert run.cache_seconds >= 0
