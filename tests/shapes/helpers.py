"""Small builders for hand-made test graphs."""

from __future__ import annotations

import numpy as np

from ferry.ir import ArrayTensor, DataType, Graph, Model, Node, TensorType, Value


def tensor(name: str, dtype: DataType = DataType.FLOAT, shape=None) -> Value:
    """A graph input or output declaration."""
    return Value(name, TensorType(dtype, shape))


def const(name: str, data) -> Value:
    """An initializer holding ``data`` (int lists become int64)."""
    array = np.asarray(data)
    if array.dtype.kind == "i":
        array = array.astype(np.int64)
    return Value(name, const_value=ArrayTensor(array))


def node(op_type: str, inputs, outputs, name: str | None = None, **attributes) -> Node:
    """A node whose outputs are new values named ``outputs`` (a list of names)."""
    made = Node(op_type, inputs, attributes, outputs=[Value(o) for o in outputs], name=name or outputs[0])
    return made


def model(inputs, outputs, nodes, initializers=(), opset: int = 18, functions=()) -> Model:
    """A model from its parts; ``outputs`` are values (or names of node outputs)."""
    produced = {v.name: v for n in nodes for v in n.outputs if v is not None}
    outs = [produced[o] if isinstance(o, str) else o for o in outputs]
    graph = Graph(inputs, outs, nodes, initializers, name="g")
    return Model(graph, opset_imports={"": opset}, functions=functions)


def out(n: Node, index: int = 0) -> Value:
    value = n.outputs[index]
    assert value is not None
    return value


def value_named(m: Model, name: str) -> Value:
    for graph in m.all_graphs():
        for value in graph.values():
            if value.name == name:
                return value
    raise KeyError(name)
