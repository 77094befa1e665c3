"""Downstream probes: how useful a frozen teacher's outputs are for a new task.

The paper's downstream test (SPEC.md, section 7; Table 3): the frozen teacher
classifies each clip, and a probe ``Linear(N, 100) -> Linear(100, C)`` (``N``
the teacher's outputs, ``C`` the task's classes; two linear layers, nothing in
between) learns the task from the teacher's outputs. The probe is trained once
on the outputs computed from the *true* Mels and once on those computed from
*transcoded* Mels (PINV, trained transcoders): the gap between the scores is
what transcoding costs downstream.

Clip features. For each cached 1 s chunk (:mod:`specxform.training.cache`) the teacher
gives a probability vector; a clip's feature is the mean of its chunks'
vectors (as in PtoPa-FC). True side: the cached probabilities. Transcoded
side: the transcoder runs on the cached source levels, then the teacher (or
the fine-tuned classifier of a retrained checkpoint) with the student-side
auxiliary inputs (``aux_student.*``, e.g. SoundAQnet's loudness computed from
the levels). A clip none of whose chunks was cached (digital silence) has no
feature and is left out.

The probe and its training live in :mod:`specxform.evaluation.probe`, the
evaluation folds and schemes in :mod:`specxform.evaluation.folds`, the
bootstrap in :mod:`specxform.evaluation.metrics`.

Scores: single-label tasks use the accuracy of the argmax; multi-label ones
the macro-averaged area under the precision-recall curve (average precision,
:func:`average_precision`, over the classes with a positive test clip) and
the micro F1 at the 0.5 threshold. Cross-validation reports the mean over
folds with a percentile bootstrap interval over folds and the standard
deviation; a single split a bootstrap interval over test clips.

May import: the contracts, the training cache and the rest of
:mod:`specxform.evaluation`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import torch
from torch import nn

from specxform.datasets import Clip
from specxform.errors import InputError, SpecError
from specxform.evaluation.folds import Fold
from specxform.evaluation.metrics import Estimate, bootstrap, bootstrap_metric
from specxform.evaluation.probe import ProbeConfig, predict, train_probe
from specxform.progress import ProgressCallback, report
from specxform.training.cache import FeatureCache

__all__ = [
    "METRICS",
    "DownstreamResult",
    "FoldScore",
    "MethodResult",
    "accuracy",
    "average_precision",
    "clip_means",
    "evaluate_probes",
    "label_matrix",
    "macro_auprc",
    "micro_f1",
    "task_of",
    "transcoded_features",
    "true_features",
]

#: The metric of each task: argmax accuracy, or macro-averaged average precision.
METRICS = {"single": "accuracy", "multi": "macro_auprc"}


# ------------------------------------------------------------------------------ features


def clip_means(values: np.ndarray, file_index: np.ndarray, n_files: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the chunk vectors of each file.

    Parameters
    ----------
    values : np.ndarray, shape (chunks, outputs)
    file_index : np.ndarray of int, shape (chunks,)
        File of each chunk, ``0 .. n_files - 1``.
    n_files : int

    Returns
    -------
    means : np.ndarray of float64, shape (n_files, outputs)
        NaN for a file without chunks.
    counts : np.ndarray of int, shape (n_files,)
        Chunks per file.
    """
    values = np.asarray(values, dtype=np.float64)
    files = np.asarray(file_index, dtype=np.int64)
    sums = np.zeros((n_files, values.shape[1]))
    np.add.at(sums, files, values)
    counts = np.bincount(files, minlength=n_files)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None], counts


def true_features(cache: FeatureCache) -> tuple[np.ndarray, np.ndarray]:
    """Per-clip mean of the teacher's cached probabilities on the true Mels.

    Returns ``(features (clips, classes), chunk counts (clips,))``, clips in
    :attr:`FeatureCache.files` order (see :func:`clip_means`).
    """
    return clip_means(cache.probs, cache.file_index, len(cache.files))


@torch.no_grad()
def transcoded_features(cache: FeatureCache, transcoder: nn.Module, classifier: nn.Module, *,
                        batch_size: int = 64, device: torch.device | str = "cpu",
                        progress: ProgressCallback | None = None, label: str = "transcoded"
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Per-clip mean of the classifier's probabilities on the transcoded Mels of the cache.

    Parameters
    ----------
    cache : FeatureCache
    transcoder : nn.Module
        Source levels ``(batch, frames, bands)`` -> Mel ``(batch, frames, mels)``.
    classifier : nn.Module
        A teacher (returns an object with ``probs`` of shape ``(batch, classes)``);
        it receives the cache's student-side aux inputs.
    batch_size : int
        Chunks per forward pass.
    device : torch device
    progress : callable, optional
        Receives a :class:`~specxform.progress.ProgressEvent` per batch (task
        ``"<label>: teacher outputs"``: chunks done of all).
    label : str
        Names the method in the progress task.

    Returns
    -------
    features, counts
        As :func:`true_features`.
    """
    device = torch.device(device)
    transcoder = transcoder.to(device).eval()
    classifier = classifier.to(device).eval()
    n_chunks = len(cache)
    out: list[np.ndarray] = []
    task = f"{label}: teacher outputs"
    for start in range(0, n_chunks, batch_size):
        batch = cache.take(np.arange(start, min(start + batch_size, n_chunks)))
        levels = torch.from_numpy(np.ascontiguousarray(batch["source"])).to(device)
        aux = {k.removeprefix("aux_student."): torch.from_numpy(np.ascontiguousarray(v))
               .to(device) for k, v in batch.items() if k.startswith("aux_student.")}
        probs = classifier(transcoder(levels), aux or None).probs
        out.append(probs.double().cpu().numpy())
        report(progress, task, start + len(levels), n_chunks)
    return clip_means(np.concatenate(out), cache.file_index, len(cache.files))


# -------------------------------------------------------------------------------- labels


def task_of(clips: Sequence[Clip]) -> str:
    """``"multi"`` when any clip has multi-label ``labels`` (SONYC-UST), else ``"single"``."""
    return "multi" if any(c.labels for c in clips) else "single"


def label_matrix(clips: Sequence[Clip], classes: Sequence[str], task: str) -> np.ndarray:
    """Targets of ``clips``: one-hot (``task="single"``) or multi-hot, ``(clips, classes)``.

    A single-label clip without a label gets an all-zero row; callers leave
    those out (:func:`evaluate_probes` does).
    """
    index = {name: i for i, name in enumerate(classes)}
    y = np.zeros((len(clips), len(classes)), dtype=np.float32)
    for row, clip in enumerate(clips):
        present = clip.labels if task == "multi" else (() if clip.label is None else (clip.label,))
        for name in present:
            y[row, index[name]] = 1.0
    return y


# ------------------------------------------------------------------------------- metrics


def accuracy(y: np.ndarray, scores: np.ndarray) -> float:
    """Share of clips whose highest score is their class (``y`` one-hot, ``(clips, classes)``)."""
    return float(np.mean(np.argmax(scores, axis=1) == np.argmax(y, axis=1)))


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve of one class, as a step sum.

    ``AP = sum_k (R_k - R_{k-1}) P_k`` over the distinct scores taken as
    thresholds in decreasing order, where ``P_k`` and ``R_k`` are the precision
    and recall of calling positive every clip scoring at least the ``k``-th
    threshold (tied clips enter together). This is the usual definition (e.g.
    scikit-learn's ``average_precision_score``).

    Parameters
    ----------
    y : np.ndarray, shape (clips,)
        1 for a positive clip, 0 for a negative one.
    score : np.ndarray, shape (clips,)

    Returns
    -------
    float
        In [0, 1]; NaN when there is no positive clip.
    """
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    score = np.asarray(score, dtype=np.float64).reshape(-1)
    if y.shape != score.shape:
        raise InputError(f"labels {y.shape} and scores {score.shape} must have the same shape.")
    positives = y.sum()
    if positives == 0:
        return math.nan
    order = np.argsort(-score, kind="mergesort")
    s, t = score[order], y[order]
    ends = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last clip of each run of ties
    true_pos = np.cumsum(t)[ends]
    precision = true_pos / (ends + 1)
    recall = true_pos / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def macro_auprc(y: np.ndarray, scores: np.ndarray) -> float:
    """Mean :func:`average_precision` over the classes with at least one positive clip.

    ``y`` and ``scores`` are ``(clips, classes)``; NaN when no class has a positive.
    """
    values = [average_precision(y[:, c], scores[:, c]) for c in range(y.shape[1])
              if np.any(y[:, c] > 0)]
    return float(np.mean(values)) if values else math.nan


def micro_f1(y: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> float:
    """F1 of all (clip, class) decisions ``score >= threshold`` pooled; 1 when nothing to find."""
    decided, truth = scores >= threshold, y > 0
    tp = float(np.sum(decided & truth))
    wrong = float(np.sum(decided != truth))
    return 1.0 if tp + wrong == 0 else 2 * tp / (2 * tp + wrong)


# ---------------------------------------------------------------------------- evaluation


@attrs.frozen
class FoldScore:
    """One method on one fold: clip counts, the task's metric, and extra scores."""

    fold: str
    n_train: int
    n_valid: int
    n_test: int
    value: float
    extra: dict[str, float] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class MethodResult:
    """One method (``true``, ``pinv``, a checkpoint...) over every fold.

    ``estimate`` is the mean over folds with a bootstrap interval over folds,
    or, for a single split, the test score with a bootstrap interval over
    clips; ``std`` is the standard deviation over folds (0 for one fold).
    ``predictions`` maps each test clip of a single-label task to the class
    its fold's probe chose (empty for multi-label tasks): scores on any
    subset of the clips follow from it.
    """

    method: str
    metric: str
    estimate: Estimate
    std: float
    folds: tuple[FoldScore, ...]
    predictions: dict[str, str] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "metric": self.metric, **self.estimate.to_dict(),
                "std": self.std, "folds": [f.to_dict() for f in self.folds],
                "predictions": dict(self.predictions)}


@attrs.frozen
class DownstreamResult:
    """Every method's probe scores on one dataset, and how they were obtained."""

    dataset: str
    task: str
    metric: str
    classes: tuple[str, ...]
    scheme: str
    n_clips: int
    n_dropped: int
    folds: tuple[Fold, ...]
    methods: tuple[MethodResult, ...]
    config: ProbeConfig
    confidence: float
    info: dict[str, Any] = attrs.field(factory=dict)

    def __getitem__(self, method: str) -> MethodResult:
        for result in self.methods:
            if result.method == method:
                return result
        raise KeyError(method)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.info, "dataset": self.dataset, "task": self.task, "metric": self.metric,
            "classes": list(self.classes), "scheme": self.scheme, "n_clips": self.n_clips,
            "n_dropped": self.n_dropped, "confidence": self.confidence,
            "probe": self.config.to_dict(), "folds": [f.to_dict() for f in self.folds],
            "methods": [m.to_dict() for m in self.methods],
        }


def _indices(names: Sequence[str], index: Mapping[str, int]) -> np.ndarray:
    return np.array([index[n] for n in names if n in index], dtype=np.int64)


def _score(task: str, y: np.ndarray, scores: np.ndarray, threshold: float
           ) -> tuple[float, dict[str, float]]:
    if task == "single":
        return accuracy(y, scores), {}
    return macro_auprc(y, scores), {"micro_f1": micro_f1(y, scores, threshold)}


#: What one fold gives: its score, the test targets and scores, the test rows.
_Scored = tuple[FoldScore, np.ndarray, np.ndarray, np.ndarray]


def _fold_score(fold: Fold, number: int, x: np.ndarray, y: np.ndarray,
                index: Mapping[str, int], task: str, config: ProbeConfig) -> _Scored:
    train, valid, test = (_indices(p, index) for p in (fold.train, fold.valid, fold.test))
    if len(train) == 0 or len(test) == 0:
        raise InputError(
            f"{fold.name}: {len(train)} training and {len(test)} test clips with features; "
            "each fold needs both (check the dataset and that its clips are audible)."
        )
    probe = train_probe(x[train], y[train], config=config, fold=number,
                        valid=(x[valid], y[valid]) if len(valid) else None)
    scores = predict(probe, x[test])
    value, extra = _score(task, y[test], scores, config.threshold)
    return (FoldScore(fold.name, len(train), len(valid), len(test), value, extra), y[test],
            scores, test)


def _predictions(folds: Sequence[_Scored], names: Sequence[str], classes: Sequence[str],
                 task: str) -> dict[str, str]:
    """The class each fold's probe chose for its test clips (single-label tasks only)."""
    if task != "single":
        return {}
    return {names[row]: classes[int(choice)] for _, _, scores, rows in folds
            for row, choice in zip(rows, np.argmax(scores, axis=1), strict=True)}


def _method_result(method: str, task: str, folds: Sequence[_Scored], predictions: dict[str, str],
                   *, n_boot: int, confidence: float, seed: int) -> MethodResult:
    values = np.array([f[0].value for f in folds])
    if len(folds) == 1:
        _, y, scores, _ = folds[0]
        metric = accuracy if task == "single" else macro_auprc
        estimate = bootstrap_metric(metric, y, scores, n_boot=n_boot, confidence=confidence,
                                    seed=seed)
        std = 0.0
    else:
        estimate = bootstrap(values, n_boot=n_boot, confidence=confidence, seed=seed)
        std = float(values.std(ddof=1))
    return MethodResult(method, METRICS[task], estimate, std, tuple(f[0] for f in folds),
                        predictions)


def evaluate_probes(features: Mapping[str, np.ndarray], names: Sequence[str],
                    clips: Sequence[Clip], folds: Sequence[Fold], *, classes: Sequence[str],
                    config: ProbeConfig | None = None, n_boot: int = 1000,
                    confidence: float = 0.95, scheme: str = "", dataset: str = "",
                    progress: ProgressCallback | None = None,
                    info: Mapping[str, Any] | None = None
                    ) -> DownstreamResult:
    """Train and score a probe per method and fold; the same folds and seeds for every method.

    Parameters
    ----------
    features : mapping of method name to np.ndarray, shape (len(names), outputs)
        Clip features per method (NaN rows: clips without chunks).
    names : sequence of str
        The clip name of each feature row (e.g. :attr:`FeatureCache.files`).
    clips : sequence of Clip
        The dataset's clips (labels); every name must be among them.
    folds : sequence of Fold
    classes : sequence of str
        Class order of the targets.
    config : ProbeConfig
    n_boot, confidence : int, float
        Bootstrap draws and interval level.
    scheme, dataset : str
        Recorded in the result.
    progress : callable, optional
        Receives a :class:`~specxform.progress.ProgressEvent` per trained probe
        (task ``"probes"``: probes done of methods x folds).
    info : mapping, optional
        Extra fields for :meth:`DownstreamResult.to_dict` (teacher, pair...).

    Returns
    -------
    DownstreamResult
    """
    config = config or ProbeConfig()
    if not features:
        raise SpecError("no method to evaluate; give at least one, e.g. true,pinv.")
    by_name = {c.name: c for c in clips}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise InputError(f"{len(unknown)} feature row(s) name no clip of the dataset (first: "
                         f"{unknown[0]!r}); build the features from this dataset.")
    ordered = [by_name[n] for n in names]
    task = task_of(ordered)
    y = label_matrix(ordered, classes, task)
    usable = np.all([np.all(np.isfinite(f), axis=1) for f in features.values()], axis=0)
    if task == "single":
        usable &= y.any(axis=1)
    index = {n: i for i, n in enumerate(names) if usable[i]}
    results: list[MethodResult] = []
    total = len(features) * len(folds)
    for method, x in features.items():
        scored = []
        for number, fold in enumerate(folds):
            scored.append(_fold_score(fold, number, np.asarray(x), y, index, task, config))
            report(progress, "probes", len(results) * len(folds) + number + 1, total)
        results.append(_method_result(method, task, scored,
                                      _predictions(scored, names, classes, task),
                                      n_boot=n_boot, confidence=confidence, seed=config.seed))
    tested = {n for f in folds for n in f.test}
    return DownstreamResult(
        dataset=dataset, task=task, metric=METRICS[task], classes=tuple(classes), scheme=scheme,
        n_clips=len(tested & set(index)), n_dropped=len(tested - set(index)), folds=tuple(folds),
        methods=tuple(results), config=config, confidence=confidence, info=dict(info or {}),
    )
