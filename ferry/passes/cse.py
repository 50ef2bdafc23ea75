"""Common-subexpression elimination: identical nodes computed once."""

from __future__ import annotations

from ferry.ir import Attribute, AttributeType, Graph, Node, Tensor
from ferry.passes._context import Context, is_standard
from ferry.passes.base import Pass
from ferry.passes.constant_folding import RANDOM_OPS

__all__ = ["CommonSubexpressionElimination"]

_SIMPLE = (AttributeType.FLOAT, AttributeType.INT, AttributeType.STRING)
_LISTS = (AttributeType.FLOATS, AttributeType.INTS, AttributeType.STRINGS)


class CommonSubexpressionElimination(Pass):
    """Within each graph, when a node has the same op type, domain, overload, inputs
    (the same values, in order), attributes (equal values, tensors compared by content)
    and output arity as an earlier node, its outputs are replaced by the earlier node's
    and it is removed. Chains collapse in one sweep, since replaced outputs make later
    nodes identical in turn.

    Never merged: random operators (and Dropout), nodes with subgraphs (GRAPH
    attributes), non-standard domains and model-local functions, nodes whose outputs
    are all graph outputs that cannot be renamed (see ``Context.can_replace``).
    """

    name = "common-subexpression-elimination"

    def run(self, context: Context) -> int:
        return sum(_eliminate(context, graph) for graph in context.graphs)


def _eliminate(context: Context, graph: Graph) -> int:
    seen: dict[tuple, Node] = {}
    removed = 0
    for node in graph:
        key = _key(context, node)
        if key is None:
            continue
        original = seen.get(key)
        if original is None:
            seen[key] = node
            continue
        pairs = [(d, o) for d, o in zip(node.outputs, original.outputs) if d is not None]
        if not all(context.can_replace(d, o) for d, o in pairs):
            continue
        for duplicate, kept in pairs:
            context.replace(duplicate, kept)
        context.remove(node)
        removed += 1
    return removed


def _key(context: Context, node: Node) -> tuple | None:
    if not is_standard(node) or node.op_type in RANDOM_OPS or not node.outputs:
        return None
    if context.model.function_for(node) is not None:
        return None
    attributes = []
    for name in sorted(node.attributes):
        value = _attribute_key(node.attributes[name])
        if value is None:
            return None
        attributes.append((name, value))
    inputs = tuple(id(v) if v is not None else None for v in node.inputs)
    arity = tuple(v is None for v in node.outputs)
    return (node.op_type, node.domain or "", node.overload, inputs, tuple(attributes), arity)


def _attribute_key(attribute: Attribute) -> object | None:
    """A hashable form of the attribute's value, or None when it is not comparable."""
    if attribute.ref_attr_name is not None:
        return None
    kind, value = attribute.type, attribute.value
    if kind in _SIMPLE:
        return (kind, repr(value))  # repr: NaN equals NaN, 0.0 differs from -0.0
    if kind in _LISTS:
        return (kind, tuple(repr(v) for v in value))
    if kind == AttributeType.TENSOR and isinstance(value, Tensor):
        array = value.numpy()
        data = tuple(array.reshape(-1).tolist()) if array.dtype == object else array.tobytes()
        return (kind, int(value.dtype), tuple(array.shape), data)
    return None
