"""More training audio from the same recordings: mixtures, gains, offsets, scenes.

Teacher-student training needs no labels, so any plausible sound is a training
example: the teacher labels it. :func:`augment_clips` writes new clips made
from the training clips only (never from validation or test recordings, whose
groups must not leak into training):

* **mixtures**: two training clips summed, each at a random gain (dB, uniform
  in ``gain_db``) and a random circular time offset;
* **scenes**: one foreground clip over a random excerpt of a long background
  recording (the 45 s street scene of ``../shared/data/street-clips``) at a
  random foreground-to-background ratio (``snr_db``).

Every draw comes from ``numpy.random.default_rng(seed)``, so the same clips,
configuration and seed give the same files, bit for bit. Files are written as
32 kHz 16-bit FLAC (lossless; 32 kHz is the highest rate any built-in
representation reads) through an atomic rename, and a manifest records what
made them; an existing complete folder with the same manifest is reused.

Why no augmentation library: each operation is one line of NumPy on a whole
clip, and the determinism that caching needs is easiest to prove when every
draw is in one generator here.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from specxform.audio import load_audio
from specxform.datasets.base import Clip
from specxform.errors import InputError, SpecError

__all__ = ["AUGMENT_RATE", "Augmentation", "augment_clips"]

#: Sample rate of the written clips (Hz).
AUGMENT_RATE = 32_000
_MANIFEST = "augment.json"


def _count(instance: object, attribute: attrs.Attribute, value: int) -> None:
    if not isinstance(value, int) or value < 0:
        raise SpecError(f"augmentation {attribute.name} must be an int >= 0, got {value!r}.")


def _interval(instance: object, attribute: attrs.Attribute, value: tuple[float, float]) -> None:
    if len(value) != 2 or not value[0] <= value[1]:
        raise SpecError(f"augmentation {attribute.name} must be (low, high) with low <= high, "
                        f"got {value!r}.")


def _pair(value: Sequence[float]) -> tuple[float, float]:
    return tuple(float(v) for v in value)  # type: ignore[return-value]


@attrs.frozen
class Augmentation:
    """What :func:`augment_clips` makes.

    Parameters
    ----------
    mixtures : int
        Two-clip mixtures to write.
    scenes : int
        Foreground-over-background scenes to write (needs ``background``).
    gain_db : (float, float)
        Range of the random gain of each mixture component, dB.
    snr_db : (float, float)
        Range of the foreground-to-background RMS ratio of a scene, dB.
    seconds : float
        Length of every written clip (the length of the training clips).
    seed : int
        Seed of every draw.
    """

    mixtures: int = attrs.field(default=0, validator=_count)
    scenes: int = attrs.field(default=0, validator=_count)
    gain_db: tuple[float, float] = attrs.field(default=(-12.0, 0.0), converter=_pair,
                                               validator=_interval)
    snr_db: tuple[float, float] = attrs.field(default=(-6.0, 12.0), converter=_pair,
                                              validator=_interval)
    seconds: float = attrs.field(default=4.0, converter=float)
    seed: int = attrs.field(default=0, validator=_count)

    def __attrs_post_init__(self) -> None:
        if not self.seconds > 0:
            raise SpecError(f"augmentation seconds must be > 0, got {self.seconds!r}.")

    def to_dict(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "gain_db": list(self.gain_db),
                "snr_db": list(self.snr_db)}


def _fit(audio: np.ndarray, n: int, offset: int) -> np.ndarray:
    """``audio`` tiled or cut to ``n`` samples, rolled by ``offset``."""
    reps = -(-n // max(len(audio), 1))
    return np.roll(np.tile(audio, reps)[:n], offset)


def _rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))) + 1e-12)


def _peak_safe(audio: np.ndarray) -> np.ndarray:
    """Scale down (never up) so that the 16-bit file does not clip."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return audio / peak * 0.99 if peak > 0.99 else audio


def _manifest(clips: Sequence[Clip], config: Augmentation, background: Path | None
              ) -> dict[str, Any]:
    names = hashlib.sha256("\n".join(sorted(c.name for c in clips)).encode()).hexdigest()
    return {"config": config.to_dict(), "clips": names, "n_clips": len(clips),
            "background": None if background is None else str(background)}


def _write(path: Path, audio: np.ndarray) -> None:
    import soundfile

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    soundfile.write(tmp, _peak_safe(audio), AUGMENT_RATE, subtype="PCM_16", format="FLAC")
    os.replace(tmp, path)


def augment_clips(clips: Sequence[Clip], out_dir: str | Path, config: Augmentation, *,
                  background: str | Path | None = None) -> tuple[Clip, ...]:
    """Write the augmented clips of ``config`` made from ``clips`` into ``out_dir``.

    Parameters
    ----------
    clips : sequence of Clip
        Training clips only (their groups are carried into the new clips' groups).
    out_dir : path
        Folder for the FLAC files and the manifest; created if needed.
    config : Augmentation
    background : path, optional
        Long recording the scenes are cut from.

    Returns
    -------
    tuple of Clip
        The new clips, named ``augment/mix-00000.flac`` and
        ``augment/scene-00000.flac``, grouped as ``augment:<groups of their
        sources>``, label ``None`` (the teacher labels them).
    """
    if config.mixtures and len(clips) < 2:
        raise InputError(f"mixtures need at least 2 training clips, got {len(clips)}.")
    if config.scenes and (background is None or not clips):
        raise InputError("scenes need a background recording (background=PATH) and at least "
                         "one training clip.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = _manifest(clips, config, None if background is None else Path(background))
    plan = _plan(clips, config)
    done = out / _MANIFEST
    fresh = not (done.is_file() and json.loads(done.read_text()) == manifest)
    if fresh:
        done.unlink(missing_ok=True)
        _render(plan, out, config, background)
        tmp = done.with_name(f".{done.name}.tmp")
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, done)  # written last: the folder is complete only with it
    return tuple(Clip(out / name, f"augment/{name}", None, group) for name, group, _ in plan)


def _plan(clips: Sequence[Clip], config: Augmentation
          ) -> list[tuple[str, str, dict[str, Any]]]:
    """Every draw, made before any audio is read, so the plan alone fixes the output."""
    rng = np.random.default_rng(config.seed)
    ordered = sorted(clips, key=lambda c: c.name)
    n = round(config.seconds * AUGMENT_RATE)
    plan = []
    for i in range(config.mixtures):
        a, b = rng.choice(len(ordered), size=2, replace=False)
        gains = rng.uniform(*config.gain_db, size=2)
        shifts = rng.integers(0, n, size=2)
        parts = (ordered[a], ordered[b])
        group = "augment:" + "+".join(sorted({p.group for p in parts}))
        plan.append((f"mix-{i:05d}.flac", group,
                     {"parts": parts, "gains": gains, "shifts": shifts}))
    for i in range(config.scenes):
        fg = ordered[int(rng.integers(len(ordered)))]
        plan.append((f"scene-{i:05d}.flac", f"augment:{fg.group}",
                     {"fg": fg, "snr": rng.uniform(*config.snr_db), "start": rng.random(),
                      "shift": int(rng.integers(0, n))}))
    return plan


def _render(plan: list[tuple[str, str, dict[str, Any]]], out: Path, config: Augmentation,
            background: str | Path | None) -> None:
    n = round(config.seconds * AUGMENT_RATE)
    bg = load_audio(background, sample_rate=AUGMENT_RATE)[0] if background is not None else None
    loaded: dict[Path, np.ndarray] = {}

    def audio(clip: Clip) -> np.ndarray:
        if clip.path not in loaded:
            loaded[clip.path] = load_audio(clip.path, sample_rate=AUGMENT_RATE)[0]
        return loaded[clip.path]

    for name, _, draw in plan:
        if "parts" in draw:
            mix = sum(_fit(audio(p), n, int(s)) * 10 ** (g / 20)
                      for p, g, s in zip(draw["parts"], draw["gains"], draw["shifts"],
                                         strict=True))
        else:
            assert bg is not None
            start = int(draw["start"] * max(len(bg) - n, 0))
            under = _fit(bg[start:start + n], n, 0)
            fg = _fit(audio(draw["fg"]), n, draw["shift"])
            mix = fg + under * (_rms(fg) / _rms(under)) * 10 ** (-draw["snr"] / 20)
        _write(out / name, np.asarray(mix, dtype=np.float32))
