"""What adapters see while the converter walks from one opset to the next.

A :class:`Step` is one rung of the ladder (opset ``source`` to ``target``, adjacent).
The :class:`Converter` holds the model copy being rewritten and the helpers adapters
share: reading constant inputs, making Constant nodes, element types and ranks, fresh
names, and :meth:`Converter.block` to record why a node cannot be converted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ferry.ir import (
    ArrayTensor,
    Attribute,
    AttributeType,
    DataType,
    Model,
    Node,
    Value,
    from_numpy_dtype,
)
from ferry.ir.attribute import CONSTANT_VALUE_ATTRIBUTES, constant_attribute_array
from ferry.ir.graph import fresh_name
from ferry.ir.types import OptionalType, SequenceType, TensorType
from ferry.opset import get_schema, has_schema

__all__ = ["Converter", "Step", "type_string"]


@dataclass(frozen=True)
class Step:
    """One rung: from ai.onnx opset ``source`` to the adjacent ``target``."""

    source: int
    target: int

    @property
    def up(self) -> bool:
        return self.target > self.source

    @property
    def boundary(self) -> int:
        """The opset whose operator versions this step enters (up) or leaves (down)."""
        return max(self.source, self.target)


def type_string(type_: object) -> str | None:
    """The schema spelling of a value's type (``tensor(float)``), or None when unknown."""
    if isinstance(type_, TensorType):
        return f"tensor({type_.dtype.short_name})" if type_.dtype is not None else None
    if isinstance(type_, (SequenceType, OptionalType)):
        inner = type_string(type_.elem_type)
        kind = "seq" if isinstance(type_, SequenceType) else "optional"
        return f"{kind}({inner})" if inner is not None else None
    return None


class Converter:
    """The model copy being converted, the current opset, and the blocking reasons found."""

    def __init__(self, model: Model, original: Model | None = None) -> None:
        self.model = model
        self.opset = model.opset
        self._original = original if original is not None else model
        self._inferred: dict[str, Value] | None = None
        self.blocked: dict[int, tuple[Node, str]] = {}
        self._names = {v.name for g in model.all_graphs() for v in g.values()}
        self._names |= {n.name for g in model.all_graphs() for n in g if n.name}

    # -- blocking ---------------------------------------------------------------------
    def block(self, node: Node, reason: str) -> None:
        """Record that ``node`` cannot be converted (the first reason per node is kept)."""
        self.blocked.setdefault(id(node), (node, reason))

    def is_blocked(self, node: Node) -> bool:
        return id(node) in self.blocked

    # -- names ------------------------------------------------------------------------
    def fresh_name(self, base: str) -> str:
        """A value or node name not used anywhere in the model yet."""
        return fresh_name(base, self._names)

    # -- constants --------------------------------------------------------------------
    def constant(self, value: Value | None) -> np.ndarray | None:
        """The data of ``value`` when it is an initializer or a Constant node's output."""
        if value is None:
            return None
        if value.const_value is not None:
            return np.asarray(value.const_value.numpy())
        producer = value.producer()
        if producer is None or producer.op_type != "Constant" or producer.domain not in ("", "ai.onnx"):
            return None
        return _constant_node_data(producer)

    def add_constant(self, anchor: Node, array: np.ndarray, base: str) -> Value:
        """A Constant node holding ``array``, inserted before ``anchor``; returns its output."""
        array = np.asarray(array)
        output = Value(self.fresh_name(base), TensorType(from_numpy_dtype(array.dtype), array.shape))
        tensor = ArrayTensor(array)
        node = Node(
            "Constant",
            [],
            [Attribute("value", AttributeType.TENSOR, tensor)],
            outputs=[output],
            name=self.fresh_name(base),
        )
        anchor.graph.insert_before(anchor, node)
        return output

    def insert_node(self, anchor: Node, op_type: str, inputs: list, attributes: dict | None = None,
                    *, outputs: list[Value] | None = None, base: str = "") -> Node:
        """A new ai.onnx node inserted before ``anchor`` (outputs get fresh names)."""
        base = base or f"{anchor.name or anchor.op_type}_{op_type.lower()}"
        if outputs is None:
            outputs = [Value(self.fresh_name(base))]
        node = Node(op_type, inputs, attributes or {}, outputs=outputs, name=self.fresh_name(base))
        anchor.graph.insert_before(anchor, node)
        return node

    def release(self, value: Value | None) -> None:
        """Remove the Constant node producing ``value`` once nothing reads it any more."""
        if value is None or value.uses():
            return
        producer = value.producer()
        if producer is None or producer.op_type != "Constant" or producer.graph is None:
            return
        graph = producer.graph
        if any(out is value for out in graph.outputs):
            return
        graph.remove(producer)

    # -- types ------------------------------------------------------------------------
    def inferred(self, value: Value) -> Value | None:
        """``value`` as ferry's shape inference sees it in the original model (run once,
        on first need; None when inference fails or does not know the value)."""
        if self._inferred is None:
            self._inferred = {}
            try:
                from ferry.shapes import infer

                result = infer(self._original)
                for graph in result.model.all_graphs():
                    self._inferred.update((v.name, v) for v in graph.values() if v.name)
            except Exception:  # noqa: BLE001 - inference is a hint; conversion must not fail on it
                self._inferred = {}
        return self._inferred.get(value.name) if value.name else None

    def _shape(self, value: Value):
        if value.shape is not None:
            return value.shape
        known = self.inferred(value)
        return known.shape if known is not None else None

    def dtype(self, value: Value | None, depth: int = 0) -> DataType | None:
        """The element type of ``value``: declared, or followed back through its producer's
        schema (a type variable shared with a typed input, a fixed type, Cast's ``to``)."""
        if value is None:
            return None
        if value.dtype is not None:
            return value.dtype
        if value.const_value is not None:
            return value.const_value.dtype
        producer = value.producer()
        if producer is None or depth > 64 or producer.domain not in ("", "ai.onnx"):
            found = None
        else:
            found = self._produced_dtype(producer, value.index or 0, depth)
        if found is None:
            known = self.inferred(value)
            found = known.dtype if known is not None else None
        return found

    def _produced_dtype(self, node: Node, index: int, depth: int) -> DataType | None:
        if node.op_type in ("Cast", "EyeLike", "RandomNormalLike", "RandomUniformLike") and "to" in node.attributes:
            return DataType(node.attribute("to"))
        if node.op_type == "Constant":
            data = _constant_node_data(node)
            return None if data is None else _dtype_of(data)
        if not has_schema(node.op_type, node.domain, self.opset):
            return None
        schema = get_schema(node.op_type, node.domain, self.opset)
        if index >= len(schema.outputs) and not (schema.outputs and schema.outputs[-1].option == "variadic"):
            return None
        formal = schema.outputs[min(index, len(schema.outputs) - 1)].type_str
        if formal.startswith("tensor(") and formal[7:-1] in _BY_SHORT_NAME:
            return _BY_SHORT_NAME[formal[7:-1]]
        for position, value in enumerate(node.inputs):
            if value is None or position >= len(schema.inputs) and schema.inputs[-1].option != "variadic":
                continue
            if schema.inputs[min(position, len(schema.inputs) - 1)].type_str == formal:
                found = self.dtype(value, depth + 1)
                if found is not None:
                    return found
        return None

    def rank(self, value: Value | None) -> int | None:
        """The rank of ``value`` when its shape is declared or it is a constant."""
        if value is None:
            return None
        data = self.constant(value)
        if data is not None:
            return data.ndim
        shape = self._shape(value)
        return shape.rank if shape is not None else None

    def dim(self, value: Value | None, axis: int) -> int | None:
        """The static size of ``value`` along ``axis``, if known."""
        shape = self._shape(value) if value is not None else None
        if shape is None or not -shape.rank <= axis < shape.rank:
            return None
        size = shape[axis]
        return size if isinstance(size, int) else None


_BY_SHORT_NAME = {d.short_name: d for d in DataType if d != DataType.UNDEFINED}


def _dtype_of(array: np.ndarray) -> DataType | None:
    try:
        return from_numpy_dtype(array.dtype)
    except (TypeError, ValueError, KeyError):
        return None


def _constant_node_data(node: Node) -> np.ndarray | None:
    """The value a Constant node produces, whichever attribute holds it."""
    for name, attribute in node.attributes.items():
        if attribute.ref_attr_name is not None:
            return None
        if name in CONSTANT_VALUE_ATTRIBUTES:
            return constant_attribute_array(name, attribute.value)
    return None


def replace_node(
    converter: Converter,
    old: Node,
    op_type: str,
    inputs: list[Value | None],
    attributes: list[Attribute],
    output_count: int,
) -> Node:
    """Put a new node in ``old``'s place that keeps ``old``'s first ``output_count`` outputs
    (same names and types; every reader, graph outputs included, moves over)."""
    graph = old.graph
    outputs = []
    for value in old.outputs[:output_count]:
        if value is None:
            outputs.append(None)
            continue
        fresh = Value(value.name, value.type, doc_string=value.doc_string, metadata_props=value.metadata_props)
        value.replace_all_uses_with(fresh)
        for g in converter.model.all_graphs():
            g.outputs = [fresh if out is value else out for out in g.outputs]
        outputs.append(fresh)
    node = Node(op_type, inputs, attributes, domain=old.domain, outputs=outputs, name=old.name,
                doc_string=old.doc_string, metadata_props=old.metadata_props)
    graph.insert_before(old, node)
    graph.remove(old, safe=False)
    return node
