"""``specxform weights`` for files that plugins register, on the search path and in the cache.

A test plugin registers a file served from 127.0.0.1; ``$SPECXFORM_WEIGHTS_PATH``
and ``$SPECXFORM_HOME`` point at temporary folders.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from weight_server import PAYLOAD, Server

import specxform
from specxform import WeightFile, plugins
from specxform.cli.main import main

SHARED_WEIGHTS = Path(__file__).resolve().parents[3] / "shared" / "weights"


@pytest.fixture
def folders(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, Path]:
    """An empty search-path folder and an empty cache (``<home>/weights``)."""
    shared, home = tmp_path / "shared", tmp_path / "home"
    shared.mkdir()
    monkeypatch.setenv("SPECXFORM_WEIGHTS_PATH", str(shared))
    monkeypatch.setenv("SPECXFORM_HOME", str(home))
    return shared, home / "weights"


@pytest.fixture
def served(server: Server, monkeypatch: pytest.MonkeyPatch) -> WeightFile:
    """A plugin's weight file ``tiny.pth``, served by the local server, used by its teacher."""
    weight = server.weight("tiny.pth")

    class TinyWeights:
        @specxform.hookimpl
        def specxform_add_teachers(self, registry: specxform.Registry) -> None:
            registry.add_weight_file(weight)
            registry.add_teacher("tiny_teacher", target="pann", factory=object, num_classes=2,
                                 weights=(weight.name, "audioset-class-labels"))

    loaded = plugins.load_plugins(extra=[("tiny_weights", TinyWeights())], autoload=False)
    monkeypatch.setattr(plugins, "loaded", lambda: loaded)
    return weight


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict]]:
    status = main([*argv, "--json"])
    return status, json.loads(capsys.readouterr().out)


def test_list_shows_every_registered_file_and_where_it_is(
    capsys, folders: tuple[Path, Path], served: WeightFile
) -> None:
    shared, cache = folders
    status, rows = run_json(capsys, "weights", "list")
    assert status == 0
    by_name = {r["name"]: r for r in rows}
    assert list(by_name) == [w.name for w in plugins.get_registry().weight_files()]
    assert by_name["tiny.pth"]["where"] == "missing"
    assert by_name["tiny.pth"]["path"] == str(cache / "tiny.pth")
    (shared / "tiny.pth").write_bytes(PAYLOAD)
    rows = run_json(capsys, "weights", "list", "tiny.pth")[1]
    assert (rows[0]["status"], rows[0]["where"]) == ("present", "search path")
    assert rows[0]["path"] == str(shared / "tiny.pth")
    (shared / "tiny.pth").unlink()
    cache.mkdir(parents=True)
    (cache / "tiny.pth").write_bytes(PAYLOAD[:10])
    rows = run_json(capsys, "weights", "list", "tiny.pth")[1]
    assert (rows[0]["status"], rows[0]["where"]) == ("corrupt", "cache")
    assert main(["weights", "list", "tiny.pth"]) == 0
    out = capsys.readouterr().out
    assert "corrupt" in out and "cache" in out


def test_a_teacher_stands_for_its_registered_files(
    capsys, folders: tuple[Path, Path], served: WeightFile
) -> None:
    rows = run_json(capsys, "weights", "path", "tiny_teacher")[1]
    assert [r["name"] for r in rows] == ["tiny.pth", "audioset-class-labels"]


def test_verify_checks_the_search_path_copy(
    capsys, folders: tuple[Path, Path], served: WeightFile
) -> None:
    shared, _ = folders
    status, rows = run_json(capsys, "weights", "verify", "tiny.pth")
    assert status == 1 and rows[0]["status"] == "missing"
    assert "SPECXFORM_WEIGHTS_PATH" in rows[0]["detail"]
    (shared / "tiny.pth").write_bytes(bytes(len(PAYLOAD)))  # right size, wrong content
    status, rows = run_json(capsys, "weights", "verify", "tiny.pth")
    assert status == 1 and (rows[0]["status"], rows[0]["where"]) == ("corrupt", "search path")
    assert served.md5 in rows[0]["detail"]
    (shared / "tiny.pth").write_bytes(PAYLOAD)
    status, rows = run_json(capsys, "weights", "verify", "tiny.pth")
    assert status == 0 and (rows[0]["status"], rows[0]["where"]) == ("verified", "search path")


def test_fetch_downloads_a_plugins_file_unless_on_the_search_path(
    capsys, folders: tuple[Path, Path], served: WeightFile, server: Server
) -> None:
    shared, cache = folders
    (shared / "tiny.pth").write_bytes(PAYLOAD)
    status, rows = run_json(capsys, "weights", "fetch", "tiny.pth")
    assert status == 0 and (rows[0]["status"], rows[0]["where"]) == ("verified", "search path")
    assert server.requests == [] and not (cache / "tiny.pth").exists()
    (shared / "tiny.pth").unlink()
    status, rows = run_json(capsys, "weights", "fetch", "tiny.pth")
    assert status == 0 and (rows[0]["status"], rows[0]["where"]) == ("verified", "cache")
    assert (cache / "tiny.pth").read_bytes() == PAYLOAD
    assert server.requests == [("/tiny.pth", None)]


def test_path_prints_the_copy_found(capsys, folders: tuple[Path, Path], served: WeightFile) -> None:
    shared, cache = folders
    assert main(["weights", "path", "tiny.pth"]) == 0
    assert capsys.readouterr().out.strip() == str(cache / "tiny.pth")
    (shared / "tiny.pth").write_bytes(PAYLOAD)
    assert main(["weights", "path", "tiny.pth"]) == 0
    assert capsys.readouterr().out.strip() == str(shared / "tiny.pth")


def test_the_shared_official_files_verify_on_the_search_path(
    capsys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What ``./dev`` sets up on this machine: the official files, found and verified."""
    if not SHARED_WEIGHTS.is_dir():
        pytest.skip(f"no official weight files at {SHARED_WEIGHTS} (a user's machine)")
    monkeypatch.setenv("SPECXFORM_WEIGHTS_PATH", os.pathsep.join([str(tmp_path),
                                                                   str(SHARED_WEIGHTS)]))
    monkeypatch.setenv("SPECXFORM_HOME", str(tmp_path / "home"))
    names = ["audioset-class-labels", "yamnet-class-map", "yamnet-tflite-hub",
             "yamnet-tflite-spectra"]
    status, rows = run_json(capsys, "weights", "verify", *names)
    assert status == 0, rows
    assert [(r["name"], r["status"], r["where"]) for r in rows] == [
        (name, "verified", "search path") for name in names
    ]
    assert all(Path(r["path"]).parent == SHARED_WEIGHTS for r in rows)
