"""Timing helpers: interleaved round-robin latency, session creation, environment facts."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

# Fast calls are timed as the mean of ``repeat`` back-to-back calls so that one sample lasts
# at least this long (timer resolution and scheduling jitter dominate sub-millisecond calls).
MIN_SAMPLE_SECONDS = 0.005
# Engines whose first call takes longer than this are warmed up with that call only.
SLOW_CALL_SECONDS = 1.0


@dataclass
class Engine:
    """One thing to time: ``call()`` runs one inference."""

    label: str
    call: Callable[[], object]
    repeat: int = 1
    times: list[float] = field(default_factory=list)  # seconds per call, one per sample
    settles: list[float] = field(default_factory=list)  # seconds its worker threads kept spinning
    error: str | None = None
    last: object = None  # the output of the last warm-up call (checked against torch)

    def summary(self) -> dict[str, object]:
        if self.error is not None:
            return {"error": self.error}
        t = np.asarray(self.times)
        return {
            "median_ms": float(np.median(t) * 1e3),
            "p90_ms": float(np.percentile(t, 90) * 1e3),
            "min_ms": float(t.min() * 1e3),
            "samples": len(t),
            "calls_per_sample": self.repeat,
            "settle_ms": float(np.median(self.settles) * 1e3) if self.settles else None,
        }


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def _own_cpu() -> float:
    """CPU seconds used by this process (all threads) so far."""
    times = os.times()
    return times.user + times.system


class Background:
    """How busy the machine is with *other* processes, sampled while this one sleeps.

    ``sleep`` sleeps and books the CPU ticks spent meanwhile, minus this process's own CPU
    time (worker threads still spinning after a call count as ours, and are booked
    separately as ``own_cores``). Reported in cores (0 to the CPU count)."""

    def __init__(self) -> None:
        self.hz = os.sysconf("SC_CLK_TCK")
        self.cpus = os.cpu_count() or 1
        self.other = self.own = self.seconds = 0.0

    def sleep(self, seconds: float) -> None:
        busy0, _ = _cpu_ticks()
        own0, wall0 = _own_cpu(), time.perf_counter()
        time.sleep(seconds)
        busy1, _ = _cpu_ticks()
        own = _own_cpu() - own0
        self.seconds += time.perf_counter() - wall0
        self.own += own
        self.other += max(0.0, (busy1 - busy0) / self.hz - own)

    def settle(self, min_gap: float, cap: float = 0.5, step: float = 0.01) -> float:
        """Sleep at least ``min_gap`` seconds and until this process's worker threads have
        stopped spinning (a ``step`` during which it used under 20% of a core), at most
        ``cap`` seconds. Returns the time slept."""
        start = time.perf_counter()
        while True:
            own = self.own
            self.sleep(step)
            elapsed = time.perf_counter() - start
            if (elapsed >= min_gap and self.own - own <= 0.2 * step) or elapsed >= cap:
                return elapsed

    @property
    def other_cores(self) -> float | None:
        return self.other / self.seconds if self.seconds else None

    @property
    def own_cores(self) -> float | None:
        return self.own / self.seconds if self.seconds else None


def wait_for_quiet(threshold: float, max_wait: float) -> dict[str, float]:
    """Sample other processes' CPU use for 1 s; while above ``threshold`` cores, wait (up to
    ``max_wait`` seconds in all). Returns what was seen and how long it waited."""
    start = time.perf_counter()
    while True:
        probe = Background()
        probe.sleep(1.0)
        busy = probe.other_cores or 0.0
        waited = time.perf_counter() - start
        if busy <= threshold or waited >= max_wait:
            return {"other_cores": busy, "waited_s": waited}
        time.sleep(min(4.0, max(0.0, max_wait - waited)))


def _once(engine: Engine) -> float:
    start = time.perf_counter()
    for _ in range(engine.repeat):
        engine.call()
    return (time.perf_counter() - start) / engine.repeat


def warm_up(engines: list[Engine], calls: int) -> None:
    """Untimed calls (first-call allocations, lazy initialisation, caches), then calibrate
    how many calls one sample needs. An engine whose call raises is marked and skipped."""
    for engine in engines:
        try:
            durations = []
            for _ in range(max(calls, 1)):
                start = time.perf_counter()
                engine.last = engine.call()
                durations.append(time.perf_counter() - start)
                if durations[-1] > SLOW_CALL_SECONDS:
                    break  # one call is warm-up enough for a call this long
        except Exception as error:  # noqa: BLE001 - reported in the table
            engine.error = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
            continue
        best = min(durations)
        engine.repeat = max(1, min(1000, int(np.ceil(MIN_SAMPLE_SECONDS / max(best, 1e-7)))))


def round_robin(engines: list[Engine], runs: int, min_runs: int, budget: float, gap: float,
                background: Background | None = None, cap: float = 0.5) -> float:
    """Time ``runs`` rounds; each round calls every engine once, the starting engine rotating
    from round to round. Stops early (after ``min_runs`` rounds) once ``budget`` seconds
    have passed.

    After every call the harness pauses at least ``gap`` seconds and until this process's
    worker threads (OpenBLAS, OpenMP, onnxruntime) have stopped spinning (at most ``cap``
    seconds): threads still spinning after one engine's call would slow the next engine down.
    ``background`` samples the machine's load during those pauses. Returns the wall time."""
    background = background or Background()
    live = [e for e in engines if e.error is None]
    background.settle(gap, cap)
    start = time.perf_counter()
    for index in range(runs):
        shift = index % len(live) if live else 0
        for engine in live[shift:] + live[:shift]:
            engine.times.append(_once(engine))
            if gap:
                engine.settles.append(background.settle(gap, cap))
        if index + 1 >= min_runs and time.perf_counter() - start > budget:
            break
    return time.perf_counter() - start


def time_creation(make: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Median seconds to create a session (each attempt a fresh one); returns the last."""
    times, obj = [], None
    for _ in range(repeats):
        obj = None
        start = time.perf_counter()
        obj = make()
        times.append(time.perf_counter() - start)
    return statistics.median(times), obj


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def _git_state() -> str:
    """The checkout's commit and how many files under ferry/ differ from it (others edit in
    parallel, so a run measures the working tree as it was)."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "ferry"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"commit {head} with {len(dirty)} changed or new path(s) under ferry/"


def _native_state() -> str:
    """Whether ferry's optional compiled kernels are built and in use."""
    from ferry.runtime.kernels import native_conv

    if not native_conv.built():
        return "not built (numpy algorithms only)"
    return "built, in use" if native_conv.available() else "built, turned off (FERRY_NATIVE_KERNELS=0)"


def environment(threads: int) -> dict[str, object]:
    """Versions, CPU, BLAS pools (threadpoolctl) and the OpenBLAS variables we saw."""
    import numpy
    import onnx
    import onnxruntime
    import torch
    from threadpoolctl import threadpool_info

    import ferry

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    pools = [
        {k: info.get(k) for k in ("user_api", "internal_api", "prefix", "version", "num_threads",
                                  "threading_layer", "architecture", "filepath")}
        for info in threadpool_info()
    ]
    return {
        "ferry_source": _git_state(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "versions": {
            "ferry": ferry.__version__, "numpy": numpy.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "torch": torch.__version__,
        },
        "threads": threads,
        "native_kernels": _native_state(),
        "torch_threads": torch.get_num_threads(),
        "threadpools": pools,
        "openblas_env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                        "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
        "unset_by_wrapper": os.environ.get("FERRY_BENCH_UNSET", ""),
    }
