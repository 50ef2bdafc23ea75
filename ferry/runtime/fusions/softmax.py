"""Attention-score softmax: Add(scores, mask) -> Softmax -> (IsNaN -> Where(nan, 0, .)) as one
``MaskedSoftmax`` step."""

from __future__ import annotations

from ferry.ir import Attribute, AttributeType, Node, Value
from ferry.passes._context import Context
from ferry.passes.base import NodeRewritePass
from ferry.runtime.fusions._match import scalar_constant, sole_standard_reader
from ferry.runtime.kernels.fused import INTERNAL_DOMAIN

__all__ = ["FuseMaskedSoftmax"]


class FuseMaskedSoftmax(NodeRewritePass):
    """Rewrite ``Softmax(Add(x, mask), axis=-1)`` (opset 13+, last axis), and with it the
    ``Where(IsNaN(s), 0, s)`` exporters add to zero fully masked rows, as
    ``MaskedSoftmax(x, mask)`` of domain ``ferry.internal`` (attribute ``nan_to_zero``)."""

    name = "fuse-masked-softmax"
    op_types = frozenset({"Softmax"})
    min_opset = 13

    def rewrite(self, context: Context, softmax: Node) -> int:
        if softmax.attribute("axis", -1) != -1:
            return 0  # the kernel works along the last axis; other axes need the rank
        scores = softmax.inputs[0]
        add = scores.producer() if scores is not None else None
        if (add is None or add.op_type != "Add" or add.graph is not softmax.graph
                or context.sole_reader(scores) is not softmax):
            return 0
        chain = [add, softmax]
        result = softmax.outputs[0]
        cleanup = _nan_cleanup(context, result)
        if cleanup is not None:
            chain += cleanup
            result = cleanup[-1].outputs[0]
        output = Value(result.name, result.type)
        attributes = {"nan_to_zero": Attribute("nan_to_zero", AttributeType.INT, int(cleanup is not None))}
        last = chain[-1]
        last.graph.insert_before(last, Node("MaskedSoftmax", list(add.inputs), attributes,
                                            domain=INTERNAL_DOMAIN, outputs=[output], name=softmax.name))
        context.replace(result, output)
        for node in reversed(chain):
            context.remove(node)
        return 1


def _nan_cleanup(context: Context, probabilities: Value) -> list[Node] | None:
    """[IsNaN, Where] when the softmax output is read only by ``Where(IsNaN(p), 0, p)``."""
    uses = probabilities.uses()
    if context.is_output(probabilities) or len(uses) != 2:
        return None
    readers = {node.op_type: node for node, _ in uses}
    isnan, where = readers.get("IsNaN"), readers.get("Where")
    if isnan is None or where is None or sole_standard_reader(context, isnan.outputs[0], {"Where"}) is not where:
        return None
    condition, zero, kept = where.inputs
    if condition is not isnan.outputs[0] or kept is not probabilities or scalar_constant(context, zero) != 0.0:
        return None
    return [isnan, where]
