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

Training (reference defaults, :class:`ProbeConfig`): BCE on one-hot (single
label) or multi-hot (multi-label) targets, Adam with learning rate 1e-3, 30
epochs, batches of 32 clips. With a validation part the state of the epoch
with the lowest validation BCE is kept; without one, the last.

Evaluation schemes (:func:`dataset_folds`, ``scheme="auto"`` picks the first
the dataset has):

- ``folds``: its official cross-validation folds, each testing once
  (UrbanSound8K's ten; ESC-50's five, or those present);
- ``split``: its official split (SONYC-UST): train on ``train``, test on
  ``test`` (``validate`` selects the epoch when asked);
- ``grouped``: grouped K-fold cross-validation, no group in two folds, groups
  spread so that each fold gets a similar number of clips of each class
  (:func:`assign_group_folds`); any dataset (``folder``, or UrbanSound8K fold
  1 alone, grouped by ``fsID``).

Scores: single-label tasks use the accuracy of the argmax; multi-label ones
the macro-averaged area under the precision-recall curve (average precision,
:func:`average_precision`, over the classes with a positive test clip) and
the micro F1 at the 0.5 threshold. Cross-validation reports the mean over
folds with a percentile bootstrap interval over folds and the standard
deviation; a single split a bootstrap interval over test clips.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import Tensor, nn

from specxform.datasets import AudioDataset, Clip, Split
from specxform.errors import InputError, SpecError
from specxform.evaluation.metrics import Estimate, bootstrap
from specxform.training.cache import FeatureCache

__all__ = [
    "SCHEMES",
    "DownstreamResult",
    "Fold",
    "FoldScore",
    "MethodResult",
    "Probe",
    "ProbeConfig",
    "accuracy",
    "assign_group_folds",
    "average_precision",
    "clip_means",
    "dataset_folds",
    "evaluate_probes",
    "grouped_folds",
    "label_matrix",
    "macro_auprc",
    "micro_f1",
    "predict",
    "resolve_scheme",
    "task_of",
    "train_probe",
    "transcoded_features",
    "true_features",
]

#: The metric of each task: argmax accuracy, or macro-averaged average precision.
METRICS = {"single": "accuracy", "multi": "macro_auprc"}


def _positive_int(instance: object, attribute: attrs.Attribute, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SpecError(f"{attribute.name} must be an int >= 1, got {value!r}.")


@attrs.frozen
class ProbeConfig:
    """How a probe is trained (the paper's downstream defaults).

    Parameters
    ----------
    epochs : int
        Passes over the training clips (30).
    batch_size : int
        Clips per Adam step (32).
    lr : float
        Adam learning rate (1e-3).
    hidden : int
        Width of the first linear layer (100).
    seed : int
        Seeds the probe's initialisation and the clip order.
    threshold : float
        Decision threshold of multi-label tasks, for the F1 score (0.5).
    standardise : bool
        Standardise each input feature with the training clips' mean and
        standard deviation (off in the reference protocol).
    """

    epochs: int = attrs.field(default=30, validator=_positive_int)
    batch_size: int = attrs.field(default=32, validator=_positive_int)
    lr: float = attrs.field(default=1e-3, converter=float)
    hidden: int = attrs.field(default=100, validator=_positive_int)
    seed: int = 0
    threshold: float = attrs.field(default=0.5, converter=float)
    standardise: bool = False

    def __attrs_post_init__(self) -> None:
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise SpecError(f"lr must be a positive number, got {self.lr!r}; e.g. 1e-3.")
        if not 0 < self.threshold < 1:
            raise SpecError(f"threshold must be between 0 and 1, got {self.threshold!r}.")

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


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


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=True,
                    disable=not enabled)


@torch.no_grad()
def transcoded_features(cache: FeatureCache, transcoder: nn.Module, classifier: nn.Module, *,
                        batch_size: int = 64, device: torch.device | str = "cpu",
                        progress: bool = False, label: str = "transcoded"
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
    progress : bool
        Show a progress bar on stderr.
    label : str
        Its description.

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
    with _progress(progress) as bar:
        task = bar.add_task(f"{label}: teacher outputs", total=n_chunks)
        for start in range(0, n_chunks, batch_size):
            batch = cache.take(np.arange(start, min(start + batch_size, n_chunks)))
            levels = torch.from_numpy(np.ascontiguousarray(batch["source"])).to(device)
            aux = {k.removeprefix("aux_student."): torch.from_numpy(np.ascontiguousarray(v))
                   .to(device) for k, v in batch.items() if k.startswith("aux_student.")}
            probs = classifier(transcoder(levels), aux or None).probs
            out.append(probs.double().cpu().numpy())
            bar.advance(task, len(levels))
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


# --------------------------------------------------------------------------------- folds


@attrs.frozen
class Fold:
    """One train / valid / test partition of the clips (names relative to the dataset root)."""

    name: str
    train: tuple[str, ...]
    valid: tuple[str, ...]
    test: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "train": len(self.train), "valid": len(self.valid),
                "test": len(self.test)}


def _names(clips: Sequence[Clip]) -> tuple[str, ...]:
    return tuple(c.name for c in clips)


def _from_split(name: str, split: Split, *, validate: bool, merge_valid: bool) -> Fold:
    train, valid = _names(split.train), _names(split.valid)
    if not validate:
        train, valid = (tuple(sorted(train + valid)) if merge_valid else train), ()
    return Fold(name, train, valid, _names(split.test))


def assign_group_folds(clips: Sequence[Clip], k: int, *, seed: int = 0) -> dict[str, int]:
    """Give every group of ``clips`` a fold ``0 .. k - 1``, balancing classes and sizes.

    Groups are shuffled with ``seed``, then taken largest first (stable); each
    goes to the fold holding the fewest clips of the group's most common label,
    then the fewest clips, then the lowest index. A group never spans folds.

    Raises
    ------
    InputError
        If there are fewer groups than folds.
    SpecError
        If ``k < 2``.
    """
    if not isinstance(k, int) or k < 2:
        raise SpecError(f"cross-validation needs at least 2 folds, got {k!r}; e.g. --folds 5.")
    members: dict[str, list[Clip]] = {}
    for clip in sorted(clips, key=lambda c: c.name):
        members.setdefault(clip.group, []).append(clip)
    if len(members) < k:
        raise InputError(
            f"{len(members)} group(s) cannot fill {k} folds (no group may span two folds); "
            f"use --folds {max(2, len(members))} or fewer, or add recordings."
        )
    shuffled = [str(g) for g in np.random.default_rng(seed).permutation(sorted(members))]
    order = sorted(shuffled, key=lambda g: -len(members[g]))
    sizes = np.zeros(k, dtype=np.int64)
    per_label: dict[str | None, np.ndarray] = {}
    folds: dict[str, int] = {}
    for group in order:
        labels = [c.label for c in members[group]]
        main = max(sorted(set(labels), key=str), key=labels.count)
        counts = per_label.setdefault(main, np.zeros(k, dtype=np.int64))
        fold = min(range(k), key=lambda f: (counts[f], sizes[f], f))
        folds[group] = fold
        counts[fold] += len(members[group])
        sizes[fold] += len(members[group])
    return folds


def grouped_folds(clips: Sequence[Clip], k: int = 5, *, seed: int = 0,
                  validate: bool = False) -> tuple[Fold, ...]:
    """Grouped K-fold cross-validation (see :func:`assign_group_folds`).

    Fold ``i`` tests; with ``validate`` the previous fold (cyclically)
    validates and the others train, otherwise all the others train.
    """
    assignment = assign_group_folds(clips, k, seed=seed)
    parts: list[list[str]] = [[] for _ in range(k)]
    for clip in sorted(clips, key=lambda c: c.name):
        parts[assignment[clip.group]].append(clip.name)
    folds = []
    for i in range(k):
        held = {i, (i - 1) % k} if validate else {i}
        train = tuple(sorted(n for f in range(k) if f not in held for n in parts[f]))
        valid = tuple(parts[(i - 1) % k]) if validate else ()
        folds.append(Fold(f"fold{i + 1}", train, valid, tuple(parts[i])))
    return tuple(folds)


#: Evaluation schemes of :func:`dataset_folds`.
SCHEMES = ("auto", "folds", "split", "grouped")
#: Folds of the grouped scheme when none are given.
DEFAULT_FOLDS = 5


def _official_folds(dataset: AudioDataset, validate: bool) -> tuple[tuple[Fold, ...], str]:
    if not dataset.folds:
        raise InputError(
            f"dataset {dataset.name!r} has no official cross-validation folds; use --scheme "
            "split for its official split, or --scheme grouped for grouped K-fold "
            "cross-validation."
        )
    try:
        splits = dataset.cross_validation()
    except InputError as exc:
        raise InputError(f"{exc} The official folds cannot be made on this copy of "
                         f"{dataset.name}; use --scheme grouped.") from exc
    return (tuple(_from_split(f"fold{k}", s, validate=validate, merge_valid=True)
                  for k, s in enumerate(splits, start=1)),
            f"{dataset.name} official {len(splits)}-fold cross-validation")


def _official_split(dataset: AudioDataset, validate: bool) -> tuple[tuple[Fold, ...], str]:
    if dataset.subsets is None:
        raise InputError(
            f"dataset {dataset.name!r} has no official split; use --scheme grouped for "
            "grouped K-fold cross-validation."
        )
    try:
        split = dataset.split()
    except InputError as exc:
        raise InputError(f"{exc} The official split cannot be made on this copy of "
                         f"{dataset.name}; use --scheme grouped.") from exc
    return ((_from_split("test", split, validate=validate, merge_valid=False),),
            f"official split ({split.scheme.removeprefix('subsets ')})")


def resolve_scheme(dataset: AudioDataset, scheme: str = "auto") -> str:
    """The scheme ``"auto"`` stands for on ``dataset`` (``folds``, ``split`` or ``grouped``)."""
    if scheme not in SCHEMES:
        raise SpecError(f"unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}.")
    if scheme != "auto":
        return scheme
    return "folds" if dataset.folds else "split" if dataset.subsets is not None else "grouped"


def dataset_folds(dataset: AudioDataset, *, scheme: str = "auto", folds: int | None = None,
                  seed: int = 0, validate: bool = False) -> tuple[tuple[Fold, ...], str]:
    """The evaluation folds of ``dataset`` and a description of the scheme.

    Parameters
    ----------
    dataset : AudioDataset
    scheme : {"auto", "folds", "split", "grouped"}
        ``"folds"``: the dataset's official cross-validation folds
        (:meth:`AudioDataset.cross_validation`; with ``validate`` each fold's
        validation subsets select the probe's epoch, without they train).
        ``"split"``: its official split, train / test (``validate`` adds its
        validation part, otherwise unused). ``"grouped"``:
        :func:`grouped_folds` with ``folds`` folds over the dataset's groups,
        whatever official partition it has (e.g. UrbanSound8K fold 1 alone,
        grouped by ``fsID``). ``"auto"``: the first of these the dataset has
        (:func:`resolve_scheme`).
    folds : int, optional
        Folds of the grouped scheme (default :data:`DEFAULT_FOLDS`); refused
        with an official scheme, which has its own.
    seed : int
        Seed of the grouped folds.
    validate : bool
        Hold out a validation part (see ``scheme``).

    Raises
    ------
    InputError
        If the dataset lacks the official folds or split asked for, or they
        cannot be made from the clips on disk.
    SpecError
        If ``folds`` is given with an official scheme, or the scheme is unknown.
    """
    chosen = resolve_scheme(dataset, scheme)
    if chosen != "grouped" and folds is not None:
        raise SpecError(
            f"--folds {folds} sets the folds of grouped cross-validation, but {dataset.name} is "
            f"evaluated by its official {'folds' if chosen == 'folds' else 'split'}; add "
            f"--scheme grouped to use {folds} grouped folds, or leave --folds out."
        )
    if chosen == "folds":
        return _official_folds(dataset, validate)
    if chosen == "split":
        return _official_split(dataset, validate)
    k = DEFAULT_FOLDS if folds is None else folds
    return (grouped_folds(dataset.clips, k, seed=seed, validate=validate),
            f"grouped {k}-fold cross-validation (seed {seed})")


# --------------------------------------------------------------------------------- probe


class Probe(nn.Module):
    """``Linear(n_inputs, hidden) -> Linear(hidden, n_classes)``, with fixed input scaling.

    Input: clip features ``(batch, n_inputs)``; output: logits ``(batch, n_classes)``.
    The buffers ``shift`` and ``scale`` standardise the input (0 and 1 unless set).
    """

    shift: Tensor
    scale: Tensor

    def __init__(self, n_inputs: int, n_classes: int, hidden: int = 100) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(n_inputs, hidden), nn.Linear(hidden, n_classes))
        self.register_buffer("shift", torch.zeros(n_inputs))
        self.register_buffer("scale", torch.ones(n_inputs))

    def forward(self, x: Tensor) -> Tensor:
        return self.layers((x - self.shift) / self.scale)


def _tensor(x: np.ndarray) -> Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float32))


def _check_xy(x: np.ndarray, y: np.ndarray, what: str) -> None:
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y) or len(x) == 0:
        raise InputError(
            f"{what}: need features (clips, outputs) and targets (clips, classes) for the same "
            f"clips, at least one; got shapes {x.shape} and {y.shape}."
        )
    if not np.all(np.isfinite(x)):
        raise InputError(f"{what}: features hold NaN or inf; leave out clips without chunks.")


def train_probe(x: np.ndarray, y: np.ndarray, *, config: ProbeConfig | None = None,
                valid: tuple[np.ndarray, np.ndarray] | None = None, fold: int = 0) -> Probe:
    """Train a :class:`Probe` with BCE and Adam.

    Parameters
    ----------
    x : np.ndarray, shape (clips, outputs)
        Clip features (teacher probabilities).
    y : np.ndarray, shape (clips, classes)
        One-hot or multi-hot targets.
    config : ProbeConfig
    valid : (x, y), optional
        Validation clips: the epoch with the lowest validation BCE is kept.
    fold : int
        Mixed into the seed of the clip order, so folds differ.

    Returns
    -------
    Probe
        In eval mode, on the CPU.
    """
    config = config or ProbeConfig()
    _check_xy(x, y, "probe training")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        probe = Probe(x.shape[1], y.shape[1], config.hidden)
    xt, yt = _tensor(x), _tensor(y)
    if config.standardise:
        probe.shift.copy_(xt.mean(0))
        probe.scale.copy_(xt.std(0, unbiased=False).clamp_min(1e-6))
    optimiser = torch.optim.Adam(probe.parameters(), lr=config.lr)
    loss_fn = nn.BCEWithLogitsLoss()
    best, best_state = math.inf, None
    for epoch in range(config.epochs):
        probe.train()
        order = np.random.default_rng([config.seed, fold, epoch]).permutation(len(x))
        for start in range(0, len(order), config.batch_size):
            rows = torch.from_numpy(order[start : start + config.batch_size])
            loss = loss_fn(probe(xt[rows]), yt[rows])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        if valid is not None:
            probe.eval()
            with torch.no_grad():
                current = float(loss_fn(probe(_tensor(valid[0])), _tensor(valid[1])))
            if current < best:
                best = current
                best_state = {k: v.clone() for k, v in probe.state_dict().items()}
    if best_state is not None:
        probe.load_state_dict(best_state)
    return probe.eval()


@torch.no_grad()
def predict(probe: nn.Module, x: np.ndarray) -> np.ndarray:
    """Sigmoid outputs of ``probe`` on features ``x``: ``(clips, classes)`` in [0, 1]."""
    return torch.sigmoid(probe(_tensor(x))).double().numpy()


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


def _bootstrap_clips(metric: Callable[[np.ndarray, np.ndarray], float], y: np.ndarray,
                     scores: np.ndarray, *, n_boot: int, confidence: float, seed: int
                     ) -> Estimate:
    """``metric`` on the test clips with a percentile bootstrap interval over clips."""
    value = metric(y, scores)
    draws = np.random.default_rng(seed).integers(0, len(y), (n_boot, len(y)))
    samples = np.array([metric(y[d], scores[d]) for d in draws])
    samples = samples[np.isfinite(samples)]
    if len(samples) == 0:
        return Estimate(value, value, value)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Estimate(value, float(low), float(high))


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
        estimate = _bootstrap_clips(metric, y, scores, n_boot=n_boot, confidence=confidence,
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
                    progress: bool = False, info: Mapping[str, Any] | None = None
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
    progress : bool
        Show a progress bar (methods x folds) on stderr.
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
    results = []
    with _progress(progress) as bar:
        job = bar.add_task("probes", total=len(features) * len(folds))
        for method, x in features.items():
            scored = []
            for number, fold in enumerate(folds):
                scored.append(_fold_score(fold, number, np.asarray(x), y, index, task, config))
                bar.advance(job)
            results.append(_method_result(method, task, scored,
                                          _predictions(scored, names, classes, task),
                                          n_boot=n_boot, confidence=confidence,
                                          seed=config.seed))
    tested = {n for f in folds for n in f.test}
    return DownstreamResult(
        dataset=dataset, task=task, metric=METRICS[task], classes=tuple(classes), scheme=scheme,
        n_clips=len(tested & set(index)), n_dropped=len(tested - set(index)), folds=tuple(folds),
        methods=tuple(results), config=config, confidence=confidence, info=dict(info or {}),
    )
