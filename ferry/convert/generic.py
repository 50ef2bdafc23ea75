"""Schema-driven rules every version step applies, and the final check at the target.

Between two versions of an operator, the schema table tells what was added or removed.
An attribute added by the newer version is dropped when a node goes down, provided its
value is the one that reproduces the older version's behaviour (the schema default, or
:data:`OLD_BEHAVIOUR` where the default differs); any other value blocks. An optional
input or output the older version lacks blocks when it is used. Anything else that
changed in meaning is an adapter's business (see the family modules).
"""

from __future__ import annotations

import numpy as np

from ferry.convert.context import Converter, Step, replace_node, type_string
from ferry.ir import Attribute, AttributeType, Node
from ferry.opset import UNBOUNDED, get_schema, has_schema, schema_versions
from ferry.opset.schema import OpSchema

__all__ = [
    "OLD_BEHAVIOUR",
    "VALUES_ADDED",
    "VALUES_REMOVED",
    "VALUES_RENAMED",
    "check_at_target",
    "generic_step",
    "same_value",
]

#: (op_type, version that added the attribute, attribute) -> the value meaning "behave as
#: before", where that is not the schema default.
OLD_BEHAVIOUR: dict[tuple[str, int, str], object] = {
    ("RoiAlign", 16, "coordinate_transformation_mode"): "output_half_pixel",
}


#: (op_type, version, attribute) -> values that version introduced (a downgrade blocks on them).
VALUES_ADDED: dict[tuple[str, int, str], frozenset] = {
    ("Resize", 19, "coordinate_transformation_mode"): frozenset({"half_pixel_symmetric"}),
    ("Pad", 19, "mode"): frozenset({"wrap"}),
}
#: (op_type, version, attribute) -> values that version removed (an upgrade blocks on them).
VALUES_REMOVED: dict[tuple[str, int, str], frozenset] = {
    ("Resize", 13, "coordinate_transformation_mode"): frozenset({"tf_half_pixel_for_nn"}),
}
#: (op_type, version, attribute) -> {older spelling: newer spelling}.
VALUES_RENAMED: dict[tuple[str, int, str], dict[str, str]] = {
    ("GridSample", 20, "mode"): {"bilinear": "linear", "bicubic": "cubic"},
}


def _attribute_values(node: Node, converter: Converter, step: Step) -> None:
    """Apply the value tables for this node's operator at this step."""
    for (op_type, since, name), values in (VALUES_REMOVED if step.up else VALUES_ADDED).items():
        if (op_type, since) == (node.op_type, step.boundary) and node.attribute(name) in values:
            change = "removed" if step.up else "introduced"
            converter.block(node, f"{name}={node.attribute(name)!r} of {node.op_type} was {change} at "
                                  f"opset {since}; opset {step.target} has no equivalent")
            return
    for (op_type, since, name), renames in VALUES_RENAMED.items():
        if (op_type, since) != (node.op_type, step.boundary) or name not in node.attributes:
            continue
        mapping = renames if step.up else {new: old for old, new in renames.items()}
        value = node.attribute(name)
        if value in mapping:
            node.attributes[name] = Attribute(name, AttributeType.STRING, mapping[value])


def same_value(value: object, default: object) -> bool:
    """Whether an attribute's value equals a schema default (floats as float32)."""
    if isinstance(default, np.ndarray) or default is None:
        return False
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return len(value) == len(default) and all(same_value(v, d) for v, d in zip(value, default))
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, float) or isinstance(default, float):
        return isinstance(value, (int, float)) and np.float32(value) == np.float32(default)
    return value == default


def _present_inputs(node: Node) -> int:
    """The number of inputs up to the last one that is given."""
    count = 0
    for position, value in enumerate(node.inputs):
        if value is not None and value.name != "":
            count = position + 1
    return count


def _used(converter: Converter, node: Node, index: int) -> bool:
    value = node.outputs[index]
    if value is None or value.name == "":
        return False
    return bool(value.uses()) or any(value is out for g in converter.model.all_graphs() for out in g.outputs)


def _missing_reason(op_type: str, opset: int) -> str:
    versions = schema_versions(op_type)
    if not versions:
        return f"{op_type} is not an ai.onnx operator"
    if versions[0] > opset:
        return f"{op_type} does not exist at opset {opset} (it first appears at opset {versions[0]})"
    return f"{op_type} is deprecated at opset {opset} and no adapter replaces it"


def generic_step(node: Node, converter: Converter, step: Step) -> None:
    """Apply the attribute, input and output rules of one version step to ``node``."""
    if not has_schema(node.op_type, "", step.target) or get_schema(node.op_type, "", step.target).deprecated:
        converter.block(node, _missing_reason(node.op_type, step.target))
        return
    new = get_schema(node.op_type, "", step.target)
    _attribute_values(node, converter, step)
    old = get_schema(node.op_type, "", step.source) if has_schema(node.op_type, "", step.source) else None
    if step.up and old is not None:
        for (op_type, since, name), value in OLD_BEHAVIOUR.items():
            if op_type == node.op_type and since == new.since_version and name not in node.attributes:
                node.attributes[name] = Attribute.infer(name, value)
    for name in [n for n in node.attributes if n not in new.attributes]:
        _drop_or_block_attribute(node, converter, step, name, old)
    _fit_inputs(node, converter, step, new)
    if node.graph is not None and not converter.is_blocked(node):
        _fit_outputs(node, converter, step, new)


def _drop_or_block_attribute(node: Node, converter: Converter, step: Step, name: str, old: OpSchema | None) -> None:
    attribute = node.attributes[name]
    declared = old.attributes.get(name) if old is not None else None
    neutral = OLD_BEHAVIOUR.get((node.op_type, step.boundary, name), declared.default if declared else None)
    if not step.up and attribute.ref_attr_name is None and same_value(attribute.value, neutral):
        del node.attributes[name]
        return
    if step.up:
        reason = f"attribute {name!r} of {node.op_type} does not exist at opset {step.target}"
    else:
        reason = (f"attribute {name!r}={_show(attribute)} of {node.op_type} has no equivalent at "
                  f"opset {step.target} (added at opset {step.boundary}; only the default is dropped)")
    converter.block(node, reason)


def _show(attribute: Attribute) -> str:
    return str(attribute).split("=", 1)[1]


def _fit_inputs(node: Node, converter: Converter, step: Step, new: OpSchema) -> None:
    present = _present_inputs(node)
    limit = new.max_input if new.max_input != UNBOUNDED else present
    if present > limit:
        extra = node.inputs[limit]
        converter.block(node, f"input {limit} ({extra.name!r}) of {node.op_type} has no place at "
                              f"opset {step.target}, whose version takes at most {limit} inputs")
        return
    if len(node.inputs) > present:
        node.set_inputs(node.inputs[:present])


def _fit_outputs(node: Node, converter: Converter, step: Step, new: OpSchema) -> None:
    if len(node.outputs) <= new.max_output:
        return
    for index in range(new.max_output, len(node.outputs)):
        if _used(converter, node, index):
            converter.block(node, f"output {index} ({node.outputs[index].name!r}) of {node.op_type} is "
                                  f"used, but the version at opset {step.target} has at most "
                                  f"{new.max_output} outputs")
            return
    replace_node(converter, node, node.op_type, list(node.inputs), list(node.attributes.values()),
                 new.max_output)


# -- the final check ----------------------------------------------------------------------

def check_at_target(node: Node, converter: Converter, opset: int) -> None:
    """Block ``node`` if it does not fit its schema at ``opset``: required attributes,
    input and output counts, and the element types of every typed input and output."""
    if not has_schema(node.op_type, "", opset):
        converter.block(node, _missing_reason(node.op_type, opset))
        return
    schema = get_schema(node.op_type, "", opset)
    for name, declared in schema.attributes.items():
        if declared.required and name not in node.attributes:
            converter.block(node, f"attribute {name!r} is required by {node.op_type} at opset {opset}")
            return
    for name, attribute in node.attributes.items():
        if name not in schema.attributes:
            converter.block(node, f"attribute {name!r} of {node.op_type} does not exist at opset {opset}")
            return
        expected = schema.attributes[name].type
        if attribute.ref_attr_name is None and AttributeType[expected] != attribute.type:
            converter.block(node, f"attribute {name!r} is {attribute.type.name} but {node.op_type} "
                                  f"at opset {opset} expects {expected}")
            return
    present = _present_inputs(node)
    if present < schema.min_input or present > schema.max_input:
        converter.block(node, f"{node.op_type} at opset {opset} takes {schema.min_input} to "
                              f"{schema.max_input} inputs; the node has {present}")
        return
    _check_types(node, converter, schema, opset)


def _formal(parameters: tuple, index: int):
    if index < len(parameters):
        return parameters[index]
    if parameters and parameters[-1].option == "variadic":
        return parameters[-1]
    return None


def _check_types(node: Node, converter: Converter, schema: OpSchema, opset: int) -> None:
    for kind, values, formals in (("input", node.inputs, schema.inputs), ("output", node.outputs, schema.outputs)):
        for index, value in enumerate(values):
            formal = _formal(formals, index)
            if value is None or value.name == "" or formal is None:
                continue
            found = type_string(value.type) if value.type is not None else None
            if found is None and kind == "input":
                dtype = converter.dtype(value)
                found = f"tensor({dtype.short_name})" if dtype is not None else None
            if found is None:
                continue
            constraint = schema.type_constraints.get(formal.type_str)
            allowed = constraint.allowed if constraint is not None else (formal.type_str,)
            if found not in allowed:
                converter.block(node, f"{kind} {value.name!r} is {found}, which {node.op_type} does not "
                                      f"accept at opset {opset}")
                return
