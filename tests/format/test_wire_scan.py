"""Loading takes the main graph's large raw_data off the wire before protobuf parses the
rest (ferry.format.wire); the result must be what a plain protobuf parse gives."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import ferry
from ferry.format import ferry_onnx_pb2 as pb
from ferry.format import load, model_from_bytes, model_to_bytes
from ferry.format.wire import (
    MIN_STRIPPED,
    FileReader,
    MemoryReader,
    WireMismatch,
    strip_initializer_data,
)

RNG = np.random.default_rng(0)
DTYPES = [np.float32, np.float64, np.int64, np.int8, np.float16, np.int32, np.uint8, np.bool_]


def _weights() -> dict[str, np.ndarray]:
    arrays = {}
    for index, dtype in enumerate(DTYPES):
        size = (MIN_STRIPPED // np.dtype(dtype).itemsize + 3 + index, 1)  # odd sizes: unaligned
        arrays[f"w{index}"] = (RNG.standard_normal(size) * 10).astype(dtype)
    arrays["small"] = np.arange(5, dtype=np.float32)
    return arrays


def _onnx_model(weights: dict[str, np.ndarray], *, doc_after_raw: bool = False) -> onnx.ModelProto:
    """Identity per weight; ``doc_after_raw`` gives each tensor a field after raw_data."""
    inits = [numpy_helper.from_array(array, name) for name, array in weights.items()]
    if doc_after_raw:
        for tensor in inits:
            tensor.doc_string = "after raw_data"
    nodes = [helper.make_node("Identity", [n], [n + "_out"], name=n + "_op") for n in weights]
    outputs = [helper.make_tensor_value_info(n + "_out", numpy_helper.from_array(a).data_type, None)
               for n, a in weights.items()]
    graph = helper.make_graph(nodes, "g", [], outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def _check_same(model: ferry.Model, reference: onnx.ModelProto) -> None:
    assert len(model.graph.initializers) == len(reference.graph.initializer)
    for tensor in reference.graph.initializer:
        expected = numpy_helper.to_array(tensor)
        value = model.graph.initializers[tensor.name].const_value
        array = value.numpy()
        assert array.dtype == expected.dtype and array.shape == expected.shape
        np.testing.assert_array_equal(array, expected)
        assert array.flags.aligned and not array.flags.writeable
        assert value.wire_field == "raw_data"


@pytest.mark.parametrize("doc_after_raw", [False, True])
def test_file_load_matches_protobuf_and_saves_back_identically(tmp_path, doc_after_raw):
    reference = _onnx_model(_weights(), doc_after_raw=doc_after_raw)
    path = tmp_path / "m.onnx"
    onnx.save(reference, path)
    model = load(path)
    _check_same(model, reference)
    assert model_to_bytes(model) == path.read_bytes()


def test_bytes_load_matches_protobuf_including_unaligned_views():
    reference = _onnx_model(_weights())
    data = reference.SerializeToString()
    views = strip_initializer_data(MemoryReader(data)).raw_data.values()
    assert any(view.ctypes.data % 8 for view in views)  # some start mid-word
    model = model_from_bytes(data)
    _check_same(model, reference)
    assert model_to_bytes(model) == data


def test_stripped_bytes_are_the_model_without_large_raw_data(tmp_path):
    reference = _onnx_model(_weights())
    path = tmp_path / "m.onnx"
    onnx.save(reference, path)
    with FileReader(str(path)) as reader:
        stripped = strip_initializer_data(reader)
    parsed = onnx.ModelProto.FromString(stripped.data)
    assert stripped.initializer_count == len(reference.graph.initializer)
    expected = onnx.ModelProto()
    expected.CopyFrom(reference)
    for index, tensor in enumerate(expected.graph.initializer):
        if len(tensor.raw_data) >= MIN_STRIPPED:
            np.testing.assert_array_equal(
                stripped.raw_data.pop(index), np.frombuffer(tensor.raw_data, np.uint8)
            )
            tensor.ClearField("raw_data")
    assert not stripped.raw_data  # every large one, and only those, was taken
    assert parsed == expected


def test_subgraph_initializers_are_left_to_protobuf():
    big = RNG.standard_normal((600,)).astype(np.float32)
    branch = helper.make_graph(
        [helper.make_node("Identity", ["inner"], ["y"])],
        "then",
        [],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        [numpy_helper.from_array(big, "inner")],
    )
    node = helper.make_node("If", ["c"], ["out"], then_branch=branch, else_branch=branch)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("c", onnx.TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, None)],
        [numpy_helper.from_array(big * 2, "outer")],
    )
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]).SerializeToString()
    stripped = strip_initializer_data(MemoryReader(data))
    assert list(stripped.raw_data) == [0]
    model = model_from_bytes(data)
    inner = model.graph.nodes[0].attributes["then_branch"].value.initializers["inner"]
    np.testing.assert_array_equal(inner.const_value.numpy(), big)
    np.testing.assert_array_equal(model.graph.initializers["outer"].const_value.numpy(), big * 2)
    assert model_to_bytes(model) == data


def _tensor_with_two_raw_data(first: np.ndarray, second: np.ndarray) -> bytes:
    tensor = numpy_helper.from_array(first, "w")
    extra = pb.TensorProto(raw_data=second.tobytes()).SerializeToString()
    return tensor.SerializeToString() + extra  # protobuf: the last raw_data wins


def test_repeated_raw_data_falls_back_to_protobuf_semantics():
    first = np.arange(400, dtype=np.float32)
    second = first + 1000
    tensor_bytes = _tensor_with_two_raw_data(first, second)
    with pytest.raises(WireMismatch):
        strip_initializer_data(MemoryReader(_model_with_raw_initializer(tensor_bytes)))
    model = model_from_bytes(_model_with_raw_initializer(tensor_bytes))
    np.testing.assert_array_equal(model.graph.initializers["w"].const_value.numpy(), second)


def _model_with_raw_initializer(tensor_bytes: bytes) -> bytes:
    reference = _onnx_model({"w": np.zeros(400, np.float32)})
    del reference.graph.initializer[:]
    graph = reference.graph.SerializeToString() + _field(5, tensor_bytes)
    reference.ClearField("graph")
    return reference.SerializeToString() + _field(7, graph)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def test_repeated_graph_field_is_merged_like_protobuf():
    first = _onnx_model({"a": RNG.standard_normal(500).astype(np.float32)})
    second = _onnx_model({"b": RNG.standard_normal(500).astype(np.float32)})
    data = first.SerializeToString() + _field(7, second.graph.SerializeToString())
    merged = onnx.ModelProto.FromString(data)
    assert len(merged.graph.initializer) == 2
    _check_same(model_from_bytes(data), merged)


def test_truncated_file_is_still_refused(tmp_path):
    data = _onnx_model(_weights()).SerializeToString()
    for cut in (len(data) // 3, len(data) - 700, len(data) - 1):
        path = tmp_path / "cut.onnx"
        path.write_bytes(data[:cut])
        with pytest.raises(ferry.FormatError):
            load(path)


def test_later_save_over_the_file_leaves_loaded_arrays_intact(tmp_path):
    weights = _weights()
    path = tmp_path / "m.onnx"
    onnx.save(_onnx_model(weights), path)
    model = load(path)
    onnx.save(_onnx_model({"other": np.zeros(3000, np.float32)}), path)
    for name, array in weights.items():
        np.testing.assert_array_equal(model.graph.initializers[name].const_value.numpy(), array)
