"""Where a training step's time goes, per (pair, student), and each student's FLOPs.

For every pair of :mod:`train_table2` with its real teacher and for both
students (the reference ``residual_cnn`` and ``coarse_texture``), one thread,
batches shaped like the recipe's (YAMNet: 1 s chunks; EfficientAT: 4 s), the
parts of one optimiser step are timed separately, repeated ``--repeats`` times
in alternating order so that the machine's load hits every part alike:

* ``pinv``: the fixed PINV (float32, no gradient);
* ``student forward``, ``teacher forward`` (on the student's Mel, with the
  graph kept), ``loss``, ``backward`` (through teacher and student), ``step``
  (Adam).

The table gives chunks/s of the whole step and each part's share. FLOPs per
second of audio of each student's forward come from
``torch.utils.flop_counter.FlopCounterMode`` on 10 s of input, with the
reference's ratio (goal of the new student: at most a quarter).

``python benchmarks/step_profile.py`` writes ``benchmarks/results/step_profile.{json,md}``.
Teacher weights come from the search path (``SPECXFORM_WEIGHTS_PATH``); random
weights are used, and said so, when they are absent (the cost is the same).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import harness
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
from train_table2 import PAIRS

from specxform.errors import WeightsError
from specxform.plugins import get_registry
from specxform.transcoders.pinv import PinvTranscoder

RESULTS = Path(__file__).resolve().parent / "results"
STUDENTS = ("residual_cnn", "coarse_texture")
PARTS = ("pinv", "student forward", "teacher forward", "loss", "backward", "step")


def _teacher(name: str) -> tuple[torch.nn.Module, bool]:
    entry = get_registry().teacher(name)
    try:
        return entry.factory(download=False).eval(), True
    except (WeightsError, TypeError):
        return entry.factory(pretrained=False).eval(), False


def student_gflops(source: Any, target: Any, student: str) -> float:
    """GFLOP per second of audio of the student's forward (10 s of input)."""
    model = get_registry().student(student).factory(source, target)
    frames = round(10 * target.sample_rate / target.framing.hop_length)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, frames, target.n_bands))
    return counter.get_total_flops() / 10 / 1e9


def profile_step(pair: str, student: str, *, batch: int, repeats: int) -> dict[str, Any]:
    """Median seconds of each part of one step, chunks/s and shares."""
    registry = get_registry()
    src_name, tgt_name, teacher_name, seconds = PAIRS[pair]
    source, target = registry.representation(src_name), registry.representation(tgt_name)
    pinv = PinvTranscoder(source, target)
    model = registry.student(student).factory(source, target)
    teacher, real = _teacher(teacher_name)
    teacher.requires_grad_(False)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    n_src = source.n_frames(round(seconds * source.sample_rate))
    levels = torch.rand(batch, n_src, source.n_bands) * 50 - 80
    probs = torch.rand(batch, teacher.num_classes) * 0.2
    times: dict[str, list[float]] = {p: [] for p in PARTS}
    for round_ in range(repeats + 1):  # the first round warms up and is dropped
        marks = [time.perf_counter()]
        with torch.no_grad():
            base = pinv(levels)
        marks.append(time.perf_counter())
        mel = model(base)
        marks.append(time.perf_counter())
        logits = teacher(mel).logits
        marks.append(time.perf_counter())
        loss = F.binary_cross_entropy_with_logits(logits, probs)
        marks.append(time.perf_counter())
        optimiser.zero_grad()
        loss.backward()
        marks.append(time.perf_counter())
        optimiser.step()
        marks.append(time.perf_counter())
        if round_ > 0:
            for part, (a, b) in zip(PARTS, itertools.pairwise(marks), strict=True):
                times[part].append(b - a)
    median = {p: statistics.median(v) for p, v in times.items()}
    total = sum(median.values())
    return {"pair": pair, "student": student, "teacher": teacher_name, "real_weights": real,
            "batch": batch, "chunk_seconds": seconds, "seconds_per_step": total,
            "chunks_per_s": batch / total,
            "share": {p: median[p] / total for p in PARTS}, "seconds": median,
            "student_gflop_per_audio_s": student_gflops(source, target, student)}


def markdown(report: dict[str, Any]) -> str:
    rows = []
    for r in report["rows"]:
        rows.append([r["pair"], r["student"], f"{r['student_gflop_per_audio_s']:.3f}",
                     f"{r['chunks_per_s']:.1f}", f"{r['chunks_per_s'] * r['chunk_seconds']:.1f}",
                     *(f"{100 * r['share'][p]:.0f} %" for p in PARTS)])
    header = ["pair", "student", "student GFLOP / audio s", "chunks/s", "audio s / s", *PARTS]
    table = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
    table += [f"| {' | '.join(row)} |" for row in rows]
    random = [f"{r['pair']}/{r['student']}" for r in report["rows"] if not r["real_weights"]]
    return "\n".join([
        "# Where a training step's time goes", "",
        f"One thread, batch {report['batch']}, median of {report['repeats']} steps after one "
        "warm-up; teachers with their real weights (random weights, same cost, for: "
        f"{', '.join(random) or 'none'}). Shares are of the step's median time.", "",
        *table, "",
        harness.machine_line(report), "",
        "Other jobs on the machine slow every part alike: compare shares and ratios, not "
        "absolute rates.", ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pairs", default=",".join(PAIRS))
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    machine = harness.machine()
    rows = [profile_step(pair, student, batch=args.batch, repeats=args.repeats)
            for pair in args.pairs.split(",") for student in STUDENTS]
    report = {"batch": args.batch, "repeats": args.repeats, "rows": rows, "machine": machine,
              "load_average_end": harness.load_average()}
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "step_profile.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (args.output / "step_profile.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
