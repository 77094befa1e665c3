"""Speed of specxform's front ends and PINV, each beside a baseline timed in the same run.

Real-time factor (RTF) = seconds of audio per second of wall time, the median of
interleaved repeats on 10 s of real audio (the street scene in
``../shared/data/street-clips``), once with one thread (``torch.set_num_threads(1)``
and BLAS limited to one thread) and once with all threads. Baselines:

- ``cense``: the sensor's formula in a plain NumPy per-frame loop;
- ``pann``: ``librosa.feature.melspectrogram`` + ``power_to_db``; extra rows for
  nnAudio's ``MelSpectrogram`` and a ``torch.stft`` chain;
- ``yamnet``: a YAMNet-like librosa chain (``stft`` n_fft 512, window 400, not
  centred, magnitude, HTK Mel, ``log(x + 0.001)``);
- PINV: the reference's steps in torch (pseudo-inverse of the 29 x 2049 band
  matrix, ReLU, linear time interpolation with ``F.interpolate``, the target's Mel
  matrix on the 4,096-point grid, log).

Writes ``benchmarks/results/frontend.json`` and ``frontend.md``.

Teachers (section ``teachers``): each registered teacher's forward pass on the
true Mel of the same 10 s, as one 10 s input and as ten 1 s inputs (the windows
of ``specxform classify`` and the chunks of training), with one thread and with
all threads. Teachers whose official weights are not in the cache are built
with random weights (``factory(pretrained=False)``) and labelled "random init":
weights do not change the cost of a forward pass. Aux inputs computed from
audio (SoundAQnet's ISO 532-1 loudness) are timed separately: they cost far
more than the network. Writes ``teachers.json`` and ``teachers.md``.

Training (section ``training``, :mod:`training`): trainer throughput against a bare
training loop in the same process, and peak memory of a cache build and of
training at two dataset sizes. Chain (section ``chain``, :mod:`chain`): levels ->
PINV + student -> teacher real-time factors, the student against the machine's
GEMM rate, and peak memory on a long input. Each writes ``<section>.json/.md``.

Run: ``./dev bench`` (every section, about 20 minutes on 2 cores) or
``python benchmarks/run.py --only frontend --only teachers [--repeats 21]``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import chain
import librosa
import nnAudio
import nnAudio.features
import numpy as np
import torch
import torch.nn.functional as F
import training
from harness import (
    CLIP,
    ROOT,
    Fn,
    load_average,
    machine,
    machine_line,
    median_seconds,
    thread_counts,
    write_results,
)
from threadpoolctl import threadpool_limits

from specxform.audio import load_audio
from specxform.plugins import get_registry
from specxform.registry import TeacherEntry
from specxform.representations.filterbanks import (
    energy_correction,
    filterbank_matrix,
    mel_matrix,
    reference_gain,
    window,
)
from specxform.representations.frontend import RepresentationTransform
from specxform.representations.specs import MelFilterbank, Representation
from specxform.transcoders.pinv import METHODS, PinvTranscoder

RESULTS = ROOT / "benchmarks" / "results"
SECONDS = 10.0
SECTIONS = ("frontend", "teachers", "training", "chain")
#: Sections that read the real street scene (the others generate their audio).
NEEDS_CLIP = ("frontend", "teachers", "chain")
#: Goal for PINV cense -> pann (method "pinv") on one thread, in x real time.
PINV_GOAL_RTF = 2000.0


@attrs.frozen
class Row:
    """One timed comparison: ours against a baseline computed from the same input."""

    group: str
    ours: str
    ours_fn: Fn
    baseline: str
    baseline_fn: Fn
    goal_rtf: float | None = None  # an absolute goal (x real time), one thread only
    compare: bool = False  # both compute the same representation: report their difference
    extra: bool = False  # a comparison for information, with no goal


# -- baselines ------------------------------------------------------------------------


def cense_numpy_loop(rep: Representation) -> Callable[[np.ndarray], np.ndarray]:
    """The sensor's formula frame by frame: X = |rfft(x w)|**2,
    rms = sqrt(sum_band X / 2) / (N / 2) * ec, L = 20 log10(rms)."""
    fr = rep.framing
    w = window(fr)
    ec = energy_correction(fr)
    bands = np.asarray(filterbank_matrix(rep.filterbank, framing=fr))

    def run(x: np.ndarray) -> np.ndarray:
        n_frames = rep.n_frames(len(x))
        padded = np.pad(x, (0, (n_frames - 1) * fr.hop_length + fr.frame_length - len(x)))
        out = np.empty((n_frames, len(bands)))
        for i in range(n_frames):
            frame = padded[i * fr.hop_length:i * fr.hop_length + fr.frame_length]
            power = np.abs(np.fft.rfft(frame * w)) ** 2
            out[i] = 20 * np.log10(np.sqrt(bands @ power / 2) / (fr.n_fft / 2) * ec + 1e-30)
        return out

    return run


def pann_librosa(x: np.ndarray) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=x, sr=32_000, n_fft=1024, hop_length=320, win_length=1024, window="hann",
        center=True, pad_mode="reflect", power=2.0, n_mels=64, fmin=50, fmax=14_000,
    )
    return np.asarray(librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None))


def yamnet_librosa() -> Callable[[np.ndarray], np.ndarray]:
    """librosa's closest chain; its window sits centred in the 512 buffer, unlike YAMNet's."""
    mel = librosa.filters.mel(sr=16_000, n_fft=512, n_mels=64, fmin=125, fmax=7_500, htk=True,
                              norm=None)

    def run(x: np.ndarray) -> np.ndarray:
        mag = np.abs(librosa.stft(x, n_fft=512, hop_length=160, win_length=400, window="hann",
                                  center=False))
        return np.asarray(np.log(mel @ mag + 0.001))

    return run


def pann_nnaudio() -> Callable[[torch.Tensor], torch.Tensor]:
    layer = nnAudio.features.MelSpectrogram(
        sr=32_000, n_fft=1024, win_length=1024, n_mels=64, hop_length=320, window="hann",
        center=True, pad_mode="reflect", power=2.0, htk=False, fmin=50, fmax=14_000,
        norm=1, verbose=False,
    )
    return lambda x: 10 * torch.log10(torch.clamp(layer(x), min=1e-10))


def pann_torch_stft(rep: Representation) -> Callable[[torch.Tensor], torch.Tensor]:
    mel = torch.tensor(filterbank_matrix(rep.filterbank, framing=rep.framing),
                       dtype=torch.float32)
    win = torch.hann_window(1024)

    def run(x: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(x, n_fft=1024, hop_length=320, window=win, center=True,
                          pad_mode="reflect", return_complex=True)
        return 10 * torch.log10(torch.clamp(mel @ spec.abs().square(), min=1e-10))

    return run


def pinv_reference(source: Representation, target: Representation, n_target: int
                   ) -> Callable[[torch.Tensor], torch.Tensor]:
    """The reference's PINV steps on the source's 2,049-bin grid (float32 torch)."""
    fr = source.framing
    bands = np.asarray(filterbank_matrix(source.filterbank, framing=fr))
    inverse = torch.from_numpy(np.linalg.pinv(bands).T).float()  # (29, 2049)
    assert isinstance(target.filterbank, MelFilterbank)
    mel = torch.from_numpy(mel_matrix(target.filterbank, sample_rate=fr.sample_rate,
                                      n_fft=fr.n_fft)).float()
    gain = reference_gain(fr, source.scaling.reference)
    magnitude = target.scaling.domain == "magnitude"

    def run(levels: torch.Tensor) -> torch.Tensor:
        spec = torch.relu(torch.pow(10.0, levels / 10) / gain @ inverse)  # (frames, 2049)
        spec = F.interpolate(spec.T[None], size=n_target, mode="linear", align_corners=True)[0]
        out = mel @ (spec.sqrt() if magnitude else spec)  # (mels, target frames)
        if magnitude:
            return torch.log(out + 0.001)
        return 10 * torch.log10(torch.clamp(out, min=1e-10))

    return run


# -- rows -----------------------------------------------------------------------------


def frontend_rows(audio32: np.ndarray, audio16: np.ndarray) -> list[Row]:
    reg = get_registry()
    cense, pann, yamnet = (reg.representation(n) for n in ("cense", "pann", "yamnet"))
    t32, t16 = torch.from_numpy(audio32), torch.from_numpy(audio16)
    ours = {rep.name: RepresentationTransform(rep) for rep in (cense, pann, yamnet)}
    loop, yam, nna, stft = (cense_numpy_loop(cense), yamnet_librosa(), pann_nnaudio(),
                            pann_torch_stft(pann))
    return [
        Row("cense", "specxform", lambda: ours["cense"](t32), "NumPy per-frame loop",
            lambda: loop(audio32), compare=True),
        Row("pann", "specxform", lambda: ours["pann"](t32), "librosa melspectrogram",
            lambda: pann_librosa(audio32), compare=True),
        Row("pann (extra)", "nnAudio MelSpectrogram", lambda: nna(t32), "torch.stft + Mel",
            lambda: stft(t32), compare=True, extra=True),
        Row("pann (extra)", "specxform", lambda: ours["pann"](t32), "torch.stft + Mel",
            lambda: stft(t32), compare=True, extra=True),
        Row("yamnet", "specxform", lambda: ours["yamnet"](t16), "librosa YAMNet-like chain",
            lambda: yam(audio16)),
    ]


def pinv_rows(audio32: np.ndarray) -> list[Row]:
    reg = get_registry()
    cense = reg.representation("cense")
    levels = RepresentationTransform(cense)(torch.from_numpy(audio32))[None]
    rows = []
    for target in (reg.representation("pann"), reg.representation("yamnet")):
        n_target = target.n_frames(round(SECONDS * target.sample_rate))
        ref = pinv_reference(cense, target, n_target)
        for method in METHODS:
            model = PinvTranscoder(cense, target, method=method)
            goal = (target.name, method) == ("pann", "pinv")
            rows.append(Row(f"PINV cense->{target.name}", method,
                            lambda m=model: m(levels), "reference chain (torch)",
                            lambda r=ref: r(levels[0]), PINV_GOAL_RTF if goal else None,
                            extra=not goal))
    return rows


# -- timing ---------------------------------------------------------------------------


def difference(row: Row) -> float | None:
    """Largest absolute difference of the two outputs (same representation), else None."""
    if not row.compare:
        return None
    with torch.inference_mode():
        a, b = (np.squeeze(np.asarray(fn(), dtype=np.float64)) for fn in (row.ours_fn,
                                                                          row.baseline_fn))
    b = b.T if b.shape != a.shape else b
    return float(np.abs(a - b).max())


def measure(rows: list[Row], threads: int, repeats: int) -> list[dict[str, Any]]:
    torch.set_num_threads(threads)
    with threadpool_limits(limits=threads):
        fns = [fn for row in rows for fn in (row.ours_fn, row.baseline_fn)]
        seconds = median_seconds(fns, repeats)
    results = []
    for i, row in enumerate(rows):
        ours, base = SECONDS / seconds[2 * i], SECONDS / seconds[2 * i + 1]
        goal = row.goal_rtf if threads == 1 else None
        if row.extra or (row.goal_rtf and not goal):
            passes = None  # information only, or a one-thread goal in the all-thread run
        else:
            passes = ours >= goal if goal else ours >= base
        results.append({
            "group": row.group, "ours": row.ours, "baseline": row.baseline,
            "ours_rtf": ours, "baseline_rtf": base, "ratio": ours / base,
            "goal_rtf": goal, "passes": passes, "max_abs_difference": difference(row),
        })
    return results


# -- teachers -------------------------------------------------------------------------


@attrs.frozen
class TeacherCase:
    """One teacher forward pass to time: a Mel batch holding 10 s of audio."""

    teacher: str
    weights: str  # "pretrained", "pretrained (bundled)" or "random init"
    input: str
    shape: tuple[int, ...]
    fn: Fn


def build_teacher(entry: TeacherEntry) -> tuple[Any, str]:
    """The teacher with its official weights when all its files are cached, else random ones."""
    from specxform import weights

    if not entry.weights:
        return entry.factory(), "pretrained (bundled)"
    if all(weights.path(weights.get(name)).is_file() for name in entry.weights):
        return entry.factory(), "pretrained"
    return entry.factory(pretrained=False), "random init"


def aux_slices(aux: dict[str, np.ndarray], frames: int, starts: list[int], length: int
               ) -> dict[str, torch.Tensor]:
    """Aux inputs of ``frames`` Mel frames (a whole number of values per frame) cut into
    inputs of ``length`` frames starting at frames ``starts``, shape (len(starts), ...)."""
    out = {}
    for name, values in aux.items():
        per_frame = len(values) // frames
        out[name] = torch.from_numpy(np.stack(
            [values[per_frame * s: per_frame * (s + length)] for s in starts])).float()
    return out


def teacher_inputs(entry: TeacherEntry, aux: dict[str, np.ndarray]
                   ) -> dict[str, tuple[torch.Tensor, dict[str, torch.Tensor] | None]]:
    """The teacher's true Mel of 10 s of the clip as one 10 s input and as ten 1 s inputs.

    ``aux`` holds the aux inputs of the whole 10 s; the 1 s inputs get their slices.
    """
    rep = get_registry().representation(entry.target)
    audio = load_audio(CLIP, sample_rate=rep.sample_rate)[0][: round(SECONDS * rep.sample_rate)]
    transform = RepresentationTransform(rep)
    with torch.inference_mode():
        whole = transform(torch.from_numpy(audio))[None]
        chunks = transform(torch.from_numpy(audio.reshape(round(SECONDS), -1)))
    frames, length = whole.shape[1], chunks.shape[1]
    hop = rep.framing.hop_length
    starts = [i * rep.sample_rate // hop for i in range(len(chunks))]  # frame at second i
    return {
        "1 x 10 s": (whole, aux_slices(aux, frames, [0], frames) if aux else None),
        "10 x 1 s": (chunks, aux_slices(aux, frames, starts, length) if aux else None),
    }


def teacher_cases(audio: np.ndarray, sr: int) -> tuple[list[TeacherCase], list[dict[str, Any]]]:
    """Forward passes of every registered teacher, and its aux computation from ``audio``
    (the 10 s at the file's rate ``sr``)."""
    cases, aux_jobs = [], []
    for entry in get_registry().teachers():
        teacher, label = build_teacher(entry)
        teacher.eval()
        aux: dict[str, np.ndarray] = {}
        if entry.aux_inputs:
            aux = {n: np.asarray(v) for n, v in teacher.aux_from_audio(audio, sr).items()}
            aux_jobs.append({"teacher": entry.name, "what": ", ".join(entry.aux_inputs),
                             "fn": lambda t=teacher: t.aux_from_audio(audio, sr)})
        for name, (mel, extra) in teacher_inputs(entry, aux).items():
            cases.append(TeacherCase(entry.name, label, name, tuple(mel.shape),
                                     lambda t=teacher, m=mel, a=extra: t(m, a)))
    return cases, aux_jobs


def measure_teachers(cases: list[TeacherCase], aux_jobs: list[dict[str, Any]], threads: int,
                     repeats: int, aux_repeats: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    with threadpool_limits(limits=threads):
        seconds = median_seconds([c.fn for c in cases], repeats)
        aux_seconds = median_seconds([j["fn"] for j in aux_jobs], aux_repeats, warmup=0)
    rows = [{"teacher": c.teacher, "weights": c.weights, "input": c.input,
             "mel_shape": list(c.shape), "seconds": t, "rtf": SECONDS / t}
            for c, t in zip(cases, seconds, strict=True)]
    aux = [{"teacher": j["teacher"], "aux_inputs": j["what"], "seconds": t, "rtf": SECONDS / t}
           for j, t in zip(aux_jobs, aux_seconds, strict=True)]
    return {"threads": threads, "rows": rows, "aux": aux}


def teacher_markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Teacher forward speed",
        "",
        f"{report['input']}: the true Mel of each teacher's target representation. RTF = "
        f"seconds of audio per second of wall time (median of {report['repeats']} interleaved "
        f"repeats; aux inputs: {report['aux_repeats']}). Weights: \"random init\" where the "
        "official files are not in the cache (same cost per forward pass).",
        "",
        machine_line(report),
    ]
    for setting in report["settings"]:
        lines += ["", f"## {setting['threads']} thread(s)", "",
                  "| teacher | weights | input | Mel batch | time (ms) | RTF |",
                  "|---|---|---|---|---:|---:|"]
        lines += [f"| {r['teacher']} | {r['weights']} | {r['input']} | "
                  f"{' x '.join(map(str, r['mel_shape']))} | {1000 * r['seconds']:,.0f} | "
                  f"{r['rtf']:,.1f} |" for r in setting["rows"]]
        if setting["aux"]:
            lines += ["", "Aux inputs from audio (`teacher.aux_from_audio` on the 10 s clip at "
                      "44.1 kHz):", "", "| teacher | aux inputs | time (s) | RTF |",
                      "|---|---|---:|---:|"]
            lines += [f"| {a['teacher']} | {a['aux_inputs']} | {a['seconds']:.2f} | "
                      f"{a['rtf']:.2f} |" for a in setting["aux"]]
    return "\n".join(lines) + "\n"


# -- report ---------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# specxform speed benchmark",
        "",
        f"{report['input']}. RTF = seconds of audio per second of wall time (median of "
        f"{report['repeats']} interleaved repeats). Ratio = ours / baseline.",
        "",
        machine_line(report),
    ]
    for setting in report["settings"]:
        lines += ["", f"## {setting['threads']} thread(s)", "",
                  "| what | ours | RTF | baseline | RTF | ratio | max abs diff | goal | pass |",
                  "|---|---|---:|---|---:|---:|---:|---|---|"]
        lines += [table_row(r) for r in setting["rows"]]
    return "\n".join(lines) + "\n"


def table_row(r: dict[str, Any]) -> str:
    if r["passes"] is None:
        goal, passes = "-", "-"
    else:
        goal = f">= {r['goal_rtf']:,.0f}x RT" if r["goal_rtf"] else ">= baseline"
        passes = "yes" if r["passes"] else "NO"
    diff = "-" if r["max_abs_difference"] is None else f"{r['max_abs_difference']:.2g}"
    return (f"| {r['group']} | {r['ours']} | {r['ours_rtf']:,.0f} | {r['baseline']} | "
            f"{r['baseline_rtf']:,.0f} | {r['ratio']:.2f} | {diff} | {goal} | {passes} |")


def frontend_report(repeats: int) -> tuple[dict[str, Any], str]:
    audio32 = load_audio(CLIP, sample_rate=32_000)[0][: round(SECONDS * 32_000)]
    audio16 = load_audio(CLIP, sample_rate=16_000)[0][: round(SECONDS * 16_000)]
    rows = frontend_rows(audio32, audio16) + pinv_rows(audio32)
    report: dict[str, Any] = {
        "input": f"{SECONDS:g} s of {CLIP.name} (44.1 kHz, resampled to 32 and 16 kHz)",
        "repeats": repeats, "machine": machine(),
        "settings": [{"threads": n, "rows": measure(rows, n, repeats)} for n in thread_counts()],
    }
    report["load_average_end"] = load_average()
    return report, markdown(report)


def teacher_report(repeats: int, aux_repeats: int) -> tuple[dict[str, Any], str]:
    audio, sr = load_audio(CLIP)
    audio = audio[: round(SECONDS * sr)]
    report: dict[str, Any] = {"input": f"{SECONDS:g} s of {CLIP.name} ({sr:,} Hz)",
                              "repeats": repeats, "aux_repeats": aux_repeats,
                              "machine": machine()}
    cases, aux_jobs = teacher_cases(audio, sr)
    report["settings"] = [measure_teachers(cases, aux_jobs, n, repeats, aux_repeats)
                          for n in thread_counts()]
    report["load_average_end"] = load_average()
    return report, teacher_markdown(report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21,
                        help="timed calls per front-end / PINV function")
    parser.add_argument("--teacher-repeats", type=int, default=5,
                        help="timed calls per teacher forward pass")
    parser.add_argument("--aux-repeats", type=int, default=2,
                        help="timed calls of each teacher's aux inputs from audio (slow)")
    parser.add_argument("--only", choices=SECTIONS, action="append",
                        help="run only this section (repeat for several; default: all)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="folder for the results")
    training.add_arguments(parser)
    chain.add_arguments(parser)
    args = parser.parse_args(argv)
    sections = args.only or SECTIONS
    if not CLIP.is_file() and any(s in NEEDS_CLIP for s in sections):
        print(f"benchmark skipped: {CLIP} not found; set SPECXFORM_SHARED_DATA to the folder "
              "holding street-clips/.", file=sys.stderr)
        return 0
    runs: dict[str, Callable[[], tuple[dict[str, Any], str]]] = {
        "frontend": lambda: frontend_report(args.repeats),
        "teachers": lambda: teacher_report(args.teacher_repeats, args.aux_repeats),
        "training": lambda: training.report(training.options_from(args)),
        "chain": lambda: chain.report(chain.options_from(args)),
    }
    for section in sections:
        report, text = runs[section]()
        write_results(args.output, section, report, text)
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
