"""The ``ferry`` command, run through its real entry point in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ferry

FERRY = shutil.which("ferry") or os.path.join(os.path.dirname(sys.executable), "ferry")


def ferry_cli(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([FERRY, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture
def model_path(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    w = helper.make_tensor("w", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "w"], ["t"], name="scale"), helper.make_node("Relu", ["t"], ["y"], name="relu")],
        "tiny", [x], [y], [w],
    )
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _one_error_line(result) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ferry: error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize("command", ["info", "check", "print", "optimize", "run", "bench", "export", "demo", "convert"])
def test_every_subcommand_has_help(command):
    result = ferry_cli(command, "--help")
    assert result.returncode == 0 and "usage: ferry " + command in result.stdout


def test_info(model_path):
    out = ferry_cli("info", model_path).stdout
    assert "opsets: ai.onnx 17" in out
    assert "x: float[batch,3]" in out and "y: float[batch,3]" in out
    assert "Mul" in out and "Relu" in out
    assert "parameters: 3 values in 1 initializers, 12 B" in out
    assert "external data: none" in out


def test_check_valid_and_invalid(model_path, tmp_path):
    result = ferry_cli("check", model_path)
    assert result.returncode == 0 and "valid" in result.stdout
    model = onnx.load(model_path)
    model.graph.node[1].input[0] = "missing"
    bad = tmp_path / "bad.onnx"
    onnx.save(model, bad)
    result = ferry_cli("check", bad)
    assert result.returncode == 1
    assert "undefined-input" in result.stdout and "'relu' (Relu)" in result.stdout
    assert "invalid (1 error)" in result.stdout


def test_print(model_path):
    out = ferry_cli("print", model_path).stdout
    assert "%t = Mul(%x, %w)  # scale" in out


def test_run_with_files_and_random(model_path, tmp_path):
    np.save(tmp_path / "x.npy", np.array([[1, -1, 2]], np.float32))
    ferry.save_tensor(np.array([[1, 1, 1]], np.float32), tmp_path / "x.pb")
    result = ferry_cli("run", model_path, "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "y: float32 [1, 3] min 0 max 6 mean 2.33333" in result.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "y.npy"), [[1, 0, 6]])
    assert "max 3" in ferry_cli("run", model_path, "--input", f"x={tmp_path / 'x.pb'}").stdout
    result = ferry_cli("run", model_path, "--random", "--dim", "batch=4")
    assert result.returncode == 0 and "y: float32 [4, 3]" in result.stdout


def test_bench_prints_percentiles_and_compares(model_path):
    result = ferry_cli("bench", model_path, "--runs", 5, "--warmup", 1, "--dim", "batch=2", "--compare", "onnxruntime")
    assert result.returncode == 0, result.stderr
    assert "ferry " in result.stdout and "p50" in result.stdout and "p99" in result.stdout
    assert "onnxruntime" in result.stdout and "ferry / onnxruntime (p50):" in result.stdout
    assert "[" in result.stderr  # the progress bar
    result = ferry_cli("bench", model_path, "--runs", 3, "--warmup", 0, "--dim", "batch=2", "--profile")
    assert result.returncode == 0 and "top nodes" in result.stdout and "Relu" in result.stdout


@pytest.mark.parametrize(
    "make_args, needle",
    [
        (lambda p, t: ["info", t / "missing.onnx"], "cannot read"),
        (lambda p, t: ["check", t / "corrupt.onnx"], "not a valid ONNX model"),
        (lambda p, t: ["run", p, "--input", f"nope={t / 'x.npy'}"], "has no input 'nope'"),
        (lambda p, t: ["run", p, "--input", f"x={t / 'wrong.npy'}"], "dimension 1 must be 3"),
        (lambda p, t: ["run", p, "--random"], "give its size with --dim batch=VALUE"),
    ],
    ids=["missing-file", "corrupt-file", "wrong-input-name", "wrong-shape", "unknown-dim"],
)
def test_errors_are_one_clear_line(model_path, tmp_path, make_args, needle):
    (tmp_path / "corrupt.onnx").write_bytes(b"\x08\x07garbage" * 10)
    np.save(tmp_path / "x.npy", np.zeros((1, 3), np.float32))
    np.save(tmp_path / "wrong.npy", np.zeros((1, 4), np.float32))
    line = _one_error_line(ferry_cli(*make_args(model_path, tmp_path)))
    assert needle in line


def test_debug_shows_the_traceback(tmp_path):
    result = ferry_cli("--debug", "info", tmp_path / "missing.onnx")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_export_from_a_script(tmp_path):
    script = tmp_path / "my_model.py"
    script.write_text(textwrap.dedent('''
        import torch

        def make():
            torch.manual_seed(0)
            return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    '''))
    out = tmp_path / "out.onnx"
    result = ferry_cli("export", f"{script}:make", "--input-shape", "x=2x4", "--dynamic", "x:0=batch", "-o", out)
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout
    model = ferry.load(out)
    assert list(model.graph.inputs[0].shape) == ["batch", 4]
    result = ferry_cli("export", f"{script}:nope", "--input-shape", "x=2x4", "-o", out)
    assert "has no function 'nope'" in _one_error_line(result)


def test_optimize(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["y"])], "g", [x], [y]
    )
    source = tmp_path / "in.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), source)
    result = ferry_cli("optimize", source, tmp_path / "out.onnx")
    assert result.returncode == 0, result.stderr
    assert "2 nodes" in result.stdout and "1 nodes" in result.stdout
    assert [n.op_type for n in ferry.load(tmp_path / "out.onnx").graph] == ["Relu"]


# -- ferry shapes ---------------------------------------------------------------------------------
@pytest.fixture
def reshape_model_path(tmp_path):
    """y = Reshape(x[batch,seq,4], Concat(Shape(x)[0:1], [-1])): y is [batch, seq*4]."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="shape", start=0, end=1),
        helper.make_node("Concat", ["shape", "minus_one"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"], name="reshape"),
    ]
    minus_one = helper.make_tensor("minus_one", TensorProto.INT64, [1], [-1])
    graph = helper.make_graph(nodes, "flatten", [x], [y], [minus_one])
    path = tmp_path / "flatten.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_shapes_has_help():
    result = ferry_cli("shapes", "--help")
    assert result.returncode == 0 and "usage: ferry shapes" in result.stdout
    assert "--explain" in result.stdout and "--strict" in result.stdout


def test_shapes_lists_every_value_and_writes_the_inferred_model(reshape_model_path, tmp_path):
    out = tmp_path / "inferred.onnx"
    result = ferry_cli("shapes", reshape_model_path, "-o", out)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for expected in ("x: float[batch,seq,4]", "shape: int64[1]", "target: int64[2]", "y: float[batch,seq*4]"):
        assert f"  {expected}" in lines, result.stdout
    assert "minus_one" not in result.stdout  # initializers are not listed
    assert "diagnostics: none" in lines
    saved = onnx.load(out)
    infos = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
             for v in saved.graph.value_info}
    assert infos["target"] == [2]
    assert [d.dim_param for d in saved.graph.output[0].type.tensor_type.shape.dim] == ["batch", "seq*4"]


def test_shapes_explain_says_where_each_dim_comes_from(reshape_model_path):
    result = ferry_cli("shapes", reshape_model_path, "--explain", "y")
    assert result.returncode == 0, result.stderr
    assert "value 'y': float[batch,seq*4]" in result.stdout
    assert "node 'reshape' (Reshape)" in result.stdout and "graph input 'x'" in result.stdout


def test_shapes_strict_fails_on_a_conflict_and_writes_nothing(model_path, tmp_path):
    model = onnx.load(model_path)
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 4  # Relu gives [batch, 3]
    conflicting = tmp_path / "conflict.onnx"
    onnx.save(model, conflicting)
    out = tmp_path / "out.onnx"
    relaxed = ferry_cli("shapes", conflicting)
    assert relaxed.returncode == 0 and "'relu' (Relu)" in relaxed.stdout and "1 error" in relaxed.stdout
    strict = ferry_cli("shapes", conflicting, "--strict", "-o", out)
    assert strict.returncode == 1 and "'relu' (Relu)" in strict.stdout
    assert "model declares 4, inference gives 3" in strict.stdout
    assert not out.exists()


@pytest.mark.parametrize(
    "make_args, needle",
    [
        (lambda p, t: ["shapes", t / "missing.onnx"], "cannot read"),
        (lambda p, t: ["shapes", t / "corrupt.onnx"], "not a valid ONNX model"),
        (lambda p, t: ["shapes", p, "--explain", "tt"], "has no value of that name; did you mean 't'"),
    ],
    ids=["missing-file", "corrupt-file", "unknown-value"],
)
def test_shapes_errors_are_one_clear_line(model_path, tmp_path, make_args, needle):
    (tmp_path / "corrupt.onnx").write_bytes(b"\x08\x07garbage" * 10)
    line = _one_error_line(ferry_cli(*make_args(model_path, tmp_path)))
    assert needle in line


def test_convert_writes_the_model_at_the_target_opset(model_path, tmp_path):
    out = tmp_path / "at13.onnx"
    result = ferry_cli("convert", model_path, out, "--opset", "13")
    assert result.returncode == 0, result.stderr
    assert "opset 17 -> 13" in result.stdout
    converted = onnx.load(out)
    onnx.checker.check_model(converted, full_check=True)
    assert {o.domain: o.version for o in converted.opset_import}[""] == 13
    x = np.array([[1, -2, 3]], np.float32)
    (y,) = ferry.InferenceSession(str(out)).run(None, {"x": x})
    np.testing.assert_array_equal(y, np.maximum(x * [1, 2, 3], 0))


def test_convert_lists_blocking_nodes_and_writes_nothing(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [3], [1.0, 1.0, 1.0])
    node = helper.make_node("LayerNormalization", ["x", "scale"], ["y"], name="norm")
    graph = helper.make_graph([node], "g", [x], [y], [scale])
    path = tmp_path / "ln.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    out = tmp_path / "out.onnx"
    result = ferry_cli("convert", path, out, "--opset", "12")
    assert result.returncode == 1
    assert "nothing written" in result.stdout and "'norm' (LayerNormalization)" in result.stdout
    assert not out.exists()
