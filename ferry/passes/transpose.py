"""Transpose chains: two Transposes merge into one, or cancel."""

from __future__ import annotations

from ferry.ir import Attribute, Node
from ferry.passes._context import Context
from ferry.passes.base import NodeRewritePass

__all__ = ["FuseTransposes"]


class FuseTransposes(NodeRewritePass):
    """Simplify ``Transpose(Transpose(x, p1), p2)``: the composition is the single
    permutation ``p[i] = p1[p2[i]]``. When it is the identity, readers of the outer
    output read ``x`` and the outer Transpose goes (the inner one too once unused);
    otherwise (or when the outer output is a graph output that ``x`` cannot replace),
    if the inner output has no other reader, the outer Transpose reads ``x`` with the
    composed permutation and the inner one goes. A lone Transpose whose
    permutation is the identity is removed. A missing ``perm`` (reverse the axes) needs
    the rank, taken from the other permutation or the input's shape.
    """

    name = "fuse-transposes"

    op_types = frozenset({"Transpose"})

    def rewrite(self, context: Context, node: Node) -> int:
        return _simplify(context, node)


def _perm(node: Node, rank: int) -> list[int] | None:
    """The node's permutation (reversed axes when absent), None if not one of ``rank``."""
    perm = node.attribute("perm")
    perm = [int(p) for p in perm] if perm is not None else list(reversed(range(rank)))
    return perm if sorted(perm) == list(range(rank)) else None


def _compose(context: Context, inner: Node, outer: Node) -> tuple[list[int] | None, bool]:
    """The permutation of outer(inner(x)) (None when unknown) and whether it is the
    identity; two default permutations (reversals) compose to it at any rank."""
    given = inner.attribute("perm") or outer.attribute("perm")
    if given is None:
        rank = context.rank(inner.inputs[0])
        return (list(range(rank)) if rank is not None else None), True
    p1, p2 = _perm(inner, len(given)), _perm(outer, len(given))
    if p1 is None or p2 is None:
        return None, False
    composed = [p1[p] for p in p2]
    return composed, composed == list(range(len(composed)))


def _simplify(context: Context, outer: Node) -> int:
    source = outer.inputs[0]
    inner = context.producer_in(source, outer.graph, "Transpose")
    if inner is None:
        perm = outer.attribute("perm")
        identity = bool(perm) and list(perm) == list(range(len(perm)))
        return _bypass(context, outer, source) if identity else 0
    composed, identity = _compose(context, inner, outer)
    if not (identity and _bypass(context, outer, inner.inputs[0])):
        if composed is None or context.sole_reader(source) is not outer:
            return 0
        outer.replace_input_with(0, inner.inputs[0])
        outer.attributes["perm"] = Attribute.infer("perm", composed)
    context.remove_if_unused(inner)
    return 1


def _bypass(context: Context, node: Node, source) -> int:
    """Readers of ``node``'s output read ``source``; the node goes."""
    if source is None or not context.can_replace(node.outputs[0], source):
        return 0
    context.replace(node.outputs[0], source)
    context.remove(node)
    return 1
