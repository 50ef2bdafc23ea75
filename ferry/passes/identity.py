"""Identity elimination: readers of an Identity's output read its input instead."""

from __future__ import annotations

from ferry.passes._context import Context, is_standard
from ferry.passes.base import Pass

__all__ = ["IdentityElimination"]


class IdentityElimination(Pass):
    """Remove ``y = Identity(x)`` by rewiring every reader of ``y`` (including nodes in
    subgraphs) to ``x``.

    Where ``y`` is a graph output the output keeps its place: in the main graph ``x``
    takes the name and declared type of ``y``, which is possible only when ``x`` is a
    node output of the main graph that is not itself a graph output (an Identity that
    copies an input or another output to an output stays); in a subgraph ``x`` must be
    defined in that subgraph (a subgraph does not return an outer value directly).
    """

    name = "identity-elimination"

    def run(self, context: Context) -> int:
        removed = 0
        for graph in context.graphs:
            for node in graph:
                if node.op_type != "Identity" or not is_standard(node):
                    continue
                source, result = node.inputs[0], node.outputs[0]
                if source is None or result is None or not context.can_replace(result, source):
                    continue
                context.replace(result, source)
                context.remove(node)
                removed += 1
        return removed
