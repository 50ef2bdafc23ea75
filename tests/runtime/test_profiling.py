"""Session options: optimization level, threads, profiling."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
from onnx import TensorProto, helper

import ferry
from ferry.runtime import GraphOptimizationLevel, SessionOptions


def _model() -> bytes:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["a"], name="copy"), helper.make_node("Relu", ["a"], ["y"], name="relu")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_optimizations_are_on_by_default_and_can_be_turned_off():
    assert [s.node.op_type for s in ferry.InferenceSession(_model())._plan.steps] == ["Relu"]
    options = SessionOptions(graph_optimization_level=GraphOptimizationLevel.ORT_DISABLE_ALL)
    assert [s.node.op_type for s in ferry.InferenceSession(_model(), options)._plan.steps] == ["Identity", "Relu"]


def test_a_callers_model_object_is_not_changed_by_optimization():
    model = ferry.model_from_bytes(_model())
    ferry.InferenceSession(model)
    assert [n.op_type for n in model.graph] == ["Identity", "Relu"]


def test_profiling_writes_a_chrome_trace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    options = SessionOptions(graph_optimization_level=GraphOptimizationLevel.ORT_DISABLE_ALL)
    session = ferry.InferenceSession(_model(), options, enable_profiling=True)
    for _ in range(3):
        session.run(None, {"x": np.array([-1, 2], np.float32)})
    events = json.loads(pathlib.Path(session.end_profiling()).read_text())
    assert len(events) == 6 and {e["name"] for e in events} == {"copy", "relu"}
    assert all(e["ph"] == "X" and e["dur"] >= 0 and e["args"]["op_name"] in ("Identity", "Relu") for e in events)
    (name, op, total_ms, calls), _ = session.profiler.top_nodes(2)
    assert calls == 3 and total_ms >= 0


def test_end_profiling_without_profiling_is_an_error():
    with pytest.raises(ferry.InvalidArgument, match="enable_profiling=True"):
        ferry.InferenceSession(_model()).end_profiling()


def test_threads_option_runs():
    pytest.importorskip("threadpoolctl")
    session = ferry.InferenceSession(_model(), SessionOptions(intra_op_num_threads=1))
    (y,) = session.run(None, {"x": np.array([-1, 2], np.float32)})
    np.testing.assert_array_equal(y, [0, 2])
