"""``specxform archive`` (convert, info) and ``specxform classify-archive``: whole archives.

The work is in :mod:`specxform.archive`; this module parses the command
lines, shows progress and prints the summaries. dask.distributed, pyarrow and
zarr (the ``archive`` extra) are imported only when a command runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from specxform.cli import common
from specxform.cli.progress import progress_bars
from specxform.errors import InputError
from specxform.progress import report

#: Modules of the ``archive`` extra.
EXTRA = ("distributed", "pyarrow", "zarr")


def _require_extra(what: str) -> None:
    missing = [m for m in EXTRA if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(f"{what} needs {', '.join(missing)}: install the archive extra "
                         "(pip install 'specxform[archive]').")


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (no Dask: a loop here) or more, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``archive`` and ``classify-archive`` commands."""
    parser = subparsers.add_parser(
        "archive", help="convert level files into a Zarr store chunked by time, or describe "
        "an archive",
        description="Work with archives of many sensors' levels (docs/archives.md): folder "
        "trees of level files, HDF5 files with one dataset per sensor, Zarr stores.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    convert = actions.add_parser(
        "convert", help="write a Zarr store chunked by time from level files",
        description="Read a folder tree of level files (one folder per sensor) or an HDF5 "
        "archive, validate it as `specxform classify` does, and write a Zarr store with one "
        "regular time axis per sensor, chunked by --chunk-seconds, so that it can be "
        "classified in parallel.")
    convert.add_argument("input", metavar="INPUT", help="folder tree or HDF5 archive")
    convert.add_argument("-o", "--output", required=True, metavar="STORE",
                         help="the Zarr store to create (a folder that does not exist)")
    convert.add_argument("--source", required=True, metavar="NAME",
                         help="representation of the stored levels, e.g. cense")
    convert.add_argument("--chunk-seconds", type=common.positive_seconds, default=3600.0,
                         metavar="SECONDS", help="time chunk length (default: 3600)")
    common.add_json_flag(convert)
    convert.set_defaults(func=run_convert)
    info = actions.add_parser(
        "info", help="sensors, chunks and layout of an archive",
        description="List the sensors of an archive and the time chunks they are cut into.")
    info.add_argument("input", metavar="ARCHIVE", help="folder tree, HDF5 file or Zarr store")
    info.add_argument("--source", required=True, metavar="NAME",
                      help="representation of the stored levels, e.g. cense")
    info.add_argument("--chunk-seconds", type=common.positive_seconds, metavar="SECONDS",
                      help="chunk length of HDF5 and Zarr sensors (default: the Zarr chunks, "
                      "one hour for HDF5)")
    common.add_json_flag(info)
    info.set_defaults(func=run_info)
    _register_classify(subparsers)


def _register_classify(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "classify-archive", help="classify a whole archive on a Dask cluster into Parquet",
        description="Classify every time chunk of every sensor of an archive with a trained "
        "checkpoint, on a local Dask cluster (or the one at --scheduler), into a Parquet "
        "dataset partitioned by sensor and day, an hourly class-presence table and a "
        "failures table. A rerun into the same -o resumes: complete chunks are skipped.")
    parser.add_argument("archive", metavar="ARCHIVE",
                        help="folder tree of level files, HDF5 file or Zarr store")
    parser.add_argument("--checkpoint", required=True, metavar="CKPT",
                        help="a `specxform train` checkpoint (file or run folder)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="output folder (created; resumed when it holds an earlier run)")
    parser.add_argument("--source", metavar="NAME",
                        help="representation of the stored levels (default: the checkpoint's)")
    engine = parser.add_mutually_exclusive_group()
    engine.add_argument("--scheduler", metavar="ADDRESS",
                        help="address of an existing Dask scheduler (tcp://host:8786)")
    engine.add_argument("--workers", type=_workers, default=2, metavar="N",
                        help="worker processes of the local Dask cluster, one thread each "
                        "(default: 2; 0: no Dask, a loop in this process)")
    parser.add_argument("--window", type=common.positive_seconds, metavar="SECONDS",
                        help="window length (default: the checkpoint's training chunk length)")
    parser.add_argument("--top", type=common.positive_int, default=5, metavar="K",
                        help="classes kept per window (default: 5)")
    parser.add_argument("--threshold", type=_probability, default=0.5, metavar="P",
                        help="a class is present in a window when its probability is at least "
                        "P (hourly summary; default: 0.5)")
    parser.add_argument("--db-offset", type=common.db_offset, metavar="DB|auto",
                        help="dB added to the stored levels, or 'auto' (default): minus the "
                        "99th percentile of the frames' broadband level, per sensor")
    parser.add_argument("--chunk-seconds", type=common.positive_seconds, metavar="SECONDS",
                        help="chunk length of HDF5 and Zarr sensors (default: the Zarr chunks, "
                        "one hour for HDF5)")
    parser.add_argument("--weights", metavar="PATH", help="teacher weight file")
    parser.add_argument("--retry-failed", action="store_true",
                        help="classify again the chunks an earlier run could not read")
    parser.add_argument("--plots", metavar="DIR",
                        help="also draw one hourly class-presence PNG per sensor into DIR")
    common.add_json_flag(parser)
    parser.set_defaults(func=run_classify)


# ----------------------------------------------------------------------------- archive


def _source(name: str) -> Any:
    from specxform import plugins

    source = plugins.get_registry().representation(name)
    if "source" not in source.roles:
        raise InputError(f"--source {name}: {name!r} is not a source representation; see "
                         "`specxform list` for the sources.")
    return source


def _time(us: int | None) -> str:
    if us is None:
        return "?"
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat()


def run_convert(args: argparse.Namespace) -> int:
    """``specxform archive convert``."""
    _require_extra("archive convert")
    from specxform.archive.convert import convert_archive

    source = _source(args.source)
    with progress_bars(common.stderr().is_terminal, transient=True) as draw:

        def progress(sensor: str, done: int, total: int) -> None:
            report(draw, f"convert {sensor}", done, total)

        result = convert_archive(args.input, args.output, source,
                                 chunk_seconds=args.chunk_seconds, progress=progress)
    if args.json:
        common.print_json({"store": str(result.path), "chunk_frames": result.chunk_frames,
                           "sensors": result.sensors})
        return 0
    console = common.stdout()
    for sensor, info in result.sensors.items():
        console.print(f"{sensor}: {info.get('inputs', 0)} input(s), {info['frames']:,} frames "
                      f"from {info.get('start', '?')}, {info.get('missing', 0):,} missing",
                      highlight=False, soft_wrap=True)
    console.print(f"wrote {result.path} ({len(result.sensors)} sensor(s), chunks of "
                  f"{result.chunk_frames:,} frames)", highlight=False, soft_wrap=True)
    return 0


def run_info(args: argparse.Namespace) -> int:
    """``specxform archive info``."""
    _require_extra("archive info")
    from specxform.archive import open_archive

    archive = open_archive(args.input, _source(args.source), chunk_seconds=args.chunk_seconds)
    sensors: dict[str, dict[str, Any]] = {}
    for chunk in archive.chunks:
        entry = sensors.setdefault(chunk.sensor, {"chunks": 0, "first": None, "last": None})
        entry["chunks"] += 1
        start, end = chunk.time_range_us()
        entry["first"] = entry["first"] or start
        entry["last"] = end if end is not None else entry["last"]
    described = {s: {"chunks": e["chunks"], "start": None if e["first"] is None
                     else _time(e["first"]), "end": None if e["last"] is None
                     else _time(e["last"])} for s, e in sensors.items()}
    if args.json:
        common.print_json({**archive.describe(), "sensors": described})
        return 0
    from rich.table import Table

    table = Table(title=f"{archive.path} ({archive.kind}, {archive.source.name})",
                  title_justify="left")
    for header in ("sensor", "chunks", "start", "end"):
        table.add_column(header, justify="right" if header == "chunks" else "left")
    for sensor, entry in described.items():
        table.add_row(sensor, str(entry["chunks"]), entry["start"] or "(in the files)",
                      entry["end"] or "")
    common.stdout().print(table)
    return 0


# ----------------------------------------------------------------------------- classify


def _engine(args: argparse.Namespace) -> Any:
    from specxform.archive.runner import DaskEngine, LoopEngine

    if args.scheduler:
        return DaskEngine(address=args.scheduler)
    if args.workers == 0:
        return LoopEngine()
    return DaskEngine(workers=args.workers)


def _spec(args: argparse.Namespace) -> Any:
    from specxform import plugins
    from specxform.archive import ModelSpec
    from specxform.levels.classify import trained_chunk_seconds
    from specxform.training.checkpoint import read_checkpoint, resolve_checkpoint

    source = args.source or read_checkpoint(args.checkpoint)["description"]["source"]["name"]
    if args.window is None:
        args.window = trained_chunk_seconds(args.checkpoint)
    return ModelSpec(str(resolve_checkpoint(args.checkpoint).resolve()), source,
                     None if args.weights is None else str(Path(args.weights).resolve()),
                     registry_factory=plugins.get_registry)


def run_classify(args: argparse.Namespace) -> int:
    """``specxform classify-archive``."""
    _require_extra("classify-archive")
    from specxform.archive import MapSettings, read_failures, read_hourly
    from specxform.archive.runner import classify_archive
    from specxform.archive.stores import archive_kind

    archive_kind(args.archive)  # a missing archive fails before the model loads
    spec = _spec(args)
    settings = MapSettings(window_s=args.window, top_k=args.top, threshold=args.threshold)
    offset = None if args.db_offset in (None, "auto") else float(args.db_offset)
    for warning in spec.load().warnings:
        common.warn(warning)
    engine = _engine(args)
    try:
        with progress_bars(common.stderr().is_terminal, transient=True) as draw:

            def progress(phase: str, done: int, total: int) -> None:
                report(draw, phase, done, total)

            run = classify_archive(args.archive, spec, args.output, settings=settings,
                                   db_offset=offset, chunk_seconds=args.chunk_seconds,
                                   engine=engine, retry_failed=args.retry_failed,
                                   progress=progress)
    finally:
        engine.close()
    written = [str(Path(args.output) / name) for name in ("windows", "hourly",
                                                          "failures.parquet", "summary.json")]
    if args.plots:
        from specxform.archive.plots import plot_hourly_presence
        from specxform.io import output_lock

        hourly = read_hourly(args.output) if run.markers else None
        with output_lock(args.plots, folder=True):
            for sensor in run.archive.sensors:
                if hourly is None:
                    break
                png = Path(args.plots) / f"{sensor.replace('/', '_')}.png"
                plot_hourly_presence(png, hourly, sensor, threshold=args.threshold)
                written.append(str(png))
    summary = run.summary()
    failures = read_failures(args.output).to_pylist()
    if run.failed:
        sys.stderr.write(f"specxform: warning: {run.failed} chunk(s) could not be read; see "
                         f"{Path(args.output) / 'failures.parquet'}\n")
    if args.json:
        common.print_json({**summary, "failures": [{**f, "start": _iso(f["start"]),
                                                    "end": _iso(f["end"])} for f in failures],
                           "written": written})
        return 0
    _print_summary(summary, failures, written)
    return 0


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def _print_summary(summary: dict[str, Any], failures: list[dict[str, Any]],
                   written: list[str]) -> None:
    console = common.stdout()
    rate = summary["sensor_hours_per_s"]
    console.print(
        f"{summary['archive']['path']}: {summary['chunks']} chunk(s) of "
        f"{len(summary['archive']['sensors'])} sensor(s); {summary['computed']} processed "
        f"now, {summary['skipped']} done before, {summary['failed']} unreadable; "
        f"{summary['windows']:,} windows; {summary['sensor_hours']:.2f} sensor-hours in "
        f"{summary['seconds']:.1f} s" + (f" ({rate:.2f} sensor-hours/s)" if rate else "")
        + f" on {summary['engine']}", highlight=False, soft_wrap=True)
    if failures:
        from rich.table import Table

        table = Table(title="unreadable chunks", title_justify="left")
        for header in ("sensor", "chunk", "start", "end", "error"):
            table.add_column(header)
        for f in failures[:20]:
            table.add_row(f["sensor"], f["chunk"], _iso(f["start"]) or "?",
                          _iso(f["end"]) or "?", f["error"])
        console.print(table)
    for path in written:
        console.print(f"wrote {path}", highlight=False, soft_wrap=True)
