"""Sensor archives: layouts, the map function, Parquet output, resuming, failures, Dask.

The model is the tiny ``cense -> pann`` checkpoint of the level tests
(levels_helpers.make_checkpoint) with its 4-class test teacher; archives hold
minutes of levels, cut into 60 s chunks, so that each test stays fast.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed", reason="the archive extra is not installed")
pytest.importorskip("pyarrow", reason="the archive extra is not installed")
pytest.importorskip("zarr", reason="the archive extra is not installed")

import pyarrow.compute as pc
import pyarrow.dataset as ds
import zarr
from archive_helpers import (
    PERIOD,
    START,
    checkpoint_for,
    csv_tree,
    hdf5_archive,
    write_csv,
)
from levels_helpers import LABELS, level_registry, sensor_levels

from specxform.archive import (
    MapSettings,
    ModelSpec,
    classify_chunk,
    open_archive,
    read_failures,
    read_hourly,
    read_windows,
)
from specxform.archive.convert import convert_archive
from specxform.archive.runner import DaskEngine, LoopEngine, classify_archive
from specxform.errors import InputError

SOURCE = level_registry().representation("cense")
ALL = MapSettings(top_k=4)  # every class of the test teacher, so presence can be recounted


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return checkpoint_for(tmp_path_factory)


@pytest.fixture(scope="session")
def spec(checkpoint: Path) -> ModelSpec:
    return ModelSpec(str(checkpoint), "cense", registry_factory=level_registry)


def run_loop(archive: Path, spec: ModelSpec, out: Path, **kwargs: object) -> object:
    kwargs.setdefault("settings", ALL)
    return classify_archive(archive, spec, out, engine=LoopEngine(), **kwargs)  # type: ignore


def as_written(levels: np.ndarray) -> np.ndarray:
    """The levels as write_csv stores them (2 decimals), read back as float32."""
    return np.array([[float(f"{v:.2f}") for v in row] for row in levels], np.float32)


def us(moment: datetime) -> int:
    return round(moment.replace(tzinfo=UTC).timestamp() * 1e6)


# ----------------------------------------------------------------------------- layouts


def test_folder_tree_sensors_and_chunks(tmp_path: Path) -> None:
    root = csv_tree(tmp_path / "net", {"north": 2, "south": 1}, minutes=0.5)
    np.save(root / "solo.npy", sensor_levels(10))
    (root / "_notes").mkdir()
    (root / "_notes" / "x.csv").write_text("not levels")
    archive = open_archive(root, SOURCE)
    assert archive.kind == "folder" and archive.sensors == ("north", "solo", "south")
    assert [c.key for c in archive.chunks] == [
        "north/20240501T220000.csv", "north/20240501T220030.csv", "solo.npy",
        "south/20240501T220000.csv"]
    ids = [c.id for c in archive.chunks]
    assert len(set(ids)) == len(ids) and ids == [c.id for c in open_archive(root, SOURCE).chunks]


def test_hdf5_nodes_and_chunks(tmp_path: Path) -> None:
    import h5py

    path = tmp_path / "net.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("a", data=sensor_levels(150)).attrs["start"] = "2024-05-01T10:00:00Z"
        group = h5.create_group("site/b")
        group["levels"] = sensor_levels(30)
        group["timestamps"] = PERIOD * np.arange(240)
        group.attrs["start"] = "2024-05-01T11:00:00+02:00"
    archive = open_archive(path, SOURCE, chunk_seconds=60)
    assert archive.sensors == ("a", "site/b")
    a = [c for c in archive.chunks if c.sensor == "a"]
    assert [(c.start_frame, c.stop_frame) for c in a] == [(0, 480), (480, 960), (960, 1200)]
    assert a[1].time_range_us() == (us(datetime(2024, 5, 1, 10, 1)),
                                    us(datetime(2024, 5, 1, 10, 2)))
    (b,) = [c for c in archive.chunks if c.sensor == "site/b"]
    assert b.time_range_us() == (None, None)  # its timestamps are only known once read
    with h5py.File(tmp_path / "wide.h5", "w") as h5:
        h5["x"] = np.zeros((8, 30), np.float32)
    with pytest.raises(InputError, match=r"sensor 'x'.*30 bands"):
        open_archive(tmp_path / "wide.h5", SOURCE)


# ----------------------------------------------------------------------------- map


def test_map_function_matches_classify_and_is_pure(spec: ModelSpec, tmp_path: Path) -> None:
    """classify_chunk gives, per window, the probabilities `specxform classify` computes."""
    from specxform.levels.classify import LevelSettings, classify_level_file

    levels = sensor_levels(40, seed=3)
    levels[50, 2] = np.nan
    path = write_csv(tmp_path / "s" / "x.csv", levels, START, gap_after=200, gap_s=5.0)
    (chunk,) = open_archive(tmp_path, SOURCE).chunks
    model = spec.load()
    result = classify_chunk(model, chunk, ALL, -60.0)
    again = classify_chunk(model, chunk, ALL, -60.0)
    assert result.failure is None and result.windows.equals(again.windows)
    reference = classify_level_file(model, path, "x", LevelSettings(db_offset=-60.0), tmp_path)
    records = np.concatenate(list(reference.store.blocks()))
    table = result.windows.to_pydict()
    starts = [us(START) + round(s * 1e6) for s in records["start"]]
    assert [round(t.timestamp() * 1e6) for t in table["start"]] == starts
    probs = np.stack([table[f"prob_{r}"] for r in range(1, 5)], axis=1)
    # Exact: the teacher computes float32 probabilities; both keep them unrounded.
    np.testing.assert_array_equal(probs, -np.sort(-records["probs"], axis=1).astype(np.float32))
    assert table["class_1"] == [LABELS[i] for i in records["probs"].argmax(axis=1)]
    assert set(table["sensor"]) == {"s"} and result.frames == len(levels)
    assert result.missing_frames == 1 and result.presence.windows.sum() == len(records)


# ----------------------------------------------------------------------------- convert


def test_convert_keeps_gaps_and_gives_the_same_windows(spec: ModelSpec, tmp_path: Path) -> None:
    """Zarr from CSVs: gaps become NaN frames; classifying either gives the same windows."""
    first, second = sensor_levels(120, seed=1), sensor_levels(120, seed=2)
    first[95, 4] = np.nan
    # 960 frames; from frame 480 on, 10 s later: axis frames 480..559 are the gap.
    write_csv(tmp_path / "net" / "a" / "1.csv", first, START, gap_after=480, gap_s=10.0)
    write_csv(tmp_path / "net" / "a" / "2.csv", second, START + timedelta(seconds=130))
    result = convert_archive(tmp_path / "net", tmp_path / "net.zarr", SOURCE, chunk_seconds=60)
    assert result.sensors["a"]["frames"] == 1040 + 960 and result.chunk_frames == 480
    levels = zarr.open_group(str(tmp_path / "net.zarr"), mode="r")["a/levels"]
    assert levels.chunks == (480, 29)
    stored = levels[:]
    assert np.isnan(stored[480:560]).all() and np.isnan(stored[95, 4])
    # Exact: the store holds the CSV cells parsed to float32.
    np.testing.assert_array_equal(stored[560:1040], as_written(first[480:]))
    np.testing.assert_array_equal(stored[1040:], as_written(second))
    assert result.sensors["a"]["start"] == START.replace(tzinfo=UTC).isoformat()
    run_loop(tmp_path / "net", spec, tmp_path / "out-csv")
    run_loop(tmp_path / "net.zarr", spec, tmp_path / "out-zarr")
    from_csv, from_zarr = read_windows(tmp_path / "out-csv"), read_windows(tmp_path / "out-zarr")
    assert from_zarr.num_rows == 12 + 48 + 60 + 120 and from_zarr.equals(from_csv)
    with pytest.raises(InputError, match="exists"):
        convert_archive(tmp_path / "net", tmp_path / "net.zarr", SOURCE)


def test_convert_refuses_overlapping_files(tmp_path: Path) -> None:
    write_csv(tmp_path / "net" / "a" / "1.csv", sensor_levels(10), START)
    write_csv(tmp_path / "net" / "a" / "2.csv", sensor_levels(10), START + timedelta(seconds=5))
    with pytest.raises(InputError, match="must not overlap"):
        convert_archive(tmp_path / "net", tmp_path / "x.zarr", SOURCE)
    assert not (tmp_path / "x.zarr").exists() and not list(tmp_path.glob(".x.zarr*"))


# ----------------------------------------------------------------------------- output


def test_parquet_partitions_hourly_presence_and_failures(spec: ModelSpec, tmp_path: Path) -> None:
    archive = hdf5_archive(tmp_path / "net.h5", {"a": 180, "b/c": 120},
                           start="2024-05-01T23:59:00Z")
    run = run_loop(archive, spec, tmp_path / "out", chunk_seconds=60)
    out = tmp_path / "out"
    days = sorted(p.relative_to(out).parent.as_posix()
                  for p in (out / "windows").rglob("*.parquet"))
    assert days == ["windows/sensor=a/day=2024-05-01", *["windows/sensor=a/day=2024-05-02"] * 2,
                    "windows/sensor=b%2Fc/day=2024-05-01", "windows/sensor=b%2Fc/day=2024-05-02"]
    windows = read_windows(out)
    assert windows.num_rows == 300 and windows.column_names[:4] == ["sensor", "day", "start", "end"]
    plain = ds.dataset(out / "windows", format="parquet", partitioning="hive").to_table()
    assert plain.num_rows == 300 and set(plain.column("sensor").to_pylist()) == {"a", "b/c"}
    hourly = read_hourly(out)
    assert hourly.num_rows == 2 * 2 * len(LABELS)  # 2 sensors x 2 hours x 4 classes
    for row in hourly.to_pylist():
        mine = windows.filter(pc.and_(pc.equal(windows["sensor"], row["sensor"]), pc.and_(
            pc.greater_equal(windows["start"], row["hour"]),
            pc.less(windows["start"], row["hour"] + timedelta(hours=1)))))
        assert row["windows"] == mine.num_rows
        probs = np.zeros(mine.num_rows)
        for r in range(1, 5):
            probs += np.where(np.asarray(mine[f"class_{r}"].to_pylist()) == row["class"],
                              mine[f"prob_{r}"].to_numpy(), 0)
        assert row["present"] == int((probs >= 0.5).sum())
        # float32 probabilities summed in float64: equal to 1e-6 relative.
        assert row["mean_probability"] == pytest.approx(probs.mean(), rel=1e-6)
    assert read_failures(out).num_rows == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and summary["windows"] == 300 and run.computed == 5


def test_resume_skips_complete_chunks_and_redoes_half_written(spec: ModelSpec,
                                                              tmp_path: Path) -> None:
    archive = hdf5_archive(tmp_path / "net.h5", {"a": 240})
    out = tmp_path / "out"
    run_loop(archive, spec, out, chunk_seconds=60)
    before = read_windows(out)
    markers = sorted((out / "_work" / "done").glob("*.json"))
    # A run that died after writing a chunk's files but before its marker ...
    markers[0].unlink()
    assert read_windows(out).num_rows == before.num_rows - 60  # ... is not read as complete
    # ... a part file cut short under its final name, and a temporary file of a killed write:
    part = out / next(iter(json.loads(markers[1].read_text())["files"]))
    part.write_bytes(part.read_bytes()[:100])
    stray = part.parent / f".{part.name}.x1y2.tmp"
    stray.write_bytes(b"half")
    run = run_loop(archive, spec, out, chunk_seconds=60)
    assert (run.computed, run.skipped, run.resumed) == (2, 2, True)
    assert not stray.exists() and read_windows(out).equals(before)
    assert run_loop(archive, spec, out, chunk_seconds=60).computed == 0
    with pytest.raises(InputError, match=r"other settings.*top_k"):
        run_loop(archive, spec, out, chunk_seconds=60, settings=MapSettings(top_k=2))


def test_corrupt_chunk_is_reported_and_the_rest_classified(spec: ModelSpec,
                                                           tmp_path: Path) -> None:
    hdf5 = hdf5_archive(tmp_path / "net.h5", {"a": 180, "b": 180})
    store = tmp_path / "net.zarr"
    convert_archive(hdf5, store, SOURCE, chunk_seconds=60)
    chunk_file = store / "b" / "levels" / "c" / "1" / "0"
    assert chunk_file.is_file()
    chunk_file.write_bytes(b"\x00garbage" * 10)
    run = run_loop(store, spec, tmp_path / "out")
    assert run.failed == 1 and read_windows(tmp_path / "out").num_rows == 6 * 60 - 60
    (failure,) = read_failures(tmp_path / "out").to_pylist()
    start = datetime(2024, 5, 1, 22, 31, tzinfo=UTC)
    assert (failure["sensor"], failure["chunk"]) == ("b", "b[480:960]")
    assert (failure["start"], failure["end"]) == (start, start + timedelta(minutes=1))
    assert failure["error"]


def test_auto_offset_is_per_sensor_over_its_archive(spec: ModelSpec, tmp_path: Path) -> None:
    import h5py

    from specxform.levels.classify import estimate_offset
    from specxform.levels.readers import open_levels

    quiet, loud = sensor_levels(60, seed=1, spl=50), sensor_levels(60, seed=2, spl=70)
    with h5py.File(tmp_path / "net.h5", "w") as h5:
        h5["a"] = np.concatenate([quiet, loud])
    run = run_loop(tmp_path / "net.h5", spec, tmp_path / "out", chunk_seconds=60)
    np.save(tmp_path / "a.npy", np.concatenate([quiet, loud]))
    expected, _ = estimate_offset(open_levels(tmp_path / "a.npy", SOURCE))
    assert run.offsets == {"a": pytest.approx(expected, abs=1e-9)}
    offsets = json.loads((tmp_path / "out" / "_work" / "offsets.json").read_text())
    assert offsets["a"]["offset"] == pytest.approx(expected, abs=1e-9)


# ----------------------------------------------------------------------------- Dask


def test_local_cluster_of_two_thread_workers_matches_the_loop(spec: ModelSpec,
                                                              tmp_path: Path) -> None:
    """Dask's scheduling, keys, merges and output on 2 in-process workers (seconds to start)."""
    from distributed import Client, LocalCluster

    archive = hdf5_archive(tmp_path / "net.h5", {"a": 120, "b": 120})
    run_loop(archive, spec, tmp_path / "loop", chunk_seconds=30)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        run = classify_archive(archive, spec, tmp_path / "dask", settings=ALL,
                               chunk_seconds=30, engine=DaskEngine(client=client))
    assert run.engine == "dask" and run.computed == 8
    assert run.offsets == json.loads((tmp_path / "loop" / "summary.json").read_text())[
        "db_offsets"]
    assert read_windows(tmp_path / "dask").equals(read_windows(tmp_path / "loop"))
    assert read_hourly(tmp_path / "dask").equals(read_hourly(tmp_path / "loop"))


@pytest.mark.slow
def test_local_cluster_of_two_processes_loads_the_model_once_per_worker(
        spec: ModelSpec, tmp_path: Path) -> None:
    """Two worker processes (15 to 20 s on 2 busy cores): the same rows as a loop."""
    archive = hdf5_archive(tmp_path / "net.h5", {"a": 120, "b": 120})
    run_loop(archive, spec, tmp_path / "loop", chunk_seconds=30, db_offset=-60.0)
    engine = DaskEngine(workers=2)
    try:
        run = classify_archive(archive, spec, tmp_path / "dask", settings=ALL,
                               chunk_seconds=30, db_offset=-60.0, engine=engine)
    finally:
        engine.close()
    assert read_windows(tmp_path / "dask").equals(read_windows(tmp_path / "loop"))
    assert sum(w["tasks"] for w in run.workers.values()) == 8
    assert any(w["tasks"] > 1 for w in run.workers.values())
    assert all(w["loads"] == 1 for w in run.workers.values())


@pytest.mark.slow
def test_sigkill_of_a_worker_mid_run_changes_nothing(spec: ModelSpec, tmp_path: Path) -> None:
    """A worker killed with SIGKILL mid-run: its tasks are retried; row for row the same."""
    archive = hdf5_archive(tmp_path / "net.h5", {"a": 360, "b": 360})
    run_loop(archive, spec, tmp_path / "loop", chunk_seconds=30, db_offset=-60.0)
    engine = DaskEngine(workers=2)
    done = tmp_path / "dask" / "_work" / "done"
    killed: list[int] = []

    def kill_when_started() -> None:
        while len(list(done.glob("*.json"))) < 3:
            time.sleep(0.05)
        busy = [w for w, tasks in engine.client.processing().items() if tasks]
        pids = engine.client.run(os.getpid, workers=busy[:1])
        pid = next(iter(pids.values()))
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_when_started, daemon=True)
    killer.start()
    try:
        run = classify_archive(archive, spec, tmp_path / "dask", settings=ALL, chunk_seconds=30,
                               db_offset=-60.0, engine=engine)
    finally:
        engine.close()
    killer.join(timeout=5)
    assert killed, "no worker was killed: the run ended first"
    assert run.computed == 24 and read_failures(tmp_path / "dask").num_rows == 0
    dask_rows, loop_rows = read_windows(tmp_path / "dask"), read_windows(tmp_path / "loop")
    assert dask_rows.to_pylist() == loop_rows.to_pylist()
    assert read_hourly(tmp_path / "dask").equals(read_hourly(tmp_path / "loop"))
    assert len(run.workers) >= 2
