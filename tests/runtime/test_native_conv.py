"""ferry's compiled kernels (ferry.runtime.kernels._native) against float64 numpy references.

Every kernel is checked on awkward shapes (tails of every register tile, padding on one side,
batches, strides, dilations), with each fused epilogue and several thread counts; then the
guards (bad buffers are refused, not misread), threads and fork safety, and a session with the
kernels on and off.
"""

from __future__ import annotations

import itertools
import multiprocessing
import platform
import shutil
import threading

import numpy as np
import pytest

from ferry.runtime.kernels import native_conv
from ferry.runtime.kernels._winograd import winograd_matrices

from .test_conv_algorithms import reference_conv

RNG = np.random.default_rng(11)
needs_native = pytest.mark.skipif(not native_conv.built(), reason="native kernels not built here")
ACTIVATIONS = {
    None: lambda y: y,
    ("Relu", 0.0, 0.0): lambda y: np.maximum(y, 0),
    ("LeakyRelu", 0.2, 0.0): lambda y: np.where(y < 0, 0.2 * y, y),
    ("Clip", -0.3, 0.4): lambda y: np.clip(y, -0.3, 0.4),
    ("Gelu", 0.0, 0.0): None,  # applied after the kernel, in numpy
}


def _cpu_has_avx2_fma() -> bool:
    try:
        with open("/proc/cpuinfo") as info:
            flags = info.read()
    except OSError:
        return False
    return " avx2" in flags and " fma" in flags


def test_the_extension_is_built_where_it_can_be():
    """pip install compiles it on x86-64 Linux with a C compiler and an AVX2/FMA CPU."""
    if platform.machine() not in ("x86_64", "AMD64") or not shutil.which("cc"):
        pytest.skip("no x86-64 C toolchain here")
    if not _cpu_has_avx2_fma():
        pytest.skip("this CPU lacks AVX2/FMA")
    assert native_conv.built()


def test_transform_matrices_are_the_ones_written_out_in_winograd_c():
    mats = winograd_matrices(4, 3, native_conv.NATIVE_POINTS)
    bt = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
          [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
    at = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
    np.testing.assert_allclose(mats.bt, bt, atol=1e-12)
    np.testing.assert_allclose(mats.at, at, atol=1e-12)


def _expected(conv, bias, residual, activation):
    y = conv + bias.reshape(1, -1, 1, 1)
    if residual is not None:
        y = y + residual
    if activation is not None and activation[0] == "Gelu":
        from ferry.runtime.kernels._activation import gelu_in_place

        return gelu_in_place(y.astype(np.float32)).astype(np.float64)
    return ACTIVATIONS[activation](y)


def _close(got, want, tol, scale=None):
    """Max error within ``tol`` of ``scale`` (default: the largest |want|; pass the scale
    before a clipping activation, which hides it)."""
    assert got.shape == want.shape and got.dtype == np.float32
    scale = np.abs(want).max() if scale is None else scale
    err = np.abs(got - want).max() / max(scale, 1e-30)
    assert err < tol, err


WINOGRAD_CASES = [  # (N, C, H, W, M, (top, left, bottom, right)); small images take the
    # three-phase schedule when threads > 1
    (1, 1, 3, 3, 1, (0, 0, 0, 0)),
    (1, 3, 8, 8, 5, (1, 1, 1, 1)),
    (2, 7, 13, 29, 9, (1, 1, 1, 1)),
    (1, 16, 10, 37, 13, (2, 0, 1, 3)),
    (3, 5, 6, 70, 4, (0, 2, 2, 0)),
    (1, 64, 24, 24, 64, (1, 1, 1, 1)),
    (1, 130, 9, 33, 70, (1, 1, 1, 1)),
    (2, 16, 64, 61, 8, (1, 1, 1, 1)),  # enough blocks for the block-per-thread schedule
]


@needs_native
@pytest.mark.parametrize("n, c, h, w, m, pads", WINOGRAD_CASES)
@pytest.mark.parametrize("activation", list(ACTIVATIONS), ids=str)
def test_winograd_matches_the_float64_direct_sum(n, c, h, w, m, pads, activation):
    x = RNG.standard_normal((n, c, h, w)).astype(np.float32)
    weights = RNG.standard_normal((m, c, 3, 3)).astype(np.float32)
    bias = RNG.standard_normal(m).astype(np.float32)
    conv, _ = reference_conv(x, weights, [1, 1], [1, 1], pads[:2], pads[2:], 1)
    residual = RNG.standard_normal(conv.shape).astype(np.float32)
    for threads in (1, 2, 3):
        token = native_conv.threads.set(threads)
        try:
            got = native_conv.conv_f43(x, native_conv.pack_f43(weights), m, pads[:2],
                                       conv.shape[2:], bias=bias, residual=residual,
                                       activation=activation)
        finally:
            native_conv.threads.reset(token)
        before = _expected(conv, bias, residual, None)
        _close(got, _expected(conv, bias, residual, activation), 2e-5, np.abs(before).max())


@needs_native
def test_winograd_error_stays_near_float32_rounding_on_a_wide_layer():
    """F(4x4, 3x3) reorders the sums: bounded at 2e-5 of the output scale for 256 channels."""
    x = RNG.standard_normal((1, 256, 20, 20)).astype(np.float32)
    weights = RNG.standard_normal((32, 256, 3, 3)).astype(np.float32)
    conv, _ = reference_conv(x, weights, [1, 1], [1, 1], [1, 1], [1, 1], 1)
    got = native_conv.conv_f43(x, native_conv.pack_f43(weights), 32, (1, 1), (20, 20))
    _close(got, conv, 2e-5)


@needs_native
@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (70, 301, 1), (3, 5, 23), (4, 7, 24), (5, 300, 25),
                                     (64, 64, 97), (65, 513, 49), (130, 9, 1000), (9, 40, 28),
                                     (6, 600, 99), (8, 3, 196), (601, 300, 1)])
@pytest.mark.parametrize("activation", list(ACTIVATIONS), ids=str)
def test_gemm_matches_numpy(m, k, n, activation):
    w = RNG.standard_normal((m, k)).astype(np.float32)
    x = RNG.standard_normal((k, n)).astype(np.float32)
    bias = RNG.standard_normal(m).astype(np.float32)
    width = n + 11  # write into columns [5, 5 + n) of a wider output
    residual = RNG.standard_normal((m, width)).astype(np.float32)
    y = np.full((m, width), 7.0, np.float32)
    native_conv.gemm_into(native_conv.pack_gemm(w), m, x, y, 5, bias=bias, residual=residual,
                          activation=activation)
    before = w.astype(np.float64) @ x + bias[:, None] + residual[:, 5:5 + n]
    want = _expected(before[None, :, :, None], np.zeros(m), None, activation)[0, :, :, 0]
    _close(y[:, 5:5 + n], want, 1e-5, np.abs(before).max())
    assert (y[:, :5] == 7).all() and (y[:, 5 + n:] == 7).all()  # nothing outside is touched


@needs_native
@pytest.mark.parametrize("kernel, strides, dilations, pads", [
    ((3, 3), (1, 1), (1, 1), (1, 1)), ((7, 7), (2, 2), (1, 1), (3, 3)),
    ((1, 1), (2, 2), (1, 1), (0, 0)), ((3, 2), (2, 3), (2, 1), (2, 0)),
])
@pytest.mark.parametrize("width", [14, 37, 40])  # stride 2 copies 8 outputs at a time
def test_im2col_matches_the_strided_window_view(kernel, strides, dilations, pads, width):
    from ferry.runtime.kernels._window import geometry, padded, tap_view

    x = RNG.standard_normal((3, 11, width)).astype(np.float32)
    win = geometry((11, width), kernel, strides=strides, dilations=dilations,
                   pads=[*pads, *pads], auto_pad="NOTSET")
    out = np.full((3 * kernel[0] * kernel[1], int(np.prod(win.out))), np.nan, np.float32)
    native_conv.im2col_into(x, win.kernel, win.strides, win.dilations, win.pads_begin, win.out,
                            out)
    xp = padded(x[None], win, 0)[0]
    want = np.stack([tap_view(xp, win, tap) for tap in itertools.product(
        range(kernel[0]), range(kernel[1]))], axis=1).reshape(out.shape)
    np.testing.assert_array_equal(out, want)
    rows, cols = win.out  # a block of output rows [1, rows - 1) alone
    block = np.empty((out.shape[0], (rows - 2) * cols), np.float32)
    native_conv.im2col_into(x, win.kernel, win.strides, win.dilations, win.pads_begin,
                            (rows - 2, cols), block, 1)
    np.testing.assert_array_equal(block, want[:, cols:(rows - 1) * cols])


@needs_native
def test_max_pool_matches_numpy_and_propagates_nan():
    from ferry.runtime.kernels._window import geometry, windows

    x = RNG.standard_normal((2, 3, 13, 37)).astype(np.float32)
    x[1, 2, 4, 5] = np.nan
    for kernel, strides, dilations, pads, ceil in [((3, 3), (2, 2), (1, 1), (1, 1), 0),
                                                    ((2, 3), (1, 2), (2, 1), (0, 1), 1),
                                                    ((3, 3), (1, 1), (1, 1), (1, 1), 0),
                                                    ((2, 4), (3, 3), (1, 2), (0, 2), 1)]:
        win = geometry((13, 37), kernel, strides=strides, dilations=dilations,
                       pads=[*pads, *pads], auto_pad="NOTSET", ceil_mode=ceil)
        got = native_conv.max_pool(x, win.kernel, win.strides, win.dilations, win.pads_begin,
                                   win.out)
        want = windows(x, win, -np.inf).max(axis=(-2, -1))
        np.testing.assert_array_equal(got, want)
        assert np.isnan(got[1, 2]).any() and not np.isnan(got[0]).any()


@needs_native
def test_bad_buffers_are_refused_not_misread():
    from ferry.runtime.kernels import _native

    u = native_conv.pack_gemm(np.ones((4, 3), np.float32))
    x = np.ones((3, 5), np.float32)
    args = (u, 4, 4, 3, x, 5, 5)
    tail = (None, None, 0, 0.0, 0.0, 1)
    with pytest.raises(ValueError, match="y has"):
        _native.packed_gemm(*args, np.empty((3, 5), np.float32), 0, 5, *tail)
    with pytest.raises(TypeError, match="float32"):
        _native.packed_gemm(*args, np.empty((4, 5), np.float64), 0, 5, *tail)
    with pytest.raises(TypeError, match="C-contiguous"):
        _native.packed_gemm(u, 4, 4, 3, np.ones((5, 3), np.float32).T, 5, 5,
                            np.empty((4, 5), np.float32), 0, 5, *tail)
    with pytest.raises(TypeError, match="writable"):
        y = np.empty((4, 5), np.float32)
        y.flags.writeable = False
        _native.packed_gemm(*args, y, 0, 5, *tail)
    with pytest.raises(ValueError, match="activation"):
        _native.packed_gemm(*args, np.empty((4, 5), np.float32), 0, 5, None, None, 9, 0.0, 0.0, 1)


def _conv_case():
    x = RNG.standard_normal((1, 8, 30, 30)).astype(np.float32)
    w = RNG.standard_normal((16, 8, 3, 3)).astype(np.float32)
    want, _ = reference_conv(x, w, [1, 1], [1, 1], [1, 1], [1, 1], 1)
    return x, w, want


@needs_native
def test_calls_from_several_python_threads_are_all_correct():
    x, w, want = _conv_case()
    u = native_conv.pack_f43(w)
    errors = []

    def work():
        for _ in range(20):
            got = native_conv.conv_f43(x, u, 16, (1, 1), (30, 30))
            errors.append(np.abs(got - want).max() / np.abs(want).max())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 80 and max(errors) < 2e-5


def _child_error(queue) -> None:
    x, w, want = _conv_case()
    got = native_conv.conv_f43(x, native_conv.pack_f43(w), 16, (1, 1), (30, 30))
    queue.put(float(np.abs(got - want).max() / np.abs(want).max()))


@needs_native
def test_a_forked_child_runs_the_kernels():
    """The pool's threads do not survive fork; the child starts its own."""
    x, w, _ = _conv_case()
    native_conv.conv_f43(x, native_conv.pack_f43(w), 16, (1, 1), (30, 30))  # pool started
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_error, args=(queue,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) < 2e-5


@needs_native
def test_sessions_agree_with_native_kernels_on_and_off():
    from onnx import TensorProto, helper, numpy_helper

    import ferry
    from ferry.runtime import SessionOptions

    weights = {"w1": (16, 8, 3, 3), "w2": (4, 16, 1, 1), "w3": (4, 4, 3, 3)}
    initializers = [numpy_helper.from_array(RNG.standard_normal(shape).astype(np.float32), name)
                    for name, shape in weights.items()]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["b"]),
        helper.make_node("Conv", ["b", "w2"], ["c"]),
        helper.make_node("Conv", ["c", "w3"], ["d"], strides=[2, 2]),
        helper.make_node("MaxPool", ["d"], ["y"], kernel_shape=[2, 2]),
    ]
    graph = helper.make_graph(
        nodes, "convs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 30, 30])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 7, 7])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    feed = {"x": RNG.standard_normal((1, 8, 30, 30)).astype(np.float32)}
    outputs = {}
    for native in (True, False):
        options = SessionOptions()
        options.use_native_kernels = native
        session = ferry.InferenceSession(model.SerializeToString(), options)
        outputs[native] = session.run(None, feed)[0]
    np.testing.assert_allclose(outputs[True], outputs[False], rtol=1e-4, atol=1e-4)
