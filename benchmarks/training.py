"""Training throughput and peak memory (section ``training`` of ``benchmarks/run.py``).

Throughput. ``cense -> soundaqnet`` with the real SoundAQnet teacher and the
reference student (``residual_cnn``, 186,497 parameters) on one thread:
:func:`specxform.training.trainer.train` on a feature cache of generated street scenes
(:func:`specxform.pipeline.demo.varied_scene`, 1 s chunks) against :class:`BareLoop`, the
same steps without the data pipeline (PINV + student forward, teacher forward,
BCE, backward, Adam step on random tensors shaped like the cached ones, the
student-side loudness included). Blocks of both alternate in one process, so
the machine's load hits both; the overhead of the pipeline is the trainer's
time per chunk over the bare loop's, minus one (goal: at most 10 %).

Peak memory. Each measurement runs in a fresh interpreter (:func:`harness.fresh_process`)
that reads its own peak resident set size: a cache build and a training epoch,
each at two dataset sizes (``N`` and ``factor x N`` clips). The teacher here
has random weights and no aux input (``yamnet`` by default: SoundAQnet's
ISO 532-1 loudness costs about 3 s of CPU per second of audio), and the
student is small (:data:`MEMORY_STUDENT`): memory growing with the data would
come from the cache and the pipeline, not from the networks.

``python benchmarks/training.py --worker build|train OPTIONS_JSON`` is the
memory worker that the section starts; run the section with
``python benchmarks/run.py --only training``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
import soundfile
import torch
from harness import (
    MEMORY_COLUMNS,
    MEMORY_HEADER,
    HeapTrajectory,
    MemoryProbe,
    fresh_process,
    load_average,
    machine,
    machine_line,
    memory_cells,
    peak_ratios,
)
from torch import Tensor, nn

from specxform import weights
from specxform.datasets import Clip, Split
from specxform.io import atomic_write
from specxform.pipeline.demo import SAMPLE_RATE, varied_scene
from specxform.plugins import get_registry
from specxform.representations.specs import Representation
from specxform.training.cache import FeatureCache, build_cache
from specxform.training.losses import LossConfig, transcoder_loss
from specxform.training.trainer import TrainConfig, train
from specxform.transcoders.pinv import PinvTranscoder
from specxform.transcoders.students import Transcoder

SECTION = "training"
SCRIPT = Path(__file__).resolve()
SOURCE, TARGET, TEACHER, STUDENT = "cense", "soundaqnet", "soundaqnet", "residual_cnn"
#: The student of the memory runs: the data, not the network, is what must not grow.
MEMORY_STUDENT: dict[str, Any] = {"layers": 3, "channels": 16}
#: Goal: the data pipeline adds at most this share to the bare steps' time.
OVERHEAD_GOAL = 0.10
PHASES = ("student forward", "teacher forward", "loss", "backward", "Adam step")


@attrs.frozen
class TrainingOptions:
    """Sizes of the section (all configurable from ``run.py``; see ``--help``).

    Parameters
    ----------
    batch_size : int
        Chunks per step of the throughput runs.
    train_clips, clip_seconds : int, float
        Training scenes of the throughput cache and their length (s); one more
        scene of the same length validates.
    epochs : int
        Epochs per timed trainer block (the bare block runs the same steps).
    repeats : int
        Interleaved (bare, trainer) block pairs.
    memory_clips, memory_factor, memory_clip_seconds : int, int, float
        The two dataset sizes of the memory runs: ``memory_clips`` and
        ``memory_factor`` times as many scenes of ``memory_clip_seconds``.
    memory_teacher : str
        Registered teacher of the memory runs, built with random weights.
    memory_batch_size : int
        Chunks per step of the memory training runs.
    memory_repeats : int
        Times each memory measurement is repeated (each in a fresh process).
    cache_dir : Path
        Where the scenes and the throughput cache are kept between runs.
    """

    batch_size: int = 16
    train_clips: int = 8
    clip_seconds: float = 4.0
    epochs: int = 1
    repeats: int = 5
    memory_clips: int = 24
    memory_factor: int = 4
    memory_clip_seconds: float = 10.0
    memory_teacher: str = "yamnet"
    memory_batch_size: int = 32
    memory_repeats: int = 2
    cache_dir: Path = attrs.field(factory=lambda: weights.home() / "benchmarks", converter=Path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The section's options, in their own group of ``run.py``'s parser."""
    d = TrainingOptions()
    group = parser.add_argument_group("training section")
    group.add_argument("--train-batch", type=int, default=d.batch_size,
                       help="chunks per step of the throughput runs")
    group.add_argument("--train-clips", type=int, default=d.train_clips,
                       help="training scenes of the throughput cache (one more validates)")
    group.add_argument("--train-clip-seconds", type=float, default=d.clip_seconds,
                       help="length of the throughput scenes (s)")
    group.add_argument("--train-epochs", type=int, default=d.epochs,
                       help="epochs per timed trainer block")
    group.add_argument("--train-repeats", type=int, default=d.repeats,
                       help="interleaved (bare loop, trainer) block pairs")
    group.add_argument("--memory-clips", type=int, default=d.memory_clips,
                       help="scenes of the smaller memory dataset (N)")
    group.add_argument("--memory-factor", type=int, default=d.memory_factor,
                       help="the larger memory dataset holds this many times N scenes")
    group.add_argument("--memory-clip-seconds", type=float, default=d.memory_clip_seconds,
                       help="length of the memory scenes (s)")
    group.add_argument("--memory-teacher", default=d.memory_teacher,
                       help="teacher of the memory runs (random weights)")
    group.add_argument("--memory-repeats", type=int, default=d.memory_repeats,
                       help="fresh processes per memory measurement")
    group.add_argument("--cache-dir", type=Path, default=d.cache_dir,
                       help="where scenes and the throughput cache are kept between runs")


def options_from(args: argparse.Namespace) -> TrainingOptions:
    """:class:`TrainingOptions` from the parsed arguments of :func:`add_arguments`."""
    return TrainingOptions(
        batch_size=args.train_batch, train_clips=args.train_clips,
        clip_seconds=args.train_clip_seconds, epochs=args.train_epochs,
        repeats=args.train_repeats, memory_clips=args.memory_clips,
        memory_factor=args.memory_factor, memory_clip_seconds=args.memory_clip_seconds,
        memory_teacher=args.memory_teacher, memory_repeats=args.memory_repeats,
        cache_dir=args.cache_dir,
    )


# -- data ------------------------------------------------------------------------------


def write_scenes(folder: Path, count: int, seconds: float) -> list[Clip]:
    """Scenes ``varied_scene(seed)`` for seeds ``0 .. count - 1`` as 32 kHz float WAVs.

    A file already there is reused (the scene is a pure function of its seed and
    length), so that a cache built from the scenes stays valid between runs.
    """
    clips = []
    for seed in range(count):
        path = folder / f"scene{seed:04d}.wav"
        if not path.is_file():
            with atomic_write(path) as tmp:
                soundfile.write(tmp, varied_scene(seed, duration=seconds), SAMPLE_RATE,
                                subtype="FLOAT", format="WAV")
        clips.append(Clip(path.resolve(), path.name, None, path.stem))
    return clips


def scene_folder(root: Path, seconds: float) -> Path:
    return root / f"scenes-{seconds:g}s"


def split_of(clips: list[Clip], n_train: int) -> Split:
    """The first ``n_train`` clips train, the others validate."""
    return Split(tuple(clips[:n_train]), tuple(clips[n_train:]), (), seed=0,
                 fractions=(n_train / len(clips), 1 - n_train / len(clips), 0.0),
                 scheme="benchmark scenes")


def batch_sizes(n_chunks: int, batch_size: int, epochs: int) -> list[int]:
    """Sizes of the batches :func:`specxform.training.trainer.train` makes in ``epochs`` epochs."""
    full, rest = divmod(n_chunks, batch_size)
    return ([batch_size] * full + ([rest] if rest else [])) * epochs


# -- throughput ------------------------------------------------------------------------


class BareLoop:
    """The trainer's step on random tensors: no cache, no batching, no progress bar.

    Parameters
    ----------
    cache : FeatureCache
        Gives the representations and the shapes of the cached arrays.
    teacher : nn.Module
        The frozen teacher (shared with the trainer).
    loss : LossConfig
    lr : float
    """

    def __init__(self, cache: FeatureCache, teacher: nn.Module, loss: LossConfig, lr: float
                 ) -> None:
        self.cache, self.teacher, self.loss = cache, teacher.eval().requires_grad_(False), loss
        source = Representation.from_dict(cache.manifest["source"])
        target = Representation.from_dict(cache.manifest["target"])
        student = get_registry().student(STUDENT).factory(source, target)
        self.model = Transcoder(PinvTranscoder(source, target), student).train()
        self.optimizer = torch.optim.Adam(student.parameters(), lr=lr)
        self._batches: dict[int, dict[str, Tensor]] = {}

    def batch(self, size: int) -> dict[str, Tensor]:
        """Random tensors shaped like ``size`` cached chunks (made once per size)."""
        if size not in self._batches:
            gen = torch.Generator().manual_seed(size)
            c = self.cache

            def uniform(shape: tuple[int, ...], low: float, high: float) -> Tensor:
                return low + (high - low) * torch.rand((size, *shape), generator=gen)

            batch = {"source": uniform(c.source.shape[1:], -90.0, -10.0),  # dB re full scale
                     "target": torch.randn((size, *c.target.shape[1:]), generator=gen),
                     "probs": uniform(c.probs.shape[1:], 0.0, 1.0)}
            for name, values in c.aux_student.items():  # e.g. loudness in sone
                batch[f"aux_student.{name}"] = uniform(values.shape[1:], 0.0, 30.0)
            self._batches[size] = batch
        return self._batches[size]

    def step(self, size: int) -> dict[str, float]:
        """One optimiser step on ``size`` chunks; the seconds each phase took."""
        batch = self.batch(size)
        aux = {k.split(".", 1)[1]: v for k, v in batch.items() if k.startswith("aux_student.")}
        marks = [time.perf_counter()]
        mel = self.model(batch["source"])
        marks.append(time.perf_counter())
        logits = self.teacher(mel, aux or None).logits
        marks.append(time.perf_counter())
        terms = transcoder_loss(self.loss, student_mel=mel, true_mel=batch["target"],
                                student_logits=logits, teacher_probs=batch["probs"])
        marks.append(time.perf_counter())
        self.optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        marks.append(time.perf_counter())
        self.optimizer.step()
        marks.append(time.perf_counter())
        return {p: b - a for p, a, b in zip(PHASES, marks, marks[1:], strict=False)}


def _trainer_block(cache: FeatureCache, split: Split, teacher: nn.Module, out: Path,
                   options: TrainingOptions) -> tuple[float, float, float]:
    """One :func:`train` run; (chunks trained, seconds of its training steps, wall seconds)."""
    started = time.perf_counter()
    result = train(cache, split, teacher, out_dir=out, teacher_name=TEACHER,
                   config=TrainConfig(epochs=options.epochs, batch_size=options.batch_size,
                                      device="cpu", precision="fp32"), tensorboard=False)
    wall = time.perf_counter() - started
    seconds = sum(row["seconds"] for row in result.history)
    chunks = sum(row["chunks_per_s"] * row["seconds"] for row in result.history)
    return chunks, seconds, wall


def throughput(options: TrainingOptions) -> dict[str, Any]:
    """Trainer and bare-loop chunks/s, interleaved on one thread (see the module doc)."""
    registry = get_registry()
    teacher = registry.teacher(TEACHER).factory()
    clips = write_scenes(scene_folder(options.cache_dir, options.clip_seconds),
                         options.train_clips + 1, options.clip_seconds)
    started = time.perf_counter()
    cache = build_cache(clips, source=registry.representation(SOURCE),
                        target=registry.representation(TARGET), teacher=teacher,
                        teacher_name=TEACHER, root=options.cache_dir / "features")
    build_seconds = time.perf_counter() - started
    split = split_of(clips, options.train_clips)
    n_train = len(cache.rows([c.name for c in split.train]))
    sizes = batch_sizes(n_train, options.batch_size, options.epochs)
    bare = BareLoop(cache, teacher, LossConfig(), TrainConfig().lr)
    bare.step(options.batch_size)  # warm-up: oneDNN primitives for these shapes
    repeats, phases = [], {p: 0.0 for p in PHASES}
    with tempfile.TemporaryDirectory(dir=options.cache_dir) as tmp:
        for r in range(options.repeats):
            t0 = time.perf_counter()
            for size in sizes:
                for phase, seconds in bare.step(size).items():
                    phases[phase] += seconds
            bare_seconds = time.perf_counter() - t0
            chunks, trainer_seconds, wall = _trainer_block(cache, split, teacher,
                                                           Path(tmp) / f"run{r}", options)
            repeats.append({
                "bare_seconds": bare_seconds, "trainer_seconds": trainer_seconds,
                "trainer_wall_seconds": wall, "chunks": chunks,
                "bare_chunks_per_s": sum(sizes) / bare_seconds,
                "trainer_chunks_per_s": chunks / trainer_seconds,
                "overhead": (trainer_seconds / chunks) / (bare_seconds / sum(sizes)) - 1,
            })
    overhead = statistics.median(r["overhead"] for r in repeats)
    n_chunks = sum(sizes) * options.repeats
    student = bare.model.student
    return {
        "pair": f"{SOURCE} -> {TARGET}", "teacher": f"{TEACHER} (pretrained, bundled)",
        "student": STUDENT, "student_parameters": sum(p.numel() for p in student.parameters()),
        "threads": torch.get_num_threads(), "batch_size": options.batch_size,
        "train_chunks": n_train, "steps_per_block": len(sizes), "chunks_per_block": sum(sizes),
        "cache_chunks": len(cache), "cache_seconds": build_seconds,
        "repeats": repeats,
        "bare_chunks_per_s": statistics.median(r["bare_chunks_per_s"] for r in repeats),
        "trainer_chunks_per_s": statistics.median(r["trainer_chunks_per_s"] for r in repeats),
        "overhead": overhead, "goal": OVERHEAD_GOAL, "passes": overhead <= OVERHEAD_GOAL,
        "bare_ms_per_chunk": {p: 1000 * s / n_chunks for p, s in phases.items()},
    }


# -- memory ----------------------------------------------------------------------------


def _memory_teacher(name: str) -> tuple[nn.Module, str]:
    """The teacher with random weights seeded 0 (the same in every worker), and its target."""
    entry = get_registry().teacher(name)
    if entry.aux_inputs:
        raise SystemExit(f"memory teacher {name!r} needs aux inputs {list(entry.aux_inputs)}; "
                         "choose one without (e.g. yamnet, pann_cnn14).")
    torch.manual_seed(0)
    return entry.factory(pretrained=False), entry.target


def _cache_of(options: dict[str, Any], teacher: nn.Module, target: str) -> tuple[list[Clip], Any]:
    """The worker's clips, and a function building (or finding) their cache."""
    folder = Path(options["scenes"])
    clips = [Clip(p, p.name, None, p.stem)
             for p in sorted(folder.glob("scene*.wav"))[: options["clips"]]]
    registry = get_registry()

    def build() -> FeatureCache:
        return build_cache(clips, source=registry.representation(SOURCE),
                           target=registry.representation(target), teacher=teacher,
                           teacher_name=options["teacher"], root=Path(options["root"]))

    return clips, build


def _cache_megabytes(cache: FeatureCache) -> float:
    return sum(p.stat().st_size for p in cache.folder.glob("*.npy")) / 2**20


def memory_worker(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """In a fresh interpreter: build the cache (``kind="build"``) or train one epoch
    (``"train"``) on ``options["clips"]`` scenes; its peak memory (MiB) and time."""
    torch.set_num_threads(1)
    teacher, target = _memory_teacher(options["teacher"])
    clips, build = _cache_of(options, teacher, target)
    cache = None if kind == "build" else build()
    split = split_of(clips, min(len(clips) - 1, max(1, round(0.75 * len(clips)))))
    trajectory = None
    started = time.perf_counter()
    with MemoryProbe() as probe:
        if kind == "build":
            cache = build()
        else:
            assert cache is not None
            n_train = len(cache.rows([c.name for c in split.train]))
            trajectory = HeapTrajectory(math.ceil(n_train / options["batch_size"]))
            train(cache, split, teacher, out_dir=Path(options["root"]) / f"run{len(clips)}",
                  teacher_name=options["teacher"], student_config=MEMORY_STUDENT,
                  config=TrainConfig(epochs=1, batch_size=options["batch_size"], device="cpu",
                                     precision="fp32"), tensorboard=False,
                  on_batch=lambda epoch, step: trajectory(step + 1))
    assert cache is not None
    return {"what": "cache build" if kind == "build" else "training (1 epoch)",
            "clips": len(clips), "chunks": len(cache), "cache_mb": _cache_megabytes(cache),
            "seconds": time.perf_counter() - started,
            "heap_over_loop": trajectory.values if trajectory else [], **probe.result}


def memory(options: TrainingOptions) -> dict[str, Any]:
    """Peak memory of a cache build and of a training epoch at two dataset sizes."""
    sizes = (options.memory_clips, options.memory_clips * options.memory_factor)
    folder = scene_folder(options.cache_dir, options.memory_clip_seconds)
    write_scenes(folder, sizes[1], options.memory_clip_seconds)
    options.cache_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    for repeat in range(options.memory_repeats):
        root = Path(tempfile.mkdtemp(prefix="memory-", dir=options.cache_dir))
        try:  # each repeat builds its caches from scratch, then trains on them
            for kind, clips in itertools.product(("build", "train"), sizes):
                run = fresh_process(SCRIPT, kind, {
                    "scenes": str(folder), "clips": clips, "root": str(root),
                    "teacher": options.memory_teacher, "batch_size": options.memory_batch_size})
                runs.append(run | {"repeat": repeat + 1})
        finally:
            shutil.rmtree(root, ignore_errors=True)
    ratios = {}
    for what in ("cache build", "training (1 epoch)"):
        small, large = ([r for r in runs if r["what"] == what and r["clips"] == n] for n in sizes)
        ratios[what] = peak_ratios(small, large)
    return {"teacher": f"{options.memory_teacher} (random init)",
            "student": {"name": STUDENT, "config": MEMORY_STUDENT},
            "batch_size": options.memory_batch_size, "clip_seconds": options.memory_clip_seconds,
            "runs": runs, "ratios": ratios}


# -- report ----------------------------------------------------------------------------


def report(options: TrainingOptions) -> tuple[dict[str, Any], str]:
    """Run the section; its JSON-ready figures and Markdown tables."""
    torch.set_num_threads(1)
    result: dict[str, Any] = {"section": SECTION, "machine": machine(),
                              "options": {k: str(v) if isinstance(v, Path) else v
                                          for k, v in attrs.asdict(options).items()}}
    result["throughput"] = throughput(options)
    result["memory"] = memory(options)
    result["load_average_end"] = load_average()
    return result, markdown(result)


def markdown(result: dict[str, Any]) -> str:
    t, m = result["throughput"], result["memory"]
    lines = [
        "# Training throughput and peak memory",
        "",
        machine_line(result),
        "",
        "## Throughput",
        "",
        f"`{t['pair']}`, teacher {t['teacher']}, student `{t['student']}` "
        f"({t['student_parameters']:,} parameters), {t['threads']} thread, batch "
        f"{t['batch_size']}, float32. Each block: {t['steps_per_block']} steps "
        f"({t['chunks_per_block']} chunks of 1 s). `specxform.training.trainer.train` reads a "
        f"feature "
        f"cache of {t['cache_chunks']} chunks of generated scenes; the bare loop runs the same "
        "steps (PINV + student forward, teacher forward with the student-side loudness, BCE, "
        "backward, Adam) on random tensors of the same shapes. Blocks alternate (bare, "
        "trainer) in one process; overhead = trainer time per chunk / bare time per chunk - 1, "
        "per pair of blocks, median over pairs.",
        "",
        "| block pair | bare chunks/s | trainer chunks/s | overhead |",
        "|---:|---:|---:|---:|",
    ]
    lines += [f"| {i + 1} | {r['bare_chunks_per_s']:.2f} | {r['trainer_chunks_per_s']:.2f} | "
              f"{100 * r['overhead']:+.1f} % |" for i, r in enumerate(t["repeats"])]
    verdict = "yes" if t["passes"] else "NO"
    lines += [
        f"| **median** | **{t['bare_chunks_per_s']:.2f}** | **{t['trainer_chunks_per_s']:.2f}** "
        f"| **{100 * t['overhead']:+.1f} %** |",
        "",
        f"Goal: overhead <= {100 * t['goal']:.0f} %: **{verdict}**.",
        "",
        "Where a bare step's time goes (ms per chunk, all bare blocks):",
        "",
        "| " + " | ".join(PHASES) + " |",
        "|" + "---:|" * len(PHASES),
        "| " + " | ".join(f"{t['bare_ms_per_chunk'][p]:.0f}" for p in PHASES) + " |",
        "",
        "## Peak memory",
        "",
        f"Each row is a fresh Python process (one thread) that reads its own peak resident "
        f"set size (`getrusage(RUSAGE_SELF).ru_maxrss`). Teacher {m['teacher']}, no aux input; "
        f"student `{m['student']['name']}` {m['student']['config']}; scenes of "
        f"{m['clip_seconds']:g} s in 1 s chunks; training: one epoch, batch {m['batch_size']}. "
        + MEMORY_COLUMNS,
        "",
        "| work | run | clips | chunks | cache (MiB) | " + MEMORY_HEADER,
        "|---|---:|---:|---:|---:|" + "---:|" * 7,
    ]
    lines += [f"| {r['what']} | {r['repeat']} | {r['clips']} | {r['chunks']} | "
              f"{r['cache_mb']:.1f} | " + memory_cells(r) for r in m["runs"]]
    lines += ["", "Ratio larger / smaller dataset (goal: about 1), each size's smallest figure "
              "over its runs:", "",
              "| work | peak RSS | growth above 'before' | peak heap |", "|---|---:|---:|---:|"]
    lines += [f"| {what} | {r.get('peak_rss', math.nan):.3f} | {r.get('growth', math.nan):.2f} | "
              f"{r.get('anon', math.nan):.3f} |" for what, r in m["ratios"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Memory worker entry point (started by :func:`memory`); prints one JSON line."""
    parser = argparse.ArgumentParser(description="memory worker of the training benchmark")
    parser.add_argument("--worker", choices=("build", "train"), required=True)
    parser.add_argument("options", help="JSON object: scenes, clips, root, teacher, batch_size")
    args = parser.parse_args(argv)
    print(json.dumps(memory_worker(args.worker, json.loads(args.options))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
