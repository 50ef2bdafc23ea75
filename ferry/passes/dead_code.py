"""Dead-code elimination: nodes whose results reach no graph output, unused initializers."""

from __future__ import annotations

from ferry.ir import Graph, Node
from ferry.passes._context import Context
from ferry.passes.base import Pass

__all__ = ["DeadCodeElimination"]


class DeadCodeElimination(Pass):
    """Remove every node none of whose outputs reaches an output of its graph, directly
    or through other nodes (a value read inside a live node's subgraph counts as read),
    working from the innermost subgraphs outwards; then remove initializers that nothing
    reads or returns. Graph inputs stay (they are the interface), and so do initializers
    that are overridable inputs (IR version >= 4); below IR version 4 an unused
    initializer leaves the input list with it.
    """

    name = "dead-code-elimination"

    def run(self, context: Context) -> int:
        removed = _sweep(context, context.model.graph)
        for graph in context.graphs:
            removed += _drop_unused_initializers(context, graph)
        return removed


def _sweep(context: Context, graph: Graph) -> int:
    """Remove dead nodes of ``graph``, after those of its nodes' subgraphs."""
    removed = 0
    for node in graph:
        for inner in node.subgraphs():
            removed += _sweep(context, inner)
    needed = {id(v) for v in graph.outputs}
    for node in reversed(graph.nodes):
        if any(v is not None and id(v) in needed for v in node.outputs):
            needed.update(id(v) for v in _reads(node))
        else:
            context.remove(node)
            removed += 1
    return removed


def _reads(node: Node) -> list:
    """The values ``node`` needs: its inputs, and what its subgraphs (at any depth) read
    or return."""
    values = [v for v in node.inputs if v is not None]
    for inner in node.subgraphs():
        values.extend(inner.outputs)
        for inner_node in inner:
            values.extend(_reads(inner_node))
    return values


def _drop_unused_initializers(context: Context, graph: Graph) -> int:
    removed = 0
    legacy = context.model.ir_version < 4 and graph is context.model.graph
    for name, value in list(graph.initializers.items()):
        if value.uses() or context.is_output(value):
            continue
        is_input = any(v is value for v in graph.inputs)
        if is_input and not legacy:
            continue  # an overridable input with a default: part of the interface
        del graph.initializers[name]
        if is_input:
            graph.inputs = [v for v in graph.inputs if v is not value]
        removed += 1
    return removed
