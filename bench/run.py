"""ferry's benchmark harness: ferry vs onnxruntime vs torch eager on five models.

Run by hand (not by CI), through the wrapper that unsets the OpenBLAS overrides::

    bench/run.sh --models mlp,sr,resnet50,bert,lstm --batch 1,8 --json bench.json

or ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/run.py ...``.
For each model (built in code, random weights, fixed seed) it exports the model with
``torch.onnx.export`` (TorchScript exporter, ``dynamo=False``, opset 17) and with
``ferry.export``, both with a dynamic batch axis, then times, interleaved round-robin after a
warm-up: ferry.InferenceSession and onnxruntime on each file, and torch eager. It also
measures session creation, memory (a fresh process per engine, see _memory.py), a per-node
profile of ferry's plan (see _profile.py) and onnx's ReferenceEvaluator on ResNet-50 and
super-resolution. The report (markdown) goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))  # ferry from the checkout when not installed

import _profile  # noqa: E402
import _report  # noqa: E402
from _models import MODELS, Spec, build  # noqa: E402
from _timing import (  # noqa: E402
    Background,
    Engine,
    environment,
    load_average,
    round_robin,
    time_creation,
    wait_for_quiet,
    warm_up,
)

TORCH_OPSET = 17
REFERENCE_MODELS = ("sr", "resnet50")
PROFILE_MODELS = ("resnet50", "bert", "lstm", "sr", "mlp")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma list of {','.join(MODELS)}")
    parser.add_argument("--runs", type=int, default=20, help="timed rounds per (model, batch) (default 20)")
    parser.add_argument("--batch", default="1,8", help="comma list of batch sizes (default 1,8)")
    parser.add_argument("--quick", action="store_true",
                        help="few runs, short budgets, one repeat of everything (a smoke run)")
    parser.add_argument("--json", metavar="PATH", help="also write every number as JSON")
    parser.add_argument("--threads", type=int, default=2, help="threads for every engine (default 2)")
    parser.add_argument("--budget", type=float, default=40.0,
                        help="seconds per (model, batch) after which timing stops once --min-runs "
                             "rounds are done (default 40)")
    parser.add_argument("--min-runs", type=int, default=5, help="rounds always timed (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per engine (default 2)")
    parser.add_argument("--gap", type=float, default=0.02,
                        help="pause after each timed call, in seconds (default 0.02); the pause lasts "
                             "until this process's worker threads stop spinning, at most 0.5 s")
    parser.add_argument("--quiet", type=float, default=0.5,
                        help="before timing each (model, batch), wait while other processes use more "
                             "than this many cores (default 0.5) ...")
    parser.add_argument("--max-wait", type=float, default=30.0,
                        help="... but at most this many seconds (default 30; 0: never wait)")
    parser.add_argument("--workdir", help="where the .onnx files go (default: a temporary directory)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--no-reference", action="store_true", help="skip onnx's ReferenceEvaluator")
    parser.add_argument("--no-profile", action="store_true", help="skip the per-node profiles")
    parser.add_argument("--profile-batch", default="1",
                        help="comma list of batch sizes to profile ferry's plan at (default 1)")
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    args.batch = [int(b) for b in args.batch.split(",")]
    args.profile_batch = [int(b) for b in args.profile_batch.split(",")]
    args.repeats, args.ref_runs, args.memory_runs, args.profile_runs = 3, 3, 2, 3
    if args.quick:
        args.runs, args.min_runs, args.budget, args.warmup = min(args.runs, 5), 3, 8.0, 1
        args.repeats, args.ref_runs, args.memory_runs, args.profile_runs = 1, 1, 1, 1
    return args


# -- export -------------------------------------------------------------------------------
def export_torch(spec: Spec, path: Path) -> dict[str, object]:
    import torch

    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.onnx.export(spec.module, spec.make_inputs(2), str(path), input_names=spec.input_names,
                          output_names=spec.output_names, dynamic_axes=spec.dynamic_axes,
                          opset_version=TORCH_OPSET, dynamo=False)
    return {"seconds": time.perf_counter() - start, "warnings": len(caught), "path": str(path)}


def export_ferry(spec: Spec, path: Path, batches: list[int]) -> dict[str, object]:
    """ferry.export with a dynamic batch (check=True, the default). If the tracer fails, the
    error is recorded and a static-shape export per batch (check=False) is tried, so ferry's
    runtime can still be timed on a ferry-exported file."""
    import ferry

    start = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            exported = ferry.export(spec.module, spec.make_inputs(2), str(path),
                                    input_names=spec.input_names, output_names=spec.output_names,
                                    dynamic_axes=spec.dynamic_axes)
        return {"seconds": time.perf_counter() - start, "warnings": len(caught),
                "max_difference": float(exported.max_difference),
                "paths": {b: str(path) for b in batches}, "static": False}
    except Exception as error:  # noqa: BLE001 - reported in the table
        message = f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
        where = _user_frame(error)
        log(f"  ferry.export failed: {message} {where}")
    result: dict[str, object] = {"error": message, "error_at": where,
                                 "seconds": time.perf_counter() - start, "static": True, "paths": {}}
    for batch in batches:
        static = path.with_name(f"{path.stem}.b{batch}.onnx")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ferry.export(spec.module, spec.make_inputs(batch), str(static),
                             input_names=spec.input_names, output_names=spec.output_names, check=False)
            result["paths"][batch] = str(static)
        except Exception as error:  # noqa: BLE001
            result.setdefault("static_errors", {})[batch] = f"{type(error).__name__}: {str(error)[:160]}"
    return result


def _user_frame(error: BaseException) -> str:
    """The innermost frame outside torch and ferry: where in the model the tracer gave up."""
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    for frame in reversed(frames):
        if "/torch/" not in frame.filename and "/ferry/" not in frame.filename:
            return f"({Path(frame.filename).name}:{frame.lineno} `{(frame.line or '').strip()[:80]}`)"
    return ""


# -- engines ------------------------------------------------------------------------------
def ferry_session(path: str, check: bool = True, optimize: bool = True):
    import ferry

    if optimize:
        return ferry.InferenceSession(path, check=check)
    from ferry.runtime import GraphOptimizationLevel, SessionOptions

    options = SessionOptions()
    options.graph_optimization_level = GraphOptimizationLevel.ORT_DISABLE_ALL
    return ferry.InferenceSession(path, options, check=check)


def ort_session(path: str, threads: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def creation_times(spec: Spec, files: dict[str, str | None], args) -> tuple[dict, dict]:
    """Session-creation medians (s) and the sessions, keyed like ``files``."""
    times: dict[str, object] = {}
    sessions: dict[str, object] = {}
    for key, path in files.items():
        if path is None:
            continue
        engine, _, _ = key.partition(":")
        try:
            if engine == "ferry":
                times[key], sessions[key] = time_creation(lambda p=path: ferry_session(p), args.repeats)
                if key == "ferry:torch":
                    times["ferry:torch:nocheck"], _ = time_creation(
                        lambda p=path: ferry_session(p, check=False), args.repeats)
                    try:
                        times["ferry:torch:noopt"], _ = time_creation(
                            lambda p=path: ferry_session(p, optimize=False), args.repeats)
                    except ImportError:  # a ferry without SessionOptions: it does not optimize
                        times["ferry:torch:noopt"] = None
            else:
                times[key], sessions[key] = time_creation(lambda p=path: ort_session(p, args.threads),
                                                          args.repeats)
        except Exception as error:  # noqa: BLE001
            times[key] = {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"}
    gc.collect()
    return times, sessions


def first_output(value) -> np.ndarray:
    import torch

    while isinstance(value, (list, tuple)):
        value = value[0]
    return value.detach().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def time_batch(spec: Spec, batch: int, sessions: dict, ferry_paths: dict, args) -> dict[str, object]:
    import torch

    feeds = spec.feeds(batch)
    inputs = spec.make_inputs(batch)

    def eager():
        with torch.no_grad():
            return spec.module(*inputs)

    engines: list[Engine] = []
    for key, label in (("ferry:torch", "ferry / torch.onnx file"), ("ferry:ferry", "ferry / ferry file"),
                       ("ort:torch", "onnxruntime / torch.onnx file"),
                       ("ort:ferry", "onnxruntime / ferry file")):
        session = sessions.get(key)
        if key.endswith(":ferry") and ferry_paths.get("static"):
            path = ferry_paths["paths"].get(batch)
            session = None
            if path is not None:
                session = ferry_session(path) if key.startswith("ferry") else ort_session(path, args.threads)
        if session is None:
            engine = Engine(label, lambda: None)
            engine.error = "no file" if key.endswith(":ferry") else "no session"
        else:
            engine = Engine(label, lambda s=session: s.run(None, feeds))
        engines.append(engine)
    engines.append(Engine("torch eager", eager))
    log(f"  batch {batch}: warm-up")
    warm_up(engines, args.warmup)
    reference = first_output(engines[-1].last)
    quiet = wait_for_quiet(args.quiet, args.max_wait)
    load_before = load_average()
    log(f"  batch {batch}: timing {len([e for e in engines if e.error is None])} engines, up to "
        f"{args.runs} rounds / {args.budget:.0f}s (others used {quiet['other_cores']:.2f} cores; "
        f"waited {quiet['waited_s']:.0f}s)")
    background = Background()
    wall = round_robin(engines, args.runs, args.min_runs, args.budget, args.gap, background)
    result: dict[str, object] = {"wall_s": wall, "load_before": load_before, "load_after": load_average(),
                                 "quiet_check": quiet, "other_cores": background.other_cores,
                                 "own_cores_in_pauses": background.own_cores, "engines": {}}
    for engine in engines:
        summary = engine.summary()
        if engine.error is None and engine.last is not None:
            out = first_output(engine.last)
            summary["max_abs_diff_vs_torch"] = float(np.max(np.abs(out - reference))) if out.shape == reference.shape else None
        result["engines"][engine.label] = summary
    return result


# -- memory, reference evaluator, profile -------------------------------------------------
def measure_memory(spec: Spec, batch: int, torch_file: str, workdir: Path, args) -> dict[str, object]:
    feeds_path = workdir / f"{spec.name}.b{batch}.npz"
    np.savez(feeds_path, **spec.feeds(batch))
    results: dict[str, object] = {"batch": batch}
    for engine in ("ferry", "onnxruntime", "torch"):
        command = [sys.executable, str(HERE / "_memory.py"), engine, spec.name, torch_file,
                   str(feeds_path), str(args.memory_runs), str(args.threads)]
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if done.returncode == 0:
            results[engine] = json.loads(done.stdout.strip().splitlines()[-1])
        else:
            results[engine] = {"error": done.stderr.strip().splitlines()[-1][:200] if done.stderr else "failed"}
    return results


def time_reference(spec: Spec, torch_file: str, args) -> dict[str, object]:
    from onnx.reference import ReferenceEvaluator

    feeds = spec.feeds(1)
    start = time.perf_counter()
    evaluator = ReferenceEvaluator(torch_file)
    created = time.perf_counter() - start
    times = []
    for _ in range(args.ref_runs):
        start = time.perf_counter()
        evaluator.run(None, feeds)
        times.append(time.perf_counter() - start)
    return {"create_s": created, "median_ms": float(np.median(times) * 1e3), "runs": len(times),
            "times_ms": [t * 1e3 for t in times]}


def run_model(name: str, args, workdir: Path) -> dict[str, object]:
    log(f"{name}: building")
    spec = build(name)
    record: dict[str, object] = {"title": spec.title, "batches": {}}
    torch_file = workdir / f"{name}.torch.onnx"
    record["torch_export"] = export_torch(spec, torch_file)
    log(f"{name}: torch.onnx.export {record['torch_export']['seconds']:.1f}s; ferry.export ...")
    record["ferry_export"] = ferry_info = export_ferry(spec, workdir / f"{name}.ferry.onnx", args.batch)
    log(f"{name}: ferry.export {ferry_info['seconds']:.1f}s")
    files = {"ferry:torch": str(torch_file), "ort:torch": str(torch_file),
             "ferry:ferry": None if ferry_info["static"] else ferry_info["paths"][args.batch[0]],
             "ort:ferry": None if ferry_info["static"] else ferry_info["paths"][args.batch[0]]}
    if ferry_info["static"] and ferry_info["paths"]:
        first = next(iter(ferry_info["paths"].values()))
        files.update({"ferry:ferry": first, "ort:ferry": first})  # creation time of a static file
    record["creation_s"], sessions = creation_times(spec, files, args)
    if ferry_info["static"]:
        sessions.pop("ferry:ferry", None)
        sessions.pop("ort:ferry", None)
    for batch in args.batch:
        record["batches"][batch] = time_batch(spec, batch, sessions, ferry_info, args)
    if not args.no_profile and name in PROFILE_MODELS and "ferry:torch" in sessions:
        record["profile"], record["ops"] = {}, {"torch": _profile.op_histogram(sessions["ferry:torch"].model)}
        for batch in args.profile_batch:
            log(f"{name}: profiling ferry's plan at batch {batch}")
            suffix = "" if batch == 1 else f"@{batch}"
            record["profile"]["torch" + suffix] = _profile.profile_session(
                sessions["ferry:torch"], spec.feeds(batch), args.profile_runs)
            ferry_file = ferry_info["paths"].get(batch)
            if ferry_file is not None:
                session = sessions.get("ferry:ferry") or ferry_session(ferry_file)
                record["profile"]["ferry" + suffix] = _profile.profile_session(
                    session, spec.feeds(batch), args.profile_runs)
                record["ops"]["ferry"] = _profile.op_histogram(session.model)
    sessions.clear()
    gc.collect()
    if not args.no_reference and name in REFERENCE_MODELS:
        log(f"{name}: onnx ReferenceEvaluator, batch 1, {args.ref_runs} run(s)")
        record["reference"] = time_reference(spec, str(torch_file), args)
    if not args.no_memory:
        log(f"{name}: memory (fresh process per engine, batch {max(args.batch)})")
        record["memory"] = measure_memory(spec, max(args.batch), str(torch_file), workdir, args)
    return record


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch
    from threadpoolctl import threadpool_limits

    from ferry.runtime.kernels import native_conv

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads, user_api="blas")
    native_conv.threads.set(args.threads)  # ferry's compiled kernels' own pool
    started = time.perf_counter()
    results: dict[str, object] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "settings": {k: getattr(args, k) for k in ("runs", "min_runs", "budget", "warmup", "gap", "threads",
                                                   "batch", "quick", "repeats", "ref_runs", "memory_runs",
                                                   "profile_runs", "profile_batch", "quiet", "max_wait")},
        "environment": environment(args.threads),
        "load_start": load_average(),
        "models": {},
    }
    if results["environment"]["unset_by_wrapper"]:
        log(f"OpenBLAS overrides unset for this run: {results['environment']['unset_by_wrapper']}")
    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as scratch:
        workdir = Path(args.workdir) if args.workdir else Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        for name in args.models:
            results["models"][name] = run_model(name, args, workdir)
    results["load_end"] = load_average()
    results["wall_s"] = time.perf_counter() - started
    log(f"done in {results['wall_s']:.0f}s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    print(_report.render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
