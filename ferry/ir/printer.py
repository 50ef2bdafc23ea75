"""A compact, readable text form of models and graphs: one line per node.

```
model ir_version=8 opsets=[ai.onnx:13] producer='pytorch 2.13'
graph 'main' (
    %input: float[batch,3,224,224]
) -> (
    %logits: float[batch,1000]
)
initializers (2, 9,472 values, 37.0 KiB):
    %conv.weight: float[64,3,7,7]  (9,408 values)
    %shape: int64[2] = [1, -1]
    %y: float[batch,64,112,112] = Conv(%input, %conv.weight) {strides=[2, 2]}  # conv1
```
Weights are summarized, never dumped: only tensors of at most 8 elements show values.
"""

from __future__ import annotations

from ferry.ir.attribute import Attribute, _format_value
from ferry.ir.graph import Graph, Node, Value
from ferry.ir.model import Function, Model
from ferry.ir.tensor import Tensor

__all__ = ["to_text"]

_INDENT = "    "


def to_text(obj: Model | Graph | Function | Node) -> str:
    """Render a model, graph, function or node as text."""
    if isinstance(obj, Model):
        return _model(obj)
    if isinstance(obj, Function):
        return "\n".join(_function(obj, ""))
    if isinstance(obj, Graph):
        return "\n".join(_graph(obj, ""))
    if isinstance(obj, Node):
        return "\n".join(_node(obj, ""))
    raise TypeError(f"cannot print a {type(obj).__name__}")


def _model(model: Model) -> str:
    opsets = ", ".join(f"{d or 'ai.onnx'}:{v}" for d, v in model.opset_imports.items())
    header = f"model ir_version={model.ir_version} opsets=[{opsets}]"
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p)
    if producer:
        header += f" producer={producer!r}"
    lines = [header, *_graph(model.graph, "")]
    for function in model.functions.values():
        lines.append("")
        lines.extend(_function(function, ""))
    return "\n".join(lines)


def _value(value: Value | None) -> str:
    if value is None:
        return "%<none>"
    return f"%{value.name}" if value.type is None else f"%{value.name}: {value.type}"


def _tensor_summary(tensor: Tensor) -> str:
    text = f"{tensor.dtype.short_name}{list(tensor.shape)}".replace(" ", "")
    if tensor.size <= 8:
        return f"{text} = {_format_value(tensor.numpy().reshape(-1).tolist()) if tensor.dtype.numpy.names is None else '<bits>'}"
    return f"{text}  ({tensor.size:,} values)"


def _graph(graph: Graph, indent: str) -> list[str]:
    inner = indent + _INDENT
    lines = [f"{indent}graph {graph.name or ''!r} ("]
    lines += [f"{inner}{_value(v)}" for v in graph.inputs if v.name not in graph.initializers]
    backed = sum(1 for v in graph.inputs if v.name in graph.initializers)
    if backed:
        lines.append(f"{inner}# and {backed} inputs with initializer defaults")
    lines.append(f"{indent}) -> (")
    lines += [f"{inner}{_value(v)}" for v in graph.outputs]
    lines.append(f"{indent})")
    if graph.initializers:
        tensors = [v.const_value for v in graph.initializers.values()]
        values = sum(t.size for t in tensors)
        size = sum(t.nbytes for t in tensors)
        lines.append(f"{indent}initializers ({len(tensors)}, {values:,} values, {_bytes(size)}):")
        for value in graph.initializers.values():
            lines.append(f"{inner}%{value.name}: {_tensor_summary(value.const_value)}")
    for node in graph:
        lines.extend(_node(node, inner))
    return lines


def _node(node: Node, indent: str) -> list[str]:
    outputs = ", ".join(_value(v) for v in node.outputs)
    inputs = ", ".join("%" + v.name if v is not None else "%<none>" for v in node.inputs)
    op = f"{node.domain}::{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type
    plain = [a for a in node.attributes.values() if not _holds_graph(a)]
    attrs = " {" + ", ".join(_attribute(a) for a in plain) + "}" if plain else ""
    comment = f"  # {node.name}" if node.name else ""
    lines = [f"{indent}{outputs} = {op}({inputs}){attrs}{comment}"]
    for attribute in node.attributes.values():
        if _holds_graph(attribute):
            graphs = attribute.value if isinstance(attribute.value, list) else [attribute.value]
            for graph in graphs:
                lines.append(f"{indent}{_INDENT}{attribute.name}:")
                lines.extend(_graph(graph, indent + 2 * _INDENT))
    return lines


def _holds_graph(attribute: Attribute) -> bool:
    value = attribute.value
    return isinstance(value, Graph) or (
        isinstance(value, list) and any(isinstance(v, Graph) for v in value)
    )


def _attribute(attribute: Attribute) -> str:
    if isinstance(attribute.value, Tensor):
        return f"{attribute.name}={_tensor_summary(attribute.value)}"
    return str(attribute)


def _function(function: Function, indent: str) -> list[str]:
    params = ", ".join(function.attribute_names + list(function.attribute_defaults))
    header = f"{indent}function {function.domain}::{function.name}"
    if params:
        header += f" <{params}>"
    return [header, *_graph(function.graph, indent)[1:]]


def _bytes(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{size} B"
        size /= 1024
    return f"{size} B"
