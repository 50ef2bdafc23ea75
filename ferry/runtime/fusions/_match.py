"""Pattern helpers shared by the fusions."""

from __future__ import annotations

import numpy as np

from ferry.ir import Node, Value
from ferry.passes._context import Context, is_standard

__all__ = ["activation_of", "other_input", "sole_standard_reader", "scalar_constant"]


def sole_standard_reader(context: Context, value: Value, op_types: set[str]) -> Node | None:
    """The single standard node of ``op_types`` reading ``value`` (in its graph), if any."""
    reader = context.sole_reader(value)
    if reader is None or reader.op_type not in op_types or not is_standard(reader):
        return None
    producer = value.producer()
    return reader if producer is None or reader.graph is producer.graph else None


def other_input(add: Node, value: Value) -> Value | None:
    """The input of a two-input ``add`` that is not ``value``."""
    return add.inputs[1] if add.inputs[0] is value else add.inputs[0]


def scalar_constant(context: Context, value: Value | None) -> float | None:
    """The value of a constant holding a single number, else None."""
    data = context.constant(value)
    if data is None or data.size != 1 or data.dtype.kind not in "fiu":
        return None
    return float(data.reshape(-1)[0])


def activation_of(context: Context, node: Node) -> tuple[str, float, float] | None:
    """(activation, alpha, beta) when ``node`` is an activation a fused epilogue can apply:
    Relu, LeakyRelu, or Clip with constant bounds; else None."""
    if node.op_type == "Relu":
        return "Relu", 0.0, 0.0
    if node.op_type == "LeakyRelu":
        return "LeakyRelu", float(node.attribute("alpha", 0.01)), 0.0
    if node.op_type != "Clip":
        return None
    if context.opset < 11:
        return "Clip", float(node.attribute("min", -np.inf)), float(node.attribute("max", np.inf))
    bounds = []
    for index, default in ((1, -np.inf), (2, np.inf)):
        value = node.inputs[index] if len(node.inputs) > index else None
        if value is None:
            bounds.append(default)
            continue
        bound = scalar_constant(context, value)
        if bound is None:
            return None
        bounds.append(bound)
    return "Clip", bounds[0], bounds[1]
