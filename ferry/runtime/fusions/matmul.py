"""MatMul (or Gemm) with constant weights, then a bias Add, a residual Add and an
activation: one ``FusedMatMul``."""

from __future__ import annotations

import numpy as np

from ferry.ir import Node
from ferry.passes._context import Context
from ferry.passes.base import NodeRewritePass
from ferry.runtime.fusions._match import activation_of, other_input, sole_standard_reader
from ferry.runtime.fusions.conv import _replace_chain
from ferry.runtime.kernels.fused import INTERNAL_DOMAIN
from ferry.runtime.kernels.linalg import gemm_bias_row

__all__ = ["FuseMatMulEpilogue"]


class FuseMatMulEpilogue(NodeRewritePass):
    """Rewrite ``act(Add(Add(MatMul(a, W), bias), r))`` (W a constant matrix, bias a
    constant, r a computed tensor such as a transformer's residual; each Add and the
    activation optional, not all absent; act: Relu, LeakyRelu, Clip, or a fused Gelu) as
    ``FusedMatMul(a, W, bias, r)``; likewise ``act(Add(Gemm(a, B, C), r))`` for a Gemm with
    constant B and C (transA 0, alpha 1, C one row or a scalar), whose op(B) and beta * C
    become the FusedMatMul's weights and bias."""

    name = "fuse-matmul-epilogue"
    op_types = frozenset({"MatMul", "Gemm"})

    def rewrite(self, context: Context, head: Node) -> int:
        if head.op_type == "Gemm":
            product = _gemm_product(context, head)
            if product is None:
                return 0
            weights, bias_data = product
        else:
            weights, bias_data = context.constant(head.inputs[1]), None
            if weights is None or weights.ndim != 2 or weights.dtype.kind != "f":
                return 0
        chain = [head]
        value = head.outputs[0]
        bias = None
        add = sole_standard_reader(context, value, {"Add"})
        if head.op_type == "MatMul" and add is not None and len(add.inputs) == 2:
            other = other_input(add, value)
            data = context.constant(other)
            if data is not None and data.ndim <= 1 and data.dtype == weights.dtype:
                bias = other
                chain.append(add)
                value = add.outputs[0]
        residual = None
        add = sole_standard_reader(context, value, {"Add"})
        if add is not None and len(add.inputs) == 2 and add.inputs[0] is not add.inputs[1]:
            other = other_input(add, value)
            if context.constant(other) is None:
                residual = other
                chain.append(add)
                value = add.outputs[0]
        activation = ("", 0.0, 0.0)
        reader = context.sole_reader(value)
        if reader is not None and reader.graph is head.graph:
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
        matrix = head.inputs[1]
        if head.op_type == "Gemm":  # op(B) and beta * C as constants of their own
            name = head.name or "gemm"
            matrix = context.add_constant(head.graph, head, weights, f"{name}_weights")
            if bias_data is not None:
                bias = context.add_constant(head.graph, head, bias_data, f"{name}_bias")
        _replace_chain(context, chain, [head.inputs[0], matrix, bias, residual], "FusedMatMul", {},
                       activation)
        return 1


def _gemm_product(context: Context, gemm: Node) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(op(B), beta * C as one row or None) of a Gemm that is ``A @ op(B) + beta * C`` with
    constant float B and C broadcast as one row (opset 7 on), else None."""
    if context.opset < 7 or gemm.attribute("transA", 0) or gemm.attribute("alpha", 1.0) != 1.0:
        return None
    b = context.constant(gemm.inputs[1])
    if b is None or b.ndim != 2 or b.dtype.kind != "f":
        return None
    weights = np.ascontiguousarray(b.T if gemm.attribute("transB", 0) else b)
    c_value = gemm.inputs[2] if len(gemm.inputs) > 2 else None
    beta = gemm.attribute("beta", 1.0)
    if c_value is None or beta == 0.0:
        return weights, None
    c = context.constant(c_value)
    if c is None or c.dtype != b.dtype:
        return None
    bias = gemm_bias_row(c, beta, weights.shape[1])
    return None if bias is None else (weights, bias)
