"""docs/cli.md documents every command and option, and its example command lines parse."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from specxform.cli.main import build_parser

CLI_MD = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
TEXT = CLI_MD.read_text(encoding="utf-8")


def commands() -> dict[str, argparse.ArgumentParser]:
    (action,) = (a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def section(name: str) -> str:
    """The text of ``## `specxform NAME` `` up to the next level-2 heading."""
    match = re.search(rf"^## `specxform {name}`\n(.*?)(?=^## |\Z)", TEXT, re.M | re.S)
    assert match, f"docs/cli.md has no section for `specxform {name}`"
    return match.group(1)


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_command_and_option_is_documented(name: str) -> None:
    text = section(name)
    assert f"[`{name}`](#specxform-{name})" in TEXT  # the overview table links to it
    options = {opt for action in commands()[name]._actions for opt in action.option_strings
               if opt.startswith("--") and opt != "--help"}
    missing = sorted(opt for opt in options if opt not in text)
    assert not missing, f"`specxform {name}` options missing from docs/cli.md: {missing}"


def example_lines() -> list[str]:
    lines = []
    for block in re.findall(r"^```console\n(.*?)^```", TEXT, re.M | re.S):
        lines += [ln[2:].split("|")[0].split("#")[0].strip() for ln in block.splitlines()
                  if ln.startswith("$ specxform ")]
    return lines


@pytest.mark.parametrize("line", example_lines())
def test_examples_parse(line: str) -> None:
    argv = shlex.split(line)[1:]
    args = build_parser().parse_args(argv)
    assert args.command == argv[0]
