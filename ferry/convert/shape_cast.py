"""Casts, Shape, Reshape, quantization and OneHot: downgrades with a simple equivalent.

* CastLike (15) is a Cast to the element type of its second input, when that is known.
* Cast/CastLike ``saturate`` (19) only affects float8 results: elsewhere it is dropped.
* Shape ``start``/``end`` (15) become a Slice of the whole shape.
* Reshape ``allowzero=1`` (14) means nothing when the constant shape holds no zero.
* Quantize/DequantizeLinear ``axis`` (13) means nothing for a scalar (per-tensor) scale.
* OneHot accepts negative indices (counted from ``depth``) from 11: below, they are
  wrapped explicitly with Less, Add and Where unless the indices are constant non-negative.
"""

from __future__ import annotations

import numpy as np

from ferry.convert.context import Converter, Step
from ferry.convert.registry import adapter
from ferry.ir import Attribute, AttributeType, DataType, Node

__all__: list[str] = []

_FLOAT8 = {DataType.FLOAT8E4M3FN, DataType.FLOAT8E4M3FNUZ, DataType.FLOAT8E5M2, DataType.FLOAT8E5M2FNUZ}


@adapter("CastLike", 15, up=False)
def _castlike_down(node: Node, converter: Converter, step: Step) -> None:
    dtype = converter.dtype(node.inputs[1])
    if dtype is None:
        converter.block(node, f"CastLike becomes Cast at opset {step.target}, which needs the element "
                              f"type of {node.inputs[1].name!r}; it is unknown")
        return
    like = node.inputs[1]
    node.op_type = "Cast"
    node.attributes["to"] = Attribute("to", AttributeType.INT, int(dtype))
    node.set_inputs(node.inputs[:1])
    converter.release(like)


def _saturate_down(node: Node, converter: Converter, step: Step) -> None:
    if "saturate" not in node.attributes:
        return
    target = node.attribute("to")
    dtype = DataType(target) if target is not None else converter.dtype(node.inputs[1])
    if dtype is not None and dtype not in _FLOAT8:
        del node.attributes["saturate"]


adapter(("Cast", "CastLike"), 19, up=False)(_saturate_down)


@adapter("Shape", 15, up=False)
def _shape_range_down(node: Node, converter: Converter, step: Step) -> None:
    start = int(node.attributes.pop("start").value) if "start" in node.attributes else 0
    end = node.attributes.pop("end", None)
    if start == 0 and end is None:
        return
    whole = converter.insert_node(node, "Shape", [node.inputs[0]]).outputs[0]
    base = node.name or "shape"
    starts = converter.add_constant(node, np.asarray([start], np.int64), f"{base}_start")
    stop = int(end.value) if end is not None else np.iinfo(np.int64).max
    ends = converter.add_constant(node, np.asarray([stop], np.int64), f"{base}_end")
    node.op_type = "Slice"
    node.set_inputs([whole, starts, ends])  # the node keeps its output, now a Slice's


@adapter("Reshape", 14, up=False)
def _reshape_allowzero_down(node: Node, converter: Converter, step: Step) -> None:
    shape = converter.constant(node.inputs[1])
    if node.attribute("allowzero", 0) and shape is not None and not np.any(shape == 0):
        del node.attributes["allowzero"]


@adapter(("QuantizeLinear", "DequantizeLinear"), 13, up=False)
def _per_tensor_axis_down(node: Node, converter: Converter, step: Step) -> None:
    if "axis" in node.attributes and converter.rank(node.inputs[1]) == 0:
        del node.attributes["axis"]


@adapter("OneHot", 11, up=False)
def _onehot_negative_indices(node: Node, converter: Converter, step: Step) -> None:
    indices = node.inputs[0]
    data = converter.constant(indices)
    if data is not None and np.all(data >= 0):
        return
    dtype = converter.dtype(indices)
    if dtype is None:
        converter.block(node, f"OneHot accepts negative indices from opset 11; wrapping them at opset "
                              f"{step.target} needs the element type of {indices.name!r}, which is unknown")
        return
    base = node.name or "onehot"
    zero = converter.add_constant(node, np.zeros((), dtype.numpy), f"{base}_zero")
    negative = converter.insert_node(node, "Less", [indices, zero]).outputs[0]
    depth = converter.insert_node(node, "Cast", [node.inputs[1]], {"to": int(dtype)}).outputs[0]
    shifted = converter.insert_node(node, "Add", [indices, depth]).outputs[0]
    wrapped = converter.insert_node(node, "Where", [negative, shifted, indices]).outputs[0]
    node.set_inputs([wrapped, *node.inputs[1:]])
