"""Build small models with onnx.helper and check that a conversion keeps their outputs."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto

import ferry
import ferry.runtime
from ferry.convert import convert_version
from ferry.ir import Model
from tests.passes.helpers import make_model as make_onnx_model
from tests.passes.helpers import to_ferry

FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64


def make_model(nodes, inputs, outputs, initializers=(), *, opset: int) -> Model:
    """A ferry model; ``inputs``/``outputs`` are (name, elem_type, shape) triples."""
    return to_ferry(make_onnx_model(nodes, inputs, outputs, initializers, opset=opset,
                                    ir_version=7 if opset >= 12 else 4))


def run(model: Model, feeds: dict) -> list:
    options = ferry.runtime.SessionOptions()
    options.graph_optimization_level = ferry.runtime.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ferry.InferenceSession(model, options).run(None, feeds)


def assert_valid(model: Model, tmp_path) -> None:
    """Both checkers accept ``model``."""
    ferry.check_model(model)
    path = tmp_path / f"converted_{model.opset}.onnx"
    ferry.save(model, path)
    onnx.checker.check_model(str(path))


def assert_converts(model: Model, target: int, feeds: dict, tmp_path) -> Model:
    """Convert to ``target``, check, and require the same outputs; returns the result."""
    converted = convert_version(model, target)
    assert converted.opset == target
    assert_valid(converted, tmp_path)
    for got, want in zip(run(converted, feeds), run(model, feeds), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    return converted


def op_types(model: Model) -> list[str]:
    return [node.op_type for node in model.graph.all_nodes()]
