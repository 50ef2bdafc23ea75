"""Reductions, Split, Slice and Dropout: the downgrades that need more than moving inputs.

* Reduce* (ReduceSum 13, the others 18): ``noop_with_empty_axes=1`` with no axes makes
  the node an Identity; empty constant axes with the default mean "reduce everything",
  which the older version says by omitting ``axes``.
* Split 18: ``num_outputs`` becomes an explicit ``split`` (ceil-sized chunks, the last
  one smaller), which needs the split axis' static size unless it divides evenly into
  the declared outputs' sizes.
* Slice 10: the older version has no ``steps``; all-ones steps are dropped.
* Dropout 12: ``training_mode`` must be absent or a constant false (inference); ``seed``
  only matters in training and is dropped. Dropout 10: the mask became bool.
"""

from __future__ import annotations

import numpy as np

from ferry.convert.context import Converter, Step
from ferry.convert.inputs import _REDUCE_18, MOVES, to_attributes
from ferry.convert.registry import adapter
from ferry.ir import Node

__all__: list[str] = []


def _reduce_down(node: Node, converter: Converter, step: Step) -> None:
    axes = node.inputs[1] if len(node.inputs) > 1 and node.inputs[1] is not None else None
    if axes is not None and axes.name == "":
        axes = None
    data = converter.constant(axes) if axes is not None else None
    empty = axes is None or (data is not None and data.size == 0)
    if node.attribute("noop_with_empty_axes", 0) and empty:
        node.op_type = "Identity"
        node.attributes.clear()
        node.set_inputs(node.inputs[:1])
        converter.release(axes)
        return
    node.attributes.pop("noop_with_empty_axes", None)
    if data is not None and data.size == 0:
        node.set_inputs(node.inputs[:1])
        converter.release(axes)
        return
    to_attributes(node, converter, step, MOVES[(node.op_type, step.boundary)])


adapter("ReduceSum", 13, up=False)(_reduce_down)
adapter(_REDUCE_18, 18, up=False)(_reduce_down)


@adapter("Split", 18, up=False)
def _split_down(node: Node, converter: Converter, step: Step) -> None:
    count = node.attributes.pop("num_outputs", None)
    if count is None or (len(node.inputs) > 1 and node.inputs[1] is not None):
        return
    parts = int(count.value)
    axis = int(node.attribute("axis", 0))
    size = converter.dim(node.inputs[0], axis)
    if size is None:
        sizes = [converter.dim(out, axis) for out in node.outputs]
        if any(s is None for s in sizes) or len(set(sizes)) != 1:
            converter.block(node, f"num_outputs={parts} of Split needs the static size of axis {axis} "
                                  f"of {node.inputs[0].name!r} to give opset {step.target} an explicit split")
            return
        return  # equal declared outputs: the older version's equal split means the same
    chunk = -(-size // parts)
    split = [min(chunk, size - chunk * i) for i in range(parts)]
    if len(set(split)) == 1:
        return
    value = converter.add_constant(node, np.asarray(split, np.int64), f"{node.name or 'split'}_split")
    node.set_inputs([node.inputs[0], value])


@adapter("Slice", 10, up=False)
def _slice_down(node: Node, converter: Converter, step: Step) -> None:
    steps = node.inputs[4] if len(node.inputs) > 4 else None
    if steps is not None and steps.name != "":
        data = converter.constant(steps)
        if data is None or not np.all(data == 1):
            converter.block(node, f"steps of Slice must be constant ones at opset {step.target} "
                                  f"(found {'a run-time value' if data is None else data.tolist()})")
            return
        node.set_inputs(node.inputs[:4])
        converter.release(steps)
    to_attributes(node, converter, step, MOVES[("Slice", 10)])


@adapter("Dropout", 12, up=False)
def _dropout_down(node: Node, converter: Converter, step: Step) -> None:
    training = node.inputs[2] if len(node.inputs) > 2 else None
    if training is not None and training.name != "":
        data = converter.constant(training)
        if data is None or bool(data.reshape(-1)[0]):
            converter.block(node, f"training_mode of Dropout is {'run-time' if data is None else 'true'}; "
                                  f"opset {step.target}'s Dropout only has inference behaviour")
            return
        node.set_inputs(node.inputs[:2])
        converter.release(training)
    node.attributes.pop("seed", None)
    to_attributes(node, converter, step, MOVES[("Dropout", 12)])


def _mask_used(node: Node, converter: Converter, step: Step) -> None:
    """The mask output changed type at 10 (T -> bool): a used mask blocks."""
    mask = node.outputs[1] if len(node.outputs) > 1 else None
    if mask is not None and mask.name and (mask.uses() or any(
            mask is out for g in converter.model.all_graphs() for out in g.outputs)):
        converter.block(node, f"the mask of Dropout is used; its type is bool from opset 10 and the "
                              f"input's type before, so opset {step.target} cannot produce it")


adapter("Dropout", 10, up=True)(_mask_used)
adapter("Dropout", 10, up=False)(_mask_used)

