"""Elementwise math, comparisons, reductions and activations through the tracer: each op in
its common argument forms, checked against torch by both runtimes, most with a dynamic axis
checked at two other sizes; an MLP, an activation zoo and reductions over dynamic axes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import ferry
from tests.trace.helpers import check_export

torch.manual_seed(0)


def fresh(t: torch.Tensor, axis: int, size: int) -> torch.Tensor:
    """New data like ``t`` (same dtype and value range) with ``size`` elements on ``axis``."""
    shape = list(t.shape)
    shape[axis] = size
    if t.dtype == torch.bool:
        return torch.rand(shape) > 0.5
    if t.dtype.is_floating_point:
        lo, hi = float(t.min()), float(t.max())
        return torch.rand(shape, dtype=t.dtype) * (hi - lo) + lo
    return torch.randint(int(t.min()), int(t.max()) + 1, shape, dtype=t.dtype)


def check(fn, *inputs, axis: int | None = 0, opset=None, **kw):
    """Export ``fn``; with ``axis``, that axis is dynamic in every input sharing the first
    input's size there, and the export is checked at two other sizes."""
    names = [f"x{i}" for i in range(len(inputs))]
    dynamic, others = None, []
    if axis is not None:
        size = inputs[0].shape[axis]
        grows = [t.dim() > axis and t.shape[axis] == size for t in inputs]
        dynamic = {n: {axis: "n"} for n, grow in zip(names, grows) if grow}
        others = [tuple(fresh(t, axis, new) if grow else t for t, grow in zip(inputs, grows))
                  for new in (size + 1, size + 3)]
    return check_export(fn, tuple(inputs), input_names=names, dynamic_axes=dynamic,
                        other_inputs=others, opset_version=opset, **kw)


def rand(*shape, lo=-2.0, hi=2.0, dtype=torch.float32):
    return torch.rand(*shape, dtype=dtype) * (hi - lo) + lo


def ints(*shape, lo=-5, hi=6, dtype=torch.int64):
    return torch.randint(lo, hi, shape, dtype=dtype)


X = rand(3, 4)
POS = rand(3, 4, lo=0.1, hi=3.0)
UNIT = rand(3, 4, lo=-0.9, hi=0.9)
INTS = ints(3, 4)
B = torch.rand(3, 4) > 0.5
B2 = torch.rand(3, 4) > 0.5


# -- unary ------------------------------------------------------------------------------------
UNARY = {
    "abs": (lambda x: x.abs() + abs(x), X), "exp": (torch.exp, X), "log": (torch.log, POS),
    "log2": (torch.log2, POS), "log10": (torch.log10, POS), "log1p": (torch.log1p, POS),
    "expm1": (torch.expm1, X), "exp2": (torch.exp2, X), "sqrt": (torch.sqrt, POS),
    "rsqrt": (torch.rsqrt, POS), "reciprocal": (lambda x: x.reciprocal(), POS),
    "sin": (torch.sin, X), "cos": (lambda x: x.cos(), X), "tan": (torch.tan, UNIT),
    "asin": (torch.asin, UNIT), "acos": (torch.arccos, UNIT), "atan": (torch.atan, X),
    "sinh": (torch.sinh, X), "cosh": (torch.cosh, X), "asinh": (torch.asinh, X),
    "acosh": (torch.acosh, POS + 1), "atanh": (torch.atanh, UNIT), "tanh": (F.tanh, X),
    "sigmoid": (F.sigmoid, X), "expit": (torch.special.expit, X), "erf": (torch.erf, X),
    "floor": (torch.floor, X), "ceil": (lambda x: x.ceil(), X), "round": (torch.round, X * 3),
    "round_decimals": (lambda x: torch.round(x, decimals=2), X * 3),
    "round_negative_decimals": (lambda x: x.round(decimals=-1), X * 30),
    "trunc": (torch.trunc, X * 3), "frac": (torch.frac, X * 3), "sign": (torch.sign, X),
    "square": (torch.square, X), "neg": (lambda x: -x, X),
    "exp_int": (torch.exp, ints(3, 4, lo=-3, hi=3)), "abs_int": (torch.abs, INTS),
    "floor_int": (torch.floor, INTS), "sign_int": (torch.sign, INTS), "square_int": (torch.square, INTS),
    "sqrt_int": (torch.sqrt, ints(3, 4, lo=0, hi=9)), "log_double": (torch.log, POS.double()),
    "exp_inplace": (lambda x: x.clone().exp_() + torch.sigmoid_(x.clone()), X),
}


@pytest.mark.parametrize("name", UNARY)
def test_unary(name):
    fn, x = UNARY[name]
    check(fn, x)


def test_sign_of_nan_is_zero():
    check(torch.sign, torch.tensor([[-0.0, 0.0, -2.0, math.nan, math.inf]]), axis=None)


def test_nan_to_num():
    x = torch.tensor([[1.0, math.nan, math.inf], [-math.inf, -2.0, 0.5]])
    check(lambda x: torch.nan_to_num(x), x, axis=None)
    check(lambda x: x.nan_to_num(nan=0.5, posinf=9.0, neginf=-9.0), x, axis=None)


# -- powers, clamps, min/max, remainders ---------------------------------------------------------
BINARY = {
    "pow_scalar": (lambda x: x ** 2 + x ** 3, X), "pow_sqrt": (lambda x: x ** 0.5, POS),
    "rpow": (lambda x: 2 ** x + 0.5 ** x, X), "pow_tensor": (torch.pow, POS, X),
    "pow_int": (lambda i: i ** 2 + torch.pow(i, 3), INTS), "pow_int_float": (lambda i: i ** 0.5, INTS.abs()),
    "pow_inplace": (lambda x: x.clone().pow_(2), X), "float_power": (torch.float_power, POS, X),
    "clamp": (lambda x: torch.clamp(x, -0.5, 0.5), X), "clamp_min": (lambda x: x.clamp(min=0.1), X),
    "clamp_max": (lambda x: x.clamp(max=0.1), X), "clip": (lambda x: torch.clip(x, 0.0, 1.0), X),
    "clamp_tensor": (lambda x, lo, hi: torch.clamp(x, lo, hi), X, rand(3, 4, hi=0), rand(4, lo=0)),
    "clamp_tensor_min": (lambda x, lo: x.clamp(min=lo), X, rand(3, 1)),
    "clamp_fns": (lambda x: x.clamp_min(0.0) + x.clamp_max(0.5) + x.clone().clamp_(-1, 1), X),
    "clamp_int": (lambda i: i.clamp(-2, 3), INTS), "clamp_int_float": (lambda i: i.clamp(max=0.5), INTS),
    "maximum": (torch.maximum, X, rand(4)), "minimum": (torch.minimum, X, rand(3, 4)),
    "max_binary": (lambda a, b: torch.max(a, b) + a.min(b), X, rand(3, 4)),
    "fmax": (torch.fmax, X, rand(3, 4)), "max_bool": (torch.maximum, B, B2),
    "min_int_float": (torch.minimum, INTS, X),
    "remainder": (lambda x: x % 1.5 + x % -0.7, X * 3), "rmod": (lambda x: 5.0 % x, POS),
    "remainder_tensor": (torch.remainder, X * 3, rand(3, 4, lo=0.5, hi=2) * torch.tensor([1, -1, 1, -1])),
    "remainder_int": (lambda i: i % 3 + i % -4, INTS), "fmod": (lambda x: torch.fmod(x, 1.5) + x.fmod(-0.7), X * 3),
    "fmod_int": (lambda i: torch.fmod(i, 3), INTS),
    "atan2": (torch.atan2, X.round(), rand(3, 4).round()), "hypot": (torch.hypot, X, rand(3, 4)),
    "logit": (lambda x: torch.logit(x) + x.logit(eps=0.2), rand(3, 4, lo=0.05, hi=0.95)),
    "xlogy": (torch.xlogy, X.round(), POS),
}


@pytest.mark.parametrize("name", BINARY)
def test_binary(name):
    fn, *inputs = BINARY[name]
    check(fn, *inputs)


# -- comparisons, value tests, logic -------------------------------------------------------------
Y = X.clone()
Y[0] = rand(4)
LOGIC = {
    "gt": (lambda x: x > 0, X), "ge": (lambda a, b: a >= b, X, Y), "lt": (torch.lt, X, Y),
    "le": (lambda x: 0.5 <= x, X), "eq": (lambda a, b: a == b, X, Y), "ne": (torch.ne, X, Y),  # noqa: SIM300
    "aliases": (lambda a, b: torch.greater(a, b) & torch.less_equal(a, b) | torch.not_equal(a, b), X, Y),
    "eq_int_float": (lambda i: i == 2.0, INTS), "lt_int_scalar": (lambda i: i < 1.5, INTS),
    "gt_bool": (lambda a, b: a > b, B, B2), "eq_bool": (torch.eq, B, B2),
    "inplace": (lambda x: x.clone().gt_(0) + x.clone().eq_(x), X),
    "isnan": (torch.isnan, X / X.round()), "isinf": (torch.isinf, X / X.round()),
    "isfinite": (torch.isfinite, X / X.round()), "isposinf": (torch.isposinf, X / X.round()),
    "isneginf": (torch.isneginf, X / X.round()), "isnan_int": (torch.isnan, INTS),
    "logical_and": (torch.logical_and, X, INTS), "logical_or": (torch.logical_or, B, INTS),
    "logical_xor": (lambda a, b: a.logical_xor(b), B, B2), "logical_not": (torch.logical_not, X.round()),
    "bool_ops": (lambda a, b: (a & b) | (~a ^ b), B, B2),
    "bitwise_int": (lambda a, b: (a & b) | (~a ^ b) | (a & 3), INTS, ints(3, 4)),
}


@pytest.mark.parametrize("name", LOGIC)
def test_logic(name):
    fn, *inputs = LOGIC[name]
    check(fn, *inputs)


@pytest.mark.parametrize("opset", [17, 18])
def test_elementwise_older_opsets(opset):
    def fn(x, y):
        return (x.exp() + x.sign() + x.round(decimals=1), x.clamp(-0.5, 0.5), x % 0.7, x >= y, x != y,
                torch.isinf(x / y), torch.einsum("ij,kj->ik", x, y), torch.addmm(x, y, x.T @ x), torch.atan2(x, y))

    check(fn, X, rand(3, 4), opset=opset)


def test_augmented_assignments():
    def fn(x, b, c):
        y, z = x.clone(), b.clone()
        y **= 2
        y %= 0.7
        z &= c
        z |= b
        z ^= c
        return y, z

    check(fn, X, B, B2)


def test_einsum_sublist_format():
    check(lambda a, b: torch.einsum(a, [0, 1], b, [1, 2], [0, 2]), X, rand(4, 5))


def test_atan2_signed_zeros():
    zeros = torch.tensor([0.0, -0.0])
    y = torch.tensor([0.0, -0.0, 0.0, -0.0, 1.0, -1.0, 1.0, -1.0, 0.0, -0.0, 2.0, -3.0])
    x = torch.cat([zeros, -zeros, torch.tensor([0.0, 0.0, -0.0, -0.0, -1.0, -1.0, -2.0, 0.5])])
    check(torch.atan2, y, x, axis=None)


def test_bitwise_needs_opset_18():
    with pytest.raises(ferry.UnsupportedOperatorError, match="opset 18"):
        ferry.export(lambda a, b: a & b, (INTS, INTS), opset_version=17)


# -- fused products, einsum, lerp -------------------------------------------------------------------
PRODUCTS = {
    "addmm": (lambda b, m1, m2: torch.addmm(b, m1, m2), rand(5), rand(3, 4), rand(4, 5)),
    "addmm_scaled": (lambda b, m1, m2: b.addmm(m1, m2, beta=0.5, alpha=2.0), rand(3, 5), rand(3, 4), rand(4, 5)),
    "addmm_beta0": (lambda b, m1, m2: torch.addmm(b, m1, m2, beta=0), rand(3, 5), rand(3, 4), rand(4, 5)),
    "addmm_int": (lambda b, m1, m2: torch.addmm(b, m1, m2, alpha=2), ints(5), ints(3, 4), ints(4, 5)),
    "baddbmm": (lambda b, x, y: torch.baddbmm(b, x, y, alpha=0.5), rand(2, 3, 5), rand(2, 3, 4), rand(2, 4, 5)),
    "addbmm": (lambda b, x, y: torch.addbmm(b, x, y, beta=2), rand(3, 5), rand(2, 3, 4), rand(2, 4, 5)),
    "addmv": (torch.addmv, rand(3), rand(3, 4), rand(4)), "addr": (torch.addr, rand(3, 4), rand(3), rand(4)),
    "outer": (lambda a, b: torch.outer(a, b) + a.ger(b), rand(3), rand(4)),
    "einsum_bmm": (lambda a, b: torch.einsum("bij,bjk->bik", a, b), rand(2, 3, 4), rand(2, 4, 5)),
    "einsum_attention": (lambda q, k: torch.einsum("b h q d, b h k d -> b h q k", q, k), rand(2, 2, 3, 4), rand(2, 2, 5, 4)),
    "einsum_implicit": (lambda a, b: torch.einsum("ij,jk", a, b), rand(3, 4), rand(4, 5)),
    "einsum_upper": (lambda a, b: torch.einsum("Bij,Bjk->Bik", [a, b]), rand(2, 3, 4), rand(2, 4, 5)),
    "einsum_sum": (lambda a: torch.einsum("ij->j", a) , rand(3, 4)),
    "einsum_ellipsis": (lambda a, b: torch.einsum("...ij,...jk->...ik", a, b), rand(2, 3, 4), rand(2, 4, 5)),
    "lerp": (lambda a, b: torch.lerp(a, b, 0.3) + a.lerp(b, 0.7), X, rand(3, 4)),
    "lerp_tensor": (torch.lerp, X, rand(3, 4), rand(3, 4, lo=-0.5, hi=1.5)),
    "addcmul": (lambda a, b, c: torch.addcmul(a, b, c, value=0.5) + a.addcdiv(b, c), X, rand(3, 4), POS),
}


@pytest.mark.parametrize("name", PRODUCTS)
def test_products(name):
    fn, *inputs = PRODUCTS[name]
    batched = name.startswith(("baddbmm", "einsum_bmm", "einsum_attention", "einsum_upper", "einsum_ell"))
    check(fn, *inputs, axis=0 if batched else None)


# -- reductions ---------------------------------------------------------------------------------------
X3 = rand(3, 4, 5)
DISTINCT = torch.randperm(60).reshape(3, 4, 5).float() / 7  # no ties for sort/topk/argmax
REDUCE = {
    "sum": (lambda x: x.sum() + torch.sum(x, 1).sum() + x.sum((0, 2), keepdim=True).sum(), X3),
    "sum_dims": (lambda x: (torch.sum(x, dim=[-1, 1]), x.sum(-1, keepdim=True)), X3),
    "sum_dtype": (lambda x: x.sum(1, dtype=torch.float64), X3),
    "sum_int_bool": (lambda i, b: (i.sum(1), b.sum(), torch.sum(i, dtype=torch.float32)), ints(3, 4), B),
    "mean": (lambda x: (x.mean(), torch.mean(x, (1, 2)), x.mean(-1, keepdim=True)), X3),
    "prod": (lambda x: (x.prod(), torch.prod(x, 1), x.prod(2, keepdim=True)), rand(3, 4, 5, lo=0.5, hi=1.5)),
    "prod_int": (lambda i: i.prod(1), ints(3, 4, lo=-3, hi=4)),
    "amax_amin": (lambda x: (x.amax(), torch.amax(x, (0, 2)), x.amin(1, keepdim=True)), X3),
    "aminmax": (lambda x: torch.aminmax(x, dim=1), X3),
    "max_full": (lambda x: (x.max(), torch.min(x)), X3),
    "max_dim": (lambda x: torch.max(x, 1), DISTINCT),
    "max_dim_keepdim": (lambda x: x.max(dim=-1, keepdim=True), DISTINCT),
    "min_dim": (lambda x: (x.min(2).values, torch.min(x, 0)[1]), DISTINCT),
    "max_int_bool": (lambda i, b: (i.max(), i.max(1), b.max(), b.any(1)), ints(3, 4), B),
    "argmax": (lambda x: (x.argmax(), torch.argmax(x, 1), x.argmax(-1, keepdim=True), x.argmax(keepdim=True)), DISTINCT),
    "argmin": (lambda x: (x.argmin(), torch.argmin(x, dim=2), x.argmin(0, True)), DISTINCT),
    "topk": (lambda x: torch.topk(x, 3), DISTINCT),
    "topk_forms": (lambda x: (x.topk(2, dim=1, largest=False), torch.topk(x, 2, 2, True, True)), DISTINCT),
    "sort": (lambda x: (torch.sort(x), x.sort(1, descending=True), x.sort(dim=0, stable=True)), DISTINCT),
    "argsort": (lambda x: (torch.argsort(x, 1), x.argsort(descending=True), torch.msort(x)), DISTINCT),
    "sort_ties": (lambda i: torch.sort(i, stable=True), ints(3, 8, lo=0, hi=3)),
    "cumsum": (lambda x: (torch.cumsum(x, 1), x.cumsum(-1), x.cumsum(0, dtype=torch.float64)), X3),
    "cumsum_int": (lambda i, b: (i.cumsum(1), b.cumsum(0)), ints(3, 4), B),
    "cumprod": (lambda x: (torch.cumprod(x, 1), x.cumprod(0, dtype=torch.float64)), rand(3, 4, 5, lo=0.5, hi=1.5)),
    "logsumexp": (lambda x: (torch.logsumexp(x, 1), x.logsumexp((0, 2), keepdim=True)), X3 * 30),
    "var": (lambda x: (x.var(), torch.var(x, 1), x.var(2, keepdim=True), x.var(False)), X3),
    "var_forms": (lambda x: (x.var(1, False), torch.var(x, (0, 2), True, True), x.var(1, correction=2),
                             x.var(dim=0, unbiased=False)), X3),
    "std": (lambda x: (x.std(), torch.std(x, 1, keepdim=True), x.std(-1, correction=0)), X3),
    "var_std_mean": (lambda x: (torch.var_mean(x, 1), torch.std_mean(x, (0, 2), keepdim=True)), X3),
    "norm": (lambda x: (x.norm(), torch.norm(x, dim=1), x.norm(p=1, dim=-1, keepdim=True), x.norm(3, 2)), X3),
    "norm_inf": (lambda x: (x.norm(float("inf"), 1), torch.norm(x, -math.inf, 2), x.norm(0, 1)), X3),
    "vector_norm": (lambda x: (torch.linalg.vector_norm(x), torch.linalg.vector_norm(x, 1, (0, 2))), X3),
    "linalg_norm": (lambda x: (torch.linalg.norm(x), torch.linalg.norm(x, dim=1), torch.linalg.norm(x, 1, (1, 2)),
                               torch.linalg.norm(x, math.inf, (1, 2), keepdim=True)), X3),
    "matrix_norm": (lambda x: (torch.linalg.matrix_norm(x), torch.linalg.matrix_norm(x, -1),
                               torch.linalg.matrix_norm(x, -math.inf, dim=(0, 2))), X3),
    "all_any": (lambda x: (x.all(), torch.any(x, 1), x.all(-1, keepdim=True), (x > 0).any(0)), X3.round()),
    "all_any_uint8": (lambda u: (u.all(), u.any(1)), ints(3, 4, lo=0, hi=2, dtype=torch.uint8)),
    "count_nonzero": (lambda x: (torch.count_nonzero(x), x.count_nonzero(1), x.count_nonzero((0, 2))), X3.round()),
    "nansum": (lambda x: (x.nansum(), torch.nanmean(x, 1), torch.nansum(x, 0)),
               torch.where(X3.round() == 0, math.nan, X3)),
}


@pytest.mark.parametrize("name", REDUCE)
def test_reduce(name):
    fn, *inputs = REDUCE[name]
    check(fn, *inputs, axis=None if name == "nansum" else 0)


@pytest.mark.parametrize("opset", [17, 18])
def test_reduce_older_opsets(opset):
    def fn(x):
        return (x.sum(1), x.mean((0, 2), keepdim=True), x.amax(1), x.max(1), x.var(1), x.norm(dim=2),
                x.logsumexp(1), x.argmax(2), x.all(1), x.cumsum(1), x.sort(1).values, x.prod(0))

    check(fn, DISTINCT, opset=opset)


def test_reductions_over_dynamic_axes():
    """Mean, softmax, variance, norm and sort over a dynamic sequence axis."""

    def fn(x):
        pooled = x.mean(1)
        weights = torch.softmax(x.sum(-1), dim=1)
        return (pooled, weights, x.var(1), x.std(1, keepdim=True), x.norm(dim=1), x.logsumexp(1),
                x.argmax(1), x.sort(1).values, x.cumsum(1), x.max(1).values, x.any(1), F.log_softmax(x, 1))

    x = rand(2, 5, 3)
    check_export(fn, (x,), input_names=["x"], dynamic_axes={"x": {0: "batch", 1: "seq"}},
                 other_inputs=[(rand(1, 7, 3),), (rand(3, 2, 3),)])


def test_keyword_spellings():
    """torch's input=/other= keywords and numpy's axis=/keepdims=, which torch accepts."""

    def fn(x, y):
        return (torch.sum(input=x, axis=1, keepdims=True), x.mean(axis=(0, 2)), x.max(axis=1).values,
                torch.maximum(x, other=y), torch.gt(input=x, other=y), x.std(axis=1, keepdims=True),
                torch.addcmul(x, tensor1=y, tensor2=y, value=2), torch.softmax(x, axis=1), x.argmax(axis=2))

    check(fn, X3, rand(3, 4, 5))


def test_cumprod_needs_opset_26():
    with pytest.raises(ferry.UnsupportedOperatorError, match="opset 26"):
        ferry.export(lambda x: x.cumprod(1), (X,), opset_version=25)


def test_unsupported_norm():
    with pytest.raises(ferry.UnsupportedOperatorError, match="nuclear"):
        ferry.export(lambda x: torch.norm(x, p="nuc"), (X,))
