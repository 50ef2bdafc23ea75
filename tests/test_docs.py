"""Every ```python example in the README and docs/ runs (each file's examples in order, in a
fresh process, in a folder holding the files the examples name)."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ferry

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _fixtures(folder: pathlib.Path) -> None:
    """model.onnx (x: float[batch,3,224,224] -> pooled features) and one test data set."""
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["x"], ["pooled"]), helper.make_node("Flatten", ["pooled"], ["y"])],
        "pool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), folder / "model.onnx")
    (folder / "test_data_set_0").mkdir()
    ferry.save_tensor(np.zeros((1, 3, 224, 224), np.float32), folder / "test_data_set_0" / "input_0.pb")


@pytest.mark.parametrize("page", [p for p in PAGES if BLOCK.search(p.read_text())], ids=lambda p: p.name)
def test_examples_run(page, tmp_path):
    _fixtures(tmp_path)
    blocks = [b for b in BLOCK.findall(page.read_text()) if not b.startswith("# not run")]
    script = "\n".join(blocks)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{page.name}:\n{result.stderr[-3000:]}"
