"""Reshape chains: a Reshape of a Reshape reads the original tensor."""

from __future__ import annotations

import numpy as np

from ferry.ir import Node
from ferry.passes._context import Context
from ferry.passes.base import NodeRewritePass

__all__ = ["FuseReshapes"]


class FuseReshapes(NodeRewritePass):
    """Rewrite ``Reshape(Reshape(x, s1), s2)`` as ``Reshape(x, s2)`` when the inner
    output has no other reader and ``s2`` is a constant whose entries do not refer to the
    intermediate shape (no 0 meaning "copy this dim", unless ``allowzero=1``); ``-1`` is
    fine, since the element count does not change. Also drops a Reshape whose input
    already has the (static) target shape. Opset >= 5 (the shape is an input).
    """

    name = "fuse-reshapes"

    op_types = frozenset({"Reshape"})
    min_opset = 5

    def rewrite(self, context: Context, node: Node) -> int:
        return _simplify(context, node)


def _target(context: Context, node: Node) -> np.ndarray | None:
    shape = context.constant(node.inputs[1] if len(node.inputs) > 1 else None)
    if shape is None or shape.ndim != 1 or shape.dtype != np.int64:
        return None
    if not node.attribute("allowzero", 0) and (shape == 0).any():
        return None
    return shape


def _simplify(context: Context, outer: Node) -> int:
    target = _target(context, outer)
    if target is None:
        return 0
    source = outer.inputs[0]
    inner = context.producer_in(source, outer.graph, "Reshape")
    if inner is not None and context.sole_reader(source) is outer:
        outer.replace_input_with(0, inner.inputs[0])
        context.remove(inner)
        return 1
    shape = context.static_shape(source)
    if shape is None or -1 in target or tuple(int(d) for d in target) != shape:
        return 0
    result = outer.outputs[0]
    if not context.can_replace(result, source):
        return 0
    context.replace(result, source)
    context.remove(outer)
    return 1
