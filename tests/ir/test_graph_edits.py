"""Graph edits keep producers and uses right."""

from __future__ import annotations

import numpy as np
import pytest

from ferry import ir


def _chain():
    x = ir.Value("x", ir.TensorType(ir.DataType.FLOAT, ir.Shape(["n"])))
    relu = ir.Node("Relu", [x], name="relu")
    neg = ir.Node("Neg", [relu.outputs[0]], name="neg")
    add = ir.Node("Add", [relu.outputs[0], neg.outputs[0]], name="add")
    graph = ir.Graph([x], [add.outputs[0]], [relu, neg, add], name="g")
    return graph, x, relu, neg, add


def test_producer_and_uses():
    graph, x, relu, neg, add = _chain()
    r = relu.outputs[0]
    assert r.producer() is relu and r.index == 0
    assert r.uses() == [(neg, 0), (add, 0)]
    assert r.consumers() == [neg, add]
    assert x.producer() is None
    assert all(node.graph is graph for node in graph)


def test_replace_all_uses_with():
    graph, x, relu, neg, add = _chain()
    relu.outputs[0].replace_all_uses_with(x)
    assert neg.inputs[0] is x and add.inputs[0] is x
    assert relu.outputs[0].uses() == []
    assert x.uses() == [(relu, 0), (neg, 0), (add, 0)]


def test_replace_input_updates_both_values():
    graph, x, relu, neg, add = _chain()
    add.replace_input_with(1, x)
    assert neg.outputs[0].uses() == []
    assert (add, 1) in x.uses()


def test_remove_refuses_while_used_then_succeeds():
    graph, x, relu, neg, add = _chain()
    with pytest.raises(ValueError, match="read by node 'add'"):
        graph.remove(neg)
    add.replace_input_with(1, x)
    graph.remove(neg)
    assert [n.name for n in graph] == ["relu", "add"]
    assert relu.outputs[0].uses() == [(add, 0)]  # neg's use is gone
    assert neg.graph is None


def test_remove_refuses_graph_output_producer():
    graph, x, relu, neg, add = _chain()
    with pytest.raises(ValueError, match="graph output"):
        graph.remove(add)


def test_insert_before_after_and_iterate_while_editing():
    graph, x, relu, neg, add = _chain()
    identity = ir.Node("Identity", [x], name="id")
    graph.insert_before(relu, identity)
    sigmoid = ir.Node("Sigmoid", [x], name="sig")
    graph.insert_after(neg, sigmoid)
    assert [n.name for n in graph] == ["id", "relu", "neg", "sig", "add"]
    for node in graph:  # removing while iterating over the graph is safe
        if node.op_type in ("Identity", "Sigmoid"):
            graph.remove(node)
    assert [n.name for n in graph] == ["relu", "neg", "add"]


def test_node_cannot_join_two_graphs():
    graph, x, relu, neg, add = _chain()
    other = ir.Graph(name="other")
    with pytest.raises(ValueError, match="already belongs"):
        other.append(relu)


def test_value_has_one_producer():
    graph, x, relu, neg, add = _chain()
    with pytest.raises(ValueError, match="already produced"):
        ir.Node("Neg", [x], outputs=[relu.outputs[0]])


def test_sort_restores_topological_order_stably():
    graph, x, relu, neg, add = _chain()
    free = ir.Node("Abs", [x], name="free")
    graph.insert_before(relu, free)
    graph._nodes.reverse()  # add, neg, relu, free
    graph.sort()
    assert [n.name for n in graph] == ["relu", "neg", "add", "free"] or [n.name for n in graph] == [
        "free",
        "relu",
        "neg",
        "add",
    ]
    names = [n.name for n in graph]
    assert names.index("relu") < names.index("neg") < names.index("add")


def test_sort_accounts_for_subgraph_reads_of_outer_values():
    x = ir.Value("x")
    cond = ir.Value("c")
    producer = ir.Node("Neg", [x], name="producer")
    inner = ir.Node("Identity", [producer.outputs[0]], name="inner")
    body = ir.Graph([], [inner.outputs[0]], [inner], name="body")
    if_node = ir.Node("If", [cond], {"then_branch": body, "else_branch": body}, name="if")
    graph = ir.Graph([x, cond], [if_node.outputs[0]], [if_node, producer])
    graph.sort()
    assert [n.name for n in graph] == ["producer", "if"]


def test_sort_reports_cycle():
    a = ir.Node("Neg", [], name="a")
    b = ir.Node("Neg", [a.outputs[0]], name="b")
    a.set_inputs([b.outputs[0]])
    graph = ir.Graph(nodes=[a, b], name="loop")
    with pytest.raises(ValueError, match="cycle through node"):
        graph.sort()


def test_register_initializer_and_values():
    graph, x, relu, neg, add = _chain()
    w = ir.Value("w", const_value=ir.ArrayTensor(np.ones(3, np.float32)))
    graph.register_initializer(w)
    assert graph.initializers["w"] is w
    names = [v.name for v in graph.values()]
    assert names[:2] == ["x", "w"]
    with pytest.raises(ValueError, match="no const_value"):
        graph.register_initializer(ir.Value("v"))


def test_attribute_inference():
    node = ir.Node("Conv", [], {"strides": [1, 2], "alpha": 0.5, "mode": "same", "group": 1})
    kinds = {name: a.type for name, a in node.attributes.items()}
    assert kinds == {
        "strides": ir.AttributeType.INTS,
        "alpha": ir.AttributeType.FLOAT,
        "mode": ir.AttributeType.STRING,
        "group": ir.AttributeType.INT,
    }
    assert node.attribute("strides") == [1, 2] and node.attribute("missing", 7) == 7
    with pytest.raises(TypeError, match="empty list"):
        ir.Attribute.infer("pads", [])


def test_shape_and_types():
    shape = ir.Shape(["batch", 3, None])
    assert shape.rank == 3 and not shape.is_static() and shape.numel() is None
    assert str(shape) == "[batch,3,?]" and shape == ("batch", 3, None)
    assert ir.Shape([2, 3]).numel() == 6
    v = ir.Value("v")
    v.dtype = ir.DataType.FLOAT16
    v.shape = [1, "t"]
    assert str(v.type) == "float16[1,t]"
    with pytest.raises(TypeError):
        ir.Shape([1.5])


def test_exotic_dtypes_are_structured_and_refuse_arithmetic():
    bits = np.array([0x3F80, 0x4000], dtype=np.uint16).view(ir.DataType.BFLOAT16.numpy)
    tensor = ir.ArrayTensor(bits)
    assert tensor.dtype == ir.DataType.BFLOAT16
    assert ir.from_numpy_dtype(ir.DataType.INT4.numpy) == ir.DataType.INT4
    with pytest.raises(TypeError):
        bits + bits
    assert ir.ArrayTensor(np.zeros(3, ir.DataType.INT4.numpy)).nbytes == 2  # packed 4-bit
