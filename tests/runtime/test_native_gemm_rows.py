"""The compiled row GEMM (``native_conv.gemm_rows``: rows @ constant weights, row-major
output, per-column bias, GELU epilogue) and the MatMul / FusedMatMul / Gemm preparers that
use it, against float64 numpy references and sessions with the compiled kernels off."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ferry.runtime.kernels import native_conv

RNG = np.random.default_rng(23)
needs_native = pytest.mark.skipif(not native_conv.built(), reason="native kernels not built here")


def _gelu(y: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erf)
    return 0.5 * y * (1.0 + erf(y / math.sqrt(2.0)))


EPILOGUES = {
    None: lambda y: y,
    ("Relu", 0.0, 0.0): lambda y: np.maximum(y, 0),
    ("Clip", -0.3, 0.4): lambda y: np.clip(y, -0.3, 0.4),
    ("Gelu", 0.0, 0.0): _gelu,
}


@needs_native
@pytest.mark.parametrize("r, k, n", [(1, 1, 1), (4, 7, 24), (5, 300, 25), (64, 64, 97),
                                     (65, 513, 49), (130, 9, 200), (3, 1000, 8)])
@pytest.mark.parametrize("activation", list(EPILOGUES), ids=str)
def test_gemm_rows_matches_float64(r, k, n, activation):
    a = RNG.standard_normal((r, k)).astype(np.float32)
    w = RNG.standard_normal((k, n)).astype(np.float32)
    bias = RNG.standard_normal(n).astype(np.float32)
    residual = RNG.standard_normal((r, n)).astype(np.float32)
    before = a.astype(np.float64) @ w + bias + residual
    want = EPILOGUES[activation](before)
    panels = native_conv.pack_panels(w)
    for threads in (1, 2, 3):
        token = native_conv.threads.set(threads)
        try:
            got = native_conv.gemm_rows(a, panels, n, bias=bias, residual=residual,
                                        activation=activation)
        finally:
            native_conv.threads.reset(token)
        assert got.shape == (r, n) and got.dtype == np.float32
        err = np.abs(got - want).max() / np.abs(before).max()
        assert err < 2e-6, (threads, err)


@needs_native
def test_gelu_epilogue_is_accurate_over_its_whole_range_and_keeps_nan():
    x = np.concatenate([np.linspace(-12, 12, 4001), [0.0, -0.0, 1e-30, 40.0, -40.0]])
    x = x.astype(np.float32)
    a = np.concatenate([x, [np.nan, np.inf, -np.inf]]).astype(np.float32)[:, None]
    got = native_conv.gemm_rows(a, native_conv.pack_panels(np.ones((1, 1), np.float32)), 1,
                                activation=("Gelu", 0.0, 0.0))[:, 0]
    want = _gelu(x.astype(np.float64))
    assert np.abs(got[:x.size] - want).max() <= 4e-6 * np.maximum(np.abs(want), 1).max()
    # -inf * (1 + erf(-inf)) / 2 is -inf * 0: NaN, as the formula and the numpy kernel give
    assert np.isnan(got[-3]) and got[-2] == np.inf and np.isnan(got[-1])


@needs_native
def test_gemm_rows_refuses_bad_buffers():
    from ferry.runtime.kernels import _native

    panels = native_conv.pack_panels(np.ones((3, 5), np.float32))
    a, y = np.ones((4, 3), np.float32), np.empty((4, 5), np.float32)
    tail = (0, 0.0, 0.0, 1)
    with pytest.raises(ValueError, match="a has"):
        _native.gemm_rows(a, 4, 4, panels, 5, y, None, None, *tail)
    with pytest.raises(ValueError, match="panels has"):
        _native.gemm_rows(a, 4, 3, panels[:, :2], 5, y, None, None, *tail)
    with pytest.raises(ValueError, match="bias has"):
        _native.gemm_rows(a, 4, 3, panels, 5, y, np.ones(4, np.float32), None, *tail)
    with pytest.raises(TypeError, match="float32"):
        _native.gemm_rows(a.astype(np.float64), 4, 3, panels, 5, y, None, None, *tail)
    with pytest.raises(ValueError, match="activation"):
        _native.gemm_rows(a, 4, 3, panels, 5, y, None, None, 7, 0.0, 0.0, 1)
    x, u = np.ones((2, 5, 5), np.float32), native_conv.pack_f43(np.ones((4, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="GELU"):  # Winograd applies only Relu/LeakyRelu/Clip
        _native.winograd_f43(x, 2, 5, 5, u, 4, 4, None, None, np.empty((4, 5, 5), np.float32),
                             5, 5, 1, 1, 4, 0.0, 0.0, 1)


def _model(nodes, inputs, output, rank, initializers):
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [None] * rank)],
        [numpy_helper.from_array(v, k) for k, v in initializers.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _run_counting(model, feed, monkeypatch):
    """Outputs with the compiled kernels on (and which GEMM entry points ran) and off."""
    import ferry
    from ferry.runtime import SessionOptions

    calls = []
    for name in ("gemm_rows", "gemm_into", "matmul"):
        real = getattr(native_conv, name)
        monkeypatch.setattr(native_conv, name,
                            lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    outputs = {}
    for native in (True, False):
        options = SessionOptions()
        options.use_native_kernels = native
        outputs[native] = ferry.InferenceSession(model, options).run(None, feed)[0]
    return outputs, calls


@needs_native
@pytest.mark.parametrize("shape, entry", [((2, 9, 16), "gemm_rows"), ((16,), "gemm_into"),
                                          ((1, 3, 16), "gemm_into")])
def test_matmul_with_constant_weights_runs_compiled(shape, entry, monkeypatch):
    from onnx import helper

    w = RNG.standard_normal((16, 30)).astype(np.float32)
    model = _model([helper.make_node("MatMul", ["a", "w"], ["y"])], [("a", list(shape))], "y", len(shape), {"w": w})
    a = RNG.standard_normal(shape).astype(np.float32)
    outputs, calls = _run_counting(model, {"a": a}, monkeypatch)
    assert calls == [entry]
    np.testing.assert_allclose(outputs[True], a.astype(np.float64) @ w, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outputs[True], outputs[False], rtol=1e-5, atol=1e-5)


@needs_native
def test_fused_matmul_bias_and_erf_gelu_run_as_one_compiled_call(monkeypatch):
    from onnx import helper

    w = RNG.standard_normal((24, 40)).astype(np.float32)
    b = RNG.standard_normal(40).astype(np.float32)
    consts = {"w": w, "b": b, "r2": np.array(math.sqrt(2), np.float32),
              "one": np.array(1, np.float32), "half": np.array(0.5, np.float32)}
    nodes = [helper.make_node("MatMul", ["a", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["x"]),
             helper.make_node("Div", ["x", "r2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["f"]), helper.make_node("Mul", ["x", "f"], ["g"]),
             helper.make_node("Mul", ["g", "half"], ["y"])]
    model = _model(nodes, [("a", [1, 7, 24])], "y", 3, consts)
    a = RNG.standard_normal((1, 7, 24)).astype(np.float32)
    outputs, calls = _run_counting(model, {"a": a}, monkeypatch)
    assert calls == ["gemm_rows"]
    np.testing.assert_allclose(outputs[True], _gelu(a.astype(np.float64) @ w + b), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outputs[True], outputs[False], rtol=1e-5, atol=1e-5)


@needs_native
def test_fused_matmul_residual_is_added_by_the_compiled_gemm(monkeypatch):
    from onnx import helper

    w = RNG.standard_normal((24, 40)).astype(np.float32)
    b = RNG.standard_normal(40).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["a", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["x"]),
             helper.make_node("Add", ["x", "r"], ["y"])]
    model = _model(nodes, [("a", [2, 7, 24]), ("r", [2, 7, 40])], "y", 3, {"w": w, "b": b})
    a = RNG.standard_normal((2, 7, 24)).astype(np.float32)
    r = RNG.standard_normal((2, 7, 40)).astype(np.float32)
    outputs, calls = _run_counting(model, {"a": a, "r": r}, monkeypatch)
    assert calls == ["gemm_rows"]
    np.testing.assert_allclose(outputs[True], a.astype(np.float64) @ w + b + r, rtol=1e-5, atol=1e-5)


@needs_native
@pytest.mark.parametrize("trans_b, bias_shape", [(1, (5,)), (0, (1, 5)), (1, None), (0, (1,))])
@pytest.mark.parametrize("rows, entry", [(1, "gemm_into"), (3, "gemm_into"), (4, "gemm_rows"),
                                         (65, "gemm_rows")])
def test_gemm_with_constant_weights_runs_compiled(trans_b, bias_shape, rows, entry, monkeypatch):
    from onnx import helper

    b = RNG.standard_normal((5, 7) if trans_b else (7, 5)).astype(np.float32)
    consts = {"b": b}
    if bias_shape is not None:
        consts["c"] = RNG.standard_normal(bias_shape).astype(np.float32)
    node = helper.make_node("Gemm", ["a", *consts], ["y"], transB=trans_b, beta=0.5)
    model = _model([node], [("a", ["n", 7])], "y", 2, consts)
    a = RNG.standard_normal((rows, 7)).astype(np.float32)
    outputs, calls = _run_counting(model, {"a": a}, monkeypatch)
    want = a.astype(np.float64) @ (b.T if trans_b else b) + 0.5 * consts.get("c", 0)
    assert calls == [entry]
    np.testing.assert_allclose(outputs[True], want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outputs[True], outputs[False], rtol=1e-5, atol=1e-5)


@needs_native
def test_products_the_compiled_gemm_does_not_cover_keep_the_numpy_kernel(monkeypatch):
    from onnx import helper

    w = RNG.standard_normal((6, 4)).astype(np.float32)
    full_bias = RNG.standard_normal((3, 4)).astype(np.float32)  # Gemm C of several rows
    model = _model([helper.make_node("Gemm", ["a", "w", "c"], ["y"])], [("a", [3, 6])], "y", 2,
                   {"w": w, "c": full_bias})
    a = RNG.standard_normal((3, 6)).astype(np.float32)
    outputs, calls = _run_counting(model, {"a": a}, monkeypatch)
    assert calls == []
    np.testing.assert_allclose(outputs[True], a.astype(np.float64) @ w + full_bias, rtol=1e-5, atol=1e-5)


@needs_native
@pytest.mark.parametrize("a_shape, b_shape", [
    ((1, 12, 128, 64), (1, 12, 64, 128)),  # attention scores, one matrix per head
    ((3, 40, 30), (3, 30, 50)), ((5, 33, 70), (70, 26)), ((2, 3, 9, 300), (1, 1, 300, 17)),
    ((1, 40, 30), (4, 30, 50)), ((4, 130, 6), (4, 6, 97)),
])
def test_matmul_of_computed_operands_matches_numpy(a_shape, b_shape):
    a = RNG.standard_normal(a_shape).astype(np.float32)
    b = RNG.standard_normal(b_shape).astype(np.float32)
    want = np.matmul(a.astype(np.float64), b.astype(np.float64))
    for threads in (1, 2, 3):
        token = native_conv.threads.set(threads)
        try:
            got = native_conv.matmul(a, b)
        finally:
            native_conv.threads.reset(token)
        assert got is not None and got.shape == want.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    transposed = native_conv.matmul(a, np.swapaxes(np.swapaxes(b, -1, -2).copy(), -1, -2))
    np.testing.assert_allclose(transposed, want, rtol=1e-5, atol=1e-4)  # strided operands


@needs_native
@pytest.mark.parametrize("a, b", [
    (np.ones((2, 3, 4), np.float32), np.ones((3, 4, 5), np.float32)),  # batches 2 vs 3
    (np.ones((8, 8), np.float64), np.ones((8, 8), np.float64)),
    (np.ones((4,), np.float32), np.ones((4, 4), np.float32)),
    (np.ones((4, 4), np.float32), np.ones((4, 4), np.float32)),  # too small to pay
])
def test_matmul_leaves_other_cases_to_numpy(a, b):
    assert native_conv.matmul(a, b) is None


@needs_native
def test_attention_runs_its_products_and_softmax_compiled_and_agrees(monkeypatch):
    """Opset-23 Attention (ferry's exporter emits it): the batched products go to the
    compiled GEMM, the softmax to the compiled row kernel; a fully masked row gives zeros."""
    from onnx import TensorProto, helper

    from ferry.runtime.kernels import native_rows

    node = helper.make_node("Attention", ["q", "k", "v", "mask"], ["y"], q_num_heads=4, kv_num_heads=4)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 40, 64]) for n in "qkv"]
        + [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [40, 40])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 40, 64])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)]).SerializeToString()
    feeds = {n: RNG.standard_normal((1, 40, 64)).astype(np.float32) for n in "qkv"}
    mask = np.where(RNG.random((40, 40)) < 0.3, -np.inf, 0).astype(np.float32)
    mask[5] = -np.inf
    feeds["mask"] = mask
    softmaxes = []
    real = native_rows.softmax_last_axis
    monkeypatch.setattr(native_rows, "softmax_last_axis", lambda *a, **k: softmaxes.append(1) or real(*a, **k))
    outputs, calls = _run_counting(model, feeds, monkeypatch)
    assert calls == ["matmul", "matmul"] and softmaxes
    np.testing.assert_allclose(outputs[True], outputs[False], rtol=1e-5, atol=1e-5)
    assert (outputs[True][0, 5] == 0).all()
