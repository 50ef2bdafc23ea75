"""Recurrent layers, attention and transformers: nn.LSTM / GRU / RNN and their cells,
F.scaled_dot_product_attention, nn.MultiheadAttention, nn.Transformer{Encoder,Decoder},
and Hugging Face BERT / GPT-2 built from small random configs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import ferry
from tests.trace.helpers import check_export

RECURRENT = {"rtol": 1e-3, "atol": 1e-4}


# -- recurrent layers ----------------------------------------------------------------------------
class Recurrent(torch.nn.Module):
    """An nn.LSTM / GRU / RNN called with or without its initial state(s)."""

    def __init__(self, layer: torch.nn.Module) -> None:
        super().__init__()
        self.rnn = layer

    def forward(self, x, *state):
        if not state:
            return self.rnn(x)
        return self.rnn(x, state if isinstance(self.rnn, torch.nn.LSTM) else state[0])


def _recurrent_case(cls, batch_first: bool, with_state: bool, **kwargs):
    layer = cls(4, 6, num_layers=2, bidirectional=True, batch_first=batch_first, **kwargs)
    states = (2 if cls is torch.nn.LSTM else 1) if with_state else 0

    def inputs(batch, steps):
        x = torch.randn(batch, steps, 4) if batch_first else torch.randn(steps, batch, 4)
        return (x, *(torch.randn(4, batch, 6) for _ in range(states)))

    names = ["x", "h0", "c0"][: 1 + states]
    axes = {"x": {0: "batch", 1: "seq"} if batch_first else {0: "seq", 1: "batch"}}
    axes.update({name: {1: "batch"} for name in names[1:]})
    return Recurrent(layer), inputs, names, axes


@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "h0"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["seq_first", "batch_first"])
@pytest.mark.parametrize("cls", [torch.nn.LSTM, torch.nn.GRU], ids=["lstm", "gru"])
def test_stacked_bidirectional_recurrent(cls, batch_first, with_state):
    torch.manual_seed(0)
    model, inputs, names, axes = _recurrent_case(cls, batch_first, with_state)
    exported = check_export(model, inputs(2, 3), input_names=names, dynamic_axes=axes,
                            other_inputs=[inputs(1, 5), inputs(4, 2)], **RECURRENT)
    op = cls.__name__
    assert [n.op_type for n in exported.graph].count(op) == 2  # one node per layer
    assert exported.specializations == []


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn(nonlinearity):
    torch.manual_seed(0)
    model, inputs, names, axes = _recurrent_case(torch.nn.RNN, True, True, nonlinearity=nonlinearity)
    check_export(model, inputs(2, 3), input_names=names, dynamic_axes=axes,
                 other_inputs=[inputs(3, 6)], **RECURRENT)


def test_single_layer_without_bias_at_opset_17():
    torch.manual_seed(0)
    model = torch.nn.GRU(5, 3, bias=False)
    check_export(model, (torch.randn(4, 2, 5),), input_names=["x"], dynamic_axes={"x": [0, 1]},
                 other_inputs=[(torch.randn(7, 1, 5),)], opset_version=17, **RECURRENT)


class CellLoop(torch.nn.Module):
    """LSTMCell -> GRUCell -> RNNCell stepped over time in Python."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTMCell(4, 6)
        self.gru = torch.nn.GRUCell(6, 6)
        self.rnn = torch.nn.RNNCell(6, 6, nonlinearity="relu")

    def forward(self, x):
        h = c = g = r = None
        for step in x.unbind(1):
            h, c = self.lstm(step) if h is None else self.lstm(step, (h, c))
            g = self.gru(h, g)
            r = self.rnn(g, r)
        return r, c


def test_cells_in_a_loop_share_their_weights():
    torch.manual_seed(0)
    exported = check_export(CellLoop(), (torch.randn(2, 3, 4),), input_names=["x"],
                            dynamic_axes={"x": {0: "batch"}}, other_inputs=[(torch.randn(5, 3, 4),)],
                            **RECURRENT)
    assert len(exported.graph.initializers) == 9  # W, R, B of each cell, once


def test_weights_computed_in_the_graph():
    """Weights that are graph values (not parameters) are reordered by Split / Concat nodes."""
    torch.manual_seed(0)

    def lstm(x, w_ih, w_hh, b_ih, b_hh, h0, c0):
        weights = [w_ih, w_hh * 0.5, b_ih, b_hh] * 2
        return torch.lstm(x, (h0, c0), weights, True, 1, 0.0, False, True, False)

    hidden = 6
    args = (torch.randn(3, 2, 4), torch.randn(4 * hidden, 4), torch.randn(4 * hidden, hidden),
            torch.randn(4 * hidden), torch.randn(4 * hidden), torch.randn(2, 2, hidden), torch.randn(2, 2, hidden))
    exported = check_export(lstm, args, **RECURRENT)
    assert not exported.graph.initializers


@pytest.mark.filterwarnings("ignore:LSTM with projections:UserWarning")
def test_lstm_with_projection_is_unsupported():
    with pytest.raises(ferry.UnsupportedOperatorError, match="proj_size"):
        ferry.export(torch.nn.LSTM(4, 6, proj_size=3), (torch.randn(3, 2, 4),))


def test_packed_sequences_are_unsupported():
    lstm = torch.nn.LSTM(4, 6)

    def packed(x, lengths):
        return lstm(torch.nn.utils.rnn.pack_padded_sequence(x, lengths))[1][0]

    with pytest.raises(ferry.UnsupportedOperatorError, match="pack_padded_sequence"):
        ferry.export(packed, (torch.randn(3, 2, 4), torch.tensor([3, 2])))


# -- scaled_dot_product_attention ---------------------------------------------------------------
def _qkv(batch, length, source, heads=2, kv_heads=2):
    return torch.randn(batch, heads, length, 8), torch.randn(batch, kv_heads, source, 8), \
        torch.randn(batch, kv_heads, source, 8)


QKV_AXES = {"q": {0: "b", 2: "l"}, "k": {0: "b", 2: "s"}, "v": {0: "b", 2: "s"}}
SDPA_CASES = {
    "plain": lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
    "causal": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
    "scale": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=0.3),
    "causal_3d": lambda q, k, v: F.scaled_dot_product_attention(q[:, 0], k[:, 0], v[:, 0], is_causal=True),
}


@pytest.mark.parametrize("opset", [17, 28])
@pytest.mark.parametrize("case", list(SDPA_CASES))
def test_scaled_dot_product_attention(case, opset):
    torch.manual_seed(0)
    exported = check_export(SDPA_CASES[case], _qkv(2, 3, 4), input_names=["q", "k", "v"],
                            dynamic_axes=QKV_AXES, other_inputs=[_qkv(1, 2, 6), _qkv(3, 5, 5)],
                            opset_version=opset)
    ops = {n.op_type for n in exported.graph}
    assert ("Attention" in ops) == (opset >= 23 and case != "causal_3d")


@pytest.mark.parametrize("opset", [17, 28])
@pytest.mark.parametrize("kind", ["bool", "float"])
def test_scaled_dot_product_attention_with_a_mask(kind, opset):
    torch.manual_seed(0)

    def inputs(batch, length, source):
        if kind == "bool":
            mask = torch.rand(length, source) > 0.4
            mask[0] = False  # a fully masked row: torch gives zeros
        else:
            mask = torch.randn(length, source)
            mask[0] = float("-inf")
        return (*_qkv(batch, length, source), mask)

    def attention(q, k, v, mask):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    axes = {**QKV_AXES, "mask": {0: "l", 1: "s"}}
    check_export(attention, inputs(2, 3, 4), input_names=["q", "k", "v", "mask"], dynamic_axes=axes,
                 other_inputs=[inputs(1, 2, 6), inputs(3, 5, 5)], opset_version=opset)


@pytest.mark.parametrize("opset", [17, 28])
def test_grouped_query_attention(opset):
    torch.manual_seed(0)

    def attention(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)

    check_export(attention, _qkv(2, 3, 3, 4, 2), input_names=["q", "k", "v"], dynamic_axes=QKV_AXES,
                 other_inputs=[_qkv(1, 6, 6, 4, 2)], opset_version=opset)


# -- nn.MultiheadAttention ------------------------------------------------------------------------
class SelfAttention(torch.nn.Module):
    def __init__(self, batch_first: bool, need_weights: bool) -> None:
        super().__init__()
        self.mha = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first)
        self.need_weights = need_weights

    def forward(self, x, padding):
        out, weights = self.mha(x, x, x, key_padding_mask=padding, need_weights=self.need_weights)
        return (out, weights) if self.need_weights else out


def _padded(batch, steps, batch_first=True):
    x = torch.randn(batch, steps, 8) if batch_first else torch.randn(steps, batch, 8)
    padding = torch.zeros(batch, steps, dtype=torch.bool)
    padding[0, -1] = True
    return x, padding


@pytest.mark.parametrize("need_weights", [True, False], ids=["weights", "no_weights"])
@pytest.mark.parametrize("batch_first", [True, False], ids=["batch_first", "seq_first"])
def test_multihead_self_attention(batch_first, need_weights):
    torch.manual_seed(0)
    axes = {"x": {0: "b", 1: "t"} if batch_first else {0: "t", 1: "b"}, "padding": {0: "b", 1: "t"}}
    check_export(SelfAttention(batch_first, need_weights), _padded(2, 3, batch_first),
                 input_names=["x", "padding"], dynamic_axes=axes,
                 other_inputs=[_padded(1, 4, batch_first), _padded(3, 2, batch_first)])


class CrossAttention(torch.nn.Module):
    def __init__(self, **kwargs) -> None:
        super().__init__()
        self.mha = torch.nn.MultiheadAttention(8, 2, batch_first=True, **kwargs)

    def forward(self, q, kv, padding, mask):
        return self.mha(q, kv, kv, key_padding_mask=padding, attn_mask=mask, average_attn_weights=False)


@pytest.mark.parametrize("options", [{}, {"add_bias_kv": True, "add_zero_attn": True}, {"bias": False}],
                         ids=["plain", "bias_kv_zero_attn", "no_bias"])
def test_multihead_cross_attention_with_masks(options):
    torch.manual_seed(0)

    def inputs(batch, length, source, mask_3d=False):
        padding = torch.zeros(batch, source)
        padding[:, -1] = float("-inf")
        mask = torch.randn(batch * 2, length, source) if mask_3d else torch.randn(length, source)
        return torch.randn(batch, length, 8), torch.randn(batch, source, 8), padding, mask

    axes = {"q": {0: "b", 1: "l"}, "kv": {0: "b", 1: "s"}, "padding": {0: "b", 1: "s"}, "mask": {0: "l", 1: "s"}}
    names = ["q", "kv", "padding", "mask"]
    model = CrossAttention(**options)
    check_export(model, inputs(2, 3, 4), input_names=names, dynamic_axes=axes,
                 other_inputs=[inputs(1, 2, 5), inputs(3, 4, 2)])
    check_export(model, inputs(2, 3, 4, mask_3d=True), input_names=names, opset_version=17)


class Unbatched(torch.nn.Module):
    """Separate key / value sizes (kdim, vdim) on unbatched ``[L, E]`` inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.mha = torch.nn.MultiheadAttention(8, 2, kdim=6, vdim=5)

    def forward(self, q, k, v, mask):
        out, weights = self.mha(q, k, v, attn_mask=mask)
        fast, _ = self.mha(q, k, v, attn_mask=mask, need_weights=False)
        return out, weights, fast


def test_multihead_attention_unbatched_with_separate_projections():
    torch.manual_seed(0)

    def inputs(length, source):
        masked = torch.rand(length, source) < 0.4  # True: not attended (nn.MultiheadAttention's rule)
        masked[:, 0] = False
        return torch.randn(length, 8), torch.randn(source, 6), torch.randn(source, 5), masked

    axes = {"q": {0: "l"}, "k": {0: "s"}, "v": {0: "s"}, "mask": {0: "l", 1: "s"}}
    check_export(Unbatched(), inputs(3, 4), input_names=["q", "k", "v", "mask"], dynamic_axes=axes,
                 other_inputs=[inputs(5, 2)])


# -- nn.Transformer layers ------------------------------------------------------------------------
class Encoder(torch.nn.Module):
    def __init__(self, norm_first: bool, nested: bool = False) -> None:
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, norm_first=norm_first)
        self.encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=nested)

    def forward(self, x, padding):
        out = self.encoder(x, src_key_padding_mask=padding)
        # torch's nested-tensor fast path leaves zeros at padded positions, its normal path
        # (which the tracer records) computes them: compare the real positions only
        return out.masked_fill(padding.unsqueeze(-1), 0.0)


@pytest.mark.filterwarnings("ignore:.*nested tensor:UserWarning", "ignore:enable_nested_tensor:UserWarning")
@pytest.mark.parametrize("nested", [False, True], ids=["normal_path", "fast_path"])
@pytest.mark.parametrize("norm_first", [False, True], ids=["post_norm", "pre_norm"])
def test_transformer_encoder_with_padding_mask(norm_first, nested):
    torch.manual_seed(0)
    check_export(Encoder(norm_first, nested), _padded(2, 3), input_names=["x", "padding"],
                 dynamic_axes={"x": {0: "b", 1: "t"}, "padding": {0: "b", 1: "t"}},
                 other_inputs=[_padded(1, 4), _padded(3, 6)], **RECURRENT)


class Decoder(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layer = torch.nn.TransformerDecoderLayer(8, 2, 16, batch_first=True)
        self.decoder = torch.nn.TransformerDecoder(layer, 2)

    def forward(self, tgt, memory, memory_padding):
        mask = torch.nn.Transformer.generate_square_subsequent_mask(tgt.size(1))
        return self.decoder(tgt, memory, tgt_mask=mask, tgt_is_causal=True,
                            memory_key_padding_mask=memory_padding)


def test_transformer_decoder_with_causal_mask():
    torch.manual_seed(0)

    def inputs(batch, length, source):
        _, padding = _padded(batch, source)
        return torch.randn(batch, length, 8), torch.randn(batch, source, 8), padding

    axes = {"tgt": {0: "b", 1: "t"}, "memory": {0: "b", 1: "s"}, "padding": {0: "b", 1: "s"}}
    check_export(Decoder(), inputs(2, 3, 4), input_names=["tgt", "memory", "padding"], dynamic_axes=axes,
                 other_inputs=[inputs(1, 5, 2), inputs(3, 2, 6)], **RECURRENT)


def test_triangular_masks():
    def masks(x):
        steps = x.size(-1)
        future = torch.ones(steps, steps, dtype=torch.bool).triu(1)
        return x.masked_fill(future, -1e4), torch.tril(x, diagonal=-1), x.triu(steps - 2)

    check_export(masks, (torch.randn(2, 4, 4),), input_names=["x"], dynamic_axes={"x": {1: "n", 2: "n"}},
                 other_inputs=[(torch.randn(2, 6, 6),)], opset_version=17)


class Seq2Seq(torch.nn.Module):
    """nn.Transformer with a padded source and a causal target mask made from the dynamic size."""

    def __init__(self) -> None:
        super().__init__()
        self.transformer = torch.nn.Transformer(8, 2, 1, 1, 16, batch_first=True)

    def forward(self, src, tgt, src_padding):
        steps = tgt.size(1)
        allowed = torch.ones(steps, steps, dtype=torch.bool).tril()
        mask = torch.zeros(steps, steps).masked_fill(~allowed, float("-inf"))
        return self.transformer(src, tgt, tgt_mask=mask, src_key_padding_mask=src_padding,
                                memory_key_padding_mask=src_padding, tgt_is_causal=True)


@pytest.mark.filterwarnings("ignore:.*nested tensor:UserWarning")
def test_transformer_with_masks():
    torch.manual_seed(0)

    def inputs(batch, source, length):
        src, padding = _padded(batch, source)
        return src, torch.randn(batch, length, 8), padding

    axes = {"src": {0: "b", 1: "s"}, "tgt": {0: "b", 1: "t"}, "padding": {0: "b", 1: "s"}}
    check_export(Seq2Seq(), inputs(2, 4, 3), input_names=["src", "tgt", "padding"], dynamic_axes=axes,
                 other_inputs=[inputs(1, 2, 5), inputs(3, 6, 2)], **RECURRENT)


# -- Hugging Face transformers, from random configs ------------------------------------------------
def _token_inputs(batch, steps):
    ids = torch.randint(0, 100, (batch, steps))
    mask = torch.ones(batch, steps, dtype=torch.int64)
    mask[0, -1] = 0  # padding in the example keeps the mask in the graph
    return ids, mask


class HuggingFace(torch.nn.Module):
    """A transformers model called with input_ids and attention_mask."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        return out.last_hidden_state


def _bert(implementation):
    from transformers import BertConfig, BertModel

    return BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                intermediate_size=64, attn_implementation=implementation))


def _gpt2(implementation):
    from transformers import GPT2Config, GPT2Model

    return GPT2Model(GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=100,
                                attn_implementation=implementation))


@pytest.mark.parametrize(("make", "implementation", "opset"), [
    (_bert, "sdpa", None), (_bert, "eager", None), (_gpt2, "sdpa", None), (_gpt2, "eager", None),
    (_gpt2, "sdpa", 17),
], ids=["bert-sdpa", "bert-eager", "gpt2-sdpa", "gpt2-eager", "gpt2-sdpa-opset17"])
@pytest.mark.filterwarnings("ignore::ferry.TracerWarning")
def test_hugging_face_models(make, implementation, opset):
    """BERT and GPT-2 with padding in the attention mask; at opset >= 23 their sdpa
    attention becomes ONNX Attention, otherwise (and with eager) MatMul / Softmax.
    transformers' mask utilities take Python decisions on sizes and on the mask's
    values (e.g. "no padding: drop the mask"): reported as specializations, all theirs."""
    pytest.importorskip("transformers")
    torch.manual_seed(0)
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
    exported = check_export(HuggingFace(make(implementation)), _token_inputs(2, 5),
                            input_names=["input_ids", "attention_mask"], dynamic_axes=axes,
                            other_inputs=[_token_inputs(1, 3), _token_inputs(3, 8)], opset_version=opset,
                            **RECURRENT)
    assert all("transformers" in s.filename for s in exported.specializations)
    ops = [n.op_type for n in exported.graph]
    assert ops.count("Attention") == (2 if implementation == "sdpa" and opset is None else 0)
