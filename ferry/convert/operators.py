"""Single-operator changes: renames, optional inputs, attribute forms, per-channel scales.

* Scatter (deprecated at 11) is ScatterElements; below 11 ScatterElements is Scatter.
* Gemm's C is optional from 11: below, an absent C becomes a zero scalar.
* Constant: ``value_*`` attributes (12) and ``sparse_value`` (11) become a dense
  ``value`` tensor below those versions.
* BatchNormalization 9 dropped ``spatial`` (only the default 1 remains expressible);
  at 14 the training outputs changed meaning, so used ones block.
* GridSample below 20 handles only 4-D inputs.
* Pad 18 added ``axes``: below, constant axes and pads become full-rank pads.
* GroupNormalization 21 scales per channel instead of per group (18, deprecated).
* Scan 9 dropped the batch axis and ``sequence_lens``: no equivalent either way.
"""

from __future__ import annotations

import numpy as np

from ferry.convert.context import Converter, Step
from ferry.convert.registry import adapter
from ferry.ir import ArrayTensor, Attribute, AttributeType, Node

__all__: list[str] = []


@adapter("Scatter", 11, up=True)
def _scatter_up(node: Node, converter: Converter, step: Step) -> None:
    node.op_type = "ScatterElements"


@adapter("ScatterElements", 11, up=False)
def _scatter_down(node: Node, converter: Converter, step: Step) -> None:
    indices = converter.constant(node.inputs[1])
    if indices is not None and np.any(indices < 0):
        converter.block(node, f"negative indices of ScatterElements have no opset {step.target} form")
        return
    node.op_type = "Scatter"


@adapter("Gemm", 11, up=False)
def _gemm_down(node: Node, converter: Converter, step: Step) -> None:
    if len(node.inputs) > 2 and node.inputs[2] is not None and node.inputs[2].name:
        return
    dtype = converter.dtype(node.inputs[0])
    if dtype is None:
        converter.block(node, f"Gemm without C needs a zero C at opset {step.target}, of A's element "
                              f"type, which is unknown")
        return
    zero = converter.add_constant(node, np.zeros((), dtype.numpy), f"{node.name or 'gemm'}_c")
    node.set_inputs([*node.inputs[:2], zero])


def _dense_value(node: Node, converter: Converter) -> None:
    data = converter.constant(node.outputs[0])
    if data is None:
        return
    node.attributes.clear()
    node.attributes["value"] = Attribute("value", AttributeType.TENSOR, ArrayTensor(data))


@adapter("Constant", 12, up=False)
def _constant_12_down(node: Node, converter: Converter, step: Step) -> None:
    if any(name.startswith("value_") for name in node.attributes):
        if any(a.ref_attr_name for a in node.attributes.values()):
            converter.block(node, "Constant refers to a function attribute; opset "
                                  f"{step.target} needs its value as a tensor")
            return
        _dense_value(node, converter)


@adapter("Constant", 11, up=False)
def _constant_11_down(node: Node, converter: Converter, step: Step) -> None:
    if "sparse_value" in node.attributes:
        _dense_value(node, converter)


@adapter("BatchNormalization", 9, up=True)
def _batchnorm_spatial(node: Node, converter: Converter, step: Step) -> None:
    if node.attribute("spatial", 1) != 1:
        converter.block(node, "spatial=0 (statistics per element, not per channel) was removed at "
                              "opset 9")
        return
    node.attributes.pop("spatial", None)


@adapter("BatchNormalization", 14, up=True)
def _batchnorm_training_outputs(node: Node, converter: Converter, step: Step) -> None:
    for value in node.outputs[1:]:
        if value is not None and value.name and (value.uses() or any(
                value is out for g in converter.model.all_graphs() for out in g.outputs)):
            converter.block(node, f"output {value.name!r} is a training statistic of opset 9's "
                                  "BatchNormalization; from opset 14 those outputs mean running "
                                  "statistics in training mode")
            return


@adapter("GridSample", 20, up=False)
def _grid_sample_down(node: Node, converter: Converter, step: Step) -> None:
    rank = converter.rank(node.inputs[0])
    if rank != 4:
        converter.block(node, f"GridSample at opset {step.target} takes 4-D inputs only; the input's "
                              f"rank is {'unknown' if rank is None else rank}")


@adapter("Pad", 18, up=False)
def _pad_axes_down(node: Node, converter: Converter, step: Step) -> None:
    axes_value = node.inputs[3] if len(node.inputs) > 3 else None
    if axes_value is None or not axes_value.name:
        return
    axes, pads = converter.constant(axes_value), converter.constant(node.inputs[1])
    rank = converter.rank(node.inputs[0])
    if axes is None or pads is None or rank is None:
        converter.block(node, f"axes of Pad need constant axes and pads and a known rank to become "
                              f"full-rank pads at opset {step.target}")
        return
    full = np.zeros(2 * rank, np.int64)
    for position, axis in enumerate(int(a) % rank for a in axes.reshape(-1)):
        full[axis], full[axis + rank] = pads[position], pads[position + len(axes)]
    value = converter.add_constant(node, full, f"{node.name or 'pad'}_pads")
    old_pads = node.inputs[1]
    node.set_inputs([node.inputs[0], value, *node.inputs[2:3]])
    converter.release(old_pads)
    converter.release(axes_value)


@adapter("GroupNormalization", 21, up=True)
def _group_norm_per_channel(node: Node, converter: Converter, step: Step) -> None:
    groups = int(node.attribute("num_groups", 0))
    channels = converter.dim(node.inputs[0], 1)
    params = [converter.constant(v) for v in node.inputs[1:3]]
    if channels is None or groups <= 0 or channels % groups or any(p is None for p in params):
        converter.block(node, "GroupNormalization takes scale and bias per channel from opset 21; "
                              "expanding the per-group ones needs them constant and a static "
                              "channel count")
        return
    inputs = [node.inputs[0]]
    for value, data in zip(node.inputs[1:3], params):
        repeated = np.repeat(data.reshape(-1), channels // groups)
        inputs.append(converter.add_constant(node, repeated, f"{node.name or 'groupnorm'}_{value.name}"))
        converter.release(value)
    node.set_inputs(inputs)


@adapter("GroupNormalization", 21, up=False)
def _group_norm_down(node: Node, converter: Converter, step: Step) -> None:
    converter.block(node, "GroupNormalization before opset 21 is deprecated (per-group scale and "
                          "bias); ferry does not expand it")


def _scan_block(node: Node, converter: Converter, step: Step) -> None:
    converter.block(node, "Scan-8 has a batch axis and sequence_lens, Scan-9 has neither; "
                          "ferry has no rewrite between them")


adapter("Scan", 9, up=True)(_scan_block)
adapter("Scan", 9, up=False)(_scan_block)
