"""In-place elementwise steps never change what the model computes or what the caller owns."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

import ferry
from ferry.runtime.options import GraphOptimizationLevel, SessionOptions

RNG = np.random.default_rng(3)
W = RNG.standard_normal((4, 4)).astype(np.float32)


def _session(nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        initializer=[numpy_helper.from_array(a, n) for n, a in initializers])
    for out in graph.output:
        out.type.tensor_type.shape.SetInParent()
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    options = SessionOptions()
    options.graph_optimization_level = GraphOptimizationLevel.ORT_DISABLE_ALL  # keep the nodes as built
    return ferry.InferenceSession(model, options)


def _in_place_steps(session) -> list[str]:
    return [step.node.op_type for step in session._plan.steps if step.call.__module__ == "ferry.runtime.inplace"]


def test_dead_fresh_operands_are_reused_and_results_match():
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Relu", ["m"], ["r"]),
             helper.make_node("Sub", ["b", "r"], ["s"]), helper.make_node("Mul", ["s", "b"], ["y"])]
    session = _session(nodes, [("x", [3, 4]), ("b", [3, 4])], ["y"], [("w", W)])
    assert _in_place_steps(session) == ["Relu", "Sub", "Mul"]
    x, b = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    x_before, b_before = x.copy(), b.copy()
    for _ in range(2):  # repeated runs agree: nothing persistent was overwritten
        (y,) = session.run(None, {"x": x, "b": b})
        np.testing.assert_allclose(y, (b - np.maximum(x @ W, 0)) * b, rtol=1e-6)
    assert (x == x_before).all() and (b == b_before).all()  # the caller's arrays are untouched


def test_feeds_constants_and_shared_values_are_never_written():
    nodes = [helper.make_node("Relu", ["x"], ["a"]),                        # a feed
             helper.make_node("Add", ["c", "a"], ["k"]),                     # a constant (c)
             helper.make_node("MatMul", ["k", "w"], ["m"]),
             helper.make_node("Relu", ["m"], ["r"]),                         # m read twice
             helper.make_node("Add", ["m", "r"], ["y"])]
    c = np.full((3, 4), 2.0, np.float32)
    session = _session(nodes, [("x", [3, 4])], ["y", "a"], [("w", W), ("c", c)])
    assert _in_place_steps(session) == ["Add"]  # only the last Add, into r (dead, single reader)
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    for _ in range(2):
        y, a = session.run(None, {"x": x})
        m = (c + np.maximum(x, 0)) @ W
        np.testing.assert_allclose(y, m + np.maximum(m, 0), rtol=1e-6)
        np.testing.assert_array_equal(a, np.maximum(x, 0))


def test_a_result_that_outgrows_the_operand_falls_back_to_a_new_buffer():
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])]
    session = _session(nodes, [("x", [1, 4]), ("b", [3, 4])], ["y"], [("w", W)])
    assert _in_place_steps(session) == ["Add"]
    x = RNG.standard_normal((1, 4)).astype(np.float32)
    b = RNG.standard_normal((3, 4)).astype(np.float32)
    (y,) = session.run(None, {"x": x, "b": b})
    assert y.shape == (3, 4)
    np.testing.assert_allclose(y, x @ W + b, rtol=1e-6)
