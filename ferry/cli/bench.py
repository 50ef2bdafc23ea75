"""``ferry bench``: latency percentiles and throughput, optionally beside onnxruntime."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from ferry.cli.commands import _pairs, load_inputs, random_inputs
from ferry.cli.progress import Progress
from ferry.errors import InvalidArgument

__all__ = ["add_commands", "measure"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="measure a model's latency (p50/p90/p99) and throughput")
    bench.add_argument("model", help="path of an .onnx file")
    bench.add_argument("--runs", type=int, default=50, help="timed runs (default 50)")
    bench.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    bench.add_argument("--threads", type=int, help="BLAS threads for ferry and onnxruntime")
    bench.add_argument("--compare", choices=["onnxruntime"], help="also time onnxruntime")
    bench.add_argument("--profile", action="store_true", help="also print the nodes that took longest")
    bench.add_argument("--input", action="append", default=[], metavar="NAME=FILE")
    bench.add_argument("--dim", action="append", default=[], metavar="NAME=VALUE",
                       help="size of a symbolic dimension for the random inputs")
    bench.set_defaults(run=run_bench)


def measure(label: str, run: Callable[[], object], runs: int, warmup: int) -> np.ndarray:
    """Seconds per call of ``run`` over ``runs`` timed calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run()
    times = np.empty(runs)
    with Progress(label, runs) as bar:
        for index in range(runs):
            start = time.perf_counter()
            run()
            times[index] = time.perf_counter() - start
            bar.advance(suffix=f"{times[index] * 1e3:8.2f} ms")
    return times


def _report(label: str, times: np.ndarray) -> str:
    p50, p90, p99 = np.percentile(times, [50, 90, 99]) * 1e3
    return (f"{label:<12} p50 {p50:9.3f} ms   p90 {p90:9.3f} ms   p99 {p99:9.3f} ms   "
            f"{1 / np.median(times):10.1f} runs/s")


def _limit_threads(threads: int | None):
    if threads is None:
        return None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise InvalidArgument("--threads needs the threadpoolctl package (pip install threadpoolctl)") from None
    return threadpool_limits(limits=threads)


def run_bench(args: argparse.Namespace) -> int:
    from ferry.format import load
    from ferry.runtime import InferenceSession

    if args.runs < 1 or args.warmup < 0:
        raise InvalidArgument("--runs must be at least 1 and --warmup at least 0")
    model = load(args.model)
    feeds = load_inputs(model, args.input)
    dims = {k: int(v) for k, v in _pairs(args.dim, "--dim").items()}
    feeds.update(random_inputs(model, dims, 0, skip=feeds))
    limit = _limit_threads(args.threads)
    try:
        session = InferenceSession(model, enable_profiling=args.profile)
        results = [("ferry", measure("ferry", lambda: session.run(None, feeds), args.runs, args.warmup))]
        if args.compare == "onnxruntime":
            results.append(("onnxruntime", _time_onnxruntime(args, feeds)))
    finally:
        if limit is not None:
            limit.unregister()
    for label, times in results:
        print(_report(label, times))
    if len(results) == 2:
        ratio = np.median(results[0][1]) / np.median(results[1][1])
        print(f"ferry / onnxruntime (p50): {ratio:.2f}")
    if args.profile:
        _print_profile(session.profiler, args.runs + args.warmup)
    return 0


def _print_profile(profiler, runs: int) -> None:
    top = profiler.top_nodes(15)
    total = sum(e["dur"] for e in profiler.events) / 1e3 / runs
    print(f"top nodes (mean per run; all nodes {total:.3f} ms):")
    for name, op_type, milliseconds, calls in top:
        per_run = milliseconds / max(calls, 1)
        print(f"  {per_run:9.3f} ms  {100 * per_run / total if total else 0:5.1f}%  {op_type:<20} {name}")


def _time_onnxruntime(args: argparse.Namespace, feeds) -> np.ndarray:
    try:
        import onnxruntime
    except ImportError:
        raise InvalidArgument("--compare onnxruntime: onnxruntime is not installed") from None
    options = onnxruntime.SessionOptions()
    if args.threads:
        options.intra_op_num_threads = args.threads
    session = onnxruntime.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    return measure("onnxruntime", lambda: session.run(None, feeds), args.runs, args.warmup)
