"""Compare transcoding methods on the same cached chunks: agreement of a frozen teacher.

A *method* turns source levels into the target Mel (:attr:`Method.transcoder`)
and names the classifier that reads that Mel: ``None`` for the frozen teacher
(PINV variants and trained students), or its own fine-tuned copy (the
retrained-teacher baseline). :func:`evaluate_methods` runs every method on the
same chunks of a :class:`~specxform.training.cache.FeatureCache`, a batch at a time
(memory bounded by the batch, whatever the dataset size), and scores each
with an :class:`~specxform.evaluation.metrics.AgreementAccumulator`: the teacher's
outputs on the true Mels (cached) against the outputs on that method's Mels,
grouped by file (PtoPa-FC, top-k, KL, reference KL, BCE, Mel MSE, bootstrap
intervals over files; see :mod:`specxform.evaluation.metrics`).

Methods come from :func:`pinv_method` (``pinv``, ``nnls``, ``ridge``: the
derived :class:`~specxform.transcoders.pinv.PinvTranscoder`) and :func:`checkpoint_method`
(any checkpoint of :mod:`specxform.training.checkpoint`: a student, or a retrained
teacher), which checks that the checkpoint transcodes the evaluated pair for
the evaluated teacher. A checkpoint also records the clips it was trained and
validated on; :attr:`EvaluationResult.overlap` counts the evaluated files
among them (0 for an honest held-out evaluation).

:func:`majority_agreement` scores the trivial baseline that always answers
one class, and :attr:`EvaluationResult.examples` keeps a few chunks' true and
transcoded Mels for figures (:mod:`specxform.evaluation.figures`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from torch import Tensor, nn

from specxform.errors import CheckpointError, InputError, SpecError
from specxform.evaluation.metrics import AgreementAccumulator, Estimate, Metrics, bootstrap
from specxform.progress import ProgressCallback, report
from specxform.registry import Registry
from specxform.representations.specs import Representation
from specxform.training.cache import FeatureCache, teacher_digest
from specxform.training.checkpoint import load_model
from specxform.transcoders.pinv import METHODS as PINV_METHODS
from specxform.transcoders.pinv import PinvTranscoder

__all__ = [
    "PINV_METHODS",
    "EvaluationResult",
    "Example",
    "Method",
    "cache_pair",
    "check_teacher",
    "checkpoint_method",
    "evaluate_methods",
    "example_rows",
    "majority_agreement",
    "pinv_method",
]


@attrs.frozen
class Method:
    """One way of producing the Mel the teacher classifies.

    Attributes
    ----------
    name : str
        Its name in tables (``pinv``, ``cnn-logits``, ...).
    transcoder : nn.Module
        Source levels ``(batch, frames, source bands)`` -> Mel ``(batch,
        target frames, mels)`` in the target's unit.
    classifier : nn.Module or None
        What classifies that Mel: ``None`` for the frozen teacher; the
        fine-tuned teacher of a retrained checkpoint.
    kind : str
        ``"pinv"``, ``"student"``, ``"retrained"`` or a caller's label.
    checkpoint : str or None
        The checkpoint file it came from.
    trained_on : frozenset of str
        Clip names the checkpoint was trained or validated on.
    """

    name: str
    transcoder: nn.Module
    classifier: nn.Module | None = None
    kind: str = "pinv"
    checkpoint: str | None = None
    trained_on: frozenset[str] = attrs.field(factory=frozenset, converter=frozenset)


def pinv_method(name: str, source: Representation, target: Representation) -> Method:
    """The derived PINV transcoder with inversion ``name`` (``pinv``, ``nnls`` or ``ridge``)."""
    if name not in PINV_METHODS:
        raise SpecError(
            f"{name!r} is not a PINV method; choose one of {', '.join(PINV_METHODS)}."
        )
    return Method(name, PinvTranscoder(source, target, method=name), None, "pinv")


def _differences(saved: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))


def _check_rep(label: str, role: str, saved: Representation, wanted: Representation) -> None:
    if saved.name != wanted.name:
        raise CheckpointError(
            f"{label} has {role} {saved.name!r}, not {wanted.name!r}; give a checkpoint "
            f"trained for this {role} (`specxform train --{role} {wanted.name}`)."
        )
    differ = _differences(saved.to_dict(), wanted.to_dict())
    if differ:
        raise CheckpointError(
            f"{label}: its {role} {saved.name!r} is defined differently from the evaluated one "
            f"({', '.join(differ)} differ); retrain it with the installed definition."
        )


def checkpoint_method(name: str, checkpoint: str | Path, *, source: Representation,
                      target: Representation, teacher_name: str,
                      teacher_digest: str | None = None, registry: Registry | None = None,
                      device: torch.device | str = "cpu") -> Method:
    """A trained checkpoint as a method, checked against the evaluated pair and teacher.

    Parameters
    ----------
    name : str
        The method's name.
    checkpoint : path
        A ``best.pt``/``last.pt`` file or a run folder (meaning its ``best.pt``).
    source, target : Representation
        The evaluated pair; the checkpoint's must be identical.
    teacher_name : str
        The evaluated teacher; the checkpoint must have been trained against it.
    teacher_digest : str, optional
        SHA-256 of the evaluated teacher's weights
        (:func:`~specxform.training.cache.teacher_digest`); when given, the checkpoint's
        must match (same teacher name, other weights is an error).
    registry : Registry, optional
        Where the student / teacher architecture is looked up.
    device : torch device

    Raises
    ------
    CheckpointError
        Unreadable checkpoint, or another pair, teacher or teacher weights.
    """
    from specxform.api import check_weights

    model = load_model(checkpoint, device=device, registry=registry)
    check_weights(model.transcoder, checkpoint, "transcoder")
    if model.classifier is not None:
        check_weights(model.classifier, checkpoint, "fine-tuned teacher")
    label = f"checkpoint {name}={checkpoint}"
    _check_rep(label, "source", model.source, source)
    _check_rep(label, "target", model.target, target)
    if model.teacher_name != teacher_name:
        raise CheckpointError(
            f"{label} was trained for teacher {model.teacher_name!r}, not {teacher_name!r}; "
            f"evaluate it with `teacher_name={model.teacher_name!r}`, or give a checkpoint trained "
            f"for {teacher_name!r}."
        )
    saved = model.description["teacher"].get("digest")
    if teacher_digest is not None and saved is not None and saved != teacher_digest:
        raise CheckpointError(
            f"{label} was trained against other weights of teacher {teacher_name!r} (digest "
            f"{saved[:12]}..., evaluated {teacher_digest[:12]}...); pass the weights it was "
            "trained with (the teacher's weight file) or retrain it."
        )
    split = model.description.get("split") or {}
    trained_on = [*split.get("train", ()), *split.get("valid", ())]
    return Method(name, model.transcoder, model.classifier, model.kind, str(checkpoint),
                  frozenset(trained_on))


def cache_pair(cache: FeatureCache) -> tuple[Representation, Representation]:
    """The source and target representations ``cache`` was built for."""
    return (Representation.from_dict(cache.manifest["source"]),
            Representation.from_dict(cache.manifest["target"]))


def check_teacher(cache: FeatureCache, teacher: nn.Module) -> str:
    """The teacher's digest, after checking that the cache's true outputs are its own.

    Raises
    ------
    InputError
        If ``cache`` was built with other teacher weights.
    """
    digest = teacher_digest(teacher)
    if digest != cache.manifest["teacher"]["digest"]:
        raise InputError(
            f"the teacher's weights differ from those cached in {cache.folder.name} (teacher "
            f"{cache.manifest['teacher']['name']!r}); evaluate with the teacher the cache was "
            "built with, or build a cache for this one."
        )
    return digest


@attrs.frozen
class Example:
    """One chunk's Mels for figures.

    Attributes
    ----------
    file : str
        The clip's name.
    chunk : int
        Position of the chunk in its clip (0-based; seconds from the start
        divided by the chunk length).
    levels : np.ndarray, shape (source frames, source bands)
    true_mel : np.ndarray, shape (target frames, mels)
    mels : dict of str to np.ndarray
        Each method's Mel, same shape as ``true_mel``.
    """

    file: str
    chunk: int
    levels: np.ndarray
    true_mel: np.ndarray
    mels: dict[str, np.ndarray]


@attrs.frozen
class EvaluationResult:
    """Every method's metrics on the same files.

    Attributes
    ----------
    metrics : dict of str to Metrics
        By method, in evaluation order.
    files : tuple of str
        The evaluated clips (those with at least one cached chunk), sorted.
    n_chunks : int
        Chunks scored per method.
    examples : tuple of Example
    overlap : dict of str to int
        By method: evaluated files its checkpoint was trained or validated on.
    kinds : dict of str to str
        By method: :attr:`Method.kind`.
    file_index : dict of str to int
        Each evaluated file's index in the cache.
    """

    metrics: dict[str, Metrics]
    files: tuple[str, ...]
    n_chunks: int
    examples: tuple[Example, ...]
    overlap: dict[str, int]
    kinds: dict[str, str]
    #: Each evaluated file's index in the cache (the keys of :attr:`Metrics.agree`).
    file_index: dict[str, int] = attrs.field(factory=dict)

    @property
    def n_groups(self) -> int:
        """Groups the intervals resampled (0: files were resampled one by one)."""
        return next(iter(self.metrics.values())).n_groups if self.metrics else 0

    def agreeing(self, method: str) -> list[str]:
        """The evaluated files whose top-1 classes agree under ``method``, sorted."""
        return sorted(self.files[i] for i, a in enumerate(self.agree(method)) if a)

    def true_top1(self) -> list[int]:
        """Each evaluated file's top-1 class on the true Mels, in :attr:`files` order."""
        if not self.metrics:
            return []
        top = next(iter(self.metrics.values())).true_top
        return [top[self.file_index[f]] for f in self.files]

    def top1(self, method: str) -> list[int]:
        """Each evaluated file's top-1 class on ``method``'s Mels, in :attr:`files` order."""
        top = self.metrics[method].top
        return [top[self.file_index[f]] for f in self.files]

    def agree(self, method: str) -> list[bool]:
        """Whether each evaluated file's top-1 classes agree under ``method``, in
        :attr:`files` order."""
        by_index = self.metrics[method].agree
        return [by_index[self.file_index[f]] for f in self.files]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: per method its kind, overlap, :meth:`Metrics.to_dict` and the
        agreeing files."""
        return {
            "n_files": len(self.files), "n_chunks": self.n_chunks, "files": list(self.files),
            "n_groups": self.n_groups, "true_top1": self.true_top1(),
            "methods": {name: {"kind": self.kinds[name], "overlap": self.overlap[name],
                               **m.to_dict(), "agreeing_files": self.agreeing(name)}
                        for name, m in self.metrics.items()},
            "examples": [{"file": e.file, "chunk": e.chunk} for e in self.examples],
        }


def _check_rows(cache: FeatureCache, rows: Any) -> np.ndarray:
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    if len(rows) == 0:
        raise InputError("no chunk to evaluate: the chosen clips hold no cached (audible) chunk; "
                         "choose another split or more clips.")
    if rows[0] < 0 or rows[-1] >= len(cache):
        raise InputError(f"chunk rows must lie in 0..{len(cache) - 1}, got {rows[-1]}.")
    return rows


def example_rows(cache: FeatureCache, rows: np.ndarray, n: int) -> np.ndarray:
    """``n`` chunks of ``rows`` for figures: the middle chunk of ``n`` evenly spaced files."""
    files = np.asarray(cache.file_index)[rows]
    unique = np.unique(files)
    if n < 1:
        return np.zeros(0, dtype=np.int64)
    chosen = unique[np.unique(np.linspace(0, len(unique) - 1, min(n, len(unique))).round()
                              .astype(int))]
    picks = []
    for f in chosen:
        mine = rows[files == f]
        picks.append(mine[len(mine) // 2])
    return np.asarray(picks, dtype=np.int64)


def _tensor(array: np.ndarray, device: torch.device) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(device)


def _prepare(methods: Iterable[Method], device: torch.device) -> dict[str, Method]:
    prepared: dict[str, Method] = {}
    for method in methods:
        if method.name in prepared:
            raise SpecError(f"method {method.name!r} is given twice; name each method once.")
        classifier = None if method.classifier is None else method.classifier.to(device).eval()
        prepared[method.name] = attrs.evolve(method, transcoder=method.transcoder.to(device)
                                             .eval(), classifier=classifier)
    if not prepared:
        raise SpecError("no method to evaluate; give at least one (e.g. pinv).")
    return prepared


@torch.no_grad()
def evaluate_methods(cache: FeatureCache, rows: Any, teacher: nn.Module,
                     methods: Sequence[Method], *, batch_size: int = 64,
                     device: torch.device | str = "cpu", n_boot: int = 1000,
                     confidence: float = 0.95, seed: int = 0, n_examples: int = 3,
                     top_k: Sequence[int] = (1, 3, 5),
                     groups: Mapping[str, str] | None = None,
                     progress: ProgressCallback | None = None
                     ) -> EvaluationResult:
    """Score every method on the cached chunks ``rows`` (all methods on the same chunks).

    Parameters
    ----------
    cache : FeatureCache
        Source levels, true Mels, the teacher's outputs on them, aux inputs.
    rows : array of int
        Chunk indices into ``cache`` (e.g. ``cache.rows(test_clip_names)``).
    teacher : nn.Module
        The frozen teacher the cache was built with (checked by weight digest).
    methods : sequence of Method
    batch_size : int
        Chunks per forward pass: memory is bounded by one batch per method.
    device : torch device
    n_boot, confidence, seed
        Bootstrap over files (see :meth:`AgreementAccumulator.result`).
    n_examples : int
        Chunks whose Mels are kept for figures (:func:`example_rows`).
    top_k : sequence of int
        The ``top{k}`` metrics.
    groups : mapping of str to str, optional
        Clip name -> group (its source recording, :attr:`Clip.group`): the
        intervals then resample whole groups (a clip missing from it is its
        own group). Without it they resample files.
    progress : callable, optional
        Receives a :class:`~specxform.progress.ProgressEvent` per batch (task
        ``"evaluating <methods>"``: chunks done of ``len(rows)``).

    Returns
    -------
    EvaluationResult
    """
    if batch_size < 1:
        raise SpecError(f"batch_size must be >= 1, got {batch_size}.")
    rows = _check_rows(cache, rows)
    device = torch.device(device)
    check_teacher(cache, teacher)
    teacher = teacher.to(device).eval()
    prepared = _prepare(methods, device)
    n_classes = cache.probs.shape[1]
    accs = {name: AgreementAccumulator(len(cache.files), n_classes, top_k=top_k)
            for name in prepared}
    wanted = set(example_rows(cache, rows, n_examples).tolist())
    examples: dict[int, dict[str, Any]] = {}
    task = f"evaluating {', '.join(prepared)}"
    for start in range(0, len(rows), batch_size):
        chunk_rows = rows[start : start + batch_size]
        batch = cache.take(chunk_rows)
        _score_batch(batch, prepared, teacher, accs, device,
                     _example_slots(chunk_rows, wanted, examples, batch))
        report(progress, task, start + len(chunk_rows), len(rows))
    names = cache.files
    labels = None if groups is None else [groups.get(n, n) for n in names]
    metrics = {name: acc.result(n_boot=n_boot, confidence=confidence, seed=seed, groups=labels)
               for name, acc in accs.items()}
    files = tuple(sorted({names[i] for i in np.unique(np.asarray(cache.file_index)[rows])}))
    evaluated = set(files)
    overlap = {name: len(evaluated & m.trained_on) for name, m in prepared.items()}
    return EvaluationResult(metrics, files, len(rows), _examples(cache, examples), overlap,
                            {name: m.kind for name, m in prepared.items()},
                            {f: i for i, f in enumerate(names) if f in evaluated})


def _example_slots(chunk_rows: np.ndarray, wanted: set[int], examples: dict[int, dict[str, Any]],
                   batch: Mapping[str, np.ndarray]) -> dict[int, dict[str, Any]]:
    """Register the example chunks of this batch; returns {position in batch: record}."""
    slots = {}
    for position, row in enumerate(chunk_rows.tolist()):
        if row in wanted:
            examples[row] = {"levels": np.array(batch["source"][position]),
                             "true_mel": np.array(batch["target"][position]), "mels": {}}
            slots[position] = examples[row]
    return slots


def _score_batch(batch: Mapping[str, np.ndarray], methods: Mapping[str, Method],
                 teacher: nn.Module, accs: Mapping[str, AgreementAccumulator],
                 device: torch.device, slots: Mapping[int, dict[str, Any]]) -> None:
    levels = _tensor(batch["source"], device)
    aux = {k.removeprefix("aux_student."): _tensor(v, device) for k, v in batch.items()
           if k.startswith("aux_student.")}
    for name, method in methods.items():
        mel = method.transcoder(levels).float()
        classifier = method.classifier if method.classifier is not None else teacher
        probs = classifier(mel, aux or None).probs.float()
        if probs.shape[1] != batch["probs"].shape[1]:
            raise InputError(
                f"method {name!r}: its classifier gives {probs.shape[1]} classes, the cached "
                f"teacher {batch['probs'].shape[1]}; evaluate it with the teacher it was "
                "trained for."
            )
        mel_np = mel.cpu().numpy()
        accs[name].update(batch["file_index"], batch["probs"], probs.cpu().numpy(),
                          true_mel=batch["target"], mel=mel_np)
        for position, record in slots.items():
            record["mels"][name] = mel_np[position]


def _examples(cache: FeatureCache, records: Mapping[int, Mapping[str, Any]]
              ) -> tuple[Example, ...]:
    out = []
    for row in sorted(records):
        record = records[row]
        out.append(Example(cache.files[int(cache.file_index[row])], int(cache.chunk_index[row]),
                           record["levels"], record["true_mel"], dict(record["mels"])))
    return tuple(out)


def majority_agreement(cache: FeatureCache, rows: Any, *, n_boot: int = 1000,
                       confidence: float = 0.95, seed: int = 0,
                       groups: Mapping[str, str] | None = None) -> tuple[int, Estimate]:
    """PtoPa-FC of always answering the most frequent true top-1 class of the files.

    Each file's true top-1 is the argmax of its chunks' mean teacher
    probabilities on the true Mels (as in PtoPa-FC); the answer is the most
    frequent of those over the evaluated files (ties: the lowest class
    index), which is the best any constant answer can score on them.

    Returns
    -------
    class_index : int
    estimate : Estimate
        The share of files whose true top-1 is that class, with a bootstrap
        interval over files (over whole groups with ``groups``, as in
        :func:`evaluate_methods`).
    """
    rows = _check_rows(cache, rows)
    files = np.asarray(cache.file_index)[rows]
    probs = np.asarray(cache.probs[rows], dtype=np.float64)
    sums = np.zeros((len(cache.files), probs.shape[1]))
    np.add.at(sums, files, probs)
    seen = np.unique(files)
    true_top = sums[seen].argmax(-1)
    majority = int(np.bincount(true_top, minlength=probs.shape[1]).argmax())
    labels = None if groups is None else [groups.get(cache.files[i], cache.files[i])
                                          for i in seen]
    return majority, bootstrap((true_top == majority) * 1.0, n_boot=n_boot,
                               confidence=confidence, seed=seed, groups=labels)
