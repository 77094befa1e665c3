"""specxform.teachers.resolve: one resolution of a teacher, and offline-ness from weight files."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

import specxform
from specxform import plugins
from specxform.registry import Registry
from specxform.teachers import resolve
from specxform.weights import WeightFile

BUNDLED_CALLS: list[object] = []


def _bundled(weights: object = None) -> object:
    BUNDLED_CALLS.append(weights)
    return _Module()


class _Module:
    def eval(self) -> _Module:
        self.evaluated = True
        return self


class _Plugin:
    """A teacher without weight files (bundled), one with a file, one with alternatives."""

    @specxform.hookimpl
    def specxform_add_representations(self, registry: Registry) -> None:
        registry.add_representation(attrs.evolve(registry.representation("pann"),
                                                 name="untaught"))

    @specxform.hookimpl
    def specxform_add_teachers(self, registry: Registry) -> None:
        for name in ("one-file", "alt-a", "alt-b"):
            registry.add_weight_file(WeightFile(name=name, filename=f"{name}.bin",
                                                url=f"https://example.org/{name}.bin"))
        registry.add_teacher("bundled", target="pann", factory=_bundled, num_classes=3)
        registry.add_teacher("needs_file", target="pann", factory=_bundled, num_classes=3,
                             weights=("one-file",))
        registry.add_teacher("needs_one_of", target="pann", factory=_bundled, num_classes=3,
                             weights_any=("alt-a", "alt-b"))


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Registry:
    monkeypatch.setenv("SPECXFORM_WEIGHTS_PATH", str(tmp_path / "search"))
    monkeypatch.setenv("SPECXFORM_HOME", str(tmp_path / "home"))
    (tmp_path / "search").mkdir()
    return plugins.load_plugins(extra=[("resolve-test", _Plugin())]).registry


def test_a_teacher_without_weight_files_works_offline(registry: Registry) -> None:
    assert resolve.works_offline(registry, registry.teacher("bundled"))
    assert not resolve.works_offline(registry, registry.teacher("needs_file"))
    assert not resolve.works_offline(registry, registry.teacher("needs_one_of"))


def test_files_on_the_search_path_make_a_teacher_offline(registry: Registry,
                                                          tmp_path: Path) -> None:
    (tmp_path / "search" / "one-file.bin").write_bytes(b"x")
    (tmp_path / "search" / "alt-b.bin").write_bytes(b"x")  # one of the alternatives is enough
    assert resolve.works_offline(registry, registry.teacher("needs_file"))
    assert resolve.works_offline(registry, registry.teacher("needs_one_of"))
    names = [t.name for t in resolve.offline_teachers(registry, exclude="bundled")]
    assert "needs_file" in names and "needs_one_of" in names and "bundled" not in names


def test_the_named_teacher_is_built_in_eval_mode_with_its_weights(registry: Registry) -> None:
    BUNDLED_CALLS.clear()
    chosen = resolve.resolve_teacher(registry, "cense", "pann", "bundled", weights="w.pt")
    assert chosen.name == "bundled" and chosen.module.evaluated
    calls = list(BUNDLED_CALLS)
    assert calls == [Path("w.pt")]


def test_a_teacher_of_another_target_is_refused_naming_the_right_one(registry: Registry
                                                                     ) -> None:
    with pytest.raises(resolve.TeacherTargetError, match="pass target='pann'") as info:
        resolve.pair_teacher(registry, "cense", "yamnet", "bundled")
    assert (info.value.teacher, info.value.consumes, info.value.target) == (
        "bundled", "pann", "yamnet")


def test_a_pair_without_teacher_lists_the_registered_ones(registry: Registry) -> None:
    with pytest.raises(resolve.NoTeacherError, match="pass teacher=NAME") as info:
        resolve.pair_teacher(registry, "cense", "untaught")
    assert info.value.target == "untaught"
    assert "bundled" in {t.name for t in info.value.registered}
