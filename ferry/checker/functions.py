"""Checks of model-local functions: each body is walked like a graph with the
function's own opset imports, and functions must not call themselves, directly or
through others.
"""

from __future__ import annotations

from ferry.checker.context import Context, function_label
from ferry.checker.diagnostics import Location
from ferry.checker.graphs import check_graph
from ferry.checker.imports import check_import_versions, normalize_imports
from ferry.ir import Function, Model

__all__ = ["check_functions"]


def check_functions(ctx: Context) -> None:
    for function in ctx.model.functions.values():
        _check_function(function, ctx)
    _check_recursion(ctx)


def _check_function(function: Function, ctx: Context) -> None:
    label = function_label(function)
    where = Location(function=label)
    if not function.name:
        ctx.report.error("function", "the function has no name; expected a non-empty name", where)
    opsets = normalize_imports(function.opset_imports, ctx.report, where)
    check_import_versions(opsets, ctx.report, where, f"function {label!r}")
    check_graph(function.graph, ctx.for_function(function, opsets), where, None, "function")


def _calls(model: Model) -> dict[tuple[str, str, str], list[tuple[str, str, str]]]:
    """For each function, the model-local functions its body (subgraphs included) calls."""
    edges: dict[tuple[str, str, str], list[tuple[str, str, str]]] = {}
    for key, function in model.functions.items():
        called = []
        for node in function.graph.all_nodes():
            target = model.function_for(node)
            if target is not None and target.identifier not in called:
                called.append(target.identifier)
        edges[key] = called
    return edges


def _check_recursion(ctx: Context) -> None:
    edges = _calls(ctx.model)
    reported: set[frozenset] = set()
    for start in edges:
        cycle = _cycle_from(start, edges)
        if cycle is None or frozenset(cycle) in reported:
            continue
        reported.add(frozenset(cycle))
        names = [function_label(ctx.model.functions[key]) for key in cycle]
        ctx.report.error(
            "function",
            "the function calls itself ("
            + " -> ".join([*names, names[0]])
            + "); expected model-local functions without recursion",
            Location(function=names[0]),
        )


def _cycle_from(start, edges) -> list | None:
    """A call path from ``start`` back to itself (depth-first), or None."""
    stack = [(start, [start])]
    seen = set()
    while stack:
        key, path = stack.pop()
        for target in edges.get(key, ()):
            if target == start:
                return path
            if target not in seen:
                seen.add(target)
                stack.append((target, [*path, target]))
    return None
