"""The tracer's core behaviour: the graph it builds, names, dynamic axes."""

from __future__ import annotations

import torch

from tests.trace.helpers import check_export


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(784, 64)
        self.fc2 = torch.nn.Linear(64, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def test_mlp_with_dynamic_batch():
    torch.manual_seed(0)
    model = MLP()
    exported = check_export(
        model, (torch.randn(2, 784),), input_names=["x"], output_names=["logits"],
        dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
        other_inputs=[(torch.randn(1, 784),), (torch.randn(5, 784),)],
    )
    assert [n.name for n in exported.graph] == ["/fc1/Gemm", "/Relu", "/fc2/Gemm"]
    assert list(exported.graph.outputs[0].shape) == ["batch", 10]
    assert sorted(exported.graph.initializers) == ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]
