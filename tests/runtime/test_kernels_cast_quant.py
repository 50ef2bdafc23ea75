"""Cast, CastLike, BitCast and the quantization kernels: official node cases and edge cases."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.numpy_helper
import pytest
from onnx import TensorProto, helper

from ferry.ir.dtypes import DataType
from ferry.ir.minifloat import from_float32, int_values, to_float32
from tests.runtime.node_harness import node_case_test, run_node

OPS = {
    "Cast",
    "CastLike",
    "BitCast",
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
    "QLinearMatMul",
    "MatMulInteger",
}
SKIPS: dict[str, str] = {}


def _as_array(value):
    """Case data as numpy: many cast/quantize cases hold TensorProtos or numpy scalars."""
    if isinstance(value, onnx.TensorProto):
        return onnx.numpy_helper.to_array(value)
    if isinstance(value, np.generic):
        return np.asarray(value)
    return value


test_node_case = node_case_test(OPS, SKIPS)


# ------------------------------------------------------------------ hand-written edge cases


def run(op: str, inputs: list, opset: int, outputs: int = 1, **attributes):
    """Run one node of ``op`` at ``opset`` through the registry (None = omitted input)."""
    names = ["" if value is None else f"in{i}" for i, value in enumerate(inputs)]
    scope = {name: value for name, value in zip(names, inputs) if name}
    node = helper.make_node(op, names, [f"out{i}" for i in range(outputs)], **attributes)
    results = run_node(node, {"": opset}, scope)
    return results[0] if outputs == 1 else results


def exotic(values, code: DataType, **kwargs):
    return from_float32(np.asarray(values, dtype=np.float64), code, **kwargs)


def bits(array) -> list[int]:
    return array.view(array.dtype.fields[array.dtype.names[0]][0]).astype(int).ravel().tolist()


class TestCast:
    def test_opset1_string_to(self):
        y = run("Cast", [np.array([1.7, -2.2], np.float32)], 1, to="INT32")
        assert y.dtype == np.int32 and y.tolist() == [1, -2]

    def test_integer_overflow_wraps(self):
        y = run("Cast", [np.array([200, -129, 70000], np.int32)], 13, to=TensorProto.INT8)
        assert y.tolist() == [-56, 127, 112]

    def test_bool_conversions(self):
        y = run("Cast", [np.array([0.0, -0.0, 0.5, np.nan], np.float32)], 13, to=TensorProto.BOOL)
        assert y.tolist() == [False, False, True, True]
        z = run("Cast", [np.array([True, False])], 13, to=TensorProto.FLOAT16)
        assert z.dtype == np.float16 and z.tolist() == [1.0, 0.0]

    def test_strings_to_numbers(self):
        text = np.array(["+INF", "inf", "-Inf", "NaN", "1e-5", "1E8", " 3.25 "], dtype=object)
        y = run("Cast", [text], 13, to=TensorProto.FLOAT)
        assert y.dtype == np.float32
        np.testing.assert_array_equal(
            y, np.array([np.inf, np.inf, -np.inf, np.nan, 1e-5, 1e8, 3.25], np.float32)
        )
        ints = np.array(["100.5", "-7", "9223372036854775807", "300"], dtype=object)
        assert run("Cast", [ints], 13, to=TensorProto.INT64).tolist() == [100, -7, 2**63 - 1, 300]
        assert run("Cast", [ints[[0, 1, 3]]], 13, to=TensorProto.INT8).tolist() == [100, -7, 44]
        flags = np.array(["true", "False", "0", "2.5"], dtype=object)
        assert run("Cast", [flags], 13, to=TensorProto.BOOL).tolist() == [True, False, False, True]

    def test_numbers_to_strings(self):
        x = np.array([0.47892547, np.nan, np.inf, -np.inf, 1e-7, 3.0], np.float32)
        y = run("Cast", [x], 13, to=TensorProto.STRING)
        assert y.dtype == object
        assert y.tolist() == ["0.47892547", "nan", "inf", "-inf", "1e-07", "3.0"]
        assert run("Cast", [np.array([-3, 12], np.int64)], 13, to=TensorProto.STRING).tolist() == [
            "-3",
            "12",
        ]
        half = run("Cast", [np.array([0.1], np.float16)], 13, to=TensorProto.STRING)
        assert half.tolist() == ["0.1"]
        back = run("Cast", [y], 13, to=TensorProto.FLOAT)
        np.testing.assert_array_equal(back, x)

    def test_exotic_to_string_and_back(self):
        x = exotic([0.5, -448.0, np.nan], DataType.FLOAT8E4M3FN)
        text = run("Cast", [x], 19, to=TensorProto.STRING)
        assert text.tolist() == ["0.5", "-448.0", "nan"]
        again = run("Cast", [text], 19, to=TensorProto.FLOAT8E4M3FN)
        assert bits(again) == bits(x)
        ints = run("Cast", [np.array(["-8", "7", "9"], dtype=object)], 21, to=TensorProto.INT4)
        assert int_values(ints).tolist() == [-8, 7, -7]

    def test_float8_saturation(self):
        x = np.array([1e6, -1e6, np.inf, -np.inf, np.nan, 0.3], np.float32)
        sat = run("Cast", [x], 19, to=TensorProto.FLOAT8E4M3FN)
        np.testing.assert_array_equal(to_float32(sat)[:4], [448, -448, 448, -448])
        raw = run("Cast", [x], 19, to=TensorProto.FLOAT8E4M3FN, saturate=0)
        assert np.isnan(to_float32(raw)[:5]).all()
        e5 = run("Cast", [x], 19, to=TensorProto.FLOAT8E5M2, saturate=0)
        np.testing.assert_array_equal(to_float32(e5)[:4], [np.inf, -np.inf, np.inf, -np.inf])
        uz = run("Cast", [np.array([-0.0, -1e-9], np.float32)], 19, to=TensorProto.FLOAT8E4M3FNUZ)
        assert bits(uz) == [0, 0]  # no negative zero in FNUZ

    def test_float8e8m0_round_modes(self):
        x = np.array([0.0, 0.124, 1.1, 1.5, 3.0, 6.5, np.inf], np.float32)
        up = run("Cast", [x], 24, to=TensorProto.FLOAT8E8M0)
        assert bits(up) == [0, 124, 128, 128, 129, 130, 254]
        down = run("Cast", [x], 24, to=TensorProto.FLOAT8E8M0, round_mode="down")
        assert bits(down) == [0, 123, 127, 127, 128, 129, 254]
        nearest = run("Cast", [x], 24, to=TensorProto.FLOAT8E8M0, round_mode="nearest", saturate=0)
        assert bits(nearest) == [255, 124, 127, 128, 129, 130, 255]

    def test_between_exotic_types(self):
        x = exotic([1.0, -2.5, 0.3, 300.0], DataType.BFLOAT16)
        y = run("Cast", [x], 21, to=TensorProto.FLOAT8E4M3FN)
        np.testing.assert_array_equal(to_float32(y), [1.0, -2.5, 0.3125, 288.0])
        u4 = run(
            "Cast", [from_float32(np.array([3.0, 15.0]), DataType.UINT4)], 21, to=TensorProto.INT4
        )
        assert int_values(u4).tolist() == [3, -1]  # integer to integer wraps
        f6 = run("Cast", [np.array([7.9, -0.3, 100.0], np.float32)], 28, to=TensorProto.FLOAT6E2M3)
        np.testing.assert_array_equal(to_float32(f6), [7.5, -0.25, 7.5])
        dbl = run("Cast", [np.array([1 + 2.0**-8 + 2.0**-40])], 13, to=TensorProto.BFLOAT16)
        np.testing.assert_array_equal(to_float32(dbl), [1 + 2.0**-7])  # one rounding

    def test_same_type_copies(self):
        x = np.arange(3, dtype=np.int64)
        y = run("Cast", [x], 13, to=TensorProto.INT64)
        assert y is not x and y.tolist() == [0, 1, 2]

    def test_castlike_uses_target_type(self):
        y = run("CastLike", [np.array([1.5], np.float32), np.array([], dtype=object)], 15)
        assert y.dtype == object and y.tolist() == ["1.5"]
        target = exotic([], DataType.FLOAT8E5M2)
        z = run("CastLike", [np.array([1e6], np.float32), target], 19, saturate=0)
        assert to_float32(z).tolist() == [np.inf]


class TestBitCast:
    def test_plain_types(self):
        x = np.array([1.0, -2.0], np.float32)
        assert run("BitCast", [x], 26, to=TensorProto.INT32).tolist() == x.view(np.int32).tolist()
        c = run("BitCast", [np.array([1.5 + 2j], np.complex64)], 26, to=TensorProto.UINT64)
        assert c.dtype == np.uint64

    def test_exotic_types(self):
        half = np.array([1.0, -0.5], np.float16)
        as_bf16 = run("BitCast", [half], 26, to=TensorProto.BFLOAT16)
        assert bits(as_bf16) == half.view(np.uint16).tolist()
        back = run("BitCast", [as_bf16], 26, to=TensorProto.FLOAT16)
        np.testing.assert_array_equal(back, half)
        u4 = from_float32(np.array([15.0, 8.0, 1.0]), DataType.UINT4)
        i4 = run("BitCast", [u4], 26, to=TensorProto.INT4)
        assert int_values(i4).tolist() == [-1, -8, 1]
        f4 = run("BitCast", [i4], 26, to=TensorProto.FLOAT4E2M1)
        np.testing.assert_array_equal(to_float32(f4), [-6.0, -0.0, 0.5])
        f8 = run("BitCast", [np.array([0x7E, 0x80], np.uint8)], 26, to=TensorProto.FLOAT8E4M3FN)
        np.testing.assert_array_equal(to_float32(f8), [448.0, -0.0])

    def test_width_mismatch(self):
        with pytest.raises(ValueError, match="bits wide"):
            run("BitCast", [np.array([1], np.int32)], 26, to=TensorProto.INT64)


class TestQuantize:
    def test_old_opset_per_tensor(self):
        x = np.array([-1.0, 0.5, 300.0], np.float32)
        y = run("QuantizeLinear", [x, np.float32(0.5), np.uint8(10)], 10)
        assert y.dtype == np.uint8 and y.tolist() == [8, 11, 255]
        z = run("QuantizeLinear", [x, np.array(0.5, np.float32)], 10)  # default uint8
        assert z.dtype == np.uint8 and z.tolist() == [0, 1, 255]

    def test_round_half_to_even(self):
        x = np.array([0.5, 1.5, 2.5, -0.5, -1.5], np.float32)
        y = run("QuantizeLinear", [x, np.float32(1), np.int8(0)], 13)
        assert y.tolist() == [0, 2, 2, 0, -2]

    def test_negative_axis_and_int32_input(self):
        x = np.arange(6, dtype=np.int32).reshape(2, 3)
        scale = np.array([1.0, 2.0, 4.0], np.float32)
        y = run("QuantizeLinear", [x, scale, np.zeros(3, np.int8)], 13, axis=-1)
        assert y.tolist() == [[0, 0, 0], [3, 2, 1]]

    def test_blocked_with_partial_block(self):
        x = np.arange(5, dtype=np.float32).reshape(1, 5) * 2
        scale = np.array([[1.0, 2.0]], np.float32)  # blocks of 3: [0, 3), [3, 5)
        y = run(
            "QuantizeLinear", [x, scale], 21, axis=1, block_size=3, output_dtype=TensorProto.INT8
        )
        assert y.tolist() == [[0, 2, 4, 3, 4]]

    def test_float16_scale_sets_precision(self):
        x = np.array([1000.3], np.float32)
        scale = np.float16(0.1)
        y = run("QuantizeLinear", [x, scale, np.uint16(0)], 21)
        # 1000.3 / 0.1 in float16 is 10000 (float32 would give 10003)
        assert y.tolist() == [np.uint16(np.rint(np.float16(1000.3) / scale))]
        z = run("QuantizeLinear", [x, scale, np.uint16(0)], 23, precision=TensorProto.FLOAT)
        assert z.tolist() == [int(np.rint(np.float32(1000.3) / np.float32(scale)))]

    def test_sub_byte_and_float_outputs(self):
        x = np.array([-20.0, -3.0, 2.0, 20.0], np.float32)
        i4 = run("QuantizeLinear", [x, np.float32(1.0)], 21, output_dtype=TensorProto.INT4)
        assert i4.dtype == DataType.INT4.numpy and int_values(i4).tolist() == [-8, -3, 2, 7]
        u2 = run("QuantizeLinear", [x, np.float32(1.0)], 25, output_dtype=TensorProto.UINT2)
        assert int_values(u2).tolist() == [0, 0, 2, 3]
        f8 = run(
            "QuantizeLinear",
            [x * 100, np.float32(1.0)],
            21,
            output_dtype=TensorProto.FLOAT8E4M3FN,
            saturate=0,
        )
        assert np.isnan(to_float32(f8)[[0, 3]]).all()
        f6 = run("QuantizeLinear", [x, np.float32(1.0)], 28, output_dtype=TensorProto.FLOAT6E3M2)
        np.testing.assert_array_equal(to_float32(f6), [-20.0, -3.0, 2.0, 20.0])

    def test_e8m0_scale(self):
        scale = exotic([0.25], DataType.FLOAT8E8M0, round_mode="up")
        y = run(
            "QuantizeLinear",
            [np.array([1.0, -1.0], np.float32), scale],
            24,
            output_dtype=TensorProto.INT8,
        )
        assert y.tolist() == [4, -4]

    def test_bfloat16_input(self):
        x = exotic([3.0, -6.0], DataType.BFLOAT16)
        y = run("QuantizeLinear", [x, exotic(2.0, DataType.BFLOAT16), np.int8(1)], 19)
        assert y.tolist() == [3, -2]


class TestDequantize:
    def test_int32_without_zero_point(self):
        y = run("DequantizeLinear", [np.array([-5, 2**24 + 1], np.int32), np.float32(0.5)], 10)
        assert y.dtype == np.float32 and y.tolist() == [
            -2.5,
            np.float32(0.5) * np.float32(2**24 + 1),
        ]

    def test_uint16_zero_point_is_exact(self):
        y = run("DequantizeLinear", [np.array([65535], np.uint16), np.float32(1), np.uint16(1)], 21)
        assert y.tolist() == [65534.0]

    def test_output_dtype_bfloat16(self):
        y = run(
            "DequantizeLinear",
            [np.array([3], np.int8), np.float32(0.1)],
            23,
            output_dtype=TensorProto.BFLOAT16,
        )
        assert y.dtype == DataType.BFLOAT16.numpy
        np.testing.assert_array_equal(
            to_float32(y), to_float32(exotic(np.float32(0.1) * 3, DataType.BFLOAT16))
        )

    def test_blocked_partial_and_per_axis(self):
        x = np.arange(5, dtype=np.uint8).reshape(5, 1)
        scale = np.array([[1.0], [10.0]], np.float32)
        y = run("DequantizeLinear", [x, scale], 21, axis=0, block_size=3)
        assert y.ravel().tolist() == [0, 1, 2, 30, 40]
        per_axis = run(
            "DequantizeLinear", [x.reshape(1, 5), np.arange(5, dtype=np.float32)], 13, axis=-1
        )
        assert per_axis.ravel().tolist() == [0, 1, 4, 9, 16]

    def test_float8_with_e8m0_scale(self):
        x = exotic([1.5, -448.0], DataType.FLOAT8E4M3FN)
        scale = exotic([4.0], DataType.FLOAT8E8M0)
        y = run("DequantizeLinear", [x, scale], 24, output_dtype=TensorProto.FLOAT16)
        assert y.dtype == np.float16 and y.tolist() == [6.0, -1792.0]


def test_dynamic_quantize_all_zero():
    y, scale, zero_point = run(
        "DynamicQuantizeLinear", [np.zeros((2, 2), np.float32)], 11, outputs=3
    )
    assert y.tolist() == [[0, 0], [0, 0]] and scale.dtype == np.float32
    assert float(scale) == 0 and zero_point.dtype == np.uint8 and int(zero_point) == 0


class TestMatMul:
    def test_matmul_integer_per_row_and_column_zero_points(self):
        a = np.array([[1, 2], [3, 4], [5, 6]], np.int8)
        b = np.array([[7, 8], [9, 10]], np.uint8)
        a_zp = np.array([1, 2, 3], np.int8)
        b_zp = np.array([7, 0], np.uint8)
        y = run("MatMulInteger", [a, b, a_zp, b_zp], 10)
        want = (a.astype(int) - a_zp[:, None]) @ (b.astype(int) - b_zp)
        assert y.dtype == np.int32 and y.tolist() == want.tolist()
        batched = run("MatMulInteger", [np.stack([a, a]), b], 10)
        assert batched.shape == (2, 3, 2)

    def test_qlinear_matmul_float8(self):
        a = exotic([[1.0, 2.0]], DataType.FLOAT8E4M3FN)
        b = exotic([[3.0], [0.5]], DataType.FLOAT8E4M3FN)
        zero = exotic(0.0, DataType.FLOAT8E4M3FN)
        one = np.float32(1.0)
        y = run("QLinearMatMul", [a, one, zero, b, one, zero, np.float32(0.5), zero], 21)
        assert y.dtype == DataType.FLOAT8E4M3FN.numpy
        assert to_float32(y).tolist() == [[8.0]]

    def test_qlinear_matmul_per_row_scale(self):
        a = np.array([[1, 1], [2, 2]], np.uint8)
        b = np.array([[1], [1]], np.uint8)
        y = run(
            "QLinearMatMul",
            [
                a,
                np.array([1.0, 3.0], np.float32),
                np.uint8(0),
                b,
                np.float32(1),
                np.uint8(0),
                np.float32(1),
                np.uint8(0),
            ],
            10,
        )
        assert y.tolist() == [[2], [12]]
