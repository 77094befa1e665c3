"""Multi-process training with ``torch.distributed``, as launched by ``torchrun``.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``
in each process; without them (a plain ``python`` or ``specxform`` run) there
is one process, rank 0, and every function here is a no-op. The backend is
``nccl`` when CUDA is available and ``gloo`` otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.distributed as dist

from specxform.errors import SpecError

__all__ = ["barrier", "is_main", "local_device", "main_first", "rank", "setup", "shard",
           "teardown", "world_size"]


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise SpecError(f"environment variable {name}={text!r} is not an integer; "
                        "launch with torchrun, which sets it.") from None


def world_size() -> int:
    """Number of training processes (``WORLD_SIZE``, 1 outside ``torchrun``)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return _env_int("WORLD_SIZE", 1)


def rank() -> int:
    """This process's rank in ``[0, world_size())`` (``RANK``, 0 outside ``torchrun``)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return _env_int("RANK", 0)


def is_main() -> bool:
    """Whether this process writes checkpoints, logs and reports (rank 0)."""
    return rank() == 0


def local_device(device: torch.device) -> torch.device:
    """``device``, on this process's GPU (``LOCAL_RANK``) if it is an unnumbered CUDA one."""
    if device.type == "cuda" and device.index is None and world_size() > 1:
        return torch.device("cuda", _env_int("LOCAL_RANK", 0))
    return device


def setup() -> bool:
    """Join the process group when launched with several processes.

    Returns
    -------
    bool
        True when this call created the group (the caller then calls
        :func:`teardown`); False with one process or an existing group.
    """
    if world_size() == 1 or dist.is_initialized():
        return False
    if not dist.is_available():
        raise SpecError("WORLD_SIZE > 1 but this torch build has no torch.distributed; "
                        "train with one process.")
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return True


def teardown() -> None:
    """Leave the process group (no-op when there is none)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every process (no-op with one process)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


@contextmanager
def main_first() -> Iterator[None]:
    """Run the block on rank 0 first, then on the others (e.g. to build a shared cache once)."""
    setup()
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def shard(rows: np.ndarray, index: int | None = None, count: int | None = None) -> np.ndarray:
    """This rank's contiguous, disjoint part of ``rows`` (``np.array_split``; may be empty).

    Parameters
    ----------
    rows : ndarray, shape (n,)
        Items to share out, e.g. the cache rows of one global batch.
    index, count : int, optional
        The rank and the number of ranks (default: this process's).
    """
    index = rank() if index is None else index
    count = world_size() if count is None else count
    if not 0 <= index < count:
        raise SpecError(f"rank {index} is outside [0, {count}); pass 0 <= index < count.")
    return np.array_split(rows, count)[index]
