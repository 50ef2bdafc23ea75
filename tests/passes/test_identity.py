"""IdentityElimination: readers rewired, graph output names kept."""

from __future__ import annotations

from onnx import TensorProto, helper

from ferry.passes import IdentityElimination
from tests.passes.helpers import FLOAT, check_pass, make_model, op_counts, to_ferry


def test_rewires_readers():
    model = make_model(
        [
            helper.make_node("Relu", ["x"], ["r"]),
            helper.make_node("Identity", ["r"], ["i"]),
            helper.make_node("Neg", ["i"], ["n"]),
            helper.make_node("Add", ["i", "n"], ["y"]),
        ],
        [("x", FLOAT, [2, 3])],
        [("y", FLOAT, [2, 3])],
    )
    rewritten = check_pass(model, IdentityElimination())
    assert op_counts(rewritten) == {"Relu": 1, "Neg": 1, "Add": 1}


def test_graph_output_keeps_its_name():
    model = make_model(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Identity", ["r"], ["y"])],
        [("x", FLOAT, [2, 3])],
        [("y", FLOAT, [2, 3])],
    )
    rewritten = check_pass(model, IdentityElimination())
    assert op_counts(rewritten) == {"Relu": 1}
    assert rewritten.graph.nodes[0].outputs[0].name == "y"


def test_keeps_identity_from_input_or_to_a_second_output():
    from_input = make_model(
        [helper.make_node("Identity", ["x"], ["y"])], [("x", FLOAT, [2])], [("y", FLOAT, [2])]
    )
    assert not IdentityElimination()(to_ferry(from_input)).modified
    two_outputs = make_model(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Identity", ["r"], ["y"])],
        [("x", FLOAT, [2])],
        [("r", FLOAT, [2]), ("y", FLOAT, [2])],
    )
    assert not IdentityElimination()(to_ferry(two_outputs)).modified
    check_pass(two_outputs)


def _if(then_nodes, then_out, else_out="e"):
    then_branch = helper.make_graph(then_nodes, "then", [], [helper.make_tensor_value_info(then_out, FLOAT, [2])])
    else_branch = helper.make_graph(
        [helper.make_node("Neg", ["x"], [else_out])], "else", [], [helper.make_tensor_value_info(else_out, FLOAT, [2])]
    )
    return helper.make_node("If", ["cond"], ["y"], then_branch=then_branch, else_branch=else_branch)


def test_subgraph_readers_are_rewired():
    model = make_model(
        [
            helper.make_node("Relu", ["x"], ["r"]),
            helper.make_node("Identity", ["r"], ["i"]),
            _if([helper.make_node("Abs", ["i"], ["t"])], "t"),
        ],
        [("cond", TensorProto.BOOL, []), ("x", FLOAT, [2])],
        [("y", FLOAT, [2])],
    )
    rewritten = check_pass(model, IdentityElimination())
    assert "Identity" not in op_counts(rewritten)
    abs_node = next(n for n in rewritten.graph.all_nodes() if n.op_type == "Abs")
    assert abs_node.inputs[0].name == "r"


def test_subgraph_does_not_return_an_outer_value_directly():
    model = make_model(
        [helper.make_node("Relu", ["x"], ["r"]), _if([helper.make_node("Identity", ["r"], ["t"])], "t")],
        [("cond", TensorProto.BOOL, []), ("x", FLOAT, [2])],
        [("y", FLOAT, [2])],
    )
    assert not IdentityElimination()(to_ferry(model)).modified
    inner = make_model(
        [_if([helper.make_node("Abs", ["x"], ["a"]), helper.make_node("Identity", ["a"], ["t"])], "t")],
        [("cond", TensorProto.BOOL, []), ("x", FLOAT, [2])],
        [("y", FLOAT, [2])],
    )
    rewritten = check_pass(inner, IdentityElimination())
    assert "Identity" not in op_counts(rewritten)
