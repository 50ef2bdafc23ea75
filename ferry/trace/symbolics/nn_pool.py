"""Pooling: max/average pooling, their adaptive forms, and max pooling's indices."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ferry.trace.registry import symbolic
from ferry.trace.symbolics._helpers import numpy_dtype
from ferry.trace.symbolics.nn import per_axis, reduce, unsupported, with_batch
from ferry.trace.symint import SymInt

__all__ = ["adaptive_avg_pool"]


def _window(n: int, kernel_size, stride, padding, ceil_mode) -> dict:
    """ONNX pooling attributes; an omitted (None or empty) stride defaults to the kernel."""
    kernel = [int(k) for k in per_axis(kernel_size, n)]
    empty = stride is None or (not isinstance(stride, int) and len(stride) == 0)
    strides = kernel if empty else [int(s) for s in per_axis(stride, n)]
    pads = [int(p) for p in per_axis(padding, n)]
    return dict(kernel_shape=kernel, strides=strides, pads=pads + pads, ceil_mode=int(bool(ceil_mode)))


def _torch_indices(g, indices, spatial):
    """ONNX MaxPool's indices count over the whole (N, C, *spatial) tensor; torch's count
    within each (n, c) plane: the remainder modulo the plane's size."""
    plane = math.prod(spatial)
    return g.op("Mod", indices, g.int_value(plane))


def _max_pool_values(g, x, n: int, attrs: dict, indices: bool):
    """MaxPool of ``x`` (batched or not), with torch-convention indices when asked."""
    if not indices:
        return with_batch(g, x, n, lambda v: g.op("MaxPool", v, **attrs))

    def build(v):
        y, flat = g.op("MaxPool", v, num_outputs=2, **attrs)
        return y, _torch_indices(g, flat, x.shape[-n:])

    return with_batch(g, x, n, build)


def _max_pool(n: int, always_indices: bool):
    def max_pool(g, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                 return_indices=False):
        attrs = _window(n, kernel_size, stride, padding, ceil_mode)
        attrs["dilations"] = [int(d) for d in per_axis(dilation, n)]
        return _max_pool_values(g, x, n, attrs, always_indices or bool(return_indices))

    max_pool.__doc__ = f"F.max_pool{n}d: MaxPool (padding is -inf; indices per (n, c) plane)."
    return max_pool


def _avg_pool(n: int):
    def avg_pool(g, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        attrs = _window(n, kernel_size, stride, padding, ceil_mode)
        attrs["count_include_pad"] = int(bool(count_include_pad))
        if divisor_override is None:
            return with_batch(g, x, n, lambda v: g.op("AveragePool", v, **attrs))
        if ceil_mode:
            raise unsupported(g, "avg_pool with both divisor_override and ceil_mode=True")
        # windows lie inside the padded input: sum = mean over the full window * its size
        attrs["count_include_pad"] = 1
        factor = math.prod(attrs["kernel_shape"]) / float(divisor_override)
        scale = g.const(np.asarray(factor, dtype=numpy_dtype(x.dtype)))
        return with_batch(g, x, n, lambda v: g.op("Mul", g.op("AveragePool", v, **attrs), scale))

    avg_pool.__doc__ = f"F.avg_pool{n}d: AveragePool (count_include_pad, ceil_mode, divisor_override)."
    return avg_pool


# -- adaptive pooling ------------------------------------------------------------------
def _adaptive_sizes(g, x, n: int, output_size, name: str):
    """(input sizes, output sizes) of the pooled axes; ``None`` for a global pool."""
    sizes = list(x.shape[-n:])
    outs = [s if o is None else o for o, s in zip(per_axis(output_size, n), sizes)]
    if all(not isinstance(o, SymInt) and o == 1 for o in outs):
        return None
    if any(isinstance(s, SymInt) or isinstance(o, SymInt) for s, o in zip(sizes, outs)):
        raise unsupported(
            g, f"{name} with output size {outs} needs static spatial input sizes (the input "
            "has dynamic ones); only output size 1 (global pooling) works with dynamic sizes"
        )
    return [int(s) for s in sizes], [int(o) for o in outs]


def _equal_windows(sizes, outs) -> dict | None:
    """Pooling attributes with kernel = stride = in / out, when every size divides."""
    if any(s % o for s, o in zip(sizes, outs)):
        return None
    kernel = [s // o for s, o in zip(sizes, outs)]
    return dict(kernel_shape=kernel, strides=kernel, pads=[0] * (2 * len(kernel)))


def _averaging_matrix(size: int, out: int, dtype) -> np.ndarray:
    """(out, size): row i averages torch's window [floor(i*size/out), ceil((i+1)*size/out))."""
    matrix = np.zeros((out, size), dtype=dtype)
    for i in range(out):
        start, end = i * size // out, -(-(i + 1) * size // out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


def _uneven_average(g, x, sizes, outs):
    """Adaptive averaging with overlapping windows: one MatMul per axis (it is linear)."""
    y, n = x.value, len(sizes)
    for k, (size, out) in enumerate(zip(sizes, outs)):
        axis = x.rank - n + k
        matrix = _averaging_matrix(size, out, numpy_dtype(x.dtype))
        if axis == x.rank - 2:
            y = g.op("MatMul", g.const(matrix), y)
            continue
        perm = list(range(x.rank))
        perm[axis], perm[-1] = perm[-1], perm[axis]
        moved = y if axis == x.rank - 1 else g.op("Transpose", y, perm=perm)
        y = g.op("MatMul", moved, g.const(np.ascontiguousarray(matrix.T)))
        y = y if axis == x.rank - 1 else g.op("Transpose", y, perm=perm)
    return y


def adaptive_avg_pool(g, x, n: int, output_size, name: str = "adaptive_avg_pool"):
    """GlobalAveragePool for output 1, AveragePool for equal windows, else MatMuls."""
    shapes = _adaptive_sizes(g, x, n, output_size, name)
    if shapes is None:
        return with_batch(g, x, n, lambda v: g.op("GlobalAveragePool", v))
    attrs = _equal_windows(*shapes)
    if attrs is None:
        return _uneven_average(g, x, *shapes)
    return with_batch(g, x, n, lambda v: g.op("AveragePool", v, **attrs))


def _adaptive_avg(n: int):
    def adaptive_avg_pool_nd(g, x, output_size):
        return adaptive_avg_pool(g, x, n, output_size, f"adaptive_avg_pool{n}d")

    adaptive_avg_pool_nd.__doc__ = (
        f"F.adaptive_avg_pool{n}d: GlobalAveragePool for output 1, AveragePool with kernel ="
        " stride = input / output when sizes divide, else averaging matrices (static sizes)."
    )
    return adaptive_avg_pool_nd


def _adaptive_max(n: int, always_indices: bool):
    def adaptive_max_pool_nd(g, x, output_size, return_indices=False):
        indices = always_indices or bool(return_indices)
        name = f"adaptive_max_pool{n}d"
        shapes = _adaptive_sizes(g, x, n, output_size, name)
        if shapes is None and not indices:
            return with_batch(g, x, n, lambda v: g.op("GlobalMaxPool", v))
        if shapes is None:
            return _global_max_with_indices(g, x, n)
        attrs = _equal_windows(*shapes)
        if attrs is None:
            raise unsupported(
                g, f"{name} from spatial size {shapes[0]} to {shapes[1]}: only output sizes "
                "that divide the input size (equal windows) or 1 are supported"
            )
        return _max_pool_values(g, x, n, attrs, indices)

    adaptive_max_pool_nd.__doc__ = f"F.adaptive_max_pool{n}d: GlobalMaxPool or MaxPool as for average."
    return adaptive_max_pool_nd


def _global_max_with_indices(g, x, n: int):
    """Max over each whole plane and its flat index within the plane (ArgMax: first max)."""
    lead = g.op("Shape", x, start=0, end=x.rank - n)
    flat = g.op("Reshape", x, g.op("Concat", lead, g.int64([-1]), axis=0))
    trailing = g.int64(list(range(-(n - 1), 0))) if n > 1 else None
    values = reduce(g, "ReduceMax", flat, [-1])
    indices = g.op("ArgMax", flat, axis=-1, keepdims=1)
    if trailing is None:
        return values, indices
    return g.op("Unsqueeze", values, trailing), g.op("Unsqueeze", indices, trailing)


for _n in (1, 2, 3):
    symbolic(getattr(F, f"max_pool{_n}d"), getattr(torch, f"max_pool{_n}d"))(_max_pool(_n, False))
    symbolic(getattr(F, f"max_pool{_n}d_with_indices"))(_max_pool(_n, True))
    symbolic(getattr(F, f"avg_pool{_n}d"))(_avg_pool(_n))
    symbolic(getattr(F, f"adaptive_avg_pool{_n}d"))(_adaptive_avg(_n))
    symbolic(getattr(F, f"adaptive_max_pool{_n}d"))(_adaptive_max(_n, False))
    symbolic(getattr(F, f"adaptive_max_pool{_n}d_with_indices"))(_adaptive_max(_n, True))
symbolic(torch._C._nn.adaptive_avg_pool2d)(_adaptive_avg(2))
symbolic(torch._C._nn.adaptive_avg_pool3d)(_adaptive_avg(3))
