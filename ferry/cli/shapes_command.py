"""``ferry shapes MODEL [--explain VALUE] [--strict] [-o OUT]``: shape inference from the shell."""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterator

from ferry.errors import InvalidArgument
from ferry.ir import Graph, Model, TensorType, Value

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    shapes = sub.add_parser(
        "shapes", help="infer the element type and shape of every value (symbolic dims by name)"
    )
    shapes.add_argument("model", help="path of an .onnx file")
    shapes.add_argument("--explain", metavar="VALUE",
                        help="say where each dim of VALUE comes from, instead of listing all values")
    shapes.add_argument("--strict", action="store_true",
                        help="exit status 1 if inference finds conflicts (nothing is written)")
    shapes.add_argument("-o", "--output", metavar="OUT",
                        help="write the model with the inferred types saved as value_info")
    shapes.set_defaults(run=run_shapes)


def run_shapes(args: argparse.Namespace) -> int:
    from ferry.format import load, save
    from ferry.shapes import explain_shape, infer

    model = load(args.model)
    if args.explain is not None:
        _check_value_name(model, args.explain, args.model)
        print(explain_shape(model, args.explain))
        return 0
    result = infer(model)
    unknown = 0
    for line, complete in _listing(result.model):
        print(line)
        unknown += not complete
    print("diagnostics:" if result.diagnostics else "diagnostics: none")
    for diagnostic in result.diagnostics:
        print(f"  {diagnostic}")
    errors = len(result.errors)
    print(f"{args.model}: {unknown} value{'s' if unknown != 1 else ''} with unknown dims, "
          f"{errors} error{'s' if errors != 1 else ''}")
    if args.strict and errors:
        return 1
    if args.output:
        save(result.model, args.output)
        print(f"wrote {args.output}")
    return 0


def _check_value_name(model: Model, name: str, path: str) -> None:
    names = {value.name for graph in model.all_graphs() for value in graph.values()}
    if name not in names:
        close = difflib.get_close_matches(name, sorted(names), n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise InvalidArgument(f"--explain {name!r}: {path} has no value of that name{hint}")


def _listing(model: Model) -> Iterator[tuple[str, bool]]:
    """``name: type`` lines for every value but initializers, graph by graph, and whether
    the value's type is fully known."""
    yield f"graph {model.graph.name!r}:", True
    yield from _graph_lines(model.graph, "  ")
    for function in model.functions.values():
        yield f"function {function.domain}::{function.name}:", True
        yield from _graph_lines(function.graph, "  ")


def _graph_lines(graph: Graph, indent: str) -> Iterator[tuple[str, bool]]:
    for value in graph.values():
        if value.name not in graph.initializers:
            yield f"{indent}{_value_text(value)}", _complete(value)
    for node in graph:
        for name, attribute in node.attributes.items():
            subgraphs = attribute.value if isinstance(attribute.value, list) else [attribute.value]
            for subgraph in subgraphs:
                if isinstance(subgraph, Graph):
                    yield f"{indent}subgraph {name!r} of {node.describe()}:", True
                    yield from _graph_lines(subgraph, indent + "  ")


def _value_text(value: Value) -> str:
    return f"{value.name}: {value.type if value.type is not None else 'unknown type'}"


def _complete(value: Value) -> bool:
    type_ = value.type
    if not isinstance(type_, TensorType):
        return type_ is not None
    if type_.dtype is None or type_.shape is None:
        return False
    return all(d is not None and not (isinstance(d, str) and "unk__" in d) for d in type_.shape)
