"""The erf form of GELU that exporters emit, recognised and run as one ``Gelu`` step."""

from __future__ import annotations

import math

from ferry.ir import Node, Value
from ferry.passes._context import Context
from ferry.passes.base import NodeRewritePass
from ferry.runtime.fusions._match import scalar_constant, sole_standard_reader
from ferry.runtime.kernels.fused import INTERNAL_DOMAIN

__all__ = ["FuseGelu"]


def _near(value: float | None, target: float) -> bool:
    return value is not None and abs(value - target) <= 1e-6 * abs(target) + 1e-7


def _other(node: Node, value: Value) -> Value | None:
    """The input of the binary ``node`` that is not ``value`` (None if both are)."""
    first, second = node.inputs
    return second if first is value else first if second is value else None


class FuseGelu(NodeRewritePass):
    """Rewrite ``x * 0.5 * (1 + erf(x / sqrt(2)))`` — with ``x / sqrt(2)`` as Div or as Mul
    by 1/sqrt(2), the 0.5 applied last or to x first, operands in either order — and the
    standard ``Gelu`` (opset 20, approximate="none") as ``Gelu(x)`` of domain
    ``ferry.internal`` (float inputs, every intermediate read once)."""

    name = "fuse-gelu"
    op_types = frozenset({"Erf", "Gelu"})

    def rewrite(self, context: Context, node: Node) -> int:
        if node.op_type == "Gelu":  # the standard op (opset 20): the same computation
            if node.attribute("approximate", "none") != "none":
                return 0
            return _put_gelu(context, node.inputs[0], [node], node.name)
        found = _erf_chain(context, node)
        return _put_gelu(context, found[0], found[1], node.name) if found else 0


def _put_gelu(context: Context, x: Value, chain: list[Node], name: str | None) -> int:
    """Replace ``chain`` (its last node's output is the GELU of ``x``) by one Gelu step."""
    last = chain[-1]
    result = last.outputs[0]
    output = Value(result.name, result.type)
    last.graph.insert_before(last, Node("Gelu", [x], domain=INTERNAL_DOMAIN, outputs=[output], name=name))
    context.replace(result, output)
    for node in reversed(chain):
        context.remove(node)
    return 1


def _erf_chain(context: Context, erf: Node) -> tuple[Value, list[Node]] | None:
    """(x, the nodes computing x * 0.5 * (1 + erf(x / sqrt 2))) around ``erf``, or None."""
    scaled = erf.inputs[0]
    scale = scaled.producer() if scaled is not None else None
    if scale is None or scale.graph is not erf.graph or context.sole_reader(scaled) is not erf:
        return None
    x = _scaled_input(context, scale)
    if x is None or (x.dtype is not None and x.dtype.numpy.kind != "f"):
        return None  # an undeclared dtype is fine: the Div by a float constant makes it float
    plus_one = sole_standard_reader(context, erf.outputs[0], {"Add"})
    if plus_one is None or not _near(scalar_constant(context, _other(plus_one, erf.outputs[0])), 1.0):
        return None
    product = sole_standard_reader(context, plus_one.outputs[0], {"Mul"})
    if product is None:
        return None
    chain = [scale, erf, plus_one, product]
    factor = _other(product, plus_one.outputs[0])
    if factor is x:  # x * (1 + erf) then * 0.5
        half = sole_standard_reader(context, product.outputs[0], {"Mul"})
        if half is None or not _near(scalar_constant(context, _other(half, product.outputs[0])), 0.5):
            return None
        return x, [*chain, half]
    half = factor.producer() if factor is not None else None  # (x * 0.5) * (1 + erf)
    if (half is None or half.op_type != "Mul" or context.sole_reader(factor) is not product
            or _other(half, x) is None or not _near(scalar_constant(context, _other(half, x)), 0.5)):
        return None
    return x, [half, *chain]


def _scaled_input(context: Context, scale: Node) -> Value | None:
    """x when ``scale`` computes x / sqrt(2) (Div) or x * (1 / sqrt(2)) (Mul), else None."""
    if scale.op_type == "Div" and _near(scalar_constant(context, scale.inputs[1]), math.sqrt(2)):
        return scale.inputs[0]
    if scale.op_type == "Mul":
        for index in (0, 1):
            if _near(scalar_constant(context, scale.inputs[index]), math.sqrt(0.5)):
                return scale.inputs[1 - index]
    return None
