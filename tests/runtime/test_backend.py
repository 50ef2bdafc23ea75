"""onnx's own BackendTest runner drives ferry through ferry.backend.

Runs onnx's node, simple and PyTorch model suites with onnx's runner (its comparison
rules, its data handling); the cases in conformance_skips.txt are excluded.
"""

from __future__ import annotations

import re

import onnx.backend.test
import pytest

import ferry.backend
from tests.runtime.test_conformance import SKIPS

_backend_test = onnx.backend.test.BackendTest(ferry.backend, __name__)
# onnx's runner compares sequence elements with len(), which fails on this case's 0-d
# tensors whatever the backend returns; test_conformance.py runs the case.
_backend_test.exclude(r"^test_loop16_seq_none_cpu$")
for _case_id in SKIPS:
    _backend_test.exclude(rf"^{re.escape(_case_id.split('/', 1)[1])}_cpu$")

_KEPT = (
    "OnnxBackendNodeModelTest",
    "OnnxBackendSimpleModelTest",
    "OnnxBackendPyTorchOperatorModelTest",
    "OnnxBackendPyTorchConvertedModelTest",
)
for _name in _KEPT:
    _case = _backend_test.test_cases[_name]
    for _attribute in [a for a in vars(_case) if a.endswith("_cuda")]:
        delattr(_case, _attribute)  # ferry runs on the CPU only
    globals()[_name] = _case


def test_backend_runs_a_single_node():
    import numpy as np
    from onnx import helper

    node = helper.make_node("Add", ["a", "b"], ["c"])
    a = np.arange(3, dtype=np.float32)
    (c,) = ferry.backend.run_node(node, [a, a])
    np.testing.assert_array_equal(c, a * 2)
    assert ferry.backend.supports_device("CPU") and not ferry.backend.supports_device("CUDA")


def test_backend_rejects_bad_model():
    with pytest.raises(ferry.FerryError):
        ferry.backend.prepare(b"not a model")
