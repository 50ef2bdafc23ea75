"""Memory of one engine on one model, measured in a fresh process.

Run by run.py as ``python bench/_memory.py ENGINE MODEL ONNX FEEDS.npz RUNS THREADS``; prints
one JSON object. What it measures (all in MiB, Linux):

- ``session_mib``: resident set size (RSS, /proc/self/statm) after creating the session (for
  torch: building the module) minus RSS just before: weights plus the engine's structures.
- ``create_peak_mib``: peak RSS during session creation minus RSS before (loading may hold
  the protobuf and the arrays at once).
- ``run_peak_mib``: peak RSS over ``RUNS`` inferences minus RSS before the first one: the
  transient working memory of a run (activations, im2col buffers, arenas), as the operating
  system sees it.

Peaks are the kernel's high-water mark ``VmHWM`` (/proc/self/status), reset with
``/proc/self/clear_refs`` before each phase. Not ``getrusage().ru_maxrss``: Linux carries
that over from the parent across fork and exec, so a child of a big process starts with
the parent's peak.
- ``tracemalloc_peak_mib`` (ferry only): peak of Python/numpy allocations traced by
  ``tracemalloc`` during one more run, excluding what was allocated before it: the
  activations ferry holds at its worst point (numpy reports its buffers to tracemalloc).

A fresh process per (engine, model) keeps one engine's high-water mark from hiding another's.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time


def rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        resident = int(handle.read().split()[1])
    return resident * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def main(engine: str, model: str, path: str, feeds_path: str, runs: int, threads: int) -> dict:
    import numpy as np

    feeds = dict(np.load(feeds_path))
    if engine == "ferry":
        from threadpoolctl import threadpool_limits

        import ferry

        threadpool_limits(threads, user_api="blas")
        ferry.InferenceSession  # noqa: B018 - import the runtime before the baseline

        def create():
            return ferry.InferenceSession(path)

        def run(session):
            return session.run(None, feeds)
    elif engine == "onnxruntime":
        import onnxruntime

        def create():
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])

        def run(session):
            return session.run(None, feeds)
    elif engine == "torch":
        import torch
        from _models import build

        torch.set_num_threads(threads)
        inputs = tuple(torch.from_numpy(feeds[k]) for k in feeds)

        def create():
            return build(model).module

        def run(module):
            with torch.no_grad():
                return module(*inputs)
    else:
        raise SystemExit(f"unknown engine {engine!r}")

    base = rss_mib()
    resettable = reset_peak()
    start = time.perf_counter()
    session = create()
    created = time.perf_counter() - start
    create_peak = peak_rss_mib()
    after_create = rss_mib()
    reset_peak()
    for _ in range(runs):
        out = run(session)
        del out
    result = {
        "engine": engine,
        "model": model,
        "batch": int(next(iter(feeds.values())).shape[0]),
        "create_s": created,
        "session_mib": after_create - base,
        "create_peak_mib": create_peak - base,
        "run_peak_mib": peak_rss_mib() - after_create,
        "peak_reset": resettable,
    }
    if engine == "ferry":
        import tracemalloc

        tracemalloc.start()
        out = run(session)
        del out
        result["tracemalloc_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return result


if __name__ == "__main__":
    engine, model, path, feeds_path, runs, threads = sys.argv[1:7]
    print(json.dumps(main(engine, model, path, feeds_path, int(runs), int(threads))))
