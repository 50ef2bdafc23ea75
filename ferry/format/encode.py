"""ferry IR -> protobuf messages.

The inverse of :mod:`ferry.format.decode`: fields that are None stay absent, tensors
go back to the storage field they came from, preserved extra fields are merged back.
External data is written by :mod:`ferry.format.io`, which passes ``external`` here: a
callback deciding, per initializer, whether to store it outside the model.
"""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf.message import Message

from ferry.format import ferry_onnx_pb2 as pb
from ferry.format.tensors import tensor_to_proto
from ferry.ir import (
    Attribute,
    AttributeType,
    Function,
    Graph,
    MapType,
    Model,
    Node,
    OpaqueType,
    OptionalType,
    SequenceType,
    Shape,
    SparseTensor,
    SparseTensorType,
    Tensor,
    TensorType,
    Type,
    UnsetType,
    Value,
)

__all__ = ["Encoder"]

ExternalWriter = Callable[[Tensor, pb.TensorProto], bool]


def _set_optional(message: Message, field: str, value: object) -> None:
    if value is not None:
        setattr(message, field, value)


def _set_props(entries, props: dict[str, str]) -> None:
    for key, value in props.items():
        entries.add(key=key, value=value)


def _merge_extras(message: Message, obj: object) -> None:
    extras = getattr(obj, "_proto_extras", b"")
    if extras:
        message.MergeFromString(extras)


class Encoder:
    """Builds protobuf messages from IR objects."""

    def __init__(self, external: ExternalWriter | None = None) -> None:
        self.external = external

    def model(self, model: Model) -> pb.ModelProto:
        proto = pb.ModelProto()
        proto.ir_version = model.ir_version
        _opset_imports(proto.opset_import, model.opset_imports, model)
        _set_optional(proto, "producer_name", model.producer_name)
        _set_optional(proto, "producer_version", model.producer_version)
        _set_optional(proto, "domain", model.domain)
        _set_optional(proto, "model_version", model.model_version)
        _set_optional(proto, "doc_string", model.doc_string)
        self.graph(model.graph, proto.graph, top_level=True)
        _set_props(proto.metadata_props, model.metadata_props)
        for function in model.functions.values():
            self.function(function, proto.functions.add())
        _merge_extras(proto, model)
        return proto

    def graph(
        self, graph: Graph, proto: pb.GraphProto, *, top_level: bool = False
    ) -> pb.GraphProto:
        for node in graph:
            self.node(node, proto.node.add())
        _set_optional(proto, "name", graph.name)
        for value in graph.initializers.values():
            self.initializer(value, proto.initializer.add(), top_level)
        for sparse in graph.sparse_initializers:
            self.sparse_tensor(sparse, proto.sparse_initializer.add())
        _set_optional(proto, "doc_string", graph.doc_string)
        for value in graph.inputs:
            self.value_info(value, proto.input.add())
        for value in graph.outputs:
            self.value_info(value, proto.output.add())
        for value in _value_info_values(graph):
            self.value_info(value, proto.value_info.add())
        _set_props(proto.metadata_props, graph.metadata_props)
        _merge_extras(proto, graph)
        return proto

    def initializer(self, value: Value, proto: pb.TensorProto, top_level: bool) -> None:
        tensor = value.const_value
        assert tensor is not None
        if top_level and self.external is not None and self.external(tensor, proto):
            proto.name = value.name
            return
        self.tensor(tensor, proto, name=value.name)

    def value_info(self, value: Value, proto: pb.ValueInfoProto) -> None:
        proto.name = value.name
        if value.type is not None:
            self.type(value.type, proto.type)
        _set_optional(proto, "doc_string", value.doc_string)
        _set_props(proto.metadata_props, value.metadata_props)
        _merge_extras(proto, value)

    def node(self, node: Node, proto: pb.NodeProto) -> None:
        proto.input.extend(v.name if v is not None else "" for v in node.inputs)
        proto.output.extend(v.name if v is not None else "" for v in node.outputs)
        _set_optional(proto, "name", node.name)
        proto.op_type = node.op_type
        if node.domain or "domain" in node._wire_defaults:
            proto.domain = node.domain
        _set_optional(proto, "overload", node.overload)
        for attribute in node.attributes.values():
            self.attribute(attribute, proto.attribute.add())
        _set_optional(proto, "doc_string", node.doc_string)
        _set_props(proto.metadata_props, node.metadata_props)
        _merge_extras(proto, node)

    def attribute(self, attribute: Attribute, proto: pb.AttributeProto) -> None:
        proto.name = attribute.name
        _set_optional(proto, "ref_attr_name", attribute.ref_attr_name)
        _set_optional(proto, "doc_string", attribute.doc_string)
        kind = attribute.type
        if kind != AttributeType.UNDEFINED:
            proto.type = int(kind)
        value = attribute.value
        if value is not None:
            self._attribute_value(kind, value, proto)
        _merge_extras(proto, attribute)

    def _attribute_value(self, kind: AttributeType, value, proto: pb.AttributeProto) -> None:
        if kind == AttributeType.FLOAT:
            proto.f = value
        elif kind == AttributeType.INT:
            proto.i = value
        elif kind == AttributeType.STRING:
            proto.s = _bytes(value)
        elif kind == AttributeType.TENSOR:
            self.tensor(value, proto.t)
        elif kind == AttributeType.GRAPH:
            self.graph(value, proto.g)
        elif kind == AttributeType.SPARSE_TENSOR:
            self.sparse_tensor(value, proto.sparse_tensor)
        elif kind == AttributeType.TYPE_PROTO:
            self.type(value, proto.tp)
        elif kind == AttributeType.FLOATS:
            proto.floats.extend(value)
        elif kind == AttributeType.INTS:
            proto.ints.extend(value)
        elif kind == AttributeType.STRINGS:
            proto.strings.extend(_bytes(v) for v in value)
        elif kind == AttributeType.TENSORS:
            for tensor in value:
                self.tensor(tensor, proto.tensors.add())
        elif kind == AttributeType.GRAPHS:
            for graph in value:
                self.graph(graph, proto.graphs.add())
        elif kind == AttributeType.SPARSE_TENSORS:
            for sparse in value:
                self.sparse_tensor(sparse, proto.sparse_tensors.add())
        elif kind == AttributeType.TYPE_PROTOS:
            for type_ in value:
                self.type(type_, proto.type_protos.add())

    def tensor(self, tensor: Tensor, proto: pb.TensorProto, *, name: str | None = None) -> None:
        tensor_to_proto(tensor, proto, name=name)
        _merge_extras(proto, tensor)

    def sparse_tensor(self, sparse: SparseTensor, proto: pb.SparseTensorProto) -> None:
        self.tensor(sparse.values, proto.values)
        if sparse.indices is not None:
            self.tensor(sparse.indices, proto.indices)
        proto.dims.extend(sparse.dims)

    def type(self, type_: Type, proto: pb.TypeProto) -> None:
        _set_optional(proto, "denotation", type_.denotation)
        if isinstance(type_, TensorType):
            inner = (
                proto.sparse_tensor_type
                if isinstance(type_, SparseTensorType)
                else proto.tensor_type
            )
            inner.SetInParent()
            if type_.dtype is not None:
                inner.elem_type = int(type_.dtype)
            if type_.shape is not None:
                self.shape(type_.shape, inner.shape)
        elif isinstance(type_, (SequenceType, OptionalType)):
            inner = proto.sequence_type if isinstance(type_, SequenceType) else proto.optional_type
            inner.SetInParent()
            if type_.elem_type is not None:
                self.type(type_.elem_type, inner.elem_type)
        elif isinstance(type_, MapType):
            proto.map_type.SetInParent()
            if type_.key_type is not None:
                proto.map_type.key_type = int(type_.key_type)
            if type_.value_type is not None:
                self.type(type_.value_type, proto.map_type.value_type)
        elif isinstance(type_, OpaqueType):
            proto.opaque_type.SetInParent()
            _set_optional(proto.opaque_type, "domain", type_.domain)
            _set_optional(proto.opaque_type, "name", type_.name)
        elif not isinstance(type_, UnsetType):
            raise TypeError(f"cannot encode type {type_!r}")

    def shape(self, shape: Shape, proto: pb.TensorShapeProto) -> None:
        proto.SetInParent()
        denotations = shape.denotations or (None,) * len(shape)
        for dim, denotation in zip(shape, denotations):
            entry = proto.dim.add()
            if isinstance(dim, int):
                entry.dim_value = dim
            elif isinstance(dim, str):
                entry.dim_param = dim
            _set_optional(entry, "denotation", denotation)

    def function(self, function: Function, proto: pb.FunctionProto) -> None:
        proto.name = function.name
        proto.input.extend(v.name for v in function.graph.inputs)
        proto.output.extend(v.name for v in function.graph.outputs)
        proto.attribute.extend(function.attribute_names)
        for attribute in function.attribute_defaults.values():
            self.attribute(attribute, proto.attribute_proto.add())
        for node in function.graph:
            self.node(node, proto.node.add())
        _set_optional(proto, "doc_string", function.doc_string)
        _opset_imports(proto.opset_import, function.opset_imports, function)
        proto.domain = function.domain
        _set_optional(proto, "overload", function.overload)
        for value in _value_info_values(function.graph):
            self.value_info(value, proto.value_info.add())
        _set_props(proto.metadata_props, function.metadata_props)
        _merge_extras(proto, function)


def _opset_imports(entries, opsets: dict[str, int], owner: object) -> None:
    unset = "opset_import.domain" in getattr(owner, "_wire_defaults", ())
    for domain, version in opsets.items():
        if domain == "" and unset:
            entries.add(version=version)
        else:
            entries.add(domain=domain, version=version)


def _bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def _value_info_values(graph: Graph) -> list[Value]:
    """Values to describe in ``value_info``: those listed when read, in that order, then
    every other typed intermediate value in node order."""
    boundary = {id(v) for v in graph.inputs} | {id(v) for v in graph.outputs}
    boundary |= {id(v) for v in graph.initializers.values()}
    by_name: dict[str, Value] = {}
    for value in graph.values():
        by_name.setdefault(value.name, value)
    for value in getattr(graph, "dangling_value_info", []):
        by_name.setdefault(value.name, value)
    listed = [by_name[name] for name in graph.value_info_order if name in by_name]
    seen = {id(v) for v in listed}
    extra = [
        v
        for v in by_name.values()
        if id(v) not in seen and id(v) not in boundary and v.type is not None
    ]
    return listed + extra
