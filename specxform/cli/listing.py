"""``specxform list`` and ``specxform plugins``: what the installed plugins provide."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rich.markup import escape
from rich.table import Table

from specxform import plugins
from specxform.cli import common
from specxform.registry import Origin, Registry

SECTIONS = ("representations", "teachers", "pairs", "students", "datasets")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``list`` and ``plugins`` commands."""
    lister = subparsers.add_parser(
        "list", help="list registered representations, teachers, pairs, students, datasets",
        description="List what the installed plugins register (all sections by default).",
    )
    lister.add_argument("section", nargs="?", choices=SECTIONS, help="only this section")
    common.add_json_flag(lister)
    lister.set_defaults(func=run_list)
    plugs = subparsers.add_parser(
        "plugins", help="list loaded plugins and load failures",
        description="List each loaded plugin (distribution, version, hooks) and any failure.",
    )
    common.add_json_flag(plugs)
    plugs.set_defaults(func=run_plugins)


def _origin(origin: Origin) -> dict[str, Any]:
    return {"plugin": origin.plugin, "distribution": origin.distribution}


def weight_status(registry: Registry, names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Where each registered weight file is, without reading it.

    Returns, per name, ``{"name", "status", "where", "path"}``: ``status`` is
    ``"present"`` (a copy with the published size), ``"corrupt"`` (a copy of
    another size) or ``"missing"``; ``where`` is ``"search path"``
    (``$SPECXFORM_WEIGHTS_PATH``), ``"cache"`` or ``None``; ``path`` the copy
    found, else ``None``. Only sizes are compared (a stat per file), so listings
    stay fast; ``specxform weights verify`` compares checksums.
    """
    from specxform import weights

    status = {}
    for name in names:
        found = weights.find(registry.weight_file(name))
        state = "missing" if found is None else "present" if found.size_ok else "corrupt"
        status[name] = {
            "name": name, "status": state,
            "where": found.where if found is not None else None,
            "path": str(found.path) if found is not None else None,
        }
    return status


def representations(registry: Registry) -> list[dict[str, Any]]:
    """One record per representation: roles, rates, framing in ms, bands, unit."""
    rows = []
    for rep in registry.representations():
        fr = rep.framing
        rows.append({
            "name": rep.name, "roles": sorted(rep.roles), "sample_rate": rep.sample_rate,
            "frame_ms": 1000 * fr.frame_length / fr.sample_rate,
            "hop_ms": 1000 * fr.hop_length / fr.sample_rate,
            "bands": rep.n_bands, "unit": rep.unit, "description": rep.description,
            "origin": _origin(registry.origin_of("representation", rep.name)),
        })
    return rows


def teachers(registry: Registry) -> list[dict[str, Any]]:
    """One record per teacher: parameter count, where each weight file is (``weights``: all
    needed; ``weights_any``: interchangeable, one needed), whether its weights are present
    (every file of ``weights`` and one of ``weights_any``; true for a teacher that declares
    none, such as one with bundled weights), and the sources it accepts."""
    rows = []
    for t in registry.teachers():
        status = weight_status(registry, t.weights + t.weights_any)
        files = [status[w] for w in t.weights]
        alternatives = [status[w] for w in t.weights_any]
        rows.append({
            "name": t.name, "target": t.target, "num_classes": t.num_classes,
            "parameter_count": t.parameter_count,
            "weights": files,
            "weights_any": alternatives,
            "weights_present": all(f["status"] == "present" for f in files) and (
                not alternatives or any(f["status"] == "present" for f in alternatives)),
            "accepts_sources": registry.accepted_sources(t.name),
            "aux_inputs": list(t.aux_inputs), "default": t.default,
            "chunking": {"seconds": t.chunk_seconds, "normalise": t.normalise},
            "description": t.description, "origin": _origin(t.origin),
        })
    return rows


def pairs(registry: Registry) -> list[dict[str, Any]]:
    """One record per (source, target) pair, explicit or implicit."""
    return [{
        "source": p.source, "target": p.target, "explicit": p.explicit, "teacher": p.teacher,
        "student": p.student, "checkpoint": p.checkpoint, "description": p.description,
        "origin": _origin(p.origin),
    } for p in registry.pairs()]


def _named(entries: list[Any]) -> list[dict[str, Any]]:
    return [{"name": e.name, "description": e.description, "origin": _origin(e.origin)}
            for e in entries]


def _sections(registry: Registry) -> dict[str, Callable[[], list[dict[str, Any]]]]:
    return {
        "representations": lambda: representations(registry),
        "teachers": lambda: teachers(registry),
        "pairs": lambda: pairs(registry),
        "students": lambda: _named(registry.students()),
        "datasets": lambda: _named(registry.datasets()),
    }


def _weights_cell(row: dict[str, Any]) -> str:
    """``yes (search path)``, ``yes (search path; yamnet-tflite-spectra)`` (the alternative
    used), ``no: pann-cnn14 missing``, ``no: none of yamnet, yamnet-tflite-hub`` or
    ``none declared``."""
    files, alternatives = row["weights"], row.get("weights_any", [])
    if not files and not alternatives:
        return "none declared"
    used = next((f for f in alternatives if f["status"] == "present"), None)
    if row["weights_present"]:
        places = sorted({f["where"] for f in [*files, *([used] if used else [])]})
        alternative = f"; {used['name']}" if used else ""
        return f"yes ({', '.join(places)}{alternative})"
    bad = [f"{f['name']} {f['status']}" for f in files if f["status"] != "present"]
    if alternatives and used is None:
        bad.append("none of " + ", ".join(f["name"] for f in alternatives))
    return "no: " + ", ".join(bad)


def _table(section: str, rows: list[dict[str, Any]]) -> Table:
    columns: dict[str, Callable[[dict[str, Any]], str]] = {
        "representations": {
            "name": lambda r: r["name"], "roles": lambda r: ",".join(r["roles"]),
            "rate (Hz)": lambda r: f"{r['sample_rate']:,}",
            "frame/hop (ms)": lambda r: f"{r['frame_ms']:.4g} / {r['hop_ms']:.4g}",
            "bands": lambda r: str(r["bands"]), "unit": lambda r: r["unit"],
            "description": lambda r: r["description"],
        },
        "teachers": {
            "name": lambda r: r["name"], "target": lambda r: r["target"],
            "classes": lambda r: str(r["num_classes"]),
            "parameters": lambda r: "?" if r["parameter_count"] is None
            else f"{r['parameter_count']:,}",
            "weights": _weights_cell,
            "plugin": lambda r: r["origin"]["plugin"],
        },
        "pairs": {
            "source": lambda r: r["source"], "target": lambda r: r["target"],
            "declared": lambda r: "explicit" if r["explicit"] else "implicit",
            "default teacher": lambda r: r["teacher"] or "-",
            "default student": lambda r: r["student"],
            "shipped transcoder": lambda r: f"{r['source']}-{r['target']}" if r["checkpoint"]
            else "-",
            "plugin": lambda r: r["origin"]["plugin"],
        },
    }.get(section, {
        "name": lambda r: r["name"], "description": lambda r: r["description"],
        "plugin": lambda r: r["origin"]["plugin"],
    })
    table = Table(title=f"{section} ({len(rows)})", title_justify="left")
    for header in columns:
        table.add_column(header)
    for row in rows:
        table.add_row(*(cell(row) for cell in columns.values()))
    return table


def run_list(args: argparse.Namespace) -> int:
    """Print the requested sections as tables or JSON."""
    builders = _sections(plugins.get_registry())
    chosen = [args.section] if args.section else list(SECTIONS)
    data = {section: builders[section]() for section in chosen}
    if args.json:
        common.print_json(data)
        return 0
    console = common.stdout()
    for section, rows in data.items():
        if rows:
            console.print(_table(section, rows))
        else:
            console.print(f"{section}: none registered")
    return 0


def run_plugins(args: argparse.Namespace) -> int:
    """Print the loaded plugins and the load failures."""
    loaded = plugins.loaded()
    data: dict[str, Any] = {
        "plugins": [{"name": p.name, "distribution": p.distribution, "version": p.version,
                     "hooks": list(p.hooks), "builtin": p.builtin} for p in loaded.plugins],
        "failures": list(loaded.failures),
    }
    if args.json:
        common.print_json(data)
        return 0
    table = Table(title=f"plugins ({len(data['plugins'])})", title_justify="left")
    for header in ("name", "distribution", "version", "hooks", "builtin"):
        table.add_column(header)
    for p in data["plugins"]:
        hooks = ", ".join(h.removeprefix("specxform_") for h in p["hooks"])
        table.add_row(p["name"], p["distribution"] or "-", p["version"] or "-", hooks,
                      "yes" if p["builtin"] else "no")
    console = common.stdout()
    console.print(table)
    for failure in data["failures"]:
        console.print(f"[red]failed:[/red] {escape(failure)}", highlight=False)
    return 0
