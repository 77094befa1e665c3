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
from specxform.errors import InputError

#: specxform.training.losses.METHODS, repeated so that building the parser does not import torch.
METHODS = ("logits", "mels", "hybrid")
#: specxform.training.trainer.PRECISIONS, likewise.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: specxform.training.trainer.LR_SCHEDULES, likewise.
LR_SCHEDULES = ("constant", "cosine")


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
    common.add_pair_arguments(parser)
    common.add_data_arguments(parser)
    parser.add_argument("--method", choices=METHODS, default="logits",
                        help="loss: teacher outputs, Mel MSE, or both (default: logits)")
    parser.add_argument("--kl-weight", type=float, default=0.0, metavar="W",
                        help="add W x KL(true || transcoded) of the teacher's normalised class "
                             "vectors to the loss (default: 0, off)")
    parser.add_argument("--balance", type=float, default=0.0, metavar="B",
                        help="draw each epoch's chunks with probability n**-B, n the chunks "
                             "sharing its top-1 class on the true Mel (0: plain shuffling, the "
                             "default; 1: every class equally often)")
    parser.add_argument("--epochs", type=int, default=200, metavar="N", help="default: 200")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N", help="default: 64")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (1e-3)")
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="constant",
                        help="constant (default), or cosine: decay from --lr to 0 over "
                             "--epochs")
    parser.add_argument("--seed", type=int, default=0, help="initialisation, order and split")
    parser.add_argument("--patience", type=int, metavar="N",
                        help="stop after N epochs without a better validation loss")
    parser.add_argument("--student", metavar="NAME", help="student (default: the pair's)")
    parser.add_argument("--student-config", type=_json_object, metavar="JSON",
                        help='student options, e.g. \'{"channels": 32}\'')
    parser.add_argument("--out", metavar="DIR",
                        help="run folder (default: runs/SOURCE-TARGET-TEACHER)")
    common.add_cache_arguments(parser)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    common.add_device_argument(parser)
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="mixed precision of student and teacher (auto: bf16/fp16 on CUDA, "
                        "fp32 on CPU)")
    parser.add_argument("--retrain-teacher", action="store_true",
                        help="baseline: fine-tune a copy of the teacher on PINV Mels instead "
                        "of training a student")
    parser.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                        help="write log.csv only, no TensorBoard events")
    parser.set_defaults(func=run)
    return parser


def _check_names(registry: Any, args: argparse.Namespace) -> None:
    """Check the student, its options and the dataset adapter before any work starts."""
    from specxform.pipeline.training import pair_student

    if args.retrain_teacher:
        given = [o for o, v in (("--student", args.student),
                                ("--student-config", args.student_config)) if v is not None]
        if given:
            raise InputError(f"{' and '.join(given)} choose the student, but --retrain-teacher "
                             "fine-tunes a copy of the teacher instead; drop one of them.")
    else:
        name, config = pair_student(registry, args.source, args.target, args.student,
                                    args.student_config)
        try:  # building the modules is cheap, and checks the options
            registry.student(name).factory(registry.representation(args.source),
                                           registry.representation(args.target), **config)
        except (TypeError, ValueError) as exc:
            raise InputError(f"--student-config {json.dumps(config)}: student {name!r} refuses "
                             f"it ({exc}); see its options in `specxform list students`.") from exc
    args.dataset = common.dataset_name(registry, args.dataset)


def run(args: argparse.Namespace) -> int:
    """Build the cache, train, and print the PINV baseline beside the best student."""
    from specxform import plugins
    from specxform.cli.progress import progress_bars
    from specxform.pipeline.training import run_folder, train_pair
    from specxform.teachers.resolve import ResolvedTeacher
    from specxform.training import distributed
    from specxform.training.losses import LossConfig
    from specxform.training.trainer import TrainConfig

    registry = plugins.get_registry()
    registry.pair(args.source, args.target)  # unknown names: the closest ones are suggested
    _check_names(registry, args)
    # Built before the teacher loads, so that bad values fail before any work.
    loss = LossConfig(method=args.method, kl_weight=args.kl_weight)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         seed=args.seed, patience=args.patience, device=args.device,
                         precision=args.precision, balance=args.balance,
                         lr_schedule=args.lr_schedule)
    teacher_name, teacher = common.pair_teacher(registry, args, verb="train")
    out = Path(args.out) if args.out else run_folder(args.source, args.target, teacher_name)
    terminal = common.stderr().is_terminal
    epoch_lines = None if terminal else EpochLines(out / "log.csv", args.epochs)
    with progress_bars(terminal and distributed.is_main()) as bars:
        run_ = train_pair(
            args.source, args.target, data=args.data, dataset=args.dataset,
            teacher=ResolvedTeacher(registry.teacher(teacher_name), teacher),
            student=args.student, student_config=args.student_config, out_dir=out,
            cache_dir=args.cache_dir, chunk_seconds=args.chunk_seconds,
            normalise=args.normalise, loss=loss, config=config,
            seed=args.seed, resume=args.resume, retrain_teacher=args.retrain_teacher,
            tensorboard=args.tensorboard, registry=registry, progress=bars,
            on_batch=epoch_lines,
        )
    if epoch_lines is not None and distributed.is_main():
        epoch_lines.flush()
    if distributed.is_main():
        _report(run_.result, len(run_.split.train), len(run_.split.valid),
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
