"""Bad bytes give ferry.FormatError with a clear message: never a crash, a hang or a model."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import ferry
from tests.conformance_data import cases

LIGHT = cases("light")[0].model_path  # a real ~MB model
SMALL = next(c for c in cases("node") if c.name == "test_conv_with_strides_padding").model_path


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.999])
def test_truncated_model_is_refused(tmp_path, fraction):
    data = LIGHT.read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ferry.FormatError) as info:
        ferry.load(path)
    assert "cut.onnx" in str(info.value)


def test_every_truncation_of_a_small_model_is_refused_or_loads_cleanly():
    data = SMALL.read_bytes()
    refused = 0
    for cut in range(len(data)):
        try:
            ferry.model_from_bytes(data[:cut])
        except ferry.FormatError:
            refused += 1
    # a cut at a field boundary after the graph can be a smaller valid model; all others refused
    assert refused >= len(data) - 4


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes_are_refused(seed):
    data = np.random.default_rng(seed).integers(0, 256, size=4096, dtype=np.uint8).tobytes()
    with pytest.raises(ferry.FormatError, match="not"):
        ferry.model_from_bytes(data)


def test_random_bit_flips_never_crash():
    data = bytearray(SMALL.read_bytes())
    rng = np.random.default_rng(0)
    for _ in range(300):
        mutated = bytearray(data)
        for position in rng.integers(0, len(data), size=3):
            mutated[position] ^= 1 << int(rng.integers(0, 8))
        with contextlib.suppress(ferry.FormatError):
            ferry.model_from_bytes(bytes(mutated))


@pytest.mark.parametrize(
    "content",
    [
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
        b"PK\x03\x04" + b"\0" * 100,
        b"",
        b"hello world\n",
    ],
    ids=["png", "zip", "empty", "text"],
)
def test_wrong_file_type_is_refused(tmp_path, content):
    path = tmp_path / "not_a_model.onnx"
    path.write_bytes(content)
    with pytest.raises(ferry.FormatError, match="not_a_model.onnx"):
        ferry.load(path)


def test_tensor_file_is_not_a_model(tmp_path):
    ferry.save_tensor(np.arange(6, dtype=np.int64), tmp_path / "t.pb")
    with pytest.raises(ferry.FormatError, match="not an ONNX model"):
        ferry.load(tmp_path / "t.pb")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ferry.FormatError, match="nope.onnx"):
        ferry.load(tmp_path / "nope.onnx")


def test_corrupt_tensor_file(tmp_path):
    ferry.save_tensor(np.arange(6, dtype=np.float32), tmp_path / "t.pb")
    data = (tmp_path / "t.pb").read_bytes()
    (tmp_path / "bad.pb").write_bytes(data[:-5])
    with pytest.raises(ferry.FormatError, match="bad.pb"):
        ferry.load_tensor(tmp_path / "bad.pb")


def test_raw_data_size_mismatch_names_tensor():
    import onnx

    tensor = onnx.TensorProto(
        name="w", data_type=onnx.TensorProto.FLOAT, dims=[4], raw_data=b"\0" * 12
    )
    graph = onnx.helper.make_graph([], "g", [], [], [tensor])
    data = onnx.helper.make_model(graph).SerializeToString()
    with pytest.raises(
        ferry.FormatError, match=r"(?s)tensor 'w'.*12 bytes.*needs 16.*initializer 0"
    ):
        ferry.model_from_bytes(data)


def test_duplicate_attribute_is_refused_not_dropped():
    import onnx

    node = onnx.helper.make_node("Cast", ["x"], ["y"], to=1, name="cast")
    node.attribute.append(onnx.helper.make_attribute("to", 7))
    graph = onnx.helper.make_graph(
        [node],
        "g",
        [onnx.helper.make_tensor_value_info("x", 1, [1])],
        [onnx.helper.make_tensor_value_info("y", 1, [1])],
    )
    data = onnx.helper.make_model(graph).SerializeToString()
    with pytest.raises(
        ferry.FormatError, match=r"(?s)attribute 'to' appears more than once.*node 0 \('cast'\)"
    ):
        ferry.model_from_bytes(data)


def test_duplicate_function_is_refused_not_dropped():
    import onnx

    function = onnx.helper.make_function(
        "custom",
        "F",
        ["a"],
        ["b"],
        [onnx.helper.make_node("Identity", ["a"], ["b"])],
        [onnx.helper.make_opsetid("", 17)],
    )
    graph = onnx.helper.make_graph([], "g", [], [])
    model = onnx.helper.make_model(graph, functions=[function, function])
    with pytest.raises(ferry.FormatError, match="function custom::F is defined more than once"):
        ferry.model_from_bytes(model.SerializeToString())


def test_sparse_initializer_is_a_value_in_scope():
    import onnx

    values = onnx.helper.make_tensor("s", onnx.TensorProto.FLOAT, [2], [1.0, 2.0])
    indices = onnx.helper.make_tensor("i", onnx.TensorProto.INT64, [2], [0, 3])
    sparse = onnx.helper.make_sparse_tensor(values, indices, [4])
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Add", ["x", "s"], ["y"])],
        "g",
        [onnx.helper.make_tensor_value_info("x", 1, [4])],
        [onnx.helper.make_tensor_value_info("y", 1, [4])],
        sparse_initializer=[sparse],
    )
    model = ferry.model_from_bytes(onnx.helper.make_model(graph).SerializeToString())
    read = model.graph.nodes[0].inputs[1]
    np.testing.assert_array_equal(read.const_value.to_dense(), [1, 0, 0, 2])
    (y,) = ferry.InferenceSession(model).run(None, {"x": np.ones(4, np.float32)})
    np.testing.assert_array_equal(y, [2, 1, 1, 3])
