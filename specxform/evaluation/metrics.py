"""Agreement metrics between a teacher's outputs on transcoded and on true Mels.

Definitions (SPEC.md, section 6), for chunks grouped into evaluation files:

``ptopa_fc``
    Per file, average the chunk probability vectors on each side; the share of
    files whose top-1 class on the transcoded Mels equals the top-1 on the true
    Mels.
``top{k}``
    The share of files whose true top-1 class is among the transcoded top-k
    (``top1`` equals ``ptopa_fc``).
``kl``
    A proper Kullback-Leibler divergence ``KL(p || q)`` in nats between the two
    sigmoid vectors of a chunk, each normalised to sum to one; mean over chunks.
``kl_reference``
    What the companion code computed: ``torch.nn.KLDivLoss(reduction="batchmean",
    log_target=True)(q, p)`` applied to the 1-D sigmoid vectors themselves, that
    is ``sum(exp(p) * (p - q)) / n_classes``. Not a divergence (it treats
    probabilities as log-probabilities); reported to compare with the paper.
``bce``
    Binary cross-entropy of ``q`` against ``p``, mean over classes and chunks.
``mel_mse``
    Mean squared error between transcoded and true log-Mels (Mel unit squared).
``chunk_top1``
    The share of chunks whose top-1 classes agree.

Confidence intervals are percentile bootstrap intervals over files: files are
drawn with replacement and every metric is recomputed from the drawn files'
sums, so chunk metrics weight each file by its chunks, as the point estimate
does. Given each file's group (its source recording), whole groups are drawn
instead (a cluster bootstrap): files cut from one recording are not
independent, and drawing them one by one makes the intervals too narrow.

:class:`AgreementAccumulator` takes batches of chunks and keeps only per-file
sums, so evaluating a large dataset needs memory for ``files x classes``
numbers, not for the Mels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np

from specxform.errors import InputError

__all__ = [
    "AgreementAccumulator",
    "Estimate",
    "Metrics",
    "bootstrap",
    "bootstrap_metric",
    "kl_normalised",
    "kl_reference",
    "percentile_interval",
    "resample",
    "resample_groups",
]

#: Probability floor inside logarithms.
_FLOOR = 1e-12
#: Chunk metrics summed per file (each needs the matching input).
_CHUNK_METRICS = ("kl", "kl_reference", "bce", "chunk_top1", "mel_mse")


def _as_probs(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2:
        raise InputError(f"{name} must be (chunks, classes), got shape {array.shape}.")
    if not np.all(np.isfinite(array)) or array.min(initial=0) < 0 or array.max(initial=0) > 1:
        raise InputError(f"{name} must hold probabilities in [0, 1] (NaN or out of range found).")
    return array


def kl_normalised(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per-row ``KL(p || q)`` in nats of (rows, classes) vectors normalised to sum to 1."""
    p = p / np.maximum(p.sum(-1, keepdims=True), _FLOOR)
    q = q / np.maximum(q.sum(-1, keepdims=True), _FLOOR)
    return np.sum(p * (np.log(np.maximum(p, _FLOOR)) - np.log(np.maximum(q, _FLOOR))), axis=-1)


def kl_reference(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per-row value of the companion code's KL (see module doc): ``sum(e^p (p - q)) / C``."""
    return np.sum(np.exp(p) * (p - q), axis=-1) / p.shape[-1]


def _bce(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    q = np.clip(q, _FLOOR, 1 - _FLOOR)
    return -np.mean(p * np.log(q) + (1 - p) * np.log1p(-q), axis=-1)


@attrs.frozen
class Estimate:
    """A metric's value and its bootstrap interval (``low``, ``high``)."""

    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return attrs.asdict(self)


@attrs.frozen
class Metrics:
    """Every metric of one method, with intervals, plus per-class agreement.

    ``per_class`` maps a class index (the true top-1 of at least one file) to
    ``(files, agreeing files)``; ``agree`` maps each scored file index to
    whether its top-1 classes agree, ``true_top`` and ``top`` to its top-1
    class on the true and on the transcoded Mels.
    """

    estimates: dict[str, Estimate]
    per_class: dict[int, tuple[int, int]]
    n_files: int
    n_chunks: int
    confidence: float
    #: Groups the intervals resampled (0: files were resampled one by one).
    n_groups: int = 0
    agree: dict[int, bool] = attrs.field(factory=dict)
    true_top: dict[int, int] = attrs.field(factory=dict)
    top: dict[int, int] = attrs.field(factory=dict)

    def __getitem__(self, name: str) -> Estimate:
        return self.estimates[name]

    def values(self) -> dict[str, float]:
        return {k: e.value for k, e in self.estimates.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": {k: e.to_dict() for k, e in self.estimates.items()},
            "per_class": {str(c): {"files": n, "agree": a} for c, (n, a) in self.per_class.items()},
            "n_files": self.n_files, "n_chunks": self.n_chunks, "confidence": self.confidence,
            "n_groups": self.n_groups,
        }


class AgreementAccumulator:
    """Collect chunk outputs batch by batch, then compute :class:`Metrics`.

    Parameters
    ----------
    n_files, n_classes : int
        Files are indexed ``0 .. n_files - 1``; files that receive no chunk are
        left out of every metric.
    top_k : sequence of int
        The ``k`` of the ``top{k}`` metrics.
    """

    def __init__(self, n_files: int, n_classes: int, *, top_k: Sequence[int] = (1, 3, 5)) -> None:
        if n_files < 1 or n_classes < 1:
            raise InputError(f"need at least one file and class, got {n_files} and {n_classes}.")
        self.n_files, self.n_classes = n_files, n_classes
        self.top_k = tuple(sorted({int(k) for k in top_k if 1 <= k <= n_classes}))
        self.true_sum = np.zeros((n_files, n_classes))
        self.probs_sum = np.zeros((n_files, n_classes))
        self.chunks = np.zeros(n_files)
        self.sums = {name: np.zeros(n_files) for name in _CHUNK_METRICS}
        self.mel_chunks = np.zeros(n_files)

    def update(self, file_index: Any, true_probs: Any, probs: Any, *,
               true_mel: Any = None, mel: Any = None) -> None:
        """Add a batch of chunks.

        Parameters
        ----------
        file_index : array (chunks,) of int
        true_probs, probs : array (chunks, classes)
            Teacher probabilities on the true and on the transcoded Mels.
        true_mel, mel : array (chunks, frames, mels), optional
            Both or neither; give them for ``mel_mse``.
        """
        files = np.asarray(file_index, dtype=np.int64).reshape(-1)
        p, q = _as_probs("true_probs", true_probs), _as_probs("probs", probs)
        if p.shape != q.shape or p.shape != (len(files), self.n_classes):
            raise InputError(
                f"shapes differ: file_index {files.shape}, true_probs {p.shape}, probs {q.shape}; "
                f"expected (chunks, {self.n_classes}) for both."
            )
        if len(files) and (files.min() < 0 or files.max() >= self.n_files):
            raise InputError(f"file_index out of range 0..{self.n_files - 1}: {files.max()}.")
        np.add.at(self.true_sum, files, p)
        np.add.at(self.probs_sum, files, q)
        np.add.at(self.chunks, files, 1)
        per_chunk = {"kl": kl_normalised(p, q), "kl_reference": kl_reference(p, q),
                     "bce": _bce(p, q), "chunk_top1": (p.argmax(-1) == q.argmax(-1)) * 1.0}
        if (true_mel is None) != (mel is None):
            raise InputError("give both true_mel and mel, or neither.")
        if mel is not None:
            a, b = np.asarray(true_mel, np.float64), np.asarray(mel, np.float64)
            if a.shape != b.shape or len(a) != len(files):
                raise InputError(f"Mel shapes differ: {a.shape} vs {b.shape}.")
            per_chunk["mel_mse"] = np.mean((a - b) ** 2, axis=tuple(range(1, a.ndim)))
            np.add.at(self.mel_chunks, files, 1)
        for name, values in per_chunk.items():
            np.add.at(self.sums[name], files, values)

    def result(self, *, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0,
               groups: Sequence[Any] | None = None) -> Metrics:
        """The metrics over the files seen so far, with bootstrap intervals.

        ``groups`` (one label per file index, e.g. the source recording) makes
        the intervals resample whole groups; without it files are resampled.
        """
        seen = np.flatnonzero(self.chunks)
        if len(seen) == 0:
            raise InputError("no chunk was added; nothing to score.")
        state = _FileState(self, seen)
        point = state.metrics(np.arange(len(seen)))
        if groups is None:
            draws, n_groups = list(resample(len(seen), n_boot, seed)), 0
        else:
            labels = np.asarray(groups, dtype=object)
            if labels.shape != (self.n_files,):
                raise InputError(f"groups must hold one label per file ({self.n_files}), got "
                                 f"shape {labels.shape}.")
            draws = resample_groups(labels[seen], n_boot, seed)
            n_groups = len(set(labels[seen].tolist()))
        resamples = [state.metrics(d) for d in draws]
        estimates = {name: percentile_interval(value, [r[name] for r in resamples], confidence)
                     for name, value in point.items()}
        true_top = state.true_top
        per_class = {int(c): (int((true_top == c).sum()), int(state.agree[true_top == c].sum()))
                     for c in np.unique(true_top)}
        agree = {int(f): bool(a) for f, a in zip(seen, state.agree, strict=True)}
        true = {int(f): int(c) for f, c in zip(seen, true_top, strict=True)}
        top = {int(f): int(c) for f, c in zip(seen, state.top, strict=True)}
        return Metrics(estimates, per_class, len(seen), int(self.chunks.sum()), confidence,
                       n_groups, agree, true, top)


class _FileState:
    """Per-file quantities of the seen files, from which any resample is scored quickly."""

    def __init__(self, acc: AgreementAccumulator, seen: np.ndarray) -> None:
        self.chunks = acc.chunks[seen]
        self.mel_chunks = acc.mel_chunks[seen]
        self.sums = {k: v[seen] for k, v in acc.sums.items()}
        self.true_top = acc.true_sum[seen].argmax(-1)
        order = np.argsort(-acc.probs_sum[seen], axis=-1, kind="stable")
        # rank of the true top-1 class among the transcoded classes (0 = top-1)
        self.rank = np.argmax(order == self.true_top[:, None], axis=-1)
        self.agree = self.rank == 0
        self.top = order[:, 0]
        self.top_k = acc.top_k

    def metrics(self, draw: np.ndarray) -> dict[str, float]:
        out = {"ptopa_fc": float(self.agree[draw].mean())}
        out |= {f"top{k}": float((self.rank[draw] < k).mean()) for k in self.top_k if k > 1}
        n = self.chunks[draw].sum()
        for name in ("kl", "kl_reference", "bce", "chunk_top1"):
            out[name] = float(self.sums[name][draw].sum() / n)
        n_mel = self.mel_chunks[draw].sum()
        if self.mel_chunks.any():
            out["mel_mse"] = float(self.sums["mel_mse"][draw].sum() / n_mel) if n_mel else np.nan
        return out


def resample(n_items: int, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap draws: ``(n_boot, n_items)`` indices into ``n_items`` items, with replacement."""
    return np.random.default_rng(seed).integers(0, n_items, (n_boot, n_items))


def resample_groups(groups: Sequence[Any] | np.ndarray, n_boot: int, seed: int) -> list[np.ndarray]:
    """Cluster-bootstrap draws over items labelled by ``groups``.

    Each draw picks as many groups as there are, with replacement, and holds
    the indices of every item of the picked groups (so draws differ in length).
    """
    _, inverse = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    members = [np.flatnonzero(inverse == g) for g in range(inverse.max() + 1)]
    picks = np.random.default_rng(seed).integers(0, len(members), (n_boot, len(members)))
    return [np.concatenate([members[g] for g in pick]) for pick in picks]


def percentile_interval(value: float, samples: Any, confidence: float) -> Estimate:
    """``value`` with the percentile interval of its bootstrap ``samples`` at ``confidence``.

    With no sample (``n_boot=0``) the interval is the value itself.
    """
    samples = np.asarray(samples, dtype=np.float64).reshape(-1)
    if len(samples) == 0:
        return Estimate(float(value), float(value), float(value))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Estimate(float(value), float(low), float(high))


def bootstrap(per_file: Any, *, n_boot: int = 1000, confidence: float = 0.95,
              seed: int = 0, groups: Sequence[Any] | None = None) -> Estimate:
    """Mean of per-file values with a percentile bootstrap interval over files.

    With ``groups`` (a label per value) the interval resamples whole groups.
    """
    values = np.asarray(per_file, dtype=np.float64).reshape(-1)
    if len(values) == 0:
        raise InputError("no value to bootstrap.")
    if groups is None:
        means = values[resample(len(values), n_boot, seed)].mean(axis=1)
    else:
        if len(groups) != len(values):
            raise InputError(f"groups must hold one label per value ({len(values)}), got "
                             f"{len(groups)}.")
        means = np.array([values[d].mean() for d in resample_groups(groups, n_boot, seed)])
    return percentile_interval(values.mean(), means, confidence)


def bootstrap_metric(metric: Callable[[np.ndarray, np.ndarray], float], y: np.ndarray,
                     scores: np.ndarray, *, n_boot: int = 1000, confidence: float = 0.95,
                     seed: int = 0) -> Estimate:
    """``metric(y, scores)`` with a percentile bootstrap interval over rows (e.g. test clips).

    Parameters
    ----------
    metric : callable
        ``metric(y, scores) -> float`` on row-aligned arrays.
    y, scores : np.ndarray, shape (rows, ...)
        Targets and scores, resampled together.

    Draws on which the metric is undefined (NaN, e.g. no positive clip for an
    average precision) are left out of the interval.
    """
    value = metric(y, scores)
    samples = np.array([metric(y[d], scores[d]) for d in resample(len(y), n_boot, seed)])
    return percentile_interval(value, samples[np.isfinite(samples)], confidence)
