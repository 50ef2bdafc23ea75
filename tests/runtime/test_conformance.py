"""The official ONNX conformance suites, run through ferry.InferenceSession.

Comparison follows onnx's backend test runner (onnx/backend/test/runner): same number
of outputs, same shape and dtype, ``np.testing.assert_allclose`` with the case's rtol
and atol (equality for strings). Skips live in conformance_skips.txt with a reason each.
"""

from __future__ import annotations

import pathlib

import pytest

from tests.conformance_data import SUITES, Case, cases
from tests.runtime.conformance_runner import run_case

SKIPS_FILE = pathlib.Path(__file__).with_name("conformance_skips.txt")


def _skips() -> dict[str, str]:
    skips = {}
    for line in SKIPS_FILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            case_id, reason = line.split(maxsplit=1)
            skips[case_id] = reason
    return skips


SKIPS = _skips()


def _params(suite):
    marks = []
    for case in cases(suite):
        mark = [pytest.mark.skip(reason=SKIPS[case.id])] if case.id in SKIPS else []
        marks.append(pytest.param(case, id=case.id, marks=mark))
    return marks


@pytest.mark.parametrize("case", [p for suite in SUITES for p in _params(suite)])
def test_conformance(case: Case) -> None:
    run_case(case)  # with ferry's graph optimizations, the session's default


@pytest.mark.parametrize("case", [p for suite in SUITES for p in _params(suite)])
def test_conformance_unoptimized(case: Case) -> None:
    run_case(case, optimized=False)


def test_skip_list_names_real_cases():
    known = {case.id for suite in SUITES for case in cases(suite)}
    stale = [case_id for case_id in SKIPS if case_id not in known]
    assert not stale, f"skip list names cases that do not exist: {stale}"
