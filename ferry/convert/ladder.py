"""``convert_version``: walk a model's ai.onnx opset up or down one version at a time.

At each rung, every node whose operator has a different version on the two sides gets
the registered adapter for that change (if any), then the schema-driven rules of
:mod:`ferry.convert.generic`. Nodes inserted by adapters are already valid at the rung's
target and take part in the following rungs. Subgraphs (If, Loop, Scan bodies) and
model-local function bodies are converted with the graph. The work happens on a copy;
if any node cannot be converted, :class:`ConversionError` lists them all and the input
model is returned to nobody changed.
"""

from __future__ import annotations

from ferry.convert.context import Converter, Step
from ferry.convert.generic import check_at_target, generic_step
from ferry.convert.registry import find_adapter
from ferry.errors import ConversionError, InvalidArgument
from ferry.ir import Graph, Model, Node
from ferry.opset import get_schema, has_schema, latest_opset

__all__ = ["MIN_OPSET", "convert_version", "ir_version_for"]

MIN_OPSET = 7
"""The oldest ai.onnx opset converted from or to."""

# (first opset, IR version of the onnx release that introduced it), newest first.
_IR_FOR_OPSET = [
    (28, 14), (25, 13), (24, 12), (23, 11), (21, 10), (19, 9), (15, 8), (12, 7), (11, 6),
    (10, 5), (9, 4), (7, 3),
]
_DEFAULT_DOMAINS = ("", "ai.onnx")


def ir_version_for(opset: int) -> int:
    """The IR version of the onnx release that introduced ai.onnx ``opset``."""
    for first, ir_version in _IR_FOR_OPSET:
        if opset >= first:
            return ir_version
    return 3


def convert_version(model: Model, target_opset: int) -> Model:
    """A copy of ``model`` whose ai.onnx operators are expressed at ``target_opset``.

    Raises :class:`~ferry.errors.ConversionError` (``.blocking`` lists each node and
    reason) when some node has no equivalent at the target; the model is not changed.
    Other domains (ai.onnx.ml, custom) keep their imports and nodes as they are.
    """
    source = model.opset
    newest = latest_opset()
    if not isinstance(target_opset, int) or not MIN_OPSET <= target_opset <= newest:
        raise InvalidArgument(f"target opset {target_opset!r} is out of range: ferry converts "
                              f"between ai.onnx opsets {MIN_OPSET} and {newest}")
    if not MIN_OPSET <= source <= newest:
        raise InvalidArgument(f"the model imports ai.onnx opset {source or 'none'}; ferry converts "
                              f"models of opsets {MIN_OPSET} to {newest}")
    from ferry.format import model_from_bytes, model_to_bytes

    copy = model_from_bytes(model_to_bytes(model))
    converter = Converter(copy, model)
    roots = _roots(copy, converter)
    for step in _steps(source, target_opset):
        converter.opset = step.source
        for node in [n for root in roots for n in root.all_nodes()]:
            _convert_node(node, converter, step)
    converter.opset = target_opset
    for node in [n for root in roots for n in root.all_nodes()]:
        if node.domain in _DEFAULT_DOMAINS and not converter.is_blocked(node):
            check_at_target(node, converter, target_opset)
    if converter.blocked:
        raise _error(converter, source, target_opset)
    _set_versions(copy, target_opset)
    return copy


def _steps(source: int, target: int) -> list[Step]:
    direction = 1 if target > source else -1
    return [Step(v, v + direction) for v in range(source, target, direction)]


def _roots(model: Model, converter: Converter) -> list[Graph]:
    """The main graph and the function bodies that import the model's ai.onnx version."""
    roots = [model.graph]
    for function in model.functions.values():
        imported = function.opset_imports.get("", function.opset_imports.get("ai.onnx"))
        if imported is None or imported == model.opset:
            roots.append(function.graph)
        elif function.graph.nodes:
            converter.block(function.graph.nodes[0], f"function {function.domain}::{function.name} "
                            f"imports ai.onnx opset {imported}, not the model's {model.opset}")
    return roots


def _convert_node(node: Node, converter: Converter, step: Step) -> None:
    if node.domain not in _DEFAULT_DOMAINS or converter.is_blocked(node) or node.graph is None:
        return
    if not has_schema(node.op_type, "", step.source):
        converter.block(node, f"{node.op_type} is not an operator of ai.onnx opset {step.source}")
        return
    before = get_schema(node.op_type, "", step.source)
    after = get_schema(node.op_type, "", step.target) if has_schema(node.op_type, "", step.target) else None
    if after is not None and after.since_version == before.since_version:
        return
    adapt = find_adapter(node.op_type, step.boundary, step.up)
    if adapt is not None:
        adapt(node, converter, step)
    if node.graph is not None and not converter.is_blocked(node):
        generic_step(node, converter, step)


def _error(converter: Converter, source: int, target: int) -> ConversionError:
    blocking = [(node.describe(), reason) for node, reason in converter.blocked.values()]
    lines = "\n".join(f"  {where}: {reason}" for where, reason in blocking)
    count = len(blocking)
    return ConversionError(
        f"cannot convert the model from ai.onnx opset {source} to {target}: {count} node"
        f"{'s' if count != 1 else ''} cannot be expressed at opset {target}; nothing was "
        f"converted\n{lines}",
        blocking,
    )


def _set_versions(model: Model, target: int) -> None:
    key = "ai.onnx" if "ai.onnx" in model.opset_imports and "" not in model.opset_imports else ""
    model.opset_imports[key] = target
    for function in model.functions.values():
        for name in _DEFAULT_DOMAINS:
            if name in function.opset_imports:
                function.opset_imports[name] = target
    model.ir_version = max(ir_version_for(target), _content_ir_floor(model))


def _content_ir_floor(model: Model) -> int:
    """The oldest IR version that can hold the model's contents: initializers that are
    not graph inputs need IR 4, model-local functions IR 8."""
    if model.functions:
        return 8
    for graph in model.all_graphs():
        inputs = {id(v) for v in graph.inputs}
        if any(id(v) not in inputs for v in graph.initializers.values()):
            return 4
    return 3
