"""specxform.progress: the library reports progress as events, and only the CLI draws them."""

from __future__ import annotations

from specxform.cli.progress import progress_bars
from specxform.progress import ProgressEvent, report


def test_report_sends_one_event_with_its_figures() -> None:
    seen: list[ProgressEvent] = []
    report(seen.append, "caching", 3, 10, chunks=12)
    assert seen == [ProgressEvent("caching", 3, 10, {"chunks": 12})]
    assert not seen[0].finished
    assert ProgressEvent("caching", 10, 10).finished
    assert not ProgressEvent("caching", 10, None).finished


def test_report_without_a_callback_does_nothing() -> None:
    report(None, "caching", 1, 2)  # must not raise: None is the library's default


def test_bars_are_off_off_a_terminal() -> None:
    # Under pytest stderr is captured, not a terminal: a bar there would be a cut frame.
    with progress_bars(True) as callback:
        assert callback is None
    with progress_bars(False) as callback:
        assert callback is None


def test_the_library_imports_no_drawing_code() -> None:
    """Only specxform/cli/ may import rich: the library reports, the CLI draws."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "specxform"
    drawing = []
    for path in root.rglob("*.py"):
        if "cli" in path.relative_to(root).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            drawing += [f"{path.relative_to(root)}:{node.lineno}" for n in names
                        if n == "rich" or n.startswith("rich.")]
    assert not drawing, drawing
