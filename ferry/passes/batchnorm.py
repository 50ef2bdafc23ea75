"""BatchNormalization (inference form) folded into the Conv, Gemm or MatMul before it."""

from __future__ import annotations

import numpy as np

from ferry.ir import Attribute, Node, Value
from ferry.passes._context import Context, is_standard
from ferry.passes.base import Pass

__all__ = ["FuseBatchNorm"]


class FuseBatchNorm(Pass):
    """Fold ``BatchNormalization`` in inference form into the node producing its input.

    BN computes ``y = x * s + t`` per channel (axis 1) with ``s = scale / sqrt(var +
    epsilon)`` and ``t = bias - mean * s``. When its input is the single-use output of

    - ``Conv`` with a constant weight (and constant or absent bias): the weight's output
      channels are scaled by ``s`` and the bias becomes ``bias * s + t``;
    - ``Gemm`` (opset >= 7) with a constant B (and constant or absent C): B's columns
      (rows with transB) are scaled by ``s``, C becomes ``beta * C * s + t``, beta 1;
    - ``MatMul(A, W)``, optionally followed by ``Add`` of a constant, with a constant
      2-D ``W`` and ``A`` of known rank 2 (opset >= 7): ``W``'s columns are scaled and the
      bias becomes ``b * s + t`` (an Add is created when there was none);

    the BN goes and the rewritten node produces the BN's output. Inference form means:
    scale, bias, mean and variance constant 1-D tensors of one size, a single output
    (or is_test=1 before opset 7), training_mode=0 (opset >= 14), spatial=1 (< 9), and a
    floating-point weight. Other BNs (training form, dynamic statistics) are kept.
    """

    name = "fuse-batchnorm"

    def run(self, context: Context) -> int:
        fused = 0
        for graph in context.graphs:
            for node in graph:
                if node.op_type == "BatchNormalization" and is_standard(node):
                    fused += _fuse(context, node)
        return fused


def _fuse(context: Context, bn: Node) -> int:
    affine = _affine(context, bn)
    if affine is None or context.sole_reader(bn.inputs[0]) is not bn:
        return 0
    graph = bn.graph
    producer = bn.inputs[0].producer()
    if producer is None or producer.graph is not graph or not is_standard(producer):
        return 0
    rewrite = {"Conv": _into_conv, "Gemm": _into_gemm, "MatMul": _into_matmul, "Add": _into_add}
    fold = rewrite.get(producer.op_type)
    if fold is None or (producer.op_type != "Conv" and context.opset < 7):
        return 0
    replaced = fold(context, producer, bn, *affine)
    if not replaced:
        return 0
    for node in replaced:  # the BN first: it reads the others
        context.remove(node)
    return 1


def _affine(context: Context, bn: Node) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-channel (s, t) with BN(x) = x * s + t, or None if BN is not in inference form."""
    if any(v is not None and (v.uses() or context.is_output(v)) for v in bn.outputs[1:]):
        return None
    opset = context.opset
    if opset >= 14 and bn.attribute("training_mode", 0) != 0:
        return None
    if opset < 14 and len(bn.outputs) > 1 and not (opset < 7 and bn.attribute("is_test", 0)):
        return None
    if opset < 9 and bn.attribute("spatial", 1) != 1:
        return None
    params = [context.constant(v) for v in bn.inputs[1:5]]
    if len(params) != 4 or any(p is None or p.ndim != 1 or p.dtype.kind != "f" for p in params):
        return None
    scale, bias, mean, var = (p.astype(np.float64) for p in params)
    if len({scale.shape, bias.shape, mean.shape, var.shape}) != 1:
        return None
    s = scale / np.sqrt(var + float(bn.attribute("epsilon", 1e-5)))
    return s, bias - mean * s


def _same_node(context: Context, old: Node, inputs: list, attributes, anchor: Node, result: Value):
    """A copy of ``old`` with ``inputs`` (and ``attributes``), before ``anchor``, that
    produces the value ``result`` used to produce."""
    output = Value(result.name, result.type)  # the name is free once ``result`` goes
    node = Node(old.op_type, inputs, attributes, domain=old.domain, outputs=[output], name=old.name)
    anchor.graph.insert_before(anchor, node)
    context.replace(result, output)
    return node


def _into_conv(context: Context, conv: Node, bn: Node, s: np.ndarray, t: np.ndarray):
    weight = context.constant(conv.inputs[1] if len(conv.inputs) > 1 else None)
    bias_value = conv.inputs[2] if len(conv.inputs) > 2 else None
    bias = context.constant(bias_value) if bias_value is not None else np.zeros_like(s)
    if weight is None or bias is None or weight.dtype.kind != "f" or weight.shape[0] != s.size:
        return None
    if bias.shape != s.shape:
        return None
    scaled = weight * s.reshape((-1,) + (1,) * (weight.ndim - 1))
    graph = bn.graph
    w = context.add_constant(graph, bn, scaled.astype(weight.dtype), conv.inputs[1].name + "_bn")
    b = context.add_constant(graph, bn, (bias * s + t).astype(weight.dtype), w.name + "_bias")
    _same_node(context, conv, [conv.inputs[0], w, b], list(conv.attributes.values()), bn, bn.outputs[0])
    return [bn, conv]


def _into_gemm(context: Context, gemm: Node, bn: Node, s: np.ndarray, t: np.ndarray):
    weight = context.constant(gemm.inputs[1])
    c_value = gemm.inputs[2] if len(gemm.inputs) > 2 else None
    c = context.constant(c_value) if c_value is not None else np.zeros((), s.dtype)
    if weight is None or c is None or weight.ndim != 2 or weight.dtype.kind != "f":
        return None
    transposed = bool(gemm.attribute("transB", 0))
    if weight.shape[0 if transposed else 1] != s.size or not _channel_last(c, s):
        return None
    scaled = weight * (s[:, None] if transposed else s[None, :])
    new_c = float(gemm.attribute("beta", 1.0)) * c * s + t
    graph = bn.graph
    w = context.add_constant(graph, bn, scaled.astype(weight.dtype), gemm.inputs[1].name + "_bn")
    bias = context.add_constant(graph, bn, new_c.astype(weight.dtype), w.name + "_bias")
    attributes = {**gemm.attributes, "beta": Attribute.infer("beta", 1.0)}
    _same_node(context, gemm, [gemm.inputs[0], w, bias], list(attributes.values()), bn, bn.outputs[0])
    return [bn, gemm]


def _matmul_weight(context: Context, matmul: Node, s: np.ndarray) -> np.ndarray | None:
    """The constant 2-D weight of ``MatMul(A, W)`` with A of rank 2 and W's columns = C."""
    weight = context.constant(matmul.inputs[1])
    if weight is None or weight.ndim != 2 or weight.dtype.kind != "f" or weight.shape[1] != s.size:
        return None
    return weight if context.rank(matmul.inputs[0]) == 2 else None


def _into_matmul(context: Context, matmul: Node, bn: Node, s: np.ndarray, t: np.ndarray):
    weight = _matmul_weight(context, matmul, s)
    if weight is None:
        return None
    return _rebuild(context, matmul, None, bn, weight, np.zeros(s.shape), s, t)


def _into_add(context: Context, add: Node, bn: Node, s: np.ndarray, t: np.ndarray):
    for index in (0, 1):
        matmul = context.producer_in(add.inputs[index], add.graph, "MatMul")
        bias = context.constant(add.inputs[1 - index])
        if matmul is None or bias is None or context.sole_reader(add.inputs[index]) is not add:
            continue
        weight = _matmul_weight(context, matmul, s)
        if weight is not None and _channel_last(bias, s):
            return _rebuild(context, matmul, add, bn, weight, bias, s, t)
    return None


def _channel_last(bias: np.ndarray, s: np.ndarray) -> bool:
    """A bias of rank <= 2 whose last axis broadcasts against the channels."""
    return bias.ndim <= 2 and bias.shape[-1:] in ((), (1,), s.shape)


def _rebuild(context, matmul, add, bn, weight, bias, s, t):
    """``MatMul(A, W * s) + (bias * s + t)`` in place of ``bn``."""
    graph = bn.graph
    w = context.add_constant(graph, bn, (weight * s[None, :]).astype(weight.dtype), matmul.inputs[1].name + "_bn")
    b = context.add_constant(graph, bn, (bias * s + t).astype(weight.dtype), w.name + "_bias")
    product = Value(context.fresh_name(matmul.outputs[0].name + "_bn"))
    graph.insert_before(bn, Node("MatMul", [matmul.inputs[0], w], outputs=[product], name=matmul.name))
    template = add if add is not None else Node("Add", [])
    _same_node(context, template, [product, b], list(template.attributes.values()), bn, bn.outputs[0])
    return [bn, add, matmul] if add is not None else [bn, matmul]
