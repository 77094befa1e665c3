"""``specxform weights list|fetch|verify|path``: the registered weight files.

NAME is a teacher (``yamnet``: the files its factory loads, i.e. all of its
``weights`` and, of its interchangeable ``weights_any``, the first present, else
the first) or a registered weight file (``pann-resnet38``). Without NAME, every
file the installed plugins register.
Each file is looked for on the search path (``$SPECXFORM_WEIGHTS_PATH``), then
in the cache; rows say where it was found.
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
        description="Manage the official weight files that plugins register: list them with "
        "their URL, size, checksum and where each was found ($SPECXFORM_WEIGHTS_PATH, the "
        "cache in $SPECXFORM_HOME or the user cache folder, or missing), download them "
        "(resumable, verified, atomic), verify them, or print where they are.",
    )
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="weight file or teacher name (default: all files)")
    common.add_json_flag(parser)
    parser.set_defaults(func=run)


def selected(names: list[str]) -> list[Any]:
    """The WeightFiles named by file or teacher names (all when ``names`` is empty)."""
    from specxform import plugins, weights

    registry = plugins.get_registry()
    if not names:
        return registry.weight_files()
    teacher_names = {t.name for t in registry.teachers()}
    files: dict[str, Any] = {}
    for name in names:
        if name in teacher_names:  # a teacher stands for the files its factory loads
            entry = registry.teacher(name)
            for file_name in entry.weights:
                files[file_name] = registry.weight_file(file_name)
            alternatives = [registry.weight_file(n) for n in entry.weights_any]
            if alternatives:
                chosen = weights.first_found(alternatives) or alternatives[0]
                files[chosen.name] = chosen
        else:
            files[name] = registry.weight_file(name)
    return list(files.values())


def record(weight: Any, status: str, found: Any = None, detail: str = "") -> dict[str, Any]:
    """One JSON/table row for a weight file.

    ``found`` is the :class:`specxform.weights.Location` of its copy, or None:
    ``where`` is then ``"missing"`` and ``path`` the place in the cache.
    """
    from specxform import weights

    return {
        "name": weight.name, "filename": weight.filename, "url": weight.url,
        "size": weight.size, "md5": weight.md5,
        "path": str(found.path if found is not None else weights.cache_path(weight)),
        "where": found.where if found is not None else "missing",
        "status": status, "detail": detail,
    }


def _row(weight: Any, action: str) -> dict[str, Any]:
    from specxform import weights

    if action == "fetch":  # a copy on the search path or in the cache is verified, not fetched
        weights.resolve(weight)
        return record(weight, "verified", weights.find(weight))
    found = weights.find(weight)
    if found is None:
        detail = f"not on {weights.SEARCH_PATH_ENV} nor in the cache" if action == "verify" else ""
        return record(weight, "missing", None, detail)
    if action == "verify":
        try:
            weights.verify(weight, found.path)
        except WeightsError as exc:
            return record(weight, "corrupt", found, str(exc))
        return record(weight, "verified", found)
    if not found.size_ok:
        return record(weight, "corrupt", found,
                      f"{found.path} has {found.path.stat().st_size:,} bytes, "
                      f"expected {weight.size:,}")
    return record(weight, "present", found)


def run(args: argparse.Namespace) -> int:
    """List, fetch, verify or locate; exit 1 when ``verify`` finds a bad or missing file."""
    files = selected(args.names)
    rows = [_row(w, "list" if args.action == "path" else args.action) for w in files]
    if args.action == "path":
        if args.json:
            common.print_json(rows)
        else:
            for row in rows:
                print(row["path"])
        return 0
    if args.json:
        common.print_json(rows)
    else:
        table = Table(title=f"weights {args.action}")
        for column in ("name", "file", "size", "md5", "status", "found"):
            table.add_column(column)
        for row in rows:
            size = f"{row['size']:,}" if row["size"] else "unpublished"
            found = "-" if row["where"] == "missing" else row["where"]
            table.add_row(row["name"], row["filename"], size, row["md5"] or "unpublished",
                          row["status"], found)
        common.stdout().print(table)
        for row in rows:
            if row["detail"]:
                common.stderr().print(f"{row['name']}: {row['detail']}", markup=False)
    bad = args.action == "verify" and any(r["status"] != "verified" for r in rows)
    return 1 if bad else 0
