"""Per-node timing: what ``enable_profiling`` records and how it is reported.

The trace file follows onnxruntime's: a JSON list of Chrome trace events (``"ph": "X"``,
times in microseconds), one per node execution, loadable in chrome://tracing or Perfetto.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field

__all__ = ["Profiler"]


@dataclass
class Profiler:
    """Collects (node, op type, start, duration) of every step the session runs."""

    prefix: str = "ferry_profile"
    origin: float = field(default_factory=time.perf_counter)
    events: list[dict] = field(default_factory=list)

    def record(self, name: str, op_type: str, start: float, end: float, run: int) -> None:
        self.events.append({
            "cat": "Node",
            "name": name,
            "ph": "X",
            "ts": round((start - self.origin) * 1e6, 3),
            "dur": round((end - start) * 1e6, 3),
            "pid": os.getpid(),
            "tid": 0,
            "args": {"op_name": op_type, "run": run},
        })

    def write(self) -> str:
        """Write the Chrome trace; returns its path."""
        path = f"{self.prefix}_{time.strftime('%Y-%m-%d_%H-%M-%S')}.json"
        with open(path, "w") as handle:
            json.dump(self.events, handle)
        return path

    def top_nodes(self, count: int = 10) -> list[tuple[str, str, float, int]]:
        """(node, op type, total ms, calls) for the nodes that took longest in all."""
        totals: dict[tuple[str, str], list[float]] = defaultdict(list)
        for event in self.events:
            totals[(event["name"], event["args"]["op_name"])].append(event["dur"])
        ranked = sorted(totals.items(), key=lambda item: -sum(item[1]))[:count]
        return [(name, op, sum(durations) / 1e3, len(durations)) for (name, op), durations in ranked]
