"""The CLI modules import one another without a cycle (cli.common is shared, imports no command)."""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[2] / "specxform" / "cli"


def cli_imports() -> dict[str, set[str]]:
    """``{module: CLI modules it imports}``, deferred imports included."""
    graph: dict[str, set[str]] = {}
    for path in CLI.glob("*.py"):
        found: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in (n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)):
            module = node.module or ""
            if module == "specxform.cli":
                found |= {alias.name for alias in node.names}
            elif module.startswith("specxform.cli."):
                found.add(module.removeprefix("specxform.cli."))
        graph[path.stem] = found
    return graph


def test_no_import_cycle_among_the_cli_modules() -> None:
    graph = cli_imports()
    assert graph["classify"] and graph["common"] <= {"progress"}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, set()) - seen:
            if nxt == goal or reaches(nxt, goal, seen | {nxt}):
                return True
        return False

    cyclic = sorted(m for m in graph if reaches(m, m, set()))
    assert not cyclic, f"CLI modules in an import cycle: {cyclic}"
