"""MatMul with constant weights, then a bias Add, a residual Add and an activation: one
``FusedMatMul``."""

from __future__ import annotations

from ferry.ir import Node
from ferry.passes._context import Context
from ferry.passes.base import NodeRewritePass
from ferry.runtime.fusions._match import activation_of, sole_standard_reader
from ferry.runtime.fusions.conv import _replace_chain
from ferry.runtime.kernels.fused import INTERNAL_DOMAIN

__all__ = ["FuseMatMulEpilogue"]


class FuseMatMulEpilogue(NodeRewritePass):
    """Rewrite ``act(Add(Add(MatMul(a, W), bias), r))`` (W a constant matrix, bias a
    constant, r a computed tensor such as a transformer's residual; each Add and the
    activation optional, not all absent; act: Relu, LeakyRelu, Clip, or a fused Gelu) as
    ``FusedMatMul(a, W, bias, r)``."""

    name = "fuse-matmul-epilogue"
    op_types = frozenset({"MatMul"})

    def rewrite(self, context: Context, matmul: Node) -> int:
        weights = context.constant(matmul.inputs[1])
        if weights is None or weights.ndim != 2 or weights.dtype.kind != "f":
            return 0
        chain = [matmul]
        value = matmul.outputs[0]
        bias = None
        add = sole_standard_reader(context, value, {"Add"})
        if add is not None and len(add.inputs) == 2:
            other = add.inputs[1] if add.inputs[0] is value else add.inputs[0]
            data = context.constant(other)
            if data is not None and data.ndim <= 1 and data.dtype == weights.dtype:
                bias = other
                chain.append(add)
                value = add.outputs[0]
        residual = None
        add = sole_standard_reader(context, value, {"Add"})
        if add is not None and len(add.inputs) == 2 and add.inputs[0] is not add.inputs[1]:
            other = add.inputs[1] if add.inputs[0] is value else add.inputs[0]
            if context.constant(other) is None:
                residual = other
                chain.append(add)
                value = add.outputs[0]
        activation = ("", 0.0, 0.0)
        reader = context.sole_reader(value)
        if reader is not None and reader.graph is matmul.graph:
            if reader.domain == INTERNAL_DOMAIN and reader.op_type == "Gelu":
                activation = ("Gelu", 0.0, 0.0)
                chain.append(reader)
            elif sole_standard_reader(context, value, {"Relu", "LeakyRelu", "Clip"}) is not None:
                found = activation_of(context, reader)
                if found is not None:
                    activation = found
                    chain.append(reader)
        if len(chain) == 1:
            return 0
        _replace_chain(context, chain, [matmul.inputs[0], matmul.inputs[1], bias, residual],
                       "FusedMatMul", {}, activation)
        return 1
