"""How agreement grows with training data: the learning curve behind "what more data would take".

Reads run folders of ``benchmarks/train_table2.py`` trained on nested shares of
the same training recordings (``--train-fraction``, same validation files), fits
validation PtoPa-FC against the logarithm of the number of training clips, and
says how many clips the fit needs to reach a goal::

    python benchmarks/learning_curve.py /work/runs/curve-cense-efficientat-0.25 \\
        /work/runs/curve-cense-efficientat-0.5 /work/runs/cense-efficientat-lite \\
        --goal 0.89 --output benchmarks/results/learning-curve-cense-efficientat

Each run gives two values: the validation PtoPa-FC of its best epoch (lowest
validation loss, the checkpoint a user gets) and the mean over its last five
epochs (less noisy on 147 files). Both are fitted as ``a + b * log2(clips)``
by least squares, and so is the best epoch's KL; ``b`` is the gain per
doubling of the data, and the clips needed for the goal follow from the line
where ``b > 0``. Three to four points
over a factor of four make a rough extrapolation: the output says so.

Output: ``<output>.json`` and ``<output>.md``, and ``<output>.png`` (the
points, the fits and the goal), written atomically.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from harness import machine  # noqa: E402

from specxform.io import atomic_write  # noqa: E402

LAST_EPOCHS = 5


def read_run(folder: Path) -> dict[str, Any]:
    """One point of the curve: a run folder's size, best-epoch and late-epoch validation values."""
    summary = json.loads((folder / "summary.json").read_text())
    with open(folder / "log.csv", newline="") as fh:
        epochs = [row for row in csv.DictReader(fh) if row["train_loss"]]
    if not epochs:
        raise SystemExit(f"{folder}: log.csv holds no trained epoch; train the run first.")
    late = [float(row["valid_ptopa_fc"]) for row in epochs[-LAST_EPOCHS:]]
    best = summary["best_valid"]
    return {"run": str(folder), "pair": summary["pair"], "student": summary["student"],
            "train_fraction": summary.get("train_fraction", 1.0),
            "train_clips": summary["train_clips"], "valid_clips": summary["valid_clips"],
            "epochs": summary["epochs"], "best_epoch": summary["best_epoch"],
            "train_seconds": summary["train_seconds"],
            "best_ptopa_fc": best["valid_ptopa_fc"], "best_kl": best["valid_kl"],
            "late_ptopa_fc": float(np.mean(late)), "late_epochs": len(late)}


def fit_log2(clips: list[float], values: list[float], goal: float | None) -> dict[str, Any]:
    """``values ~ a + b * log2(clips)``; the clips the line needs to reach ``goal`` (if given)."""
    x = np.log2(np.asarray(clips, dtype=float))
    y = np.asarray(values, dtype=float)
    if len(set(x.tolist())) < 2:
        raise SystemExit("a learning curve needs runs on at least two different data sizes.")
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (intercept + slope * x)
    out: dict[str, Any] = {"intercept": float(intercept), "per_doubling": float(slope),
                           "rms_residual": float(np.sqrt(np.mean(residual ** 2)))}
    if goal is None:
        return out
    if slope > 0:
        needed = 2 ** ((goal - intercept) / slope)
        out |= {"clips_for_goal": float(needed), "factor_over_largest": float(needed / max(clips)),
                "doublings_over_largest": float(math.log2(needed / max(clips)))}
    else:
        out |= {"clips_for_goal": None, "factor_over_largest": None,
                "doublings_over_largest": None}
    return out


def learning_curve(folders: list[Path], goal: float) -> dict[str, Any]:
    points = sorted((read_run(f) for f in folders), key=lambda p: p["train_clips"])
    if len({(p["pair"], p["student"], p["valid_clips"]) for p in points}) != 1:
        raise SystemExit("the runs differ in pair, student or validation files: "
                         + ", ".join(f"{p['run']} ({p['pair']}, {p['student']}, "
                                     f"{p['valid_clips']} valid)" for p in points))
    clips = [p["train_clips"] for p in points]
    return {"pair": points[0]["pair"], "student": points[0]["student"], "goal": goal,
            "points": points,
            "fits": {key: fit_log2(clips, [p[f"{key}_ptopa_fc"] for p in points], goal)
                     for key in ("best", "late")},
            "kl_fit": fit_log2(clips, [p["best_kl"] for p in points], None),
            "machine": machine()}


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# Learning curve, `{report['pair']}` with `{report['student']}`", "",
             f"Validation PtoPa-FC ({report['points'][0]['valid_clips']} files, the same for "
             f"every run) against the number of training clips, nested shares of the same "
             f"recordings (`--train-fraction`).", "",
             "| train share | train clips | epochs | best epoch | PtoPa-FC (best epoch) | KL "
             f"(best epoch) | PtoPa-FC (mean of last {LAST_EPOCHS}) | train time |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in report["points"]:
        lines.append(f"| {p['train_fraction']:g} | {p['train_clips']} | {p['epochs']} | "
                     f"{p['best_epoch']} | {_pct(p['best_ptopa_fc'])} | {p['best_kl']:.2f} | "
                     f"{_pct(p['late_ptopa_fc'])} | {p['train_seconds'] / 60:.0f} min |")
    largest = report["points"][-1]["train_clips"]
    lines += ["", f"Fit `PtoPa-FC = a + b log2(clips)`, goal {_pct(report['goal'])}:", "",
              "| values | gain per doubling | rms residual | clips for the goal | "
              f"times the {largest} clips |", "|---|---:|---:|---:|---:|"]
    for key, label in (("best", "best epoch"), ("late", f"mean of last {LAST_EPOCHS}")):
        fit = report["fits"][key]
        if fit["clips_for_goal"] is None:
            needed = factor = "never (no gain with data)"
        else:
            needed = f"{fit['clips_for_goal']:.3g}"
            factor = (f"{fit['factor_over_largest']:.3g} "
                      f"({fit['doublings_over_largest']:.1f} doublings)")
        lines.append(f"| {label} | {100 * fit['per_doubling']:+.1f} points | "
                     f"{100 * fit['rms_residual']:.1f} points | {needed} | {factor} |")
    kl = report["kl_fit"]
    lines += ["", f"Validation KL of the best epochs: {kl['per_doubling']:+.3f} nats per doubling "
              f"(rms residual {kl['rms_residual']:.3f}).",
              "", f"{len(report['points'])} points over a factor of "
              f"{largest / report['points'][0]['train_clips']:.1f} in data: a rough "
              "extrapolation, and a straight line in log(data) is the optimistic reading (curves "
              "bend down as they approach what the source levels can tell).", ""]
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = report["points"]
    clips = np.array([p["train_clips"] for p in points], dtype=float)
    fig, ax = plt.subplots(figsize=(6, 4))
    grid = np.geomspace(clips.min(), clips.max() * 4, 50)
    for key, marker, label in (("best", "o", "best epoch"), ("late", "s", "mean of last epochs")):
        fit = report["fits"][key]
        ax.plot(clips, [100 * p[f"{key}_ptopa_fc"] for p in points], marker, label=label)
        ax.plot(grid, 100 * (fit["intercept"] + fit["per_doubling"] * np.log2(grid)), "--",
                color=ax.lines[-1].get_color())
    ax.axhline(100 * report["goal"], color="grey", lw=1)
    ax.set(xscale="log", xlabel="training clips", ylabel="validation PtoPa-FC (%)",
           title=f"{report['pair']}: agreement against data")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # no crowded minor labels
    ax.set_xticks(clips, [f"{c:.0f}" for c in clips])
    ax.legend()
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of train_table2.py")
    parser.add_argument("--goal", type=float, default=0.89, help="PtoPa-FC to reach (0.89)")
    parser.add_argument("--output", type=Path, required=True, help="path without extension")
    args = parser.parse_args(argv)
    report = learning_curve(args.runs, args.goal)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.output.with_suffix(".json")) as tmp:
        Path(tmp).write_text(json.dumps(report, indent=1))
    with atomic_write(args.output.with_suffix(".md")) as tmp:
        Path(tmp).write_text(markdown(report))
    plot(report, args.output.with_suffix(".png"))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
