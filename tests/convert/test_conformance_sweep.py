"""Every conformance model of opset >= 7, converted to the newest opset and to older ones.

For each case of every suite (minus tests/runtime/conformance_skips.txt) the model goes
to a fixed set of targets: the newest opset, the opset just below the model's, and 13
and 9 where they are below it (light models: see LIGHT_RUN_EVERY_TARGET). Each attempt
must end one of two ways: a model that ``ferry.check_model`` and
``onnx.checker.check_model`` accept and that gives the case's expected outputs in
ferry.InferenceSession (graph optimizations off, so the conversion alone is tested), or
a ConversionError whose ``blocking`` names nodes with a reason. Any other exception, or
a wrong output, fails. Per-suite figures print at the end.
"""

from __future__ import annotations

import dataclasses

import onnx
import pytest

import ferry
from ferry.convert import ConversionError, convert_version
from ferry.opset import latest_opset
from tests.conformance_data import SUITES, Case, cases, save_for_case
from tests.convert.conftest import SWEEP_OUTCOMES
from tests.runtime.conformance_runner import run_case
from tests.runtime.test_conformance import SKIPS

# case id -> reason; a case listed here is expected to fail one of its conversions.
EXPECTED_FAILURES: dict[str, str] = {}

OLDER_TARGETS = (13, 9)
# The light models take seconds per run: the others run only their newest-opset conversion
# (every target is still converted and checked).
LIGHT_RUN_EVERY_TARGET = {"light_bvlc_alexnet", "light_squeezenet", "light_zfnet512"}


def targets(opset: int) -> list[int]:
    """The newest opset, the one below the model's, and 13 and 9 when older than it."""
    wanted = [latest_opset(), opset - 1, *OLDER_TARGETS]
    return [t for i, t in enumerate(wanted) if t >= 7 and t != opset and t not in wanted[:i]]


def _params():
    return [
        pytest.param(case, id=case.id, marks=[pytest.mark.xfail(reason=EXPECTED_FAILURES[case.id], strict=True)]
                     if case.id in EXPECTED_FAILURES else [])
        for suite in SUITES
        for case in cases(suite)
        if case.id not in SKIPS
    ]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("converted")


def _check_and_run(model, case: Case, folder, *, run: bool) -> None:
    path = save_for_case(model, case, folder)
    ferry.check_model(model)
    onnx.checker.check_model(str(path))
    if run:
        run_case(dataclasses.replace(case, model_path=path), optimized=False)


@pytest.mark.parametrize("case", _params())
def test_conversion_keeps_outputs(case: Case, workdir):
    model = ferry.load(case.model_path)
    if model.opset < 7:
        pytest.skip(f"opset {model.opset} is older than the converter's range (7 and newer)")
    for target in targets(model.opset):
        try:
            converted = convert_version(model, target)
        except ConversionError as error:
            SWEEP_OUTCOMES[case.suite, "blocked"] += 1
            assert error.blocking, f"{case.id} -> {target}: a ConversionError with no blocking node"
            assert all(where.startswith("node ") and reason for where, reason in error.blocking)
            continue
        try:
            assert converted.opset == target
            run = case.suite != "light" or target == latest_opset() or case.name in LIGHT_RUN_EVERY_TARGET
            _check_and_run(converted, case, workdir / case.suite / f"{case.name}_{target}", run=run)
        except Exception:
            SWEEP_OUTCOMES[case.suite, "failed"] += 1
            raise
        SWEEP_OUTCOMES[case.suite, "converted"] += 1
