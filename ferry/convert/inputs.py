"""Attributes that became inputs (and back): one table, one pair of adapters.

Going up, the attribute's value becomes a Constant node feeding the new input. Going
down, the input must be a constant (an initializer or a Constant node) whose data
becomes the attribute; an input computed at run time blocks the node. Absent stays
absent on both sides (each entry's defaults agree) except where ``old_default`` says
what an absent attribute meant and ``new_default`` what an absent input means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ferry.convert.context import Converter, Step
from ferry.convert.registry import register
from ferry.ir import Attribute, AttributeType, Node

__all__ = ["MOVES", "Moved", "to_attributes", "to_inputs"]


@dataclass(frozen=True)
class Moved:
    """One attribute that is input ``index`` on the newer side.

    ``kind``: ``ints`` (INTS <-> int64 1-D), ``int_1d`` (INT <-> int64 [1]), ``int_scalar``
    (INT <-> int64 scalar), ``floats`` (FLOATS <-> float32 1-D), ``float32`` (FLOAT <->
    float32 scalar), ``like_data`` (FLOAT <-> scalar of input 0's element type).
    """

    attribute: str
    index: int
    kind: str
    old_default: object = None
    new_default: object = None


_AXES = Moved("axes", 1, "ints")
_REDUCE_18 = ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
              "ReduceMin", "ReduceProd", "ReduceSumSquare")

#: (op_type, version where the attribute became an input) -> what moved.
MOVES: dict[tuple[str, int], tuple[Moved, ...]] = {
    ("Squeeze", 13): (_AXES,),
    ("Unsqueeze", 13): (_AXES,),
    ("ReduceSum", 13): (_AXES,),
    **{(op, 18): (_AXES,) for op in _REDUCE_18},
    ("Split", 13): (Moved("split", 1, "ints"),),
    ("Slice", 10): (Moved("starts", 1, "ints"), Moved("ends", 2, "ints"), Moved("axes", 3, "ints")),
    ("TopK", 10): (Moved("k", 1, "int_1d"),),
    ("Clip", 11): (Moved("min", 1, "like_data"), Moved("max", 2, "like_data")),
    ("Pad", 11): (Moved("pads", 1, "ints"), Moved("value", 2, "like_data")),
    ("Upsample", 9): (Moved("scales", 1, "floats"),),
    ("Dropout", 12): (Moved("ratio", 1, "float32"),),
    ("DFT", 20): (Moved("axis", 2, "int_scalar", old_default=1, new_default=-2),),
}

_ATTRIBUTE_TYPES = {
    "ints": AttributeType.INTS, "int_1d": AttributeType.INT, "int_scalar": AttributeType.INT,
    "floats": AttributeType.FLOATS, "float32": AttributeType.FLOAT, "like_data": AttributeType.FLOAT,
}


def _array(node: Node, converter: Converter, moved: Moved, value: object) -> np.ndarray | str:
    """The input data for an attribute value, or a reason it cannot be made."""
    if moved.kind == "ints":
        return np.asarray(value, dtype=np.int64).reshape(-1)
    if moved.kind == "int_1d":
        return np.asarray([value], dtype=np.int64)
    if moved.kind == "int_scalar":
        return np.asarray(value, dtype=np.int64)
    if moved.kind == "floats":
        return np.asarray(value, dtype=np.float32).reshape(-1)
    if moved.kind == "float32":
        return np.asarray(value, dtype=np.float32)
    dtype = converter.dtype(node.inputs[0])
    if dtype is None or not dtype.is_floating or dtype.numpy.names:
        found = "unknown" if dtype is None else dtype.short_name
        return (f"the element type of input {node.inputs[0].name!r} is {found}; {moved.attribute} "
                f"must become a scalar input of that (floating-point) type")
    return np.asarray(value, dtype=dtype.numpy)


def to_inputs(node: Node, converter: Converter, step: Step, moves: tuple[Moved, ...]) -> None:
    """Upgrade: each moved attribute becomes a constant input (absent stays absent)."""
    arrays: dict[int, np.ndarray] = {}
    for moved in moves:
        attribute = node.attributes.get(moved.attribute)
        if attribute is not None and attribute.ref_attr_name is not None:
            converter.block(node, f"{moved.attribute} refers to function attribute "
                                  f"{attribute.ref_attr_name!r}; opset {step.target} needs a constant input")
            return
        value = attribute.value if attribute is not None else moved.old_default
        if value is None:
            continue
        made = _array(node, converter, moved, value)
        if isinstance(made, str):
            converter.block(node, made)
            return
        arrays[moved.index] = made
    for moved in moves:
        node.attributes.pop(moved.attribute, None)
    inputs = list(node.inputs)
    for index, array in sorted(arrays.items()):
        inputs += [None] * (index + 1 - len(inputs))
        base = f"{node.name or node.op_type.lower()}_{moved_name(moves, index)}"
        inputs[index] = converter.add_constant(node, array, base)
    node.set_inputs(inputs)


def moved_name(moves: tuple[Moved, ...], index: int) -> str:
    return next(m.attribute for m in moves if m.index == index)


def to_attributes(node: Node, converter: Converter, step: Step, moves: tuple[Moved, ...]) -> None:
    """Downgrade: each constant input becomes the attribute; a run-time input blocks."""
    found: dict[str, Attribute] = {}
    for moved in moves:
        value = node.inputs[moved.index] if moved.index < len(node.inputs) else None
        if value is None or value.name == "":
            if moved.new_default is not None:
                found[moved.attribute] = _attribute(moved, np.asarray(moved.new_default))
            continue
        data = converter.constant(value)
        if data is None:
            converter.block(node, f"{moved.attribute} of {node.op_type} node {node.name or ''!r} is "
                                  f"computed at run time; opset {step.target} needs it as an attribute")
            return
        found[moved.attribute] = _attribute(moved, data)
    inputs = list(node.inputs)
    for moved in moves:
        if moved.index < len(inputs):
            value, inputs[moved.index] = inputs[moved.index], None
            node.set_inputs(inputs)
            converter.release(value)
    node.attributes.update(found)


def _attribute(moved: Moved, data: np.ndarray) -> Attribute:
    kind = _ATTRIBUTE_TYPES[moved.kind]
    flat = data.reshape(-1)
    if kind == AttributeType.INTS:
        value: object = [int(v) for v in flat]
    elif kind == AttributeType.FLOATS:
        value = [float(v) for v in flat]
    elif kind == AttributeType.INT:
        value = int(flat[0])
    else:
        value = float(flat[0])
    return Attribute(moved.attribute, kind, value)


def _default_adapters() -> None:
    """Register the plain up and down adapters; families needing more wrap the helpers."""
    custom_down = {("Dropout", 12), ("Slice", 10), ("ReduceSum", 13),
                   *((op, 18) for op in _REDUCE_18)}
    for (op_type, boundary), moves in MOVES.items():
        register(op_type, boundary, True,
                 lambda node, converter, step, moves=moves: to_inputs(node, converter, step, moves))
        if (op_type, boundary) not in custom_down:
            register(op_type, boundary, False,
                     lambda node, converter, step, moves=moves: to_attributes(node, converter, step, moves))


_default_adapters()
