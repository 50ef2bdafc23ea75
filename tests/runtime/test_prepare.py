"""Plan-time preparation of constant inputs (preparers) and what it guarantees."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ferry
from ferry.runtime.kernels.conv import conv
from ferry.runtime.kernels.conv_prepare import duplicate_rows
from ferry.runtime.options import GraphOptimizationLevel, SessionOptions

CONV_ATTRS = dict(auto_pad="NOTSET", dilations=[1, 1], group=1, kernel_shape=[1, 1], pads=[0, 0, 0, 0],
                  strides=[1, 1])


def _conv_model(w: np.ndarray, b: np.ndarray, *, weights_are_inputs: bool = False) -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, w.shape[1], 13, 13])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, w.shape[0], 13, 13])
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    inputs = [x]
    if weights_are_inputs:
        inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape)) for n, a in (("w", w), ("b", b))]
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv10")
    graph = helper.make_graph([node], "g", inputs, [y], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _session(model: bytes, optimize: bool) -> ferry.InferenceSession:
    options = SessionOptions()
    if not optimize:
        options.graph_optimization_level = GraphOptimizationLevel.ORT_DISABLE_ALL
    return ferry.InferenceSession(model, options)


@pytest.mark.parametrize("optimize", [True, False])
def test_identical_channels_give_bit_identical_outputs(optimize):
    rng = np.random.default_rng(1)
    row = rng.standard_normal((1, 512, 1, 1)).astype(np.float32)
    w = np.repeat(row, 1000, axis=0)
    b = np.full(1000, 0.25, np.float32)
    x = (rng.standard_normal((1, 512, 13, 13)) * 1e6).astype(np.float32)
    (y,) = _session(_conv_model(w, b), optimize).run(None, {"x": x})
    assert y.shape == (1, 1000, 13, 13)
    assert (y == y[:, :1]).all()  # every channel equals channel 0, bit for bit
    expected = conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), **CONV_ATTRS)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def test_repeated_channels_keep_their_order_and_distinct_ones_stay():
    rng = np.random.default_rng(2)
    a, c = rng.standard_normal((2, 8, 1, 1)).astype(np.float32)
    w = np.stack([a, c, a, a, c])
    b = np.array([1, 2, 1, 3, 2], np.float32)  # channel 3 repeats a's weights but not its bias
    x = rng.standard_normal((1, 8, 13, 13)).astype(np.float32)
    (y,) = _session(_conv_model(w, b), True).run(None, {"x": x})
    np.testing.assert_allclose(y, conv(x, w, b, **CONV_ATTRS), rtol=1e-6, atol=1e-6)
    assert (y[:, 0] == y[:, 2]).all() and (y[:, 1] == y[:, 4]).all()
    assert not np.allclose(y[:, 3], y[:, 0])


def test_weights_that_can_be_fed_are_not_prepared():
    w = np.ones((4, 3, 1, 1), np.float32)
    b = np.zeros(4, np.float32)
    session = _session(_conv_model(w, b, weights_are_inputs=True), False)
    x = np.ones((1, 3, 13, 13), np.float32)
    other = np.arange(12, dtype=np.float32).reshape(4, 3, 1, 1)
    (y,) = session.run(None, {"x": x, "w": other})
    np.testing.assert_allclose(y[0, :, 0, 0], other.reshape(4, 3).sum(axis=1))


def test_duplicate_rows_finds_exact_repeats_only():
    rows = np.array([[1, 2], [3, 4], [1, 2], [1, np.nextafter(np.float32(2), 3)]], np.float32)
    first, expand = duplicate_rows(rows)
    assert first.tolist() == [0, 1, 3] and expand.tolist() == [0, 1, 0, 2]
    assert duplicate_rows(np.eye(3, dtype=np.float32)) is None
    first, expand = duplicate_rows(np.array([[np.nan], [np.nan]], np.float32))  # same bits: same output
    assert first.tolist() == [0] and expand.tolist() == [0, 0]
    assert duplicate_rows(np.array([[0.0], [-0.0]], np.float32)) is None  # equal values, other bits


def test_fed_bias_keeps_repeated_weight_rows_apart():
    w = np.ones((3, 2, 1, 1), np.float32)  # three identical weight rows
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 13, 13])
    b_info = helper.make_tensor_value_info("b", TensorProto.FLOAT, [3])
    y_info = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 13, 13])
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w", "b"], ["y"])], "g", [x_info, b_info], [y_info],
                              initializer=[numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    x = np.ones((1, 2, 13, 13), np.float32)
    (y,) = _session(model, True).run(None, {"x": x, "b": np.array([0, 1, 2], np.float32)})
    assert y[0, :, 0, 0].tolist() == [2.0, 3.0, 4.0]


def test_fused_conv_with_repeated_channels_adds_the_residual_per_channel():
    rng = np.random.default_rng(4)
    row = rng.standard_normal((1, 3, 3, 3)).astype(np.float32)
    w = np.repeat(row, 4, axis=0)
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])
    r_info = helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 4, 6, 6])
    y_info = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "r"], ["a"]), helper.make_node("Relu", ["a"], ["y"])]
    graph = helper.make_graph(nodes, "g", [x_info, r_info], [y_info], initializer=[numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    feeds = {"x": rng.standard_normal((1, 3, 6, 6)).astype(np.float32),
             "r": rng.standard_normal((1, 4, 6, 6)).astype(np.float32)}
    fused = _session(model, True)
    assert [n.op_type for n in fused.model.graph] == ["FusedConv"]
    np.testing.assert_allclose(fused.run(None, feeds)[0], _session(model, False).run(None, feeds)[0], rtol=1e-6,
                               atol=1e-6)


def test_half_precision_conv_is_prepared_in_float32_and_returns_half():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float16)
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 3, 6, 6])
    y_info = helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, 4, 4, 4])
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"])], "g", [x_info], [y_info],
                              initializer=[numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    x = rng.standard_normal((1, 3, 6, 6)).astype(np.float16)
    (y,) = _session(model, True).run(None, {"x": x})
    assert y.dtype == np.float16
    expected = conv(x.astype(np.float32), w.astype(np.float32), None, **dict(CONV_ATTRS, kernel_shape=[3, 3]))
    np.testing.assert_allclose(y.astype(np.float32), expected, rtol=2e-3, atol=2e-3)
