"""``optimize`` on models mixing every pattern, with control flow, checked end to end."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from tests.passes.helpers import FLOAT, INT64, check_pass, make_model, op_counts

RNG = np.random.default_rng(11)


def _f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def test_conv_bn_head_with_every_pattern():
    nodes = [
        helper.make_node("Identity", ["x"], ["x_copy"]),
        helper.make_node("Conv", ["x_copy", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["r1"]),
        helper.make_node("Relu", ["bn"], ["r2"]),  # duplicate
        helper.make_node("Add", ["r1", "r2"], ["sum"]),
        helper.make_node("Shape", ["sum"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch_1d"]),
        helper.make_node("Concat", ["batch_1d", "minus_one"], ["flat_shape"], axis=0),
        helper.make_node("Transpose", ["sum"], ["t1"], perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", ["t1"], ["t2"], perm=[0, 3, 1, 2]),
        helper.make_node("Reshape", ["t2", "first_shape"], ["flat0"]),
        helper.make_node("Reshape", ["flat0", "flat_shape"], ["flat"]),
        helper.make_node("Unsqueeze", ["flat", "axes0"], ["u"]),
        helper.make_node("Squeeze", ["u", "axes0"], ["flat2"]),
        helper.make_node("MatMul", ["flat2", "fc_w"], ["mm"]),
        helper.make_node("Add", ["mm", "fc_b"], ["y"]),
        helper.make_node("Neg", ["x"], ["dead"]),
    ]
    initializers = [
        ("w", _f32(4, 3, 3, 3)),
        ("s", RNG.uniform(0.5, 1.5, 4).astype(np.float32)),
        ("b", _f32(4)),
        ("m", _f32(4)),
        ("v", RNG.uniform(0.5, 1.5, 4).astype(np.float32)),
        ("zero", np.array(0, np.int64)),
        ("axes0", np.array([0], np.int64)),
        ("minus_one", np.array([-1], np.int64)),
        ("first_shape", np.array([2, 4, 36], np.int64)),
        # positive weights after Relu: no cancellation to amplify the rounding that folding
        # BN into the conv weights changes (float32 results are compared with rtol 1e-5)
        ("fc_w", RNG.uniform(0.0, 0.1, (144, 5)).astype(np.float32)),
        ("fc_b", RNG.uniform(0.0, 1.0, 5).astype(np.float32)),
        ("unused", _f32(3)),
    ]
    declared = [("sum", FLOAT, [2, 4, 6, 6]), ("flat2", FLOAT, [2, 144])]
    model = make_model(
        nodes, [("x", FLOAT, [2, 3, 6, 6])], [("y", FLOAT, [2, 5])], initializers, value_info=declared
    )
    optimized = check_pass(model)
    assert op_counts(optimized) == {"Conv": 1, "Relu": 1, "Add": 1, "Reshape": 1, "Gemm": 1}
    assert sorted(optimized.graph.initializers) == ["fc_b", "fc_w", "flat_shape", "w_bn", "w_bn_bias"]


def test_loop_body_reads_outer_values():
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["k", "k"], ["two_k"]),  # outer constants: folds in the body
            helper.make_node("Mul", ["acc_in", "two_k"], ["scaled"]),
            helper.make_node("Add", ["scaled", "outer"], ["acc_out"]),
            helper.make_node("Identity", ["acc_out"], ["scan_out"]),
            helper.make_node("Neg", ["acc_in"], ["unused"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", FLOAT, [3]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", FLOAT, [3]),
            helper.make_tensor_value_info("scan_out", FLOAT, [3]),
        ],
    )
    nodes = [
        helper.make_node("Relu", ["x"], ["outer"]),  # read only inside the body
        helper.make_node("Loop", ["trips", "", "x"], ["final", "history"], body=body),
    ]
    model = make_model(
        nodes,
        [("x", FLOAT, [3])],
        [("final", FLOAT, [3]), ("history", FLOAT, [4, 3])],
        [("trips", np.array(4, np.int64)), ("k", np.full(3, 0.5, np.float32))],
    )
    optimized = check_pass(model)
    body = optimized.graph.nodes[1].attributes["body"].value
    assert [n.op_type for n in body] == ["Identity", "Constant", "Mul", "Add", "Identity"]
    assert op_counts(optimized)["Relu"] == 1
