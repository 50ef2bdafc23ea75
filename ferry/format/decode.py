"""Protobuf messages -> ferry IR.

Decoding resolves names to :class:`~ferry.ir.Value` objects through nested scopes
(subgraphs see the values of enclosing graphs). A name read but never defined gets a
detached value with no producer, so the checker can report it. Fields the IR does not
model (training_info, newer or unknown fields) are kept as serialized bytes in
``_proto_extras`` and written back on save. Errors carry a trail such as
``while decoding node 12 ('conv1') of graph 'main'``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import numpy as np
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from ferry.errors import FormatError
from ferry.format import ferry_onnx_pb2 as pb
from ferry.format.external import ExternalTensor, resolve_location
from ferry.format.tensors import tensor_from_proto
from ferry.ir import (
    Attribute,
    AttributeType,
    DataType,
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

__all__ = ["Decoder"]


@functools.cache
def _unmodeled_fields(descriptor, modeled: frozenset[str]) -> tuple[tuple[str, bool], ...]:
    """(name, is repeated) of the message type's fields outside ``modeled``."""
    return tuple((f.name, _is_repeated(f)) for f in descriptor.fields if f.name not in modeled)


def _is_repeated(field) -> bool:
    repeated = getattr(field, "is_repeated", None)  # protobuf >= 6; older ones have label
    return bool(repeated) if repeated is not None else field.label == field.LABEL_REPEATED


def _sets_any(message: Message, fields: tuple[tuple[str, bool], ...]) -> bool:
    # field by field: ListFields would materialise every set field, weights included
    return any(len(getattr(message, name)) if repeated else message.HasField(name) for name, repeated in fields)


def proto_extras(message: Message, modeled: frozenset[str]) -> bytes:
    """Serialized fields of ``message`` outside ``modeled`` plus unknown fields."""
    if not _sets_any(message, _unmodeled_fields(message.DESCRIPTOR, modeled)) and not len(
        UnknownFieldSet(message)
    ):
        return b""
    rest = type(message)()
    rest.CopyFrom(message)
    for name in modeled:
        rest.ClearField(name)
    return rest.SerializeToString()


def explicit_defaults(message: Message, fields: tuple[str, ...]) -> tuple[str, ...]:
    """Which of ``fields`` the message sets explicitly to their default value."""
    return tuple(f for f in fields if message.HasField(f) and not getattr(message, f))


def _optional(message: Message, field: str) -> str | None:
    return getattr(message, field) if message.HasField(field) else None


def _props(entries) -> dict[str, str]:
    return {entry.key: entry.value for entry in entries}


_MODEL_FIELDS = frozenset(
    [
        "ir_version",
        "opset_import",
        "producer_name",
        "producer_version",
        "domain",
        "model_version",
        "doc_string",
        "graph",
        "metadata_props",
        "functions",
    ]
)
_GRAPH_FIELDS = frozenset(
    [
        "node",
        "name",
        "initializer",
        "sparse_initializer",
        "doc_string",
        "input",
        "output",
        "value_info",
        "metadata_props",
    ]
)
_NODE_FIELDS = frozenset(
    [
        "input",
        "output",
        "name",
        "op_type",
        "domain",
        "overload",
        "attribute",
        "doc_string",
        "metadata_props",
    ]
)
_ATTRIBUTE_FIELDS = frozenset(
    [
        "name",
        "ref_attr_name",
        "doc_string",
        "type",
        "f",
        "i",
        "s",
        "t",
        "g",
        "sparse_tensor",
        "tp",
        "floats",
        "ints",
        "strings",
        "tensors",
        "graphs",
        "sparse_tensors",
        "type_protos",
    ]
)
_FUNCTION_FIELDS = frozenset(
    [
        "name",
        "input",
        "output",
        "attribute",
        "attribute_proto",
        "node",
        "doc_string",
        "opset_import",
        "domain",
        "overload",
        "value_info",
        "metadata_props",
    ]
)
_VALUE_INFO_FIELDS = frozenset(["name", "type", "doc_string", "metadata_props"])


class Decoder:
    """Turns a ModelProto (or parts of one) into IR objects."""

    def __init__(
        self, base_dir: str | None = None, initializer_data: dict[int, np.ndarray] | None = None
    ) -> None:
        """``initializer_data``: raw_data of main-graph initializers by index, taken off
        the wire beforehand (:mod:`ferry.format.wire`); their protos lack the field."""
        self.base_dir = base_dir
        self.initializer_data = initializer_data or {}
        self._trail: list[str] = []

    @contextlib.contextmanager
    def _context(self, what: str) -> Iterator[None]:
        self._trail.append(what)
        try:
            yield
        except FormatError as error:
            if not getattr(error, "_trail_added", False):
                trail = "".join(f"\n  while decoding {step}" for step in reversed(self._trail))
                error.args = (f"{error.args[0]}{trail}",)
                error._trail_added = True  # type: ignore[attr-defined]
            raise
        except (ValueError, TypeError, KeyError, IndexError) as error:
            trail = "".join(f"\n  while decoding {step}" for step in reversed(self._trail))
            wrapped = FormatError(f"{error}{trail}")
            wrapped._trail_added = True  # type: ignore[attr-defined]
            raise wrapped from error
        finally:
            self._trail.pop()

    # -- model ------------------------------------------------------------------------
    def model(self, proto: pb.ModelProto) -> Model:
        with self._context("the model"):
            opsets = {o.domain: o.version for o in proto.opset_import}
            functions = []
            for index, function in enumerate(proto.functions):
                with self._context(f"function {index} ({function.domain}::{function.name})"):
                    functions.append(self.function(function))
            seen: set[tuple[str, str, str]] = set()
            for function in functions:
                if function.identifier in seen:
                    raise FormatError(
                        f"function {function.domain}::{function.name} is defined more than once"
                    )
                seen.add(function.identifier)
            graph = (
                self.graph(proto.graph, [], self.initializer_data)
                if proto.HasField("graph")
                else Graph()
            )
            model = Model(
                graph,
                ir_version=proto.ir_version,
                opset_imports=opsets,
                producer_name=_optional(proto, "producer_name"),
                producer_version=_optional(proto, "producer_version"),
                domain=_optional(proto, "domain"),
                model_version=_optional(proto, "model_version"),
                doc_string=_optional(proto, "doc_string"),
                functions=functions,
                metadata_props=_props(proto.metadata_props),
            )
            model._proto_extras = proto_extras(proto, _MODEL_FIELDS)
            model._wire_defaults = _unset_opset_domains(proto.opset_import)
            return model

    # -- graphs -----------------------------------------------------------------------
    def graph(
        self,
        proto: pb.GraphProto,
        outer: list[dict[str, Value]],
        raw_data: dict[int, np.ndarray] | None = None,
    ) -> Graph:
        with self._context(f"graph {proto.name!r}"):
            scope: dict[str, Value] = {}
            graph = Graph(name=_optional(proto, "name"), doc_string=_optional(proto, "doc_string"))
            graph.metadata_props = _props(proto.metadata_props)
            graph.inputs = [self._define(scope, info) for info in proto.input]
            for index, tensor in enumerate(proto.initializer):
                with self._context(f"initializer {index} ({tensor.name!r})"):
                    self._initializer(graph, scope, tensor, (raw_data or {}).get(index))
            graph.sparse_initializers = [self.sparse_tensor(s) for s in proto.sparse_initializer]
            for sparse in graph.sparse_initializers:
                if sparse.name:
                    scope.setdefault(sparse.name, Value(sparse.name, const_value=sparse))
            nodes = [self._node_shell(scope, node) for node in proto.node]
            chain = [scope, *outer]
            for index, (node, node_proto) in enumerate(zip(nodes, proto.node)):
                label = f" ({node_proto.name!r})" if node_proto.name else ""
                with self._context(f"node {index}{label} of type {node_proto.op_type}"):
                    self._node_body(node, node_proto, chain)
                graph.append(node)
            for info in proto.value_info:
                self._annotate(chain, info, graph)
            graph.value_info_order = [info.name for info in proto.value_info]
            graph.outputs = [self._output(chain, info) for info in proto.output]
            graph._proto_extras = proto_extras(proto, _GRAPH_FIELDS)
            return graph

    def _define(self, scope: dict[str, Value], info: pb.ValueInfoProto) -> Value:
        value = scope.get(info.name)
        if value is None:
            value = Value(info.name)
            scope[info.name] = value
        self._apply_info(value, info)
        return value

    def _apply_info(self, value: Value, info: pb.ValueInfoProto) -> None:
        if info.HasField("type"):
            value.type = self.type(info.type)
        value.doc_string = _optional(info, "doc_string")
        value.metadata_props = _props(info.metadata_props)
        value._proto_extras = proto_extras(info, _VALUE_INFO_FIELDS)

    def _initializer(
        self, graph: Graph, scope: dict[str, Value], proto: pb.TensorProto, raw_data=None
    ) -> None:
        tensor = self.tensor(proto, raw_data)
        value = scope.get(proto.name)
        if value is None or value.const_value is not None:
            value = Value(proto.name)
            scope.setdefault(proto.name, value)
        value.const_value = tensor
        if proto.name in graph.initializers:
            graph._duplicate_initializers = [*getattr(graph, "_duplicate_initializers", []), value]
        else:
            graph.initializers[proto.name] = value

    def _node_shell(self, scope: dict[str, Value], proto: pb.NodeProto) -> Node:
        outputs = []
        for name in proto.output:
            if not name:
                outputs.append(None)
                continue
            value = Value(name)
            outputs.append(value)
            scope.setdefault(name, value)
        return Node(
            proto.op_type,
            domain=proto.domain,
            overload=_optional(proto, "overload"),
            outputs=outputs,
            name=_optional(proto, "name"),
            doc_string=_optional(proto, "doc_string"),
            metadata_props=_props(proto.metadata_props),
        )

    def _node_body(self, node: Node, proto: pb.NodeProto, chain: list[dict[str, Value]]) -> None:
        node.set_inputs(self._lookup(chain, name) if name else None for name in proto.input)
        node._wire_defaults = explicit_defaults(proto, ("domain",))
        for attr in proto.attribute:
            if attr.name in node.attributes:
                raise FormatError(
                    f"attribute {attr.name!r} appears more than once; expected each attribute once"
                )
            with self._context(f"attribute {attr.name!r}"):
                node.attributes[attr.name] = self.attribute(attr, chain)
        node._proto_extras = proto_extras(proto, _NODE_FIELDS)

    def _lookup(self, chain: list[dict[str, Value]], name: str) -> Value:
        for scope in chain:
            if name in scope:
                return scope[name]
        value = Value(name)  # undefined: left detached for the checker to report
        chain[0][name] = value
        return value

    def _annotate(
        self, chain: list[dict[str, Value]], info: pb.ValueInfoProto, graph: Graph
    ) -> None:
        value = chain[0].get(info.name)
        if value is None:
            value = Value(info.name)
            graph.__dict__.setdefault("dangling_value_info", []).append(value)
        self._apply_info(value, info)

    def _output(self, chain: list[dict[str, Value]], info: pb.ValueInfoProto) -> Value:
        value = self._lookup(chain, info.name)
        self._apply_info(value, info)
        return value

    # -- nodes' parts -----------------------------------------------------------------
    def attribute(self, proto: pb.AttributeProto, chain: list[dict[str, Value]]) -> Attribute:
        kind = AttributeType(proto.type) if proto.HasField("type") else _guess_type(proto)
        reference = _optional(proto, "ref_attr_name")
        value = (
            None if kind == AttributeType.UNDEFINED else self._attribute_value(proto, kind, chain)
        )
        attribute = Attribute(proto.name, kind, value, _optional(proto, "doc_string"), reference)
        attribute._proto_extras = proto_extras(proto, _ATTRIBUTE_FIELDS)
        return attribute

    def _attribute_value(self, proto: pb.AttributeProto, kind: AttributeType, chain) -> object:
        single = {
            AttributeType.FLOAT: lambda: proto.f,
            AttributeType.INT: lambda: proto.i,
            AttributeType.STRING: lambda: _text(proto.s),
            AttributeType.TENSOR: lambda: self.tensor(proto.t),
            AttributeType.GRAPH: lambda: self.graph(proto.g, chain),
            AttributeType.SPARSE_TENSOR: lambda: self.sparse_tensor(proto.sparse_tensor),
            AttributeType.TYPE_PROTO: lambda: self.type(proto.tp),
            AttributeType.FLOATS: lambda: list(proto.floats),
            AttributeType.INTS: lambda: list(proto.ints),
            AttributeType.STRINGS: lambda: [_text(s) for s in proto.strings],
            AttributeType.TENSORS: lambda: [self.tensor(t) for t in proto.tensors],
            AttributeType.GRAPHS: lambda: [self.graph(g, chain) for g in proto.graphs],
            AttributeType.SPARSE_TENSORS: lambda: [
                self.sparse_tensor(s) for s in proto.sparse_tensors
            ],
            AttributeType.TYPE_PROTOS: lambda: [self.type(t) for t in proto.type_protos],
        }
        return single[kind]()

    def tensor(self, proto: pb.TensorProto, raw_data: np.ndarray | None = None) -> Tensor:
        if proto.data_location == pb.TensorProto.EXTERNAL:
            return self._external_tensor(proto)  # like protobuf's raw_data, ignored
        tensor = tensor_from_proto(proto, raw_data)
        tensor._proto_extras = proto_extras(proto, _TENSOR_FIELDS)  # type: ignore[attr-defined]
        return tensor

    def _external_tensor(self, proto: pb.TensorProto) -> Tensor:
        entries = {e.key: e.value for e in proto.external_data}
        if "location" not in entries:
            raise FormatError(f"tensor {proto.name!r}: external data has no 'location' entry")
        path = resolve_location(self.base_dir, entries["location"], proto.name)
        try:
            offset = int(entries.get("offset", 0))
            length = int(entries["length"]) if "length" in entries else None
        except ValueError:
            raise FormatError(
                f"tensor {proto.name!r}: external data offset/length must be integers, got {entries}"
            ) from None
        tensor = ExternalTensor(
            path,
            entries["location"],
            offset,
            length,
            DataType(proto.data_type),
            tuple(proto.dims),
            entries=entries,
            name=_optional(proto, "name"),
            doc_string=_optional(proto, "doc_string"),
            metadata_props=_props(proto.metadata_props),
        )
        tensor._proto_extras = proto_extras(proto, _TENSOR_FIELDS)  # type: ignore[attr-defined]
        return tensor

    def sparse_tensor(self, proto: pb.SparseTensorProto) -> SparseTensor:
        values = self.tensor(proto.values)
        indices = self.tensor(proto.indices) if proto.HasField("indices") else None
        return SparseTensor(values, indices, proto.dims)

    def type(self, proto: pb.TypeProto) -> Type:
        denotation = _optional(proto, "denotation")
        arm = proto.WhichOneof("value")
        if arm in ("tensor_type", "sparse_tensor_type"):
            inner = getattr(proto, arm)
            cls = TensorType if arm == "tensor_type" else SparseTensorType
            dtype = DataType(inner.elem_type) if inner.HasField("elem_type") else None
            shape = self.shape(inner.shape) if inner.HasField("shape") else None
            return cls(dtype, shape, denotation)
        if arm in ("sequence_type", "optional_type"):
            inner = getattr(proto, arm)
            elem = self.type(inner.elem_type) if inner.HasField("elem_type") else None
            return (SequenceType if arm == "sequence_type" else OptionalType)(elem, denotation)
        if arm == "map_type":
            key = DataType(proto.map_type.key_type) if proto.map_type.HasField("key_type") else None
            value = (
                self.type(proto.map_type.value_type)
                if proto.map_type.HasField("value_type")
                else None
            )
            return MapType(key, value, denotation)
        if arm == "opaque_type":
            opaque = proto.opaque_type
            return OpaqueType(_optional(opaque, "domain"), _optional(opaque, "name"), denotation)
        return UnsetType(denotation)

    def shape(self, proto: pb.TensorShapeProto) -> Shape:
        dims = []
        denotations = []
        for dim in proto.dim:
            kind = dim.WhichOneof("value")
            dims.append(None if kind is None else getattr(dim, kind))
            denotations.append(_optional(dim, "denotation"))
        return Shape(dims, denotations if any(d is not None for d in denotations) else None)

    # -- functions --------------------------------------------------------------------
    def function(self, proto: pb.FunctionProto) -> Function:
        scope: dict[str, Value] = {}
        graph = Graph(name=proto.name)
        graph.inputs = [scope.setdefault(name, Value(name)) for name in proto.input]
        nodes = [self._node_shell(scope, node) for node in proto.node]
        for index, (node, node_proto) in enumerate(zip(nodes, proto.node)):
            with self._context(f"node {index} of type {node_proto.op_type}"):
                self._node_body(node, node_proto, [scope])
            graph.append(node)
        for info in proto.value_info:
            self._annotate([scope], info, graph)
        graph.value_info_order = [info.name for info in proto.value_info]
        graph.outputs = [self._lookup([scope], name) for name in proto.output]
        defaults = [self.attribute(a, [scope]) for a in proto.attribute_proto]
        function = Function(
            proto.domain,
            proto.name,
            graph,
            attributes=[*proto.attribute, *defaults],
            opset_imports={o.domain: o.version for o in proto.opset_import},
            overload=_optional(proto, "overload"),
            doc_string=_optional(proto, "doc_string"),
            metadata_props=_props(proto.metadata_props),
        )
        function._proto_extras = proto_extras(proto, _FUNCTION_FIELDS)
        function._wire_defaults = _unset_opset_domains(proto.opset_import)
        return function


_TENSOR_FIELDS = frozenset(
    [
        "dims",
        "data_type",
        "float_data",
        "int32_data",
        "string_data",
        "int64_data",
        "name",
        "doc_string",
        "raw_data",
        "external_data",
        "data_location",
        "double_data",
        "uint64_data",
        "metadata_props",
    ]
)


def _unset_opset_domains(opset_import) -> tuple[str, ...]:
    """Marks the default-domain import written without its ``domain`` field (old files)."""
    return ("opset_import.domain",) if any(not o.HasField("domain") for o in opset_import) else ()


def _text(value: bytes) -> str | bytes:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value


def _guess_type(proto: pb.AttributeProto) -> AttributeType:
    """Attribute type for old files that leave ``type`` unset: the one field that is set."""
    by_field = {
        "f": AttributeType.FLOAT,
        "i": AttributeType.INT,
        "s": AttributeType.STRING,
        "t": AttributeType.TENSOR,
        "g": AttributeType.GRAPH,
        "sparse_tensor": AttributeType.SPARSE_TENSOR,
        "tp": AttributeType.TYPE_PROTO,
        "floats": AttributeType.FLOATS,
        "ints": AttributeType.INTS,
        "strings": AttributeType.STRINGS,
        "tensors": AttributeType.TENSORS,
        "graphs": AttributeType.GRAPHS,
        "sparse_tensors": AttributeType.SPARSE_TENSORS,
        "type_protos": AttributeType.TYPE_PROTOS,
    }
    present = [by_field[f.name] for f, _ in proto.ListFields() if f.name in by_field]
    if len(present) != 1:
        raise FormatError(
            f"attribute {proto.name!r} has no type and {len(present)} value fields; expected one"
        )
    return present[0]
