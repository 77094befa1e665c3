"""The benchmark harness: interleaved timing, the memory probe and fresh worker processes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from benchmark_helpers import import_benchmark

LINUX_PROC = Path("/proc/self/status").exists()


@pytest.fixture(scope="module")
def harness() -> ModuleType:
    return import_benchmark("harness")


def test_repeats_are_interleaved_after_the_warm_up(harness: ModuleType):
    calls: list[str] = []
    times = harness.interleaved_seconds([lambda: calls.append("a"), lambda: calls.append("b")],
                                        repeats=3, warmup=2)
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 3
    assert [len(t) for t in times] == [3, 3] and min(min(t) for t in times) >= 0


@pytest.mark.skipif(not LINUX_PROC, reason="samples /proc/self/status (Linux)")
# /proc's RSS figures come from counters the kernel syncs lazily (per thread, and with few
# page faults when transparent huge pages back the block), so under a loaded parallel test
# run a sample can miss a short-lived allocation: run with the slow tests, one at a time.
@pytest.mark.slow
def test_memory_probe_sees_an_allocation_made_and_freed_inside_the_block(harness: ModuleType):
    size = 96 * 2**20
    with harness.MemoryProbe(interval=0.005) as probe:
        block = np.ones(size // 8)  # touched: resident
        time.sleep(0.05)  # let the sampler see it
        del block
    result = probe.result
    assert result["anon"] >= 90  # MiB of heap at the peak
    assert result["sampled_rss"] >= result["rss_before"] + 90
    assert result["peak_rss"] >= result["sampled_rss"] - 1


@pytest.mark.skipif(not LINUX_PROC, reason="reads VmHWM from /proc (Linux)")
def test_fresh_process_reports_only_its_own_peak(harness: ModuleType, tmp_path: Path):
    """A worker started by a large process must not inherit that process's peak."""
    script = tmp_path / "worker.py"
    script.write_text(
        "import json, resource, sys\n"
        "assert sys.argv[1] == '--worker'\n"
        "options = json.loads(sys.argv[3])\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print('noise')\n"
        "print(json.dumps({'kind': sys.argv[2], 'echo': options['x'], 'peak_mib': peak}))\n"
    )
    ballast = np.ones(300 * 2**20 // 8)  # this process: at least 300 MiB resident
    result = harness.fresh_process(script, "probe", {"x": [1, 2]})
    assert result["kind"] == "probe" and result["echo"] == [1, 2]
    assert result["peak_mib"] < 100 < ballast.nbytes / 2**20


def test_a_failing_worker_is_reported_with_its_error(harness: ModuleType, tmp_path: Path):
    script = tmp_path / "worker.py"
    script.write_text("raise SystemExit('no data here')\n")
    with pytest.raises(RuntimeError, match="no data here"):
        harness.fresh_process(script, "probe", {})


@pytest.mark.slow  # lazily synced /proc counters, as above
@pytest.mark.skipif(not LINUX_PROC, reason="reads RssAnon from /proc (Linux)")
def test_heap_trajectory_records_the_quarters_of_a_loop(harness: ModuleType):
    trajectory = harness.HeapTrajectory(10)
    kept = []
    for done in range(1, 11):
        # 33 MiB more heap per iteration: above glibc's largest mmap threshold (32 MiB), so
        # each block is fresh pages, never memory the allocator kept from earlier tests.
        kept.append(np.ones(33 * 2**20 // 8))
        trajectory(done)
    assert trajectory.marks == {3, 5, 8, 10}
    first, *_, last = trajectory.values
    assert len(trajectory.values) == 4 and last - first >= 7 * 33 * 0.9  # 7 iterations apart


def test_peak_ratios_take_each_inputs_smallest_figure(harness: ModuleType):
    small = [{"peak_rss": 400.0, "rss_before": 300.0, "anon": 200.0},
             {"peak_rss": 450.0, "rss_before": 300.0, "anon": 260.0}]  # a noisier repeat
    large = [{"peak_rss": 520.0, "rss_before": 310.0, "anon": 300.0},
             {"peak_rss": 500.0, "rss_before": 300.0, "anon": 320.0}]
    assert harness.peak_ratios(small, large) == {"peak_rss": 1.25, "growth": 2.0, "anon": 1.5}


def test_results_are_written_as_json_and_markdown(harness: ModuleType, tmp_path: Path):
    harness.write_results(tmp_path / "out", "demo", {"rtf": 2.5}, "# Demo\n")
    assert json.loads((tmp_path / "out" / "demo.json").read_text()) == {"rtf": 2.5}
    assert (tmp_path / "out" / "demo.md").read_text() == "# Demo\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["demo.json", "demo.md"]
