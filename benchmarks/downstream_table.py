"""Downstream, true vs transcoded (issue 10, section 5): probes on real AudioSet teachers.

Runs ``specxform downstream`` once per dataset and teacher on the real recordings of
``../shared/data`` and gathers the results::

    python benchmarks/downstream_table.py \\
        --checkpoint yamnet=/work/runs/cense-yamnet-coarse/best.pt \\
        --checkpoint efficientat_mn04=/work/runs/cense-efficientat-coarse/best.pt \\
        --cache-dir /work/runs/features

- ``urbansound8k/`` (fold 1 only): grouped 5-fold cross-validation by ``fsID``
  (``--dataset urbansound8k --scheme grouped --folds 5``);
- ``esc10/``: its official folds (``--dataset esc50``; folds 1 to 4 here).

Each with YAMNet (1 s peak-normalised chunks, the teacher's default) and
EfficientAT mn04 (whole 4 s clips at the recorded level: ``--chunk-seconds 4
--normalise none``), source ``cense``; methods: true Mels, PINV, and the trained
checkpoint of each teacher (copied first, so that a training job replacing
``best.pt`` meanwhile cannot mix two epochs). Probe: ``--standardise --epochs 300``,
the setting docs/evaluation.md recommends for small data.

Results: one folder per run (``downstream.json``/``.csv``/``.md`` of the command)
and ``downstream.json``/``downstream.md`` in ``--out`` with, per dataset and teacher,
the accuracy on true, PINV and transcoded Mels (mean over folds, 95 % bootstrap
interval over folds), the drop true -> transcoded in points (paired per fold; and
over clips), the checkpoint's epoch, and, because the transcoders were trained on
most of these recordings (teacher-student, no labels), the same figures on the
clips of the checkpoint's held-out test part alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from harness import SHARED, load_average, machine  # noqa: E402

from specxform.cli.main import main as cli  # noqa: E402
from specxform.evaluation.metrics import bootstrap  # noqa: E402
from specxform.io import atomic_write  # noqa: E402

#: teacher -> (target, chunking options)
TEACHERS = {
    "yamnet": ("yamnet", []),
    "efficientat_mn04": ("efficientat", ["--chunk-seconds", "4", "--normalise", "none"]),
}
#: dataset label -> (folder under ../shared/data, adapter, scheme options, clip-name prefix in
#: the training split of benchmarks/train_table2.py)
DATASETS = {
    "urbansound8k": ("urbansound8k", "urbansound8k", ["--scheme", "grouped", "--folds", "5"],
                     "urbansound8k/"),
    "esc10": ("esc10", "esc50", [], "esc10/"),
}
PROBE = ["--standardise"]
GOAL_DROP = 15.0  # points; the paper: 18.6 for PANN on UrbanSound8K
METHODS = ("true", "pinv", "transcoded")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", action="append", default=[], metavar="TEACHER=CKPT",
                        help="the trained cense checkpoint of each teacher")
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--cache-dir", type=Path, default=Path("/work/runs/features"))
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "downstream")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--teachers", default=",".join(TEACHERS))
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=300, help="probe epochs (300)")
    parser.add_argument("--keep-other-rows", action="store_true",
                        help="keep the rows of --out's downstream.json that this run does not "
                             "redo (e.g. after --teachers efficientat_mn04 with a new checkpoint)")
    parser.add_argument("--render", action="store_true",
                        help="only rewrite downstream.md from the downstream.json in --out")
    return parser.parse_args(argv)


def merge_rows(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``old`` rows, each replaced by the ``new`` row of its (dataset, teacher); new ones last."""
    fresh = {(r["dataset"], r["teacher"]): r for r in new}
    kept = [fresh.pop((r["dataset"], r["teacher"]), r) for r in old]
    return kept + list(fresh.values())


def snapshot(path: Path, folder: Path) -> dict[str, Any]:
    """Copy ``path`` into ``folder``; its epoch, validation metrics and SHA-256."""
    copy = folder / f"{path.parent.name}-{path.name}"
    shutil.copyfile(path, copy)
    data = torch.load(copy, weights_only=True, map_location="cpu")
    desc = data["description"]
    return {"path": str(path), "copy": copy, "epoch": int(data["epoch"]),
            "sha256": hashlib.sha256(copy.read_bytes()).hexdigest(),
            "student": desc.get("student", {}).get("name"), "metrics": data.get("metrics", {}),
            "held_out": {part: list(desc["split"][part]) for part in ("valid", "test")}}


def run_one(args: argparse.Namespace, dataset: str, teacher: str, ckpt: dict[str, Any]
            ) -> tuple[dict[str, Any], float]:
    folder, adapter, scheme, _ = DATASETS[dataset]
    target, chunking = TEACHERS[teacher]
    out = args.out / f"{dataset}-{teacher}"
    argv = ["downstream", "--dataset", adapter, "--data", str(args.data / folder),
            "--source", "cense", "--target", target, "--teacher", teacher,
            "--methods", "true,pinv", "--checkpoint", f"transcoded={ckpt['copy']}",
            *scheme, *chunking, *PROBE, "--epochs", str(args.epochs), "--seed", str(args.seed),
            "--bootstrap", str(args.bootstrap), "--cache-dir", str(args.cache_dir),
            "-o", str(out)]
    print("specxform", " ".join(argv), flush=True)
    start = time.perf_counter()
    status = cli(argv)
    if status != 0:
        raise SystemExit(f"specxform downstream exited with status {status}")
    seconds = time.perf_counter() - start
    report = json.loads((out / "downstream.json").read_text())
    report["command"] = "specxform " + " ".join(argv).replace(str(ckpt["copy"]), ckpt["path"])
    return report, seconds


def _method(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in report["methods"] if m["method"] == name)


def _held_out_names(report: dict[str, Any], ckpt: dict[str, Any], prefix: str,
                    part: str) -> list[str]:
    """The evaluated clips (downstream names) in the checkpoint's held-out ``part``."""
    held = {n.removeprefix(prefix) for n in ckpt["held_out"][part] if n.startswith(prefix)}
    return sorted(n for n in _method(report, "true")["predictions"]
                  if n.rsplit("/", 1)[-1] in held)


def _listing(args: argparse.Namespace, dataset: str) -> tuple[dict[str, str], dict[str, str]]:
    """(label, group) of every clip of ``dataset``, by clip name."""
    from specxform import plugins

    folder, adapter, _, _ = DATASETS[dataset]
    with warnings.catch_warnings():  # UrbanSound8K fold 1's fallback split: not used here
        warnings.simplefilter("ignore")
        listed = plugins.get_registry().dataset(adapter).factory(args.data / folder)
    return ({c.name: str(c.label) for c in listed.clips},
            {c.name: c.group for c in listed.clips})


def _clip_scores(report: dict[str, Any], names: list[str], labels: dict[str, str],
                 n_boot: int, seed: int, groups: dict[str, str] | None = None
                 ) -> dict[str, Any]:
    """Accuracy of each method on ``names`` and the paired drops, with intervals over clips
    (over their recordings, whole, given ``groups``)."""
    correct = {m: np.array([_method(report, m)["predictions"][n] == labels[n] for n in names],
                           dtype=np.float64) for m in METHODS}
    out: dict[str, Any] = {"n_clips": len(names)}
    if not names:
        return out
    by = None if groups is None else [groups.get(n, n) for n in names]
    if by is not None:
        out["n_groups"] = len(set(by))
    for m in METHODS:
        out[m] = bootstrap(correct[m], n_boot=n_boot, seed=seed, groups=by).to_dict()
    for m in ("pinv", "transcoded"):
        out[f"drop_{m}"] = bootstrap(100 * (correct["true"] - correct[m]), n_boot=n_boot,
                                     seed=seed, groups=by).to_dict()
    return out


def summarise(args: argparse.Namespace, dataset: str, teacher: str, report: dict[str, Any],
              ckpt: dict[str, Any], seconds: float) -> dict[str, Any]:
    prefix = DATASETS[dataset][3]
    values = {m: np.array([f["value"] for f in _method(report, m)["folds"]]) for m in METHODS}
    labels, groups = _listing(args, dataset)
    every = sorted(_method(report, "true")["predictions"])
    row: dict[str, Any] = {
        "dataset": dataset, "teacher": teacher, "target": report["target"],
        "scheme": report["scheme"], "n_clips": report["n_clips"], "n_classes": len(
            report["classes"]), "chunk_seconds": report["chunk_seconds"],
        "normalise": report["normalise"], "probe": report["probe"],
        "checkpoint": {k: v for k, v in ckpt.items() if k not in ("copy", "held_out")},
        "seconds": seconds, "command": report["command"],
    }
    for m in METHODS:
        method = _method(report, m)
        row[m] = {k: method[k] for k in ("value", "low", "high", "std")}
        row[m]["folds"] = values[m].tolist()
    for m in ("pinv", "transcoded"):
        row[f"drop_{m}"] = bootstrap(100 * (values["true"] - values[m]), n_boot=args.bootstrap,
                                     seed=args.seed).to_dict()
    row["over_clips"] = _clip_scores(report, every, labels, args.bootstrap, args.seed, groups)
    row["held_out_test"] = _clip_scores(report, _held_out_names(report, ckpt, prefix, "test"),
                                        labels, args.bootstrap, args.seed, groups)
    row["goal_met"] = row["drop_transcoded"]["value"] <= GOAL_DROP
    return row


def _pct(e: dict[str, Any]) -> str:
    return f"{100 * e['value']:.1f} [{100 * e['low']:.1f}, {100 * e['high']:.1f}]"


def _pts(e: dict[str, Any]) -> str:
    return f"{e['value']:+.1f} [{e['low']:+.1f}, {e['high']:+.1f}]"


def markdown(report: dict[str, Any]) -> str:
    rows = report["rows"]
    lines = [
        "# Downstream, true vs transcoded (issue 10, section 5)", "",
        "A frozen AudioSet teacher classifies each clip; a probe `Linear(N, 100) -> "
        "Linear(100, C)` learns the dataset's classes from the clip outputs (mean of the "
        "chunk probabilities) computed on the true Mels, on the PINV Mels and on the Mels of "
        "the trained `cense` transcoder. Accuracy in %, mean over folds with a 95 % bootstrap "
        "interval over folds; drop = true - transcoded in points, paired per fold. "
        f"Goal: drop at most {GOAL_DROP:g} points (the paper: 18.6 for PANN on UrbanSound8K).",
        "",
        "| dataset | teacher | scheme | clips | true Mels | PINV | transcoded | drop true -> "
        "transcoded | drop true -> PINV | goal | checkpoint epoch |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        goal = "met" if r["goal_met"] else (
            f"not met by {r['drop_transcoded']['value'] - GOAL_DROP:.1f} points")
        lines.append(
            f"| {r['dataset']} | {r['teacher']} | {r['scheme']} | {r['n_clips']} | "
            f"{_pct(r['true'])} | {_pct(r['pinv'])} | {_pct(r['transcoded'])} | "
            f"{_pts(r['drop_transcoded'])} | {_pts(r['drop_pinv'])} | {goal} | "
            f"{r['checkpoint']['epoch']} |")
    lines += [
        "", "How to read it: each row is one teacher on one dataset; the three accuracy "
        "columns are paired (same folds, same probe seed), so the drop columns are the cost "
        "of replacing the true Mels by PINV or by the transcoder, and the difference between "
        "the two drops is what training the transcoder bought over PINV. The checkpoint "
        "epoch is the best epoch of the shipped transcoder's training run.",
    ]
    lines += [
        "", "## On the clips the transcoder never trained on", "",
        "The transcoders were trained (teacher-student, without labels) on 75 % of the "
        "recordings of `shared/data`, grouped by recording (`benchmarks/train_table2.py`, seed "
        "0), so most clips above were seen in training. The probes' predictions restricted to "
        "the clips of the checkpoint's held-out test part (never used for training or model "
        "selection) give the figures below: accuracy in % with a 95 % bootstrap interval over "
        "the clips' recordings (whole recordings are resampled), drop in points paired per "
        "clip; few recordings, so wide intervals. The held-out "
        "clips come from few recordings and need not be as easy as the rest: compare the "
        "transcoded column with PINV on the same clips (PINV trains on nothing), not with the "
        "table above.", "",
        "| dataset | teacher | held-out clips | true Mels | PINV | transcoded | drop true -> "
        "transcoded | all clips: drop over clips |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        h, a = r["held_out_test"], r["over_clips"]
        if not h.get("n_clips"):
            lines.append(f"| {r['dataset']} | {r['teacher']} | 0 | - | - | - | - | "
                         f"{_pts(a['drop_transcoded'])} |")
            continue
        lines.append(f"| {r['dataset']} | {r['teacher']} | {h['n_clips']} | {_pct(h['true'])} "
                     f"| {_pct(h['pinv'])} | {_pct(h['transcoded'])} | "
                     f"{_pts(h['drop_transcoded'])} | {_pts(a['drop_transcoded'])} |")
    lines += ["", "## Settings", ""]
    for r in rows:
        c = r["checkpoint"]
        lines.append(
            f"- {r['dataset']}, {r['teacher']}: {r['scheme']}; chunks {r['chunk_seconds']:g} s, "
            f"normalise {r['normalise']}; probe {r['probe']['epochs']} epochs, batch "
            f"{r['probe']['batch_size']}, lr {r['probe']['lr']:g}, standardise "
            f"{r['probe']['standardise']}, seed {r['probe']['seed']}; checkpoint {c['path']} "
            f"(student {c['student']}, epoch {c['epoch']}, validation PtoPa-FC "
            f"{100 * c['metrics'].get('valid_ptopa_fc', float('nan')):.1f} %, sha256 "
            f"{c['sha256'][:12]}); "
            f"{r['seconds']:.0f} s.\n  `{r['command']}`")
    m = report["machine"]
    lines += ["", f"Machine: {m['cpu']}, {m['cores']} cores shared with training jobs, torch "
              f"{m['torch']}, {report['torch_threads']} torch thread(s); 1-min load average "
              f"{m['load_average_1min']:.1f} at start, {report['load_average_end']:.1f} at end. "
              f"Date: {report['date']}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    if args.render:
        result = json.loads((args.out / "downstream.json").read_text())
        with atomic_write(args.out / "downstream.md") as tmp:
            tmp.write_text(markdown(result), encoding="utf-8")
        return 0
    paths = dict(item.split("=", 1) for item in args.checkpoint)
    datasets, teachers = args.datasets.split(","), args.teachers.split(",")
    if missing := [t for t in teachers if t not in paths]:
        raise SystemExit(f"no --checkpoint for teacher(s) {', '.join(missing)}")
    start = machine()
    rows = []
    with tempfile.TemporaryDirectory(prefix="downstream-ckpt-") as tmp:
        for teacher in teachers:
            ckpt = snapshot(Path(paths[teacher]), Path(tmp))
            for dataset in datasets:
                report, seconds = run_one(args, dataset, teacher, ckpt)
                row = summarise(args, dataset, teacher, report, ckpt, seconds)
                rows.append(row | {"date": time.strftime("%Y-%m-%d %H:%M %Z")})
    previous = args.out / "downstream.json"
    if args.keep_other_rows and previous.is_file():
        rows = merge_rows(json.loads(previous.read_text())["rows"], rows)
    result = {"machine": start, "load_average_end": load_average(),
              "torch_threads": torch.get_num_threads(), "omp_num_threads":
              os.environ.get("OMP_NUM_THREADS"), "date": time.strftime("%Y-%m-%d %H:%M %Z"),
              "goal_drop_points": GOAL_DROP, "rows": rows}
    for name, text in (("downstream.json", json.dumps(result, indent=2) + "\n"),
                       ("downstream.md", markdown(result))):
        with atomic_write(args.out / name) as tmp:
            tmp.write_text(text, encoding="utf-8")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
