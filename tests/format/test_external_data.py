from __future__ import annotations

import os

import numpy as np
import onnx
import pytest

import ferry
from ferry.format import ExternalTensor
from tests.format.helpers import mlp_model


def _weights(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "w1": rng.standard_normal((4, 300)).astype(np.float32),
        "small": np.arange(3, dtype=np.int64),
        "w2": rng.standard_normal((300, 2)).astype(np.float32),
    }


def test_save_with_threshold_then_load_equals_original(tmp_path):
    weights = _weights()
    model = mlp_model(weights)
    path = tmp_path / "m.onnx"
    ferry.save(model, path, external_data=True, size_threshold=1024)
    assert (tmp_path / "m.onnx.data").exists()
    loaded = ferry.load(path)
    inits = loaded.graph.initializers
    assert isinstance(inits["w1"].const_value, ExternalTensor)
    assert not isinstance(inits["small"].const_value, ExternalTensor)  # 24 bytes: inline
    assert not inits["w1"].const_value.is_loaded  # lazy until first access
    for name, array in weights.items():
        np.testing.assert_array_equal(inits[name].const_value.numpy(), array)
    # onnx (the oracle) reads the same files
    reference = onnx.load(str(path))
    by_name = {t.name: onnx.numpy_helper.to_array(t) for t in reference.graph.initializer}
    for name, array in weights.items():
        np.testing.assert_array_equal(by_name[name], array)


def test_custom_location_and_resave_over_source(tmp_path):
    weights = _weights(1)
    path = tmp_path / "m.onnx"
    ferry.save(
        mlp_model(weights), path, external_data=True, size_threshold=0, location="weights.bin"
    )
    loaded = ferry.load(path)
    loaded.graph.initializers["w1"].const_value.numpy()  # map the file, then overwrite it
    ferry.save(loaded, path, external_data=True, size_threshold=0, location="weights.bin")
    again = ferry.load(path)
    for name, array in weights.items():
        np.testing.assert_array_equal(again.graph.initializers[name].const_value.numpy(), array)


def test_inline_save_of_external_model(tmp_path):
    weights = _weights(2)
    ferry.save(mlp_model(weights), tmp_path / "a.onnx", external_data=True, size_threshold=0)
    model = ferry.load(tmp_path / "a.onnx")
    ferry.save(model, tmp_path / "b.onnx")
    inline = ferry.load(tmp_path / "b.onnx")
    assert not any(
        isinstance(v.const_value, ExternalTensor) for v in inline.graph.initializers.values()
    )
    np.testing.assert_array_equal(
        inline.graph.initializers["w2"].const_value.numpy(), weights["w2"]
    )


def _external_model_bytes(location: str, offset: int = 0, length: int | None = None) -> bytes:
    tensor = onnx.TensorProto(name="w", data_type=onnx.TensorProto.FLOAT, dims=[4])
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entries = {"location": location, "offset": str(offset)}
    if length is not None:
        entries["length"] = str(length)
    for key, value in entries.items():
        tensor.external_data.add(key=key, value=value)
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["w"], ["y"])],
        "g",
        [],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4])],
        [tensor],
    )
    return onnx.helper.make_model(graph).SerializeToString()


@pytest.mark.parametrize(
    "location, needle",
    [("../outside.bin", "'..'"), ("/etc/passwd", "absolute path"), ("sub/../../x.bin", "'..'")],
)
def test_path_traversal_is_refused(tmp_path, location, needle):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (tmp_path / "outside.bin").write_bytes(b"\0" * 16)
    (model_dir / "m.onnx").write_bytes(_external_model_bytes(location))
    with pytest.raises(ferry.FormatError, match=needle) as info:
        ferry.load(model_dir / "m.onnx")
    assert "'w'" in str(info.value)


def test_symlink_leading_out_is_refused(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\0" * 16)
    os.symlink(secret, model_dir / "w.bin")
    (model_dir / "m.onnx").write_bytes(_external_model_bytes("w.bin"))
    with pytest.raises(ferry.FormatError, match="symbolic link"):
        ferry.load(model_dir / "m.onnx")


def test_symlink_inside_folder_is_allowed(tmp_path):
    (tmp_path / "real.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    os.symlink(tmp_path / "real.bin", tmp_path / "w.bin")
    (tmp_path / "m.onnx").write_bytes(_external_model_bytes("w.bin"))
    model = ferry.load(tmp_path / "m.onnx")
    np.testing.assert_array_equal(model.graph.initializers["w"].const_value.numpy(), np.arange(4))


@pytest.mark.parametrize("offset, length", [(8, None), (0, 32), (20, 16)])
def test_range_beyond_file_is_refused(tmp_path, offset, length):
    (tmp_path / "w.bin").write_bytes(b"\0" * 16)
    (tmp_path / "m.onnx").write_bytes(_external_model_bytes("w.bin", offset, length))
    with pytest.raises(ferry.FormatError, match="tensor 'w'"):
        ferry.load(tmp_path / "m.onnx")


def test_missing_external_file_names_tensor(tmp_path):
    (tmp_path / "m.onnx").write_bytes(_external_model_bytes("nope.bin"))
    with pytest.raises(ferry.FormatError, match="tensor 'w'.*does not exist"):
        ferry.load(tmp_path / "m.onnx")


def test_external_model_from_bytes_needs_base_dir(tmp_path):
    (tmp_path / "w.bin").write_bytes(np.ones(4, np.float32).tobytes())
    data = _external_model_bytes("w.bin")
    with pytest.raises(ferry.FormatError, match="base_dir"):
        ferry.model_from_bytes(data)
    model = ferry.model_from_bytes(data, base_dir=tmp_path)
    np.testing.assert_array_equal(model.graph.initializers["w"].const_value.numpy(), np.ones(4))


def test_inline_save_over_2gb_is_refused_without_external_data():
    big = np.broadcast_to(np.float32(0), (2**29 + 16,))  # 2 GiB + 64 bytes, no memory used
    model = mlp_model({"w": np.zeros((4, 1), np.float32)})
    from ferry import ir

    model.graph.initializers["w"].const_value = ir.ArrayTensor(big, name="w")
    with pytest.raises(ferry.FormatError, match="2 GiB.*external_data=True"):
        ferry.model_to_bytes(model)


@pytest.mark.slow
def test_model_over_2gb_saves_and_loads(tmp_path):
    from ferry import ir

    count = 2**29 + 1024  # 2 GiB + 4 KiB of float32
    big = np.zeros(count, dtype=np.float32)
    big[::4096] = np.arange(big[::4096].size, dtype=np.float32)
    x = ir.Value("x", ir.TensorType(ir.DataType.FLOAT, ir.Shape([1])))
    w = ir.Value("w", const_value=ir.ArrayTensor(big, name="w"))
    node = ir.Node("Identity", [w], name="id")
    graph = ir.Graph([x], [node.outputs[0]], [node], [w], name="big")
    node.outputs[0].name = "y"
    ferry.save(ir.Model(graph, opset_imports={"": 21}), tmp_path / "big.onnx", external_data=True)
    del big
    loaded = ferry.load(tmp_path / "big.onnx")
    data = loaded.graph.initializers["w"].const_value.numpy()
    assert data.shape == (count,)
    np.testing.assert_array_equal(data[::4096], np.arange(data[::4096].size, dtype=np.float32))
    assert data[1] == 0 and data[-1] == 0
