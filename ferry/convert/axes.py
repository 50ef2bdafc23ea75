"""Axis semantics: Softmax-family coercion (13), negative axes (11), broadcasting (8).

* Softmax, LogSoftmax, Hardmax before 13 flatten the input to 2-D at ``axis`` and
  normalize each row; from 13 they normalize along ``axis`` alone. Upgrading, a node whose
  axis is the last one keeps meaning; any other becomes Flatten, the operator on axis 1,
  and a Reshape back to the input's shape. Downgrading, the last axis is ``-1`` (same
  meaning on both sides); another axis is moved last with a Transpose (rank needed).
* Before 11, axes could not be negative: a negative axis is made positive from the rank
  of the tensor it refers to, which must then be known.
* Max, Min, Mean and Sum broadcast from 8; at 7 their inputs must share one shape.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ferry.convert.context import Converter, Step
from ferry.convert.registry import adapter, register
from ferry.ir import Attribute, AttributeType, Node, Value

__all__ = ["NEGATIVE_AXES"]

_SOFTMAX = ("Softmax", "LogSoftmax", "Hardmax")


def _set_axis(node: Node, axis: int) -> None:
    node.attributes["axis"] = Attribute("axis", AttributeType.INT, axis)


@adapter(_SOFTMAX, 13, up=True)
def _softmax_up(node: Node, converter: Converter, step: Step) -> None:
    axis = int(node.attribute("axis", 1))
    rank = converter.rank(node.inputs[0])
    if axis == -1 or (rank is not None and axis % rank == rank - 1):
        _set_axis(node, -1)
        return
    x = node.inputs[0]
    shape = converter.insert_node(node, "Shape", [x]).outputs[0]
    flat = converter.insert_node(node, "Flatten", [x], {"axis": axis}).outputs[0]
    normalized = converter.insert_node(node, node.op_type, [flat], {"axis": 1}).outputs[0]
    node.op_type = "Reshape"
    node.attributes.clear()
    node.set_inputs([normalized, shape])


@adapter(_SOFTMAX, 13, up=False)
def _softmax_down(node: Node, converter: Converter, step: Step) -> None:
    axis = int(node.attribute("axis", -1))
    rank = converter.rank(node.inputs[0])
    if axis == -1 or (rank is not None and axis % rank == rank - 1):
        _set_axis(node, -1)
        return
    if rank is None:
        converter.block(node, f"{node.op_type} over axis {axis} of an input of unknown rank has no "
                              f"opset {step.target} form (that version flattens the trailing axes)")
        return
    axis %= rank
    perm = list(range(rank))
    perm[axis], perm[-1] = perm[-1], perm[axis]
    moved = converter.insert_node(node, "Transpose", [node.inputs[0]], {"perm": perm}).outputs[0]
    normalized = converter.insert_node(node, node.op_type, [moved], {"axis": rank - 1}).outputs[0]
    node.op_type = "Transpose"
    node.attributes.clear()
    node.attributes["perm"] = Attribute("perm", AttributeType.INTS, perm)
    node.set_inputs([normalized])


# -- negative axes, downgrading below 11 ---------------------------------------------------

def _input_rank(node: Node, converter: Converter) -> int | None:
    return converter.rank(node.inputs[0])


def _unsqueezed_rank(node: Node, converter: Converter) -> int | None:
    rank = converter.rank(node.inputs[0])
    return None if rank is None else rank + len(node.attribute("axes", []))


def _flatten_rank(node: Node, converter: Converter) -> int | None:
    return converter.rank(node.inputs[0])


_REDUCE = ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
           "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare")
RankOf = Callable[[Node, Converter], "int | None"]

#: op_type -> (attribute holding axes, how to find the rank they count in).
NEGATIVE_AXES: dict[str, tuple[str, RankOf]] = {
    "Concat": ("axis", _input_rank),
    "Flatten": ("axis", _flatten_rank),
    "Gather": ("axis", _input_rank),
    "Split": ("axis", _input_rank),
    "Squeeze": ("axes", _input_rank),
    "Unsqueeze": ("axes", _unsqueezed_rank),
    "ArgMax": ("axis", _input_rank),
    "ArgMin": ("axis", _input_rank),
    "Compress": ("axis", _input_rank),
    **{op: ("axes", _input_rank) for op in _REDUCE},
    **{op: ("axis", _input_rank) for op in _SOFTMAX},
}


def _negative_axes_down(node: Node, converter: Converter, step: Step) -> None:
    name, rank_of = NEGATIVE_AXES[node.op_type]
    value = node.attribute(name)
    if value is None:
        return
    axes = value if isinstance(value, list) else [value]
    if all(a >= 0 for a in axes):
        return
    rank = rank_of(node, converter)
    if rank is None:
        converter.block(node, f"{name}={value} of {node.op_type} is negative, which opset "
                              f"{step.target} does not allow, and the rank it counts in is unknown")
        return
    fixed = [a % rank if a < 0 else a for a in axes]
    kind = AttributeType.INTS if isinstance(value, list) else AttributeType.INT
    node.attributes[name] = Attribute(name, kind, fixed if isinstance(value, list) else fixed[0])


for _op in NEGATIVE_AXES:
    register(_op, 11, False, _negative_axes_down)


@adapter("Slice", 11, up=False)
def _slice_axes_down(node: Node, converter: Converter, step: Step) -> None:
    axes = node.inputs[3] if len(node.inputs) > 3 else None
    data = converter.constant(axes) if axes is not None and axes.name else None
    if axes is None or not axes.name or (data is not None and np.all(data >= 0)):
        return
    rank = converter.rank(node.inputs[0])
    if data is None or rank is None:
        converter.block(node, f"axes of Slice may be negative, which opset {step.target} does not "
                              f"allow, and {'they are computed at run time' if data is None else 'the rank is unknown'}")
        return
    fixed = converter.add_constant(node, np.where(data < 0, data + rank, data).astype(data.dtype),
                                   f"{node.name or 'slice'}_axes")
    inputs = list(node.inputs)
    inputs[3] = fixed
    node.set_inputs(inputs)
    converter.release(axes)


# -- broadcasting variadic operators, downgrading to 7 -------------------------------------

def _shapes_equal(values: list[Value]) -> bool:
    shapes = [v.shape for v in values]
    if any(s is None or not s.is_static() for s in shapes):
        return False
    return all(tuple(s) == tuple(shapes[0]) for s in shapes)


@adapter(("Max", "Min", "Mean", "Sum"), 8, up=False)
def _variadic_broadcast_down(node: Node, converter: Converter, step: Step) -> None:
    values = [v for v in node.inputs if v is not None]
    if len(values) > 1 and not _shapes_equal(values):
        converter.block(node, f"{node.op_type} at opset {step.target} needs inputs of one static "
                              f"shape (no broadcasting); found "
                              f"{', '.join(str(v.shape) for v in values)}")
