"""Every official conformance model, optimized, still passes its conformance case.

For each case of the node, pytorch-converted, pytorch-operator, simple and light suites
(minus tests/runtime/conformance_skips.txt): load, ``optimize``, save, then require
``ferry.check_model`` and ``onnx.checker.check_model`` to accept the saved model and
``run_case`` (ferry.InferenceSession against the expected outputs) to pass on it, and a
second ``optimize`` to find nothing left to do. Rewrite counts are summed per pass and
printed at the end of the run (see conftest.py).
"""

from __future__ import annotations

import dataclasses

import onnx
import pytest

import ferry
from ferry.passes import optimize, standard_passes
from tests.conformance_data import SUITES, Case, cases, save_for_case
from tests.passes.conftest import SWEEP_TOTALS
from tests.runtime.conformance_runner import run_case
from tests.runtime.test_conformance import SKIPS


def _params():
    return [
        pytest.param(case, id=case.id)
        for suite in SUITES
        for case in cases(suite)
        if case.id not in SKIPS
    ]


def _node_count(model) -> int:
    return sum(1 for _ in model.graph.all_nodes())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """One folder per suite, reused: a fresh tmp_path per case costs more than the case."""
    return tmp_path_factory.mktemp("optimized")


@pytest.mark.parametrize("case", _params())
def test_optimized_model_passes_its_case(case: Case, workdir):
    model = ferry.load(case.model_path)
    before = _node_count(model)
    stats: dict[str, int] = {}
    optimize(model, stats=stats)
    path = save_for_case(model, case, workdir / case.suite)
    ferry.check_model(path)
    onnx.checker.check_model(str(path))
    run_case(dataclasses.replace(case, model_path=path))
    for pass_ in standard_passes():
        assert not pass_(model).modified, f"{pass_.name} still rewrites after optimize"
    SWEEP_TOTALS["models"] += 1
    SWEEP_TOTALS["nodes before"] += before
    SWEEP_TOTALS["nodes after"] += _node_count(model)
    SWEEP_TOTALS["models changed"] += int(any(stats.values()))
    for name, count in stats.items():
        SWEEP_TOTALS[name] += count
