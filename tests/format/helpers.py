from __future__ import annotations

import numpy as np

from ferry import ir


def mlp_model(weights: dict[str, np.ndarray]) -> ir.Model:
    """x -> MatMul(w_i) chain over the given initializers, for format tests."""
    x = ir.Value("x", ir.TensorType(ir.DataType.FLOAT, ir.Shape(["batch", 4])))
    graph = ir.Graph([x], name="mlp")
    current = x
    for name, array in weights.items():
        w = ir.Value(name, const_value=ir.ArrayTensor(array, name=name))
        graph.register_initializer(w)
        node = ir.Node(
            "Identity" if array.ndim != 2 else "MatMul",
            [current, w] if array.ndim == 2 else [w],
            name=name + "_op",
        )
        node.outputs[0].name = name + "_out"
        graph.append(node)
        current = node.outputs[0] if array.ndim == 2 else current
    graph.outputs = [current]
    return ir.Model(graph, ir_version=10, opset_imports={"": 21})
