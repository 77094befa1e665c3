"""Data-parallel training: 2 CPU processes on gloo (torchrun), against a single-process run.

Run as a script, this file is the torchrun worker: it trains on the given cache
and saves what its rank saw, wrote and ended with.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from training_helpers import TINY_STUDENT, TinyTeacher, small_split

from specxform.errors import SpecError
from specxform.training import checkpoint, distributed, trainer
from specxform.training.cache import FeatureCache, open_cache

HERE = Path(__file__).resolve().parent
#: batch 5 splits 3 + 2 over two ranks: the loss weighting by share is exercised.
CONFIG = trainer.TrainConfig(epochs=2, batch_size=5, seed=3)


def _worker(cache_folder: str, out: str, record: str) -> None:
    """Train on rank RANK, recording the chunks read, the files written and the final weights."""
    torch.set_num_threads(1)
    cache = open_cache(cache_folder)
    taken: list[np.ndarray] = []
    writes: list[str] = []
    students: list[torch.nn.Module] = []
    take, save, write_csv, build = (cache.take, trainer.save_checkpoint, trainer.write_csv,
                                    trainer.build_student)
    cache.take = lambda rows: (taken.append(np.array(rows)), take(rows))[1]  # type: ignore
    trainer.save_checkpoint = lambda path, payload: (writes.append(path.name),
                                                     save(path, payload))[1]
    trainer.write_csv = lambda path, rows: (writes.append(path.name), write_csv(path, rows))[1]

    def capture(*args, **kwargs):
        student, config = build(*args, **kwargs)
        students.append(student)
        return student, config

    trainer.build_student = capture
    result = trainer.train(cache, small_split(), TinyTeacher(), out_dir=out, teacher_name="tiny",
                           student_config=TINY_STUDENT, config=CONFIG)
    torch.save({"world": distributed.world_size(), "taken": taken, "writes": writes,
                "state": students[0].state_dict(), "history": list(result.history)},
               Path(record) / f"rank{distributed.rank()}.pt")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def two_ranks(tiny_cache: FeatureCache, tmp_path_factory: pytest.TempPathFactory):
    """Run directory and per-rank records of a 2-process torchrun training."""
    out, record = tmp_path_factory.mktemp("ddp_run"), tmp_path_factory.mktemp("ddp_record")
    env = os.environ | {"OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
               str(Path(__file__)), str(tiny_cache.folder), str(out), str(record)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(record / f"rank{r}.pt", weights_only=False) for r in range(2)]
    return out, ranks


def test_only_rank_0_writes_one_set_of_checkpoints(two_ranks):
    out, ranks = two_ranks
    assert [r["world"] for r in ranks] == [2, 2]
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "last.pt", "log.csv",
                                                     "tensorboard"]
    assert len(list((out / "tensorboard").iterdir())) == 1  # one event file, rank 0's
    assert ranks[0]["writes"].count("last.pt") == CONFIG.epochs and ranks[1]["writes"] == []
    assert checkpoint.read_checkpoint(out / "last.pt")["epoch"] == CONFIG.epochs


def test_ranks_end_with_identical_weights(two_ranks):
    out, ranks = two_ranks
    saved = checkpoint.read_checkpoint(out / "last.pt")["state_dict"]
    for name, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][name]), name
        assert torch.equal(value, saved[name]), name
    assert ranks[0]["history"][-1]["train_loss"] == ranks[1]["history"][-1]["train_loss"]


def test_ranks_see_disjoint_shards_covering_each_epoch(two_ranks, tiny_cache: FeatureCache):
    _, ranks = two_ranks
    train_rows = tiny_cache.rows([c.name for c in small_split().train])
    n_steps = -(-len(train_rows) // CONFIG.batch_size)
    # Training reads (validation reads other rows), one per step, epoch after epoch.
    steps = [[rows for rows in rank["taken"] if np.isin(rows, train_rows).all()]
             for rank in ranks]
    assert [len(s) for s in steps] == [n_steps * CONFIG.epochs] * 2
    for epoch in range(CONFIG.epochs):
        mine = [np.concatenate(s[epoch * n_steps : (epoch + 1) * n_steps]) for s in steps]
        assert not set(mine[0].tolist()) & set(mine[1].tolist())
        assert np.array_equal(np.sort(np.concatenate(mine)), train_rows)  # each chunk once
        assert len(mine[0]) > len(mine[1])  # np.array_split gives rank 0 the larger half


def test_two_ranks_follow_the_single_process_run(two_ranks, tiny_cache: FeatureCache,
                                                 tmp_path: Path):
    _, ranks = two_ranks
    torch.set_num_threads(1)
    single = trainer.train(tiny_cache, small_split(), TinyTeacher(), out_dir=tmp_path,
                           teacher_name="tiny", student_config=TINY_STUDENT, config=CONFIG)
    state = checkpoint.read_checkpoint(single.last_checkpoint)["state_dict"]
    # Same global batches and loss; only the float summation order differs (measured 3e-8).
    for name, value in state.items():
        torch.testing.assert_close(ranks[0]["state"][name], value, rtol=1e-5, atol=1e-6)
    for one, two in zip(single.history, ranks[0]["history"], strict=True):
        assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-5)
        assert two["valid_loss"] == pytest.approx(one["valid_loss"], rel=1e-5)


def test_shard_splits_disjointly_and_checks_the_rank():
    rows = np.arange(7)
    parts = [distributed.shard(rows, r, 3) for r in range(3)]
    assert np.array_equal(np.concatenate(parts), rows) and [len(p) for p in parts] == [3, 2, 2]
    assert np.array_equal(distributed.shard(rows), rows)  # one process outside torchrun
    with pytest.raises(SpecError, match="rank 3"):
        distributed.shard(rows, 3, 3)


def test_single_process_defaults(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main()
    assert distributed.setup() is False
    with distributed.main_first():
        pass  # no group: runs straight through
    cuda = torch.device("cuda")
    assert distributed.local_device(cuda) == cuda  # one process: left as is
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.local_device(cuda) == torch.device("cuda", 1)
    assert distributed.local_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(SpecError, match="WORLD_SIZE='two'"):
        distributed.world_size()


if __name__ == "__main__":
    _worker(*sys.argv[1:4])
