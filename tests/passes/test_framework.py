"""The pass framework and ``optimize``: levels, fixed point, iteration bound, results."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import ferry
from ferry.passes import Pass, PassResult, optimize, standard_passes
from tests.passes.helpers import FLOAT, check_pass, make_model, op_counts, to_ferry


def _model():
    return make_model(
        [
            helper.make_node("Identity", ["x"], ["i"]),
            helper.make_node("Add", ["a", "a"], ["s"]),
            helper.make_node("Mul", ["i", "s"], ["m"]),
            helper.make_node("Transpose", ["m"], ["t"], perm=[1, 0]),
            helper.make_node("Transpose", ["t"], ["y"], perm=[1, 0]),
            helper.make_node("Neg", ["x"], ["unused"]),
        ],
        [("x", FLOAT, [2, 3])],
        [("y", FLOAT, [2, 3])],
        [("a", np.ones((2, 3), np.float32))],
    )


def test_level_0_changes_nothing():
    model = to_ferry(_model())
    before = ferry.model_to_bytes(model)
    assert optimize(model, level=0) is model
    assert ferry.model_to_bytes(model) == before


def test_level_1_runs_every_standard_pass():
    optimized = check_pass(_model())
    assert op_counts(optimized) == {"Mul": 1}
    assert optimized.graph.nodes[0].outputs[0].name == "y"


def test_unknown_level_is_refused():
    with pytest.raises(ferry.InvalidArgument, match="level"):
        optimize(to_ferry(_model()), level=2)


def test_every_pass_has_a_name_and_a_docstring():
    passes = standard_passes()
    assert len({p.name for p in passes}) == len(passes) == 9
    for pass_ in passes:
        assert type(pass_).__doc__ and len(type(pass_).__doc__) > 80, pass_


def test_pass_result_and_in_place_edit():
    model = to_ferry(_model())
    for pass_ in standard_passes():
        result = pass_(model)
        assert isinstance(result, PassResult) and result.model is model
        assert result.modified == (result.rewrites > 0)


class _Restless(Pass):
    """Claims a change every time: optimize must still stop."""

    name = "restless"

    def __init__(self):
        self.calls = 0

    def run(self, context):
        self.calls += 1
        return 1


def test_iterations_are_bounded_and_stats_add_up():
    restless = _Restless()
    stats = {"restless": 5}
    optimize(to_ferry(_model()), passes=[restless], max_iterations=4, stats=stats)
    assert restless.calls == 4 and stats == {"restless": 9}


def test_fixed_point_second_run_changes_nothing():
    model = to_ferry(_model())
    optimize(model)
    for pass_ in standard_passes():
        assert not pass_(model).modified, pass_.name
