"""The log of a training run: ``log.csv`` and TensorBoard event files.

``log.csv`` has one row per epoch (:data:`CSV_FIELDS`; row 0 is the PINV
baseline, so its ``train_loss`` is empty) and is rewritten atomically after each
epoch. The TensorBoard events in ``<out>/tensorboard`` hold every column as a
scalar, by epoch.

May import: the training cache's atomic writes and torch's TensorBoard writer.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from specxform.training.cache import atomic_write_bytes

__all__ = ["CSV_FIELDS", "log_scalars", "open_board", "write_csv"]

CSV_FIELDS = ("epoch", "train_loss", "valid_loss", "valid_mel_mse", "valid_kl", "valid_top1",
              "valid_ptopa_fc", "seconds", "chunks_per_s")


def write_csv(path: Path, rows: list[dict[str, float]]) -> None:
    """Write ``log.csv`` atomically: one row per epoch (row 0 the PINV baseline)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, text.getvalue().encode())


def open_board(out: Path, enabled: bool) -> Any:
    """A TensorBoard writer on ``<out>/tensorboard`` (None when disabled)."""
    if not enabled:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(out / "tensorboard"))


def log_scalars(board: Any, epoch: int, row: Mapping[str, float]) -> None:
    """Every column of a log row as a TensorBoard scalar (``valid_loss`` -> ``valid/loss``)."""
    for name, value in row.items():
        if name != "epoch":
            board.add_scalar(name.replace("_", "/", 1), value, epoch)
    board.flush()
