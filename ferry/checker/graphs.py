"""The walk of a graph: names defined once (SSA), inputs defined before use, graph
inputs, outputs and initializers, and subgraphs checked within their scope.

Scoping follows the ONNX format, which refers to values by name: a node may read a
graph input, an initializer, the output of an earlier node of its graph, or a value of
an enclosing graph defined before the node that holds the subgraph. A node output may
not reuse a name visible at that point (in its graph or an enclosing one); a subgraph's
own inputs and initializers may shadow outer names.
"""

from __future__ import annotations

from typing import Literal

from ferry.checker.context import Context
from ferry.checker.diagnostics import Location
from ferry.checker.nodes import check_attributes, check_operator
from ferry.checker.values import sparse_problems, tensor_problems, type_problem
from ferry.ir import Graph, Node, Value

__all__ = ["check_graph"]

GraphKind = Literal["main", "sub", "function"]


class Scope:
    """The names of one graph: those defined so far, and all it defines anywhere."""

    def __init__(self, graph: Graph, where: Location, parent: Scope | None, kind: GraphKind):
        self.graph = graph
        self.where = where
        self.parent = parent
        self.kind = kind
        self.defined: dict[str, str] = {}
        self.everywhere = _definitions(graph, kind)

    @property
    def label(self) -> str:
        return f"graph {self.graph.name!r}" if self.graph.name else "an unnamed graph"

    def find(self, name: str) -> tuple[Scope, str] | None:
        """The scope and definer of ``name`` among values visible at this point."""
        scope: Scope | None = self
        while scope is not None:
            if name in scope.defined:
                return scope, scope.defined[name]
            scope = scope.parent
        return None

    def definer_label(self, name: str) -> str:
        """How messages name the first definer of ``name`` in this graph."""
        label, node = self.everywhere[name]
        if isinstance(label, int):  # a node's position: labelled only when reported
            return self.where.at_node(label, node).node_label()
        return label

    def explain_missing(self, name: str, position: int, node: Node) -> tuple[str, str]:
        """(rule, message) for an input ``name`` that is not visible here."""
        definer = self.everywhere.get(name)
        if definer is not None:
            label, producer = self.definer_label(name), definer[1]
            if producer is node:
                return (
                    "not-topological",
                    f"input {position} {name!r} is this node's own output (a cycle)",
                )
            return "not-topological", (
                f"input {position} {name!r} is produced by {label}, which does not come before "
                "this node; expected nodes in topological order"
            )
        outer = self.parent
        while outer is not None:
            if name in outer.everywhere:
                return "subgraph-reference", (
                    f"input {position} {name!r} refers to a value of enclosing {outer.label} "
                    f"made by {outer.definer_label(name)}, which does not come before the node "
                    "that holds this subgraph"
                )
            outer = outer.parent
        if self.parent is not None:
            return "subgraph-reference", (
                f"input {position} {name!r} is defined neither in this subgraph nor in any "
                "enclosing graph"
            )
        owner = "function" if self.kind == "function" else "graph"
        return "undefined-input", (
            f"input {position} {name!r} is not defined: expected a {owner} input, an "
            "initializer or the output of an earlier node"
        )


def _definitions(graph: Graph, kind: GraphKind) -> dict[str, tuple[str | int, Node | None]]:
    """Every name the graph defines anywhere, with its first definer (a description, or
    the position of the defining node)."""
    found: dict[str, tuple[str | int, Node | None]] = {}
    noun = "a function input" if kind == "function" else "a graph input"
    for value in graph.inputs:
        found.setdefault(value.name, (noun, None))
    for name in graph.initializers:
        found.setdefault(name, ("an initializer", None))
    for sparse in graph.sparse_initializers:
        found.setdefault(sparse.name or "", ("a sparse initializer", None))
    for index, node in enumerate(graph.nodes):
        for value in node.outputs:
            if value is not None:
                found.setdefault(value.name, (index, node))
    found.pop("", None)
    return found


def check_graph(
    graph: Graph,
    ctx: Context,
    where: Location,
    parent: Scope | None = None,
    kind: GraphKind = "main",
) -> None:
    """Check ``graph`` and, recursively, the subgraphs of its nodes."""
    scope = Scope(graph, where, parent, kind)
    if kind != "function" and not graph.name:
        ctx.report.error(
            "graph-name",
            "the graph has no name; ONNX requires every graph, subgraphs included, to be named",
            where,
        )
    _check_inputs(graph, ctx, scope)
    _check_initializers(graph, ctx, scope)
    _check_sparse_initializers(graph, ctx, scope)
    for index, node in enumerate(graph.nodes):
        _check_node(node, index, ctx, scope)
    _check_outputs(graph, ctx, scope)


def _check_inputs(graph: Graph, ctx: Context, scope: Scope) -> None:
    noun = "function input" if scope.kind == "function" else "graph input"
    for position, value in enumerate(graph.inputs):
        name = value.name
        if not name:
            if scope.kind != "function":  # ONNX lets a function leave an input unnamed
                ctx.report.error("graph-io", f"{noun} {position} has no name", scope.where)
            continue
        if name in scope.defined:
            ctx.report.error(
                "duplicate-name",
                f"{noun} {name!r} is declared more than once; expected unique input names",
                scope.where,
            )
            continue
        scope.defined[name] = f"a {noun}"
        if scope.kind == "main":
            _check_io_type(value, noun, ctx, scope)


def _check_io_type(value: Value, noun: str, ctx: Context, scope: Scope) -> None:
    problem = type_problem(value.type)
    if problem is not None:
        ctx.report.error("graph-io", f"{noun} {value.name!r} {problem}", scope.where)


def _check_initializers(graph: Graph, ctx: Context, scope: Scope) -> None:
    inputs = {value.name for value in graph.inputs}
    old_ir = 1 <= ctx.ir_version < 4 and scope.kind != "function"
    for key, value in graph.initializers.items():
        name = value.name
        if not name:
            ctx.report.error(
                "initializer-name",
                "an initializer has no name; expected a non-empty name",
                scope.where,
            )
            name = key
        elif name != key:
            ctx.report.error(
                "initializer-name",
                f"initializer {name!r} is filed under {key!r}; expected its own name as key",
                scope.where,
            )
        if old_ir and name not in inputs:
            ctx.report.error(
                "initializer-input",
                f"initializer {name!r} is not a graph input; ir_version {ctx.ir_version} "
                "(before 4) requires every initializer to be listed as a graph input too",
                scope.where,
            )
        _check_initializer_data(value, name, ctx, scope)
        if name:
            scope.defined.setdefault(name, "an initializer")
    for value in getattr(graph, "_duplicate_initializers", None) or []:
        ctx.report.error(
            "duplicate-name",
            f"initializer {value.name!r} is defined more than once; expected unique "
            "initializer names",
            scope.where,
        )
        _check_initializer_data(value, value.name, ctx, scope)


def _check_initializer_data(value: Value, name: str, ctx: Context, scope: Scope) -> None:
    tensor = value.const_value
    if tensor is None:
        ctx.report.error(
            "initializer-size",
            f"initializer {name!r} has no data (const_value is None)",
            scope.where,
        )
        return
    for problem in tensor_problems(tensor):
        ctx.report.error("initializer-size", f"initializer {name!r} {problem}", scope.where)


def _check_sparse_initializers(graph: Graph, ctx: Context, scope: Scope) -> None:
    names = set(graph.initializers)
    for sparse in graph.sparse_initializers:
        name = sparse.name
        if not name:
            ctx.report.error("sparse-initializer", "a sparse initializer has no name", scope.where)
        elif name in names:
            ctx.report.error(
                "duplicate-name",
                f"sparse initializer {name!r} reuses the name of another initializer; "
                "expected unique initializer names",
                scope.where,
            )
        else:
            names.add(name)
            scope.defined.setdefault(name, "a sparse initializer")
        for problem in sparse_problems(sparse):
            ctx.report.error(
                "sparse-initializer", f"sparse initializer {name!r} {problem}", scope.where
            )


def _check_node(node: Node, index: int, ctx: Context, scope: Scope) -> None:
    where = scope.where.at_node(index, node)
    if not node.inputs and not node.outputs:
        ctx.report.error(
            "empty-node", "the node has no inputs and no outputs; expected at least one", where
        )
    for position, value in enumerate(node.inputs):
        _check_input(value, position, node, ctx, scope, where)
    check_operator(node, ctx, where)
    check_attributes(node, ctx, where)
    for attr in node.attributes.values():
        graphs = attr.value if isinstance(attr.value, list) else [attr.value]
        for number, sub in enumerate(graphs):
            if isinstance(sub, Graph):
                label = attr.name if isinstance(attr.value, Graph) else f"{attr.name}[{number}]"
                check_graph(sub, ctx, where.subgraph(sub.name or "", label), scope, "sub")
    for position, value in enumerate(node.outputs):
        _define_output(value, position, ctx, scope, where)


def _check_input(
    value: Value | None, position: int, node: Node, ctx: Context, scope: Scope, where: Location
) -> None:
    if value is None:
        return
    if not value.name:
        ctx.report.error(
            "value-name",
            f"input {position} is a value with an empty name; ONNX reads an empty name as an "
            "omitted input",
            where,
        )
        return
    if scope.find(value.name) is None:
        rule, message = scope.explain_missing(value.name, position, node)
        ctx.report.error(rule, message, where)


def _define_output(
    value: Value | None, position: int, ctx: Context, scope: Scope, where: Location
) -> None:
    if value is None:
        return
    name = value.name
    if not name:
        ctx.report.error(
            "value-name",
            f"output {position} is a value with an empty name; ONNX reads an empty name as an "
            "omitted output",
            where,
        )
        return
    found = scope.find(name)
    if found is not None:
        owner, definer = found
        outer = "" if owner is scope else f" of enclosing {owner.label}"
        ctx.report.error(
            "duplicate-output",
            f"output {position} {name!r} is already defined by {definer}{outer}; expected "
            "every name to be defined once (SSA)",
            where,
        )
        if owner is scope:
            return
    scope.defined[name] = where.node_label()  # a shadowing output still defines the name


def _check_outputs(graph: Graph, ctx: Context, scope: Scope) -> None:
    noun = "function output" if scope.kind == "function" else "graph output"
    for position, value in enumerate(graph.outputs):
        name = value.name
        if not name:
            ctx.report.error("graph-io", f"{noun} {position} has no name", scope.where)
            continue
        if scope.kind == "main":
            _check_io_type(value, noun, ctx, scope)
        if name in scope.defined:
            continue
        found = scope.parent.find(name) if scope.parent is not None else None
        if found is not None:
            message = (
                f"{noun} {name!r} is a value of enclosing {found[0].label}; expected a value "
                "defined in this subgraph (pass it through an Identity node)"
            )
        else:
            message = (
                f"{noun} {name!r} is not defined in this graph; expected an input, an "
                "initializer or a node output of it"
            )
        ctx.report.error("graph-io", message, scope.where)
