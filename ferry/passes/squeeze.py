"""Squeeze and Unsqueeze pairs over the same axes cancel."""

from __future__ import annotations

from ferry.ir import Node
from ferry.passes._context import Context
from ferry.passes.base import NodeRewritePass

__all__ = ["CancelSqueezeUnsqueeze"]

_OPPOSITE = {"Squeeze": "Unsqueeze", "Unsqueeze": "Squeeze"}


class CancelSqueezeUnsqueeze(NodeRewritePass):
    """Remove ``Squeeze(Unsqueeze(x, a), a)`` and ``Unsqueeze(Squeeze(x, a), a)``:
    readers of the outer output read ``x``. Both axis lists index the same tensor (the
    larger one), so they cancel exactly when they name the same set of axes after
    negative axes are normalized (which needs ``x``'s rank). A Squeeze without axes drops
    every size-1 dim, so it counts only when ``x``'s shape is static. Axes come from the
    ``axes`` attribute before opset 13 and from the constant ``axes`` input from 13 on.
    The inner node goes too once nothing else reads it.
    """

    name = "cancel-squeeze-unsqueeze"

    op_types = frozenset(_OPPOSITE)

    def rewrite(self, context: Context, node: Node) -> int:
        return _cancel(context, node)


def _axes(context: Context, node: Node) -> list[int] | None:
    """The node's axes, [] when a Squeeze names none, None when they are not constant."""
    if context.opset < 13:
        axes = node.attribute("axes")
        return [int(a) for a in axes] if axes is not None else []
    if len(node.inputs) < 2 or node.inputs[1] is None:
        return []
    data = context.constant(node.inputs[1])
    return [int(a) for a in data.reshape(-1)] if data is not None else None


def _normalized(axes: list[int], rank: int | None) -> set[int] | None:
    if any(a < 0 for a in axes) and rank is None:
        return None
    result = {a + rank if a < 0 else a for a in axes}  # type: ignore[operator]
    return result if len(result) == len(axes) else None


def _cancel(context: Context, outer: Node) -> int:
    inner = context.producer_in(outer.inputs[0], outer.graph, _OPPOSITE[outer.op_type])
    if inner is None:
        return 0
    x = inner.inputs[0]
    squeeze, unsqueeze = (outer, inner) if outer.op_type == "Squeeze" else (inner, outer)
    squeezed, unsqueezed = _axes(context, squeeze), _axes(context, unsqueeze)
    if squeezed is None or not unsqueezed:
        return 0
    rank = context.rank(x)
    wide = rank + len(unsqueezed) if rank is not None and inner is unsqueeze else rank
    if not squeezed:  # squeeze every size-1 dim of the wide tensor: needs its shape
        squeezed = _ones(context, x, inner is unsqueeze, unsqueezed)
        if squeezed is None:
            return 0
    a, b = _normalized(squeezed, wide), _normalized(unsqueezed, wide)
    if a is None or a != b:
        return 0
    result = outer.outputs[0]
    if x is None or not context.can_replace(result, x):
        return 0
    context.replace(result, x)
    context.remove(outer)
    context.remove_if_unused(inner)
    return 1


def _ones(context: Context, x, unsqueeze_first: bool, unsqueezed: list[int]) -> list[int] | None:
    """The size-1 axes of the wide tensor (the one the Squeeze reads)."""
    shape = context.static_shape(x)
    if shape is None:
        return None
    if unsqueeze_first:
        wide_rank = len(shape) + len(unsqueezed)
        added = _normalized(unsqueezed, wide_rank)
        if added is None:
            return None
        rest = iter(shape)
        shape = tuple(1 if axis in added else next(rest) for axis in range(wide_rank))
    return [axis for axis, dim in enumerate(shape) if dim == 1]
