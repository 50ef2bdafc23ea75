"""Run official node test cases by op family through ferry.InferenceSession.

Kernel test modules use ``cases_for({"Op", ...})`` to list the node cases whose graph
(including subgraphs) uses only those ops, and ``run_case(name)`` to run one with the
comparison rules of onnx's backend test runner.
"""

from __future__ import annotations

import functools

import numpy as np
import onnx

from tests.conformance_data import Case, cases
from tests.runtime.conformance_runner import run_case as run_conformance_case


@functools.cache
def _node_cases() -> dict[str, Case]:
    return {case.name: case for case in cases("node")}


def _ops(graph: onnx.GraphProto) -> set[str]:
    found = set()
    for node in graph.node:
        found.add(node.op_type)
        for attribute in node.attribute:
            for sub in [attribute.g] if attribute.HasField("g") else list(attribute.graphs):
                found |= _ops(sub)
    return found


@functools.cache
def _case_ops() -> dict[str, frozenset[str]]:
    return {
        name: frozenset(_ops(onnx.load(str(case.model_path), load_external_data=False).graph))
        for name, case in _node_cases().items()
    }


def cases_for(op_types: set[str]) -> list[str]:
    """Names of the node cases whose graph uses only ops from ``op_types``."""
    return sorted(name for name, ops in _case_ops().items() if ops and ops <= op_types)


def run_case(name: str) -> None:
    """Run one node case through InferenceSession and assert its outputs match."""
    run_conformance_case(_node_cases()[name])


def _value_info(name: str, value: object) -> onnx.ValueInfoProto:
    from ferry.ir import from_numpy_dtype

    if isinstance(value, list):
        elem = int(from_numpy_dtype(value[0].dtype)) if value else onnx.TensorProto.FLOAT
        sequence = onnx.helper.make_sequence_type_proto(
            onnx.helper.make_tensor_type_proto(elem, None)
        )
        return onnx.helper.make_value_info(name, sequence)
    array = np.asarray(value)
    return onnx.helper.make_tensor_value_info(name, int(from_numpy_dtype(array.dtype)), None)


def run_graph(graph: onnx.GraphProto, opsets: dict[str, int], outer: dict, inputs=()) -> list:
    """Run ``graph`` (its inputs fed positionally from ``inputs``) in an InferenceSession."""
    assert not outer, "outer-scope values are not supported here"
    import ferry

    model = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid(d, v) for d, v in opsets.items()]
    )
    session = ferry.InferenceSession(ferry.model_from_bytes(model.SerializeToString()), check=False)
    names = [v.name for v in session.get_inputs()]
    try:
        return session.run(None, dict(zip(names, inputs)))
    except ferry.ExecutionError as error:
        # kernel tests assert on the kernel's own exception; the session's wrapping of it
        # (naming the node) is tested in test_session.py
        if error.__cause__ is not None:
            raise error.__cause__ from None
        raise


def run_node(node: onnx.NodeProto, opsets: dict[str, int], scope: dict) -> list:
    """Run one node reading its inputs from ``scope``; returns its outputs in order."""
    names = [name for name in dict.fromkeys(node.input) if name]
    graph = onnx.helper.make_graph(
        [node],
        "single_node",
        [_value_info(name, scope[name]) for name in names],
        [onnx.helper.make_value_info(name, onnx.TypeProto()) for name in node.output if name],
    )
    return run_graph(graph, opsets, {}, [scope[name] for name in names])


def node_case_test(op_types: set[str], skips: dict[str, str] | None = None):
    """A test function running every node case of ``op_types`` (cases in ``skips`` skipped
    with their reason): ``test_node_case = node_case_test(OPS, SKIPS)`` in a test module."""
    import pytest

    skips = skips or {}

    @pytest.mark.parametrize("name", cases_for(op_types))
    def test_node_case(name: str) -> None:
        if name in skips:
            pytest.skip(skips[name])
        run_case(name)

    return test_node_case
