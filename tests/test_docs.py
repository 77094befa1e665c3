"""The documentation stays in sync with the code.

Hooks, registry methods and built-in representations each have their place
in docs/; relative links resolve; the Python examples run and the command
lines parse.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import re
import shlex
import types
import warnings
from pathlib import Path

import pytest

from specxform import hookspecs
from specxform.plugins import ENTRY_POINT_GROUP, load_plugins
from specxform.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLE_SRC = ROOT / "examples" / "specxform-octave-bands" / "src"
#: The pages whose examples this file runs (docs/cli.md is tested with the CLI).
RUNNABLE = ("quickstart.md", "pinv.md", "plugins.md")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _read(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _blocks(text: str, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(text) if lang == language]


def _headings(text: str, level: int) -> list[str]:
    prose = FENCE.sub("", text)
    return re.findall(rf"^{'#' * level} (.+)$", prose, flags=re.MULTILINE)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _hookspec_names() -> set[str]:
    return {
        name for name, obj in vars(hookspecs).items()
        if name.startswith("specxform_") and hasattr(obj, f"{hookspecs.PROJECT_NAME}_spec")
    }


def _builtin_representations() -> set[str]:
    eps = [
        ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        if ep.dist is not None and ep.dist.metadata["Name"] == "specxform"
    ]
    return {r.name for r in load_plugins(entry_points=eps).registry.representations()}


# -- hooks.md ------------------------------------------------------------------


def test_every_hook_has_a_section_and_every_section_is_a_hook() -> None:
    sections = [re.sub(r"\W.*$", "", h.strip("` ")) for h in _headings(_read("hooks.md"), 2)]
    assert len(sections) == len(set(sections)), f"a hook is documented twice: {sections}"
    assert set(sections) == _hookspec_names()
    assert sections == list(hookspecs.HOOK_ORDER), "document the hooks in the order they run"


def test_hook_order_lists_every_hookspec() -> None:
    assert set(hookspecs.HOOK_ORDER) == _hookspec_names()


def test_every_registry_add_method_is_documented() -> None:
    text = _read("hooks.md")
    methods = [name for name, _ in inspect.getmembers(Registry) if name.startswith("add_")]
    assert methods, "Registry has no add_* methods?"
    missing = [m for m in methods if f"registry.{m}(" not in text]
    assert not missing, f"docs/hooks.md does not show how to call {missing}"


def test_hook_examples_register_what_they_say() -> None:
    """Each runnable example of docs/hooks.md, loaded as a plugin, registers without error."""
    blocks = [b for b in _blocks(_read("hooks.md"), "python")
              if "import " in b and "@specxform.hookimpl" in b]  # plugins, not snippets
    assert len(blocks) == len(hookspecs.HOOK_ORDER)
    extra = []
    for i, block in enumerate(blocks):
        module = types.ModuleType(f"hooks_md_example_{i}")
        exec(compile(block, f"docs/hooks.md example {i}", "exec"), module.__dict__)
        extra.append((module.__name__, module))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failing example would only warn
        loaded = load_plugins(extra=extra, autoload=False)
    reg = loaded.registry
    assert reg.representation("cense_half_second").framing.hop_length == 16_000
    assert reg.teacher("tiny_pann").target == "pann"
    assert reg.student("identity").description
    assert reg.dataset("urbansound8k").description
    assert reg.pair("bark", "yamnet").student_config == {"channels": 32}


# -- representations.md ---------------------------------------------------------


def test_every_builtin_representation_is_defined() -> None:
    documented = {h.strip("` ") for h in _headings(_read("representations.md"), 3)}
    builtins = _builtin_representations()
    assert builtins == documented, (
        f"undocumented: {sorted(builtins - documented)}, "
        f"documented but not built in: {sorted(documented - builtins)}"
    )


def test_index_lists_every_builtin_representation() -> None:
    text = _read("index.md")
    missing = [name for name in _builtin_representations() if f"`{name}`" not in text]
    assert not missing


# -- links -----------------------------------------------------------------------


def _relative_links() -> list[tuple[Path, str]]:
    links = []
    for page in sorted(DOCS.glob("*.md")):
        prose = FENCE.sub("", page.read_text(encoding="utf-8"))
        for target in LINK.findall(prose):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # skip http:, mailto:, ...
                links.append((page, target))
    return links


def test_docs_exist_with_links() -> None:
    assert {p.name for p in DOCS.glob("*.md")} >= {
        "index.md", "quickstart.md", "representations.md", "pinv.md", "plugins.md", "hooks.md",
    }
    assert _relative_links()


@pytest.mark.parametrize(("page", "target"), _relative_links(),
                         ids=lambda v: v.name if isinstance(v, Path) else v)
def test_relative_links_resolve(page: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    assert file.exists(), f"{page.name}: link to missing {target}"
    if anchor and file.suffix == ".md" and file.parent == DOCS:
        anchors = {_slug(h) for level in range(1, 7)
                   for h in _headings(file.read_text(encoding="utf-8"), level)}
        assert anchor in anchors, f"{page.name}: no heading for #{anchor} in {file.name}"


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_tables_have_as_many_cells_in_every_row(page: str) -> None:
    """An unescaped ``|`` inside a cell (``|X_k|``) splits it on GitHub; escape it as ``\\|``."""
    width = None
    for line in FENCE.sub("", _read(page)).splitlines():
        if not line.startswith("|"):
            width = None
            continue
        cells = len(re.findall(r"(?<!\\)\|", line))
        width = width or cells
        assert cells == width, f"{page}: {cells - 1} cells, not {width - 1}, in {line[:70]!r}"


def test_slug_follows_github() -> None:
    assert _slug("Design decision: the FFT-bin rule") == "design-decision-the-fft-bin-rule"
    assert _slug("`cense`") == "cense"


# -- examples --------------------------------------------------------------------


@pytest.mark.parametrize("page", RUNNABLE)
def test_python_examples_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python blocks of a page, run in order in one namespace in an empty folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(EXAMPLE_SRC))  # plugins.md imports the example plugin
    blocks = _blocks(_read(page), "python")
    assert blocks
    namespace: dict[str, object] = {"__name__": f"docs_{page[:-3]}"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/{page} block {i}", "exec"), namespace)
    if page == "plugins.md":  # the shortened listing defines what the package defines
        import specxform_octave_bands

        assert namespace["octave"]() == specxform_octave_bands.octave()  # type: ignore[operator]


def _command_lines() -> list[str]:
    lines = []
    for page in sorted(DOCS.glob("*.md")):
        if page.name == "cli.md":
            continue
        for block in _blocks(page.read_text(encoding="utf-8"), "bash"):
            lines += [ln.split("#")[0].strip() for ln in block.splitlines()
                      if ln.startswith("specxform ")]
    return lines


@pytest.mark.parametrize("line", _command_lines())
def test_command_lines_parse(line: str) -> None:
    from specxform.cli.main import build_parser

    args = build_parser().parse_args(shlex.split(line)[1:])
    assert args.command == shlex.split(line)[1]
