"""Comparisons, value tests (isnan, isinf), and bitwise / logical operations.

Comparisons compare in torch's common dtype of the operands and give bool; their in-place
forms (``x.lt_(y)``) write 0/1 in ``x``'s dtype. ``& | ^ ~`` are logical on bools and
bitwise on integers (ONNX Bitwise* ops, opset 18 and later).
"""

from __future__ import annotations

import torch

from ferry.trace.symbolics._helpers import as_value, cast_to, out_dtype
from ferry.trace.symbolics.math import is_float, symbolic, unsupported, variants
from ferry.trace.symint import SymInt
from ferry.trace.tracer import Var

T = torch.Tensor


def _operand(x):
    if isinstance(x, Var):
        return x.tensor
    return x.value if isinstance(x, SymInt) else x


def common_dtype(a, b) -> torch.dtype:
    """torch's type promotion of two operands (tensors or Python scalars)."""
    return torch.result_type(_operand(a), _operand(b))


def _finish(g, value):
    """A bool result, cast to the output's dtype (in-place forms keep the input's)."""
    return cast_to(g, value, torch.bool, out_dtype(g))


# -- comparisons --------------------------------------------------------------------------
_COMPARE = {
    "eq": "Equal", "ne": "NotEqual", "lt": "Less", "le": "LessOrEqual", "gt": "Greater",
    "ge": "GreaterOrEqual",
}
_ALIASES = {
    "eq": ["__eq__"], "ne": ["not_equal", "__ne__"], "lt": ["less", "__lt__"],
    "le": ["less_equal", "__le__"], "gt": ["greater", "__gt__"], "ge": ["greater_equal", "__ge__"],
}


def _compare(onnx_op: str):
    def compare(g, a, b, *, out=None):
        dtype = common_dtype(a, b)
        if dtype == torch.bool and onnx_op not in ("Equal", "NotEqual"):
            dtype = torch.int32  # ONNX orders numbers only
        x, y = as_value(g, a, dtype), as_value(g, b, dtype)
        if onnx_op == "NotEqual":
            return _finish(g, g.op("Not", g.op("Equal", x, y)))
        return _finish(g, g.op(onnx_op, x, y))

    compare.__doc__ = f"Elementwise {onnx_op} in the operands' common dtype."
    return compare


for _name, _op in _COMPARE.items():
    symbolic(*variants(_name, *_ALIASES[_name]))(_compare(_op))


@symbolic(*variants("isnan", inplace=False))
def isnan(g, x):
    if not is_float(x.dtype):
        return g.op("Not", g.op("Equal", x, x))  # all False
    return g.op("IsNaN", x)


def _isinf(positive: bool, negative: bool):
    def isinf(g, x):
        if not is_float(x.dtype):
            return g.op("Not", g.op("Equal", x, x))
        return g.op("IsInf", x, detect_positive=int(positive), detect_negative=int(negative))

    return isinf


symbolic(*variants("isinf", inplace=False))(_isinf(True, True))
symbolic(*variants("isposinf", inplace=False))(_isinf(True, False))
symbolic(*variants("isneginf", inplace=False))(_isinf(False, True))


@symbolic(*variants("isfinite", inplace=False))
def isfinite(g, x):
    if not is_float(x.dtype):
        return g.op("Equal", x, x)  # all True
    return g.op("Not", g.op("Or", g.op("IsNaN", x), g.op("IsInf", x)))


# -- logical and bitwise --------------------------------------------------------------------
def _logical(onnx_op: str):
    def logical(g, a, b, *, out=None):
        x, y = as_value(g, a, torch.bool), as_value(g, b, torch.bool)
        return _finish(g, g.op(onnx_op, x, y))

    logical.__doc__ = f"{onnx_op} of the operands' truth values (nonzero is True)."
    return logical


symbolic(*variants("logical_and"))(_logical("And"))
symbolic(*variants("logical_or"))(_logical("Or"))
symbolic(*variants("logical_xor"))(_logical("Xor"))


@symbolic(*variants("logical_not"))
def logical_not(g, x, *, out=None):
    return _finish(g, g.op("Not", as_value(g, x, torch.bool)))


def _bitwise(bool_op: str, int_op: str):
    def bitwise(g, a, b, *, out=None):
        dtype = out_dtype(g)
        x, y = as_value(g, a, dtype), as_value(g, b, dtype)
        if dtype == torch.bool:
            return g.op(bool_op, x, y)
        if g.opset < 18:
            raise unsupported(g, f"{int_op} on integer tensors needs opset 18 or later (got {g.opset})")
        return g.op(int_op, x, y)

    bitwise.__doc__ = f"{bool_op} on bools, ONNX {int_op} on integers."
    return bitwise


_BITWISE = {"and": ("And", "BitwiseAnd"), "or": ("Or", "BitwiseOr"), "xor": ("Xor", "BitwiseXor")}
for _name, (_bool_op, _int_op) in _BITWISE.items():
    symbolic(
        *variants(f"bitwise_{_name}"), *variants(f"__{_name}__", f"__i{_name}__", f"__r{_name}__")
    )(_bitwise(_bool_op, _int_op))


@symbolic(*variants("bitwise_not", "__invert__"))
def bitwise_not(g, x, *, out=None):
    if x.dtype == torch.bool:
        return g.op("Not", x)
    if g.opset < 18:
        raise unsupported(g, f"BitwiseNot on integer tensors needs opset 18 or later (got {g.opset})")
    return g.op("BitwiseNot", x)
