"""Fixtures of the training tests: a small real dataset and its feature cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from training_helpers import TinyTeacher, few_clips, small_split

from specxform.datasets import Clip, Split
from specxform.registry import Registry
from specxform.training.cache import FeatureCache, build_cache


@pytest.fixture(scope="session")
def few(shared_data: Path) -> list[Clip]:
    """Two real clips of each of six classes of the excerpt."""
    return few_clips(per_class=2)


@pytest.fixture(scope="session")
def split(few: list[Clip]) -> Split:
    return small_split()


@pytest.fixture(scope="session")
def tiny_cache(few: list[Clip], registry: Registry,
               tmp_path_factory: pytest.TempPathFactory) -> FeatureCache:
    """cense -> pann features of ``few`` with TinyTeacher(seed 0)."""
    return build_cache(few, source=registry.representation("cense"),
                       target=registry.representation("pann"), teacher=TinyTeacher(),
                       teacher_name="tiny", root=tmp_path_factory.mktemp("caches"))


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every training test runs torch on one thread (see tests/conftest.py)."""
