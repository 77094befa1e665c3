"""The core names no built-in: every built-in name lives in plugins/specxform_builtins.

The registry is loaded, every name that the built-in plugins registered
(representations, teachers, students, datasets and declared pairs) is
collected, and every ``.py`` file under ``specxform/`` is parsed: a string
constant equal to one of those names (``"name"`` or ``'name'``) is a hit, and
the test fails listing each as ``file:line``. What replaces such a literal: a
property of the entry (its weight files, its folds, the registry's default).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from specxform.plugins import BUILTIN_DISTRIBUTION
from specxform.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "specxform"

#: (file under specxform/, name): the same word with another meaning, and why.
HOMONYMS = {
    ("archive/stores.py", "folder"): "an archive kind (a tree of level files), not the dataset",
    ("archive/convert.py", "folder"): "an archive kind (a tree of level files), not the dataset",
    ("cli/demo.py", "folder"): "a key of the demo's JSON report (where it wrote), not the dataset",
}


def builtin_names(registry: Registry) -> dict[str, str]:
    """``{name: kind}`` for everything the built-in plugins registered."""
    listed = {
        "representation": [r.name for r in registry.representations()],
        "teacher": [t.name for t in registry.teachers()],
        "student": [s.name for s in registry.students()],
        "dataset": [d.name for d in registry.datasets()],
        "pair": [p.name for p in registry.pairs() if p.explicit],
    }
    return {
        name: kind
        for kind, names in listed.items()
        for name in names
        if registry.origin_of(kind, name).distribution == BUILTIN_DISTRIBUTION
    }


def _all_lists(tree: ast.AST) -> set[int]:
    """``id`` of the string constants in ``__all__ = [...]``: Python names, not entries."""
    return {
        id(item)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
        for item in ast.walk(node.value)
    }


def string_literals(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, value)`` of every string constant in ``path`` (f-string parts included),
    except the entries of ``__all__`` (they name Python objects)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    exported = _all_lists(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in exported:
            yield node.lineno, node.value


def core_hits(names: dict[str, str]) -> list[str]:
    """``file:line: kind 'name'`` for every built-in name quoted in the core."""
    hits = []
    for path in sorted(CORE.rglob("*.py")):
        where = path.relative_to(CORE).as_posix()
        for line, value in string_literals(path):
            if value in names and (where, value) not in HOMONYMS:
                hits.append(f"{path.relative_to(ROOT)}:{line}: {names[value]} {value!r}")
    return sorted(set(hits))


@pytest.fixture(scope="module")
def names(registry: Registry) -> dict[str, str]:
    found = builtin_names(registry)
    assert found, "the built-in plugins registered nothing: the test would pass vacuously"
    return found


def test_the_builtins_register_names_of_every_kind(names: dict[str, str]) -> None:
    assert {"representation", "teacher", "student", "dataset"} <= set(names.values())


def test_the_scan_finds_a_quoted_name(tmp_path: Path, names: dict[str, str]) -> None:
    name = sorted(names)[0]
    probe = tmp_path / "probe.py"
    probe.write_text(f"__all__ = [{name!r}]\nif y == {name!r}:\n    pass\n"
                     f"z = f'{name} in text'\n")
    assert sorted(string_literals(probe)) == [(2, name), (4, f"{name} in text")]


def test_the_core_quotes_no_builtin_name(names: dict[str, str]) -> None:
    hits = core_hits(names)
    assert not hits, (
        f"{len(hits)} built-in name(s) quoted in the core (specxform/); move the knowledge "
        "into the plugin that registers the name:\n" + "\n".join(hits)
    )
