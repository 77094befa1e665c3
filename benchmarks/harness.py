"""What every benchmark section shares: the machine, interleaved timing, peak memory, results.

- :data:`CLIP`: the real street scene in ``../shared/data`` (``SPECXFORM_SHARED_DATA``);
- :func:`machine` / :func:`machine_line`: CPU, cores, versions and load average,
  recorded with every result because the machine is shared and noisy;
- :func:`median_seconds`: median wall time of several functions whose repeats
  are interleaved, so that a change in load hits them all alike;
- :class:`MemoryProbe` and :func:`fresh_process`: the peak resident memory of a
  piece of work, measured in a fresh interpreter so that nothing an earlier
  measurement allocated counts;
- :func:`write_results`: ``<name>.json`` and ``<name>.md``, written atomically.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import scipy
import torch

import specxform
from specxform.io import atomic_write

Fn = Callable[[], object]
MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPECXFORM_SHARED_DATA", ROOT.parent / "shared" / "data"))
#: The real recording most sections read (45 s street scene, 44.1 kHz).
CLIP = SHARED / "street-clips" / "150993__saphe__street-scene-1.wav"


def thread_counts() -> tuple[int, ...]:
    """The two thread settings every speed figure is measured with: one, and all cores."""
    return (1, os.cpu_count() or 1)


def load_average() -> float:
    """The 1-minute load average (runnable processes); above the core count means contention."""
    return os.getloadavg()[0]


def machine() -> dict[str, Any]:
    """CPU model, cores, package versions and the current 1-minute load average."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines()
                 if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch_threads_default": torch.get_num_threads(),
        "load_average_1min": load_average(), "python": platform.python_version(),
        "torch": torch.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
        "librosa": version("librosa"), "nnAudio": version("nnAudio"),
        "specxform": specxform.__version__,
    }


def machine_line(report: dict[str, Any]) -> str:
    """The machine, versions and load; a warning paragraph when the CPU was oversubscribed.

    ``report`` holds ``machine`` (from :func:`machine`) and ``load_average_end``.
    """
    m = report["machine"]
    line = (f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, torch {m['torch']}, "
            f"NumPy {m['numpy']}, SciPy {m['scipy']}, librosa {m['librosa']}, nnAudio "
            f"{m['nnAudio']}; 1-min load average {m['load_average_1min']:.1f} at start, "
            f"{report['load_average_end']:.1f} at end.")
    if max(m["load_average_1min"], report["load_average_end"]) > (m["cores"] or 1):
        line += ("\n\n**The load average exceeded the number of cores: other processes "
                 "competed for the CPU, and the all-thread figures mostly measure waiting "
                 "for descheduled worker threads.**")
    return line


def median_seconds(fns: list[Fn], repeats: int, warmup: int = 2) -> list[float]:
    """Median wall time of each function after ``warmup`` calls; repeats are interleaved
    so that a change in machine load hits all of them alike."""
    return [statistics.median(t) for t in interleaved_seconds(fns, repeats, warmup)]


def interleaved_seconds(fns: list[Fn], repeats: int, warmup: int = 2) -> list[list[float]]:
    """Wall time (s) of every timed call of each function: ``repeats`` rounds, each calling
    every function once in turn, after ``warmup`` untimed calls of each, under
    ``torch.inference_mode()``."""
    times: list[list[float]] = [[] for _ in fns]
    with torch.inference_mode():
        for fn in fns:  # warm-up: caches, allocator, oneDNN primitives, lazy imports
            for _ in range(warmup):
                fn()
        for _ in range(repeats):
            for fn, store in zip(fns, times, strict=True):
                start = time.perf_counter()
                fn()
                store.append(time.perf_counter() - start)
    return times


# -- memory -----------------------------------------------------------------------------


def _status_kib() -> dict[str, int]:
    """VmRSS, RssAnon, RssFile and VmHWM (peak) of this process in KiB (empty without /proc)."""
    path = Path("/proc/self/status")
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def heap_mib() -> float | None:
    """This process's anonymous resident memory (``RssAnon``) in MiB; None without /proc."""
    anon = _status_kib().get("RssAnon")
    return None if anon is None else anon / 1024


class HeapTrajectory:
    """The heap (:func:`heap_mib`) after each quarter of a loop of ``total`` iterations.

    Call the object with the number of iterations done after each one; a heap
    that levels off after the first quarter shows memory that does not grow
    with the length of the work, within one process.
    """

    def __init__(self, total: int, points: int = 4) -> None:
        self.marks = {max(1, math.ceil(total * k / points)) for k in range(1, points + 1)}
        self.values: list[float] = []

    def __call__(self, done: int) -> None:
        heap = heap_mib()
        if done in self.marks and heap is not None:
            self.values.append(heap)


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (``getrusage(RUSAGE_SELF).ru_maxrss``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


class MemoryProbe:
    """Resident memory of the work inside a ``with`` block.

    On exit, :attr:`result` holds (MiB): ``rss_before`` (resident at entry,
    after imports and setup), ``peak_rss`` (the process's peak,
    ``ru_maxrss``, which may predate the block) and, where ``/proc`` exists,
    ``vm_hwm`` (the kernel's peak of this address space, which should equal
    ``peak_rss`` in a process started by :func:`fresh_process`) and the largest
    values sampled every ``interval`` seconds during the block: ``sampled_rss``,
    ``anon`` (heap: arrays and tensors the process owns) and ``file`` (file
    pages mapped in, e.g. memory-mapped cache arrays and libraries, which the
    kernel can drop and reread).
    """

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.result: dict[str, float] = {}
        self._peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            self._sample_once()
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> MemoryProbe:
        self.result["rss_before"] = _status_kib().get("VmRSS", 0) / 1024
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self._sample_once()
        names = {"VmRSS": "sampled_rss", "RssAnon": "anon", "RssFile": "file",
                 "VmHWM": "vm_hwm"}
        self.result |= {names[k]: v / 1024 for k, v in self._peaks.items()}
        self.result["peak_rss"] = peak_rss_bytes() / MIB

    def _sample_once(self) -> None:
        for key, value in _status_kib().items():
            self._peaks[key] = max(self._peaks.get(key, 0), value)


def peak_ratios(small: list[dict[str, float]], large: list[dict[str, float]]
                ) -> dict[str, float]:
    """Larger / smaller input, from each one's repeated runs: ratios of the peak RSS, of the
    growth above the RSS before the work, and of the sampled peak heap.

    Each figure is the smallest over an input's runs: what varies between runs
    of the same work (the allocator's state, a transient) only adds memory.
    """
    def least(runs: list[dict[str, float]], key: str) -> float:
        return min(r.get(key, math.nan) for r in runs)

    def growth(runs: list[dict[str, float]]) -> float:
        return min(r["peak_rss"] - r["rss_before"] for r in runs)

    out = {"peak_rss": least(large, "peak_rss") / least(small, "peak_rss")}
    if growth(small) > 0:
        out["growth"] = growth(large) / growth(small)
    if least(small, "anon") > 0:
        out["anon"] = least(large, "anon") / least(small, "anon")
    return out


#: What the memory columns of a results table mean.
MEMORY_COLUMNS = (
    "'before': resident size after imports and setup, when the measured work starts; "
    "'peak RSS': `ru_maxrss` at the end (the workers are started through a small launcher, "
    "as Linux carries the peak of the address space a process replaces at `exec` into "
    "`ru_maxrss`; 'VmHWM', the kernel's peak of the worker's own address space, checks it); "
    "'heap' and 'file': the largest anonymous and file-backed resident sizes sampled every "
    "20 ms during the work (file pages are mapped cache files and libraries, which the kernel "
    "can drop and reread); 'heap over the loop': the anonymous resident size after 1/4, 1/2, "
    "3/4 and all of the work's loop (training steps, chain blocks)."
)
MEMORY_HEADER = ("before (MiB) | peak RSS (MiB) | VmHWM (MiB) | heap (MiB) | file (MiB) "
                 "| heap over the loop (MiB) | time (s) |")


def memory_cells(r: dict[str, Any]) -> str:
    """The cells of :data:`MEMORY_HEADER` for one worker's result."""
    loop = " / ".join(f"{v:.0f}" for v in r.get("heap_over_loop", [])) or "-"
    return (f"{r['rss_before']:.0f} | {r['peak_rss']:.0f} | {r.get('vm_hwm', math.nan):.0f} | "
            f"{r.get('anon', math.nan):.0f} | {r.get('file', math.nan):.0f} | {loop} | "
            f"{r['seconds']:.1f} |")


#: Starts its arguments as a child process and exits with its status (see fresh_process).
_LAUNCHER = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"


def fresh_process(script: Path, worker: str, options: dict[str, Any], timeout: float = 900.0
                  ) -> dict[str, Any]:
    """Run ``python script --worker worker 'options as JSON'`` in a fresh interpreter.

    The worker prints one JSON object as its last line of standard output; that
    object is returned. Threads are limited to one (``OMP_NUM_THREADS=1``).

    The worker is started through a small launcher process: on Linux a process
    keeps, in its ``ru_maxrss``, the peak of the address space it replaced at
    ``exec``, so a worker started directly by this (large) process would report
    at least this process's own peak. The launcher's peak is about 10 MiB.

    Raises
    ------
    RuntimeError
        If the worker fails; the message holds the end of its standard error.
    """
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [sys.executable, str(script), "--worker", worker, json.dumps(options)]
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, *command], capture_output=True,
                          text=True, env=env, timeout=timeout, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{script.name} worker {worker!r} with {options} failed (exit "
                           f"{done.returncode}):\n{done.stderr[-3000:]}")
    return dict(json.loads(lines[-1]))


def write_results(folder: Path, name: str, report: dict[str, Any], text: str) -> None:
    """Write ``<folder>/<name>.json`` (every figure) and ``<name>.md`` (tables), atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    for suffix, content in ((".json", json.dumps(report, indent=2) + "\n"), (".md", text)):
        with atomic_write(folder / f"{name}{suffix}") as tmp:
            tmp.write_text(content)
