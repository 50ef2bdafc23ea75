"""Element-wise kernel family: the official ONNX node cases, an onnxruntime cross-check on
random data, and hand-written edge cases (old-opset semantics, dtypes, special values)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
import onnx.helper
import pytest

import ferry
from ferry.ir.dtypes import from_numpy_dtype
from tests.oracle import to_ferry_array
from tests.runtime.node_harness import node_case_test

# fmt: off
OPS = {
    "Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Ceil", "Cos", "Cosh", "Erf",
    "Exp", "Floor", "Log", "Neg", "Reciprocal", "Round", "Sign", "Sin", "Sinh", "Sqrt", "Tan",
    "Tanh", "IsInf", "IsNaN", "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Mean",
    "Sum", "Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "And", "Or", "Xor",
    "Not", "BitShift", "BitwiseAnd", "BitwiseNot", "BitwiseOr", "BitwiseXor", "Where", "Relu",
    "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "ThresholdedRelu", "HardSigmoid", "HardSwish",
    "Sigmoid", "Softplus", "Softsign", "Gelu", "Mish", "Swish", "Shrink", "Clip", "Softmax",
    "LogSoftmax", "Hardmax", "CumSum", "CumProd",
}
# fmt: on

SKIPS: dict[str, str] = {}


test_node_case = node_case_test(OPS, SKIPS)


def run(op: str, *inputs, opset: int, **attributes):
    """Run a one-node model at ``opset`` through ferry.InferenceSession (``None`` inputs are
    omitted optional inputs)."""
    names = [f"in{i}" if value is not None else "" for i, value in enumerate(inputs)]
    feeds = {name: value for name, value in zip(names, inputs, strict=True) if name}
    declared = [
        onnx.helper.make_tensor_value_info(name, from_numpy_dtype(value.dtype), value.shape)
        for name, value in feeds.items()
    ]
    node = onnx.helper.make_node(op, names, ["out"], **attributes)
    graph = onnx.helper.make_graph(
        [node], "g", declared, [onnx.helper.make_empty_tensor_value_info("out")]
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    (result,) = ferry.InferenceSession(model.SerializeToString(), check=False).run(None, feeds)
    assert isinstance(result, np.ndarray)
    return result


# ---------------------------------------------------------------------------------------
# Cross-check against onnxruntime on random data (float32/float64, and float16 through a
# float32 oracle since onnxruntime's CPU float16 coverage is partial).

RNG = np.random.default_rng(0)

# op -> (opset, attributes, input sampler)
UNARY = {
    "Acos": (22, {}, lambda n: RNG.uniform(-1, 1, n)),
    "Acosh": (22, {}, lambda n: RNG.uniform(1, 5, n)),
    "Asin": (22, {}, lambda n: RNG.uniform(-1, 1, n)),
    "Asinh": (22, {}, lambda n: RNG.normal(0, 3, n)),
    "Atan": (22, {}, lambda n: RNG.normal(0, 3, n)),
    "Atanh": (22, {}, lambda n: RNG.uniform(-0.99, 0.99, n)),
    "Cos": (22, {}, lambda n: RNG.normal(0, 3, n)),
    "Cosh": (22, {}, lambda n: RNG.normal(0, 3, n)),
    "Erf": (13, {}, lambda n: RNG.normal(0, 2, n)),
    "Exp": (13, {}, lambda n: RNG.normal(0, 3, n)),
    "Log": (13, {}, lambda n: RNG.uniform(0.01, 10, n)),
    "Reciprocal": (13, {}, lambda n: RNG.uniform(0.5, 4, n) * RNG.choice([-1, 1], n)),
    "Sin": (22, {}, lambda n: RNG.normal(0, 3, n)),
    "Sinh": (22, {}, lambda n: RNG.normal(0, 3, n)),
    "Sqrt": (13, {}, lambda n: RNG.uniform(0, 10, n)),
    "Tan": (22, {}, lambda n: RNG.uniform(-1.2, 1.2, n)),
    "Tanh": (13, {}, lambda n: RNG.normal(0, 3, n)),
    "Elu": (22, {"alpha": 0.7}, lambda n: RNG.normal(0, 3, n)),
    "Selu": (22, {}, lambda n: RNG.normal(0, 3, n)),
    "Celu": (12, {"alpha": 1.5}, lambda n: RNG.normal(0, 3, n)),
    "LeakyRelu": (16, {"alpha": 0.2}, lambda n: RNG.normal(0, 3, n)),
    "ThresholdedRelu": (22, {"alpha": 0.5}, lambda n: RNG.normal(0, 3, n)),
    "HardSigmoid": (22, {}, lambda n: RNG.normal(0, 4, n)),
    "HardSwish": (22, {}, lambda n: RNG.normal(0, 4, n)),
    "Sigmoid": (13, {}, lambda n: RNG.normal(0, 10, n)),
    "Softplus": (22, {}, lambda n: RNG.normal(0, 10, n)),
    "Softsign": (22, {}, lambda n: RNG.normal(0, 3, n)),
    "Gelu": (20, {}, lambda n: RNG.normal(0, 3, n)),
    "Mish": (22, {}, lambda n: RNG.normal(0, 3, n)),
    "Shrink": (9, {"lambd": 0.7, "bias": 0.2}, lambda n: RNG.normal(0, 2, n)),
    "Round": (22, {}, lambda n: RNG.integers(-8, 8, n) / 2),
}


def _ort_unary(op: str, opset: int, attributes: dict, x: np.ndarray) -> np.ndarray:
    import onnxruntime

    elem = onnx.helper.np_dtype_to_tensor_dtype(x.dtype)
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node(op, ["x"], ["y"], **attributes)],
        "g",
        [onnx.helper.make_tensor_value_info("x", elem, None)],
        [onnx.helper.make_tensor_value_info("y", elem, None)],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary_matches_onnxruntime(op, dtype):
    opset, attributes, sample = UNARY[op]
    x = sample(64).astype(dtype).reshape(4, 16)
    rtol = {np.float16: 2e-3, np.float32: 1e-5, np.float64: 1e-6}[dtype]
    try:
        want = _ort_unary(op, opset, attributes, x.astype(np.float32) if dtype == np.float16 else x)
    except Exception:  # onnxruntime's CPU kernels lack many float64 variants: use float32
        want, rtol = _ort_unary(op, opset, attributes, x.astype(np.float32)), 1e-5
    got = run(op, x, opset=opset, **attributes)
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_allclose(
        got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=rtol
    )


# ---------------------------------------------------------------------------------------
# Opset 1-6 broadcasting with the broadcast/axis attributes.


def test_legacy_add_broadcast_axis():
    a = np.arange(120, dtype=np.float32).reshape(2, 3, 4, 5)
    b = np.arange(12, dtype=np.float32).reshape(3, 4)
    got = run("Add", a, b, opset=6, broadcast=1, axis=1)
    np.testing.assert_array_equal(got, a + b[None, :, :, None])


def test_legacy_broadcast_suffix_and_scalar():
    a = np.ones((2, 3, 4), dtype=np.float32)
    np.testing.assert_array_equal(
        run("Sub", a, np.arange(4, dtype=np.float32), opset=6, broadcast=1), a - np.arange(4)
    )
    np.testing.assert_array_equal(
        run("Mul", a, np.full((1, 1), 3, np.float32), opset=1, broadcast=1, consumed_inputs=[0]),
        a * 3,
    )
    np.testing.assert_array_equal(
        run("Pow", a * 2, np.float32(3).reshape(()), opset=1, broadcast=1), a * 8
    )


def test_legacy_broadcast_needs_flag():
    a = np.ones((2, 3), dtype=np.float32)
    b = np.ones((3,), dtype=np.float32)
    with pytest.raises(ferry.ExecutionError, match="broadcast=1"):
        run("Add", a, b, opset=6)
    with pytest.raises(ferry.ExecutionError, match="starting at axis 0"):
        run("Div", a, b, opset=6, broadcast=1, axis=0)
    assert run("Add", a, b, opset=7).shape == (2, 3)


def test_legacy_comparison_axis():
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    got = run("Equal", a, np.array([0, 4], dtype=np.int32), opset=1, broadcast=1, axis=0)
    np.testing.assert_array_equal(got, [[True, False, False], [False, True, False]])


def test_legacy_prelu_per_channel_slope():
    x = -np.ones((2, 3, 2, 2), dtype=np.float32)
    slope = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    got = run("PRelu", x, slope, opset=6)
    np.testing.assert_allclose(got[0, :, 0, 0], [-0.1, -0.2, -0.3])
    with pytest.raises(ferry.ExecutionError, match="does not broadcast"):
        run("PRelu", x, slope, opset=9)


def test_legacy_clip_attributes():
    x = np.array([-5.0, 0.5, 5.0, np.inf], dtype=np.float32)
    np.testing.assert_array_equal(run("Clip", x, opset=6, min=-1.0, max=1.0), [-1, 0.5, 1, 1])
    np.testing.assert_array_equal(run("Clip", x, opset=1, max=1.0), [-5, 0.5, 1, 1])
    big = np.array([1e300, -1e300], dtype=np.float64)
    np.testing.assert_array_equal(run("Clip", big, opset=6), big)  # default = type limits


def test_legacy_variadic_with_consumed_inputs():
    a = np.array([1.0, 5.0], dtype=np.float32)
    b = np.array([3.0, 2.0], dtype=np.float32)
    np.testing.assert_array_equal(run("Max", a, b, opset=1, consumed_inputs=[0, 0]), [3, 5])
    np.testing.assert_array_equal(run("Mean", a, b, opset=6), [2, 3.5])


def test_softmax_coerces_to_2d_before_opset_13():
    x = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    old = run("Softmax", x, opset=11, axis=1)
    flat = np.exp(x.reshape(2, 12))
    np.testing.assert_allclose(old, (flat / flat.sum(1, keepdims=True)).reshape(x.shape), rtol=1e-6)
    new = run("Softmax", x, opset=13, axis=1)
    np.testing.assert_allclose(new, np.exp(x) / np.exp(x).sum(1, keepdims=True), rtol=1e-6)
    assert run("Softmax", x, opset=1).shape == x.shape  # default axis=1 at opset 1


def test_log_softmax_and_hardmax_old_opsets():
    x = np.array([[[1, 9], [3, 4]], [[7, 2], [9, 0]]], dtype=np.float32)
    want = np.zeros_like(x)
    want[0, 0, 1] = want[1, 1, 0] = 1  # first maximum of each flattened row
    np.testing.assert_array_equal(run("Hardmax", x, opset=11, axis=1), want)
    got = run("LogSoftmax", x, opset=1, axis=1)
    rows = x.reshape(2, 4).astype(np.float64)
    ref = rows - np.log(np.exp(rows).sum(1, keepdims=True))
    np.testing.assert_allclose(got, ref.reshape(x.shape), rtol=1e-5)


# ---------------------------------------------------------------------------------------
# Integer arithmetic semantics.


def test_integer_div_truncates_toward_zero():
    a = np.array([7, -7, 7, -7, 5, 0], dtype=np.int32)
    b = np.array([2, 2, -2, -2, 0, 3], dtype=np.int32)
    got = run("Div", a, b, opset=14)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got[[0, 1, 2, 3, 5]], [3, -3, -3, 3, 0])
    big = np.array([2**62 + 1], dtype=np.int64)
    assert run("Div", big, np.array([-1], dtype=np.int64), opset=7)[0] == -(2**62 + 1)


def test_mod_sign_rules():
    a = np.array([5, -5, 5, -5], dtype=np.int64)
    b = np.array([3, 3, -3, -3], dtype=np.int64)
    np.testing.assert_array_equal(run("Mod", a, b, opset=13), [2, 1, -1, -2])
    np.testing.assert_array_equal(run("Mod", a, b, opset=13, fmod=1), [2, -2, 2, -2])
    x = np.array([5.5, -5.5, -0.0, np.inf, 1.0, 3.0], dtype=np.float32)
    y = np.array([2.0, 2.0, 3.0, 2.0, 0.0, -np.inf], dtype=np.float32)
    got = run("Mod", x, y, opset=28)
    np.testing.assert_array_equal(got, [1.5, 0.5, 0.0, np.nan, np.nan, -np.inf])
    assert not np.signbit(got[2])
    np.testing.assert_array_equal(
        run("Mod", x, y, opset=28, fmod=1), [1.5, -1.5, -0.0, np.nan, np.nan, 3.0]
    )


def test_pow_keeps_base_type():
    ints = np.array([2, -2, 1, -1, 3], dtype=np.int32)
    got = run("Pow", ints, np.array([3, 3, -2, -3, -1], dtype=np.int64), opset=15)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, [8, -8, 1, -1, 0])
    got = run("Pow", ints, np.array([0.5, 2, 2, 2, 2], dtype=np.float32), opset=15)
    np.testing.assert_array_equal(got, [1, 4, 1, 1, 9])
    half = run("Pow", np.array([4, 9], np.float16), np.array([0.5, 0.5], np.float64), opset=15)
    assert half.dtype == np.float16
    np.testing.assert_array_equal(half, [2, 3])


def test_integer_wraparound_and_bits():
    a = np.array([250], dtype=np.uint8)
    assert run("Add", a, np.array([10], np.uint8), opset=14).tolist() == [4]
    assert run("Abs", np.array([-128], np.int8), opset=13).dtype == np.int8
    x = np.array([1, 255], dtype=np.uint8)
    y = np.array([8, 1], dtype=np.uint8)
    np.testing.assert_array_equal(run("BitShift", x, y, opset=11, direction="LEFT"), [0, 254])
    np.testing.assert_array_equal(run("BitShift", x, y, opset=11, direction="RIGHT"), [0, 127])
    s = np.array([-16, -16, 16], dtype=np.int16)
    got = run("BitShift", s, np.array([2, 40, -1], np.int16), opset=28, direction="RIGHT")
    np.testing.assert_array_equal(got, [-4, -1, 0])
    with pytest.raises(ferry.ExecutionError, match="direction"):
        run("BitShift", x, y, opset=11, direction="UP")


# ---------------------------------------------------------------------------------------
# Floating-point special values and reduced-precision types.


def test_round_half_to_even():
    x = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 2.3, np.inf, -0.0], dtype=np.float32)
    got = run("Round", x, opset=11)
    np.testing.assert_array_equal(got, [0, 2, 2, -0.0, -2, 2, np.inf, -0.0])
    assert np.signbit(got[-1])


def test_clip_optional_bounds_and_inversion():
    x = np.array([-3, 0, 3], dtype=np.int8)
    np.testing.assert_array_equal(
        run("Clip", x, None, np.int8(1).reshape(()), opset=13), [-3, 0, 1]
    )
    np.testing.assert_array_equal(run("Clip", x, np.int8(-1).reshape(()), opset=13), [-1, 0, 3])
    lo, hi = np.array(2, np.float32), np.array(1, np.float32)
    got = run("Clip", np.array([0, 5, np.nan], np.float32), lo, hi, opset=11)
    np.testing.assert_array_equal(got, [1, 1, np.nan])


def test_extreme_inputs_do_not_overflow():
    x = np.array([-1000, -80, 0, 80, 1000], dtype=np.float32)
    sig = run("Sigmoid", x, opset=13)
    assert np.all(np.isfinite(sig)) and sig[0] == 0 and sig[-1] == 1
    sp = run("Softplus", x, opset=22)
    np.testing.assert_allclose(sp[[0, 3, 4]], [0, 80, 1000], rtol=1e-6)
    sm = run("Softmax", np.array([[1000, 1000, -np.inf]], np.float32), opset=13)
    np.testing.assert_array_equal(sm, [[0.5, 0.5, 0]])


@pytest.mark.parametrize(
    "op, opset, attributes",
    [
        ("Softmax", 13, {}),
        ("LogSoftmax", 13, {}),
        ("Hardmax", 13, {}),
        ("Gelu", 20, {"approximate": "tanh"}),
        ("Swish", 24, {"alpha": 1.5}),
        ("Relu", 14, {}),
        ("Sum", 13, {}),
        ("Mean", 13, {}),
        ("Max", 13, {}),
        ("CumSum", 14, {}),
        ("CumProd", 26, {}),
        ("Mod", 13, {}),
        ("Pow", 15, {}),
    ],
)
def test_float16_stays_float16(op, opset, attributes):
    x = RNG.normal(size=(3, 4)).astype(np.float16)
    inputs = {
        "CumSum": (x, np.array(1)),
        "CumProd": (x, np.array(-1)),
        "Sum": (x, x, x),
        "Mean": (x, x),
        "Max": (x, x[:1]),
        "Mod": (x, np.full((), 0.7, np.float16)),
        "Pow": (np.abs(x), np.full((), 1.5, np.float16)),
    }.get(op, (x,))
    got = run(op, *inputs, opset=opset, **attributes)
    assert got.dtype == np.float16 and got.shape == x.shape


def _bf16(values) -> np.ndarray:
    return to_ferry_array(np.asarray(values, dtype=np.float32).astype(ml_dtypes.bfloat16))


@pytest.mark.parametrize(
    "op, opset, fn",
    [
        ("Exp", 13, np.exp),
        ("Neg", 13, np.negative),
        ("Sigmoid", 13, lambda v: 1 / (1 + np.exp(-v))),
        ("Floor", 13, np.floor),
        ("Sqrt", 13, np.sqrt),
        ("Abs", 13, np.abs),
    ],
)
def test_bfloat16_unary_rounds_like_ml_dtypes(op, opset, fn):
    values = np.array([0.1, 1.7, 2.5, 3.3, 7.0, 100.25, 0.0], dtype=np.float32)
    got = run(op, _bf16(values), opset=opset)
    with np.errstate(over="ignore"):  # exp(100.25) overflows to inf on purpose
        want = _bf16(fn(values.astype(ml_dtypes.bfloat16).astype(np.float32)))
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16))


def test_bfloat16_binary_and_compare():
    a, b = _bf16([1.5, -2.0, 3.0]), _bf16([0.25, -2.0, 7.0])
    got = run("Add", a, b, opset=14)
    np.testing.assert_array_equal(got.view(np.uint16), _bf16([1.75, -4.0, 10.0]).view(np.uint16))
    np.testing.assert_array_equal(run("Equal", a, b, opset=13), [False, True, False])
    picked = run("Where", np.array([True, False, True]), a, b, opset=16)
    np.testing.assert_array_equal(picked.view(np.uint16), _bf16([1.5, -2.0, 3.0]).view(np.uint16))


@pytest.mark.parametrize(
    "name", ["float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "bfloat16"]
)
def test_isnan_isinf_minifloats(name):
    ml_type = getattr(ml_dtypes, name)
    values = np.array([1.0, np.nan, np.inf, -np.inf, -2.0, 0.0], dtype=np.float32)
    x = values.astype(ml_type)
    wide = x.astype(np.float32)
    np.testing.assert_array_equal(run("IsNaN", to_ferry_array(x), opset=20), np.isnan(wide))
    np.testing.assert_array_equal(run("IsInf", to_ferry_array(x), opset=20), np.isinf(wide))
    got = run("IsInf", to_ferry_array(x), opset=20, detect_positive=0)
    np.testing.assert_array_equal(got, np.isneginf(wide))


def test_unsupported_exotic_type_is_rejected():
    x = to_ferry_array(np.array([1, -2], dtype=ml_dtypes.int4))
    with pytest.raises(ferry.ExecutionError, match="int4"):
        run("Exp", x, opset=13)


# ---------------------------------------------------------------------------------------
# Shapes, strings and misc.


def test_strings_and_scalars():
    a = np.array(["a", "b", "c"], dtype=object)
    np.testing.assert_array_equal(
        run("Equal", a, np.array("b", dtype=object), opset=19), [False, True, False]
    )
    picked = run("Where", np.array([True, False, True]), a, np.array("z", dtype=object), opset=16)
    assert picked.tolist() == ["a", "z", "c"]
    scalar = run("Add", np.array(1.5, np.float32), np.array(2.0, np.float32), opset=14)
    assert scalar.shape == () and scalar.dtype == np.float32


def test_variadic_broadcast_and_single_input_copy():
    a = np.ones((2, 1), dtype=np.float32)
    b = np.arange(3, dtype=np.float32)
    assert run("Sum", a, b, a, opset=13).shape == (2, 3)
    lone = run("Min", a, opset=13)
    np.testing.assert_array_equal(lone, a)
    assert lone is not a


def test_cumulative_exclusive_reverse():
    x = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int32)
    got = run("CumSum", x, np.array([1], np.int64), opset=14, exclusive=1, reverse=1)
    np.testing.assert_array_equal(got, [[5, 3, 0], [11, 6, 0]])
    assert got.dtype == np.int32
    got = run("CumProd", x, np.array(-2, np.int32), opset=26, exclusive=1)
    np.testing.assert_array_equal(got, [[1, 1, 1], [1, 2, 3]])
    with pytest.raises(ferry.ExecutionError, match="out of range"):
        run("CumSum", x, np.array(2), opset=14)


def test_shrink_on_integers_and_thresholds():
    x = np.array([-5, -1, 0, 1, 5], dtype=np.int32)
    got = run("Shrink", x, opset=9, lambd=1.5, bias=1.0)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, [-4, 0, 0, 0, 4])


def test_empty_inputs_and_one_element_clip_bounds():
    empty = np.zeros((0, 3), dtype=np.float32)
    assert run("Softmax", empty, opset=13).shape == (0, 3)
    assert run("Gelu", empty, opset=20).shape == (0, 3)
    assert run("CumSum", empty, np.array(0), opset=14).shape == (0, 3)
    x = np.array(5, dtype=np.float32)
    bound = np.array([2], dtype=np.float32)
    got = run("Clip", x, None, bound, opset=13)
    assert got.shape == () and got == 2


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
def test_softmax_16bit_rounds_each_step_like_the_reference(dtype):
    x = RNG.normal(0, 3, size=(5, 7)).astype(dtype)
    e = np.exp(x - x.max(axis=-1, keepdims=True))  # numpy / ml_dtypes arithmetic in dtype
    want = to_ferry_array((e / e.sum(axis=-1, keepdims=True)).astype(dtype))
    got = run("Softmax", to_ferry_array(x), opset=13)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16))
