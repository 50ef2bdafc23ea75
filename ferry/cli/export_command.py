"""``ferry export SCRIPT.py:FACTORY``: build a model from the user's file and trace it."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

from ferry.errors import InvalidArgument

__all__ = ["add_commands"]

_DTYPES = {"float32": "float32", "float": "float32", "float64": "float64", "int64": "int64",
           "int32": "int32", "bool": "bool", "float16": "float16"}


def add_commands(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser("export", help="export a PyTorch model from a Python file")
    export.add_argument("target", metavar="SCRIPT.py:FACTORY",
                        help="a Python file and a function in it that returns the model")
    export.add_argument("--input-shape", action="append", default=[], required=True,
                        metavar="NAME=1x3x224x224[:dtype]",
                        help="an input's name, example shape and dtype (default float32)")
    export.add_argument("--dynamic", action="append", default=[], metavar="NAME:AXIS=DIM",
                        help="make an axis dynamic, e.g. x:0=batch")
    export.add_argument("--opset", type=int, help="target opset (default: the newest)")
    export.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    export.set_defaults(run=run_export)


def _factory(target: str):
    path, sep, name = target.rpartition(":")
    if not sep or not path or not name:
        raise InvalidArgument(f"{target!r}: expected SCRIPT.py:FACTORY")
    if not os.path.isfile(path):
        raise InvalidArgument(f"{path!r}: no such file")
    spec = importlib.util.spec_from_file_location("ferry_user_model", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    factory = getattr(module, name, None)
    if not callable(factory):
        raise InvalidArgument(f"{path!r} has no function {name!r}")
    return factory


def _example(spec: str):
    import torch

    name, sep, rest = spec.partition("=")
    shape_text, _, dtype_text = rest.partition(":")
    try:
        shape = [int(d) for d in shape_text.lower().split("x")]
    except ValueError:
        raise InvalidArgument(f"--input-shape {spec!r}: expected NAME=1x3x224x224[:dtype]") from None
    dtype = _DTYPES.get(dtype_text or "float32")
    if not sep or not name or dtype is None:
        raise InvalidArgument(f"--input-shape {spec!r}: expected NAME=1x3x224x224[:dtype]")
    dtype = getattr(torch, dtype)
    tensor = torch.randn(shape).to(dtype) if dtype.is_floating_point else torch.zeros(shape, dtype=dtype)
    return name, tensor


def _dynamic(items: list[str]) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {}
    for item in items:
        head, sep, dim = item.partition("=")
        name, colon, axis = head.partition(":")
        if not (sep and colon and name and dim and axis.isdigit()):
            raise InvalidArgument(f"--dynamic {item!r}: expected NAME:AXIS=DIM, e.g. x:0=batch")
        axes.setdefault(name, {})[int(axis)] = dim
    return axes


def run_export(args: argparse.Namespace) -> int:
    import ferry

    model = _factory(args.target)()
    examples = [_example(spec) for spec in args.input_shape]
    names = [name for name, _ in examples]
    dynamic = _dynamic(args.dynamic)
    unknown = sorted(set(dynamic) - set(names))
    if unknown:
        raise InvalidArgument(f"--dynamic names unknown inputs {unknown}; inputs are {names}")
    exported = ferry.export(
        model, tuple(t for _, t in examples), args.output, input_names=names,
        dynamic_axes=dynamic, opset_version=args.opset,
    )
    print(f"wrote {args.output}: {len(exported.graph)} nodes, opset {exported.opset}, "
          f"max difference vs torch {exported.max_difference:.3g}")
    for where in exported.specializations:
        print(f"specialized: {where}")
    return 0
