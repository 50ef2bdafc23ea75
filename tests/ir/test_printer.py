from __future__ import annotations

import numpy as np

import ferry
from ferry import ir
from tests.conformance_data import cases


def test_text_form_of_small_model():
    x = ir.Value("x", ir.TensorType(ir.DataType.FLOAT, ir.Shape(["batch", 3])))
    w = ir.Value("w", const_value=ir.ArrayTensor(np.ones((3, 1000), np.float32)))
    shape = ir.Value("shape", const_value=ir.ArrayTensor(np.array([1, -1], np.int64)))
    matmul = ir.Node("MatMul", [x, w], name="fc")
    matmul.outputs[0].name = "y"
    matmul.outputs[0].type = ir.TensorType(ir.DataType.FLOAT, ir.Shape(["batch", 1000]))
    reshape = ir.Node("Reshape", [matmul.outputs[0], shape], {"allowzero": 0})
    reshape.outputs[0].name = "z"
    graph = ir.Graph([x], [reshape.outputs[0]], [matmul, reshape], [w, shape], name="main")
    text = ferry.printer.to_text(ir.Model(graph, opset_imports={"": 21}, producer_name="test"))
    lines = text.splitlines()
    assert lines[0] == "model ir_version=10 opsets=[ai.onnx:21] producer='test'"
    assert "    %x: float[batch,3]" in lines
    assert "    %w: float[3,1000]  (3,000 values)" in lines  # summarized, not dumped
    assert "    %shape: int64[2] = [1, -1]" in lines
    assert "    %y: float[batch,1000] = MatMul(%x, %w)  # fc" in lines
    assert "    %z = Reshape(%y, %shape) {allowzero=0}" in lines
    assert "1.0, 1.0" not in text


def test_real_model_prints_one_line_per_node_and_nests_subgraphs():
    for name in ("test_if_seq", "test_loop11", "test_scan9_sum"):
        case = next(c for c in cases("node") if c.name == name)
        model = ferry.load(case.model_path)
        text = str(model)
        total_nodes = sum(1 for _ in model.graph.all_nodes())
        assert sum(1 for line in text.splitlines() if " = " in line and "(" in line) >= total_nodes
        assert "graph '" in text
    resnet = ferry.load(cases("light")[0].model_path)
    text = str(resnet)
    assert len(text) < 200 * (len(resnet.graph) + len(resnet.graph.initializers) + 50)
