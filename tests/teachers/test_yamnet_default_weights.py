"""YAMNet's default weights: the first official file present, else a download of yamnet.h5.

With no ``--weights`` the ``yamnet`` factory takes, in order, the first of
``yamnet.h5`` (float Keras), ``yamnet_spectra_in.tflite`` (Coral int8) and
``lite-model_yamnet_classification_tflite_1.tflite`` (TensorFlow Hub int8) found on
the search path or in the cache, verified; the teacher declares them as its
``weights_any``, so ``specxform list teachers`` counts its weights as present when
one of them is. Real files are linked from ../shared/weights (skipped when absent).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from specxform import weights
from specxform.cli.main import main
from specxform.errors import PluginError, WeightsError
from specxform.plugins import load_plugins
from specxform.registry import Registry
from specxform.weights import WeightFile

ROOT = Path(__file__).resolve().parents[2]
SHARED_WEIGHTS = Path(
    os.environ.get("SPECXFORM_SHARED_WEIGHTS", ROOT.parent / "shared" / "weights")
)
FILES = {
    "yamnet": "yamnet.h5",
    "yamnet-tflite-spectra": "yamnet_spectra_in.tflite",
    "yamnet-tflite-hub": "lite-model_yamnet_classification_tflite_1.tflite",
}


@pytest.fixture
def search_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty search-path folder and an empty cache: nothing is found unless linked."""
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv("SPECXFORM_WEIGHTS_PATH", str(folder))
    monkeypatch.setenv("SPECXFORM_HOME", str(tmp_path / "home"))
    return folder


def _link(folder: Path, *names: str) -> None:
    for name in names:
        official = SHARED_WEIGHTS / FILES[name]
        if not official.is_file():
            pytest.skip(f"{official.name} not found in {SHARED_WEIGHTS}")
        (folder / official.name).symlink_to(official)


def test_the_teacher_declares_the_three_files_in_the_factorys_order(registry: Registry):
    from specxform_builtins.teachers.yamnet import DEFAULT_WEIGHTS

    entry = registry.teacher("yamnet")
    assert entry.weights_any == DEFAULT_WEIGHTS == tuple(FILES)
    assert entry.weights == ("yamnet-class-map",)
    assert [registry.weight_file(n).filename for n in entry.weights_any] == list(FILES.values())


def test_only_the_hub_file_present_is_the_one_used(search_path: Path):
    pytest.importorskip("ai_edge_litert", reason="the tflite extra reads .tflite files")
    from specxform_builtins.teachers.yamnet import default_weight_file

    from specxform.plugins import get_registry

    _link(search_path, "yamnet-tflite-hub")
    assert default_weight_file(download=False) == search_path / FILES["yamnet-tflite-hub"]
    model = get_registry().teacher("yamnet").factory(download=False)
    assert model.folded_batchnorm and model.activation == "relu6"  # the TFLite variant


def test_the_first_present_file_wins_in_the_declared_order(search_path: Path):
    from specxform_builtins.teachers.yamnet import default_weight_file

    _link(search_path, "yamnet-tflite-hub", "yamnet-tflite-spectra")
    assert default_weight_file(download=False) == search_path / FILES["yamnet-tflite-spectra"]


def test_a_corrupt_copy_is_reported_not_skipped(search_path: Path):
    from specxform_builtins.teachers.yamnet import default_weight_file

    _link(search_path, "yamnet-tflite-hub")
    (search_path / FILES["yamnet-tflite-spectra"]).write_bytes(b"x" * 4_047_424)  # right size
    with pytest.raises(WeightsError, match="md5"):
        default_weight_file(download=False)


def test_none_present_offline_names_every_file(search_path: Path):
    from specxform.plugins import get_registry

    with pytest.raises(WeightsError) as caught:
        get_registry().teacher("yamnet").factory(download=False)
    message = str(caught.value)
    assert all(filename in message for filename in FILES.values()), message
    assert str(search_path) in message and "`weights=PATH`" in message


def test_a_failed_download_names_every_alternative(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SPECXFORM_WEIGHTS_PATH", raising=False)
    unreachable = [WeightFile(name=f"alt{i}", filename=f"alt{i}.bin",
                              url=f"http://127.0.0.1:9/alt{i}.bin") for i in range(2)]
    with pytest.raises(WeightsError) as caught:
        weights.resolve_any(unreachable, root=tmp_path)
    assert "cannot download alt0.bin" in str(caught.value)
    assert "alt1.bin (http://127.0.0.1:9/alt1.bin)" in str(caught.value)


def test_an_explicit_file_is_used_as_is(tmp_path: Path):
    given = tmp_path / "mine.tflite"
    given.write_bytes(b"anything")
    alternatives = [WeightFile(name="a", filename="a.bin", url="http://127.0.0.1:9/a")]
    assert weights.resolve_any(alternatives, given, root=tmp_path) == given
    with pytest.raises(WeightsError, match="at least one"):
        weights.resolve_any([], given)


def _list_yamnet(capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["list", "teachers", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["teachers"]
    return next(t for t in rows if t["name"] == "yamnet")


def test_listing_counts_one_alternative_as_present(search_path: Path, capsys,
                                                   monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps table cells to the terminal width
    row = _list_yamnet(capsys)
    assert row["weights_present"] is False
    assert [w["name"] for w in row["weights_any"]] == list(FILES)
    main(["list", "teachers"])
    assert ("no: yamnet-class-map missing, none of yamnet, yamnet-tflite-spectra, "
            "yamnet-tflite-hub") in capsys.readouterr().out

    (search_path / "yamnet_class_map.csv").symlink_to(SHARED_WEIGHTS / "yamnet_class_map.csv")
    _link(search_path, "yamnet-tflite-hub")
    row = _list_yamnet(capsys)
    assert row["weights_present"] is True
    assert [w["status"] for w in row["weights_any"]] == ["missing", "missing", "present"]
    main(["list", "teachers"])
    assert "yes (search path; yamnet-tflite-hub)" in capsys.readouterr().out


def test_weights_path_of_the_teacher_gives_the_file_its_factory_loads(search_path: Path,
                                                                      capsys):
    _link(search_path, "yamnet-tflite-hub")
    assert main(["weights", "path", "yamnet", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["yamnet-class-map", "yamnet-tflite-hub"]


@pytest.mark.parametrize(("teacher", "message"), [
    ({"weights_any": ("yamnet", "yamnet-tflite-hubb")}, "unknown weight file 'yamnet-tflite-hubb'"),
    ({"weights_any": "yamnet"}, "weights_any must be a tuple"),
    ({"weights": ("yamnet",), "weights_any": ("yamnet", "yamnet-tflite-hub")}, "in both"),
])
def test_bad_alternatives_are_refused(teacher: dict, message: str):
    fresh = load_plugins(autoload=False).registry  # built-ins only, not the shared registry
    with pytest.raises(PluginError, match=message):
        fresh.add_teacher("alt", target="yamnet", factory=object, num_classes=521, **teacher)
