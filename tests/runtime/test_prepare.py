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
    assert duplicate_rows(np.array([[np.nan], [np.nan]], np.float32)) is None
