"""Attention: ``F.scaled_dot_product_attention`` and ``F.multi_head_attention_forward``.

``nn.MultiheadAttention`` and the ``nn.Transformer*`` layers take their Python path under
the tracer (their fused fast paths are skipped whenever a torch function mode is active),
which reaches the tracer as one ``multi_head_attention_forward`` call: it is built here
from projections and the attention core. The core is ONNX ``Attention`` from opset 23 for
4-D inputs, otherwise MatMul / Softmax / MatMul, with torch's conventions: a boolean mask
keeps the True positions, a float mask is added to the scores, ``is_causal`` keeps keys
``j <= i`` (top-left aligned), and fully masked rows give zeros (nn.MultiheadAttention's
boolean masks are the other way round: True marks a key *not* to attend). ``triu`` /
``tril`` (causal masks) are here too.

torch's nested-tensor fast path of ``nn.TransformerEncoder`` (eval, no grad, a
``src_key_padding_mask``) returns zeros at padded positions; the export computes them as
torch's normal path does. The other positions agree.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from ferry.errors import TracerWarning, UnsupportedOperatorError
from ferry.trace.registry import symbolic
from ferry.trace.symbolics._helpers import dtype_code, numpy_dtype
from ferry.trace.symbolics.rnn import derived_initializer
from ferry.trace.tracer import Var, numpy_of, user_frame

F = torch.nn.functional


def _unsupported(what: str) -> UnsupportedOperatorError:
    filename, lineno = user_frame()
    return UnsupportedOperatorError(f"{filename}:{lineno}: {what} is not supported by the tracer")


def _ignore_dropout(p) -> None:
    if p:
        filename, lineno = user_frame()
        warnings.warn_explicit(f"ferry: attention dropout (p={p}) is exported as inference: no dropout",
                               TracerWarning, filename, lineno)


# -- the attention core ------------------------------------------------------------------------
def _dim(g, x, axis: int):
    """Size of ``x`` along ``axis`` as an int64 scalar value."""
    shape = g.op("Shape", x, start=axis, end=axis + 1)  # axis < -1
    return g.op("Squeeze", shape, g.int64([0]))


def _causal_mask(g, q, k):
    """Boolean ``[L, S]``: key ``j`` is visible from query ``i`` when ``j <= i``."""
    zero, one = g.int64(0), g.int64(1)
    rows = g.op("Unsqueeze", g.op("Range", zero, _dim(g, q, -2), one), g.int64([1]))
    cols = g.op("Range", zero, _dim(g, k, -2), one)
    return g.op("LessOrEqual", cols, rows)


def _neg_inf(g, dtype: torch.dtype):
    return g.const(np.asarray(-np.inf, dtype=numpy_dtype(dtype)))


def _mask_scores(g, scores, mask, causal: bool, q, k, dtype):
    """Apply ``mask`` (a Var, or an additive Value of ``dtype``) and the causal structure."""
    if causal:
        scores = g.op("Where", _causal_mask(g, q, k), scores, _neg_inf(g, dtype))
    if mask is None:
        return scores
    if getattr(mask, "dtype", dtype) == torch.bool:
        return g.op("Where", mask, scores, _neg_inf(g, dtype))
    return g.op("Add", scores, _cast(g, mask, dtype))


def _cast(g, x, dtype):
    """A Var as ``dtype``; graph Values (additive masks built here) already are."""
    if isinstance(x, Var) and x.dtype != dtype:
        return g.op("Cast", x, to=dtype_code(dtype))
    return x


def _swap_last(g, x, rank: int):
    perm = list(range(rank))
    perm[-2], perm[-1] = perm[-1], perm[-2]
    return g.op("Transpose", x, perm=perm)


def attention_probs(g, q, k, rank: int, *, scale: float, mask=None, causal=False, dtype=torch.float32):
    """softmax(q k^T * scale + mask) over the keys: ``[..., L, S]``."""
    scaled = g.op("Mul", q, g.const(np.asarray(scale, dtype=numpy_dtype(dtype))))
    scores = g.op("MatMul", scaled, _swap_last(g, k, rank))
    scores = _mask_scores(g, scores, mask, causal, q, k, dtype)
    return g.op("Softmax", scores, axis=-1)


def _zero_nan_rows(g, probs, dtype):
    """Rows whose keys are all masked: softmax gives NaN, torch gives zeros."""
    zero = g.const(np.asarray(0, dtype=numpy_dtype(dtype)))
    return g.op("Where", g.op("IsNaN", probs), zero, probs)


def _repeat_heads(g, x, rank: int, repeats: int):
    """``x.repeat_interleave(repeats, dim=-3)``: grouped-query attention's shared heads."""
    if repeats == 1:
        return x
    axis = rank - 3
    grown = g.op("Unsqueeze", x, g.int64([axis + 1]))
    tiles = [1] * (rank + 1)
    tiles[axis + 1] = repeats
    grown = g.op("Expand", grown, g.int64(tiles))
    shape = g.op("Shape", x)
    heads = g.op("Mul", g.op("Shape", x, start=axis, end=axis + 1), g.int64([repeats]))
    parts = [g.op("Slice", shape, g.int64([0]), g.int64([axis]), g.int64([0])), heads,
             g.op("Slice", shape, g.int64([axis + 1]), g.int64([rank]), g.int64([0]))]
    return g.op("Reshape", grown, g.op("Concat", *parts, axis=0))


def attend(g, q, k, v, rank: int, *, scale: float, mask=None, causal=False, dtype=torch.float32):
    """softmax(q k^T * scale + mask) v, fully masked rows giving zeros: ONNX Attention
    (opset >= 23, 4-D) or its decomposition. ``mask`` is a Var (boolean or float) or an
    additive Value of ``dtype``; grouped heads are repeated by the caller."""
    if g.opset >= 23 and rank == 4 and dtype in (torch.float32, torch.float16):
        if mask is not None and getattr(mask, "dtype", dtype) != torch.bool:
            mask = _cast(g, mask, dtype)
        return g.op("Attention", q, k, v, mask, is_causal=int(causal), scale=float(scale))
    probs = attention_probs(g, q, k, rank, scale=scale, mask=mask, causal=causal, dtype=dtype)
    if mask is not None:
        probs = _zero_nan_rows(g, probs, dtype)
    return g.op("MatMul", probs, v)


def _static(size, what: str) -> int:
    if not isinstance(size, int):
        raise _unsupported(f"a dynamic {what}")
    return size


@symbolic(F.scaled_dot_product_attention)
def scaled_dot_product_attention(g, query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                                 scale=None, enable_gqa=False):
    """softmax(Q K^T * scale + mask) V (default scale 1/sqrt(E)); dropout is not exported."""
    _ignore_dropout(dropout_p)
    dtype = query.dtype
    rank = query.rank
    if scale is None:
        scale = 1.0 / math.sqrt(_static(query.shape[-1], "head size"))
    k, v = key.value, value.value
    native = g.opset >= 23 and rank == 4  # ONNX Attention shares kv heads itself
    if enable_gqa and rank >= 3 and not native:
        heads, kv_heads = _static(query.shape[-3], "head count"), _static(key.shape[-3], "head count")
        k = _repeat_heads(g, k, rank, heads // kv_heads)
        v = _repeat_heads(g, v, rank, heads // _static(value.shape[-3], "head count"))
    return attend(g, query, k, v, rank, scale=scale, mask=attn_mask, causal=bool(is_causal), dtype=dtype)


# -- causal masks -------------------------------------------------------------------------------
def _trilu(upper: bool):
    def fn(g, x, diagonal=0, *, out=None):
        return g.op("Trilu", x, g.int_value(diagonal), upper=int(upper))

    fn.__doc__ = f"torch.{'triu' if upper else 'tril'}(x, diagonal): ONNX Trilu (causal masks)."
    return fn


T = torch.Tensor
triu = symbolic(torch.triu, T.triu, T.triu_)(_trilu(True))
tril = symbolic(torch.tril, T.tril, T.tril_)(_trilu(False))


# -- nn.MultiheadAttention --------------------------------------------------------------------
def _constant_weight(g, var: Var) -> bool:
    return not g.tracer.is_traced(var.tensor)


def _weight_t(g, w: Var, rows: tuple[int, int] | None, suffix: str):
    """``w[rows].T`` for ``x @ w.T``: an initializer for parameters, nodes otherwise."""
    if _constant_weight(g, w):
        name = g.tracer.params.get(id(w.tensor), "attention.weight") + suffix

        def make():
            array = numpy_of(w.tensor)
            return np.ascontiguousarray((array if rows is None else array[rows[0]:rows[1]]).T)

        return derived_initializer(g, [w], ("T", rows), name, make)
    value = w.value
    if rows is not None:
        value = g.op("Slice", value, g.int64([rows[0]]), g.int64([rows[1]]), g.int64([0]))
    return g.op("Transpose", value, perm=[1, 0])


def _bias(g, b: Var | None, rows: tuple[int, int] | None, suffix: str):
    if b is None or rows is None:
        return None if b is None else b.value
    if _constant_weight(g, b):
        name = g.tracer.params.get(id(b.tensor), "attention.bias") + suffix
        return derived_initializer(g, [b], rows, name, lambda: numpy_of(b.tensor)[rows[0]:rows[1]])
    return g.op("Slice", b, g.int64([rows[0]]), g.int64([rows[1]]), g.int64([0]))


def _linear(g, x, w: Var, b: Var | None, rows=None, suffix="", bias_rows=None):
    """``x @ w[rows].T + b[bias_rows or rows]``."""
    y = g.op("MatMul", x, _weight_t(g, w, rows, suffix))
    bias = _bias(g, b, bias_rows or rows, suffix)
    return y if bias is None else g.op("Add", y, bias)


def _in_projections(g, query: Var, key: Var, value: Var, a: dict):
    """q, k, v projections ``[T, B, E]`` (one MatMul and a Split for self-attention)."""
    e = _static(query.shape[-1], "embedding size")
    b = a["in_proj_bias"]
    inputs = zip((query, key, value), "qkv")
    if a["use_separate_proj_weight"]:
        return [_linear(g, x, a[f"{n}_proj_weight"], b, None, f".{n}", (i * e, (i + 1) * e))
                for i, (x, n) in enumerate(inputs)]
    w = a["in_proj_weight"]
    if a["self"]:
        packed = _linear(g, query, w, b)
        return list(g.op("Split", packed, g.int64([e, e, e]), axis=-1, num_outputs=3))
    if a["kv"]:
        q = _linear(g, query, w, b, (0, e), ".q")
        kv = _linear(g, key, w, b, (e, 3 * e), ".kv")
        return [q, *g.op("Split", kv, g.int64([e, e]), axis=-1, num_outputs=2)]
    return [_linear(g, x, w, b, (i * e, (i + 1) * e), f".{n}") for i, (x, n) in enumerate(inputs)]


def _to_heads(g, x, heads: int, head_dim: int):
    """``[T, B, E]`` -> ``[B, heads, T, head_dim]``."""
    split = g.op("Reshape", x, g.int64([0, 0, heads, head_dim]))
    return g.op("Transpose", split, perm=[1, 2, 0, 3])


def _additive(g, mask: Var | None, dtype):
    """torch's canonical mask: a float mask as is, a boolean one as ``-inf`` where True."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        zero = g.const(np.asarray(0, dtype=numpy_dtype(dtype)))
        return g.op("Where", mask, _neg_inf(g, dtype), zero)
    return mask.value if mask.dtype == dtype else g.op("Cast", mask, to=dtype_code(dtype))


def _pad_last(g, x, rank: int, count: int):
    """``F.pad(x, (0, count))``: ``count`` zero columns after the last axis."""
    if not count:
        return x
    pads = [0] * (2 * rank)
    pads[-1] = count
    return g.op("Pad", x, g.int64(pads))


def _mha_mask(g, a: dict, heads: int, dtype, extra_keys: int):
    """attn_mask (``[L, S]`` or ``[B*heads, L, S]``) plus key_padding_mask (``[B, S]``) as
    one additive mask broadcasting to ``[B, heads, L, S]``, with a zero column per added key."""
    attn_mask, padding = a["attn_mask"], a["key_padding_mask"]
    mask, rank = _additive(g, attn_mask, dtype), 2
    if attn_mask is not None and attn_mask.rank == 3:
        _, length, source = attn_mask.shape
        mask, rank = g.op("Reshape", mask, g.shape_value([-1, heads, length, source])), 4
    if padding is not None:
        padding = g.op("Unsqueeze", _additive(g, padding, dtype), g.int64([1, 2]))
        mask = padding if mask is None else g.op("Add", mask, padding)
        rank = 4
    return None if mask is None else _pad_last(g, mask, rank, extra_keys)


def _append_bias(g, x, bias: Var):
    """``cat([x, bias.repeat(1, B, 1)])`` for ``x`` of shape ``[S, B, E]``."""
    shape = g.op("Concat", g.int64([1]), g.op("Shape", x, start=1, end=2), g.int64([bias.shape[-1]]), axis=0)
    return g.op("Concat", x, g.op("Expand", bias, shape), axis=0)


def _mean_heads(g, weights):
    if g.opset >= 18:
        return g.op("ReduceMean", weights, g.int64([1]), keepdims=0)
    return g.op("ReduceMean", weights, axes=[1], keepdims=0)


_MHA_ARGS = (
    "query", "key", "value", "embed_dim_to_check", "num_heads", "in_proj_weight", "in_proj_bias",
    "bias_k", "bias_v", "add_zero_attn", "dropout_p", "out_proj_weight", "out_proj_bias", "training",
    "key_padding_mask", "need_weights", "attn_mask", "use_separate_proj_weight", "q_proj_weight",
    "k_proj_weight", "v_proj_weight", "static_k", "static_v", "average_attn_weights", "is_causal",
)
_MHA_DEFAULTS = {"training": True, "key_padding_mask": None, "need_weights": True, "attn_mask": None,
                 "use_separate_proj_weight": False, "q_proj_weight": None, "k_proj_weight": None,
                 "v_proj_weight": None, "static_k": None, "static_v": None, "average_attn_weights": True,
                 "is_causal": False}


def _unsqueezed(g, var: Var, axis: int) -> Var:
    """``var.unsqueeze(axis)`` as a Var."""
    value = g.op("Unsqueeze", var, g.int64([axis]))
    return Var(value, var.tensor.unsqueeze(axis), (*var.shape[:axis], 1, *var.shape[axis:]))


def _mha_arguments(g, args, kwargs) -> dict:
    """The call's arguments by name; unbatched inputs (``[L, E]``) as a batch of one."""
    a = {**_MHA_DEFAULTS, **dict(zip(_MHA_ARGS, args)), **kwargs}
    if a["static_k"] is not None or a["static_v"] is not None:
        raise _unsupported("multi_head_attention_forward with static_k / static_v")
    q, k, v = a["query"], a["key"], a["value"]
    a["self"] = q.tensor is k.tensor and k.tensor is v.tensor
    a["kv"] = k.tensor is v.tensor
    a["batched"] = q.rank == 3
    if not a["batched"]:
        batched: dict[int, Var] = {}
        for name, x in (("query", q), ("key", k), ("value", v)):
            if id(x.tensor) not in batched:
                batched[id(x.tensor)] = _unsqueezed(g, x, 1)
            a[name] = batched[id(x.tensor)]
        if a["key_padding_mask"] is not None:
            a["key_padding_mask"] = _unsqueezed(g, a["key_padding_mask"], 0)
    return a


@symbolic(F.multi_head_attention_forward)
def multi_head_attention_forward(g, *args, **kwargs):
    """nn.MultiheadAttention's computation on ``[L, B, E]`` inputs -> (output, weights or None)."""
    a = _mha_arguments(g, args, kwargs)
    if a["training"]:
        _ignore_dropout(a["dropout_p"])
    query, dtype, heads = a["query"], a["query"].dtype, a["num_heads"]
    embed = _static(query.shape[-1], "embedding size")
    head_dim = embed // heads
    q, k, v = _in_projections(g, query, a["key"], a["value"], a)
    extra = 0
    if a["bias_k"] is not None:
        k, v, extra = _append_bias(g, k, a["bias_k"]), _append_bias(g, v, a["bias_v"]), 1
    q, k, v = (_to_heads(g, x, heads, head_dim) for x in (q, k, v))
    if a["add_zero_attn"]:
        k, v, extra = _pad_seq(g, k), _pad_seq(g, v), extra + 1
    causal = bool(a["is_causal"]) and a["key_padding_mask"] is None and not a["need_weights"]
    if causal:
        a["attn_mask"] = None
    mask = _mha_mask(g, a, heads, dtype, extra)
    scale = 1.0 / math.sqrt(head_dim)
    if a["need_weights"]:  # torch: plain softmax, fully masked rows give NaN
        probs = attention_probs(g, q, k, 4, scale=scale, mask=mask, dtype=dtype)
        out = g.op("MatMul", probs, v)
        weights = _mean_heads(g, probs) if a["average_attn_weights"] else probs
        if not a["batched"]:
            weights = g.op("Squeeze", weights, g.int64([0]))
    else:
        out, weights = attend(g, q, k, v, 4, scale=scale, mask=mask, causal=causal, dtype=dtype), None
    out = g.op("Reshape", g.op("Transpose", out, perm=[2, 0, 1, 3]), g.int64([0, 0, embed]))
    out = _linear(g, out, a["out_proj_weight"], a["out_proj_bias"])
    if not a["batched"]:
        out = g.op("Squeeze", out, g.int64([1]))
    return out, weights


def _pad_seq(g, x):
    """One zero key / value after the sequence of ``[B, heads, S, D]``."""
    return g.op("Pad", x, g.int64([0, 0, 0, 0, 0, 0, 1, 0]))
