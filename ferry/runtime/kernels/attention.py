"""Attention-family kernels: Attention, RotaryEmbedding, SwiGLU, LinearAttention, CausalConvWithState.

Half-precision inputs (float16, bfloat16) are computed in float32 and rounded back at the end.
"""

from __future__ import annotations

import math

import numpy as np

from ferry.ir.dtypes import from_numpy_dtype
from ferry.ir.minifloat import from_float32, to_float32
from ferry.runtime.kernels import native_rows
from ferry.runtime.kernels.linalg import matmul  # the compiled GEMM where it applies
from ferry.runtime.registry import kernel


def to_float(x: np.ndarray) -> np.ndarray:
    """A float array to compute on: float32 for 16-bit and exotic floats, float64 for ints."""
    x = np.asarray(x)
    if x.dtype.names:
        return to_float32(x)
    if x.dtype == np.float16:
        return x.astype(np.float32)
    if x.dtype.kind in "iub":
        return x.astype(np.float64)
    return x


def from_float(y: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Round a computed float array back to ``dtype`` (nearest-even; ints round and saturate)."""
    y = np.asarray(y)
    if dtype.names:
        return from_float32(y.astype(np.float32), from_numpy_dtype(dtype))
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(y), info.min, info.max).astype(dtype)
    if dtype.kind == "b":
        return y != 0
    return y.astype(dtype, copy=False)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0, -x)).astype(x.dtype)


# -- Attention -------------------------------------------------------------------------------

_SOFTMAX_TYPES = {1: np.float32, 10: np.float16, 11: np.float64, 16: np.float32}


def _split_heads(x: np.ndarray, heads: int | None, name: str) -> np.ndarray:
    """(B, S, H*D) -> (B, H, S, D); 4D inputs pass through."""
    if x.ndim == 4:
        return x
    if x.ndim != 3 or not heads:
        raise ValueError(f"Attention {name} must be 4D, or 3D with its num_heads attribute set")
    b, s, hidden = x.shape
    if hidden % heads:
        raise ValueError(f"Attention {name} hidden size {hidden} is not divisible by {heads} heads")
    return x.reshape(b, s, heads, hidden // heads).transpose(0, 2, 1, 3)


def _structural_mask(batch, sq, total, offset, nonpad, is_causal, left, right) -> np.ndarray:
    """Allowed (query, key) pairs from causality, padding and sliding windows: [B, 1, Sq, T]."""
    query = np.arange(sq)[None, :, None] + np.asarray(offset).reshape(-1, 1, 1)  # absolute pos
    key = np.arange(total)[None, None, :]
    allowed = np.ones((batch, sq, total), bool)
    if is_causal:
        allowed &= key <= query
    if left is not None and left >= 0:
        allowed &= key >= query - left
    if right is not None and right >= 0:
        allowed &= key <= query + right
    if nonpad is not None:
        allowed &= key < np.asarray(nonpad, np.int64).reshape(-1, 1, 1)
    return allowed[:, None]


def _mask_bias(attn_mask, total: int, dtype) -> np.ndarray | None:
    """The additive bias of ``attn_mask`` (bool -> 0/-inf), padded with -inf up to ``total`` keys."""
    if attn_mask is None:
        return None
    if attn_mask.dtype == np.bool_:
        bias = np.where(attn_mask, 0.0, -np.inf).astype(dtype)
    else:
        bias = to_float(attn_mask).astype(dtype)
    short = total - bias.shape[-1]
    if short > 0:
        pad = np.full((*bias.shape[:-1], short), -np.inf, dtype)
        bias = np.concatenate([bias, pad], axis=-1)
    elif short < 0:
        raise ValueError(f"attn_mask has {bias.shape[-1]} keys, more than the {total} available")
    return bias


def _safe_softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in place on ``scores`` (a fresh array); rows with no finite
    score give zeros instead of NaN."""
    if scores.dtype == np.float32 and scores.ndim and native_rows.available() and not (
            scores == np.inf).any():  # +inf rows differ (inf/inf); all else as below
        return native_rows.softmax_last_axis(scores, nan_to_zero=True)
    top = scores.max(axis=-1, keepdims=True)
    top[~np.isfinite(top)] = 0
    scores -= top
    np.exp(scores, out=scores)
    total = scores.sum(axis=-1, keepdims=True)
    empty = ~(total > 0)  # no finite score (all -inf, or NaN): the row is all zeros
    if empty.any():
        total[empty] = 1
        np.copyto(scores, 0, where=empty)
    scores /= total
    return scores


def _query_offset(past_key, nonpad_kv_seqlen, q_length: int):
    """Absolute position of the first query: the cached keys before it (per batch if external)."""
    if past_key is not None:
        return past_key.shape[2]
    if nonpad_kv_seqlen is not None:
        return np.asarray(nonpad_kv_seqlen, np.int64) - q_length
    return 0


def _with_cache(past, new):
    """Concatenate a past cache and new keys/values along the sequence axis (original dtype)."""
    return new if past is None else np.concatenate([past, new], axis=2)


@kernel("Attention", since=(23, 24, 25))
def attention(
    Q, K, V, attn_mask=None, past_key=None, past_value=None, nonpad_kv_seqlen=None, *,
    is_causal, kv_num_heads, q_num_heads, qk_matmul_output_mode, scale, softcap,
    softmax_precision, left_window_size=None, right_window_size=None, _num_outputs,
):
    """Scaled dot-product attention (MHA/GQA/MQA) with masks, causal/window limits and KV cache."""
    out_dtype, three_d = Q.dtype, Q.ndim == 3
    want_debug = _num_outputs >= 4
    q = to_float(_split_heads(Q, q_num_heads, "Q"))
    present_key = _with_cache(past_key, _split_heads(K, kv_num_heads, "K"))
    present_value = _with_cache(past_value, _split_heads(V, kv_num_heads, "V"))
    k, v = to_float(present_key), to_float(present_value)
    batch, heads, sq, head_size = q.shape
    if heads % k.shape[1]:
        raise ValueError(f"q_num_heads {heads} is not a multiple of kv_num_heads {k.shape[1]}")
    k, v = np.repeat(k, heads // k.shape[1], axis=1), np.repeat(v, heads // v.shape[1], axis=1)
    total = k.shape[2]
    factor = scale if scale is not None else 1 / math.sqrt(head_size)
    qk = matmul(q, np.swapaxes(k, -1, -2))
    qk *= q.dtype.type(factor)
    capped = softcap * np.tanh(qk / softcap) if softcap else qk
    mode = (qk_matmul_output_mode or 0) if want_debug else -1
    # the masks are added in place, into a buffer no requested output still needs
    biased = capped.copy() if mode == 1 or (mode == 0 and capped is qk) else capped
    if is_causal or nonpad_kv_seqlen is not None or _window(left_window_size) or _window(right_window_size):
        allowed = _structural_mask(
            batch, sq, total, _query_offset(past_key, nonpad_kv_seqlen, sq), nonpad_kv_seqlen,
            is_causal, left_window_size, right_window_size,
        )
        biased += np.where(allowed, 0, -np.inf).astype(q.dtype)
    mask = _mask_bias(attn_mask, total, q.dtype)
    if mask is not None:
        if np.broadcast_shapes(biased.shape, mask.shape) == biased.shape:
            biased += mask
        else:
            biased = biased + mask
    softmax_type = _SOFTMAX_TYPES.get(softmax_precision, q.dtype) if softmax_precision else q.dtype
    scores = biased.astype(softmax_type, copy=mode == 2)  # softmax runs in place on scores
    probs = _safe_softmax(scores).astype(q.dtype, copy=False)
    y = matmul(probs, v)
    if three_d:
        y = y.transpose(0, 2, 1, 3).reshape(batch, sq, -1)
    debug = [qk, capped, biased, probs][mode] if want_debug else None
    return (
        from_float(y, out_dtype), present_key, present_value,
        from_float(debug, out_dtype) if debug is not None else None,
    )


def _window(size) -> bool:
    return size is not None and size >= 0


# -- Positional and gating helpers -----------------------------------------------------------


@kernel("RotaryEmbedding", since=23)
def rotary_embedding(
    X, cos_cache, sin_cache, position_ids=None, *, interleaved, num_heads, rotary_embedding_dim,
):
    """Rotary position embedding: rotate (half-split or interleaved) pairs of each head's leading dims."""
    if X.ndim == 4:  # (B, H, S, D) -> (B, S, H, D)
        x = np.swapaxes(to_float(X), 1, 2)
    elif X.ndim == 3 and num_heads:
        b, s, hidden = X.shape
        x = to_float(X).reshape(b, s, num_heads, hidden // num_heads)
    else:
        raise ValueError("RotaryEmbedding input must be 4D, or 3D with num_heads set")
    dim = rotary_embedding_dim or x.shape[-1]
    cos, sin = to_float(cos_cache), to_float(sin_cache)
    if position_ids is not None:
        cos, sin = cos[position_ids], sin[position_ids]
    if cos.shape[-1] != dim // 2 or sin.shape[-1] != dim // 2:
        raise ValueError(f"cos/sin caches must have {dim // 2} values per position, found {cos.shape}")
    cos, sin = cos[:, :, None, :], sin[:, :, None, :]  # broadcast over heads
    rotated = x[..., :dim]
    if interleaved:
        first, second = rotated[..., 0::2], rotated[..., 1::2]
    else:
        first, second = rotated[..., : dim // 2], rotated[..., dim // 2 :]
    real, imag = cos * first - sin * second, sin * first + cos * second
    if interleaved:
        rotated = np.stack([real, imag], axis=-1).reshape(rotated.shape)
    else:
        rotated = np.concatenate([real, imag], axis=-1)
    y = np.concatenate([rotated, x[..., dim:]], axis=-1)
    y = np.swapaxes(y, 1, 2) if X.ndim == 4 else y.reshape(X.shape)
    return from_float(y, X.dtype)


@kernel("SwiGLU", since=28)
def swiglu(A, B, *, alpha):
    """SwiGLU: Y = A * sigmoid(alpha * A) * B, for equally shaped gate A and value B."""
    if A.shape != B.shape:
        raise ValueError(f"SwiGLU inputs must have identical shapes, found {A.shape} and {B.shape}")
    a, b = to_float(A), to_float(B)
    return from_float(a * _sigmoid(a * a.dtype.type(alpha)) * b, A.dtype)


@kernel("CausalConvWithState", since=27)
def causal_conv_with_state(input, weight, bias=None, past_state=None, *, activation):  # noqa: A002
    """Depthwise causal 1D convolution over (B, C, L) with a carried (k-1)-sample state."""
    x, w = to_float(input), to_float(weight)
    batch, channels, _ = x.shape
    k = w.shape[-1]
    if w.shape[:2] != (channels, 1):
        raise ValueError(f"weight must have shape ({channels}, 1, k), found {w.shape}")
    if past_state is None:
        past = np.zeros((batch, channels, k - 1), x.dtype)
    else:
        past = to_float(past_state).astype(x.dtype)
    padded = np.concatenate([past, x], axis=-1)
    windows = np.lib.stride_tricks.sliding_window_view(padded, k, axis=-1)  # (B, C, L, k)
    y = np.einsum("bclk,ck->bcl", windows, w[:, 0, :])
    if bias is not None:
        y = y + to_float(bias)[:, None]
    if activation in ("silu", "swish"):
        y = y * _sigmoid(y)
    elif activation not in (None, "none"):
        raise ValueError(f"activation must be 'silu', 'swish' or 'none', found {activation!r}")
    state = padded[..., padded.shape[-1] - (k - 1) :]
    return from_float(y, input.dtype), from_float(state, input.dtype)


# -- LinearAttention -------------------------------------------------------------------------


def _per_head(x: np.ndarray | None, heads: int) -> np.ndarray | None:
    """(B, T, H*D) or (B, T, H) or (B, T, 1) -> (B, T, H, D) (D may be 1)."""
    if x is None:
        return None
    x = to_float(x)
    if x.shape[-1] == 1:
        return np.broadcast_to(x[..., None], (*x.shape[:2], heads, 1))
    return x.reshape(*x.shape[:2], heads, -1)


def _linear_attention_step(state, k, v, decay, beta, rule: str):
    """One recurrent update of the (B, H, dk, dv) state for token vectors k (B,H,dk), v (B,H,dv)."""
    if rule in ("gated", "gated_delta"):
        state = np.exp(decay)[..., None] * state  # decay: (B, H, dk) or (B, H, 1)
    if rule in ("delta", "gated_delta"):
        v = beta * (v - np.einsum("bhkv,bhk->bhv", state, k))
    return state + k[..., :, None] * v[..., None, :]


@kernel("LinearAttention", since=27)
def linear_attention(
    query, key, value, past_state=None, decay=None, beta=None, *,
    chunk_size, kv_num_heads, q_num_heads, scale, update_rule,
):
    """Recurrent linear attention (linear, gated, delta, gated_delta rules) over packed heads."""
    if update_rule not in ("linear", "gated", "delta", "gated_delta"):
        raise ValueError(f"unsupported update_rule {update_rule!r}")
    if q_num_heads % kv_num_heads:
        raise ValueError(f"q_num_heads {q_num_heads} is not a multiple of kv_num_heads {kv_num_heads}")
    if "gated" in update_rule and decay is None:
        raise ValueError(f"update_rule {update_rule!r} needs the decay input")
    if "delta" in update_rule and beta is None:
        raise ValueError(f"update_rule {update_rule!r} needs the beta input")
    q = _per_head(query, q_num_heads)  # (B, T, Hq, dk)
    k, v = _per_head(key, kv_num_heads), _per_head(value, kv_num_heads)
    g, b = _per_head(decay, kv_num_heads), _per_head(beta, kv_num_heads)
    batch, steps, _, dk = q.shape
    group = q_num_heads // kv_num_heads
    factor = scale if scale else 1 / math.sqrt(dk)
    if past_state is None:
        state = np.zeros((batch, kv_num_heads, dk, v.shape[-1]), q.dtype)
    else:
        state = to_float(past_state).astype(q.dtype)
    outputs = []
    for t in range(steps):
        state = _linear_attention_step(
            state, k[:, t], v[:, t], None if g is None else g[:, t],
            None if b is None else b[:, t], update_rule,
        )
        q_t = q[:, t].reshape(batch, kv_num_heads, group, dk)
        outputs.append(np.einsum("bhgk,bhkv->bhgv", q_t, state).reshape(batch, -1) * factor)
    y = np.stack(outputs, axis=1)
    return from_float(y, query.dtype), from_float(state, query.dtype)
