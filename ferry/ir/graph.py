"""Values, nodes and graphs: the editable dataflow structure of a model.

A :class:`Value` is an edge: produced by at most one node (or a graph input or
initializer) and read by any number of node inputs, which it tracks as ``uses``.
A :class:`Node` applies an operator. A :class:`Graph` owns an ordered list of nodes
plus its inputs, outputs and initializers. Subgraphs (attributes of If, Loop, Scan)
are graphs too; their nodes may read values of enclosing graphs by reference.
Every edit goes through methods that keep producers and uses consistent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from ferry.ir.attribute import Attribute
from ferry.ir.dtypes import DataType
from ferry.ir.tensor import SparseTensor, Tensor
from ferry.ir.types import Shape, TensorType, Type

__all__ = ["Graph", "Node", "Value", "fresh_name"]


class Value:
    """A named edge of the dataflow graph, with its type and (for constants) its data."""

    __slots__ = (
        "name",
        "type",
        "doc_string",
        "metadata_props",
        "const_value",
        "_producer",
        "_index",
        "_uses",
        "_proto_extras",
    )

    def __init__(
        self,
        name: str = "",
        type: Type | None = None,
        *,
        const_value: Tensor | SparseTensor | None = None,
        doc_string: str | None = None,
        metadata_props: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.type = type
        self.const_value = const_value
        self.doc_string = doc_string
        self.metadata_props = dict(metadata_props or {})
        self._producer: Node | None = None
        self._index: int | None = None
        self._uses: dict[tuple[Node, int], None] = {}
        self._proto_extras = b""

    # -- type shortcuts -------------------------------------------------------------
    @property
    def dtype(self) -> DataType | None:
        """The element type when the value is a (sparse) tensor of known type."""
        return self.type.dtype if isinstance(self.type, TensorType) else None

    @dtype.setter
    def dtype(self, dtype: DataType | None) -> None:
        if self.type is None:
            self.type = TensorType()
        if not isinstance(self.type, TensorType):
            raise TypeError(f"value {self.name!r} is a {self.type}, not a tensor")
        self.type.dtype = DataType(dtype) if dtype is not None else None

    @property
    def shape(self) -> Shape | None:
        """The shape when the value is a tensor of known rank."""
        return self.type.shape if isinstance(self.type, TensorType) else None

    @shape.setter
    def shape(self, shape: Shape | Sequence | None) -> None:
        if self.type is None:
            self.type = TensorType()
        if not isinstance(self.type, TensorType):
            raise TypeError(f"value {self.name!r} is a {self.type}, not a tensor")
        self.type.shape = (
            Shape(shape) if shape is not None and not isinstance(shape, Shape) else shape
        )

    # -- graph structure -------------------------------------------------------------
    def producer(self) -> Node | None:
        """The node whose output this is, or None (graph input, initializer, outer value)."""
        return self._producer

    @property
    def index(self) -> int | None:
        """The position among its producer's outputs."""
        return self._index

    def uses(self) -> list[tuple[Node, int]]:
        """Every (node, input index) that reads this value, in the order they were added."""
        return list(self._uses)

    def consumers(self) -> list[Node]:
        """The distinct nodes that read this value."""
        return list(dict.fromkeys(node for node, _ in self._uses))

    def replace_all_uses_with(self, other: Value) -> None:
        """Make every node that reads this value read ``other`` instead."""
        for node, index in self.uses():
            node.replace_input_with(index, other)

    def __repr__(self) -> str:
        kind = f" {self.type}" if self.type is not None else ""
        return f"Value({self.name!r}{kind})"


class Node:
    """One operator application: op type and domain, inputs, outputs and attributes."""

    def __init__(
        self,
        op_type: str,
        inputs: Iterable[Value | None] = (),
        attributes: Iterable[Attribute] | Mapping[str, object] = (),
        *,
        domain: str = "",
        overload: str | None = None,
        outputs: Sequence[Value | None] | None = None,
        num_outputs: int = 1,
        name: str | None = None,
        doc_string: str | None = None,
        metadata_props: dict[str, str] | None = None,
    ) -> None:
        self.op_type = op_type
        self.domain = domain
        self.overload = overload
        self.name = name
        self.doc_string = doc_string
        self.metadata_props = dict(metadata_props or {})
        self.graph: Graph | None = None
        self._proto_extras = b""
        self._wire_defaults: tuple[str, ...] = ()
        self._inputs: list[Value | None] = []
        for value in inputs:
            self._append_input(value)
        if outputs is None:
            outputs = [Value() for _ in range(num_outputs)]
        self._outputs: list[Value | None] = []
        for value in outputs:
            self._append_output(value)
        if isinstance(attributes, Mapping):
            attributes = [
                v if isinstance(v, Attribute) else Attribute.infer(k, v)
                for k, v in attributes.items()
            ]
        self.attributes: dict[str, Attribute] = {a.name: a for a in attributes}

    # -- inputs -----------------------------------------------------------------------
    @property
    def inputs(self) -> tuple[Value | None, ...]:
        return tuple(self._inputs)

    def _append_input(self, value: Value | None) -> None:
        if value is not None:
            value._uses[(self, len(self._inputs))] = None
        self._inputs.append(value)

    def replace_input_with(self, index: int, value: Value | None) -> None:
        """Set input ``index`` to ``value``, updating both values' uses."""
        old = self._inputs[index]
        if old is not None:
            old._uses.pop((self, index), None)
        if value is not None:
            value._uses[(self, index)] = None
        self._inputs[index] = value

    def set_inputs(self, values: Iterable[Value | None]) -> None:
        """Replace the whole input list."""
        self._detach_inputs()
        for value in values:
            self._append_input(value)

    def _detach_inputs(self) -> None:
        for index, value in enumerate(self._inputs):
            if value is not None:
                value._uses.pop((self, index), None)
        self._inputs = []

    # -- outputs ----------------------------------------------------------------------
    @property
    def outputs(self) -> tuple[Value | None, ...]:
        return tuple(self._outputs)

    def _append_output(self, value: Value | None) -> None:
        if value is not None:
            if value._producer is not None and value._producer is not self:
                raise ValueError(
                    f"value {value.name!r} is already produced by node "
                    f"{value._producer.name!r} ({value._producer.op_type})"
                )
            value._producer, value._index = self, len(self._outputs)
        self._outputs.append(value)

    def attribute(self, name: str, default: object = None) -> object:
        """The value of attribute ``name``, or ``default`` when absent."""
        attr = self.attributes.get(name)
        return default if attr is None else attr.value

    def subgraphs(self) -> Iterator[Graph]:
        """The graphs held by this node's GRAPH and GRAPHS attributes."""
        for attr in self.attributes.values():
            if isinstance(attr.value, Graph):
                yield attr.value
            elif isinstance(attr.value, list):
                yield from (g for g in attr.value if isinstance(g, Graph))

    def describe(self) -> str:
        """How errors name this node: ``node 'conv1' (Conv)``."""
        domain = f"{self.domain}::" if self.domain not in ("", "ai.onnx") else ""
        return f"node {self.name or '<unnamed>'!r} ({domain}{self.op_type})"

    def __repr__(self) -> str:
        return f"<Node {self.describe()}>"


class Graph:
    """A list of nodes in execution order, with inputs, outputs and initializers."""

    def __init__(
        self,
        inputs: Iterable[Value] = (),
        outputs: Iterable[Value] = (),
        nodes: Iterable[Node] = (),
        initializers: Iterable[Value] = (),
        *,
        name: str | None = None,
        doc_string: str | None = None,
        metadata_props: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.doc_string = doc_string
        self.metadata_props = dict(metadata_props or {})
        self.inputs: list[Value] = list(inputs)
        self.outputs: list[Value] = list(outputs)
        self.initializers: dict[str, Value] = {}
        for value in initializers:
            self.register_initializer(value)
        self.sparse_initializers: list[SparseTensor] = []
        self.value_info_order: list[str] = []
        self._nodes: list[Node] = []
        self._proto_extras = b""
        self.extend(nodes)

    # -- nodes ------------------------------------------------------------------------
    @property
    def nodes(self) -> tuple[Node, ...]:
        """A snapshot of the nodes in order: safe to iterate while editing the graph."""
        return tuple(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(tuple(self._nodes))

    def __len__(self) -> int:
        return len(self._nodes)

    def _adopt(self, node: Node) -> Node:
        if node.graph is not None and node.graph is not self:
            raise ValueError(f"{node.describe()} already belongs to graph {node.graph.name!r}")
        node.graph = self
        return node

    def append(self, node: Node) -> Node:
        self._nodes.append(self._adopt(node))
        return node

    def extend(self, nodes: Iterable[Node]) -> None:
        for node in nodes:
            self.append(node)

    def insert_before(self, anchor: Node, nodes: Node | Iterable[Node]) -> None:
        """Insert ``nodes`` just before ``anchor``."""
        self._insert(self._position(anchor), nodes)

    def insert_after(self, anchor: Node, nodes: Node | Iterable[Node]) -> None:
        """Insert ``nodes`` just after ``anchor``."""
        self._insert(self._position(anchor) + 1, nodes)

    def _insert(self, position: int, nodes: Node | Iterable[Node]) -> None:
        nodes = [nodes] if isinstance(nodes, Node) else list(nodes)
        self._nodes[position:position] = [self._adopt(n) for n in nodes]

    def _position(self, node: Node) -> int:
        # list.index compares by identity first and Node keeps object equality (identity),
        # so this is the identity search, run in C
        try:
            return self._nodes.index(node)
        except ValueError:
            raise ValueError(f"{node.describe()} is not in graph {self.name!r}") from None

    def remove(self, node: Node, *, safe: bool = True) -> None:
        """Remove ``node``. With ``safe``, refuse if another node or a graph output still
        reads one of its outputs."""
        if safe:
            for value in node.outputs:
                if value is None:
                    continue
                readers = [n for n in value.consumers() if n is not node]
                if readers:
                    raise ValueError(
                        f"cannot remove {node.describe()}: its output {value.name!r} is read by "
                        f"{readers[0].describe()}"
                    )
                if any(v is value for v in self.outputs):
                    raise ValueError(
                        f"cannot remove {node.describe()}: its output {value.name!r} is a graph output"
                    )
        del self._nodes[self._position(node)]
        node._detach_inputs()
        node.graph = None

    def sort(self) -> None:
        """Order nodes topologically (stable: keeps the current order where it is valid).

        Raises ValueError naming a node on a cycle.
        """
        position = {id(n): i for i, n in enumerate(self._nodes)}
        pending = {id(n): 0 for n in self._nodes}
        readers: dict[int, list[Node]] = {id(n): [] for n in self._nodes}
        for node in self._nodes:
            for producer in {id(p) for p in _local_producers(node, position)}:
                pending[id(node)] += 1
                readers[producer].append(node)
        import heapq

        ready = [(position[id(n)], n) for n in self._nodes if pending[id(n)] == 0]
        heapq.heapify(ready)
        ordered: list[Node] = []
        while ready:
            _, node = heapq.heappop(ready)
            ordered.append(node)
            for reader in readers[id(node)]:
                pending[id(reader)] -= 1
                if pending[id(reader)] == 0:
                    heapq.heappush(ready, (position[id(reader)], reader))
        if len(ordered) != len(self._nodes):
            stuck = next(n for n in self._nodes if pending[id(n)] > 0)
            raise ValueError(f"graph {self.name!r} has a cycle through {stuck.describe()}")
        self._nodes = ordered

    # -- values -----------------------------------------------------------------------
    def register_initializer(self, value: Value) -> None:
        """Add ``value`` (which must carry ``const_value``) as an initializer."""
        if value.const_value is None:
            raise ValueError(f"initializer {value.name!r} has no const_value")
        if value.name in self.initializers and self.initializers[value.name] is not value:
            raise ValueError(f"graph {self.name!r} already has an initializer {value.name!r}")
        self.initializers[value.name] = value

    def values(self) -> Iterator[Value]:
        """Every value defined in this graph: inputs, initializers, then node outputs."""
        seen: set[int] = set()
        for value in [*self.inputs, *self.initializers.values()]:
            if id(value) not in seen:
                seen.add(id(value))
                yield value
        for node in self._nodes:
            for value in node.outputs:
                if value is not None and id(value) not in seen:
                    seen.add(id(value))
                    yield value

    def all_nodes(self) -> Iterator[Node]:
        """Every node of this graph and, recursively, of its subgraphs."""
        for node in self._nodes:
            yield node
            for graph in node.subgraphs():
                yield from graph.all_nodes()

    def __repr__(self) -> str:
        return f"<Graph {self.name!r}: {len(self.inputs)} inputs, {len(self._nodes)} nodes>"


def _local_producers(node: Node, position: Mapping[int, int]) -> Iterator[Node]:
    """Producers in the same graph of values ``node`` reads, including from its subgraphs."""
    for value in node.inputs:
        if value is not None and value.producer() is not None and id(value.producer()) in position:
            yield value.producer()
    for graph in node.subgraphs():
        for inner in graph.all_nodes():
            for value in inner.inputs:
                producer = value.producer() if value is not None else None
                if producer is not None and id(producer) in position:
                    yield producer


def fresh_name(base: str, taken: set[str]) -> str:
    """``base``, else ``base_1``, ``base_2``, ...: the first non-empty name not in ``taken``,
    which it is added to."""
    name, index = base, 0
    while not name or name in taken:
        index += 1
        name = f"{base}_{index}"
    taken.add(name)
    return name
