"""Run one conformance case through ferry.InferenceSession, comparing like onnx's runner."""

from __future__ import annotations

import pathlib

import onnx

import ferry
import ferry.runtime
from ferry import ir
from tests.conformance_data import Case, data_files, light_inputs
from tests.oracle import assert_similar, to_ferry_array


def _load_value(path: pathlib.Path, type_: ir.Type | None):
    if isinstance(type_, ir.SequenceType):
        return ferry.load_sequence(path)
    if isinstance(type_, ir.OptionalType):
        return ferry.load_optional(path)
    if isinstance(type_, ir.MapType):
        return ferry.load_map(path)
    return ferry.load_tensor(path)


def run_case(case: Case, *, optimized: bool = True) -> None:
    """Run ``case`` through a session with ferry's graph optimizations on (the default) or off."""
    options = ferry.runtime.SessionOptions()
    if not optimized:
        options.graph_optimization_level = ferry.runtime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ferry.InferenceSession(case.model_path, options)
    graph = session.model.graph
    inputs = [v for v in graph.inputs if v.name not in graph.initializers]
    if case.suite == "light":
        feeds = dict(zip((v.name for v in inputs), light_inputs(onnx.load(str(case.model_path)))))
        expected_path = case.model_path.with_name(case.model_path.stem + "_output_0.pb")
        expected = [ferry.load_tensor(expected_path)]
        _compare(session.run(None, feeds), expected, case)
        return
    for data_set in case.data_sets:
        feeds = {
            v.name: _load_value(path, v.type) for v, path in zip(inputs, data_files(data_set, "input"))
        }
        expected = [
            _load_value(path, v.type) for v, path in zip(graph.outputs, data_files(data_set, "output"))
        ]
        _compare(session.run(None, feeds), expected, case)


def _compare(outputs, expected, case: Case) -> None:
    assert len(outputs) == len(expected), f"{len(outputs)} outputs, expected {len(expected)}"
    for index, (got, want) in enumerate(zip(outputs, expected)):
        assert_similar(got, to_ferry_array(want), case.rtol, case.atol, f"{case.id} output {index}")
