"""Official ONNX node cases and edge cases for recurrent, attention and resampling kernels."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from ferry.ir.dtypes import DataType, from_numpy_dtype
from tests.runtime import node_harness
from tests.runtime.node_harness import node_case_test

OPS = {
    "RNN",
    "GRU",
    "LSTM",
    "Attention",
    "RotaryEmbedding",
    "SwiGLU",
    "LinearAttention",
    "CausalConvWithState",
    "Resize",
    "Upsample",
}

SKIPS: dict[str, str] = {}

_BFLOAT16 = DataType.BFLOAT16.numpy


test_node_case = node_case_test(OPS, SKIPS)


# -- hand-written cases --------------------------------------------------------------------------

_RNG = np.random.default_rng(1234)


def _randn(*shape, dtype=np.float32):
    return _RNG.standard_normal(shape).astype(dtype)


def _elem_type(dtype: np.dtype) -> int:
    return int(from_numpy_dtype(dtype))


def _single_node_model(op, inputs, n_outputs, opset, **attributes):
    """A one-node model; omitted (None) inputs become empty names."""
    names = ["" if v is None else f"in{i}" for i, v in enumerate(inputs)]
    outputs = [f"out{i}" for i in range(n_outputs)]
    elem = _elem_type(inputs[0].dtype)
    graph = helper.make_graph(
        [helper.make_node(op, names, outputs, **attributes)],
        "g",
        [
            helper.make_tensor_value_info(n, _elem_type(v.dtype), v.shape)
            for n, v in zip(names, inputs, strict=True)
            if n
        ],
        [helper.make_tensor_value_info(o, elem, None) for o in outputs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model, names


def _ferry(op, inputs, n_outputs, opset, **attributes):
    model, _ = _single_node_model(op, inputs, n_outputs, opset, **attributes)
    present = [v for v in inputs if v is not None]
    return node_harness.run_graph(model.graph, {"": opset}, {}, present)


def _onnxruntime(op, inputs, n_outputs, opset, **attributes):
    ort = pytest.importorskip("onnxruntime")
    model, names = _single_node_model(op, inputs, n_outputs, opset, **attributes)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {n: v for n, v in zip(names, inputs, strict=True) if n})


def _reference(op, inputs, n_outputs, opset, **attributes):
    from onnx.reference import ReferenceEvaluator

    model, names = _single_node_model(op, inputs, n_outputs, opset, **attributes)
    feeds = {n: v for n, v in zip(names, inputs, strict=True) if n}
    return ReferenceEvaluator(model).run(None, feeds)


def _assert_all_close(got, want, atol=1e-5):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=atol)


# Recurrent layers against onnxruntime: variable lengths, both directions, clip, custom activations.

T, BATCH, INPUT, HIDDEN = 4, 3, 5, 2
SEQ_LENS = np.array([4, 1, 3], np.int32)


@pytest.mark.parametrize("opset", [7, 14])
@pytest.mark.parametrize("input_forget", [0, 1])
@pytest.mark.parametrize("custom", [False, True])
def test_lstm_bidirectional_matches_onnxruntime(opset, input_forget, custom):
    inputs = [
        _randn(T, BATCH, INPUT),
        _randn(2, 4 * HIDDEN, INPUT),
        _randn(2, 4 * HIDDEN, HIDDEN),
        _randn(2, 8 * HIDDEN),
        SEQ_LENS,
        _randn(2, BATCH, HIDDEN),
        _randn(2, BATCH, HIDDEN),
        _randn(2, 3 * HIDDEN),
    ]
    attrs = {"hidden_size": HIDDEN, "direction": "bidirectional", "input_forget": input_forget}
    if custom:  # alpha/beta are consumed in order by the functions that take them
        attrs.update(
            activations=["HardSigmoid", "Tanh", "Tanh", "Sigmoid", "LeakyRelu", "ScaledTanh"],
            activation_alpha=[0.3, 0.1, 0.7],
            activation_beta=[0.4, 1.3],
            clip=0.7,
        )
    got = _ferry("LSTM", inputs, 3, opset, **attrs)
    _assert_all_close(got, _onnxruntime("LSTM", inputs, 3, opset, **attrs))


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("linear_before_reset", [0, 1])
def test_gru_matches_onnxruntime(direction, linear_before_reset):
    d = 2 if direction == "bidirectional" else 1
    inputs = [
        _randn(T, BATCH, INPUT),
        _randn(d, 3 * HIDDEN, INPUT),
        _randn(d, 3 * HIDDEN, HIDDEN),
        _randn(d, 6 * HIDDEN),
        SEQ_LENS,
        _randn(d, BATCH, HIDDEN),
    ]
    attrs = {
        "hidden_size": HIDDEN,
        "direction": direction,
        "clip": 2.0,
        "linear_before_reset": linear_before_reset,
        "activations": ["Sigmoid", "Relu"] * d,
    }
    got = _ferry("GRU", inputs, 2, 7, **attrs)
    _assert_all_close(got, _onnxruntime("GRU", inputs, 2, 7, **attrs))


def test_rnn_without_bias_and_initial_state_matches_onnxruntime():
    inputs = [_randn(T, BATCH, INPUT), _randn(2, HIDDEN, INPUT), _randn(2, HIDDEN, HIDDEN)]
    attrs = {"hidden_size": HIDDEN, "direction": "bidirectional", "activations": ["Relu", "Tanh"]}
    _assert_all_close(
        _ferry("RNN", inputs, 2, 7, **attrs), _onnxruntime("RNN", inputs, 2, 7, **attrs)
    )


def test_rnn_padded_steps_are_zero_and_final_state_is_last_valid_step():
    x, w, r = _randn(T, BATCH, INPUT), _randn(1, HIDDEN, INPUT), _randn(1, HIDDEN, HIDDEN)
    y, y_h = _ferry("RNN", [x, w, r, None, SEQ_LENS], 2, 14, hidden_size=HIDDEN)
    assert np.all(y[1:, :, 1] == 0) and np.all(y[3:, :, 2] == 0)
    np.testing.assert_array_equal(y_h[0, 1], y[0, 0, 1])
    np.testing.assert_array_equal(y_h[0, 2], y[2, 0, 2])


@pytest.mark.parametrize("op, gates, states", [("RNN", 1, 1), ("GRU", 3, 1), ("LSTM", 4, 2)])
def test_batchwise_layout_is_transposed_sequence_layout(op, gates, states):
    x = _randn(T, BATCH, INPUT)
    w, r = _randn(2, gates * HIDDEN, INPUT), _randn(2, gates * HIDDEN, HIDDEN)
    b, initial = _randn(2, 2 * gates * HIDDEN), [_randn(2, BATCH, HIDDEN) for _ in range(states)]
    common = {"hidden_size": HIDDEN, "direction": "bidirectional"}
    seq = _ferry(op, [x, w, r, b, SEQ_LENS, *initial], 1 + states, 14, layout=0, **common)
    batch_major = [x.swapaxes(0, 1), w, r, b, SEQ_LENS, *[s.swapaxes(0, 1) for s in initial]]
    got = _ferry(op, batch_major, 1 + states, 14, layout=1, **common)
    np.testing.assert_allclose(got[0], seq[0].transpose(2, 0, 1, 3), rtol=1e-6)
    for g, s in zip(got[1:], seq[1:], strict=True):
        np.testing.assert_allclose(g, s.swapaxes(0, 1), rtol=1e-6)


@pytest.mark.parametrize(
    "op, gates, old_opset", [("RNN", 1, 1), ("GRU", 3, 1), ("GRU", 3, 3), ("LSTM", 4, 1)]
)
def test_recurrent_opset_1_matches_opset_7(op, gates, old_opset):
    inputs = [
        _randn(T, BATCH, INPUT),
        _randn(1, gates * HIDDEN, INPUT),
        _randn(1, gates * HIDDEN, HIDDEN),
    ]
    old = _ferry(op, inputs, 2, old_opset, hidden_size=HIDDEN, output_sequence=1)
    _assert_all_close(old, _ferry(op, inputs, 2, 7, hidden_size=HIDDEN))


def test_recurrent_rejects_unknown_activation():
    inputs = [_randn(T, BATCH, INPUT), _randn(1, HIDDEN, INPUT), _randn(1, HIDDEN, HIDDEN)]
    with pytest.raises(ValueError, match="activation"):
        _ferry("RNN", inputs, 2, 14, hidden_size=HIDDEN, activations=["Gelu"])


# Resize and Upsample: legacy opsets against onnxruntime, newer ambiguities against onnx's reference.

IMAGE = _randn(1, 2, 5, 7)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize(
    "scales", [[1, 1, 2, 3], [1, 1, 0.6, 0.5], [1, 1, 1.5, 0.7], [1, 1, 3.3, 2.2]]
)
def test_resize_10_matches_onnxruntime(mode, scales):
    inputs = [IMAGE, np.array(scales, np.float32)]
    _assert_all_close(
        _ferry("Resize", inputs, 1, 10, mode=mode), _onnxruntime("Resize", inputs, 1, 10, mode=mode)
    )


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample_7_and_9_match_onnxruntime(mode):
    scales = [1.0, 1.0, 1.5, 2.7]
    want = _onnxruntime("Upsample", [IMAGE], 1, 7, mode=mode, scales=scales)
    _assert_all_close(_ferry("Upsample", [IMAGE], 1, 7, mode=mode, scales=scales), want)
    _assert_all_close(
        _ferry("Upsample", [IMAGE, np.array(scales, np.float32)], 1, 9, mode=mode), want
    )


@pytest.mark.parametrize("mode, mode_7", [("nearest", "nearest"), ("bilinear", "linear")])
def test_upsample_1_scales_height_and_width(mode, mode_7):
    got = _ferry("Upsample", [IMAGE], 1, 1, mode=mode, height_scale=2.0, width_scale=1.5)
    want = _ferry("Upsample", [IMAGE], 1, 7, mode=mode_7, scales=[1.0, 1.0, 2.0, 1.5])
    _assert_all_close(got, want)


def test_upsample_rejects_downscaling():
    with pytest.raises(ValueError, match=">= 1"):
        _ferry("Upsample", [IMAGE, np.array([1, 1, 0.5, 1], np.float32)], 1, 9, mode="nearest")


@pytest.mark.parametrize(
    "nearest_mode", ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
)
@pytest.mark.parametrize(
    "ctm", ["half_pixel", "pytorch_half_pixel", "asymmetric", "tf_half_pixel_for_nn"]
)
def test_resize_11_nearest_matches_onnxruntime(nearest_mode, ctm):
    inputs = [IMAGE, np.array([], np.float32), np.array([1, 1, 2.0, 3.0], np.float32)]
    attrs = {"mode": "nearest", "coordinate_transformation_mode": ctm, "nearest_mode": nearest_mode}
    _assert_all_close(
        _ferry("Resize", inputs, 1, 11, **attrs), _onnxruntime("Resize", inputs, 1, 11, **attrs)
    )


@pytest.mark.parametrize("exclude_outside", [0, 1])
def test_resize_13_cubic_sizes_matches_onnxruntime(exclude_outside):
    inputs = [IMAGE, None, None, np.array([1, 2, 9, 4], np.int64)]
    attrs = {"mode": "cubic", "exclude_outside": exclude_outside, "cubic_coeff_a": -0.5}
    _assert_all_close(
        _ferry("Resize", inputs, 1, 13, **attrs), _onnxruntime("Resize", inputs, 1, 13, **attrs)
    )


@pytest.mark.parametrize(
    "inputs, attrs",
    [
        (  # the roi does not change the output size computed from scales
            [
                IMAGE,
                np.array([0, 0, 0.2, 0.1, 1, 1, 0.9, 1.2], np.float32),
                np.array([1, 1, 1.5, 0.8], np.float32),
            ],
            {
                "mode": "linear",
                "coordinate_transformation_mode": "tf_crop_and_resize",
                "extrapolation_value": -3.0,
            },
        ),
        (  # keep_aspect_ratio_policy: the common scale also maps coordinates
            [IMAGE, None, None, np.array([3, 3], np.int64)],
            {"mode": "linear", "axes": [2, 3], "keep_aspect_ratio_policy": "not_smaller"},
        ),
        (
            [IMAGE, None, None, np.array([3, 3], np.int64)],
            {"mode": "cubic", "axes": [2, 3], "keep_aspect_ratio_policy": "not_larger"},
        ),
        (  # integer data rounds to nearest
            [
                _RNG.integers(0, 255, (1, 1, 4, 5)).astype(np.uint8),
                None,
                np.array([1, 1, 1.5, 2.5], np.float32),
            ],
            {"mode": "linear"},
        ),
        (
            [IMAGE, None, np.array([0.45, 0.3], np.float32)],
            {"mode": "cubic", "antialias": 1, "axes": [2, 3], "exclude_outside": 1},
        ),
    ],
)
def test_resize_18_matches_onnx_reference(inputs, attrs):
    _assert_all_close(
        _ferry("Resize", inputs, 1, 18, **attrs), _reference("Resize", inputs, 1, 18, **attrs)
    )


def test_resize_negative_axes():
    sizes = np.array([3, 4], np.int64)
    want = _ferry("Resize", [IMAGE, None, None, sizes], 1, 18, mode="linear", axes=[2, 3])
    _assert_all_close(
        _ferry("Resize", [IMAGE, None, None, sizes], 1, 18, mode="linear", axes=[-2, -1]), want
    )


def test_resize_nearest_keeps_exotic_dtype_bits():
    x = np.arange(6, dtype=np.uint16).reshape(1, 1, 2, 3).view(_BFLOAT16)
    (y,) = _ferry("Resize", [x, None, np.array([1, 1, 2, 1], np.float32)], 1, 13, mode="nearest")
    assert y.dtype == _BFLOAT16
    np.testing.assert_array_equal(
        y.view(np.uint16)[0, 0], [[0, 1, 2], [0, 1, 2], [3, 4, 5], [3, 4, 5]]
    )


def test_resize_needs_scales_or_sizes():
    with pytest.raises(ValueError, match="exactly one"):
        _ferry("Resize", [IMAGE, None, np.array([], np.float32)], 1, 13, mode="nearest")


# Attention-family edge cases.


def test_attention_3d_with_past_equals_4d():
    q, k, v = _randn(2, 3, 12), _randn(2, 2, 6), _randn(2, 2, 10)
    past_k, past_v = _randn(2, 2, 4, 3), _randn(2, 2, 4, 5)
    heads = {"q_num_heads": 4, "kv_num_heads": 2}
    y3, pk3, pv3 = _ferry("Attention", [q, k, v, None, past_k, past_v], 3, 23, is_causal=1, **heads)

    def split(x, h):
        return x.reshape(x.shape[0], x.shape[1], h, -1).transpose(0, 2, 1, 3)

    y4, pk4, pv4 = _ferry(
        "Attention",
        [split(q, 4), split(k, 2), split(v, 2), None, past_k, past_v],
        3,
        23,
        is_causal=1,
    )
    np.testing.assert_allclose(y3, y4.transpose(0, 2, 1, 3).reshape(2, 3, -1), rtol=1e-6)
    np.testing.assert_array_equal(pk3, pk4)
    assert pk3.shape == (2, 2, 6, 3) and pv3.shape == (2, 2, 6, 5)


def test_attention_fully_masked_rows_are_zero():
    q, k, v = _randn(1, 1, 2, 4), _randn(1, 1, 3, 4), _randn(1, 1, 3, 4)
    mask = np.array([[True, False, True], [False, False, False]])
    y, _, _, probs = _ferry("Attention", [q, k, v, mask], 4, 24, qk_matmul_output_mode=3)
    assert np.all(y[0, 0, 1] == 0) and np.all(probs[0, 0, 1] == 0)
    np.testing.assert_allclose(probs[0, 0, 0].sum(), 1, rtol=1e-6)
    assert probs[0, 0, 0, 1] == 0


def test_attention_3d_needs_head_counts():
    with pytest.raises(ValueError, match="num_heads"):
        _ferry("Attention", [_randn(1, 2, 8), _randn(1, 2, 8), _randn(1, 2, 8)], 1, 23)


def test_causal_conv_decode_continues_prefill():
    x, w, b = _randn(2, 3, 7), _randn(3, 1, 4), _randn(3)
    full, state = _ferry("CausalConvWithState", [x, w, b], 2, 27, activation="silu")
    head, head_state = _ferry("CausalConvWithState", [x[..., :5], w, b], 2, 27, activation="silu")
    tail, tail_state = _ferry(
        "CausalConvWithState", [x[..., 5:], w, b, head_state], 2, 27, activation="silu"
    )
    np.testing.assert_allclose(np.concatenate([head, tail], axis=-1), full, rtol=1e-5)
    np.testing.assert_allclose(tail_state, state, rtol=1e-6)


@pytest.mark.parametrize("rule", ["linear", "gated", "delta", "gated_delta"])
def test_linear_attention_prefill_equals_token_by_token(rule):
    b, t, hq, hkv, dk, dv = 2, 5, 4, 2, 3, 2
    inputs = [
        _randn(b, t, hq * dk),
        _randn(b, t, hkv * dk) / 3,
        _randn(b, t, hkv * dv),
        _randn(b, hkv, dk, dv),
        -np.abs(_randn(b, t, hkv)),
        1 / (1 + np.exp(-_randn(b, t, hkv))),
    ]
    attrs = {"q_num_heads": hq, "kv_num_heads": hkv, "update_rule": rule}
    full, final = _ferry("LinearAttention", inputs, 2, 27, **attrs)
    state, outputs = inputs[3], []
    for step in range(t):
        token = [x[:, step : step + 1] for x in inputs[:3]]
        gates = [x[:, step : step + 1] for x in inputs[4:]]
        out, state = _ferry("LinearAttention", [*token, state, *gates], 2, 27, **attrs)
        outputs.append(out)
    np.testing.assert_allclose(np.concatenate(outputs, axis=1), full, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state, final, rtol=1e-5, atol=1e-6)


def test_swiglu_rejects_broadcasting():
    with pytest.raises(ValueError, match="identical shapes"):
        _ferry("SwiGLU", [_randn(2, 4), _randn(1, 4)], 1, 28)
