"""Session-time fusions: recognised where they apply, absent where they must not, and the
session's outputs equal the unfused model's on random inputs."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ferry
from ferry.runtime.kernels.fused import gelu
from ferry.runtime.options import GraphOptimizationLevel, SessionOptions

RNG = np.random.default_rng(7)


def _const(name, array):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(array, np.float32)))


def _model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
                              initializer=[numpy_helper.from_array(a, n) for n, a in initializers])
    for out in graph.output:
        out.type.tensor_type.shape.SetInParent()
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def _fused_ops(model: bytes) -> Counter:
    session = ferry.InferenceSession(model)
    return Counter((n.op_type, n.attributes["activation"].value if "activation" in n.attributes else "")
                   for n in session.model.graph if n.domain == "ferry.internal")


def _assert_same_outputs(model: bytes, feeds: dict, rtol=1e-5, atol=1e-6):
    plain = SessionOptions()
    plain.graph_optimization_level = GraphOptimizationLevel.ORT_DISABLE_ALL
    expected = ferry.InferenceSession(model, plain).run(None, feeds)
    got = ferry.InferenceSession(model).run(None, feeds)
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)


def _conv_model(tail: list, outputs=("y",), opset=17):
    w = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(4).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"), *tail]
    return _model(nodes, [("x", [1, 3, 8, 8]), ("r", [1, 4, 8, 8])], outputs, [("w", w), ("b", b)], opset)


CONV_FEEDS = {"x": RNG.standard_normal((1, 3, 8, 8)).astype(np.float32),
              "r": RNG.standard_normal((1, 4, 8, 8)).astype(np.float32)}


@pytest.mark.parametrize(("tail", "expected"), [
    ([helper.make_node("Add", ["c", "r"], ["a"]), helper.make_node("Relu", ["a"], ["y"])], ("FusedConv", "Relu")),
    ([helper.make_node("Add", ["r", "c"], ["y"])], ("FusedConv", "")),
    ([helper.make_node("LeakyRelu", ["c"], ["y"], alpha=0.2)], ("FusedConv", "LeakyRelu")),
    ([_const("lo", 0.0), _const("hi", 6.0), helper.make_node("Clip", ["c", "lo", "hi"], ["y"])], ("FusedConv", "Clip")),
])
def test_conv_epilogues_fuse_and_agree(tail, expected):
    model = _conv_model(tail)
    assert _fused_ops(model) == Counter({expected: 1})
    _assert_same_outputs(model, CONV_FEEDS)


def test_clip_attributes_before_opset_11_fuse():
    model = _conv_model([helper.make_node("Clip", ["c"], ["y"], min=-0.5, max=0.5)], opset=10)
    assert _fused_ops(model) == Counter({("FusedConv", "Clip"): 1})
    _assert_same_outputs(model, CONV_FEEDS)


def test_values_read_elsewhere_or_returned_are_not_fused_away():
    returned = _conv_model([helper.make_node("Relu", ["c"], ["y"])], outputs=("y", "c"))
    assert _fused_ops(returned) == Counter()
    shared = _conv_model([helper.make_node("Add", ["c", "r"], ["a"]), helper.make_node("Relu", ["a"], ["y"]),
                          helper.make_node("Sigmoid", ["a"], ["s"])], outputs=("y", "s"))
    assert _fused_ops(shared) == Counter({("FusedConv", ""): 1})  # the Add is fused, the Relu is not
    _assert_same_outputs(shared, CONV_FEEDS)


def test_clip_with_computed_bounds_is_left_alone():
    model = _conv_model([helper.make_node("ReduceMax", ["r"], ["hi"], keepdims=0),
                         helper.make_node("Clip", ["c", "", "hi"], ["y"])])
    assert _fused_ops(model) == Counter()
    _assert_same_outputs(model, CONV_FEEDS)


def _gelu_nodes(form: str) -> list:
    if form == "div":
        scale = [_const("k", math.sqrt(2)), helper.make_node("Div", ["x", "k"], ["s"])]
    else:
        scale = [_const("k", math.sqrt(0.5)), helper.make_node("Mul", ["k", "x"], ["s"])]
    nodes = [*scale, helper.make_node("Erf", ["s"], ["e"]), _const("one", 1.0), _const("half", 0.5),
             helper.make_node("Add", ["one", "e"], ["p"])]
    if form == "half-first":
        nodes += [helper.make_node("Mul", ["x", "half"], ["h"]), helper.make_node("Mul", ["h", "p"], ["y"])]
    else:
        nodes += [helper.make_node("Mul", ["p", "x"], ["m"]), helper.make_node("Mul", ["m", "half"], ["y"])]
    return nodes


@pytest.mark.parametrize("form", ["div", "mul", "half-first"])
def test_gelu_patterns_fuse_and_agree(form):
    model = _model(_gelu_nodes(form), [("x", [4, 1000])], ["y"])
    assert _fused_ops(model) == Counter({("Gelu", ""): 1})
    x = (RNG.standard_normal((4, 1000)) * 3).astype(np.float32)
    _assert_same_outputs(model, {"x": x}, rtol=1e-5, atol=2e-6)


def test_gelu_with_the_wrong_constant_is_not_gelu():
    nodes = _gelu_nodes("div")
    nodes[0] = _const("k", 1.5)
    assert _fused_ops(_model(nodes, [("x", [4, 10])], ["y"])) == Counter()


def test_matmul_bias_gelu_becomes_one_step():
    w = RNG.standard_normal((16, 32)).astype(np.float32)
    bias = RNG.standard_normal(32).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["a", "w"], ["mm"]), helper.make_node("Add", ["mm", "bias"], ["x"]),
             *_gelu_nodes("div")]
    model = _model(nodes, [("a", [2, 5, 16])], ["y"], [("w", w), ("bias", bias)])
    assert _fused_ops(model) == Counter({("FusedMatMul", "Gelu"): 1})
    _assert_same_outputs(model, {"a": RNG.standard_normal((2, 5, 16)).astype(np.float32)}, atol=1e-5)


@pytest.mark.parametrize("residual_shape", [(2, 5, 32), (5, 32), (3, 2, 5, 32)])
def test_matmul_bias_residual_relu_becomes_one_step(residual_shape):
    """A transformer's output projection: x @ W + b + residual; the residual may broadcast
    either way (a larger one makes the result larger, as the Add does)."""
    w = RNG.standard_normal((16, 32)).astype(np.float32)
    bias = RNG.standard_normal(32).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["a", "w"], ["mm"]), helper.make_node("Add", ["mm", "bias"], ["x"]),
             helper.make_node("Add", ["r", "x"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    model = _model(nodes, [("a", [2, 5, 16]), ("r", list(residual_shape))], ["y"], [("w", w), ("bias", bias)])
    assert _fused_ops(model) == Counter({("FusedMatMul", "Relu"): 1})
    feeds = {"a": RNG.standard_normal((2, 5, 16)).astype(np.float32),
             "r": RNG.standard_normal(residual_shape).astype(np.float32)}
    _assert_same_outputs(model, feeds, atol=1e-5)


@pytest.mark.parametrize("trans_b, c_shape, beta", [(1, (8,), 1.0), (0, (1, 8), 0.5), (1, None, 1.0),
                                                    (0, (1,), 2.0), (1, (8,), 0.0)])
@pytest.mark.parametrize("activation", ["Relu", "Clip"])
def test_gemm_bias_activation_becomes_one_step(trans_b, c_shape, beta, activation):
    """A classifier's Linear + Relu exported as Gemm: op(B) and beta * C become the
    FusedMatMul's weights and bias."""
    b = RNG.standard_normal((8, 6) if trans_b else (6, 8)).astype(np.float32)
    inits = [("b", b)]
    inputs = ["a", "b"]
    if c_shape is not None:
        inits.append(("c", RNG.standard_normal(c_shape).astype(np.float32)))
        inputs.append("c")
    act = (helper.make_node("Relu", ["g"], ["y"]) if activation == "Relu" else
           helper.make_node("Clip", ["g", "lo", "hi"], ["y"]))
    consts = [] if activation == "Relu" else [_const("lo", -0.5), _const("hi", 0.7)]
    nodes = [*consts, helper.make_node("Gemm", inputs, ["g"], transB=trans_b, beta=beta), act]
    model = _model(nodes, [("a", [5, 6])], ["y"], inits)
    assert _fused_ops(model) == Counter({("FusedMatMul", activation): 1})
    _assert_same_outputs(model, {"a": RNG.standard_normal((5, 6)).astype(np.float32)}, atol=1e-5)


@pytest.mark.parametrize("attributes, c_shape", [({"transA": 1}, (8,)), ({"alpha": 2.0}, (8,)),
                                                 ({}, (5, 8)), ({}, (2, 8))])
def test_gemms_that_are_not_a_row_product_plus_bias_are_left_alone(attributes, c_shape):
    a_shape = (6, 5) if attributes.get("transA") else (5, 6)
    inits = [("b", RNG.standard_normal((6, 8)).astype(np.float32)),
             ("c", RNG.standard_normal(c_shape).astype(np.float32))]
    nodes = [helper.make_node("Gemm", ["a", "b", "c"], ["g"], **attributes),
             helper.make_node("Relu", ["g"], ["y"])]
    model = _model(nodes, [("a", list(a_shape))], ["y"], inits)
    assert _fused_ops(model) == Counter()
    if c_shape != (2, 8):  # (2, 8) does not broadcast to (5, 8): the model is invalid
        _assert_same_outputs(model, {"a": RNG.standard_normal(a_shape).astype(np.float32)})


def test_matmul_with_fed_weights_is_not_fused():
    nodes = [helper.make_node("MatMul", ["a", "w"], ["mm"]), helper.make_node("Relu", ["mm"], ["y"])]
    model = _model(nodes, [("a", [2, 16]), ("w", [16, 8])], ["y"])
    assert _fused_ops(model) == Counter()


def test_fast_gelu_is_accurate_against_the_exact_formula():
    x = np.concatenate([np.linspace(-8, 8, 20001), RNG.standard_normal(20000) * 2]).astype(np.float32)
    exact = np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    got = gelu(x).astype(np.float64)
    assert np.abs(got - exact).max() < 2e-6
    big = np.abs(exact) > 0.1
    assert (np.abs(got - exact)[big] / np.abs(exact[big])).max() < 3e-6
    assert gelu(x.astype(np.float64)).dtype == np.float64


def _attention_softmax(cleanup: bool, axis: int = -1, opset: int = 17) -> bytes:
    nodes = [helper.make_node("Add", ["scores", "mask"], ["s"]),
             helper.make_node("Softmax", ["s"], ["p" if cleanup else "y"], axis=axis)]
    if cleanup:
        nodes += [helper.make_node("IsNaN", ["p"], ["nan"]), _const("zero", 0.0),
                  helper.make_node("Where", ["nan", "zero", "p"], ["y"])]
    return _model(nodes, [("scores", [2, 3, 4, 5]), ("mask", [2, 1, 1, 5])], ["y"], opset=opset)


ATTENTION_FEEDS = {
    "scores": RNG.standard_normal((2, 3, 4, 5)).astype(np.float32),
    "mask": np.where(np.arange(10).reshape(2, 1, 1, 5) % 5 >= 3, -np.inf, 0).astype(np.float32),
}


@pytest.mark.parametrize("cleanup", [True, False])
def test_masked_softmax_fuses_and_agrees(cleanup):
    model = _attention_softmax(cleanup)
    assert _fused_ops(model) == Counter({("MaskedSoftmax", ""): 1})
    _assert_same_outputs(model, ATTENTION_FEEDS)


def test_fully_masked_rows_become_zero_only_with_the_cleanup():
    feeds = dict(ATTENTION_FEEDS, mask=np.full((2, 1, 1, 5), -np.inf, np.float32))
    (with_cleanup,) = ferry.InferenceSession(_attention_softmax(True)).run(None, feeds)
    assert (with_cleanup == 0).all()
    (without,) = ferry.InferenceSession(_attention_softmax(False)).run(None, feeds)
    assert np.isnan(without).all()


@pytest.mark.parametrize(("axis", "opset"), [(1, 17), (-1, 12)])
def test_softmax_on_other_axes_or_old_opsets_is_left_alone(axis, opset):
    assert _fused_ops(_attention_softmax(True, axis, opset)) == Counter()


def test_standard_gelu_runs_as_the_fused_kernel_and_joins_the_matmul():
    w = RNG.standard_normal((16, 32)).astype(np.float32)
    bias = RNG.standard_normal(32).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["a", "w"], ["mm"]), helper.make_node("Add", ["mm", "bias"], ["x"]),
             helper.make_node("Gelu", ["x"], ["y"])]
    model = _model(nodes, [("a", [2, 5, 16])], ["y"], [("w", w), ("bias", bias)], opset=20)
    assert _fused_ops(model) == Counter({("FusedMatMul", "Gelu"): 1})
    _assert_same_outputs(model, {"a": RNG.standard_normal((2, 5, 16)).astype(np.float32)}, atol=1e-5)
    tanh = _model([helper.make_node("Gelu", ["a"], ["y"], approximate="tanh")], [("a", [2, 5, 16])], ["y"], opset=20)
    assert _fused_ops(tanh) == Counter()
