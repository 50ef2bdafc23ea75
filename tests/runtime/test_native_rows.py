"""ferry's compiled row kernels (native/rows.c: LayerNormalization, masked Softmax, exp)
against float64 numpy references: awkward row lengths (tails of the 8-float vectors), large
offsets, NaN/inf rows, masks with -inf and every way a mask's rows repeat, several thread
counts, bad buffers refused; then the ONNX kernels and sessions with the kernels on and off.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from ferry.runtime.kernels import native_conv, native_rows

RNG = np.random.default_rng(5)
pytestmark = pytest.mark.skipif(not native_conv.built(), reason="native kernels not built here")
LENGTHS = [1, 7, 8, 9, 768, 1000]
ROWS = [1, 3, 300]


@contextlib.contextmanager
def native(on: bool = True, threads: int = 0):
    """Native kernels on or off (and their thread count) inside the block."""
    enabled, count = native_conv.enabled.set(on), native_conv.threads.set(threads)
    try:
        yield
    finally:
        native_conv.enabled.reset(enabled)
        native_conv.threads.reset(count)


def _ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    return np.abs(got - want) / np.spacing(want.astype(np.float32)).astype(np.float64)


def test_exp_is_within_one_ulp_and_exact_at_the_edges():
    from ferry.runtime.kernels import _native

    x = np.concatenate([np.linspace(-87.33, 88.72, 1_000_003, dtype=np.float32),
                        RNG.uniform(-1, 1, 100_000).astype(np.float32)])
    y = np.empty_like(x)
    _native.exp(x, y, x.size)
    assert _ulps(y, np.exp(x.astype(np.float64))).max() <= 1.0
    edges = np.array([0, -0.0, -np.inf, np.inf, np.nan, -1e30, 1e30, -88, -87.4, 88.73, 88.72],
                     np.float32)
    y = np.full_like(edges, 7)
    _native.exp(edges, y, edges.size - 1)  # the count is honoured: the last value stays
    np.testing.assert_array_equal(y[:-1], [1, 1, 0, np.inf, np.nan, 0, np.inf, 0, 0, np.inf])
    assert y[-1] == 7


def _layer_norm_reference(x, scale, bias, epsilon):
    x = x.astype(np.float64)
    mean = x.mean(axis=1, keepdims=True)
    inv_std = 1 / np.sqrt(((x - mean) ** 2).mean(axis=1, keepdims=True) + epsilon)
    return (x - mean) * inv_std * scale + (0 if bias is None else bias), mean[:, 0], inv_std[:, 0]


@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_layer_norm_matches_float64(rows, length, offset):
    x = (offset + RNG.standard_normal((rows, length))).astype(np.float32)
    scale = RNG.standard_normal(length).astype(np.float32)
    bias = None if length == 9 else RNG.standard_normal(length).astype(np.float32)
    with native():
        y, mean, inv_std = native_rows.layer_norm_rows(x, scale, bias, 1e-5)
    want, want_mean, want_inv = _layer_norm_reference(x, scale, bias, 1e-5)
    assert y.dtype == mean.dtype == inv_std.dtype == np.float32
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=2e-6)  # numpy's float32 code: 3e-3 at 1e4
    np.testing.assert_allclose(mean, want_mean, rtol=6e-8)  # the float32 rounding of the mean
    np.testing.assert_allclose(inv_std, want_inv, rtol=2e-7)


def test_layer_norm_propagates_nan_and_inf_like_numpy():
    x = RNG.standard_normal((5, 13)).astype(np.float32)
    x[1, 3], x[2, 12], x[3, 0], x[3, 5] = np.nan, np.inf, np.inf, -np.inf
    scale, bias = np.ones(13, np.float32), np.zeros(13, np.float32)
    with native():
        y, mean, inv_std = native_rows.layer_norm_rows(x, scale, bias, 1e-5)
    with np.errstate(all="ignore"):
        want, want_mean, want_inv = _layer_norm_reference(x, scale, bias, 1e-5)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    assert np.isnan(y[1:4]).all() and not np.isnan(y[[0, 4]]).any()
    np.testing.assert_array_equal(mean[1:4], want_mean[1:4].astype(np.float32))  # nan, inf, nan
    np.testing.assert_allclose(y[[0, 4]], want[[0, 4]], rtol=1e-5, atol=1e-6)


def _softmax_reference(x, mask, nan_to_zero=False):
    """float64 softmax of the float32 shifted scores (x + mask - max rounded as numpy rounds
    them in float32): only the kernel's exp, sum and scaling are measured against it."""
    with np.errstate(all="ignore"):
        s = x if mask is None else np.add(x, mask, dtype=np.float32)
        shifted = (s - s.max(axis=-1, keepdims=True)).astype(np.float64)
        e = np.exp(shifted)
        y = e / e.sum(axis=-1, keepdims=True)
    if nan_to_zero:
        y[np.isnan(y)] = 0
    return y


def _softmax_close(y, want):
    assert y.dtype == np.float32 and y.shape == want.shape
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    np.testing.assert_allclose(y, want, rtol=6e-7, atol=1e-37)  # a few float32 ulps


@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("length", LENGTHS)
def test_softmax_matches_float64_at_large_offsets(rows, length):
    x = RNG.uniform(80, 100, (rows, length)).astype(np.float32)
    with native():
        y = native_rows.softmax_last_axis(x)
    _softmax_close(y, _softmax_reference(x, None))
    exact = np.exp(x - x.max(axis=1, keepdims=True).astype(np.float64))
    np.testing.assert_allclose(y, exact / exact.sum(axis=1, keepdims=True), rtol=3e-6)


@pytest.mark.parametrize("x_shape, mask_shape", [
    ((300, 9), (9,)),                  # one mask row for all
    ((300, 9), (300, 9)),              # a mask row per row
    ((3, 4, 25, 128), (1, 1, 25, 128)),  # attention: (S, L) shared by batches and heads
    ((1, 12, 16, 16), (1, 1, 1, 16)),  # a padding mask
    ((2, 3, 5, 7), (2, 1, 1, 7)),      # per-batch mask: broadcast to the whole shape
    ((2, 3, 5, 7), (1, 1, 5, 1)),      # constant along the last axis
    ((1, 5, 7), (3, 5, 7)),            # x broadcast against the mask
])
@pytest.mark.parametrize("nan_to_zero", [False, True])
def test_masked_softmax_reads_the_right_mask_rows(x_shape, mask_shape, nan_to_zero):
    x = RNG.uniform(-30, 30, x_shape).astype(np.float32)
    mask = np.where(RNG.random(mask_shape) < 0.3, -np.inf, RNG.uniform(-5, 0, mask_shape))
    mask = mask.astype(np.float32)
    mask.flat[-1] = -np.inf
    x.reshape(-1, x_shape[-1])[0] = -np.inf  # at least one row masked entirely
    with native():
        y = native_rows.softmax_last_axis(x, mask, nan_to_zero=nan_to_zero)
    want = _softmax_reference(x, mask, nan_to_zero)
    assert np.isnan(want).any() != nan_to_zero and ((want == 0).any() or mask_shape[-1] == 1)
    _softmax_close(y, want)


def test_softmax_rows_with_nan_or_inf():
    x = RNG.standard_normal((6, 11)).astype(np.float32)
    x[1, 4] = np.nan
    x[2, :] = -np.inf   # entirely -inf: NaN
    x[3, 7] = np.inf    # inf - inf: NaN
    x[4, ::2] = -np.inf  # -inf entries: 0
    x[5, :6] = [0, -80, -87.3, -87.4, -100, 1e-3]  # exp near and past the float32 underflow
    mask = np.zeros(11, np.float32)
    for nan_to_zero in (False, True):
        with native():
            y = native_rows.softmax_last_axis(x, mask, nan_to_zero=nan_to_zero)
        want = _softmax_reference(x, mask, nan_to_zero)
        _softmax_close(y, want)
        assert np.isnan(y[1:4]).all() != nan_to_zero and (y[4, ::2] == 0).all()


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_thread_counts_give_the_same_rows(threads):
    x = (1e3 + RNG.standard_normal((300, 1000))).astype(np.float32)
    scale, bias = RNG.standard_normal((2, 1000)).astype(np.float32)
    mask = np.where(RNG.random((20, 1000)) < 0.5, -np.inf, 0).astype(np.float32)
    with native(threads=threads):
        y, mean, inv_std = native_rows.layer_norm_rows(x, scale, bias, 1e-5)
        s = native_rows.softmax_last_axis(x.reshape(15, 20, 1000), mask, nan_to_zero=True)
    want, want_mean, _ = _layer_norm_reference(x, scale, bias, 1e-5)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(mean, want_mean, rtol=6e-8)
    _softmax_close(s, _softmax_reference(x.reshape(15, 20, 1000), mask, True))
    with native(threads=1):
        np.testing.assert_array_equal(native_rows.layer_norm_rows(x, scale, bias, 1e-5)[0], y)


def test_bad_buffers_are_refused_not_misread():
    from ferry.runtime.kernels import _native

    x, scale = np.ones((4, 8), np.float32), np.ones(8, np.float32)
    y, stats = np.empty((4, 8), np.float32), np.empty(4, np.float32)
    with pytest.raises(ValueError, match="y has"):
        _native.layer_norm(x, 4, 8, scale, None, 1e-5, y[:3], stats, stats, 1)
    with pytest.raises(ValueError, match="scale has"):
        _native.layer_norm(x, 4, 8, scale[:7], None, 1e-5, y, stats, stats, 1)
    with pytest.raises(ValueError, match="inv_std has"):
        _native.layer_norm(x, 4, 8, scale, None, 1e-5, y, stats, stats[:3], 1)
    with pytest.raises(TypeError, match="float32"):
        _native.layer_norm(x.astype(np.float64), 4, 8, scale, None, 1e-5, y, stats, stats, 1)
    with pytest.raises(TypeError, match="C-contiguous"):
        _native.softmax(np.ones((8, 4), np.float32).T, 4, 8, None, 1, False, y, 1)
    read_only = np.empty((4, 8), np.float32)
    read_only.flags.writeable = False
    with pytest.raises(TypeError, match="writable"):
        _native.softmax(x, 4, 8, None, 1, False, read_only, 1)
    with pytest.raises(ValueError, match="mask has"):
        _native.softmax(x, 4, 8, np.ones(8, np.float32), 2, False, y, 1)
    with pytest.raises(ValueError, match="mask row"):
        _native.softmax(x, 4, 8, np.ones(8, np.float32), 0, False, y, 1)
    with pytest.raises(ValueError, match="0 rows"):
        _native.softmax(x, 0, 8, None, 1, False, y, 1)


def _spy(monkeypatch, calls: list[str]) -> None:
    """Record in ``calls`` the name of each row kernel wrapper called."""
    for name in ("layer_norm_rows", "softmax_last_axis"):
        original = getattr(native_rows, name)
        monkeypatch.setattr(native_rows, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))


def test_onnx_kernels_use_the_rows_kernels_only_where_they_apply(monkeypatch):
    from ferry.runtime.kernels.normalization import layer_norm
    from ferry.runtime.kernels.softmax import softmax, softmax_2d

    calls = []
    _spy(monkeypatch, calls)
    x = RNG.standard_normal((2, 3, 16)).astype(np.float32)
    cases = [  # (run, uses the compiled kernel)
        (lambda: layer_norm(x, np.ones((1, 16), np.float32), None, axis=-1, epsilon=1e-5, stash_type=1), True),
        (lambda: layer_norm(x, np.ones((3, 16), np.float32), None, axis=-2, epsilon=1e-5, stash_type=1), True),
        (lambda: layer_norm(x, np.ones((3, 16), np.float32), None, axis=-1, epsilon=1e-5, stash_type=1), False),
        (lambda: layer_norm(x, np.ones(16), None, axis=-1, epsilon=1e-5, stash_type=1), False),  # float64
        (lambda: layer_norm(x.astype(np.float16), np.ones(16, np.float16), None, axis=-1, epsilon=1e-5,
                            stash_type=1), False),
        (lambda: softmax(x, axis=-1), True),
        (lambda: softmax_2d(x, axis=1), True),
        (lambda: softmax(x, axis=1), False),
        (lambda: softmax(x.astype(np.float64), axis=-1), False),
    ]
    for run, compiled in cases:
        calls.clear()
        with native():
            got = run()
        assert bool(calls) == compiled
        with native(False):
            want = run()
        for g, w in zip(got if isinstance(got, tuple) else [got], want if isinstance(want, tuple) else [want]):
            assert g.shape == w.shape and g.dtype == w.dtype
            np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)


def test_sessions_agree_with_native_kernels_on_and_off(monkeypatch):
    from onnx import TensorProto, helper, numpy_helper

    import ferry
    from ferry.runtime import SessionOptions

    length = 768
    inits = [numpy_helper.from_array(RNG.standard_normal(length).astype(np.float32), name)
             for name in ("scale", "bias")]
    mask = np.where(np.arange(128) < 100, 0, -np.inf).astype(np.float32).reshape(1, 1, 1, 128)
    inits.append(numpy_helper.from_array(mask, "mask"))
    nodes = [
        helper.make_node("LayerNormalization", ["h", "scale", "bias"], ["n", "mean", "inv_std"], axis=-1),
        helper.make_node("Add", ["scores", "mask"], ["masked"]),
        helper.make_node("Softmax", ["masked"], ["p"], axis=-1),
    ]
    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes, "rows",
        [helper.make_tensor_value_info("h", f32, [1, 128, length]),
         helper.make_tensor_value_info("scores", f32, [1, 12, 128, 128])],
        [helper.make_tensor_value_info(name, f32, shape) for name, shape in
         [("n", [1, 128, length]), ("mean", [1, 128, 1]), ("inv_std", [1, 128, 1]), ("p", [1, 12, 128, 128])]],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    feed = {"h": (1 + 2 * RNG.standard_normal((1, 128, length))).astype(np.float32),
            "scores": RNG.uniform(-10, 10, (1, 12, 128, 128)).astype(np.float32)}
    outputs, calls = {}, []
    _spy(monkeypatch, calls)
    for on in (True, False):
        options = SessionOptions()
        options.use_native_kernels = on
        calls.clear()
        outputs[on] = ferry.InferenceSession(model.SerializeToString(), options).run(None, feed)
        assert sorted(calls) == (["layer_norm_rows", "softmax_last_axis"] if on else [])
    for on, off in zip(outputs[True], outputs[False]):
        assert on.shape == off.shape and on.dtype == off.dtype == np.float32
        np.testing.assert_allclose(on, off, rtol=1e-4, atol=1e-5)
    assert (outputs[True][3][..., 100:] == 0).all()
