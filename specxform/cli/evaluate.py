"""``specxform evaluate``: compare transcoding methods on the same held-out files.

Steps: resolve the pair and the teacher; list the dataset and take one part
of its grouped split (``--split``); build (or reuse) the feature cache of
``specxform train`` (the same cache: same clips, teacher and chunking); turn
``--methods`` into methods (``pinv``/``nnls``/``ridge``: the derived PINV;
any other name: the checkpoint given with ``--checkpoint NAME=CKPT``, checked
against the pair and the teacher); score them all on the same chunks
(:func:`specxform.evaluation.comparison.evaluate_methods`); print one table (or JSON) and,
with ``-o DIR``, write ``results.json``, ``results.csv``, ``results.md``,
example Mel figures and the per-class agreement figure, all or nothing.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from specxform.cli import common
from specxform.errors import InputError, SpecError

#: specxform.transcoders.pinv.METHODS, repeated so that building the parser does not import torch.
PINV_METHODS = ("pinv", "nnls", "ridge")
SPLITS = ("test", "valid", "train", "all")
#: Files ``-o DIR`` always receives (plus example-<k>.png and per-class.png).
OUTPUT_FILES = ("results.json", "results.csv", "results.md")
#: Table columns: metric key, header, format ("%" for shares).
COLUMNS = (("ptopa_fc", "PtoPa-FC", "%"), ("kl", "KL", ".4g"),
           ("kl_reference", "reference KL", ".3g"), ("mel_mse", "Mel MSE", ".3g"),
           ("bce", "BCE", ".4f"), ("top3", "top-3", "%"))
CSV_COLUMNS = ("method", "kind", "metric", "value", "low", "high", "n_files", "n_chunks",
               "overlap")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` command."""
    parser = subparsers.add_parser(
        "evaluate", help="compare PINV variants and trained transcoders on held-out files",
        description="Score transcoding methods by how well a frozen teacher's outputs on "
        "their Mels agree with its outputs on the true Mels (PtoPa-FC, KL, reference KL, "
        "Mel MSE, BCE, top-3, with bootstrap intervals over recordings), all on the same files "
        "of one part of the dataset's grouped split.",
    )
    common.add_pair_arguments(parser)
    common.add_data_arguments(parser)
    parser.add_argument("--split", choices=SPLITS, default="test",
                        help="part of the grouped split to evaluate (default: test)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the split, as given to `specxform train` (default: 0)")
    parser.add_argument("--methods", type=common.method_list_option("pinv,nnls"),
                        default=("pinv", "nnls"), metavar="LIST",
                        help="comma-separated: pinv, nnls, ridge, or names given with "
                        "--checkpoint (default: pinv,nnls; checkpoints are added)")
    parser.add_argument("--checkpoint",
                        type=common.checkpoint_option(PINV_METHODS, "cnn-logits"),
                        action="append", default=[],
                        metavar="NAME=CKPT", help="a trained checkpoint (student or retrained "
                        "teacher) evaluated as NAME (repeatable)")
    common.add_cache_arguments(parser)
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                        help="bootstrap draws of the 95%% intervals (default: 1000)")
    parser.add_argument("--examples", type=int, default=3, metavar="N",
                        help="example chunks drawn in -o (default: 3)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N",
                        help="chunks per forward pass (default: 64)")
    common.add_device_argument(parser)
    parser.add_argument("-o", "--output", metavar="DIR",
                        help="also write results.json/.csv/.md and figures to DIR")
    common.add_json_flag(parser)
    parser.set_defaults(func=run)


# ------------------------------------------------------------------------------ resolving


def method_names(methods: Sequence[str], checkpoints: Sequence[tuple[str, str]]) -> list[str]:
    """The methods in order: ``--methods`` then checkpoints not named there.

    Raises
    ------
    SpecError
        A name that is neither built in nor given a checkpoint, or a checkpoint
        name given twice.
    """
    given = [name for name, _ in checkpoints]
    twice = sorted({n for n in given if given.count(n) > 1})
    if twice:
        raise SpecError(f"--checkpoint {twice[0]}=... is given twice; name each checkpoint once.")
    missing = [m for m in methods if m not in PINV_METHODS and m not in given]
    if missing:
        examples = " ".join(f"--checkpoint {m}=CKPT" for m in missing)
        raise SpecError(
            f"method(s) {', '.join(map(repr, missing))} in --methods are not built in "
            f"({', '.join(PINV_METHODS)}) and have no checkpoint; pass {examples} (a best.pt "
            "of `specxform train`), or drop them."
        )
    return [*dict.fromkeys(methods), *(n for n in given if n not in methods)]


def _check_args(args: argparse.Namespace) -> None:
    if args.output and Path(args.output).exists() and not Path(args.output).is_dir():
        raise InputError(f"-o {args.output}: exists and is not a folder; give a folder.")
    for option, value, least in (("--bootstrap", args.bootstrap, 0),
                                 ("--examples", args.examples, 0),
                                 ("--batch-size", args.batch_size, 1)):
        if value < least:
            raise SpecError(f"{option} must be at least {least}, got {value}.")


def split_names(dataset: Any, part: str, seed: int) -> list[str]:
    """Clip names of one part of the dataset's split (``"all"``: every clip)."""
    if part == "all":
        return [c.name for c in dataset.clips]
    clips = getattr(dataset.split(seed=seed), part)
    if not clips:
        raise InputError(
            f"the {part} part of the split of {dataset.root} (seed {seed}) holds no clip; "
            "use --split all, another --seed, or a larger dataset."
        )
    return [c.name for c in clips]


def build_methods(names: Sequence[str], checkpoints: Sequence[tuple[str, str]], *,
                  source: Any, target: Any, teacher_name: str, digest: str, registry: Any,
                  device: Any) -> list[Any]:
    """:class:`~specxform.evaluation.comparison.Method` objects for ``names``
    (see :func:`method_names`).

    Called before the feature cache is built, so that a bad checkpoint is
    refused before minutes of caching.
    """
    from specxform.evaluation.comparison import checkpoint_method, pinv_method

    paths = dict(checkpoints)
    return [pinv_method(name, source, target) if name in PINV_METHODS else
            checkpoint_method(name, paths[name], source=source, target=target,
                              teacher_name=teacher_name, teacher_digest=digest,
                              registry=registry, device=device)
            for name in names]


def run(args: argparse.Namespace) -> int:
    """Evaluate every method, print the table, write the files of ``-o``."""
    from specxform import plugins
    from specxform.cli.progress import progress_bars
    from specxform.evaluation.comparison import cache_pair, check_teacher, evaluate_methods
    from specxform.teachers.labels import teacher_labels
    from specxform.training.cache import teacher_digest
    from specxform.training.trainer import select_device

    _check_args(args)
    names = method_names(args.methods, args.checkpoint)
    registry = plugins.get_registry()
    registry.pair(args.source, args.target)  # unknown names: the closest ones are suggested
    device = select_device(args.device)
    teacher_name, teacher = common.pair_teacher(registry, args, verb="evaluate")
    args.dataset = common.dataset_name(registry, args.dataset)
    dataset = registry.dataset(args.dataset).factory(args.data)
    clip_names = split_names(dataset, args.split, args.seed)
    methods = build_methods(names, args.checkpoint, source=registry.representation(args.source),
                            target=registry.representation(args.target),
                            teacher_name=teacher_name, digest=teacher_digest(teacher),
                            registry=registry, device=device)
    with progress_bars(common.stderr().is_terminal, transient=True) as progress:
        cache, chunking = common.pair_cache(registry, args, dataset.clips, teacher_name, teacher,
                                            progress)
        check_teacher(cache, teacher)
        result = evaluate_methods(cache, cache.rows(clip_names), teacher, methods, device=device,
                                  batch_size=args.batch_size, n_boot=args.bootstrap,
                                  seed=args.seed, n_examples=args.examples,
                                  groups={c.name: c.group for c in dataset.clips},
                                  progress=progress)
    labels = teacher_labels(teacher, cache.probs.shape[1])
    report = make_report(result, labels.names, source=args.source, target=args.target,
                         teacher=teacher_name, dataset=args.dataset, data=str(args.data),
                         split=args.split, seed=args.seed, n_clips=len(clip_names),
                         bootstrap=args.bootstrap, chunk_seconds=chunking.seconds,
                         checkpoints=dict(args.checkpoint))
    report["warnings"] = _warnings(report)
    for warning in report["warnings"]:
        common.warn(warning)
    written = (write_outputs(Path(args.output), report, result, cache_pair(cache)[1])
               if args.output else [])
    if args.json:
        common.print_json({**report, "written": written})
        return 0
    console = common.stdout()
    if not console.is_terminal:  # piped: not wrapped at 80 columns, one line per value
        console = Console(soft_wrap=False, width=160)
    console.print(results_table(report))
    for warning in report["warnings"]:
        console.print(f"warning: {warning}", highlight=False, soft_wrap=True, markup=False)
    for path in written:
        console.print(f"wrote {path}", highlight=False, soft_wrap=True)
    return 0


#: Below this many evaluated files the bootstrap intervals over files say little.
MIN_FILES = 10


def _warnings(report: dict[str, Any]) -> list[str]:
    """One line each: too few files for the intervals, checkpoints evaluated on their data."""
    out = []
    n = report["n_files"]
    if n < MIN_FILES:
        out.append(
            f"only {n} file{'s' if n != 1 else ''} evaluated: PtoPa-FC moves in steps of "
            f"{100 / n:.0f} points and the 95 % intervals over files mean little (with one "
            f"file every bootstrap draw is that file, e.g. [100.0, 100.0]); evaluate at least "
            f"{MIN_FILES} files (--split all, or more data).")
    for name, method in report["methods"].items():
        if method["overlap"]:
            out.append(
                f"{name} was trained or validated on {method['overlap']} of the {n} evaluated "
                "files, so its scores are optimistic; evaluate --split test with the seed it "
                "was trained with.")
    return out


# ------------------------------------------------------------------------------ reporting


def make_report(result: Any, class_names: Sequence[str], **info: Any) -> dict[str, Any]:
    """The JSON report: ``info`` (settings), the files, and per method its metrics."""
    data = result.to_dict()
    checkpoints = info.pop("checkpoints", {})
    for name, method in data["methods"].items():
        method["checkpoint"] = checkpoints.get(name)
    confidence = next(iter(result.metrics.values())).confidence
    return {**info, "confidence": confidence, **data, "class_names": list(class_names)}


def resampled(report: Mapping[str, Any]) -> str:
    """What the report's bootstrap intervals resampled, in words."""
    n = report.get("n_groups") or 0
    return f"over the files' {n} source recordings (groups)" if n else "over files"


def cell(estimate: Mapping[str, float], fmt: str, *, sep: str = " ") -> str:
    """``value [low, high]`` of one metric; ``fmt`` ``"%"`` prints shares in percent.

    ``sep`` goes between the value and the interval (a line break in terminal tables).
    """
    def one(x: float) -> str:
        return f"{100 * x:.1f}" if fmt == "%" else f"{x:{fmt}}"

    text = one(estimate["value"]) + (" %" if fmt == "%" else "")
    return f"{text}{sep}[{one(estimate['low'])}, {one(estimate['high'])}]"


def _rows(report: dict[str, Any], sep: str = " ") -> list[list[str]]:
    rows = []
    for name, method in report["methods"].items():
        metrics = method["metrics"]
        rows.append([name, *(cell(metrics[key], fmt, sep=sep) if key in metrics else "-"
                             for key, _, fmt in COLUMNS)])
    return rows


def _title(report: dict[str, Any]) -> str:
    return (f"{report['teacher']} on {report['source']} -> {report['target']}: "
            f"{report['n_files']} files ({report['split']} split, seed {report['seed']}), "
            f"{report['n_chunks']} chunks; value [{report['confidence']:.0%} bootstrap "
            f"interval {resampled(report)}]")


def results_table(report: dict[str, Any]) -> Table:
    """The rich table: one row per method, value and interval per metric."""
    table = Table(title=_title(report), title_justify="left")
    table.add_column("method")
    for _, header, _ in COLUMNS:
        table.add_column(header, justify="right")
    for row in _rows(report, sep="\n"):
        table.add_row(*row)
    return table


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def per_class_rows(report: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the per-class agreement table (agreeing / files per method)."""
    methods = report["methods"]
    classes = sorted({int(c) for m in methods.values() for c in m["per_class"]})
    names = report["class_names"]
    rows = []
    for c in classes:
        counts = [methods[m]["per_class"].get(str(c)) for m in methods]
        files = next((n["files"] for n in counts if n), 0)
        rows.append([names[c] if c < len(names) else f"class_{c}", str(files),
                     *(f"{n['agree']}" if n else "0" for n in counts)])
    return ["true top-1 class", "files", *methods], rows


def markdown(report: dict[str, Any]) -> str:
    """``results.md``: settings, the table, the per-class agreement, the files."""
    headers = ["method", *(header for _, header, _ in COLUMNS)]
    class_headers, class_rows = per_class_rows(report)
    overlap = [f"{n} ({m['overlap']} files)" for n, m in report["methods"].items()
               if m["overlap"]]
    lines = [
        f"# Evaluation: {report['teacher']} on {report['source']} -> {report['target']}", "",
        f"Data: `{report['data']}` ({report['dataset']}), {report['split']} part of the grouped "
        f"split with seed {report['seed']}: {report['n_clips']} clips, {report['n_files']} "
        f"with audible chunks, {report['n_chunks']} chunks of {report['chunk_seconds']:g} s. "
        f"Values with {report['confidence']:.0%} percentile bootstrap intervals "
        f"{resampled(report)} ({report['bootstrap']} draws).", "",
        markdown_table(headers, _rows(report)), "",
        "## Per-class agreement", "",
        "Files whose top-1 class on the transcoded Mels equals their top-1 on the true Mels, "
        "by true top-1 class.", "",
        markdown_table(class_headers, class_rows), "",
    ]
    if overlap:
        lines += [f"**Trained or validated on evaluated files:** {', '.join(overlap)}.", ""]
    return "\n".join(lines)


def csv_text(report: dict[str, Any]) -> str:
    """``results.csv``: one row per method and metric (value, interval, counts)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for name, method in report["methods"].items():
        for metric, estimate in method["metrics"].items():
            writer.writerow({"method": name, "kind": method["kind"], "metric": metric,
                             **estimate, "n_files": method["n_files"],
                             "n_chunks": method["n_chunks"], "overlap": method["overlap"]})
    return out.getvalue()


def write_figures(staged: Any, result: Any, target: Any, class_names: Sequence[str],
                  chunk_seconds: float) -> list[str]:
    """Example Mels (``example-<k>.png``) and ``per-class.png`` into a StagedFolder."""
    from specxform.evaluation.figures import plot_example, plot_per_class

    names = []
    for k, example in enumerate(result.examples, start=1):
        start = example.chunk * chunk_seconds
        name = f"example-{k}.png"
        plot_example(staged.path(name), true_mel=example.true_mel, mels=example.mels,
                     target=target, start_s=start,
                     title=f"{example.file}, {start:g}-{start + chunk_seconds:g} s")
        names.append(name)
    plot_per_class(staged.path("per-class.png"),
                   {m: metrics.per_class for m, metrics in result.metrics.items()},
                   class_names=class_names, title="agreement of the top-1 class per file")
    return [*names, "per-class.png"]


def write_outputs(folder: Path, report: dict[str, Any], result: Any, target: Any) -> list[str]:
    """Write the JSON, CSV, Markdown and PNG files into ``folder``, all or none."""
    from specxform.io import StagedFolder

    texts = {"results.json": json.dumps(report, indent=2) + "\n",
             "results.csv": csv_text(report), "results.md": markdown(report)}
    with StagedFolder(folder) as staged:
        for name in OUTPUT_FILES:
            staged.path(name).write_text(texts[name], encoding="utf-8")
        figures = write_figures(staged, result, target, report["class_names"],
                                report["chunk_seconds"])
    return [str(folder / name) for name in (*OUTPUT_FILES, *figures)]
