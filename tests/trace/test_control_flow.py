"""Control flow: specialization of Python decisions, warnings, strict mode, torch.cond."""

from __future__ import annotations

import pathlib
import warnings

import numpy as np
import pytest
import torch

import ferry
from tests.trace.helpers import check_export, numpy, run_both

THIS_FILE = pathlib.Path(__file__).name


def _line_of(function, text: str) -> int:
    import inspect

    lines, start = inspect.getsourcelines(function)
    return start + next(i for i, line in enumerate(lines) if text in line)


@pytest.mark.parametrize("flag", [True, False])
def test_seed_example_exports_only_the_path_taken(flag):
    def program(y):
        x = y * 2
        if flag:  # a Python value: specialized silently  # noqa: SIM108
            z = x + y
        else:
            z = x * y
        return z

    with warnings.catch_warnings():
        warnings.simplefilter("error", ferry.TracerWarning)
        exported = check_export(program, (torch.randn(3),))
    ops = [node.op_type for node in exported.graph if node.op_type != "Constant"]
    assert ops == (["Mul", "Add"] if flag else ["Mul", "Mul"])
    (two,) = [n.attribute("value").numpy() for n in exported.graph if n.op_type == "Constant"]
    assert two == 2  # the literal of y * 2
    assert exported.specializations == []


def data_dependent(x):
    if x.sum() > 0:  # decision on a tensor's value
        return x * 2
    return x - 1


def test_data_dependent_if_warns_with_file_and_line():
    with pytest.warns(ferry.TracerWarning, match="a Python bool") as record:
        exported = ferry.export(data_dependent, (torch.ones(3),))
    line = _line_of(data_dependent, "if x.sum() > 0")
    assert record[0].filename.endswith(THIS_FILE) and record[0].lineno == line
    (where,) = exported.specializations
    assert where.kind == "tensor-value" and where.lineno == line and where.filename.endswith(THIS_FILE)
    assert [n.op_type for n in exported.graph] == ["ReduceSum", "Greater", "Mul"] or "Mul" in [
        n.op_type for n in exported.graph
    ]


def test_item_and_int_warn():
    def program(x):
        scale = x.max().item()
        return x / scale

    with pytest.warns(ferry.TracerWarning, match=r"\.item\(\)"):
        ferry.export(program, (torch.arange(1.0, 4.0),))


def loop_over_dynamic_axis(x):
    total = torch.zeros(x.shape[1])
    for i in range(x.size(0)):  # a loop over a dynamic dimension
        total = total + x[i]
    return total


def test_shape_dependent_loop_warns_and_strict_raises():
    args = (torch.randn(3, 4),)
    with pytest.warns(ferry.TracerWarning, match="dynamic size") as record:
        exported = ferry.export(loop_over_dynamic_axis, args, input_names=["x"],
                                dynamic_axes={"x": {0: "n"}}, check=False)
    line = _line_of(loop_over_dynamic_axis, "for i in range")
    assert any(w.lineno == line and w.filename.endswith(THIS_FILE) for w in record)
    assert any(s.kind == "dynamic-size" and s.lineno == line for s in exported.specializations)
    with pytest.raises(ferry.ExportError, match=rf"{THIS_FILE}:{line}"):
        ferry.export(loop_over_dynamic_axis, args, input_names=["x"],
                     dynamic_axes={"x": {0: "n"}}, strict=True)


def test_strict_raises_on_data_dependent_if():
    with pytest.raises(ferry.ExportError, match="strict export"):
        ferry.export(data_dependent, (torch.ones(3),), strict=True)


def baked_size(x):
    n = int(x.shape[0])  # the size becomes a Python constant
    return x.reshape(n * 2, -1)


def test_baked_in_shape_is_caught_by_the_dynamic_axes_check():
    with pytest.warns(ferry.TracerWarning), pytest.raises(ferry.ExportError, match="other input sizes"):
        ferry.export(baked_size, (torch.randn(4, 6),), input_names=["x"], dynamic_axes={"x": {0: "n"}})


class Cond(torch.nn.Module):
    def forward(self, x):
        def positive(x):
            return x * 2

        def negative(x):
            return x.abs() + 1

        return torch.cond(x.sum() > 0, positive, negative, (x,))


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_torch_cond_exports_if_with_both_branches(sign):
    x = torch.ones(2, 3) * sign
    exported = ferry.export(Cond(), (x,), input_names=["x"], dynamic_axes={"x": {0: "n"}})
    ops = [n.op_type for n in exported.graph]
    assert "If" in ops
    (if_node,) = [n for n in exported.graph if n.op_type == "If"]
    branches = {
        name: [n.op_type for n in if_node.attribute(name) if n.op_type != "Constant"]
        for name in ("then_branch", "else_branch")
    }
    assert branches == {"then_branch": ["Mul"], "else_branch": ["Abs", "Add"]}
    for other in (torch.ones(4, 3), -torch.ones(1, 3), torch.randn(5, 3)):
        expected = numpy(Cond()(other))
        ort_out, ferry_out = run_both(exported, {"x": numpy(other)})
        np.testing.assert_allclose(ort_out[0], expected, rtol=1e-6)
        np.testing.assert_allclose(ferry_out[0], expected, rtol=1e-6)
