"""``specxform weights list|fetch|verify|path``: the teachers' official weight files.

NAME is a teacher (``yamnet``: all its files) or a catalogued file
(``pann-resnet38``). Without NAME, every catalogued file.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from specxform.cli import common
from specxform.errors import WeightsError

ACTIONS = ("list", "fetch", "verify", "path")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``weights`` command."""
    parser = subparsers.add_parser(
        "weights", help="list, fetch, verify or locate the teachers' official weight files",
        description="Manage official weight files in the cache ($SPECXFORM_HOME or the user "
        "cache folder): list them with their URL, size and checksum, download them (resumable, "
        "verified, atomic), verify them, or print where they live.",
    )
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="weight file or teacher name (default: all files)")
    common.add_json_flag(parser)
    parser.set_defaults(func=run)


def selected(names: list[str]) -> list[Any]:
    """The WeightFiles named by file or teacher names (all when ``names`` is empty)."""
    from specxform import plugins, weights

    if not names:
        return list(weights.CATALOGUE.values())
    registry = plugins.get_registry()
    teacher_names = {t.name for t in registry.teachers()}
    files: dict[str, Any] = {}
    for name in names:
        if name in teacher_names:  # a teacher stands for all its files
            for file_name in registry.teacher(name).weights:
                files[file_name] = weights.get(file_name)
        else:
            files[name] = weights.get(name)
    return list(files.values())


def record(weight: Any, status: str, detail: str = "") -> dict[str, Any]:
    """One JSON/table row for a weight file."""
    from specxform import weights

    return {
        "name": weight.name, "filename": weight.filename, "url": weight.url,
        "size": weight.size, "md5": weight.md5, "path": str(weights.path(weight)),
        "status": status, "detail": detail,
    }


def _status(weight: Any, action: str) -> tuple[str, str]:
    from specxform import weights

    if action == "fetch":
        weights.resolve(weight)
        weights.verify(weight)
        return "verified", ""
    if action == "verify":
        try:
            weights.verify(weight)
        except WeightsError as exc:
            present = weights.path(weight).is_file()
            return ("corrupt" if present else "missing"), str(exc)
        return "verified", ""
    return ("present" if weights.path(weight).is_file() else "missing"), ""


def run(args: argparse.Namespace) -> int:
    """List, fetch, verify or locate; exit 1 when ``verify`` finds a bad or missing file."""
    files = selected(args.names)
    if args.action == "path":
        rows = [record(w, *_status(w, "list")) for w in files]
        if args.json:
            common.print_json(rows)
        else:
            for row in rows:
                print(row["path"])
        return 0
    rows = [record(w, *_status(w, args.action)) for w in files]
    if args.json:
        common.print_json(rows)
    else:
        table = Table(title=f"weights {args.action}")
        for column in ("name", "file", "size", "md5", "status"):
            table.add_column(column)
        for row in rows:
            size = f"{row['size']:,}" if row["size"] else "unpublished"
            table.add_row(row["name"], row["filename"], size, row["md5"] or "unpublished",
                          row["status"])
        common.stdout().print(table)
        for row in rows:
            if row["detail"]:
                common.stderr().print(f"{row['name']}: {row['detail']}", markup=False)
    bad = args.action == "verify" and any(r["status"] != "verified" for r in rows)
    return 1 if bad else 0
