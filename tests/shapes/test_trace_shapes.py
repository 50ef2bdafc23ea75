"""Shape inference on the tracer's exports with dynamic axes: every value gets a full
shape, and the user's axis names reach the outputs."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

import ferry  # noqa: E402
from ferry.ir import TensorType  # noqa: E402
from ferry.shapes.expr import from_dim  # noqa: E402

HIDDEN, HEADS, VOCAB = 768, 12, 50


class Encoder(torch.nn.Module):
    """Embedding + one transformer block (self-attention, layer norms, MLP)."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = torch.nn.Embedding(VOCAB, HIDDEN)
        self.positions = torch.nn.Embedding(64, HIDDEN)
        self.qkv = torch.nn.Linear(HIDDEN, 3 * HIDDEN)
        self.proj = torch.nn.Linear(HIDDEN, HIDDEN)
        self.norm1 = torch.nn.LayerNorm(HIDDEN)
        self.norm2 = torch.nn.LayerNorm(HIDDEN)
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(HIDDEN, 256), torch.nn.GELU(), torch.nn.Linear(256, HIDDEN)
        )

    def forward(self, ids):
        batch, seq = ids.shape
        positions = torch.arange(seq).unsqueeze(0)
        x = self.tokens(ids) + self.positions(positions)
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        heads = [t.view(batch, seq, HEADS, HIDDEN // HEADS).transpose(1, 2) for t in (q, k, v)]
        scores = heads[0] @ heads[1].transpose(-2, -1) / math.sqrt(HIDDEN // HEADS)
        attended = (scores.softmax(-1) @ heads[2]).transpose(1, 2).reshape(batch, seq, HIDDEN)
        x = self.norm1(x + self.proj(attended))
        return self.norm2(x + self.mlp(x))


class SmallCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 16, 3)
        self.pool = torch.nn.MaxPool2d(2)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        return torch.flatten(torch.relu(self.conv2(x)), 2)


def _stripped(exported: ferry.Model) -> ferry.Model:
    """The export with everything but the graph inputs' types forgotten."""
    graph = exported.graph
    keep = {id(v) for v in graph.inputs} | {id(v) for v in graph.initializers.values()}
    for value in graph.values():
        if id(value) not in keep:
            value.type = None
    graph.value_info_order = []
    return exported


def _assert_fully_inferred(model: ferry.Model) -> None:
    for value in model.graph.values():
        if value.const_value is not None:
            continue
        assert isinstance(value.type, TensorType), f"{value.name}: type {value.type}"
        assert value.type.dtype is not None, f"{value.name}: no element type"
        shape = value.type.shape
        assert shape is not None, f"{value.name}: unknown rank"
        for dim in shape:
            assert dim is not None and not (isinstance(dim, str) and "unk__" in dim), (
                f"{value.name}: not fully inferred: {shape}"
            )


def test_bert_like_encoder_output_is_batch_seq_hidden():
    torch.manual_seed(0)
    ids = torch.randint(0, VOCAB, (2, 7))
    exported = ferry.export(Encoder().eval(), (ids,), input_names=["ids"], output_names=["out"],
                            dynamic_axes={"ids": {0: "batch", 1: "seq"}}, check=False)
    inferred = ferry.infer_shapes(_stripped(exported), strict=True)
    _assert_fully_inferred(inferred)
    assert list(inferred.graph.outputs[0].shape) == ["batch", "seq", HIDDEN]


@pytest.mark.parametrize("size", [(32, 48), (29, 35)])
def test_cnn_output_dims_are_expressions_of_the_input_names(size):
    torch.manual_seed(0)
    cnn = SmallCNN().eval()
    x = torch.randn(1, 3, 32, 32)
    exported = ferry.export(cnn, (x,), input_names=["x"], output_names=["y"],
                            dynamic_axes={"x": {0: "batch", 2: "height", 3: "width"}}, check=False)
    inferred = ferry.infer_shapes(_stripped(exported), strict=True)
    _assert_fully_inferred(inferred)
    dims = list(inferred.graph.outputs[0].shape)
    assert dims[:2] == ["batch", 16]
    with torch.no_grad():
        want = cnn(torch.randn(2, 3, *size)).shape
    bindings = {"batch": 2, "height": size[0], "width": size[1]}
    assert [from_dim(d).substitute(bindings) for d in dims] == list(want)
    # conv1 (k3 s2 p1): (H-1)//2+1; pool (k2 s2): ((H-1)//2-1)//2+1; conv2 (k3): that - 2;
    # flatten: the product, printed as built rather than expanded
    side = "(((height-1)//2-1)//2-1)", "(((width-1)//2-1)//2-1)"
    assert dims[2] == "*".join(side)
