"""``specxform classify``: a teacher's top classes per clip and over time.

Audio mode (``--teacher NAME``): the teacher runs on true Mels (its target
representation computed from the audio) of consecutive windows; the clip result
is the mean of the window probabilities (see :mod:`specxform.pipeline.classify`).

Level mode (``--source S --checkpoint CKPT``): stored levels, no audio, are
transcoded by a trained checkpoint and classified by its teacher
(:mod:`specxform.cli.classify_levels`).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from rich.table import Table

from specxform.cli import common
from specxform.errors import InputError

#: Result files ``-o`` can write, by suffix.
OUTPUT_SUFFIXES = (".csv", ".json")
CSV_COLUMNS = ("clip", "input", "window", "start_s", "end_s", "rank", "index", "label",
               "probability")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``classify`` command."""
    parser = subparsers.add_parser(
        "classify", help="top classes per clip and over time, from audio or stored levels",
        description="Run a teacher classifier on windows of audio files (--teacher: on their "
        "true Mels), or of stored level files (--source and --checkpoint: on the Mels a trained "
        "checkpoint transcodes from the levels); print the top classes of each file (mean of "
        "the window probabilities) and the top class over time.",
    )
    parser.add_argument("--teacher", metavar="NAME",
                        help="audio mode: teacher classifier (see `specxform list teachers`)")
    parser.add_argument("--source", metavar="NAME",
                        help="level mode: representation of the stored levels, e.g. cense "
                        "(default: the checkpoint's)")
    parser.add_argument("--checkpoint", metavar="CKPT",
                        help="level mode: a `specxform train` checkpoint (file or run folder)")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="audio files (--teacher), or level files .npy/.h5/.csv (--source "
                        "and --checkpoint), or folders holding them")
    parser.add_argument("--top", type=common.positive_int, default=5, metavar="K",
                        help="classes to report per clip and per window (default: 5)")
    parser.add_argument("--window", type=common.positive_seconds, metavar="SECONDS",
                        help="window length in seconds (default: the chunk length the teacher "
                        "or checkpoint was trained on; 1.0 for most)")
    parser.add_argument("-o", "--output", metavar="OUT",
                        help="also write the results to OUT (.csv or .json)")
    plots = parser.add_mutually_exclusive_group()
    plots.add_argument("--plot", metavar="PNG", help="timeline heat map of the one input")
    plots.add_argument("--plots", metavar="DIR", help="one timeline PNG per input in DIR")
    parser.add_argument("--weights", metavar="PATH", help="teacher weight file")
    parser.add_argument("--db-offset", type=common.db_offset, metavar="DB|auto",
                        help="level mode: dB added to the stored levels, or 'auto' (default): "
                        "per file, bring the 99th percentile of the frames' broadband level to "
                        "-12 dB, where peak-normalised clips have it")
    parser.add_argument("--levels-key", metavar="NAME",
                        help="level mode: HDF5 dataset holding the levels (default: levels, "
                        "each dataset of a levels group, or fast_125ms)")
    parser.add_argument("--jobs", type=common.positive_int, metavar="N",
                        help="level mode: classify N files at a time in worker processes "
                        "(default: 1)")
    common.add_strict_flag(parser)
    common.add_json_flag(parser)
    parser.set_defaults(func=run)


def _check_outputs(args: argparse.Namespace, n_inputs: int) -> None:
    """Refuse bad output paths before any computation."""
    if args.output and Path(args.output).suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(
            f"-o {args.output}: unknown result file type; give a name ending in .csv or .json."
        )
    if args.plot and Path(args.plot).suffix.lower() != ".png":
        raise InputError(f"--plot {args.plot}: the plot is a PNG; give a name ending in .png.")
    if args.plot and n_inputs != 1:
        raise InputError(
            f"--plot draws one clip, but {n_inputs} inputs were given; use --plots DIR for one "
            "PNG per input."
        )


def ranked(probs: Any, names: tuple[str, ...], k: int) -> list[dict[str, Any]]:
    """The top ``k`` classes of a probability vector as records, highest first."""
    from specxform.pipeline.classify import top_k

    return [{"rank": rank, "index": int(i), "label": names[i], "probability": float(probs[i])}
            for rank, i in enumerate(top_k(probs, k), start=1)]


def clip_record(file: common.InputFile, result: Any, names: tuple[str, ...], k: int
                ) -> dict[str, Any]:
    """JSON record of one clip: its top classes and the top classes of each window."""
    timeline = [
        {"start_s": float(start), "end_s": float(end), "top": ranked(probs, names, k)}
        for start, end, probs in zip(result.starts_s, result.ends_s, result.window_probs,
                                     strict=True)
    ]
    return {"input": str(file.path), "duration_s": result.duration_s, "windows": len(timeline),
            "top": ranked(result.probs, names, k), "timeline": timeline}


def csv_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per clip x rank (``window`` = ``"clip"``), then per clip x window x rank."""
    rows = []
    for name, clip in report["clips"].items():
        base = {"clip": name, "input": clip["input"]}
        end = clip["timeline"][-1]["end_s"]
        rows += [{**base, "window": "clip", "start_s": 0.0, "end_s": end, **top}
                 for top in clip["top"]]
        for w, window in enumerate(clip["timeline"]):
            rows += [{**base, "window": w, "start_s": window["start_s"],
                      "end_s": window["end_s"], **top} for top in window["top"]]
    return rows


def write_results(path: Path, report: dict[str, Any]) -> None:
    """Write the report as JSON or CSV (by suffix), atomically."""
    from specxform.io import atomic_write

    with atomic_write(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        if path.suffix.lower() == ".json":
            json.dump(report, fh, indent=2)
            fh.write("\n")
        else:
            writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(csv_rows(report))


def plot_clip(path: Path, name: str, result: Any, names: tuple[str, ...], k: int,
              teacher: str, window_s: float) -> None:
    """Timeline PNG of one clip: its top classes and every window's top class."""
    from specxform.evaluation.plotting import plot_timeline
    from specxform.pipeline.classify import timeline_classes

    rows = timeline_classes(result, k)
    labels = [f"{names[i]} ({result.probs[i]:.2f})" for i in rows]
    plot_timeline(path, result.window_probs[:, rows], starts_s=result.starts_s,
                  ends_s=result.ends_s, row_labels=labels,
                  title=f"{name}\n{teacher}, {window_s:g} s windows; clip mean in brackets; "
                  "red: top class of each window")


def write_outputs(args: argparse.Namespace, report: dict[str, Any], results: dict[str, Any],
                  names: tuple[str, ...]) -> list[str]:
    """Write ``-o`` and the plots; the plots of ``--plots`` appear only if everything worked."""
    from specxform.io import StagedFolder

    written: list[str] = []
    plot = {"names": names, "k": args.top, "teacher": args.teacher, "window_s": args.window}
    if args.plots:
        with StagedFolder(Path(args.plots)) as staged:
            for name, result in results.items():
                plot_clip(staged.path(name + ".png"), name, result, **plot)
                written.append(str(Path(args.plots) / (name + ".png")))
            if args.output:
                write_results(Path(args.output), report)
    else:
        if args.plot:
            (name, result), = results.items()
            plot_clip(Path(args.plot), name, result, **plot)
            written.append(args.plot)
        if args.output:
            write_results(Path(args.output), report)
    return ([args.output] if args.output else []) + written


def _print_tables(report: dict[str, Any]) -> None:
    console = common.stdout()
    for name, clip in report["clips"].items():
        table = Table(title=f"{name} ({clip['duration_s']:.2f} s, {clip['windows']} window(s) "
                      f"of {report['window_s']:g} s)", title_justify="left")
        for header in ("rank", "class", "probability"):
            table.add_column(header, justify="right" if header != "class" else "left")
        for top in clip["top"]:
            table.add_row(str(top["rank"]), top["label"], f"{top['probability']:.3f}")
        console.print(table)
        timeline = Table(title="top class over time", title_justify="left")
        for header in ("window (s)", "top class", "probability"):
            timeline.add_column(header, justify="right" if header != "top class" else "left")
        for window in clip["timeline"]:
            first = window["top"][0]
            timeline.add_row(f"{window['start_s']:g}-{window['end_s']:g}", first["label"],
                             f"{first['probability']:.3f}")
        console.print(timeline)


def _mode(args: argparse.Namespace) -> str:
    """``"audio"`` or ``"levels"``; refuses a mix of the two modes' options."""
    levels = args.source is not None or args.checkpoint is not None
    if args.teacher is not None and levels:
        raise InputError(
            "give either --teacher NAME (audio files) or --checkpoint (level files, with "
            "--source when it is not the checkpoint's), not both; the checkpoint names its own "
            "teacher."
        )
    if levels:
        if args.checkpoint is None:
            raise InputError("classifying level files needs --checkpoint CKPT (a `specxform "
                             "train` checkpoint); add it.")
        return "levels"
    if args.teacher is None:
        raise InputError("give --teacher NAME to classify audio files, or --checkpoint CKPT "
                         "to classify level files.")
    extra = [o for o, v in (("--db-offset", args.db_offset), ("--jobs", args.jobs),
                            ("--levels-key", args.levels_key)) if v is not None]
    if extra:
        raise InputError(f"{' and '.join(extra)} apply to level files; use them with --source "
                         "and --checkpoint.")
    return "audio"


def run(args: argparse.Namespace) -> int:
    """Classify every input, print tables or JSON, and write the requested files."""
    if _mode(args) == "levels":
        from specxform.cli.classify_levels import run_levels

        return run_levels(args, _check_outputs)
    return _run_audio(args)


def _run_audio(args: argparse.Namespace) -> int:
    """Audio mode: the teacher on the true Mels of each audio file."""
    from specxform import plugins
    from specxform.audio import load_audio
    from specxform.pipeline.classify import check_window, classify_audio
    from specxform.teachers.labels import teacher_labels

    registry = plugins.get_registry()
    entry = registry.teacher(args.teacher)  # unknown names: the closest ones are suggested
    if args.window is None:
        args.window = entry.chunk_seconds
    files = common.expand_inputs(args.inputs, kinds=("audio",))
    _check_outputs(args, len(files))
    target = registry.representation(entry.target)
    teacher = common.load_teacher(registry, entry, args.weights, verb="classify",
                                  with_target=False)
    check_window(teacher, target, args.window)
    labels = teacher_labels(teacher, entry.num_classes)
    if labels.warning:
        common.warn(labels.warning)
    results = {}
    with common.progress() as bar:
        task = bar.add_task(f"classify ({entry.name})", total=len(files))
        for file in files:
            audio, sr = load_audio(file.path)
            try:
                results[file.name] = classify_audio(teacher, target, audio, sr,
                                                    window_s=args.window)
            except InputError as exc:
                raise InputError(f"{file.path}: {exc}") from exc
            bar.advance(task)
    report: dict[str, Any] = {
        "teacher": entry.name, "target": entry.target, "window_s": args.window, "k": args.top,
        "labels": "placeholders" if labels.placeholders else "names",
        "clips": {file.name: clip_record(file, results[file.name], labels.names, args.top)
                  for file in files},
    }
    written = write_outputs(args, report, results, labels.names)
    if args.json:
        common.print_json({**report, "written": written})
        return 0
    _print_tables(report)
    for path in written:
        common.stdout().print(f"wrote {path}", highlight=False, soft_wrap=True)
    return 0
