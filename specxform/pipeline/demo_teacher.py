"""The demo with a real AudioSet teacher: PINV against a trained transcoder on one scene.

For each shipped transcoder (``cense-yamnet``, ``cense-efficientat``) whose
teacher's weights are found on this machine (search path or cache; nothing is
downloaded), :func:`teacher_demo` takes the generated street scene of
:func:`specxform.pipeline.demo.urban_scene` (or an audio file), computes its source
levels, and classifies three Mels with the frozen teacher:

* the **true** Mel of the audio (what the classifier was trained on),
* the **PINV** Mel derived from the levels alone,
* the **transcoded** Mel, the trained student's refinement of the PINV Mel.

Chunks follow the checkpoint's training chunking; a clip's probabilities are
the mean over its chunks (as in PtoPa-FC). The result says whether each Mel's
top-1 class equals the true Mel's, the KL divergence to the true Mel's
class distribution, and writes one PNG of the four spectrograms.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from specxform import api
from specxform.errors import CheckpointError, WeightsError
from specxform.plugins import get_registry

__all__ = ["MelVerdict", "TeacherDemo", "teacher_demo"]

#: The shipped transcoders the demo tries, in order.
SHIPPED = ("cense-yamnet", "cense-efficientat")


@attrs.frozen
class MelVerdict:
    """What the teacher hears in one Mel: its top classes and how far it is from the truth."""

    mel: str
    top: tuple[tuple[str, float], ...]
    agrees: bool
    kl: float


@attrs.frozen
class TeacherDemo:
    """One shipped transcoder on one scene."""

    checkpoint: str
    teacher: str
    source: str
    target: str
    chunks: int
    chunk_seconds: float
    verdicts: tuple[MelVerdict, ...]
    png: Path


def _chunks(audio: np.ndarray, rate: int, seconds: float) -> list[np.ndarray]:
    size = round(seconds * rate)
    count = max(1, math.floor(len(audio) / size + 0.5))
    padded = np.pad(audio, (0, max(0, count * size - len(audio))))
    return [padded[i * size:(i + 1) * size] for i in range(count)]


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum(p * (np.log(np.maximum(p, 1e-12)) - np.log(np.maximum(q, 1e-12)))))


def teacher_demo(folder: str | Path, audio: np.ndarray, sample_rate: int, *,
                 checkpoint: str, top: int = 3) -> TeacherDemo | None:
    """Run one shipped transcoder and its teacher on ``audio``; ``None`` if either is absent.

    Parameters
    ----------
    folder : path
        Where the PNG goes (``<checkpoint>.png``).
    audio : np.ndarray, shape (samples,)
        Mono audio, full scale 1.
    sample_rate : int
        Its rate in Hz.
    checkpoint : str
        A shipped transcoder's name or a checkpoint path.
    top : int
        Classes listed per Mel.
    """
    from specxform.evaluation.plotting import plot_mels
    from specxform.teachers.labels import teacher_labels
    from specxform.training.checkpoint import load_model

    try:
        model = load_model(checkpoint)
        teacher = get_registry().teacher(model.teacher_name).factory(download=False).eval()
    except (CheckpointError, WeightsError):
        return None
    chunking = model.description["cache"]["chunking"]
    if chunking["normalise"] == "peak" and np.max(np.abs(audio)) > 0:
        audio = audio / np.max(np.abs(audio))
    source, target = model.source, model.target
    pinv: Any = model.transcoder.pinv
    probs: dict[str, list[np.ndarray]] = {"true": [], "PINV": [], "transcoded": []}
    with torch.inference_mode():
        for chunk in _chunks(audio, sample_rate, chunking["seconds"]):
            chunk_levels = torch.from_numpy(api.compute(source, chunk, sample_rate))[None]
            mels = {"true": torch.from_numpy(api.compute(target, chunk, sample_rate))[None],
                    "PINV": pinv(chunk_levels), "transcoded": model.transcoder(chunk_levels)}
            for name, mel in mels.items():
                probs[name].append(teacher(mel).probs[0].numpy())
    names = teacher_labels(teacher, teacher.num_classes).names
    clip = {name: np.mean(p, axis=0) for name, p in probs.items()}
    truth = int(np.argmax(clip["true"]))
    verdicts = tuple(
        MelVerdict(name, tuple((names[i], float(p[i])) for i in np.argsort(-p)[:top]),
                   int(np.argmax(p)) == truth, _kl(clip["true"], p))
        for name, p in clip.items())
    levels = api.compute(source, audio, sample_rate)
    with torch.inference_mode():
        whole = {"PINV": pinv(torch.from_numpy(levels)[None])[0].numpy(),
                 "transcoded": model.transcoder(torch.from_numpy(levels)[None])[0].numpy()}
    whole["true"] = api.compute(target, audio, sample_rate)[: whole["PINV"].shape[0]]
    by_name = {v.mel: v for v in verdicts}
    panels = [(f"{name} {target.name} Mel: {_top_line(by_name[name])}", whole[name])
              for name in ("PINV", "transcoded", "true")]
    png = plot_mels(Path(folder) / f"{Path(checkpoint).name}.png", levels=levels,
                    source=source, mels=panels, target=target,
                    title=f"{checkpoint}: what {model.teacher_name} hears")
    return TeacherDemo(checkpoint, model.teacher_name, source.name, target.name,
                       len(probs["true"]), float(chunking["seconds"]), verdicts, png)


def _top_line(verdict: MelVerdict) -> str:
    return ", ".join(f"{name} {p:.2f}" for name, p in verdict.top)


def summary(demo: TeacherDemo) -> dict[str, Any]:
    """JSON-ready form of a :class:`TeacherDemo`."""
    return {"checkpoint": demo.checkpoint, "teacher": demo.teacher, "source": demo.source,
            "target": demo.target, "chunks": demo.chunks, "chunk_seconds": demo.chunk_seconds,
            "png": str(demo.png),
            "mels": [{"mel": v.mel, "top": [list(t) for t in v.top], "agrees": v.agrees,
                      "kl": v.kl} for v in demo.verdicts]}
