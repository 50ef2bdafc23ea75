"""Every official conformance model survives ferry.load -> ferry.save unchanged, and
every data file reads the same as onnx.numpy_helper reads it (onnx is the oracle)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import ferry
from tests.conformance_data import SUITES, cases, data_files
from tests.oracle import to_ferry_array


def _ids(suite):
    return [case.name for case in cases(suite)]


@pytest.mark.parametrize("suite", SUITES)
def test_models_round_trip(suite):
    failures = []
    for case in cases(suite):
        data = case.model_path.read_bytes()
        model = ferry.load(case.model_path)
        written = onnx.load_from_string(ferry.model_to_bytes(model))
        if written != onnx.load_from_string(data):
            failures.append(case.name)
    assert not failures, f"{len(failures)} of {len(cases(suite))} models changed: {failures[:10]}"
    assert len(cases(suite)) > 0


def test_node_suite_is_complete():
    assert len(cases("node")) >= 1800


def _read_pair(path, info: onnx.ValueInfoProto):
    kind = info.type.WhichOneof("value")
    data = path.read_bytes()
    if kind == "sequence_type":
        proto = onnx.SequenceProto.FromString(data)
        return numpy_helper.to_list(proto), ferry.load_sequence(path)
    if kind == "optional_type":
        proto = onnx.OptionalProto.FromString(data)
        return numpy_helper.to_optional(proto), ferry.load_optional(path)
    if kind == "map_type":
        proto = onnx.MapProto.FromString(data)
        return numpy_helper.to_dict(proto), ferry.load_map(path)
    return numpy_helper.to_array(onnx.TensorProto.FromString(data)), ferry.load_tensor(path)


def _assert_same(expected, got, where):
    if isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), where
        for e, g in zip(expected, got):
            _assert_same(e, g, where)
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and expected.keys() == got.keys(), where
        for key in expected:
            _assert_same(expected[key], got[key], where)
    elif expected is None:
        assert got is None, where
    else:
        expected = to_ferry_array(expected)
        assert got.dtype == expected.dtype and got.shape == expected.shape, where
        if expected.dtype.names:  # compare bit patterns of exotic types
            expected, got = expected.view(expected.dtype[0]), got.view(got.dtype[0])
        np.testing.assert_array_equal(got, expected, err_msg=where)


@pytest.mark.parametrize("suite", [s for s in SUITES if s != "light"])
def test_data_files_match_onnx(suite):
    checked = 0
    for case in cases(suite):
        graph = onnx.load(str(case.model_path), load_external_data=False).graph
        initializers = {t.name for t in graph.initializer}
        inputs = [i for i in graph.input if i.name not in initializers]
        for data_set in case.data_sets:
            for kind, infos in (("input", inputs), ("output", list(graph.output))):
                for path, info in zip(data_files(data_set, kind), infos):
                    expected, got = _read_pair(path, info)
                    _assert_same(expected, got, str(path))
                    checked += 1
    assert checked > 0


def test_light_reference_outputs_match_onnx():
    for case in cases("light"):
        path = case.model_path.with_name(case.model_path.stem + "_output_0.pb")
        expected = numpy_helper.to_array(onnx.TensorProto.FromString(path.read_bytes()))
        np.testing.assert_array_equal(ferry.load_tensor(path), expected, err_msg=str(path))
