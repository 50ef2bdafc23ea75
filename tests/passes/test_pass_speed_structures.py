"""Behaviour of the structures the optimizer leans on for speed: node positions in a
graph, the subgraph walk's pre-check, and the checker's lazily labelled definers."""

from __future__ import annotations

import pytest

import ferry
from ferry import ir
from ferry.passes._context import Context, walk_graphs


def _chain(length: int) -> tuple[ir.Graph, list[ir.Node]]:
    x = ir.Value("x", ir.TensorType(ir.DataType.FLOAT, ir.Shape([2])))
    graph = ir.Graph([x], name="chain")
    current, nodes = x, []
    for index in range(length):
        node = ir.Node("Relu", [current], name=f"n{index}")
        node.outputs[0].name = f"v{index}"
        graph.append(node)
        nodes.append(node)
        current = node.outputs[0]
    graph.outputs = [current]
    return graph, nodes


def test_positions_follow_removals_and_insertions():
    graph, nodes = _chain(6)
    for node in (nodes[1], nodes[3]):
        node.outputs[0].replace_all_uses_with(node.inputs[0])
        graph.remove(node)
    extra = ir.Node("Neg", [nodes[0].outputs[0]], name="neg")
    graph.insert_after(nodes[2], extra)
    before = ir.Node("Abs", [nodes[0].outputs[0]], name="abs")
    graph.insert_before(nodes[4], before)
    assert [n.name for n in graph] == ["n0", "n2", "neg", "abs", "n4", "n5"]


def test_removed_node_is_no_longer_found():
    graph, nodes = _chain(3)
    graph.remove(nodes[2], safe=False)
    graph.outputs = [nodes[1].outputs[0]]
    with pytest.raises(ValueError, match="'n2'.*not in graph 'chain'"):
        graph.remove(nodes[2])
    with pytest.raises(ValueError, match="not in graph"):
        graph.insert_before(nodes[2], ir.Node("Neg", [nodes[0].outputs[0]]))


def test_identical_looking_nodes_are_told_apart_by_identity():
    graph, _ = _chain(0)
    x = graph.inputs[0]
    twins = [ir.Node("Relu", [x], name="same") for _ in range(3)]
    graph.extend(twins)
    graph.outputs = [twins[2].outputs[0]]
    graph.remove(twins[1])
    assert graph.nodes == (twins[0], twins[2])


def _branch(name: str, inner: ir.Node | None = None) -> ir.Graph:
    graph = ir.Graph(name=name)
    node = inner or ir.Node("Constant", [], {"value_float": 1.0}, name=f"{name}_const")
    graph.append(node)
    graph.outputs = [node.outputs[0]]
    return graph


def test_walk_finds_graph_and_graphs_attributes_at_any_depth():
    deepest = _branch("deep")
    nested_if = ir.Node("If", [ir.Value("c")], {"then_branch": deepest, "else_branch": _branch("e")})
    listed = [_branch("first", nested_if), _branch("second")]
    holder = ir.Node("Custom", [], {"bodies": listed, "sizes": [1, 2]}, domain="test", name="h")
    plain = ir.Node("Transpose", [ir.Value("x")], {"perm": [1, 0]})
    main = ir.Graph(name="main", nodes=[plain, holder])
    assert [g.name for g in walk_graphs(main)] == ["main", "first", "deep", "e", "second"]


def test_context_graphs_include_subgraphs():
    graph = _branch("main", ir.Node("If", [ir.Value("c")], {"then_branch": _branch("t"), "else_branch": _branch("f")}))
    model = ir.Model(graph, ir_version=10, opset_imports={"": 21})
    assert [g.name for g in Context(model).graphs] == ["main", "t", "f"]


def test_checker_names_a_later_producer_of_an_input():
    x = ir.Value("x", ir.TensorType(ir.DataType.FLOAT, ir.Shape([2])))
    late_input = ir.Value("t")
    reader = ir.Node("Relu", [late_input], name="reader")
    producer = ir.Node("Abs", [x], outputs=[late_input], name="producer")
    graph = ir.Graph([x], [reader.outputs[0]], [reader, producer], name="main")
    reader.outputs[0].name = "y"
    reader.outputs[0].type = ir.TensorType(ir.DataType.FLOAT, ir.Shape([2]))
    model = ir.Model(graph, ir_version=10, opset_imports={"": 21})
    with pytest.raises(ferry.FerryError, match=r"produced by node 1 'producer' \(Abs\)"):
        ferry.check_model(model)
