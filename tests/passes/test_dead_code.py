"""DeadCodeElimination: dead nodes and unused initializers go; what is read stays."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from ferry.passes import DeadCodeElimination
from tests.passes.helpers import FLOAT, check_pass, make_model, op_counts, to_ferry

BOOL = TensorProto.BOOL


def _branch(name, nodes, output):
    return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(output, FLOAT, [2])])


def test_removes_nodes_that_reach_no_output_and_unused_initializers():
    model = make_model(
        [
            helper.make_node("Relu", ["x"], ["y"]),
            helper.make_node("Neg", ["x"], ["unused"]),
            helper.make_node("Add", ["unused", "w"], ["also_unused"]),
        ],
        [("x", FLOAT, [2]), ("spare", FLOAT, [2])],
        [("y", FLOAT, [2])],
        [("w", np.ones(2, np.float32))],
    )
    cleaned = check_pass(model, DeadCodeElimination())
    assert op_counts(cleaned) == {"Relu": 1}
    assert not cleaned.graph.initializers
    assert [v.name for v in cleaned.graph.inputs] == ["x", "spare"]  # inputs are the interface


def test_values_read_by_subgraphs_are_used():
    then_branch = _branch("then", [helper.make_node("Add", ["n", "w"], ["t"])], "t")
    else_branch = _branch("else", [helper.make_node("Neg", ["x"], ["e"])], "e")
    model = make_model(
        [
            helper.make_node("Neg", ["x"], ["n"]),
            helper.make_node("If", ["cond"], ["y"], then_branch=then_branch, else_branch=else_branch),
        ],
        [("cond", BOOL, []), ("x", FLOAT, [2])],
        [("y", FLOAT, [2])],
        [("w", np.ones(2, np.float32))],
    )
    assert not DeadCodeElimination()(to_ferry(model)).modified
    assert op_counts(check_pass(model, DeadCodeElimination())) == {"Neg": 2, "If": 1, "Add": 1}


def test_subgraph_returning_an_outer_value_keeps_it():  # ferry's checker refuses, onnx allows
    then_branch = helper.make_graph([], "then", [], [helper.make_tensor_value_info("n", FLOAT, [2])])
    else_branch = _branch("else", [helper.make_node("Neg", ["x"], ["e"])], "e")
    model = make_model(
        [
            helper.make_node("Neg", ["x"], ["n"]),
            helper.make_node("If", ["cond"], ["y"], then_branch=then_branch, else_branch=else_branch),
        ],
        [("cond", BOOL, []), ("x", FLOAT, [2])],
        [("y", FLOAT, [2])],
    )
    assert not DeadCodeElimination()(to_ferry(model)).modified


def test_dead_nodes_inside_subgraphs_and_dead_control_flow():
    then_branch = _branch(
        "then", [helper.make_node("Neg", ["w"], ["dead"]), helper.make_node("Relu", ["x"], ["t"])], "t"
    )
    else_branch = _branch("else", [helper.make_node("Neg", ["x"], ["e"])], "e")
    unused_if = helper.make_node(
        "If", ["cond"], ["z"], then_branch=_branch("t2", [helper.make_node("Abs", ["v"], ["a"])], "a"),
        else_branch=_branch("e2", [helper.make_node("Abs", ["v"], ["b"])], "b"),
    )
    model = make_model(
        [
            helper.make_node("If", ["cond"], ["y"], then_branch=then_branch, else_branch=else_branch),
            helper.make_node("Sin", ["x"], ["v"]),
            unused_if,
        ],
        [("cond", BOOL, []), ("x", FLOAT, [2])],
        [("y", FLOAT, [2])],
        [("w", np.ones(2, np.float32))],
    )
    cleaned = check_pass(model, DeadCodeElimination())
    assert op_counts(cleaned) == {"If": 1, "Relu": 1, "Neg": 1}
    assert not cleaned.graph.initializers  # read only by a dead node of a subgraph


def test_overridable_initializer_stays():
    model = make_model(
        [helper.make_node("Relu", ["x"], ["y"])],
        [("x", FLOAT, [2]), ("w", FLOAT, [2])],
        [("y", FLOAT, [2])],
        [("w", np.ones(2, np.float32))],
    )
    assert not DeadCodeElimination()(to_ferry(model)).modified


def test_legacy_ir_unused_initializer_leaves_the_inputs_too():
    model = make_model(
        [helper.make_node("Relu", ["x"], ["y"])],
        [("x", FLOAT, [2]), ("w", FLOAT, [2])],
        [("y", FLOAT, [2])],
        [("w", np.ones(2, np.float32))],
        opset=9,
        ir_version=3,
    )
    cleaned = check_pass(model, DeadCodeElimination())
    assert [v.name for v in cleaned.graph.inputs] == ["x"] and not cleaned.graph.initializers


def test_initializer_that_is_a_graph_output_stays():
    model = make_model(
        [helper.make_node("Relu", ["x"], ["y"])],
        [("x", FLOAT, [2])],
        [("y", FLOAT, [2]), ("w", FLOAT, [2])],
        [("w", np.ones(2, np.float32))],
    )
    assert not DeadCodeElimination()(to_ferry(model)).modified


def test_reads_and_returns_from_nested_subgraphs_count():
    innermost = _branch("inner_then", [helper.make_node("Add", ["n", "w"], ["deep"])], "deep")
    copies_outer = _branch("inner_else", [helper.make_node("Identity", ["m"], ["copy"])], "copy")
    nested_if = helper.make_node("If", ["cond"], ["t"], then_branch=innermost, else_branch=copies_outer)
    then_branch = _branch("then", [nested_if], "t")
    else_branch = _branch("else", [helper.make_node("Neg", ["x"], ["e"])], "e")
    model = make_model(
        [
            helper.make_node("Neg", ["x"], ["n"]),
            helper.make_node("Abs", ["x"], ["m"]),
            helper.make_node("If", ["cond"], ["y"], then_branch=then_branch, else_branch=else_branch),
        ],
        [("cond", BOOL, []), ("x", FLOAT, [2])],
        [("y", FLOAT, [2])],
        [("w", np.ones(2, np.float32))],
    )
    assert not DeadCodeElimination()(to_ferry(model)).modified
    check_pass(model, DeadCodeElimination())
