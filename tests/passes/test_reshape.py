"""FuseReshapes: a Reshape of a Reshape reads the original; no-op Reshapes go."""

from __future__ import annotations

import numpy as np
from onnx import helper

from ferry.passes import FuseReshapes
from tests.passes.helpers import FLOAT, INT64, check_pass, make_model, op_counts, to_ferry


def _model(first, second, *, extra=(), outputs=None, second_as_input=False):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Reshape", ["r", "s1"], ["m"]),
        helper.make_node("Reshape", ["m", "s2"], ["y"]),
        *extra,
    ]
    initializers = [("s1", np.array(first, np.int64)), ("s2", np.array(second, np.int64))]
    inputs = [("x", FLOAT, [2, 3, 4])]
    if second_as_input:
        inputs.append(("s2", INT64, [len(second)]))
    outputs = outputs or [("y", FLOAT, [None] * len(second))]
    return make_model(nodes, inputs, outputs, initializers)


def test_merges_two_reshapes():
    rewritten = check_pass(_model([6, 4], [4, -1]), FuseReshapes())
    assert op_counts(rewritten) == {"Relu": 1, "Reshape": 1}
    reshape = rewritten.graph.nodes[1]
    assert reshape.inputs[0].name == "r" and reshape.outputs[0].name == "y"


def test_not_merged_when_the_target_copies_a_dim():
    model = _model([6, 4], [0, 2, 2])  # 0: "the intermediate's dim 0" (6), not x's (2)
    assert not FuseReshapes()(to_ferry(model)).modified
    check_pass(model)


def test_not_merged_when_inner_read_twice_or_target_dynamic():
    extra = [helper.make_node("Abs", ["m"], ["z"])]
    twice = _model([6, 4], [4, 6], extra=extra, outputs=[("y", FLOAT, [None] * 2), ("z", FLOAT, [None] * 2)])
    assert not FuseReshapes()(to_ferry(twice)).modified
    dynamic = _model([6, 4], [4, 6], second_as_input=True)
    assert not FuseReshapes()(to_ferry(dynamic)).modified


def test_reshape_to_the_same_static_shape_goes():
    model = make_model(
        [helper.make_node("Reshape", ["x", "s"], ["r"]), helper.make_node("Neg", ["r"], ["y"])],
        [("x", FLOAT, [2, 3])],
        [("y", FLOAT, [2, 3])],
        [("s", np.array([2, 3], np.int64))],
    )
    assert op_counts(check_pass(model, FuseReshapes())) == {"Neg": 1}


def test_optimize_folds_a_reshape_chain_built_from_shapes():
    model = _model([6, 4], [2, 12])
    assert op_counts(check_pass(model)) == {"Relu": 1, "Reshape": 1}
