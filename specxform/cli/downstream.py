"""``specxform downstream``: probes on a frozen teacher's outputs, true vs transcoded Mels.

Steps: resolve the pair and the teacher; load the dataset and its evaluation
folds; build (or reuse) the feature cache of ``specxform train``; compute each
method's clip features (``true``: cached teacher outputs on the true Mels;
``pinv``/``nnls``/``ridge``: the derived PINV; ``--checkpoint NAME=CKPT``: a
trained transcoder or retrained teacher); train and score a probe per method
and fold (:mod:`specxform.evaluation.downstream`); print a table or JSON, and write
JSON, CSV and Markdown files with ``-o``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import warnings
from pathlib import Path
from typing import Any

from rich.table import Table

from specxform.cli import common
from specxform.errors import CheckpointError, InputError, InputWarning, SpecError

#: specxform.transcoders.pinv.METHODS, repeated so that building the parser does not import torch.
PINV_METHODS = ("pinv", "nnls", "ridge")
BUILTIN_METHODS = ("true", *PINV_METHODS)
#: specxform.evaluation.folds.SCHEMES, repeated so that building the parser does not
#: import torch.
SCHEMES = ("auto", "folds", "split", "grouped")
#: Files ``-o DIR`` receives.
OUTPUT_FILES = ("downstream.json", "downstream.csv", "downstream.md")
CSV_COLUMNS = ("method", "fold", "metric", "value", "low", "high", "std", "n_train", "n_valid",
               "n_test")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``downstream`` command."""
    parser = subparsers.add_parser(
        "downstream", help="probe a frozen teacher's outputs on true vs transcoded Mels",
        description="Train a probe Linear(N, 100) -> Linear(100, C) on a frozen teacher's clip "
        "outputs, computed from the true Mels and from transcoded Mels (PINV, trained "
        "checkpoints), and score it: by the dataset's official folds (UrbanSound8K, "
        "ESC-50) or split (SONYC-UST: macro-AUPRC), or by grouped K-fold "
        "cross-validation (any dataset, --scheme grouped).",
    )
    common.add_data_arguments(parser, dataset_required=True,
                              dataset_help="dataset adapter (see `specxform list datasets`)")
    common.add_pair_arguments(parser)
    parser.add_argument("--methods", type=common.method_list_option("true,pinv"),
                        default=("true", "pinv"), metavar="LIST",
                        help="comma-separated, from true, pinv, nnls, ridge (default: "
                        "true,pinv); checkpoints are added")
    parser.add_argument("--checkpoint", type=common.checkpoint_option(BUILTIN_METHODS, "logits"),
                        action="append", default=[],
                        metavar="NAME=CKPT", help="a trained checkpoint, evaluated as NAME "
                        "(repeatable)")
    parser.add_argument("--scheme", choices=SCHEMES, default="auto",
                        help="folds: the dataset's official cross-validation folds; split: its "
                        "official split; grouped: grouped K-fold cross-validation over its "
                        "groups (fsID, src_file...); auto (default): the first it has")
    parser.add_argument("--folds", type=int, metavar="K",
                        help="folds of the grouped scheme (default: 5)")
    parser.add_argument("--validate", action="store_true",
                        help="keep the probe's epoch with the best validation loss")
    parser.add_argument("--epochs", type=int, default=30, metavar="N", help="default: 30")
    parser.add_argument("--batch-size", type=int, default=32, metavar="N", help="default: 32")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="probe initialisation, order, folds")
    parser.add_argument("--standardise", action="store_true",
                        help="standardise the probe's inputs (training clips' mean and std)")
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                        help="bootstrap draws of the 95%% intervals (default: 1000)")
    common.add_cache_arguments(parser)
    common.add_device_argument(parser)
    parser.add_argument("-o", "--output", metavar="DIR",
                        help="also write downstream.json, downstream.csv, downstream.md to DIR")
    common.add_json_flag(parser)
    parser.set_defaults(func=run)


# ------------------------------------------------------------------------------ resolving


def _methods(args: argparse.Namespace) -> list[str]:
    unknown = [m for m in args.methods if m not in BUILTIN_METHODS]
    if unknown:
        raise SpecError(
            f"unknown method(s) {', '.join(map(repr, unknown))} in --methods; choose from "
            f"{', '.join(BUILTIN_METHODS)}, and add trained models with --checkpoint NAME=CKPT."
        )
    names = [*dict.fromkeys(args.methods), *(name for name, _ in args.checkpoint)]
    if len(set(names)) != len(names):
        raise SpecError(f"a method name is given twice: {names}; name each checkpoint once.")
    return names


def _load_checkpoints(args: argparse.Namespace, registry: Any, teacher_name: str,
                      device: Any) -> dict[str, Any]:
    """``{NAME: TrainedModel}``, each checked against the pair and the teacher."""
    from specxform.api import check_weights
    from specxform.training.checkpoint import load_model

    models = {}
    for name, path in args.checkpoint:
        model = load_model(path, device=device, registry=registry)
        check_weights(model.transcoder, path, "transcoder")
        if model.classifier is not None:
            check_weights(model.classifier, path, "fine-tuned teacher")
        pair = (model.source.name, model.target.name)
        if pair != (args.source, args.target):
            raise CheckpointError(
                f"--checkpoint {name}={path} transcodes {pair[0]} -> {pair[1]}, not "
                f"{args.source} -> {args.target}; give a checkpoint of this pair."
            )
        if model.teacher_name != teacher_name:
            raise CheckpointError(
                f"--checkpoint {name}={path} was trained for teacher {model.teacher_name!r}, "
                f"not {teacher_name!r}; pass --teacher {model.teacher_name}."
            )
        models[name] = model
    return models


def _dataset(registry: Any, args: argparse.Namespace) -> Any:
    """The dataset of ``--dataset``/``--data``.

    Under ``--scheme grouped`` the adapter's own split and folds are not used,
    so its warnings (UrbanSound8K fold 1 alone falling back to a random split)
    are not shown.
    """
    factory = registry.dataset(args.dataset).factory
    if args.scheme != "grouped":
        return factory(args.data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        return factory(args.data)


def _check_args(args: argparse.Namespace) -> None:
    if args.output and Path(args.output).exists() and not Path(args.output).is_dir():
        raise InputError(f"-o {args.output}: exists and is not a folder; give a folder.")
    if args.folds is not None and args.folds < 2:
        raise SpecError(f"--folds must be at least 2, got {args.folds}.")
    if args.bootstrap < 0:
        raise SpecError(f"--bootstrap must be >= 0, got {args.bootstrap}.")


# ------------------------------------------------------------------------------ computing


def _features(methods: list[str], cache: Any, teacher: Any, models: dict[str, Any],
              device: Any, progress: Any) -> dict[str, Any]:
    """Clip features ``(clips, outputs)`` of each method, clips in the cache's order."""
    from specxform.evaluation.downstream import transcoded_features, true_features
    from specxform.transcoders.pinv import PinvTranscoder

    source, target = _cache_pair(cache)
    features = {}
    for method in methods:
        if method == "true":
            features[method] = true_features(cache)[0]
            continue
        if method in PINV_METHODS:
            transcoder, classifier = PinvTranscoder(source, target, method=method), teacher
        else:
            model = models[method]
            transcoder, classifier = model.transcoder, model.classifier or teacher
        features[method] = transcoded_features(cache, transcoder, classifier, device=device,
                                               progress=progress, label=method)[0]
    return features


def _cache_pair(cache: Any) -> tuple[Any, Any]:
    """The source and target representations a feature cache was built for."""
    from specxform.representations.specs import Representation

    return (Representation.from_dict(cache.manifest["source"]),
            Representation.from_dict(cache.manifest["target"]))


def run(args: argparse.Namespace) -> int:
    """Evaluate every method, print the result, write the files of ``-o``."""
    from specxform import plugins
    from specxform.cli.progress import progress_bars
    from specxform.evaluation.downstream import evaluate_probes
    from specxform.evaluation.folds import dataset_folds
    from specxform.evaluation.probe import ProbeConfig
    from specxform.training.trainer import select_device

    _check_args(args)
    config = ProbeConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         seed=args.seed, standardise=args.standardise)
    methods = _methods(args)
    registry = plugins.get_registry()
    registry.pair(args.source, args.target)  # unknown names: the closest ones are suggested
    device = select_device(args.device)
    teacher_name, teacher = common.pair_teacher(registry, args, verb="evaluate")
    models = _load_checkpoints(args, registry, teacher_name, device)
    dataset = _dataset(registry, args)
    try:
        folds, scheme = dataset_folds(dataset, scheme=args.scheme, folds=args.folds,
                                      seed=args.seed, validate=args.validate)
    except (InputError, SpecError) as exc:  # the library names parameters; say the flags
        raise type(exc)(common.as_flags(str(exc), ("--folds", "--scheme", "--seed"))) from exc
    with progress_bars(common.stderr().is_terminal, transient=True) as progress:
        cache, chunking = common.pair_cache(registry, args, dataset.clips, teacher_name, teacher,
                                            progress)
        features = _features(methods, cache, teacher, models, device, progress)
        info = {"teacher": teacher_name, "source": args.source, "target": args.target,
                "chunk_seconds": chunking.seconds, "normalise": chunking.normalise,
                "checkpoints": {name: str(path) for name, path in args.checkpoint}}
        result = evaluate_probes(features, cache.files, dataset.clips, folds,
                                 classes=dataset.classes, config=config, n_boot=args.bootstrap,
                                 scheme=scheme, dataset=args.dataset, progress=progress, info=info)
    report = result.to_dict()
    written = write_files(Path(args.output), report) if args.output else []
    if args.json:
        common.print_json({**report, "written": written})
        return 0
    console = common.stdout()
    console.print(summary_table(report))
    console.print(folds_table(report))
    for path in written:
        console.print(f"wrote {path}", highlight=False, soft_wrap=True)
    return 0


# ------------------------------------------------------------------------------- printing


def _title(report: dict[str, Any]) -> str:
    return (f"{report['dataset']}: {report['metric']}, probe on {report['teacher']} "
            f"({report['source']} -> {report['target']}), {report['n_clips']} test clips")


def _interval(method: dict[str, Any]) -> str:
    return f"{method['low']:.3f} - {method['high']:.3f}"


def _summary_rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for m in report["methods"]:
        extra = {k: v for f in m["folds"] for k, v in f["extra"].items()}
        single = len(m["folds"]) == 1
        rows.append([m["method"], f"{m['value']:.3f}", _interval(m),
                     "-" if single else f"{m['std']:.3f}",
                     ", ".join(f"{k} {v:.3f}" for k, v in extra.items()) if single else ""])
    return rows


SUMMARY_HEADERS = ("method", "score", "95% interval", "std over folds", "other")


def summary_table(report: dict[str, Any]) -> Table:
    """A rich table: one row per method (mean, interval, spread)."""
    table = Table(title=_title(report), title_justify="left", caption=report["scheme"],
                  caption_justify="left")
    for header in SUMMARY_HEADERS:
        table.add_column(header, justify="left" if header in ("method", "other") else "right")
    for row in _summary_rows(report):
        table.add_row(*row)
    return table


def _fold_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    names = [f["name"] for f in report["folds"]]
    rows = [[m["method"], *(f"{f['value']:.3f}" for f in m["folds"])] for m in report["methods"]]
    return ["method", *names], rows


def folds_table(report: dict[str, Any]) -> Table:
    """A rich table of the per-fold scores (methods x folds)."""
    headers, rows = _fold_rows(report)
    table = Table(title=f"{report['metric']} per fold", title_justify="left")
    for header in headers:
        table.add_column(header, justify="left" if header == "method" else "right")
    for row in rows:
        table.add_row(*row)
    return table


def _markdown_table(headers: list[str] | tuple[str, ...], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    """The summary and per-fold tables as Markdown."""
    headers, rows = _fold_rows(report)
    return (f"## {_title(report)}\n\n{report['scheme']}.\n\n"
            f"{_markdown_table(SUMMARY_HEADERS, _summary_rows(report))}\n\n"
            f"### {report['metric']} per fold\n\n{_markdown_table(headers, rows)}\n")


def csv_text(report: dict[str, Any]) -> str:
    """One row per method and fold, then one ``fold = all`` row per method (mean, interval)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for m in report["methods"]:
        base = {"method": m["method"], "metric": m["metric"]}
        for f in m["folds"]:
            writer.writerow({**base, "fold": f["fold"], "value": f["value"],
                             "n_train": f["n_train"], "n_valid": f["n_valid"],
                             "n_test": f["n_test"]})
        writer.writerow({**base, "fold": "all", "value": m["value"], "low": m["low"],
                         "high": m["high"], "std": m["std"],
                         "n_test": sum(f["n_test"] for f in m["folds"])})
    return out.getvalue()


def write_files(folder: Path, report: dict[str, Any]) -> list[str]:
    """Write the JSON, CSV and Markdown files into ``folder``, all or none."""
    from specxform.io import StagedFolder

    texts = {"downstream.json": json.dumps(report, indent=2) + "\n",
             "downstream.csv": csv_text(report), "downstream.md": markdown(report)}
    with StagedFolder(folder) as staged:
        for name in OUTPUT_FILES:
            staged.path(name).write_text(texts[name], encoding="utf-8")
    return [str(folder / name) for name in OUTPUT_FILES]
