"""Conv, then a residual Add, then an activation: one ``FusedConv`` step."""

from __future__ import annotations

from ferry.ir import Attribute, AttributeType, Node, Value
from ferry.passes._context import Context
from ferry.passes.base import NodeRewritePass
from ferry.runtime.fusions._match import activation_of, other_input, sole_standard_reader
from ferry.runtime.kernels.fused import INTERNAL_DOMAIN

__all__ = ["FuseConvEpilogue"]

_ACTIVATIONS = {"Relu", "LeakyRelu", "Clip"}


class FuseConvEpilogue(NodeRewritePass):
    """Rewrite ``act(Add(Conv(x, w, b), r))``, ``Add(Conv(...), r)`` and ``act(Conv(...))``
    (act: Relu, LeakyRelu, Clip with constant bounds) as one ``FusedConv(x, w, b, r)``
    where each intermediate value has the next node as its only reader."""

    name = "fuse-conv-epilogue"
    op_types = frozenset({"Conv"})

    def rewrite(self, context: Context, conv: Node) -> int:
        chain = [conv]
        value = conv.outputs[0]
        residual = None
        add = sole_standard_reader(context, value, {"Add"})
        if add is not None and len(add.inputs) == 2 and add.inputs[0] is not add.inputs[1]:
            residual = other_input(add, value)
            chain.append(add)
            value = add.outputs[0]
        activation = ("", 0.0, 0.0)
        reader = sole_standard_reader(context, value, _ACTIVATIONS)
        found = activation_of(context, reader) if reader is not None else None
        if found is not None:
            activation = found
            chain.append(reader)
        if len(chain) == 1:
            return 0
        _replace_chain(context, chain, [*conv.inputs[:3], *([None] * (3 - len(conv.inputs))), residual],
                       "FusedConv", dict(conv.attributes), activation)
        return 1


def _replace_chain(context: Context, chain: list[Node], inputs: list[Value | None], op_type: str,
                   attributes: dict[str, Attribute], activation: tuple[str, float, float]) -> None:
    """Put one ``op_type`` node where ``chain`` (a single-reader sequence) ends."""
    last = chain[-1]
    result = last.outputs[0]
    output = Value(result.name, result.type)
    name, alpha, beta = activation
    attributes = dict(attributes)
    attributes["activation"] = Attribute("activation", AttributeType.STRING, name)
    attributes["alpha"] = Attribute("alpha", AttributeType.FLOAT, alpha)
    attributes["beta"] = Attribute("beta", AttributeType.FLOAT, beta)
    while inputs and inputs[-1] is None:
        inputs = inputs[:-1]
    fused = Node(op_type, inputs, attributes, domain=INTERNAL_DOMAIN, outputs=[output],
                 name=chain[0].name or last.name)
    last.graph.insert_before(last, fused)
    context.replace(result, output)
    for node in reversed(chain):
        context.remove(node)
