"""CommonSubexpressionElimination: identical nodes computed once."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from ferry.passes import CommonSubexpressionElimination
from tests.passes.helpers import FLOAT, check_pass, make_model, op_counts, to_ferry

CSE = CommonSubexpressionElimination


def test_merges_identical_nodes_and_chains():
    model = make_model(
        [
            helper.make_node("Relu", ["x"], ["r1"]),
            helper.make_node("Relu", ["x"], ["r2"]),
            helper.make_node("Neg", ["r1"], ["n1"]),
            helper.make_node("Neg", ["r2"], ["n2"]),
            helper.make_node("Add", ["n1", "n2"], ["y"]),
        ],
        [("x", FLOAT, [2, 3])],
        [("y", FLOAT, [2, 3])],
    )
    merged = check_pass(model, CSE())
    assert op_counts(merged) == {"Relu": 1, "Neg": 1, "Add": 1}
    add = merged.graph.nodes[-1]
    assert add.inputs[0] is add.inputs[1]


def test_attributes_and_input_order_matter():
    model = make_model(
        [
            helper.make_node("Softmax", ["x"], ["a"], axis=0),
            helper.make_node("Softmax", ["x"], ["b"], axis=1),
            helper.make_node("Sub", ["a", "b"], ["c"]),
            helper.make_node("Sub", ["b", "a"], ["d"]),
            helper.make_node("Add", ["c", "d"], ["y"]),
        ],
        [("x", FLOAT, [2, 3])],
        [("y", FLOAT, [2, 3])],
    )
    assert not CSE()(to_ferry(model)).modified


def test_constants_merge_by_value():
    def constant(name, values):
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, FLOAT, [2], values))

    model = make_model(
        [
            constant("k1", [1.0, 2.0]),
            constant("k2", [1.0, 2.0]),
            constant("k3", [1.0, 3.0]),
            helper.make_node("Sum", ["x", "k1", "k2", "k3"], ["y"]),
        ],
        [("x", FLOAT, [2])],
        [("y", FLOAT, [2])],
    )
    merged = check_pass(model, CSE())
    assert op_counts(merged) == {"Constant": 2, "Sum": 1}


def test_random_ops_are_not_merged():
    model = make_model(
        [
            helper.make_node("RandomUniformLike", ["x"], ["r1"]),
            helper.make_node("RandomUniformLike", ["x"], ["r2"]),
            helper.make_node("Sub", ["r1", "r2"], ["d"]),
            helper.make_node("Mul", ["d", "zero"], ["y"]),
        ],
        [("x", FLOAT, [2])],
        [("y", FLOAT, [2])],
        [("zero", np.zeros((), np.float32))],
    )
    assert not CSE()(to_ferry(model)).modified


def test_two_graph_outputs_are_not_merged():
    model = make_model(
        [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Relu", ["x"], ["z"])],
        [("x", FLOAT, [2])],
        [("y", FLOAT, [2]), ("z", FLOAT, [2])],
    )
    assert not CSE()(to_ferry(model)).modified


def test_duplicate_that_is_the_output_keeps_the_name():
    model = make_model(
        [
            helper.make_node("Relu", ["x"], ["r"]),
            helper.make_node("Neg", ["r"], ["n"]),
            helper.make_node("Relu", ["x"], ["y"]),
            helper.make_node("Add", ["n", "y"], ["z"]),
        ],
        [("x", FLOAT, [2])],
        [("y", FLOAT, [2]), ("z", FLOAT, [2])],
    )
    merged = check_pass(model, CSE())
    assert op_counts(merged) == {"Relu": 1, "Neg": 1, "Add": 1}
    assert merged.graph.nodes[0].outputs[0].name == "y"


def test_nodes_with_subgraphs_are_not_merged():
    def branch(name):
        return helper.make_graph(
            [helper.make_node("Neg", ["x"], [f"{name}_out"])], name, [],
            [helper.make_tensor_value_info(f"{name}_out", FLOAT, [2])],
        )

    model = make_model(
        [
            helper.make_node("If", ["cond"], ["a"], then_branch=branch("t1"), else_branch=branch("e1")),
            helper.make_node("If", ["cond"], ["b"], then_branch=branch("t2"), else_branch=branch("e2")),
            helper.make_node("Add", ["a", "b"], ["y"]),
        ],
        [("cond", TensorProto.BOOL, []), ("x", FLOAT, [2])],
        [("y", FLOAT, [2])],
    )
    assert op_counts(check_pass(model, CSE()))["If"] == 2


def test_merges_inside_subgraphs():
    body = helper.make_graph(
        [
            helper.make_node("Abs", ["x"], ["a1"]),
            helper.make_node("Abs", ["x"], ["a2"]),
            helper.make_node("Add", ["a1", "a2"], ["t"]),
        ],
        "then", [], [helper.make_tensor_value_info("t", FLOAT, [2])],
    )
    other = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["e"])], "else", [], [helper.make_tensor_value_info("e", FLOAT, [2])]
    )
    model = make_model(
        [helper.make_node("If", ["cond"], ["y"], then_branch=body, else_branch=other)],
        [("cond", TensorProto.BOOL, []), ("x", FLOAT, [2])],
        [("y", FLOAT, [2])],
    )
    assert op_counts(check_pass(model, CSE()))["Abs"] == 1
