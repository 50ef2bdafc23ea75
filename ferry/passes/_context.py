"""What every pass needs to know about the model it rewrites, and the edits they share.

A :class:`Context` is built once per pass run. It answers questions that span graphs
(is this value a constant? is it an output of some graph, including a subgraph that
returns an outer value?) and performs the edits that must keep a model valid:
replacing a value everywhere, removing a node with its subgraphs, adding constants.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import numpy as np

from ferry.ir import ArrayTensor, Graph, Model, Node, Shape, SparseTensor, TensorType, Value
from ferry.ir.dtypes import from_numpy_dtype
from ferry.ir.graph import fresh_name
from ferry.passes import _evaluate

__all__ = ["Context", "walk_graphs"]

DEFAULT_DOMAINS = ("", "ai.onnx")


def walk_graphs(graph: Graph) -> Iterator[Graph]:
    """``graph`` and, recursively, every subgraph of its nodes (not function bodies)."""
    yield graph
    for node in graph:
        if _may_hold_graphs(node):
            for inner in node.subgraphs():
                yield from walk_graphs(inner)


def _may_hold_graphs(node: Node) -> bool:
    """A cheap pre-check before ``node.subgraphs()`` (most nodes hold no graph)."""
    for attribute in node.attributes.values():  # noqa: SIM110 - a plain loop is faster here
        if isinstance(attribute.value, (Graph, list)):
            return True
    return False


def is_standard(node: Node) -> bool:
    """True for an operator of the default ONNX domain."""
    return node.domain in DEFAULT_DOMAINS


class Context:
    """The model under rewrite plus the shared queries and edits of the passes."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.opset = model.opset
        self._graphs: list[Graph] | None = None
        self._constants: dict[int, np.ndarray | None] = {}
        self._names: set[str] | None = None
        # ir_version < 4 lists every initializer as an input too; those cannot be overridden.
        self._inputs = {id(v) for g in self.graphs for v in g.inputs}

    # -- structure ----------------------------------------------------------------------
    @property
    def graphs(self) -> list[Graph]:
        """The main graph and all nested subgraphs (recomputed after subgraphs go)."""
        if self._graphs is None:
            self._graphs = list(walk_graphs(self.model.graph))
        return self._graphs

    def is_output(self, value: Value) -> bool:
        """True when some graph (main or nested) lists ``value`` among its outputs."""
        return any(any(v is value for v in g.outputs) for g in self.graphs)

    def sole_reader(self, value: Value | None) -> Node | None:
        """The one node reading ``value`` when it has exactly one use and is no output."""
        if value is None or self.is_output(value):
            return None
        uses = value.uses()
        return uses[0][0] if len(uses) == 1 else None

    def producer_in(self, value: Value | None, graph: Graph, op_type: str) -> Node | None:
        """The standard-domain ``op_type`` node of ``graph`` producing ``value``, if any."""
        node = value.producer() if value is not None else None
        if node is None or node.graph is not graph or node.op_type != op_type:
            return None
        return node if is_standard(node) else None

    # -- constants ------------------------------------------------------------------------
    def is_overridable(self, value: Value) -> bool:
        return self.model.ir_version >= 4 and id(value) in self._inputs

    def constant(self, value: Value | None) -> np.ndarray | None:
        """The data of ``value`` when it is a constant (an initializer that is not an
        overridable input, or a Constant node's output), else None."""
        if value is None:
            return None
        if value.const_value is not None:
            if isinstance(value.const_value, SparseTensor) or self.is_overridable(value):
                return None
            return value.const_value.numpy()
        node = value.producer()
        if node is None or node.op_type != "Constant" or not is_standard(node):
            return None
        if id(node) not in self._constants:
            results = _evaluate.run_node(self.model, node, [])
            self._constants[id(node)] = results[0] if results else None
        return self._constants[id(node)]

    def static_shape(self, value: Value | None) -> tuple[int, ...] | None:
        """The shape of ``value`` when fully known (from its data or its declared type)."""
        data = self.constant(value)
        if data is not None:
            return tuple(data.shape)
        if value is None or type(value.type) is not TensorType:
            return None
        shape = value.shape
        return tuple(shape) if shape is not None and shape.is_static() else None

    def rank(self, value: Value | None) -> int | None:
        data = self.constant(value)
        if data is not None:
            return data.ndim
        shape = value.shape if value is not None else None
        return shape.rank if shape is not None else None

    # -- names --------------------------------------------------------------------------
    def fresh_name(self, base: str) -> str:
        """A value name not used anywhere in the model, derived from ``base``."""
        if self._names is None:
            self._names = {v.name for g in self.graphs for v in g.values()}
            self._names |= {v.name for g in self.graphs for v in g.outputs}
            self._names |= {v.name for g in self.graphs for n in g for v in n.inputs if v}
        return fresh_name(base, self._names)

    # -- edits --------------------------------------------------------------------------
    def add_constant(self, graph: Graph, anchor: Node, array: np.ndarray, name: str) -> Value:
        """A new constant holding ``array``: an initializer of the main graph (also an
        input below IR version 4), or a Constant node before ``anchor`` in a subgraph."""
        as_initializer = graph is self.model.graph
        return self._materialize(graph, anchor, array, self.fresh_name(name), as_initializer)

    def _materialize(self, graph, anchor, array, name, as_initializer, type_=None) -> Value:
        array = np.array(array)  # a private, writable copy: kernels may return views
        tensor = ArrayTensor(array, name=name)
        type_ = type_ or TensorType(from_numpy_dtype(array.dtype), Shape(array.shape))
        if as_initializer:
            value = Value(name, type_, const_value=tensor)
            graph.register_initializer(value)
            if self.model.ir_version < 4:
                graph.inputs.append(value)
            return value
        value = Value(name, type_)
        graph.insert_before(anchor, Node("Constant", [], {"value": tensor}, outputs=[value]))
        return value

    def fold(self, node: Node, value: Value, array: np.ndarray) -> None:
        """Make ``value`` (an output of ``node``) a constant holding ``array``: an
        initializer in the main graph, a Constant node for a main-graph output (keeping
        its name and declared type) and inside subgraphs."""
        graph = node.graph
        assert graph is not None
        is_main = graph is self.model.graph
        is_output = any(v is value for v in graph.outputs)
        declared = value.type if is_main and is_output else None
        name = value.name or self.fresh_name("folded")
        new = self._materialize(graph, node, array, name, is_main and not is_output, declared)
        self.replace(value, new)

    def can_replace(self, old: Value, new: Value) -> bool:
        """Whether every reader and every graph output of ``old`` can take ``new``.

        Where ``old`` is a graph output computed in that graph, ``new`` must be computed
        there too (a graph then never returns an input or an outer value where it did
        not); a main-graph output keeps its name, so ``new`` must be a node output of the
        main graph that ``replace`` may rename, and not already an output.
        """
        for graph in self.graphs:
            if not any(v is old for v in graph.outputs):
                continue
            if any(v is new for v in graph.outputs):
                return False
            if not _computed_in(graph, new) and (
                graph is self.model.graph or _computed_in(graph, old)
            ):
                return False
        return True

    def replace(self, old: Value, new: Value) -> None:
        """Make every reader and graph output of ``old`` use ``new`` (see can_replace);
        ``new`` takes the name and declared type of a main-graph output it replaces, and
        ``old``'s declared type when it has none."""
        if not self.can_replace(old, new):
            raise ValueError(f"cannot replace {old.name!r} with {new.name!r}")
        old.replace_all_uses_with(new)
        if new.type is None and old.type is not None:  # the same data: what old declared holds
            new.type = copy.copy(old.type)
        for graph in self.graphs:
            if any(v is old for v in graph.outputs):
                graph.outputs = [new if v is old else v for v in graph.outputs]
                if graph is self.model.graph:
                    new.name = old.name
                    new.type = old.type if old.type is not None else new.type
                    new.doc_string = old.doc_string or new.doc_string

    def remove(self, node: Node) -> None:
        """Remove ``node`` (whose outputs nobody reads), detaching its subgraphs' reads."""
        graph = node.graph
        assert graph is not None
        inner_graphs = list(node.subgraphs())
        for inner in inner_graphs:
            for inner_node in inner.all_nodes():
                inner_node.set_inputs([])
        graph.remove(node, safe=True)
        if inner_graphs:
            self._graphs = None

    def remove_if_unused(self, node: Node) -> bool:
        """Remove ``node`` when none of its outputs is read or returned."""
        for value in node.outputs:
            if value is not None and (value.uses() or self.is_output(value)):
                return False
        self.remove(node)
        return True

    def evaluate(self, node: Node, args: list) -> list | None:
        """Run ``node`` on ``args`` with ferry's kernel (see :mod:`ferry.passes._evaluate`)."""
        return _evaluate.run_node(self.model, node, args)


def _computed_in(graph: Graph, value: Value) -> bool:
    producer = value.producer()
    return producer is not None and producer.graph is graph
