"""Upsample and Resize across their versions.

* Upsample-9 and Resize-10 mean the same (asymmetric coordinates, ``floor(in * scale)``
  output, nearest rounding down when enlarging and up when shrinking): at 10 Upsample is
  deprecated and becomes Resize; going below 10, Resize becomes Upsample, which accepts
  only scales >= 1.
* Resize-11 adds ``roi`` and explicit coordinate and rounding modes: upgrading sets
  ``asymmetric`` and the rounding that the constant scales imply; downgrading accepts
  only what Resize-10 can say (asymmetric, nearest or linear, scales not sizes).
* Resize-13 makes ``roi`` and ``scales`` optional; Resize-11 needs them as empty tensors.
"""

from __future__ import annotations

import numpy as np

from ferry.convert.context import Converter, Step
from ferry.convert.registry import adapter
from ferry.ir import Attribute, AttributeType, Node, Value

__all__: list[str] = []


def _given(node: Node, index: int) -> Value | None:
    value = node.inputs[index] if index < len(node.inputs) else None
    return value if value is not None and value.name != "" else None


@adapter("Upsample", 10, up=True)
def _upsample_to_resize(node: Node, converter: Converter, step: Step) -> None:
    node.op_type = "Resize"


@adapter("Resize", 10, up=False)
def _resize_to_upsample(node: Node, converter: Converter, step: Step) -> None:
    scales = converter.constant(_given(node, 1))
    if scales is None or np.any(scales < 1):
        found = "computed at run time" if scales is None else scales.tolist()
        converter.block(node, f"Resize becomes Upsample at opset {step.target}, which needs constant "
                              f"scales >= 1; scales are {found}")
        return
    node.op_type = "Upsample"


def _nearest_rounding(scales: np.ndarray | None) -> str | None:
    """Resize-10's nearest rounding as one Resize-11 ``nearest_mode``, if one fits."""
    if scales is None:
        return None
    changed = scales[scales != 1]
    if np.all(changed >= 1):
        return "floor"
    if np.all(changed <= 1):
        return "ceil"
    return None


@adapter("Resize", 11, up=True)
def _resize_10_to_11(node: Node, converter: Converter, step: Step) -> None:
    mode = node.attribute("mode", "nearest")
    if mode == "nearest":
        rounding = _nearest_rounding(converter.constant(_given(node, 1)))
        if rounding is None:
            converter.block(node, "nearest Resize-10 rounds down when enlarging and up when shrinking "
                                  "an axis; the scales are not constant or do both, so no single "
                                  "nearest_mode of opset 11 matches")
            return
        node.attributes["nearest_mode"] = Attribute("nearest_mode", AttributeType.STRING, rounding)
    node.attributes["coordinate_transformation_mode"] = Attribute(
        "coordinate_transformation_mode", AttributeType.STRING, "asymmetric")
    roi = converter.add_constant(node, np.zeros(0, np.float32), f"{node.name or 'resize'}_roi")
    node.set_inputs([node.inputs[0], roi, *node.inputs[1:]])


_RESIZE_11_ONLY = ("coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a",
                   "exclude_outside", "extrapolation_value")


@adapter("Resize", 11, up=False)
def _resize_11_to_10(node: Node, converter: Converter, step: Step) -> None:
    reason = _resize_10_reason(node, converter)
    if reason:
        converter.block(node, f"{reason}; Resize at opset {step.target} only has asymmetric nearest "
                              f"(rounding down when enlarging, up when shrinking) and linear modes with scales")
        return
    roi = node.inputs[1]
    node.set_inputs([node.inputs[0], node.inputs[2]])
    converter.release(roi)
    for name in _RESIZE_11_ONLY:
        node.attributes.pop(name, None)


def _resize_10_reason(node: Node, converter: Converter) -> str | None:
    mode = node.attribute("mode", "nearest")
    coordinates = node.attribute("coordinate_transformation_mode", "half_pixel")
    if mode not in ("nearest", "linear"):
        return f"mode is {mode!r}"
    if coordinates != "asymmetric":
        return f"coordinate_transformation_mode is {coordinates!r}"
    if _given(node, 3) is not None:
        return "the output size is given by sizes"
    scales = _given(node, 2)
    data = converter.constant(scales)
    if scales is None or (data is not None and data.size == 0):
        return "scales are empty"
    if mode == "nearest":
        wanted = _nearest_rounding(data)
        found = node.attribute("nearest_mode", "round_prefer_floor")
        if wanted is None or found != wanted:
            return f"nearest_mode is {found!r} with scales {'unknown' if data is None else data.tolist()}"
    return None


@adapter("Resize", 13, up=False)
def _resize_optional_inputs_down(node: Node, converter: Converter, step: Step) -> None:
    inputs = list(node.inputs) + [None] * (3 - len(node.inputs))
    for index, name in ((1, "roi"), (2, "scales")):
        if _given(node, index) is None:
            inputs[index] = converter.add_constant(node, np.zeros(0, np.float32),
                                                   f"{node.name or 'resize'}_{name}")
    node.set_inputs(inputs)
