"""Teacher-student training of a transcoder (PINV + student) from a feature cache.

The model maps cached source levels to the target Mel: the fixed
:class:`~specxform.transcoders.pinv.PinvTranscoder` runs inside it, then the student
(:class:`~specxform.transcoders.students.Transcoder`). Each step computes the loss of
:mod:`specxform.training.losses` against the cached true Mels and the frozen teacher's
cached probabilities; only the student learns (Adam).

Under ``torchrun`` (see :mod:`specxform.training.distributed`) the model is wrapped in
``DistributedDataParallel`` and each global batch of ``batch_size`` chunks is
split across the ranks (disjoint, contiguous shards). Each rank's loss is
weighted by its share of the batch, so the averaged gradients are those of the
whole batch and the run follows the single-process one (up to float summation
order). Every rank validates on all validation chunks; only rank 0 writes
checkpoints and the log, and reports progress.

Each epoch ends with a validation pass and two atomic checkpoint writes
(temporary file, then ``os.replace``): ``best.pt`` when the validation loss
improves and ``last.pt`` always, plus ``log.csv`` (one row per epoch; row 0 is
the PINV baseline). ``resume=True`` restarts from ``last.pt``: model,
optimizer, RNG states, epoch, best loss and history. The order of the chunks in
epoch ``e`` depends only on ``(seed, e)``, so on CPU a run killed at any point
and resumed ends with the same weights as an uninterrupted run.

Checkpoints describe themselves (the format, reading and loading live in
:mod:`specxform.training.checkpoint`); the log in
:mod:`specxform.training.run_log`. With no ``student`` named, the pair's
declared student trains (:func:`default_student`).

Retrained-classifier baseline (the paper's "retrained PANN on PINV input"):
with ``retrain_teacher=True`` nothing is added after the PINV; instead a copy of
the teacher, initialised with its weights, is fine-tuned to take the PINV Mel
directly, with the same teacher-student loss against the frozen original's
cached outputs on the true Mels. Its checkpoint holds the fine-tuned teacher
(``description["kind"] == "retrained"``).

Mixed precision (``TrainConfig.precision``): on CUDA, ``"auto"`` runs the
student and the teacher under ``torch.autocast`` in bfloat16 where the GPU
supports it, else float16 with a gradient scaler; the PINV always runs in
float32. On CPU ``"auto"`` means float32; ``"bf16"`` may be asked for.

Logs: ``log.csv`` and TensorBoard event files in ``<out>/tensorboard`` (every
column of the CSV as a scalar, by epoch; epoch 0 is the PINV baseline).

Progress: ``train(progress=callback)`` reports each step (:mod:`specxform.progress`);
the library draws nothing.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from specxform.datasets import Split
from specxform.errors import CheckpointError, InputError, PluginError, SpecError, SpecxformError
from specxform.plugins import get_registry
from specxform.progress import ProgressCallback, report
from specxform.registry import Registry
from specxform.representations.specs import Representation
from specxform.training import distributed
from specxform.training.cache import FeatureCache, teacher_digest
from specxform.training.checkpoint import (
    CHECKPOINT_FORMAT,
    build_student,
    check_compatible,
    read_checkpoint,
    save_checkpoint,
    versions,
)
from specxform.training.losses import LossConfig, kl_divergence, transcoder_loss
from specxform.training.run_log import log_scalars, open_board, write_csv
from specxform.transcoders.pinv import PinvTranscoder
from specxform.transcoders.students import Transcoder

__all__ = [
    "LR_SCHEDULES",
    "PRECISIONS",
    "TrainConfig",
    "TrainResult",
    "default_student",
    "epoch_order",
    "evaluate",
    "learning_rate",
    "select_device",
    "train",
]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def _positive_int(instance: object, attribute: attrs.Attribute, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise SpecError(f"{attribute.name} must be an int >= 1, got {value!r}.")


def _precision(instance: object, attribute: attrs.Attribute, value: str) -> None:
    if value not in PRECISIONS:
        raise SpecError(f"unknown precision {value!r}; choose one of {', '.join(PRECISIONS)}.")


def _patience(instance: object, attribute: attrs.Attribute, value: int | None) -> None:
    if value is not None:
        _positive_int(instance, attribute, value)


LR_SCHEDULES = ("constant", "cosine")


def _lr_schedule(instance: object, attribute: attrs.Attribute, value: str) -> None:
    if value not in LR_SCHEDULES:
        raise SpecError(f"unknown `lr_schedule={value!r}`; choose one of "
                        f"{', '.join(LR_SCHEDULES)}.")


def _balance(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not 0 <= value <= 1:
        raise SpecError(f"`balance={value!r}` must lie in [0, 1] (0: plain shuffling, 1: every "
                        "top-1 class drawn equally often).")


@attrs.frozen
class TrainConfig:
    """Optimisation settings (the paper's defaults).

    Parameters
    ----------
    epochs : int
        Number of passes over the training chunks (200).
    batch_size : int
        Chunks per step (64).
    lr : float
        Adam learning rate (1e-3).
    seed : int
        Seeds the student's initialisation and the chunk order.
    patience : int or None
        Stop after this many epochs without a better validation loss.
    device : str
        ``"auto"`` (CUDA when available, else CPU) or a torch device string.
    pinv_method, interpolation : str
        Options of the :class:`~specxform.transcoders.pinv.PinvTranscoder` inside the model.
    precision : {"auto", "fp32", "bf16", "fp16"}
        Mixed precision of the student and teacher (see the module doc);
        ``"fp16"`` needs CUDA.
    balance : float
        0 (default): each epoch is a permutation of the training chunks. Above
        0, each epoch draws as many chunks with replacement, a chunk with
        probability proportional to ``n ** -balance``, ``n`` the number of
        training chunks sharing its top-1 class on the true Mel (the teacher's
        label, so no dataset label is needed); 1 gives every class the same
        share. For archives dominated by a few sounds (traffic, speech).
    lr_schedule : {"constant", "cosine"}
        ``"constant"`` (default) keeps ``lr``; ``"cosine"`` decays it over the
        steps of ``epochs`` epochs, from ``lr`` to 0 on half a cosine
        (:func:`learning_rate`). It is a function of the step alone, so a
        resumed run continues the same curve; extending ``epochs`` on resume
        stretches the rest of it.
    """

    epochs: int = attrs.field(default=200, validator=_positive_int)
    batch_size: int = attrs.field(default=64, validator=_positive_int)
    lr: float = attrs.field(default=1e-3, converter=float)
    seed: int = 0
    patience: int | None = attrs.field(default=None, validator=_patience)
    device: str = "auto"
    pinv_method: str = "pinv"
    interpolation: str = "log"
    precision: str = attrs.field(default="auto", validator=_precision)
    balance: float = attrs.field(default=0.0, converter=float, validator=_balance)
    lr_schedule: str = attrs.field(default="constant", validator=_lr_schedule)

    def __attrs_post_init__(self) -> None:
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise SpecError(f"lr must be a positive number, got {self.lr!r}; e.g. 1e-3.")

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        return cls(**data)


@attrs.frozen
class TrainResult:
    """Where the checkpoints are and how training went (``history`` rows as in log.csv)."""

    out_dir: Path
    best_epoch: int
    best_loss: float
    history: tuple[dict[str, float], ...]
    pinv_metrics: dict[str, float]
    stopped_early: bool

    @property
    def best_checkpoint(self) -> Path:
        return self.out_dir / "best.pt"

    @property
    def last_checkpoint(self) -> Path:
        return self.out_dir / "last.pt"


def select_device(name: str = "auto") -> torch.device:
    """The torch device for ``name``: ``"auto"`` is CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise SpecError(f"unknown device {name!r} ({exc}); use 'auto', 'cpu' or 'cuda'.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SpecError(f"device {name!r} asked for but CUDA is not available; use device='cpu'.")
    return device


def autocast_dtype(precision: str, device: torch.device, *,
                   bf16_supported: bool | None = None) -> torch.dtype | None:
    """The ``torch.autocast`` dtype for ``precision`` on ``device``; ``None`` means float32.

    ``bf16_supported`` defaults to what the CUDA device reports.
    """
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "auto":
        if bf16_supported is None:
            bf16_supported = torch.cuda.is_bf16_supported()
        return torch.bfloat16 if bf16_supported else torch.float16
    if precision == "fp16" and device.type != "cuda":
        raise SpecError(f"precision 'fp16' needs CUDA, the device is {device}; use bf16 or fp32.")
    return torch.bfloat16 if precision == "bf16" else torch.float16


def _to_device(batch: Mapping[str, np.ndarray], device: torch.device) -> dict[str, Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in batch.items()}


def _aux(batch: Mapping[str, Tensor], side: str) -> dict[str, Tensor] | None:
    prefix = f"{side}."
    aux = {k[len(prefix):]: v for k, v in batch.items() if k.startswith(prefix)}
    return aux or None


@torch.no_grad()
def evaluate(model: nn.Module, cache: FeatureCache, rows: np.ndarray, teacher: nn.Module, *,
             loss: LossConfig, batch_size: int = 64, device: torch.device | str = "cpu"
             ) -> dict[str, float]:
    """Loss and agreement metrics of ``model`` (source levels -> Mel) on cached chunks ``rows``.

    Returns
    -------
    dict
        ``loss`` (the training loss), ``mel_mse`` (Mel unit squared), ``kl``
        (:func:`~specxform.training.losses.kl_divergence`, nats), ``top1`` (share of
        chunks whose top class matches the one on the true Mel) and
        ``ptopa_fc`` (the same on probabilities averaged over each clip).
    """
    if len(rows) == 0:
        raise InputError("no chunks to evaluate; the validation split holds no cached chunk.")
    device = torch.device(device)
    n_files, n_classes = len(cache.files), cache.probs.shape[1]
    sums = {"loss": 0.0, "mel_mse": 0.0, "kl": 0.0, "top1": 0.0}
    clip_probs = np.zeros((2, n_files, n_classes))
    for start in range(0, len(rows), batch_size):
        batch = _to_device(cache.take(rows[start : start + batch_size]), device)
        mel = model(batch["source"])
        logits = teacher(mel, _aux(batch, "aux_student")).logits
        probs, true = torch.sigmoid(logits), batch["probs"]
        terms = transcoder_loss(loss, student_mel=mel, true_mel=batch["target"],
                                student_logits=logits, teacher_probs=true)
        n = len(mel)
        sums["loss"] += n * float(terms.total)
        sums["mel_mse"] += n * float(torch.mean((mel - batch["target"]) ** 2))
        sums["kl"] += n * float(kl_divergence(true, probs))
        sums["top1"] += float((probs.argmax(-1) == true.argmax(-1)).sum())
        files = batch["file_index"].cpu().numpy()
        np.add.at(clip_probs[0], files, probs.double().cpu().numpy())
        np.add.at(clip_probs[1], files, true.double().cpu().numpy())
    metrics = {k: v / len(rows) for k, v in sums.items()}
    seen = clip_probs[1].any(axis=1)
    agree = clip_probs[0].argmax(-1) == clip_probs[1].argmax(-1)
    metrics["ptopa_fc"] = float(agree[seen].mean())
    return metrics


def _frozen(teacher: nn.Module, device: torch.device) -> nn.Module:
    teacher = teacher.to(device).eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher



class _Run:
    """The state of one training run, saved to and restored from ``last.pt``."""

    def __init__(self, model: nn.Module, classifier: nn.Module, trainable: nn.Module,
                 optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                 description: dict[str, Any]) -> None:
        #: levels -> Mel; the teacher on the transcoded Mel; the part that learns.
        self.model, self.classifier, self.trainable = model, classifier, trainable
        self.optimizer, self.scaler, self.description = optimizer, scaler, description
        #: What the training steps call: the above, or DDP wrappers with several ranks.
        self.step_model: nn.Module = model
        self.step_classifier: nn.Module = classifier
        self.epoch, self.best_epoch, self.best_loss = 0, 0, math.inf
        self.history: list[dict[str, float]] = []
        self.pinv_metrics: dict[str, float] = {}
        self.stopped_early = False

    def state(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()  # type: ignore[assignment]
        return {
            "format": CHECKPOINT_FORMAT, "description": self.description,
            "state_dict": self.trainable.state_dict(), "epoch": self.epoch,
            "metrics": self.history[-1] if self.history else {},
            "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
            "rng": rng,
            "best": {"epoch": self.best_epoch, "loss": self.best_loss},
            "history": self.history, "pinv_metrics": self.pinv_metrics,
            "stopped_early": self.stopped_early,
        }

    def restore(self, path: Path, device: torch.device) -> None:
        data = read_checkpoint(path)
        check_compatible(path, data["description"], self.description)
        self.trainable.load_state_dict(data["state_dict"])
        self.optimizer.load_state_dict(data["optimizer"])
        if data.get("scaler"):
            self.scaler.load_state_dict(data["scaler"])
        torch.set_rng_state(data["rng"]["torch"])
        if "cuda" in data["rng"] and device.type == "cuda":
            torch.cuda.set_rng_state_all(data["rng"]["cuda"])
        self.epoch, self.history = data["epoch"], list(data["history"])
        self.best_epoch, self.best_loss = data["best"]["epoch"], data["best"]["loss"]
        self.pinv_metrics, self.stopped_early = data["pinv_metrics"], data["stopped_early"]

    def result(self, out_dir: Path) -> TrainResult:
        return TrainResult(out_dir, self.best_epoch, self.best_loss, tuple(self.history),
                           self.pinv_metrics, self.stopped_early)


def default_student(registry: Registry, source: str, target: str) -> str:
    """The student trained for ``source -> target`` when none is named.

    The pair's student (:meth:`Registry.pair`: declared, else the registry's
    default); for a pair the registry does not know, the registry's default
    student (:meth:`Registry.default_student`).

    Raises
    ------
    PluginError
        If no student is registered at all.
    """
    try:
        chosen = registry.pair(source, target).student
    except SpecxformError:
        chosen = None
    chosen = chosen or registry.default_student()
    if chosen is None:
        raise PluginError("no student is registered; install a plugin that adds one (the "
                          "built-in plugins add them) or pass `retrain_teacher=True`.")
    return chosen


def train(cache: FeatureCache, split: Split, teacher: nn.Module, *, out_dir: str | Path,
          teacher_name: str, student: str | None = None,
          student_config: Mapping[str, Any] | None = None, loss: LossConfig | None = None,
          config: TrainConfig | None = None, resume: bool = False,
          registry: Registry | None = None, progress: ProgressCallback | None = None,
          on_batch: Callable[[int, int], None] | None = None, retrain_teacher: bool = False,
          tensorboard: bool = True) -> TrainResult:
    """Train a student on ``cache`` for the split's train clips, validating on its valid clips.

    Launched by ``torchrun`` with several processes, it trains data-parallel
    (see the module docstring); the arguments are the same on every rank.

    Parameters
    ----------
    cache : FeatureCache
        Built by :func:`~specxform.training.cache.build_cache` with this ``teacher``.
    split : Split
        Which clips train and which validate.
    teacher : nn.Module
        The teacher (its weights must be the cached ones); it is put in eval
        mode with ``requires_grad`` off, on the training device.
    out_dir : path
        Run folder: ``best.pt``, ``last.pt``, ``log.csv``.
    teacher_name, student, student_config
        Registry names and the student's options; ``student`` defaults to the
        pair's (:func:`default_student`).
    loss, config : LossConfig, TrainConfig
        Defaults: the ``logits`` loss and the paper's optimisation settings.
    resume : bool
        Continue the run in ``out_dir`` from ``last.pt``. Without it, a folder
        that already holds a run is refused.
    registry : Registry, optional
        Where the student is looked up (default: the installed plugins).
    progress : callable, optional
        Receives a :class:`~specxform.progress.ProgressEvent` after each step
        (task ``"training"``: steps of the epoch, with ``epoch``, ``loss`` and
        ``chunks_per_s``); only rank 0 reports. None reports nothing.
    on_batch : callable, optional
        Called as ``on_batch(epoch, step)`` after each optimiser step.
    retrain_teacher : bool
        Train the retrained-classifier baseline instead of a student: a copy of
        ``teacher`` fine-tuned on PINV Mels (``student`` is then ignored).
    tensorboard : bool
        Also write TensorBoard event files to ``<out_dir>/tensorboard``.
    """
    created = distributed.setup()
    try:
        return _train(cache, split, teacher, out_dir=Path(out_dir), teacher_name=teacher_name,
                      student=student, student_config=student_config, loss=loss, config=config,
                      resume=resume, registry=registry, progress=progress, on_batch=on_batch,
                      retrain_teacher=retrain_teacher, tensorboard=tensorboard)
    finally:
        if created:
            distributed.teardown()


def _train(cache: FeatureCache, split: Split, teacher: nn.Module, *, out_dir: Path,
           teacher_name: str, student: str | None,
           student_config: Mapping[str, Any] | None,
           loss: LossConfig | None, config: TrainConfig | None, resume: bool,
           registry: Registry | None, progress: ProgressCallback | None,
           on_batch: Callable[[int, int], None] | None, retrain_teacher: bool,
           tensorboard: bool) -> TrainResult:
    loss, config = loss or LossConfig(), config or TrainConfig()
    out = out_dir
    device = distributed.local_device(select_device(config.device))
    source = Representation.from_dict(cache.manifest["source"])
    target = Representation.from_dict(cache.manifest["target"])
    digest = _cached_teacher_digest(cache, teacher)
    train_rows, valid_rows = _split_rows(cache, split)
    torch.manual_seed(config.seed)
    pinv = PinvTranscoder(source, target, method=config.pinv_method,
                          interpolation=config.interpolation)
    description: dict[str, Any] = {
        "kind": "retrained" if retrain_teacher else "student",
        "source": source.to_dict(), "target": target.to_dict(),
        "teacher": {"name": teacher_name, "digest": digest},
        "pinv": {"method": config.pinv_method, "interpolation": config.interpolation},
        "loss": loss.to_dict(), "train": config.to_dict(), "split": split.to_dict(),
        "cache": {"key": cache.key, "chunking": cache.manifest["chunking"]},
        "versions": versions(),
    }
    model: nn.Module
    if retrain_teacher:
        if loss.method == "mels":
            raise SpecError("the retrained-teacher baseline learns from the teacher's outputs; "
                            "use method 'logits' or 'hybrid', not 'mels'.")
        trainable = copy.deepcopy(teacher).to(device).requires_grad_(True)
        model, classifier = pinv.to(device), trainable
        description["student"] = None
    else:
        registry = registry or get_registry()
        student = student or default_student(registry, source.name, target.name)
        trainable, full_config = build_student(registry, student, source, target,
                                               student_config or {})
        model, classifier = Transcoder(pinv, trainable).to(device), _frozen(teacher, device)
        description["student"] = {"name": student, "config": full_config}
    teacher = _frozen(teacher, device)
    dtype = autocast_dtype(config.precision, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    run = _Run(model, classifier, trainable, torch.optim.Adam(trainable.parameters(), lr=config.lr),
               scaler, description)
    if distributed.world_size() > 1:
        # Broadcasts rank 0's initial weights; gradients are averaged over the ranks.
        if retrain_teacher:
            run.step_classifier = DistributedDataParallel(classifier)
        else:
            run.step_model = DistributedDataParallel(model)
    _start(run, out, resume, device)
    if not run.pinv_metrics:
        run.pinv_metrics = evaluate(pinv, cache, valid_rows, teacher, loss=loss,
                                    batch_size=config.batch_size, device=device)
    board = open_board(out, tensorboard and distributed.is_main())
    progress = progress if distributed.is_main() else None
    with board or contextlib.nullcontext():
        if board is not None and not run.history:
            log_scalars(board, 0, {f"valid_{k}": v for k, v in run.pinv_metrics.items()})
        while run.epoch < config.epochs and not run.stopped_early:
            _epoch(run, cache, train_rows, valid_rows, loss, config, device, dtype, progress,
                   on_batch)
            improved = run.best_epoch == run.epoch
            run.stopped_early = (config.patience is not None
                                 and run.epoch - run.best_epoch >= config.patience)
            if distributed.is_main():
                _checkpoint(run, out, improved)
                if board is not None:
                    log_scalars(board, run.epoch, run.history[-1])
            distributed.barrier()
    return run.result(out)


def _cached_teacher_digest(cache: FeatureCache, teacher: nn.Module) -> str:
    digest = teacher_digest(teacher)
    if digest != cache.manifest["teacher"]["digest"]:
        raise InputError(
            f"the teacher's weights differ from those cached in {cache.folder.name}; build the "
            "cache with this teacher (build_cache) or pass the teacher it was built with."
        )
    return digest


def _split_rows(cache: FeatureCache, split: Split) -> tuple[np.ndarray, np.ndarray]:
    train_rows = cache.rows([c.name for c in split.train])
    valid_rows = cache.rows([c.name for c in split.valid])
    if len(train_rows) == 0 or len(valid_rows) == 0:
        raise InputError(
            f"{len(train_rows)} training and {len(valid_rows)} validation chunks; both splits "
            "need audible chunks (add clips or change the split fractions)."
        )
    return train_rows, valid_rows


def _start(run: _Run, out: Path, resume: bool, device: torch.device) -> None:
    last = out / "last.pt"
    if last.is_file() and not resume:
        raise CheckpointError(
            f"{out} already holds a training run; pass `resume=True` to continue it, or choose "
            "another `out_dir`."
        )
    out.mkdir(parents=True, exist_ok=True)
    if last.is_file():
        run.restore(last, device)


def _autocast(device: torch.device, dtype: torch.dtype | None) -> Any:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def epoch_order(cache: FeatureCache, rows: np.ndarray, config: TrainConfig,
                epoch: int) -> np.ndarray:
    """The training chunks of ``epoch``, in order (see :attr:`TrainConfig.balance`)."""
    rng = np.random.default_rng([config.seed, epoch])
    if not config.balance:
        return rng.permutation(rows)
    top = np.asarray(cache.probs[rows]).argmax(axis=1)
    weights = np.bincount(top)[top].astype(np.float64) ** -config.balance
    return rng.choice(rows, size=len(rows), replace=True, p=weights / weights.sum())


def learning_rate(config: TrainConfig, step: int, n_steps: int) -> float:
    """The learning rate of global step ``step`` (0-based) of ``n_steps`` (all epochs)."""
    if config.lr_schedule == "constant":
        return config.lr
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, n_steps) / n_steps))


def _epoch(run: _Run, cache: FeatureCache, train_rows: np.ndarray, valid_rows: np.ndarray,
           loss: LossConfig, config: TrainConfig, device: torch.device,
           dtype: torch.dtype | None, progress: ProgressCallback | None,
           on_batch: Callable[[int, int], None] | None) -> None:
    """One pass over the shuffled training chunks, then validation; updates ``run``."""
    epoch = run.epoch + 1
    order = epoch_order(cache, train_rows, config, epoch)
    n_steps = math.ceil(len(order) / config.batch_size)
    report(progress, "training", 0, n_steps, epoch=f"{epoch}/{config.epochs}")
    run.trainable.train()
    started, total = time.perf_counter(), 0.0
    for step in range(n_steps):
        rows = order[step * config.batch_size : (step + 1) * config.batch_size]
        mine = distributed.shard(rows)
        # A rank left without chunks still steps (DDP needs every rank) on one, weighted 0.
        share = len(mine) / len(rows)
        batch = _to_device(cache.take(mine if len(mine) else rows[:1]), device)
        lr = learning_rate(config, (epoch - 1) * n_steps + step, config.epochs * n_steps)
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        with _autocast(device, dtype):
            mel = run.step_model(batch["source"])
            logits = (run.step_classifier(mel, _aux(batch, "aux_student")).logits
                      if loss.needs_teacher else None)
            terms = transcoder_loss(loss, student_mel=mel, true_mel=batch["target"],
                                    student_logits=logits, teacher_probs=batch["probs"])
        run.optimizer.zero_grad(set_to_none=True)
        # DDP averages over the ranks: share * world_size makes it the whole batch's mean.
        run.scaler.scale(terms.total * (share * distributed.world_size())).backward()
        run.scaler.step(run.optimizer)
        run.scaler.update()
        total += terms.total.item() * len(mine)
        done = min((step + 1) * config.batch_size, len(order))
        report(progress, "training", step + 1, n_steps, epoch=f"{epoch}/{config.epochs}",
               loss=total / done, chunks_per_s=done / max(time.perf_counter() - started, 1e-9))
        if on_batch is not None:
            on_batch(epoch, step)
    seconds = time.perf_counter() - started
    total = _sum_over_ranks(total)
    run.trainable.eval()
    valid = evaluate(run.model, cache, valid_rows, run.classifier, loss=loss,
                     batch_size=config.batch_size, device=device)
    run.epoch = epoch
    run.history.append({"epoch": epoch, "train_loss": total / len(order),
                        **{f"valid_{k}": v for k, v in valid.items()},
                        "seconds": seconds, "chunks_per_s": len(order) / seconds})
    if valid["loss"] < run.best_loss:
        run.best_epoch, run.best_loss = epoch, valid["loss"]


def _sum_over_ranks(value: float) -> float:
    if distributed.world_size() == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    torch.distributed.all_reduce(tensor)
    return float(tensor.item())


def _checkpoint(run: _Run, out: Path, improved: bool) -> None:
    """Write best.pt (if improved), then last.pt, then log.csv; each atomically."""
    state = run.state()
    if improved:
        keep = ("format", "description", "state_dict", "epoch", "metrics")
        best = {k: state[k] for k in keep} | {"pinv_metrics": run.pinv_metrics}
        save_checkpoint(out / "best.pt", best)
    save_checkpoint(out / "last.pt", state)
    pinv_row = {"epoch": 0, **{f"valid_{k}": v for k, v in run.pinv_metrics.items()}}
    write_csv(out / "log.csv", [pinv_row, *run.history])
