"""Small tools shared by symbolic functions."""

from __future__ import annotations

import numpy as np
import torch

from ferry.ir import Value
from ferry.trace.dtypes import to_data_type
from ferry.trace.symint import SymInt
from ferry.trace.tracer import Var

__all__ = ["as_value", "cast_to", "dtype_code", "out_dtype", "numpy_dtype", "promote"]


def dtype_code(dtype: torch.dtype) -> int:
    """The ONNX element type code of a torch dtype (for Cast's ``to``)."""
    return int(to_data_type(dtype))


def numpy_dtype(dtype: torch.dtype) -> np.dtype:
    return to_data_type(dtype).numpy


def out_dtype(g) -> torch.dtype:
    """The dtype of the call's (first) real result."""
    out = g.out
    while isinstance(out, (tuple, list)):
        out = out[0]
    return out.dtype


def cast_to(g, value: Value, have: torch.dtype, want: torch.dtype) -> Value:
    return value if have == want else g.op("Cast", value, to=dtype_code(want))


def as_value(g, x, dtype: torch.dtype) -> Value:
    """A graph value of ``dtype`` for a Var, a SymInt or a Python number."""
    if isinstance(x, Var):
        return cast_to(g, x.value, x.dtype, dtype)
    if isinstance(x, SymInt):
        return cast_to(g, x.var, torch.int64, dtype)
    return g.const(np.asarray(x, dtype=numpy_dtype(dtype)))


def promote(g, *operands, dtype: torch.dtype | None = None) -> list[Value]:
    """Operands as values of one dtype: ``dtype``, or the real result's (torch's promotion)."""
    target = dtype or out_dtype(g)
    return [as_value(g, x, target) for x in operands]
