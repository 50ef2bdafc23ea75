"""Activations through the tracer: every one as an F function, torch function, Tensor method,
nn module and in-place form, at the newest opset and at older ones (decompositions); an
MLP and a network using each activation, with a dynamic batch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import ferry
from tests.trace.helpers import check_export
from tests.trace.test_math_reduce import check, rand

torch.manual_seed(0)

X = rand(3, 4, lo=-4, hi=4)
X4 = rand(2, 3, 4, 5, lo=-4, hi=4)

ACTIVATIONS = {
    "relu6": lambda x: F.relu6(x) + torch.nn.ReLU6()(x),
    "hardtanh": lambda x: F.hardtanh(x) + F.hardtanh(x, -0.5, 2.0),
    "leaky_relu": lambda x: F.leaky_relu(x) + F.leaky_relu(x, 0.2),
    "rrelu": lambda x: F.rrelu(x) + torch.nn.RReLU(0.1, 0.3).eval()(x),
    "elu": lambda x: F.elu(x) + F.elu(x, alpha=0.5),
    "selu": lambda x: F.selu(x) + torch.selu(x),
    "celu": lambda x: F.celu(x) + torch.celu(x, 2.0),
    "celu_double": lambda x: F.celu(x.double(), 0.5),
    "gelu": lambda x: F.gelu(x) + torch.nn.GELU()(x),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": lambda x: F.silu(x) + torch.nn.SiLU()(x),
    "mish": lambda x: F.mish(x),
    "softplus": lambda x: F.softplus(x) + F.softplus(x * 10, beta=2, threshold=5),
    "softsign": F.softsign,
    "hardswish": F.hardswish,
    "hardsigmoid": F.hardsigmoid,
    "sigmoid_tanh": lambda x: torch.sigmoid(x) + x.tanh() + torch.nn.Sigmoid()(x) + torch.nn.Tanh()(x),
    "logsigmoid": lambda x: F.logsigmoid(x * 30),
    "softmax": lambda x: (F.softmax(x, 1), x.softmax(0), torch.softmax(x, -1), torch.nn.Softmax(1)(x)),
    "softmax_dtype": lambda x: (F.softmax(x, -1, dtype=torch.float64), x.log_softmax(1, torch.float64)),
    "log_softmax": lambda x: (F.log_softmax(x * 10, 1), torch.log_softmax(x, 0), torch.nn.LogSoftmax(-1)(x)),
    "softmin": lambda x: F.softmin(x, 1),
    "threshold": lambda x: F.threshold(x, 0.5, -1.0) + torch.threshold(x, 0.0, 2.0),
    "hardshrink": lambda x: F.hardshrink(x) + x.hardshrink(1.0),
    "softshrink": lambda x: F.softshrink(x, 1.0),
    "tanhshrink": F.tanhshrink,
    "glu": lambda x: F.glu(x) + torch.nn.GLU(-1)(x),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation(name):
    check(ACTIVATIONS[name], X)


@pytest.mark.parametrize("opset", [13, 17, 18])
@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "mish", "hardswish", "softmax", "glu", "celu"])
def test_activation_older_opsets(name, opset):
    check(ACTIVATIONS[name], X, opset=opset)


def test_softmax_implicit_dim():
    with pytest.warns(UserWarning):
        check(lambda x: F.softmax(x, dtype=None) + F.log_softmax(x), X4[0])  # 3-D: dim 0


def test_inplace_forms():
    def fn(x):
        a, b, c, d = x.clone(), x.clone(), x.clone(), x.clone()
        F.relu6(a, inplace=True)
        F.elu_(b)
        torch.selu_(c)
        F.leaky_relu_(d, 0.3)
        e = F.hardtanh_(x.clone(), -0.5, 0.5) + torch.celu_(x.clone()) + torch.threshold_(x.clone(), 0.0, 1.0)
        f = F.silu(x.clone(), inplace=True) + F.hardswish(x.clone(), inplace=True) + F.mish(x.clone(), inplace=True)
        g = x.clone().sigmoid_() + x.clone().tanh_() + torch.rrelu_(x.clone())
        return a + b + c + d + e + f + g

    check(fn, X)


def test_prelu():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.channel = torch.nn.PReLU(3, init=0.1)
            self.single = torch.nn.PReLU()
            with torch.no_grad():
                self.channel.weight.copy_(torch.tensor([0.1, 0.2, 0.3]))

        def forward(self, x):
            return self.channel(x) + self.single(x) + F.prelu(x[0, 0], torch.tensor([0.5]))

    check(Net(), X4)


def test_rrelu_training_is_refused():
    with pytest.raises(ferry.UnsupportedOperatorError, match="training"):
        ferry.export(lambda x: F.rrelu(x, training=True), (X,))


class MLP(torch.nn.Module):
    """784-512-512-10 with ReLU and dropout."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Dropout(0.2),
            torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(512, 10),
        )

    def forward(self, x):
        return F.log_softmax(self.net(x), dim=1)


def test_mlp_dynamic_batch():
    exported = check_export(
        MLP(), (torch.randn(4, 1, 28, 28),), input_names=["image"], output_names=["log_probs"],
        dynamic_axes={"image": {0: "batch"}, "log_probs": {0: "batch"}},
        other_inputs=[(torch.randn(1, 1, 28, 28),), (torch.randn(7, 1, 28, 28),)], rtol=1e-3, atol=1e-4,
    )
    assert list(exported.graph.outputs[0].shape) == ["batch", 10]
    assert "Dropout" not in {n.op_type for n in exported.graph}


class Zoo(torch.nn.Module):
    """A stack of linear layers, each followed by another activation module."""

    ACTS = [
        torch.nn.ReLU(), torch.nn.ReLU6(), torch.nn.Hardtanh(-2, 2), torch.nn.LeakyReLU(0.1), torch.nn.ELU(),
        torch.nn.SELU(), torch.nn.CELU(0.8), torch.nn.GELU(), torch.nn.GELU("tanh"), torch.nn.SiLU(),
        torch.nn.Mish(), torch.nn.Softplus(2.0, 10.0), torch.nn.Softsign(), torch.nn.Hardswish(),
        torch.nn.Hardsigmoid(), torch.nn.Sigmoid(), torch.nn.Tanh(), torch.nn.LogSigmoid(),
        torch.nn.PReLU(16), torch.nn.Threshold(0.1, -0.5), torch.nn.Hardshrink(0.2), torch.nn.Softshrink(0.1),
        torch.nn.Tanhshrink(), torch.nn.RReLU(), torch.nn.Softmax(-1),
    ]

    def __init__(self):
        super().__init__()
        layers = []
        for act in self.ACTS:
            layers += [torch.nn.Linear(16, 16), act]
        self.body = torch.nn.Sequential(*layers)
        self.head = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GLU(), torch.nn.LogSoftmax(-1))

    def forward(self, x):
        return self.head(self.body(x) * 4)


@pytest.mark.parametrize("opset", [None, 17])
def test_activation_zoo(opset):
    torch.manual_seed(1)
    exported = check_export(
        Zoo(), (torch.randn(3, 16),), input_names=["x"], dynamic_axes={"x": {0: "batch"}},
        other_inputs=[(torch.randn(1, 16),), (torch.randn(6, 16),)], rtol=1e-3, atol=1e-4, opset_version=opset,
    )
    ops = {n.op_type for n in exported.graph}
    expected = {"Gelu", "Mish", "HardSwish"} if opset is None else {"Erf", "Softplus"}
    assert expected <= ops
