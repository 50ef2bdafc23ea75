"""Tensor layout, indexing and creation kernels: official node cases plus edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from ferry.ir.dtypes import DataType
from ferry.runtime.registry import lookup
from tests.runtime.node_harness import node_case_test

OPS = {
    # layout
    "Shape", "Size", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat",
    "Split", "Slice", "Expand", "Tile", "Pad", "CenterCropPad", "Identity", "DepthToSpace",
    "SpaceToDepth", "ReverseSequence", "Col2Im",
    # indexing
    "Gather", "GatherElements", "GatherND", "Scatter", "ScatterElements", "ScatterND",
    "TensorScatter", "Compress", "NonZero", "OneHot", "Trilu",
    # creation
    "Constant", "ConstantOfShape", "EyeLike", "Range",
}  # fmt: skip

SKIPS: dict[str, str] = {}


test_node_case = node_case_test(OPS, SKIPS)


def run(op, opset, *inputs, **attributes):
    """Call the kernel in force at ``opset`` the way the session does (context filled in)."""
    k = lookup("", op, opset)
    context = {"_num_outputs": attributes.pop("_num_outputs", 1), "_opset": opset}
    attributes.update({name: context[name] for name in k.context})
    return k(*inputs, **attributes)


def arr(*values, dtype=np.int64):
    return np.array(values, dtype=dtype)


STR = np.array([["a", "b", "c"], ["d", "e", "f"]], dtype=object)
BF16 = DataType.BFLOAT16.numpy


def bf16(bits, shape=None):
    """A bfloat16 array from raw bit patterns."""
    bits = np.asarray(bits, dtype=np.uint16)
    out = np.empty(bits.shape, dtype=BF16)
    out["bfloat16"] = bits
    return out if shape is None else out.reshape(shape)


def bits(x):
    return np.asarray(x)["bfloat16"].tolist()


# ---------------------------------------------------------------------------- strings


def test_strings_move_through_layout_ops():
    assert run("Reshape", 14, STR, arr(3, -1), allowzero=0).tolist() == [["a", "b"], ["c", "d"], ["e", "f"]]
    assert run("Transpose", 13, STR, perm=None).tolist() == [["a", "d"], ["b", "e"], ["c", "f"]]
    assert run("Concat", 13, STR, STR[:1], axis=0).shape == (3, 3)
    first, second = run("Split", 18, STR, None, axis=1, num_outputs=2, _num_outputs=2)
    assert first.tolist() == [["a", "b"], ["d", "e"]] and second.tolist() == [["c"], ["f"]]
    assert run("Slice", 13, STR, arr(-1), arr(-4), arr(1), arr(-2)).tolist() == [["c", "a"], ["f", "d"]]
    assert run("Tile", 13, STR[:, :1], arr(1, 2)).tolist() == [["a", "a"], ["d", "d"]]
    assert run("Expand", 13, STR[:1, :1], arr(2, 2)).tolist() == [["a", "a"], ["a", "a"]]
    assert run("Unsqueeze", 13, STR, arr(0)).shape == (1, 2, 3)
    assert run("Identity", 16, STR)[0] is STR
    for out in (run("Reshape", 14, STR, arr(6), allowzero=0), run("Concat", 13, STR, STR, axis=1)):
        assert out.dtype == object


def test_strings_pad_and_index():
    padded = run("Pad", 25, STR, arr(0, 1, 0, 0), None, None, mode="constant")
    assert padded.tolist() == [["", "a", "b", "c"], ["", "d", "e", "f"]]
    filled = run("Pad", 25, STR, arr(1, 0), np.array("z", dtype=object), arr(0), mode="constant")
    assert filled[0].tolist() == ["z", "z", "z"]
    assert run("Pad", 25, STR, arr(0, 1, 0, 1), None, None, mode="reflect")[0].tolist() == ["b", "a", "b", "c", "b"]
    assert run("Gather", 13, STR, arr(-1), axis=1).tolist() == [["c"], ["f"]]
    assert run("GatherND", 13, STR, arr(1, 2).reshape(1, 2), batch_dims=0).tolist() == ["f"]
    updated = run("ScatterND", 18, STR, arr(0, 0).reshape(1, 2), np.array(["x"], dtype=object), reduction="none")
    assert updated.tolist() == [["x", "b", "c"], ["d", "e", "f"]] and STR[0, 0] == "a"
    assert run("Compress", 28, STR, np.array([False, True]), axis=0).tolist() == [["d", "e", "f"]]
    assert run("Trilu", 14, STR, None, upper=1).tolist() == [["a", "b", "c"], ["", "e", "f"]]
    assert run("NonZero", 13, np.array(["", "x"], dtype=object)).tolist() == [[1]]


# ---------------------------------------------------------------------------- exotic dtypes


def test_bfloat16_moves_without_arithmetic():
    x = bf16([0x3F80, 0x4000, 0x4040, 0x4080, 0x40A0, 0x40C0], (2, 3))
    assert bits(run("Transpose", 25, x, perm=[1, 0])) == [[0x3F80, 0x4080], [0x4000, 0x40A0], [0x4040, 0x40C0]]
    assert run("Reshape", 25, x, arr(-1), allowzero=0).dtype == BF16
    assert run("Concat", 13, x, x, axis=0).dtype == BF16
    assert bits(run("Gather", 13, x, arr(-1), axis=0)) == [[0x4080, 0x40A0, 0x40C0]]
    assert bits(run("Pad", 25, x[:1], arr(0, 1, 0, 0), None, None, mode="constant"))[0][0] == 0
    padded = run("Pad", 25, x[:1], arr(0, 1, 0, 0), bf16(0xBF80), None, mode="constant")
    assert bits(padded)[0][0] == 0xBF80 and padded.dtype == BF16
    assert bits(run("Pad", 25, x[:1], arr(0, 0, 0, 2), None, None, mode="edge"))[0][-1] == 0x4040
    scattered = run("ScatterElements", 18, x, arr(1, 0).reshape(1, 2), bf16([1, 2], (1, 2)), axis=0, reduction="none")
    assert bits(scattered) == [[0x3F80, 2, 0x4040], [1, 0x40A0, 0x40C0]]
    assert bits(run("Trilu", 14, x, arr(0), upper=0)) == [[0x3F80, 0, 0], [0x4080, 0x40A0, 0]]
    assert bits(run("ReverseSequence", 28, x, arr(3, 1), batch_axis=0, time_axis=1))[0] == [0x4040, 0x4000, 0x3F80]


def test_nonzero_of_exotic_types_treats_negative_zero_as_zero():
    assert run("NonZero", 13, bf16([0x0000, 0x8000, 0x0001, 0x3F80])).tolist() == [[2, 3]]
    fnuz = DataType.FLOAT8E4M3FNUZ.numpy
    x = np.zeros(3, dtype=fnuz)
    x[fnuz.names[0]] = [0x00, 0x80, 0x01]  # 0x80 is NaN in the fnuz types
    assert run("NonZero", 13, x).tolist() == [[1, 2]]


def test_creation_of_bfloat16():
    assert bits(run("EyeLike", 22, np.zeros((2, 2), np.float32), dtype=int(DataType.BFLOAT16), k=0)) == [
        [0x3F80, 0], [0, 0x3F80]]
    out = run("ConstantOfShape", 25, arr(2), value=bf16([0x4000]))
    assert out.dtype == BF16 and bits(out) == [0x4000, 0x4000]
    assert bits(run("Range", 27, bf16(0x3F80), bf16(0x4080), bf16(0x3F80), stash_type=1)) == [0x3F80, 0x4000, 0x4040]


# ---------------------------------------------------------------------------- old opsets


def test_attribute_era_versions():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    assert run("Reshape", 1, x, shape=[0, -1], consumed_inputs=None).shape == (2, 12)
    assert run("Squeeze", 1, x[:1], axes=[0]).shape == (3, 4)
    assert run("Squeeze", 11, x[:, :1, :1], axes=None).shape == (2,)
    assert run("Unsqueeze", 1, x, axes=[0, 4]).shape == (1, 2, 3, 4, 1)
    assert run("Slice", 1, x, starts=[1, -2], ends=[1000, -1], axes=[1, 2]).tolist() == x[:, 1:, 2:3].tolist()
    assert run("Slice", 1, x, starts=[1], ends=[2], axes=None).shape == (1, 3, 4)
    assert run("Concat", 1, x, x, axis=None).shape == (2, 6, 4)  # opset 1 defaults axis to 1
    parts = run("Split", 2, x, axis=2, split=[1, 3], _num_outputs=2)
    assert [p.shape for p in parts] == [(2, 3, 1), (2, 3, 3)]
    parts = run("Split", 1, x, np.array([2.0, 2.0], np.float32), axis=2, split=None, _num_outputs=2)
    assert [p.shape for p in parts] == [(2, 3, 2), (2, 3, 2)]
    assert [p.shape for p in run("Split", 11, x, axis=1, split=None, _num_outputs=3)] == [(2, 1, 4)] * 3
    assert run("Tile", 1, x, np.array(2), np.array(1)).shape == (2, 6, 4)
    assert run("Shape", 1, x).tolist() == [2, 3, 4]
    assert run("DepthToSpace", 1, np.zeros((1, 8, 2, 2), np.float32), blocksize=2).shape == (1, 2, 4, 4)
    assert run("Scatter", 9, np.zeros((2, 2), np.float32), arr(1, 0).reshape(1, 2), np.ones((1, 2), np.float32),
               axis=0).tolist() == [[0, 1], [1, 0]]
    assert run("GatherND", 11, x, arr(1, 2).reshape(1, 2)).tolist() == [x[1, 2].tolist()]


def test_pad_versions():
    x = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    out = run("Pad", 1, x, paddings=[0, 1, 0, 0], mode="constant", value=9.0)
    assert out.tolist() == [[9, 1, 2], [9, 3, 4]] and out.dtype == np.float32
    assert run("Pad", 2, x, pads=[0, -1, 1, 1], mode="constant", value=0.0).tolist() == [[2, 0], [4, 0], [0, 0]]
    assert run("Pad", 2, x, pads=[1, 0, 0, 0], mode="edge", value=0.0).tolist() == [[1, 2], [1, 2], [3, 4]]
    assert run("Pad", 11, x, arr(0, 1, 0, 0), np.array(5.0, np.float32), mode="constant").tolist() == [
        [5, 1, 2], [5, 3, 4]]
    assert run("Pad", 19, x, arr(2, 0), None, arr(-1), mode="wrap").tolist() == [[1, 2, 1, 2], [3, 4, 3, 4]]
    with pytest.raises(ValueError, match="mode"):
        run("Pad", 19, x, arr(0, 0, 0, 0), None, None, mode="mirror")


def test_one_hot_negative_indices_by_version():
    values = np.array([0, 1], np.int32)
    assert run("OneHot", 9, arr(-1, 1), arr(3), values, axis=-1).tolist() == [[0, 0, 0], [0, 1, 0]]
    assert run("OneHot", 11, arr(-1, 1), arr(3), values, axis=-1).tolist() == [[0, 0, 1], [0, 1, 0]]
    assert run("OneHot", 11, np.array([2.7], np.float32), np.array(3.0), values, axis=0).tolist() == [[0], [0], [1]]


# ---------------------------------------------------------------------------- newer attributes


def test_split_without_sizes_uses_output_count():
    x = np.arange(7)
    assert [p.tolist() for p in run("Split", 18, x, None, axis=0, num_outputs=3, _num_outputs=3)] == [
        [0, 1, 2], [3, 4, 5], [6]]
    assert [p.size for p in run("Split", 18, x[:6], None, axis=0, num_outputs=None, _num_outputs=2)] == [3, 3]
    assert [p.size for p in run("Split", 13, x, arr(0, 7), axis=0, _num_outputs=2)] == [0, 7]
    with pytest.raises(ValueError, match="evenly"):
        run("Split", 13, x, None, axis=0, _num_outputs=2)
    with pytest.raises(ValueError, match="sum"):
        run("Split", 13, x, arr(3, 3), axis=0, _num_outputs=2)


def test_slice_clamping_and_negative_steps():
    x = np.arange(5)
    big, small = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    assert run("Slice", 13, x, arr(big), arr(small), None, arr(-1)).tolist() == [4, 3, 2, 1, 0]
    assert run("Slice", 13, x, arr(-1), arr(-6), None, arr(-2)).tolist() == [4, 2, 0]
    assert run("Slice", 13, x, arr(10), arr(20), None, None).tolist() == []
    with pytest.raises(ValueError, match="0"):
        run("Slice", 13, x, arr(0), arr(2), None, arr(0))


def test_shape_start_end_and_reshape_allowzero():
    x = np.zeros((2, 3, 4))
    assert run("Shape", 15, x, start=-2, end=None).tolist() == [3, 4]
    assert run("Shape", 15, x, start=5, end=1).tolist() == []
    assert run("Shape", 13, x).dtype == np.int64
    assert run("Size", 13, x).shape == () and run("Size", 13, x).dtype == np.int64
    assert run("Reshape", 14, np.zeros((0, 4)), arr(4, 0), allowzero=1).shape == (4, 0)
    assert run("Reshape", 13, np.zeros((0, 4)), arr(0, 2, 2)).shape == (0, 2, 2)
    assert run("Reshape", 13, np.zeros((2, 4)), arr(-1, 0)).shape == (2, 4)
    with pytest.raises(ValueError, match="infer"):
        run("Reshape", 14, x, arr(5, -1), allowzero=0)
    with pytest.raises(ValueError, match="reshape"):
        run("Reshape", 14, x, arr(5, 5), allowzero=0)


def test_scatter_reductions():
    data = np.array([1.0, 2.0, 3.0], np.float32)
    idx = arr(0, 0, 2)
    upd = np.array([5.0, 7.0, -1.0], np.float32)
    expected = {"add": [13, 2, 2], "mul": [35, 2, -3], "max": [7, 2, 3], "min": [1, 2, -1]}
    for reduction, want in expected.items():
        out = run("ScatterElements", 18, data, idx, upd, axis=0, reduction=reduction)
        assert out.tolist() == want and out.dtype == np.float32
        out = run("ScatterND", 18, data, idx.reshape(3, 1), upd, reduction=reduction)
        assert out.tolist() == want
    assert data.tolist() == [1.0, 2.0, 3.0]


def test_tensor_scatter_linear_and_circular():
    cache = np.zeros((2, 4, 1), np.float32)
    update = np.ones((2, 2, 1), np.float32)
    out = run("TensorScatter", 24, cache, update, arr(3, 1), axis=1, mode="circular")
    assert out[..., 0].tolist() == [[1, 0, 0, 1], [0, 1, 1, 0]]
    with pytest.raises(ValueError, match="overflows"):
        run("TensorScatter", 24, cache, update, arr(3, 1), axis=1, mode="linear")
    assert run("TensorScatter", 24, cache, update, None, axis=-2, mode="linear")[..., 0].tolist() == [
        [1, 1, 0, 0], [1, 1, 0, 0]]


# ---------------------------------------------------------------------------- Constant


def test_constant_attribute_forms():
    none = dict.fromkeys(("sparse_value", "value_float", "value_floats", "value_int", "value_ints",
                          "value_string", "value_strings"))  # fmt: skip

    def constant(**given):
        return run("Constant", 13, **{**none, "value": None, **given})

    assert constant(value_float=1.5).dtype == np.float32 and constant(value_float=1.5).shape == ()
    assert constant(value_floats=[1.0, 2.0]).dtype == np.float32
    assert constant(value_int=3).dtype == np.int64 and constant(value_ints=[1, 2]).shape == (2,)
    assert constant(value_string="hi").tolist() == "hi" and constant(value_string="hi").dtype == object
    assert constant(value_strings=["a", "b"]).tolist() == ["a", "b"]
    tensor = bf16([1, 2])
    assert constant(value=tensor) is tensor
    assert run("Constant", 1, value=np.arange(3)).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="exactly one"):
        constant(value_int=1, value_float=1.0)
    with pytest.raises(TypeError, match="sparse"):
        constant(sparse_value=object())


def test_constant_sparse_value_densifies():
    from ferry.ir.tensor import ArrayTensor, SparseTensor

    sparse = SparseTensor(ArrayTensor(np.array([5.0, 6.0], np.float32)), ArrayTensor(arr(1, 3)), (2, 2))
    none = dict.fromkeys(("value", "value_float", "value_floats", "value_int", "value_ints",
                          "value_string", "value_strings"))  # fmt: skip
    assert run("Constant", 13, sparse_value=sparse, **none).tolist() == [[0, 5], [0, 6]]


# ---------------------------------------------------------------------------- errors


def test_clear_errors():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="out of range"):
        run("Gather", 13, x, arr(3), axis=1)
    with pytest.raises(ValueError, match="out of range"):
        run("GatherElements", 13, x, arr(0, -3).reshape(1, 2), axis=0)
    with pytest.raises(ValueError, match="axis"):
        run("Concat", 13, x, x, axis=2)
    with pytest.raises(ValueError, match="squeeze"):
        run("Squeeze", 13, x, arr(0))
    with pytest.raises(ValueError, match="permutation"):
        run("Transpose", 13, x, perm=[0, 0])
    with pytest.raises(ValueError, match="delta"):
        run("Range", 11, arr(0), arr(3), arr(0))
