"""Import layers: a module of specxform/ imports only its own layer and lower ones.

Every module under ``specxform/`` is parsed with :mod:`ast`, and every import
in it counts, at module level or inside a function or an ``if TYPE_CHECKING``
block alike (a deferred import is still a dependency). The layers, lowest
first, are :data:`LAYERS`; ``specxform`` itself (the package root) sits in
layer 4, and ``from specxform import name`` counts as an import of
``specxform.name`` when that is a module, else of the root.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "specxform"
PACKAGE = "specxform"

#: Layer number -> the top-level parts of specxform (``""`` is the package root).
LAYERS: dict[int, tuple[str, ...]] = {
    1: ("errors", "progress"),
    2: ("representations",),
    3: ("io", "audio"),
    4: ("weight_file", "weights", "registry", "hookspecs", "plugins", "teachers", "datasets", ""),
    5: ("transcoders",),
    6: ("training",),
    7: ("api",),
    8: ("evaluation", "levels"),
    9: ("pipeline", "archive"),
    10: ("testing", "cli"),
}
LAYER_OF = {part: layer for layer, parts in LAYERS.items() for part in parts}


def module_name(path: Path) -> str:
    """``specxform/a/b.py`` -> ``specxform.a.b``; ``specxform/a/__init__.py`` -> ``specxform.a``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    """Whether ``name`` (dotted, under specxform) is a module or package in the tree."""
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def part_of(name: str) -> str | None:
    """The top-level part of ``specxform`` that module ``name`` belongs to (None: not ours)."""
    pieces = name.split(".")
    if pieces[0] != PACKAGE:
        return None
    return pieces[1] if len(pieces) > 1 else ""


def imported(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every import in ``path``, relative ones resolved."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield node.lineno, candidate if is_module(candidate) else base


def modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def violations() -> list[str]:
    found = []
    for path in modules():
        here = part_of(module_name(path))
        assert here is not None
        layer = LAYER_OF[here]
        for line, name in imported(path):
            there = part_of(name)
            if there is None or there not in LAYER_OF or LAYER_OF[there] <= layer:
                continue
            found.append(
                f"{path.relative_to(ROOT)}:{line}: layer {layer} ({here or PACKAGE}) imports "
                f"{name}, layer {LAYER_OF[there]} ({there or PACKAGE})"
            )
    return found


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {part_of(module_name(path)) for path in modules()}
    unplaced = sorted(p for p in parts if p not in LAYER_OF)
    assert not unplaced, f"add {unplaced} to LAYERS in {Path(__file__).name}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from specxform import plugins\n", "specxform.plugins"),
        ("from specxform import hookimpl\n", "specxform"),
        ("def f():\n    from specxform.cli import main\n", "specxform.cli.main"),
        ("from . import errors\n", "specxform.errors"),
        ("import specxform.training.cache\n", "specxform.training.cache"),
    ],
)
def test_imports_are_found_and_resolved(source: str, expected: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    probe = CORE / "_layer_probe_does_not_exist.py"
    monkeypatch.setattr(Path, "read_text", lambda self, **_: source)
    assert [name for _, name in imported(probe)] == [expected]


def test_no_module_imports_a_higher_layer() -> None:
    found = violations()
    assert not found, (
        f"{len(found)} import(s) from a higher layer (layers lowest first: "
        + "; ".join(f"{n} {', '.join(p or PACKAGE for p in ps)}" for n, ps in LAYERS.items())
        + "):\n" + "\n".join(found)
    )


def type_checking_lines(path: Path) -> set[int]:
    """Line numbers inside ``if TYPE_CHECKING:`` blocks (imports for annotations only)."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def import_graph() -> dict[str, set[str]]:
    """Module -> the core modules it imports, deferred imports too (not TYPE_CHECKING ones)."""
    graph: dict[str, set[str]] = {}
    for path in modules():
        here, skip = module_name(path), type_checking_lines(path)
        graph[here] = {name for line, name in imported(path)
                       if line not in skip and part_of(name) is not None and name != here}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every simple cycle of ``graph``, once each, starting from its smallest name."""
    cycles: list[list[str]] = []
    done: set[frozenset[str]] = set()
    for start in sorted(graph):  # a depth-first search from each module, cycles found once
        stack = [(start, [start])]
        while stack:
            node, trail = stack.pop()
            for nxt in sorted(graph.get(node, ())):
                if nxt == start and len(trail) > 1 and frozenset(trail) not in done:
                    done.add(frozenset(trail))
                    cycles.append(trail)
                elif nxt not in trail and nxt > start and nxt in graph:
                    stack.append((nxt, [*trail, nxt]))
    return cycles


def test_cycles_are_found_once_each() -> None:
    graph = {"a": {"b"}, "b": {"c", "a"}, "c": {"a"}, "d": {"a"}}
    assert sorted(find_cycles(graph)) == [["a", "b"], ["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_even_through_deferred_imports() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles (move the shared piece into a module both can import):\n" + (
        "\n".join(" -> ".join([*c, c[0]]) for c in cycles))
