"""``ferry info``, ``check``, ``print`` and ``run``."""

from __future__ import annotations

import argparse
import collections
import os
import pathlib

import numpy as np

from ferry.errors import InvalidArgument
from ferry.ir import DataType, Model, TensorType

__all__ = ["add_commands", "load_inputs", "random_inputs"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    info = sub.add_parser("info", help="summarize a model: opsets, inputs, outputs, operators, weights")
    info.add_argument("model", help="path of an .onnx file")
    info.set_defaults(run=run_info)

    check = sub.add_parser("check", help="validate a model; exit status 1 if it is invalid")
    check.add_argument("model", help="path of an .onnx file")
    check.set_defaults(run=run_check)

    show = sub.add_parser("print", help="print a model as text, one line per node")
    show.add_argument("model", help="path of an .onnx file")
    show.set_defaults(run=run_print)

    optimize = sub.add_parser("optimize", help="rewrite a model with ferry's verified graph passes")
    optimize.add_argument("model", help="the .onnx file to optimize")
    optimize.add_argument("output", help="where to write the optimized model")
    optimize.add_argument("--level", type=int, choices=[0, 1], default=1, help="0: none, 1: all passes")
    optimize.set_defaults(run=run_optimize)

    run = sub.add_parser("run", help="run a model on inputs from files or random data")
    run.add_argument("model", help="path of an .onnx file")
    run.add_argument("--input", action="append", default=[], metavar="NAME=FILE",
                     help="an input from a .npy or .pb (TensorProto) file; repeat per input")
    run.add_argument("--random", action="store_true",
                     help="make the inputs not given with --input from their declared shapes")
    run.add_argument("--dim", action="append", default=[], metavar="NAME=VALUE",
                     help="the size of a symbolic dimension, for --random")
    run.add_argument("--seed", type=int, default=0, help="seed of --random (default 0)")
    run.add_argument("--output-dir", metavar="DIR", help="write each output to DIR/NAME.npy")
    run.set_defaults(run=run_run)


def _load(path: str) -> Model:
    from ferry.format import load

    return load(path)


def run_info(args: argparse.Namespace) -> int:
    model = _load(args.model)
    graph = model.graph
    print(f"model: {args.model}")
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p) or "-"
    print(f"ir_version: {model.ir_version}    producer: {producer}")
    print("opsets: " + ", ".join(f"{d or 'ai.onnx'} {v}" for d, v in model.opset_imports.items()))
    print("inputs:")
    for value in graph.inputs:
        if value.name not in graph.initializers:
            print(f"  {value.name}: {value.type}")
    print("outputs:")
    for value in graph.outputs:
        print(f"  {value.name}: {value.type}")
    counts = collections.Counter(node.op_type for node in graph.all_nodes())
    print(f"nodes: {sum(counts.values())}")
    for op_type, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {op_type:<24} {count}")
    tensors = [v.const_value for v in graph.initializers.values()]
    print(f"parameters: {sum(t.size for t in tensors):,} values in {len(tensors)} initializers, "
          f"{_bytes(sum(t.nbytes for t in tensors))}")
    files = sorted({t.location for t in tensors if hasattr(t, "location")})
    print("external data: " + (", ".join(files) if files else "none"))
    return 0


def _bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def run_check(args: argparse.Namespace) -> int:
    from ferry.checker import check_model
    from ferry.errors import CheckError

    model = _load(args.model)
    try:
        notes = check_model(model)
    except CheckError as error:
        for diagnostic in error.diagnostics:
            print(diagnostic)
        errors = sum(1 for d in error.diagnostics if d.severity == "error")
        print(f"{args.model}: invalid ({errors} error{'s' if errors != 1 else ''})")
        return 1
    for note in notes:
        print(note)
    print(f"{args.model}: valid")
    return 0


def run_optimize(args: argparse.Namespace) -> int:
    from ferry.checker import check_model
    from ferry.format import save
    from ferry.passes import optimize

    model = _load(args.model)
    before = sum(1 for _ in model.graph.all_nodes())
    stats: dict[str, int] = {}
    optimize(model, level=args.level, stats=stats)
    check_model(model)
    save(model, args.output)
    after = sum(1 for _ in model.graph.all_nodes())
    print(f"{args.model}: {before} nodes -> {args.output}: {after} nodes")
    for name, count in sorted(stats.items()):
        if count:
            print(f"  {name}: {count} rewrites")
    return 0


def run_print(args: argparse.Namespace) -> int:
    from ferry.printer import to_text

    print(to_text(_load(args.model)))
    return 0


def _pairs(items: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise InvalidArgument(f"{what} {item!r}: expected NAME=VALUE")
        pairs[name] = value
    return pairs


def load_inputs(model: Model, given: list[str]) -> dict[str, np.ndarray]:
    """Arrays for ``--input NAME=FILE`` arguments (.npy or a TensorProto .pb)."""
    from ferry.format import load_tensor

    names = {v.name for v in model.graph.inputs}
    feeds = {}
    for name, path in _pairs(given, "--input").items():
        if name not in names:
            raise InvalidArgument(f"--input {name}: the model has no input {name!r}; its inputs are "
                                  f"{sorted(n for n in names if n not in model.graph.initializers)}")
        if not os.path.exists(path):
            raise InvalidArgument(f"--input {name}: no such file {path!r}")
        suffix = pathlib.Path(path).suffix
        feeds[name] = np.load(path, allow_pickle=False) if suffix == ".npy" else load_tensor(path)
    return feeds


def random_inputs(model: Model, dims: dict[str, int], seed: int, skip=()) -> dict[str, np.ndarray]:
    """Random arrays of the declared types and shapes (symbolic dims from ``dims``)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in model.graph.inputs:
        if value.name in model.graph.initializers or value.name in skip:
            continue
        if not isinstance(value.type, TensorType) or value.type.shape is None or value.dtype is None:
            raise InvalidArgument(f"input {value.name!r} has no declared tensor shape; give it with --input")
        shape = []
        for axis, dim in enumerate(value.type.shape):
            if isinstance(dim, int):
                shape.append(dim)
            elif isinstance(dim, str) and dim in dims:
                shape.append(dims[dim])
            else:
                raise InvalidArgument(
                    f"input {value.name!r}: dimension {axis} is {dim or 'unknown'!s}; give its size "
                    f"with --dim {dim or 'NAME'}=VALUE"
                )
        feeds[value.name] = _random_array(rng, value.dtype, shape)
    return feeds


def _random_array(rng: np.random.Generator, dtype: DataType, shape: list[int]) -> np.ndarray:
    if dtype == DataType.BOOL:
        return rng.integers(0, 2, size=shape).astype(bool)
    numpy_dtype = dtype.numpy
    if numpy_dtype.kind in "iu":
        return rng.integers(0, 10, size=shape).astype(numpy_dtype)
    if numpy_dtype.kind == "f":
        return rng.standard_normal(size=shape).astype(numpy_dtype)
    raise InvalidArgument(f"--random cannot make {dtype.name.lower()} inputs")


def run_run(args: argparse.Namespace) -> int:
    from ferry.runtime import InferenceSession

    model = _load(args.model)
    feeds = load_inputs(model, args.input)
    if args.random:
        dims = {k: int(v) for k, v in _pairs(args.dim, "--dim").items()}
        feeds.update(random_inputs(model, dims, args.seed, skip=feeds))
    session = InferenceSession(model)
    outputs = session.run(None, feeds)
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
    for info, value in zip(session.get_outputs(), outputs):
        print(_summary(info.name, value))
        if args.output_dir:
            np.save(os.path.join(args.output_dir, _file_name(info.name) + ".npy"), value, allow_pickle=False)
    return 0


def _file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _summary(name: str, value) -> str:
    if not isinstance(value, np.ndarray):
        return f"{name}: {type(value).__name__}"
    head = f"{name}: {value.dtype} {list(value.shape)}"
    if value.size and value.dtype.kind in "fiub":
        data = value.astype(np.float64)
        return f"{head} min {data.min():.6g} max {data.max():.6g} mean {data.mean():.6g}"
    return head
