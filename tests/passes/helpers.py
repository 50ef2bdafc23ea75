"""Shared tools of the optimizer tests: build a model, apply a pass, prove nothing changed.

``check_pass`` is the verification every pass test goes through: it runs the model
before and after the pass on random inputs with ferry.InferenceSession (and the
rewritten model with onnxruntime, where onnxruntime accepts the original), requires
equal outputs (float32: rtol 1e-5, atol 1e-6; integers and booleans exactly), and
requires the rewritten model to pass ferry.check_model and onnx.checker after a save.
"""

from __future__ import annotations

import collections

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper

import ferry
from ferry.ir import DataType, Model, TensorType
from ferry.passes import Pass, optimize, standard_passes

FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64


def make_model(
    nodes, inputs, outputs, initializers=(), *, opset=17, ir_version=None, value_info=()
) -> onnx.ModelProto:
    """An onnx model; ``inputs``/``outputs``/``value_info`` are (name, elem_type, shape)."""
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(*i) for i in inputs],
        [helper.make_tensor_value_info(*o) for o in outputs],
        [onnx.numpy_helper.from_array(np.asarray(a), n) for n, a in initializers],
        value_info=[helper.make_tensor_value_info(*v) for v in value_info],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version or min(model.ir_version, 9)
    return model


def to_ferry(proto: onnx.ModelProto) -> Model:
    return ferry.model_from_bytes(proto.SerializeToString())


def op_counts(model: Model) -> collections.Counter:
    """How many nodes of each op type the model holds, subgraphs included."""
    return collections.Counter(node.op_type for node in model.graph.all_nodes())


def random_feeds(model: Model, seed: int = 0) -> dict[str, np.ndarray]:
    """Random data for every graph input without an initializer (symbolic dims: 3)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    graph = model.graph
    for value in graph.inputs:
        if value.name in graph.initializers:
            continue
        assert isinstance(value.type, TensorType), f"input {value.name}: tensors only"
        shape = tuple(d if isinstance(d, int) else 3 for d in value.shape)
        dtype = value.dtype
        if dtype == DataType.BOOL:
            data = rng.random(shape) < 0.5 if shape else np.array(seed % 2 == 0)
        elif dtype.numpy.kind in "iu":
            data = rng.integers(-4, 5, shape).astype(dtype.numpy)
        else:
            data = rng.standard_normal(shape).astype(dtype.numpy)
        feeds[value.name] = np.asarray(data)
    return feeds


def assert_same_outputs(got: list, want: list, where: str = "") -> None:
    assert len(got) == len(want), f"{where}: {len(got)} outputs, expected {len(want)}"
    for index, (g, w) in enumerate(zip(got, want)):
        g, w = np.asarray(g), np.asarray(w)
        label = f"{where} output {index}"
        assert g.shape == w.shape and g.dtype == w.dtype, f"{label}: {g.dtype}{g.shape} vs {w.dtype}{w.shape}"
        if w.dtype.kind in "fc":
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, err_msg=label)
        else:
            np.testing.assert_array_equal(g, w, err_msg=label)


def _ort_outputs(data: bytes, feeds: dict) -> list | None:
    try:
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception:
        return None
    return session.run(None, feeds)


def check_pass(proto: onnx.ModelProto, transform: Pass | None = None, *, seeds=(0, 1)) -> Model:
    """Apply ``transform`` (None: ``optimize``) to the model and verify it (see module
    docstring); return the rewritten ferry model for structural assertions."""
    original = proto.SerializeToString()
    model = ferry.model_from_bytes(original)
    if transform is None:
        optimize(model)
        for pass_ in standard_passes():  # a fixed point: nothing is left to rewrite
            assert not pass_(model).modified, f"{pass_.name} still rewrites after optimize"
    else:
        result = transform(model)
        assert result.model is model
    ferry.check_model(model)
    data = ferry.model_to_bytes(model)
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    assert [v.name for v in model.graph.outputs] == [o.name for o in proto.graph.output]
    initializers = {t.name for t in proto.graph.initializer}
    real_inputs = [i.name for i in proto.graph.input if i.name not in initializers]
    assert [v.name for v in model.graph.inputs if v.name not in model.graph.initializers] == real_inputs
    domains = {n.domain for n in proto.graph.node} | {""}
    assert {n.domain for n in model.graph.all_nodes()} <= domains, "a non-standard op appeared"
    before = ferry.InferenceSession(original)
    after = ferry.InferenceSession(data)
    ort_accepts_original = _ort_outputs(original, random_feeds(model)) is not None
    for seed in seeds:
        feeds = random_feeds(model, seed)
        want = before.run(None, feeds)
        assert_same_outputs(after.run(None, feeds), want, f"ferry, seed {seed}")
        if ort_accepts_original:
            got = _ort_outputs(data, feeds)
            assert got is not None, "onnxruntime rejects the rewritten model"
            assert_same_outputs(got, want, f"onnxruntime, seed {seed}")
    return ferry.model_from_bytes(data)
