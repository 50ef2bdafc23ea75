"""Per-node profile of ferry's runtime: where a ``session.run`` spends its time.

The session's compiled plan (``ferry.runtime.plan.GraphPlan``) is a list of ``Step``s that
``GraphPlan.run`` executes in order. To profile without touching ferry, the bench swaps the
session's plan for a copy whose steps call a timing wrapper around each kernel; the plan
itself (and its ``run`` loop: argument lookup, result storage, freeing) is unchanged. Time
not spent inside kernels (``run`` wall time minus the sum of kernel times) is reported as
per-step overhead: feed validation, the loop, ``_store`` and the wrapper itself.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict

import numpy as np


def profile_session(session, feeds: dict, runs: int = 3) -> dict[str, object]:
    """Run ``session`` ``runs`` times (plus one warm-up) with every step timed.

    Returns per-op-type totals (ms, share of kernel time, node count) and the slowest nodes,
    each from the median over the runs, and the time outside kernels (median over runs of
    each run's wall time minus the sum of its kernel times).
    """
    plan = session._plan  # noqa: SLF001 - measurement only, the original is restored
    original_steps = plan.steps
    per_step: list[list[float]] = [[] for _ in original_steps]
    shapes: dict[int, str] = {}

    def wrap(index: int, step):
        call = step.call

        def timed(*args, **kwargs):
            start = time.perf_counter()
            result = call(*args, **kwargs)
            per_step[index].append(time.perf_counter() - start)
            if index not in shapes:
                shapes[index] = " ".join(
                    "x".join(map(str, getattr(a, "shape", ()))) or "s" for a in args if a is not None
                )
            return result

        return timed

    plan.steps = [dataclasses.replace(s, call=wrap(i, s)) for i, s in enumerate(original_steps)]
    walls = []
    try:
        session.run(None, feeds)  # warm-up
        for timings in per_step:
            timings.clear()
        for _ in range(runs):
            start = time.perf_counter()
            session.run(None, feeds)
            walls.append(time.perf_counter() - start)
    finally:
        plan.steps = original_steps
    medians = [float(np.median(t)) if t else 0.0 for t in per_step]
    kernel_total = sum(medians)
    wall = float(np.median(walls))
    # outside-kernel time run by run (each run's wall minus its own kernel times), then median
    per_run_kernels = [sum(t[r] for t in per_step if len(t) > r) for r in range(runs)]
    overhead = float(np.median([w - k for w, k in zip(walls, per_run_kernels)]))
    by_op: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for step, ms in zip(original_steps, medians):
        by_op[step.node.op_type][0] += ms
        by_op[step.node.op_type][1] += 1
    ops = sorted(by_op.items(), key=lambda kv: -kv[1][0])
    nodes = sorted(range(len(original_steps)), key=lambda i: -medians[i])[:8]
    return {
        "runs": runs,
        "wall_ms": wall * 1e3,
        "kernel_ms": kernel_total * 1e3,
        "overhead_ms": overhead * 1e3,
        "steps": len(original_steps),
        "ops": [
            {"op": op, "ms": t * 1e3, "share": t / kernel_total if kernel_total else 0.0, "count": n}
            for op, (t, n) in ops
        ],
        "top_nodes": [
            {
                "name": original_steps[i].node.name or f"#{i}",
                "op": original_steps[i].node.op_type,
                "ms": medians[i] * 1e3,
                "inputs": shapes.get(i, ""),
            }
            for i in nodes
        ],
        "nodes": [  # every step, in plan order (JSON only)
            {"name": step.node.name, "op": step.node.op_type, "ms": medians[i] * 1e3,
             "inputs": shapes.get(i, "")}
            for i, step in enumerate(original_steps)
        ],
    }


def op_histogram(model) -> dict[str, int]:
    """Node count per op type of a ferry Model's main graph."""
    counts: dict[str, int] = defaultdict(int)
    for node in model.graph:
        counts[node.op_type] += 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))
