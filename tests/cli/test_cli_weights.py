"""``specxform weights``: listing, locating, verifying and fetching against 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from weight_server import PAYLOAD, Server

import specxform
from specxform import plugins, weights
from specxform.cli.main import main


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("SPECXFORM_HOME", str(tmp_path))
    monkeypatch.delenv("SPECXFORM_WEIGHTS_PATH", raising=False)
    return tmp_path


def register(monkeypatch: pytest.MonkeyPatch, *files: weights.WeightFile) -> None:
    """Make the process registry the built-ins plus a plugin registering ``files``."""

    class Files:
        @specxform.hookimpl
        def specxform_add_teachers(self, registry: specxform.Registry) -> None:
            for file in files:
                registry.add_weight_file(file)

    loaded = plugins.load_plugins(extra=[("files", Files())], autoload=False)
    monkeypatch.setattr(plugins, "loaded", lambda: loaded)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict]]:
    status = main([*argv, "--json"])
    return status, json.loads(capsys.readouterr().out)


def test_list_shows_every_catalogued_file_with_url_and_checksum(home: Path, capsys) -> None:
    status, rows = run_json(capsys, "weights", "list")
    assert status == 0
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == {w.name for w in weights.catalogue()}
    resnet = by_name["pann-resnet38"]
    assert resnet["md5"] == "bf12f36aaabac4e0855e22d3c3239c1b"
    assert resnet["size"] == 299_615_982
    assert resnet["status"] == "missing"
    assert resnet["path"] == str(home / "weights" / "ResNet38_mAP=0.434.pth")


def test_a_teacher_name_stands_for_its_files(home: Path, capsys) -> None:
    status, rows = run_json(capsys, "weights", "path", "yamnet")
    assert status == 0
    # None of YAMNet's interchangeable files is present: the one its factory downloads.
    assert [r["name"] for r in rows] == ["yamnet-class-map", "yamnet"]


def test_unknown_name_is_a_usage_error_with_suggestion(home: Path, capsys) -> None:
    assert main(["weights", "path", "pann-resnet39"]) == 2
    assert "pann-resnet38" in capsys.readouterr().err


def test_verify_reports_missing_and_corrupt_files(home: Path, capsys) -> None:
    status, rows = run_json(capsys, "weights", "verify", "pann-cnn14")
    assert status == 1 and rows[0]["status"] == "missing"
    cached = home / "weights" / "Cnn14_mAP=0.431.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not a checkpoint")
    status, rows = run_json(capsys, "weights", "verify", "pann-cnn14")
    assert status == 1 and rows[0]["status"] == "corrupt"
    assert "327,428,481" in rows[0]["detail"]


def test_fetch_downloads_and_verifies(
    home: Path, server: Server, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    register(monkeypatch, server.weight("tiny.pth"))
    status, rows = run_json(capsys, "weights", "fetch", "tiny.pth")
    assert status == 0 and rows[0]["status"] == "verified"
    assert (home / "weights" / "tiny.pth").read_bytes() == PAYLOAD
    status, rows = run_json(capsys, "weights", "verify", "tiny.pth")
    assert status == 0 and rows[0]["status"] == "verified"


def test_fetch_offline_says_where_to_put_the_file(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    gone = weights.WeightFile(name="gone", filename="gone.pth", url="http://127.0.0.1:9/gone.pth")
    register(monkeypatch, gone)
    assert main(["weights", "fetch", "gone"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "http://127.0.0.1:9/gone.pth" in err
    assert str(home / "weights" / "gone.pth") in err
    assert "--weights PATH" in err
