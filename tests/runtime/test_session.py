"""InferenceSession's surface and its errors for bad input."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ferry


def _model(opset=17, **graph_kwargs):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    bias = helper.make_tensor_value_info("bias", TensorProto.FLOAT, [3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 3])
    nodes = [
        helper.make_node("Add", ["x", "bias"], ["y"], name="add"),
        helper.make_node("Relu", ["y"], ["z"], name="relu"),
    ]
    graph = helper.make_graph(nodes, "g", [x, bias], [y, z], **graph_kwargs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model.SerializeToString()


FEEDS = {"x": np.array([[1, -2, 3]], np.float32), "bias": np.ones(3, np.float32)}


def test_run_all_and_named_outputs():
    session = ferry.InferenceSession(_model())
    y, z = session.run(None, FEEDS)
    np.testing.assert_array_equal(y, [[2, -1, 4]])
    np.testing.assert_array_equal(z, [[2, 0, 4]])
    (only_z,) = session.run(["z"], FEEDS)
    np.testing.assert_array_equal(only_z, z)


def test_inputs_and_outputs_describe_the_graph():
    session = ferry.InferenceSession(_model())
    (x, bias) = session.get_inputs()
    assert (x.name, x.shape, x.type) == ("x", ["batch", 3], "tensor(float)")
    assert bias.shape == [3]
    assert [o.name for o in session.get_outputs()] == ["y", "z"]


def test_model_object_path_and_bytes_all_work(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(_model())
    for source in (path, str(path), _model(), ferry.load(path)):
        assert ferry.InferenceSession(source).run(["z"], FEEDS)[0].shape == (1, 3)


def test_dynamic_batch_runs_at_any_size():
    session = ferry.InferenceSession(_model())
    feeds = {"x": np.zeros((5, 3), np.float32), "bias": np.ones(3, np.float32)}
    assert session.run(["z"], feeds)[0].shape == (5, 3)


@pytest.mark.parametrize(
    "feeds, message",
    [
        ({**FEEDS, "w": FEEDS["x"]}, r"unknown input name\(s\) \['w'\]"),
        ({"x": FEEDS["x"]}, r"missing input\(s\) \['bias'\]"),
        ({**FEEDS, "x": FEEDS["x"].astype(np.float64)}, r"input 'x': expected tensor\(float\).*float64"),
        ({**FEEDS, "x": np.zeros(3, np.float32)}, r"input 'x': expected rank 2.*got rank 1"),
        ({**FEEDS, "x": np.zeros((2, 4), np.float32)}, r"input 'x': dimension 1 must be 3.*got 4"),
        ({**FEEDS, "x": [[1.0, 2.0, 3.0]]}, r"input 'x': expected a numpy array, got list"),
    ],
    ids=["unknown-name", "missing", "dtype", "rank", "fixed-dim", "not-array"],
)
def test_bad_feeds_raise_invalid_argument(feeds, message):
    session = ferry.InferenceSession(_model())
    with pytest.raises(ferry.InvalidArgument, match=message):
        session.run(None, feeds)


def test_unknown_output_name():
    with pytest.raises(ferry.InvalidArgument, match=r"unknown output name\(s\) \['nope'\]"):
        ferry.InferenceSession(_model()).run(["nope"], FEEDS)


def test_missing_kernel_fails_at_creation_naming_op_domain_version():
    node = helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example", name="f")
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 2)]
    )
    with pytest.raises(ferry.KernelNotFoundError, match=r"com\.example::Frobnicate at opset 2"):
        ferry.InferenceSession(model.SerializeToString())


def test_kernel_failure_names_node_and_op():
    node = helper.make_node("Reshape", ["x", "shape"], ["y"], name="bad_reshape")
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None])],
        [helper.make_tensor("shape", TensorProto.INT64, [2], [4, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ferry.InferenceSession(model.SerializeToString())
    with pytest.raises(ferry.ExecutionError, match=r"node 'bad_reshape' \(Reshape\) failed"):
        session.run(None, {"x": np.zeros(6, np.float32)})


def test_unknown_provider_is_refused():
    with pytest.raises(ferry.InvalidArgument, match="CUDAExecutionProvider"):
        ferry.InferenceSession(_model(), providers=["CUDAExecutionProvider"])


def test_intermediate_values_are_freed_after_last_use():
    session = ferry.InferenceSession(_model())
    steps = session._plan.steps
    assert set(steps[0].frees) == {"x", "bias"}  # inputs read by Add only; y is an output: kept
    assert steps[1].frees == ()
    model = onnx.load_from_string(_model())
    del model.graph.output[0]  # y now intermediate: freed after Relu reads it
    steps = ferry.InferenceSession(model.SerializeToString())._plan.steps
    assert "y" in steps[1].frees


def test_model_local_function_runs():
    function = helper.make_function(
        "custom", "AddRelu", ["a", "b"], ["c"],
        [helper.make_node("Add", ["a", "b"], ["t"]), helper.make_node("Relu", ["t"], ["c"])],
        [helper.make_opsetid("", 17)],
    )
    graph = helper.make_graph(
        [helper.make_node("AddRelu", ["x", "bias"], ["z"], domain="custom")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("bias", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 3])],
    )
    model = helper.make_model(
        graph, functions=[function],
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom", 1)],
    )
    (z,) = ferry.InferenceSession(model.SerializeToString()).run(None, FEEDS)
    np.testing.assert_array_equal(z, [[2, 0, 4]])
