"""Unsupported operations, user symbolics, and ferry.verify."""

from __future__ import annotations

import inspect

import pytest
import torch

import ferry
from ferry.trace import unregister_symbolic


def uses_an_unknown_op(x):
    return torch.special.bessel_j0(x)  # no built-in symbolic


def test_unsupported_op_names_the_operation_and_the_source_line():
    line = inspect.getsourcelines(uses_an_unknown_op)[1] + 1
    with pytest.raises(ferry.UnsupportedOperatorError) as info:
        ferry.export(uses_an_unknown_op, (torch.randn(3),))
    message = str(info.value)
    assert "bessel_j0" in message
    assert f"test_extending.py:{line}" in message
    assert "ferry.register_symbolic" in message


def test_register_symbolic_adds_an_operation():
    def bessel_j0_as_cos(g, x):  # a (wrong but recognizable) stand-in: cos
        return g.op("Cos", x)

    ferry.register_symbolic(torch.special.bessel_j0, bessel_j0_as_cos)
    try:
        exported = ferry.export(uses_an_unknown_op, (torch.randn(3),), check=False)
        assert [n.op_type for n in exported.graph] == ["Cos"]
    finally:
        unregister_symbolic(torch.special.bessel_j0)


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 8)
        self.fc2 = torch.nn.Linear(8, 2)

    def forward(self, x):
        h = self.fc1(x)
        h = torch.relu(h)  # the line a broken symbolic will be blamed on
        return self.fc2(h)


def test_verify_pinpoints_a_broken_symbolic():
    torch.manual_seed(0)
    model = Block().eval()
    x = torch.randn(3, 4)
    assert ferry.verify(ferry.export(model, (x,)), model, (x,)).ok

    def broken_relu(g, x, inplace=False):
        return g.op("Sigmoid", x)  # deliberately wrong

    ferry.register_symbolic(torch.relu, broken_relu)
    try:
        with pytest.raises(ferry.ExportError, match="does not match the program"):
            ferry.export(model, (x,))  # the export's own check catches it...
        exported = ferry.export(model, (x,), check=False)
        divergence = ferry.verify(exported, model, (x,))  # ...and verify says where
    finally:
        unregister_symbolic(torch.relu)
    line = inspect.getsourcelines(Block.forward)[1] + 2
    assert divergence.node == "/Sigmoid" and divergence.op_type == "Sigmoid"  # named by its op
    assert divergence.source == f"test_extending.py:{line}"
    assert divergence.max_difference > 0.01
    assert "/Sigmoid" in str(divergence) and f"test_extending.py:{line}" in str(divergence)
