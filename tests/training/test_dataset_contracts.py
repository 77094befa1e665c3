"""The dataset contract (:func:`specxform.testing.check_dataset`) on every registered adapter.

Each adapter registers ``example``, a writer of a tiny tree in its layout, so the
check runs everywhere with no data set on disk and no skip; new adapters are
tested automatically.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from specxform.datasets import AudioDataset, Clip, write_example_audio
from specxform.errors import PluginError
from specxform.plugins import get_registry, load_plugins
from specxform.testing import check_dataset

DATASETS = [d.name for d in get_registry().datasets()]


@pytest.mark.parametrize("name", DATASETS)
def test_every_registered_dataset_passes_the_contract_on_its_example(name: str) -> None:
    assert get_registry().dataset(name).example is not None, f"{name} registers no example"
    check_dataset(name)


def test_a_root_can_be_given_and_a_bad_listing_is_named(tmp_path: Path) -> None:
    for piece in range(3):
        write_example_audio(tmp_path / "dog" / f"{piece}.wav")
    check_dataset("folder", tmp_path)

    def unsorted(root, **options) -> AudioDataset:
        clips = tuple(Clip(root / "dog" / f"{i}.wav", f"dog/{i}.wav", "dog", str(i))
                      for i in (2, 0, 1))
        return AudioDataset("unsorted", Path(root), clips)

    registry = load_plugins(autoload=False).registry
    registry.add_dataset("unsorted", factory=unsorted)
    with pytest.raises(AssertionError, match="dataset unsorted: clips are not sorted"):
        check_dataset("unsorted", tmp_path, registry=registry)
    with pytest.raises(AssertionError, match="register it with example="):
        check_dataset("unsorted", registry=registry)
    with pytest.raises(PluginError, match="example must be a function"):
        registry.add_dataset("bad", factory=unsorted, example="tree/")  # type: ignore[arg-type]
