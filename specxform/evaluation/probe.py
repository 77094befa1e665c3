"""The downstream probe: two linear layers trained on a frozen teacher's clip outputs.

``Linear(N, 100) -> Linear(100, C)`` (``N`` the teacher's outputs, ``C`` the
task's classes; nothing in between), trained with BCE on one-hot or
multi-hot targets and Adam (:class:`ProbeConfig`: learning rate 1e-3, 30
epochs, batches of 32 clips). With a validation part the state of the epoch
with the lowest validation BCE is kept; without one, the last.

May import: torch and :mod:`specxform.errors`.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np
import torch
from torch import Tensor, nn

from specxform.errors import InputError, SpecError

__all__ = ["Probe", "ProbeConfig", "predict", "train_probe"]


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
