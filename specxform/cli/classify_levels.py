"""``specxform classify --source S --checkpoint CKPT LEVELS...``: classes over time, from levels.

The level mode of ``specxform classify``. The pipeline is
:mod:`specxform.levels.classify`, the file layouts :mod:`specxform.levels.readers`,
and the records, files and plots :mod:`specxform.levels.reports`; this module
parses, draws the progress and prints the tables.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.table import Table

from specxform.cli import common
from specxform.levels.classify import LevelModel, LevelResult, trained_chunk_seconds
from specxform.levels.readers import level_inputs
from specxform.levels.reports import (
    LEVEL_CSV_COLUMNS,
    clip_head,
    duration_text,
    level_report,
    top_runs,
    write_json,
    write_outputs,
)

__all__ = ["LEVEL_CSV_COLUMNS", "level_inputs", "print_tables", "run_levels",
           "trained_chunk_seconds"]


def print_tables(model: LevelModel, results: dict[str, LevelResult], k: int,
                 window_s: float) -> None:
    """Per file: its top classes, then when each class was on top (runs)."""
    console = common.stdout()
    names = model.labels.names
    for name, result in results.items():
        head = clip_head(result, names, k)
        console.print(
            f"[bold]{name}[/bold]: {duration_text(head['duration_s'])} from "
            f"{head['start_time'] or format(result.start_s, 'g') + ' s'}, {result.windows} "
            f"window(s) of {window_s:g} s in {result.n_segments} segment(s), {result.gaps} "
            f"gap(s), {result.missing_frames} missing frame(s); offset "
            f"{result.db_offset:+.2f} dB ({result.offset_mode}); "
            f"{result.rtf:,.0f}x real time", highlight=False, soft_wrap=True)
        table = Table(title="top classes (mean over the windows)", title_justify="left")
        for header in ("rank", "class", "probability"):
            table.add_column(header, justify="right" if header != "class" else "left")
        for top in head["top"]:
            table.add_row(str(top["rank"]), top["label"], f"{top['probability']:.3f}")
        console.print(table)
        runs, count = top_runs(result, names)
        timeline = Table(title="top class over time", title_justify="left",
                         caption=(f"first {len(runs)} of {count} runs; -o writes every window"
                                  if count > len(runs) else None), caption_justify="left")
        for header in ("time (s)", "top class", "windows", "mean probability"):
            timeline.add_column(header, justify="left" if header == "top class" else "right")
        for start, end, label, n, mean in runs:
            timeline.add_row(f"{start:g}-{end:g}", label, str(n), f"{mean:.3f}")
        console.print(timeline)


def _classify(args: argparse.Namespace, model: LevelModel,
              files: list[tuple[Path, str, str | None]], store_dir: str
              ) -> dict[str, LevelResult]:
    from specxform import plugins
    from specxform.cli.progress import progress_bars
    from specxform.levels.classify import LevelSettings, classify_level_files

    settings = LevelSettings(window_s=args.window,
                             db_offset=None if args.db_offset in (None, "auto")
                             else float(args.db_offset))
    with progress_bars(common.stderr().is_terminal, transient=True) as progress:
        return classify_level_files(model, files, settings, store_dir, jobs=args.jobs or 1,
                                    weights=args.weights, registry_factory=plugins.get_registry,
                                    progress=progress)


def run_levels(args: argparse.Namespace, check_outputs: Any) -> int:
    """Classify level files with a checkpoint; print tables or JSON; write the files asked for."""
    import time

    from specxform.levels.classify import check_level_window, load_level_model

    files = level_inputs(args.inputs, args.levels_key)
    check_outputs(args, len(files))
    model = load_level_model(args.checkpoint, args.source, weights=args.weights)
    if args.window is None:
        args.window = trained_chunk_seconds(args.checkpoint)
    check_level_window(model, args.window)
    for warning in model.warnings:
        common.warn(warning)
    with tempfile.TemporaryDirectory(prefix="specxform-levels-") as store_dir:
        started = time.perf_counter()
        results = _classify(args, model, files, store_dir)
        seconds = time.perf_counter() - started
        written = write_outputs(model, results, seconds, k=args.top, window_s=args.window,
                                output=args.output, plot=args.plot, plots=args.plots)
        if args.json:
            full = level_report(model, results, seconds, k=args.top, window_s=args.window)
            write_json(sys.stdout, {**full, "written": written})
            return 0
        print_tables(model, results, args.top, args.window)
    total = sum(r.levels_seconds for r in results.values())
    common.stdout().print(f"classified {duration_text(total)} of levels in {seconds:.1f} s "
                          f"({total / max(seconds, 1e-9):,.0f}x real time)", highlight=False)
    for path in written:
        common.stdout().print(f"wrote {path}", highlight=False, soft_wrap=True)
    return 0
