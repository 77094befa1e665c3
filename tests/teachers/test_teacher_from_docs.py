"""A teacher written from docs/hooks.md alone passes the contract the built-ins pass.

The teacher example of docs/hooks.md is written, as is, into a plugin module in
a temporary folder, loaded by the plugin manager like an installed plugin, and
checked with :func:`specxform.testing.check_teacher`. Its imports are held to
the public API, so the page cannot lean on a private module.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
from pathlib import Path

import pytest

import specxform
from specxform.plugins import load_plugins
from specxform.testing import check_teacher

DOCS = Path(__file__).resolve().parents[2] / "docs"
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _teacher_example() -> str:
    blocks = [b for b in FENCE.findall((DOCS / "hooks.md").read_text(encoding="utf-8"))
              if "def specxform_add_teachers" in b and "import " in b]
    assert len(blocks) == 1, "docs/hooks.md should hold one teacher plugin example"
    return blocks[0]


def _imports(source: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
    return found


def test_the_documented_teacher_uses_only_the_public_api() -> None:
    ours = [(m, n) for m, n in _imports(_teacher_example()) if m.split(".")[0] == "specxform"]
    assert ours
    for module, name in ours:
        assert module in specxform.PUBLIC_MODULES, f"docs import private module {module}"
        if module == "specxform" and name:
            assert name in specxform.__all__, f"docs import specxform.{name}, not exported"


def test_a_teacher_written_from_the_docs_passes_check_teacher(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_torch_thread) -> None:
    (tmp_path / "docs_tiny_teacher.py").write_text(_teacher_example(), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("docs_tiny_teacher")
    try:
        registry = load_plugins(extra=[("docs_tiny_teacher", module)]).registry
        assert registry.teacher("tiny_pann").origin.plugin == "docs_tiny_teacher"
        check_teacher(module.tiny_teacher, registry=registry)  # by factory, as a plugin would
        check_teacher("tiny_pann", registry=registry)
    finally:
        sys.modules.pop("docs_tiny_teacher", None)
