"""``specxform list`` and ``specxform plugins``, in process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import specxform
from specxform import plugins
from specxform.cli import listing
from specxform.cli.main import main
from specxform.errors import PluginLoadWarning
from specxform.registry import Registry


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_json_has_every_section_and_name(capsys, registry: Registry) -> None:
    code, out, _ = run(capsys, "list", "--json")
    assert code == 0
    data = json.loads(out)
    assert list(data) == list(listing.SECTIONS)
    assert [r["name"] for r in data["representations"]] == [
        r.name for r in registry.representations()
    ]
    assert [t["name"] for t in data["teachers"]] == [t.name for t in registry.teachers()]
    assert {(p["source"], p["target"]) for p in data["pairs"]} == {
        (p.source, p.target) for p in registry.pairs()
    }
    assert [s["name"] for s in data["students"]] == [s.name for s in registry.students()]
    assert [d["name"] for d in data["datasets"]] == [d.name for d in registry.datasets()]


def test_list_representation_fields(capsys, registry: Registry) -> None:
    code, out, _ = run(capsys, "list", "representations", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)["representations"]}
    cense = rows["cense"]
    assert cense["roles"] == ["source"] and cense["bands"] == 29
    assert cense["sample_rate"] == 32_000
    assert cense["frame_ms"] == pytest.approx(128.0) and cense["hop_ms"] == pytest.approx(125.0)
    assert rows["pann"]["hop_ms"] == pytest.approx(10.0) and rows["pann"]["roles"] == ["target"]
    assert cense["origin"]["plugin"] == registry.origin_of("representation", "cense").plugin


def test_list_pairs_marks_explicit_and_implicit(capsys) -> None:
    data = json.loads(run(capsys, "list", "pairs", "--json")[1])["pairs"]
    by_name = {(p["source"], p["target"]): p for p in data}
    assert by_name[("cense", "pann")]["explicit"] is True
    assert by_name[("cense", "pann")]["origin"]["plugin"] == "pairs"
    assert by_name[("bark", "pann")]["explicit"] is False


def test_list_tables_show_names(capsys, registry: Registry) -> None:
    code, out, _ = run(capsys, "list")
    assert code == 0
    for section in listing.SECTIONS:
        assert section in out
    assert "cense" in out and "yamnet" in out


def test_list_rejects_an_unknown_section(capsys) -> None:
    code, out, err = run(capsys, "list", "models")
    assert code == 2 and out == "" and "invalid choice: 'models'" in err


class FakeTeachers:
    """A third-party plugin registering two teachers of PANN."""

    @specxform.hookimpl
    def specxform_add_teachers(self, registry: Registry) -> None:
        registry.add_teacher("fake", target="pann", factory=object, num_classes=3,
                             parameter_count=1234, weights=("pann-cnn14", "not-catalogued"),
                             default=True, description="test teacher")
        registry.add_teacher("bare", target="pann", factory=object, num_classes=2)


@pytest.fixture
def with_fake_teachers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    loaded = plugins.load_plugins(extra=[("fake_teachers", FakeTeachers())], autoload=False)
    monkeypatch.setattr(plugins, "loaded", lambda: loaded)
    monkeypatch.setenv("SPECXFORM_HOME", str(tmp_path))
    return tmp_path


def test_list_teachers_with_some(capsys, with_fake_teachers: Path) -> None:
    data = json.loads(run(capsys, "list", "teachers", "--json")[1])["teachers"]
    fake = {t["name"]: t for t in data}["fake"]
    assert fake["target"] == "pann" and fake["num_classes"] == 3
    assert fake["parameter_count"] == 1234 and fake["origin"]["plugin"] == "fake_teachers"
    assert fake["weights"] == [{"name": "pann-cnn14", "status": "missing"},
                               {"name": "not-catalogued", "status": "unknown"}]
    pairs = json.loads(run(capsys, "list", "pairs", "--json")[1])["pairs"]
    assert {(p["source"], p["target"]): p["teacher"] for p in pairs}[("bark", "pann")] == "fake"
    code, out, _ = run(capsys, "list", "teachers")
    assert code == 0 and "fake" in out and "1,234" in out


def test_weight_status_sees_a_cached_file(with_fake_teachers: Path) -> None:
    weights = pytest.importorskip("specxform.weights")
    cached = weights.path(weights.get("pann-cnn14"))
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert listing.weight_status(("pann-cnn14", "nope")) == {
        "pann-cnn14": "present", "nope": "unknown"
    }
    assert listing.weight_status(()) == {}


def test_list_teachers_with_none(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = plugins.load_plugins(autoload=False, entry_points=[])
    monkeypatch.setattr(plugins, "loaded", lambda: loaded)
    code, out, _ = run(capsys, "list", "teachers", "--json")
    assert code == 0 and json.loads(out) == {"teachers": []}
    code, out, _ = run(capsys, "list", "teachers")
    assert code == 0 and "teachers: none registered" in out


def test_plugins_json(capsys) -> None:
    code, out, _ = run(capsys, "plugins", "--json")
    assert code == 0
    data = json.loads(out)
    loaded = plugins.loaded()
    assert [p["name"] for p in data["plugins"]] == [p.name for p in loaded.plugins]
    mels = {p["name"]: p for p in data["plugins"]}["mels"]
    assert mels["builtin"] is True and mels["distribution"] == "specxform"
    assert mels["hooks"] == ["specxform_add_representations"]
    assert data["failures"] == list(loaded.failures)


def test_plugins_table_lists_failures(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        @specxform.hookimpl
        def specxform_add_representations(self, registry: Registry) -> None:
            raise RuntimeError("broken [plugin]")

    with pytest.warns(PluginLoadWarning):
        loaded = plugins.load_plugins(extra=[("broken", Broken())], autoload=False)
    monkeypatch.setattr(plugins, "loaded", lambda: loaded)
    code, out, _ = run(capsys, "plugins")
    assert code == 0 and "third_octave" in out
    assert "failed:" in out and "broken [plugin]" in out
