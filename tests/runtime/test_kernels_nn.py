"""Node conformance cases and edge cases for the neural-network layer kernels."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.helper
import onnxruntime as ort
import pytest

from ferry.runtime.kernels._window import geometry
from tests.runtime.node_harness import node_case_test, run_node

OPS = {
    "Conv", "ConvTranspose", "DeformConv", "ConvInteger", "QLinearConv",
    "AveragePool", "MaxPool", "LpPool", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool",
    "MaxRoiPool", "MaxUnpool",
    "BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization",
    "LRN", "LpNormalization", "MeanVarianceNormalization", "RMSNormalization", "Dropout",
    "RoiAlign", "NonMaxSuppression", "GridSample", "AffineGrid",
}

SKIPS: dict[str, str] = {}


test_node_case = node_case_test(OPS, SKIPS)


# ---------------------------------------------------------------------------
# Hand-written cases: configurations the official cases miss, checked against
# onnxruntime (an independent implementation) or against values worked out by hand.

RNG = np.random.default_rng(0)


def _names(inputs):
    return [f"i{k}" if v is not None else "" for k, v in enumerate(inputs)]


def ferry_run(op, inputs, opset=22, outputs=1, **attrs):
    names = _names(inputs)
    node = onnx.helper.make_node(op, names, [f"o{k}" for k in range(outputs)], **attrs)
    scope = {n: v for n, v in zip(names, inputs, strict=True) if n}
    return run_node(node, {"": opset}, scope)[:outputs]


def ort_run(op, inputs, opset=22, outputs=1, **attrs):
    names = _names(inputs)
    outs = [f"o{k}" for k in range(outputs)]
    node = onnx.helper.make_node(op, names, outs, **attrs)
    graph_inputs = [
        onnx.helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(v.dtype),
                                           v.shape)
        for n, v in zip(names, inputs, strict=True) if n
    ]
    graph_outputs = [onnx.helper.make_value_info(o, onnx.TypeProto()) for o in outs]
    graph = onnx.helper.make_graph([node], "g", graph_inputs, graph_outputs)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {n: v for n, v in zip(names, inputs, strict=True) if n})


def check_against_ort(op, inputs, opset=22, outputs=1, rtol=1e-4, atol=1e-5, **attrs):
    got = ferry_run(op, inputs, opset, outputs, **attrs)
    want = ort_run(op, inputs, opset, outputs, **attrs)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape, (g.dtype, g.shape, w.dtype, w.shape)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def randn(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("attrs, x_shape, w_shape", [
    ({"group": 2, "dilations": [1, 2, 1], "strides": [2, 1, 2], "pads": [1, 0, 2, 0, 1, 1]},
     (2, 4, 7, 8, 6), (6, 2, 3, 2, 3)),
    ({"auto_pad": "SAME_LOWER", "strides": [2]}, (1, 3, 10), (5, 3, 4)),
    ({"auto_pad": "SAME_UPPER", "strides": [2, 3]}, (2, 3, 9, 10), (4, 3, 3, 2)),
    ({"group": 6, "pads": [1, 1, 1, 1]}, (1, 6, 5, 5), (12, 1, 3, 3)),  # depthwise x2
    ({"auto_pad": "VALID", "dilations": [2, 2]}, (1, 2, 9, 9), (3, 2, 3, 3)),
])
def test_conv_matches_ort(attrs, x_shape, w_shape):
    check_against_ort("Conv", [randn(*x_shape), randn(*w_shape), randn(w_shape[0])], **attrs)


def test_conv_float64_and_old_opset():
    x, w = randn(1, 2, 6, 6, dtype=np.float64), randn(3, 2, 3, 3, dtype=np.float64)
    want = ort_run("Conv", [x.astype(np.float32), w.astype(np.float32)], opset=11,
                   strides=[2, 2], pads=[1, 1, 1, 1])[0]
    got = ferry_run("Conv", [x, w], opset=11, strides=[2, 2], pads=[1, 1, 1, 1])[0]
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    old = ferry_run("Conv", [x, w], opset=1, strides=[2, 2], pads=[1, 1, 1, 1])[0]
    np.testing.assert_array_equal(old, ferry_run("Conv", [x, w], strides=[2, 2], pads=[1, 1, 1, 1])[0])


def test_conv_rejects_channel_mismatch():
    with pytest.raises(ValueError, match="channels mismatch"):
        ferry_run("Conv", [randn(1, 3, 5, 5), randn(2, 2, 3, 3)])


@pytest.mark.parametrize("attrs, x_shape, w_shape", [
    ({"group": 2, "strides": [2, 3], "dilations": [2, 1], "output_padding": [1, 2],
      "pads": [1, 0, 0, 2]}, (2, 4, 4, 5), (4, 3, 3, 3)),
    ({"strides": [2], "output_shape": [12]}, (1, 2, 5), (2, 3, 3)),
    ({"strides": [2, 2], "auto_pad": "SAME_LOWER"}, (1, 2, 3, 4), (2, 2, 3, 3)),
    ({"strides": [1, 2, 1]}, (1, 1, 3, 3, 3), (1, 2, 2, 3, 2)),
])
def test_conv_transpose_matches_ort(attrs, x_shape, w_shape):
    b = randn(w_shape[1] * attrs.get("group", 1))
    check_against_ort("ConvTranspose", [randn(*x_shape), randn(*w_shape), b], **attrs)


def test_deform_conv_groups_mask_matches_ort():
    x, w = randn(2, 4, 5, 6), randn(6, 2, 2, 3)
    offset = randn(2, 2 * 2 * 6, 4, 3) * 2
    mask = RNG.random((2, 2 * 6, 4, 3)).astype(np.float32)
    check_against_ort("DeformConv", [x, w, offset, randn(6), mask], opset=19, group=2,
                      offset_group=2, strides=[1, 2], pads=[0, 0, 0, 1])


def test_conv_integer_matches_ort():
    x = RNG.integers(0, 255, (1, 2, 6, 6), dtype=np.uint8)
    w = RNG.integers(0, 255, (3, 2, 3, 3), dtype=np.uint8)
    check_against_ort("ConvInteger", [x, w, np.array(7, np.uint8), np.array(131, np.uint8)], opset=10,
                      pads=[1, 2, 0, 1], strides=[2, 1])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qlinear_conv_per_channel_matches_ort(dtype):
    # weights share x's type: onnxruntime's uint8 x int8 path saturates int16 partial sums
    info = np.iinfo(dtype)
    x = RNG.integers(info.min, info.max, (1, 4, 5, 5), dtype=dtype)
    w = RNG.integers(info.min, info.max, (6, 2, 3, 3), dtype=dtype)
    w_zero = np.full(6, 128 if dtype == np.uint8 else 0, dtype)
    inputs = [x, np.array(0.05, np.float32), np.array(3, dtype), w,
              RNG.random(6).astype(np.float32) * 0.002, w_zero,
              np.array(0.3, np.float32), np.array(-5 if dtype == np.int8 else 120, dtype),
              RNG.integers(-500, 500, 6, dtype=np.int32)]
    check_against_ort("QLinearConv", inputs, opset=10, group=2, pads=[1, 1, 1, 1], atol=1)


def test_qlinear_conv_exact_requantization():
    # one 1x1 tap: acc = (x - 2) * (w - 1) + b, then round-half-even and saturate
    x = np.array([[[[2, 3, 4, 7, 200]]]], np.uint8)
    w = np.array([[[[3]]]], np.uint8)
    inputs = [x, np.array(1.0, np.float32), np.array(2, np.uint8), w, np.array(1.0, np.float32),
              np.array(1, np.uint8), np.array(4.0, np.float32), np.array(10, np.uint8),
              np.array([2], np.int32)]
    (y,) = ferry_run("QLinearConv", inputs, opset=10)
    # acc = 2, 4, 6, 12, 398 -> /4 = 0.5, 1, 1.5, 3, 99.5 -> rint 0, 1, 2, 3, 100 -> +10
    np.testing.assert_array_equal(y, np.array([[[[10, 11, 12, 13, 110]]]], np.uint8))
    inputs[6] = np.array(0.5, np.float32)  # acc / 0.5 + 10 overflows uint8 for the last value
    (y,) = ferry_run("QLinearConv", inputs, opset=10)
    assert y.dtype == np.uint8 and y[0, 0, 0, -1] == 255


@pytest.mark.parametrize("storage_order", [0, 1])
def test_maxpool_indices_match_ort(storage_order):
    x = randn(2, 3, 7, 6)
    check_against_ort("MaxPool", [x], outputs=2, kernel_shape=[3, 2], strides=[2, 2],
                      pads=[1, 0, 1, 1], storage_order=storage_order, ceil_mode=1)


def test_maxpool_integer_with_padding_and_dilation():
    x = RNG.integers(-128, 127, (1, 2, 7, 7), dtype=np.int8)
    check_against_ort("MaxPool", [x], kernel_shape=[2, 2], dilations=[2, 2], pads=[1, 1, 1, 1])


@pytest.mark.parametrize("include_pad", [0, 1])
def test_average_pool_ceil_pads_match_ort(include_pad):
    check_against_ort("AveragePool", [randn(1, 2, 7, 8)], kernel_shape=[3, 3], strides=[2, 3],
                      pads=[1, 1, 1, 0], ceil_mode=1, count_include_pad=include_pad)


def test_average_pool_opset1_excludes_padding():
    x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    (y,) = ferry_run("AveragePool", [x], opset=1, kernel_shape=[2, 2], pads=[1, 1, 0, 0])
    np.testing.assert_allclose(y[0, 0], [[0, 0.5, 1.5], [1.5, 2, 3], [4.5, 5, 6]])


def test_lp_pools_match_ort():
    x = randn(1, 3, 6, 5)
    check_against_ort("LpPool", [x], kernel_shape=[2, 3], p=3, pads=[1, 1, 0, 0], strides=[2, 1])
    check_against_ort("GlobalLpPool", [x], opset=2, p=3)
    check_against_ort("GlobalAveragePool", [x.astype(np.float16)], rtol=1e-3, atol=1e-3)


def test_max_roi_pool_matches_ort():
    x = randn(2, 3, 8, 10)
    rois = np.array([[0, 1, 1, 6, 5], [1, 0, 2, 9, 7], [0, 3.4, 2.6, 4.2, 3.1]], np.float32)
    check_against_ort("MaxRoiPool", [x, rois], opset=1, pooled_shape=[2, 3], spatial_scale=0.9)


def test_maxunpool_inverts_maxpool_with_pads():
    x = randn(1, 2, 5, 5)
    y, idx = ferry_run("MaxPool", [x], outputs=2, kernel_shape=[2, 2], strides=[2, 2],
                       pads=[1, 1, 0, 0])
    (up,) = ferry_run("MaxUnpool", [y, idx], kernel_shape=[2, 2], strides=[2, 2],
                      pads=[1, 1, 0, 0])
    assert up.shape == x.shape
    np.testing.assert_array_equal(up.ravel()[idx.ravel()], y.ravel())
    assert np.count_nonzero(up) == idx.size


def test_batchnorm_opset6_test_mode_and_per_activation():
    x, s, b, m, v = randn(2, 3, 4), randn(3), randn(3), randn(3), RNG.random(3).astype(np.float32)
    (y,) = ferry_run("BatchNormalization", [x, s, b, m, v], opset=6, is_test=1, epsilon=1e-3)
    ref = ((x - m[:, None]) / np.sqrt(v[:, None] + 1e-3)) * s[:, None] + b[:, None]
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
    p = [randn(3, 4), randn(3, 4), randn(3, 4), RNG.random((3, 4)).astype(np.float32)]
    (y,) = ferry_run("BatchNormalization", [x, *p], opset=7, spatial=0)
    np.testing.assert_allclose(y, (x - p[2]) / np.sqrt(p[3] + 1e-5) * p[0] + p[1], rtol=1e-5,
                               atol=1e-6)


def test_batchnorm_opset9_training_outputs():
    x, s, b, m, v = randn(4, 2, 3), randn(2), randn(2), randn(2), RNG.random(2).astype(np.float32)
    y, rm, rv, sm, sv = ferry_run("BatchNormalization", [x, s, b, m, v], opset=9, outputs=5,
                                  momentum=0.8)
    mean, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
    np.testing.assert_allclose(rm, 0.8 * m + 0.2 * mean, rtol=1e-5)
    np.testing.assert_allclose(rv, 0.8 * v + 0.2 * var, rtol=1e-5)
    np.testing.assert_allclose(sm, mean, rtol=1e-5)
    np.testing.assert_allclose(y.mean(axis=(0, 2)), b, atol=1e-5)
    assert {a.dtype for a in (y, rm, rv, sm, sv)} == {np.dtype(np.float32)}


def test_batchnorm_opset9_matches_ort():
    inputs = [randn(2, 3, 4, 5), randn(3), randn(3), randn(3), RNG.random(3).astype(np.float32)]
    check_against_ort("BatchNormalization", inputs, opset=9, epsilon=1e-2)


def test_dropout_old_opsets():
    x = randn(3, 4)
    y, mask = ferry_run("Dropout", [x], opset=6, outputs=2, is_test=1)
    np.testing.assert_array_equal(y, x)
    assert mask.dtype == np.float32 and np.all(mask == 1)
    (y, mask) = ferry_run("Dropout", [x], opset=7, outputs=2, ratio=0.3)
    assert mask.dtype == np.float32 and np.all(mask == 1)
    (y, mask) = ferry_run("Dropout", [x], opset=10, outputs=2, ratio=0.3)
    np.testing.assert_array_equal(y, x)
    assert mask.dtype == np.bool_ and mask.all()
    y, mask = ferry_run("Dropout", [x], opset=6, outputs=2, is_test=0, ratio=0.5)
    np.testing.assert_allclose(y, x * mask * 2, rtol=1e-6)


def test_dropout_training_full_ratio_and_seed():
    x, t = randn(5, 6), np.array(True)
    y, mask = ferry_run("Dropout", [x, np.float32(1.0), t], outputs=2, seed=3)
    assert not mask.any() and not y.any()
    first = ferry_run("Dropout", [x, np.float32(0.4), t], outputs=2, seed=7)
    second = ferry_run("Dropout", [x, np.float32(0.4), t], outputs=2, seed=7)
    np.testing.assert_array_equal(first[1], second[1])
    np.testing.assert_allclose(first[0], x * first[1] / np.float32(0.6), rtol=1e-6)


def test_group_normalization_18_per_group_affine():
    x, scale, bias = randn(2, 6, 3), randn(3), randn(3)
    (y,) = ferry_run("GroupNormalization", [x, scale, bias], opset=18, num_groups=3)
    g = x.reshape(2, 3, -1)
    normed = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5))
    ref = normed * scale[:, None] + bias[:, None]
    np.testing.assert_allclose(y, ref.reshape(x.shape), rtol=1e-5, atol=1e-6)


def test_layer_norm_half_precision_matches_ort():
    x = randn(2, 3, 8, dtype=np.float16)
    check_against_ort("LayerNormalization", [x, randn(8, dtype=np.float16),
                                             randn(8, dtype=np.float16)],
                      opset=17, outputs=3, axis=-1, rtol=2e-3, atol=2e-3)


def test_instance_norm_lrn_mvn_match_ort():
    x = randn(2, 5, 4, 3)
    check_against_ort("InstanceNormalization", [x, randn(5), randn(5)], epsilon=1e-3)
    check_against_ort("LRN", [x], opset=13, size=3, alpha=1e-2, beta=0.6, bias=2.0)
    check_against_ort("MeanVarianceNormalization", [x], opset=13, axes=[1, 3])
    check_against_ort("LpNormalization", [x], axis=1, p=1)


def test_roi_align_adaptive_sampling_matches_ort():
    x = randn(2, 3, 10, 12)
    rois = np.array([[0.5, 1.0, 9.3, 7.7], [2, 2, 2.5, 3], [-2, -1, 13, 11]], np.float32)
    idx = np.array([0, 1, 1], np.int64)
    for mode in ("avg", "max"):
        check_against_ort("RoiAlign", [x, rois, idx], opset=16, mode=mode, output_height=3,
                          output_width=4, sampling_ratio=0, spatial_scale=0.8)


def test_nms_score_threshold_and_default_limit():
    boxes = np.array([[[0, 0, 1, 1], [0, 0.1, 1, 1.1], [0, 5, 1, 6], [0, 10, 1, 11]]],
                     np.float32)
    scores = np.array([[[0.9, 0.8, 0.3, 0.05], [0.1, 0.2, 0.7, 0.6]]], np.float32)
    inputs = [boxes, scores, np.array([3], np.int64), np.array([0.5], np.float32),
              np.array([0.1], np.float32)]
    check_against_ort("NonMaxSuppression", inputs, opset=11)
    (none,) = ferry_run("NonMaxSuppression", [boxes, scores], opset=11)
    assert none.shape == (0, 3) and none.dtype == np.int64


@pytest.mark.parametrize("mode", ["linear", "nearest", "cubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [0, 1])
def test_grid_sample_matches_ort(mode, padding_mode, align_corners):
    x, grid = randn(2, 3, 5, 6), (RNG.random((2, 4, 7, 2)).astype(np.float32) - 0.5) * 3.2
    check_against_ort("GridSample", [x, grid], opset=20, mode=mode, padding_mode=padding_mode,
                      align_corners=align_corners)


def test_affine_grid_3d_matches_ort():
    theta = randn(2, 3, 4)
    for align in (0, 1):
        check_against_ort("AffineGrid", [theta, np.array([2, 1, 3, 2, 4], np.int64)], opset=20,
                          align_corners=align)


def test_affine_grid_single_pixel_axis_is_centred():
    theta = np.array([[[1, 0, 0], [0, 1, 0]]], np.float32)
    for align in (0, 1):
        (grid,) = ferry_run("AffineGrid", [theta, np.array([1, 1, 1, 3], np.int64)], opset=20,
                            align_corners=align)
        np.testing.assert_array_equal(grid[0, 0, :, 1], [0, 0, 0])


def test_window_geometry_rules():
    # ceil_mode: a last window starting inside the end padding is dropped
    w = geometry([2, 2], [3, 3], strides=[3, 3], pads=[1, 1, 1, 1], ceil_mode=1)
    assert w.out == (1, 1)
    w = geometry([5], [2], strides=[2], ceil_mode=1)
    assert w.out == (3,) and w.pads_end == (0,)
    # SAME_LOWER puts the odd padding cell first, SAME_UPPER last
    lower = geometry([6], [4], strides=[1], auto_pad="SAME_LOWER")
    upper = geometry([6], [4], strides=[1], auto_pad="SAME_UPPER")
    assert (lower.pads_begin, lower.pads_end, lower.out) == ((2,), (1,), (6,))
    assert (upper.pads_begin, upper.pads_end) == ((1,), (2,))
    w = geometry([7, 7], [3, 3], dilations=[2, 3], auto_pad="VALID", pads=[9, 9, 9, 9])
    assert w.out == (3, 1) and w.pads == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="auto_pad"):
        geometry([4], [2], auto_pad="SAME")
