"""ConstantFolding: rewrites that must happen, and those that must not."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from ferry.passes import ConstantFolding, optimize
from tests.passes.helpers import FLOAT, INT64, check_pass, make_model, op_counts, to_ferry

W = np.arange(6, dtype=np.float32).reshape(2, 3)


def test_folds_arithmetic_on_initializers():
    model = make_model(
        [
            helper.make_node("Add", ["a", "b"], ["s"]),
            helper.make_node("Cast", ["s"], ["c"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["x", "c"], ["y"]),
        ],
        [("x", FLOAT, [2, 3])],
        [("y", FLOAT, [2, 3])],
        [("a", W.astype(np.int64)), ("b", np.ones((2, 3), np.int64))],
    )
    folded = check_pass(model, ConstantFolding())
    assert op_counts(folded) == {"Mul": 1}
    constant = folded.graph.nodes[0].inputs[1]
    np.testing.assert_array_equal(constant.const_value.numpy(), W + 1)


def test_folds_constant_nodes_and_chains():
    model = make_model(
        [
            helper.make_node("Constant", [], ["k"], value=helper.make_tensor("k", FLOAT, [3], [1, 2, 3])),
            helper.make_node("Neg", ["k"], ["n"]),
            helper.make_node("Exp", ["n"], ["e"]),
            helper.make_node("Add", ["x", "e"], ["y"]),
        ],
        [("x", FLOAT, [2, 3])],
        [("y", FLOAT, [2, 3])],
    )
    folded = check_pass(model, ConstantFolding())
    assert op_counts(folded) == {"Add": 1, "Constant": 1}  # the Constant is dead code now
    assert op_counts(check_pass(model)) == {"Add": 1}


def test_folds_shape_of_static_values_and_the_shape_computation():
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Shape", ["r"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "zero_axes"], ["batch_1d"]),
        helper.make_node("Concat", ["batch_1d", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["r", "target"], ["y"]),
    ]
    initializers = [
        ("zero", np.array(0, np.int64)),
        ("zero_axes", np.array([0], np.int64)),
        ("minus_one", np.array([-1], np.int64)),
    ]
    declared = [("r", FLOAT, [2, 3, 4])]  # the shape as a model's value_info declares it
    model = make_model(
        nodes, [("x", FLOAT, [2, 3, 4])], [("y", FLOAT, [2, 12])], initializers, value_info=declared
    )
    optimized = check_pass(model)
    assert op_counts(optimized) == {"Relu": 1, "Reshape": 1}
    target = optimized.graph.nodes[1].inputs[1]
    np.testing.assert_array_equal(target.const_value.numpy(), [2, -1])


def test_shape_with_start_and_end_and_size():
    model = make_model(
        [
            helper.make_node("Shape", ["x"], ["tail"], start=1, end=-1),
            helper.make_node("Size", ["x"], ["count"]),
            helper.make_node("Mul", ["tail", "count"], ["y"]),
        ],
        [("x", FLOAT, [2, 3, 4, 5])],
        [("y", INT64, [2])],
        opset=15,
    )
    folded = check_pass(model, ConstantFolding())
    assert op_counts(folded) == {"Constant": 1}  # the output keeps its name
    assert folded.graph.outputs[0].producer().op_type == "Constant"
    np.testing.assert_array_equal(folded.graph.nodes[0].attributes["value"].value.numpy(), [360, 480])


def test_graph_output_keeps_its_name_and_type():
    model = make_model(
        [helper.make_node("Add", ["a", "a"], ["y"])],
        [("x", FLOAT, [2, 3])],
        [("y", FLOAT, [2, 3])],
        [("a", W)],
    )
    folded = check_pass(model, ConstantFolding())
    (output,) = folded.graph.outputs
    assert output.name == "y" and output.producer().op_type == "Constant"
    assert list(output.shape) == [2, 3]


def test_does_not_fold_dynamic_shapes_or_non_constant_inputs():
    model = make_model(
        [
            helper.make_node("Shape", ["x"], ["s"]),
            helper.make_node("Cast", ["s"], ["f"], to=TensorProto.FLOAT),
            helper.make_node("ReduceSum", ["f"], ["total"], keepdims=0),
            helper.make_node("Add", ["x", "total"], ["y"]),
        ],
        [("x", FLOAT, ["n", 3])],
        [("y", FLOAT, ["n", 3])],
    )
    assert not ConstantFolding()(to_ferry(model)).modified
    assert op_counts(check_pass(model)) == {"Shape": 1, "Cast": 1, "ReduceSum": 1, "Add": 1}


def test_overridable_initializer_is_not_a_constant():
    model = make_model(
        [helper.make_node("Neg", ["a"], ["n"]), helper.make_node("Add", ["x", "n"], ["y"])],
        [("x", FLOAT, [2, 3]), ("a", FLOAT, [2, 3])],
        [("y", FLOAT, [2, 3])],
        [("a", W)],
    )
    assert not ConstantFolding()(to_ferry(model)).modified
    check_pass(model)


def test_legacy_ir_initializers_are_constants_and_new_ones_are_inputs_too():
    model = make_model(
        [helper.make_node("Neg", ["a"], ["n"]), helper.make_node("Add", ["x", "n"], ["y"])],
        [("x", FLOAT, [2, 3]), ("a", FLOAT, [2, 3])],
        [("y", FLOAT, [2, 3])],
        [("a", W)],
        opset=9,
        ir_version=3,
    )
    optimized = check_pass(model)
    assert op_counts(optimized) == {"Add": 1}
    graph = optimized.graph
    assert set(graph.initializers) == {"n"}
    assert [v.name for v in graph.inputs] == ["x", "n"]


def test_random_ops_are_not_folded():
    model = make_model(
        [
            helper.make_node("RandomNormal", [], ["r"], shape=[2, 3], seed=1.0),
            helper.make_node("Mul", ["r", "zero"], ["z"]),
            helper.make_node("Add", ["x", "z"], ["y"]),
        ],
        [("x", FLOAT, [2, 3])],
        [("y", FLOAT, [2, 3])],
        [("zero", np.zeros((), np.float32))],
    )
    assert op_counts(check_pass(model)) == {"RandomNormal": 1, "Mul": 1, "Add": 1}


def test_large_results_are_not_folded():
    nodes = [
        helper.make_node("ConstantOfShape", ["shape"], ["big"]),
        helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
        helper.make_node("Add", ["x", "total"], ["y"]),
    ]
    shape = ("shape", np.array([10, 10], np.int64))
    model = make_model(nodes, [("x", FLOAT, [2])], [("y", FLOAT, [2])], [shape])
    small_limit = check_pass(model, ConstantFolding(max_elements=50))
    assert op_counts(small_limit)["ConstantOfShape"] == 1
    assert op_counts(check_pass(model, ConstantFolding())) == {"Add": 1}
    huge = make_model(nodes, [("x", FLOAT, [2])], [("y", FLOAT, [2])], [("shape", np.array([1001, 1000]))])
    assert not ConstantFolding()(to_ferry(huge)).modified


def test_results_no_larger_than_an_input_fold_whatever_their_size():
    weight = ("w", np.arange(1200 * 1000, dtype=np.float32).reshape(1200, 1000) / 1e6)
    nodes = [helper.make_node("Transpose", ["w"], ["wt"]), helper.make_node("MatMul", ["x", "wt"], ["y"])]
    model = make_model(nodes, [("x", FLOAT, [2, 1000])], [("y", FLOAT, [2, 1200])], [weight])
    assert op_counts(check_pass(model, ConstantFolding())) == {"MatMul": 1}
    grown = [helper.make_node("Tile", ["w", "reps"], ["big"]), helper.make_node("ReduceSum", ["big"], ["y"])]
    tiled = make_model(grown, [], [("y", FLOAT, [1])], [weight, ("reps", np.array([2, 1], np.int64))])
    assert not ConstantFolding()(to_ferry(tiled)).modified  # 2.4M elements, twice the input


def test_sequence_results_are_not_folded():
    model = make_model(
        [
            helper.make_node("SequenceConstruct", ["a", "a"], ["seq"]),
            helper.make_node("SequenceAt", ["seq", "one"], ["item"]),
            helper.make_node("Add", ["x", "item"], ["y"]),
        ],
        [("x", FLOAT, [2, 3])],
        [("y", FLOAT, [2, 3])],
        [("a", W), ("one", np.array(1, np.int64))],
    )
    assert op_counts(check_pass(model, ConstantFolding()))["SequenceConstruct"] == 1


def _if_model(then_nodes, then_out, outer_nodes=(), initializers=(), opset=17):
    branch = helper.make_graph(then_nodes, "then", [], [helper.make_tensor_value_info(then_out, FLOAT, [2, 3])])
    other = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["other_out"])],
        "else",
        [],
        [helper.make_tensor_value_info("other_out", FLOAT, [2, 3])],
    )
    nodes = [*outer_nodes, helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=other)]
    return make_model(
        nodes, [("cond", TensorProto.BOOL, []), ("x", FLOAT, [2, 3])], [("y", FLOAT, [2, 3])],
        initializers, opset=opset,
    )


def test_folds_inside_subgraphs_reading_outer_constants():
    model = _if_model(
        [helper.make_node("Add", ["a", "a"], ["doubled"]), helper.make_node("Mul", ["x", "doubled"], ["then_out"])],
        "then_out",
        initializers=[("a", W)],
    )
    folded = check_pass(model, ConstantFolding())
    then_branch = folded.graph.nodes[0].attributes["then_branch"].value
    assert [n.op_type for n in then_branch] == ["Constant", "Mul"]


def test_optimize_is_a_fixed_point():
    model = to_ferry(
        make_model(
            [helper.make_node("Add", ["a", "a"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"])],
            [("x", FLOAT, [2, 3])],
            [("y", FLOAT, [2, 3])],
            [("a", W)],
        )
    )
    first, second = {}, {}
    optimize(model, stats=first)
    optimize(model, stats=second)
    assert first["constant-folding"] == 1 and first["dead-code-elimination"] == 1
    assert not any(second.values())
