"""ferry's value files (.pb) read back in onnx (the oracle) and in ferry."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import ferry
from ferry import ir
from tests.oracle import to_ferry_array

ARRAYS = {
    "float": np.arange(6, dtype=np.float32).reshape(2, 3),
    "int64": np.array([-1, 2**40], dtype=np.int64),
    "bool": np.array([True, False]),
    "float16": np.array([0.5, -2], dtype=np.float16),
    "strings": np.array(["a", "ünï", ""], dtype=object),
    "complex": np.array([1 + 2j], dtype=np.complex64),
    "scalar": np.array(3.5, dtype=np.float64),
    "bfloat16": np.array([0x3F80, 0xC000], np.uint16).view(ir.DataType.BFLOAT16.numpy),
    "int4": np.array([-8, 7, -1], np.int8).view(ir.DataType.INT4.numpy),
    "float8e4m3fn": np.array([0x38, 0x7E], np.uint8).view(ir.DataType.FLOAT8E4M3FN.numpy),
}


@pytest.mark.parametrize("name", ARRAYS)
def test_tensor_round_trip_and_oracle(tmp_path, name):
    array = ARRAYS[name]
    path = tmp_path / "t.pb"
    ferry.save_tensor(array, path, name=name)
    back = ferry.load_tensor(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    assert np.array_equal(back, array)
    oracle = to_ferry_array(numpy_helper.to_array(onnx.load_tensor(str(path))))
    assert oracle.dtype == array.dtype and np.array_equal(oracle, array)


def test_sequence_map_optional_round_trip_and_oracle(tmp_path):
    sequence = [ARRAYS["float"], ARRAYS["float"] * 2]
    ferry.save_sequence(sequence, tmp_path / "s.pb", name="s")
    assert all(np.array_equal(a, b) for a, b in zip(ferry.load_sequence(tmp_path / "s.pb"), sequence))
    oracle = numpy_helper.to_list(onnx.SequenceProto.FromString((tmp_path / "s.pb").read_bytes()))
    assert all(np.array_equal(a, b) for a, b in zip(oracle, sequence))

    mapping = {1: np.array(1.5, np.float32), 7: np.array(-2.0, np.float32)}
    ferry.save_map(mapping, tmp_path / "m.pb")
    oracle = numpy_helper.to_dict(onnx.MapProto.FromString((tmp_path / "m.pb").read_bytes()))
    assert oracle.keys() == mapping.keys() and ferry.load_map(tmp_path / "m.pb").keys() == mapping.keys()

    ferry.save_optional(None, tmp_path / "empty.pb")
    assert ferry.load_optional(tmp_path / "empty.pb") is None
    ferry.save_optional(sequence, tmp_path / "o.pb")
    assert len(ferry.load_optional(tmp_path / "o.pb")) == 2
    oracle = numpy_helper.to_optional(onnx.OptionalProto.FromString((tmp_path / "o.pb").read_bytes()))
    assert len(oracle) == 2
