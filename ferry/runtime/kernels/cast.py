"""Type conversion kernels: Cast, CastLike, BitCast.

``cast_to`` is the shared conversion (also usable by other kernels): numbers between
any numeric types (numpy's for ordinary ones, :mod:`ferry.ir.minifloat` for exotic
ones), strings parsed from and formatted to numbers.
"""

from __future__ import annotations

import numpy as np

from ferry.ir.dtypes import DataType, from_numpy_dtype
from ferry.ir.minifloat import (
    FLOAT_FORMATS,
    INT_RANGES,
    bit_patterns,
    from_bit_patterns,
    from_float32,
    from_integers,
    int_values,
    to_float32,
)
from ferry.runtime.registry import kernel

__all__ = ["cast_to", "data_type"]

_E8M0_ROUND_MODES = ("up", "down", "nearest")
_TYPE_ALIASES = {"FLOAT32": DataType.FLOAT, "FLOAT64": DataType.DOUBLE, "HALF": DataType.FLOAT16}


def data_type(to: int | str) -> DataType:
    """The element type named by a Cast ``to`` attribute: an enum code, or a name (opset 1)."""
    if isinstance(to, str):
        name = to.strip().upper()
        if name in _TYPE_ALIASES:
            return _TYPE_ALIASES[name]
        try:
            return DataType[name]
        except KeyError:
            raise ValueError(f"Cast: unknown element type name {to!r}") from None
    try:
        code = DataType(int(to))
    except ValueError:
        raise ValueError(f"Cast: unknown element type code {to}") from None
    if code == DataType.UNDEFINED:
        raise ValueError("Cast: 'to' must name an element type, got UNDEFINED")
    return code


# --------------------------------------------------------------------------- sources


def _source(x: np.ndarray) -> tuple[np.ndarray, str]:
    """The input as plain numbers or strings, and its kind: "float", "int", "bool", "str"."""
    if x.dtype.names is not None:
        code = from_numpy_dtype(x.dtype)
        if code in INT_RANGES:
            return int_values(x), "int"
        return to_float32(x), "float"
    kind = x.dtype.kind
    if kind in "OUS":
        return x, "str"
    if kind == "b":
        return x, "bool"
    if kind in "iu":
        return x, "int"
    if kind in "fc":
        return x, "float"
    raise TypeError(f"Cast: unsupported input dtype {x.dtype}")


def _parse_float(text) -> float:
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    try:
        return float(str(text).strip())
    except ValueError:
        raise ValueError(f"Cast: cannot read {text!r} as a number") from None


def _parse_int(text) -> int:
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    text = str(text).strip()
    try:
        return int(text)
    except ValueError:
        value = _parse_float(text)
        if not np.isfinite(value):
            raise ValueError(f"Cast: cannot read {text!r} as an integer") from None
        return int(value)  # "100.5" -> 100


def _parse_bool(text) -> bool:
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    lowered = str(text).strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return _parse_float(lowered) != 0


def _wrap_python_int(value: int, dtype: np.dtype) -> int:
    """``value`` reduced to ``dtype``'s range by discarding higher bits (two's complement)."""
    bits = dtype.itemsize * 8
    value &= (1 << bits) - 1
    if dtype.kind == "i" and value >= 1 << (bits - 1):
        value -= 1 << bits
    return value


def _from_strings(x: np.ndarray, to: DataType, saturate: bool, round_mode: str) -> np.ndarray:
    flat = x.reshape(-1)
    if to == DataType.BOOL:
        return np.array([_parse_bool(s) for s in flat], dtype=bool).reshape(x.shape)
    if to in INT_RANGES:
        mask = (1 << INT_RANGES[to][0]) - 1
        bits = np.array([_parse_int(s) & mask for s in flat], dtype=np.int64)
        return from_integers(bits, to).reshape(x.shape)
    if not to.is_exotic and to.numpy.kind in "iu":
        target = to.numpy
        ints = [_wrap_python_int(_parse_int(s), target) for s in flat]
        return np.array(ints, dtype=target).reshape(x.shape)
    values = np.array([_parse_float(s) for s in flat], dtype=np.float64).reshape(x.shape)
    return _from_numbers(values, "float", to, saturate, round_mode)


# --------------------------------------------------------------------------- targets


def _format_number(value, kind: str) -> str:
    if kind == "bool":
        return str(bool(value))
    if kind == "int":
        return str(int(value))
    return str(value)  # numpy's shortest round-trip form: '0.47892547', 'nan', '-inf', '1e-07'


def _to_strings(values: np.ndarray, kind: str) -> np.ndarray:
    flat = values.reshape(-1)
    out = np.empty(flat.shape, dtype=object)
    for i, value in enumerate(flat):
        out[i] = _format_number(value, kind)
    return out.reshape(values.shape)


def _from_numbers(
    values: np.ndarray, kind: str, to: DataType, saturate: bool, round_mode: str
) -> np.ndarray:
    if to == DataType.STRING:
        return _to_strings(values, kind)
    if to in FLOAT_FORMATS:
        mode = round_mode if to == DataType.FLOAT8E8M0 else "nearest_even"
        if mode not in _E8M0_ROUND_MODES + ("nearest_even",):
            raise ValueError(f"Cast: round_mode must be one of {_E8M0_ROUND_MODES}, got {mode!r}")
        if kind == "float" and values.dtype.kind == "c":
            values = values.real
        return from_float32(values, to, saturate=saturate, round_mode=mode)
    if to in INT_RANGES:
        if kind == "float":  # like a C cast: truncate toward zero, then wrap around
            return from_float32(np.real(values), to, saturate=False, round_mode="down")
        return from_integers(values, to)
    target = to.numpy
    with np.errstate(invalid="ignore", over="ignore"):
        if values.dtype.kind == "c" and target.kind != "c":
            values = values.real
        return values.astype(target)


def cast_to(
    x: np.ndarray, to: DataType, *, saturate: bool = True, round_mode: str = "up"
) -> np.ndarray:
    """``x`` converted to element type ``to`` following ONNX Cast (see the kernel docs)."""
    x = np.asarray(x)
    to = DataType(to)
    if x.dtype == to.numpy and x.dtype.kind != "O":
        return x.copy()
    values, kind = _source(x)
    if kind == "str":
        if to == DataType.STRING:
            return np.array([str(s) for s in x.reshape(-1)], dtype=object).reshape(x.shape)
        return _from_strings(values, to, saturate, round_mode)
    return _from_numbers(values, kind, to, bool(saturate), round_mode)


# --------------------------------------------------------------------------- kernels


@kernel("Cast", since=1)
def cast_v1(input, *, to):
    """Cast to the element type named by the string attribute ``to`` (opset 1)."""
    return cast_to(input, data_type(to))


@kernel("Cast", since=(6, 9, 13, 19, 21, 23, 24, 25, 28))
def cast(input, *, to, saturate=None, round_mode=None):
    """Cast elementwise to type ``to``; ``saturate`` governs float8 overflow, ``round_mode`` E8M0."""
    return cast_to(
        input,
        data_type(to),
        saturate=True if saturate is None else bool(saturate),
        round_mode=round_mode or "up",
    )


@kernel("CastLike", since=(15, 19, 21, 23, 24, 25))
def cast_like(input, target_type, *, saturate=None, round_mode=None):
    """Cast ``input`` to the element type of ``target_type`` (same rules as Cast)."""
    return cast_to(
        input,
        from_numpy_dtype(np.asarray(target_type).dtype),
        saturate=True if saturate is None else bool(saturate),
        round_mode=round_mode or "up",
    )


@kernel("BitCast", since=26)
def bit_cast(input, *, to):
    """Reinterpret each element's little-endian bits as type ``to`` of the same bit width."""
    target = data_type(to)
    if target == DataType.STRING:
        raise TypeError("BitCast: the target type cannot be string")
    bits, width = bit_patterns(np.asarray(input))
    if target.bitwidth != width:
        raise ValueError(
            f"BitCast: {target.name} is {target.bitwidth} bits wide but the input's type is "
            f"{width} bits wide; they must match"
        )
    return from_bit_patterns(bits, target)
