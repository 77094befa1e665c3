"""Shared fixtures: the registry, real audio from ../shared/data, generated signals."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from specxform.plugins import get_registry
from specxform.registry import Registry

# The local HTTP server fixture (`server`) for download tests.
pytest_plugins = ["weight_server"]

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SPECXFORM_SHARED_DATA", ROOT.parent / "shared" / "data"))
EXCERPT = SHARED_DATA / "urbansound8k-excerpt"
STREET = SHARED_DATA / "street-clips"


@pytest.fixture(scope="session")
def registry() -> Registry:
    return get_registry()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not EXCERPT.is_dir():
        pytest.skip(f"real recordings not found at {SHARED_DATA} (set SPECXFORM_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def excerpt_files(shared_data: Path) -> list[Path]:
    return sorted(EXCERPT.glob("*/*.wav"))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def one_torch_thread():
    """Tiny tensors: one thread is faster than two, and far faster on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_registry() -> Registry:
    """The installed plugins plus the tiny test teachers (``tiny``, ``tiny_aux``)."""
    from training.training_helpers import TinyPlugin

    from specxform.plugins import load_plugins

    return load_plugins(extra=[("tiny", TinyPlugin())]).registry
