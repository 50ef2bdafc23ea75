"""Every Conv algorithm against a float64 direct-sum reference, on awkward shapes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ferry.runtime.kernels import conv_algorithms as ca
from ferry.runtime.kernels import native_conv
from ferry.runtime.kernels._winograd import winograd_matrices

RNG = np.random.default_rng(7)
NATIVE = [False, True] if native_conv.built() else [False]


@pytest.fixture(params=NATIVE, ids=lambda on: "native" if on else "numpy")
def native(request):
    """Run the test with ferry's compiled kernels on (where built) and off."""
    token = native_conv.enabled.set(request.param)
    yield request.param
    native_conv.enabled.reset(token)


def reference_conv(x, w, strides, dilations, pads_begin, pads_end, group):
    """Direct float64 sum over kernel taps of zero-padded, strided input slices."""
    rank = x.ndim - 2
    xp = np.pad(x.astype(np.float64),
                [(0, 0), (0, 0), *zip(pads_begin, pads_end, strict=True)])
    extent = [(k - 1) * d + 1 for k, d in zip(w.shape[2:], dilations, strict=True)]
    out = [(n - e) // s + 1 for n, e, s in zip(xp.shape[2:], extent, strides, strict=True)]
    n, m, cg = x.shape[0], w.shape[0], w.shape[1]
    y = np.zeros((n, m, *out))
    for g in range(group):
        xs, ws = xp[:, g * cg:(g + 1) * cg], w[g * (m // group):(g + 1) * (m // group)]
        for tap in itertools.product(*(range(k) for k in w.shape[2:])):
            index = tuple(slice(t * d, t * d + (o - 1) * s + 1, s)
                          for t, d, o, s in zip(tap, dilations, out, strides, strict=True))
            part = xs[(slice(None), slice(None), *index)]
            y[:, g * (m // group):(g + 1) * (m // group)] += np.einsum(
                "nc...,mc->nm...", part, ws[(slice(None), slice(None), *tap)].astype(np.float64))
    return y, rank


# (x shape, w shape, attributes, explicit (pads_begin, pads_end) of the reference)
CASES = [
    ((2, 5, 11, 13), (7, 5, 3, 3), {"pads": [1, 0, 2, 1]}, ([1, 0], [2, 1])),
    ((1, 3, 2, 3), (4, 3, 3, 3), {"pads": [1, 1, 1, 1]}, ([1, 1], [1, 1])),
    ((2, 4, 9, 8), (6, 2, 3, 2), {"group": 2, "strides": [2, 1], "pads": [0, 1, 1, 0]},
     ([0, 1], [1, 0])),
    ((1, 3, 10, 9), (2, 3, 3, 3), {"dilations": [2, 1], "pads": [2, 1, 2, 1]},
     ([2, 1], [2, 1])),
    ((2, 6, 7, 5), (3, 6, 1, 1), {"strides": [2, 2]}, ([0, 0], [0, 0])),
    ((2, 4, 6, 7), (8, 1, 3, 3), {"group": 4, "pads": [1, 1, 1, 1]}, ([1, 1], [1, 1])),
    ((2, 3, 17), (5, 3, 4), {"pads": [1, 2]}, ([1], [2])),
    ((1, 2, 4, 5, 3), (3, 2, 2, 3, 2), {"pads": [0, 1, 0, 1, 0, 1]}, ([0, 1, 0], [1, 0, 1])),
    ((1, 2, 9, 10), (3, 2, 4, 4), {"auto_pad": "SAME_LOWER"}, ([2, 2], [1, 1])),
    ((3, 1, 15, 12), (2, 1, 7, 7), {"strides": [2, 2], "pads": [3, 3, 3, 3]},
     ([3, 3], [3, 3])),
    ((1, 16, 40, 37), (5, 16, 3, 3), {"pads": [1, 1, 1, 1]}, ([1, 1], [1, 1])),
    ((2, 8, 14, 14), (8, 8, 3, 3), {"pads": [1, 1, 1, 1]}, ([1, 1], [1, 1])),
]


def _packed_and_reference(x_shape, w_shape, attrs, pads):
    x = RNG.standard_normal(x_shape).astype(np.float32)
    w = RNG.standard_normal(w_shape).astype(np.float32)
    rank = len(x_shape) - 2
    strides = attrs.get("strides", [1] * rank)
    dilations = attrs.get("dilations", [1] * rank)
    want, _ = reference_conv(x, w, strides, dilations, *pads, attrs.get("group", 1))
    return x, w, want


def _close(got, want, tol=1e-5):
    """Max error within ``tol`` of the output's max magnitude (float32 accumulation)."""
    assert got.shape == want.shape and got.dtype == np.float32
    err = np.abs(got - want).max() / np.abs(want).max()
    assert err < tol, err


@pytest.mark.parametrize("x_shape, w_shape, attrs, pads", CASES)
def test_every_applicable_algorithm_matches_direct_sum(x_shape, w_shape, attrs, pads, native):
    x, w, want = _packed_and_reference(x_shape, w_shape, attrs, pads)
    packed = ca.pack_conv_weights(w, **attrs)
    names = ca.applicable_algorithms(x.shape, packed)
    assert "im2col" in names
    for name in names:
        forced = ca.pack_conv_weights(w, **attrs, algorithm=name)
        _close(ca.conv_packed(x, forced), want)
    _close(ca.conv_packed(x, packed), want)


def test_applicability_follows_the_attributes():
    names = ca.applicable_algorithms((1, 8, 14, 14), ca.pack_conv_weights(
        np.zeros((8, 8, 3, 3), np.float32), pads=[1, 1, 1, 1]))
    assert {"shifted", "winograd2", "winograd4"} <= set(names)
    strided = ca.pack_conv_weights(np.zeros((8, 8, 3, 3), np.float32), strides=[2, 2])
    assert ca.applicable_algorithms((1, 8, 14, 14), strided) == ["im2col"]
    padded_1x1 = ca.pack_conv_weights(np.zeros((8, 8, 1, 1), np.float32), pads=[1, 1, 1, 1])
    assert "pointwise" not in ca.applicable_algorithms((1, 8, 5, 5), padded_1x1)


def test_dispatch_picks_special_cases_else_winograd_or_im2col_unless_forced(native):
    three_by_three = "native_winograd" if native else "im2col"
    thin = ca.pack_conv_weights(np.zeros((9, 32, 3, 3), np.float32), pads=[1] * 4)
    assert ca.choose_algorithm((1, 32, 224, 224), thin) == three_by_three
    assert ca.choose_algorithm((1, 32, 7, 7), thin) == "im2col"  # too narrow for Winograd
    forced = ca.pack_conv_weights(np.zeros((9, 32, 3, 3), np.float32), pads=[1] * 4, algorithm="shifted")
    assert ca.choose_algorithm((1, 32, 224, 224), forced) == "shifted"
    square = ca.pack_conv_weights(np.zeros((64, 64, 3, 3), np.float32), pads=[1] * 4)
    assert ca.choose_algorithm((1, 64, 56, 56), square) == three_by_three
    assert ca.choose_algorithm((1, 64, 56, 56), ca.pack_conv_weights(
        np.zeros((64, 64, 1, 1), np.float32))) == "pointwise"
    doubles = ca.pack_conv_weights(np.zeros((64, 64, 3, 3)), pads=[1] * 4)
    assert ca.choose_algorithm((1, 64, 56, 56), doubles) == "im2col"  # native: float32 only
    assert ("native_gemm" in square.native) == native


def test_forcing_an_algorithm_that_does_not_apply_is_an_error():
    w = np.zeros((4, 4, 3, 3), np.float32)
    with pytest.raises(ValueError, match="winograd4.*does not apply"):
        ca.pack_conv_weights(w, strides=[2, 2], algorithm="winograd4")
    forced = ca.pack_conv_weights(np.zeros((4, 4, 1, 1), np.float32), pads=[1, 1, 1, 1],
                                  algorithm="pointwise")
    with pytest.raises(ValueError, match="pointwise.*does not apply"):
        ca.conv_packed(np.zeros((1, 4, 3, 3), np.float32), forced)


@pytest.mark.parametrize("algorithm", ["im2col", "shifted", "winograd4", "pointwise",
                                       "native_winograd"])
@pytest.mark.parametrize("activation, fn", [
    (("Relu", 0, 0), lambda y: np.maximum(y, 0)),
    (("Clip", -0.5, 1.5), lambda y: np.clip(y, -0.5, 1.5)),
    (("LeakyRelu", 0.1, 0), lambda y: np.where(y < 0, np.float32(0.1) * y, y)),
    (None, lambda y: y),
])
def test_epilogue_bias_residual_activation(algorithm, activation, fn, native):
    if algorithm == "native_winograd" and not native:
        pytest.skip("the native kernel is not in use in this variant")
    k = 1 if algorithm == "pointwise" else 3
    pads = [0] * 4 if k == 1 else [1, 0, 1, 2]
    x = RNG.standard_normal((2, 6, 9, 10)).astype(np.float32)
    w = RNG.standard_normal((4, 6, k, k)).astype(np.float32)
    b = RNG.standard_normal(4).astype(np.float32)
    conv, _ = reference_conv(x, w, [1, 1], [1, 1], pads[:2], pads[2:], 1)
    residual = RNG.standard_normal(conv.shape).astype(np.float32)
    want = fn(conv + b.reshape(-1, 1, 1) + residual)
    packed = ca.pack_conv_weights(w, pads=pads, algorithm=algorithm)
    got = ca.conv_packed(x, packed, bias=b, residual=residual, activation=activation)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_epilogue_rejects_unknown_activation_and_bad_residual():
    packed = ca.pack_conv_weights(np.ones((2, 1, 1, 1), np.float32))
    x = np.ones((1, 1, 3, 3), np.float32)
    with pytest.raises(ValueError, match="activation"):
        ca.conv_packed(x, packed, activation=("Swish", 1.0, 0))
    with pytest.raises(ValueError, match="residual has shape"):
        ca.conv_packed(x, packed, residual=np.ones((1, 2, 3, 4), np.float32))


def test_float64_stays_float64_on_every_algorithm():
    x = RNG.standard_normal((1, 3, 8, 9))
    w = RNG.standard_normal((2, 3, 3, 3))
    want, _ = reference_conv(x, w, [1, 1], [1, 1], [1, 1], [1, 1], 1)
    for name in ("im2col", "shifted", "winograd2", "winograd4"):
        got = ca.conv_packed(x, ca.pack_conv_weights(w, pads=[1] * 4, algorithm=name))
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("m", [2, 4])
def test_winograd_matrices_compute_the_1d_correlation_exactly(m):
    mats = winograd_matrices(m, 3)
    d, g = RNG.standard_normal(m + 2), RNG.standard_normal(3)
    want = np.array([d[i:i + 3] @ g for i in range(m)])
    np.testing.assert_allclose(mats.at @ ((mats.g @ g) * (mats.bt @ d)), want, rtol=1e-12,
                               atol=1e-12)


def test_winograd4_float32_error_is_within_1e5_of_the_output_scale():
    x = RNG.standard_normal((1, 64, 30, 30)).astype(np.float32)
    w = RNG.standard_normal((16, 64, 3, 3)).astype(np.float32)
    want, _ = reference_conv(x, w, [1, 1], [1, 1], [1, 1], [1, 1], 1)
    got = ca.conv_packed(x, ca.pack_conv_weights(w, pads=[1] * 4, algorithm="winograd4"))
    _close(got, want, tol=1e-5)
