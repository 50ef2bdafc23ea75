"""Conversions between ferry's exotic element types and ordinary numpy numbers.

Every exotic type (see :mod:`ferry.ir.dtypes`) is a structured array of bit patterns.
:func:`to_float32` decodes any of them; :func:`from_float32` encodes floats into any
of them with one generic minifloat encoder, parametrized by the format's exponent and
mantissa widths, bias and special-value convention (IEEE-like, finite "FN",
finite-unsigned-zero "FNUZ", finite without NaN, or the exponent-only E8M0).

Sub-byte integer types (int4, uint4, int2, uint2) hold their value in their byte
(signed ones sign-extended, as onnx unpacks them); decoding reads only the low bits.
:func:`int_values` and :func:`from_integers` convert them to and from ordinary integers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ferry.ir.dtypes import EXOTIC_DTYPES, DataType, from_numpy_dtype

__all__ = [
    "MiniFloat",
    "FLOAT_FORMATS",
    "INT_RANGES",
    "ROUND_MODES",
    "to_float32",
    "from_float32",
    "int_values",
    "from_integers",
    "bit_patterns",
    "from_bit_patterns",
]

ROUND_MODES = ("nearest_even", "nearest", "up", "down")

# Special-value conventions of the minifloat formats.
IEEE = "ieee"  # all-ones exponent: infinity (zero mantissa) or NaN
FN = "fn"  # finite; only S.1111...1 is NaN
FNUZ = "fnuz"  # finite; the negative-zero pattern is the only NaN, zero is unsigned
FINITE = "finite"  # no infinity, no NaN: every pattern is a number
E8M0 = "e8m0"  # unsigned powers of two without zero; all-ones is NaN


@dataclass(frozen=True)
class MiniFloat:
    """A binary floating-point format of at most 16 bits."""

    exponent_bits: int
    mantissa_bits: int
    bias: int
    kind: str
    saturable: bool  # whether ONNX's ``saturate`` attribute applies to it

    @property
    def signed(self) -> bool:
        return self.kind != E8M0

    @property
    def bits(self) -> int:
        return self.exponent_bits + self.mantissa_bits + int(self.signed)

    @property
    def sign_bit(self) -> int:
        return 1 << (self.exponent_bits + self.mantissa_bits) if self.signed else 0

    @property
    def subnormals(self) -> bool:
        return self.kind != E8M0

    @property
    def min_exponent(self) -> int:
        """Unbiased exponent of the smallest code with a leading one (code 1 << m, or 0)."""
        return 1 - self.bias if self.subnormals else -self.bias

    @property
    def max_code(self) -> int:
        """Largest code of a finite positive value."""
        magnitude = 1 << (self.exponent_bits + self.mantissa_bits)
        if self.kind == IEEE:
            return magnitude - (1 << self.mantissa_bits) - 1
        if self.kind in (FN, E8M0):
            return magnitude - 2
        return magnitude - 1

    @property
    def nan_code(self) -> int | None:
        """Code produced for a positive NaN (a negative NaN flips the sign bit, except FNUZ).

        FINITE formats have no NaN; like ml_dtypes they give the negative-zero pattern.
        """
        if self.kind == IEEE:
            return ((1 << self.exponent_bits) - 1) << self.mantissa_bits | 1 << (
                self.mantissa_bits - 1
            )
        if self.kind in (FN, E8M0):
            return (1 << self.bits) - 1 if self.kind == E8M0 else self.max_code + 1
        return self.sign_bit  # FNUZ's NaN, FINITE's stand-in

    @property
    def inf_code(self) -> int | None:
        if self.kind != IEEE:
            return None
        return ((1 << self.exponent_bits) - 1) << self.mantissa_bits

    @property
    def max(self) -> float:
        """Largest finite value."""
        return float(_decode_codes(self, np.array([self.max_code]))[0])


FLOAT_FORMATS: dict[DataType, MiniFloat] = {
    DataType.BFLOAT16: MiniFloat(8, 7, 127, IEEE, saturable=False),
    DataType.FLOAT8E4M3FN: MiniFloat(4, 3, 7, FN, saturable=True),
    DataType.FLOAT8E4M3FNUZ: MiniFloat(4, 3, 8, FNUZ, saturable=True),
    DataType.FLOAT8E5M2: MiniFloat(5, 2, 15, IEEE, saturable=True),
    DataType.FLOAT8E5M2FNUZ: MiniFloat(5, 2, 16, FNUZ, saturable=True),
    DataType.FLOAT8E8M0: MiniFloat(8, 0, 127, E8M0, saturable=True),
    DataType.FLOAT4E2M1: MiniFloat(2, 1, 1, FINITE, saturable=False),
    DataType.FLOAT6E2M3: MiniFloat(2, 3, 1, FINITE, saturable=False),
    DataType.FLOAT6E3M2: MiniFloat(3, 2, 3, FINITE, saturable=False),
}

# (bits, signed, min, max) of the sub-byte integer types.
INT_RANGES: dict[DataType, tuple[int, bool, int, int]] = {
    DataType.INT4: (4, True, -8, 7),
    DataType.UINT4: (4, False, 0, 15),
    DataType.INT2: (2, True, -2, 1),
    DataType.UINT2: (2, False, 0, 3),
}


def _exotic_type(array: np.ndarray) -> DataType | None:
    if array.dtype.names is None:
        return None
    code = from_numpy_dtype(array.dtype)
    return code if code in EXOTIC_DTYPES else None


def _storage(code: DataType) -> np.dtype:
    dtype = code.numpy
    return dtype.fields[dtype.names[0]][0]


def _field(array: np.ndarray, code: DataType) -> np.ndarray:
    """The stored integers of a structured exotic array (a view, no copy)."""
    return array.view(_storage(code))


def _wrap(bits: np.ndarray, code: DataType) -> np.ndarray:
    """Bit patterns (any integer array) as a structured array of type ``code``.

    Signed sub-byte integers are stored sign-extended (int4 -1 is the byte 0xFF), as
    onnx's own unpacking does, so the stored byte equals the value.
    """
    bits = np.asarray(bits)
    if code in INT_RANGES and INT_RANGES[code][1]:
        width = INT_RANGES[code][0]
        bits = bits.astype(np.int16)
        bits = np.where(bits >= 1 << (width - 1), bits - (1 << width), bits)
    return bits.astype(_storage(code)).view(code.numpy)


# --------------------------------------------------------------------------- decoding


def _decode_codes(fmt: MiniFloat, codes: np.ndarray) -> np.ndarray:
    """float64 values of integer ``codes`` of ``fmt`` (NaN keeps the sign bit)."""
    codes = codes.astype(np.int64)
    m = fmt.mantissa_bits
    magnitude = codes & ~fmt.sign_bit if fmt.signed else codes
    exponent = magnitude >> m
    mantissa = magnitude & ((1 << m) - 1)
    if fmt.subnormals:
        significand = np.where(exponent > 0, mantissa + (1 << m), mantissa)
        scale = np.maximum(exponent, 1) - fmt.bias - m
    else:
        significand = mantissa + (1 << m)
        scale = exponent - fmt.bias - m
    values = np.ldexp(significand.astype(np.float64), scale)
    negative = (codes & fmt.sign_bit) != 0
    values = np.where(negative, -values, values)
    if fmt.kind == IEEE:
        top = exponent == (1 << fmt.exponent_bits) - 1
        values = np.where(top & (mantissa == 0), np.copysign(np.inf, values), values)
        nan = top & (mantissa != 0)
    elif fmt.kind == FINITE:
        nan = np.zeros(codes.shape, dtype=bool)
    else:
        nan = codes == fmt.sign_bit if fmt.kind == FNUZ else magnitude == fmt.nan_code
    return np.where(nan, np.where(negative, -np.nan, np.nan), values)


@functools.cache
def _decode_table(code: DataType) -> np.ndarray:
    fmt = FLOAT_FORMATS[code]
    return _decode_codes(fmt, np.arange(1 << fmt.bits)).astype(np.float32)


def int_values(array: np.ndarray) -> np.ndarray:
    """The integers held by an int4/uint4/int2/uint2 array, as int8 or uint8."""
    array = np.asarray(array)
    code = _exotic_type(array)
    if code not in INT_RANGES:
        raise TypeError(f"int_values expects an int4/uint4/int2/uint2 array, got {array.dtype}")
    bits, signed, _, _ = INT_RANGES[code]
    low = _field(array, code).astype(np.uint8) & np.uint8((1 << bits) - 1)
    if not signed:
        return low
    values = low.astype(np.int8)
    return np.where(values >= 1 << (bits - 1), values - (1 << bits), values).astype(np.int8)


def to_float32(array: np.ndarray) -> np.ndarray:
    """Decode any exotic array (or convert a plain numeric one) to float32 values."""
    array = np.asarray(array)
    code = _exotic_type(array)
    if code is None:
        if array.dtype.names is not None:
            raise TypeError(f"to_float32: unknown structured dtype {array.dtype}")
        return array.astype(np.float32)
    if code in INT_RANGES:
        return int_values(array).astype(np.float32)
    if code == DataType.BFLOAT16:
        return (_field(array, code).astype(np.uint32) << 16).view(np.float32)
    table = _decode_table(code)
    return table[_field(array, code).astype(np.intp) & (len(table) - 1)]


# --------------------------------------------------------------------------- encoding


def _round(values: np.ndarray, round_mode: str) -> np.ndarray:
    """Round non-negative ``values`` to integers."""
    if round_mode == "nearest_even":
        return np.rint(values)
    if round_mode == "nearest":
        return np.floor(values + 0.5)
    if round_mode == "up":
        return np.ceil(values)
    if round_mode == "down":
        return np.floor(values)
    raise ValueError(f"round_mode must be one of {ROUND_MODES}, got {round_mode!r}")


def _encode_magnitudes(fmt: MiniFloat, magnitude: np.ndarray, round_mode: str) -> np.ndarray:
    """Codes (int64, maybe out of range) of finite non-negative float64 ``magnitude``."""
    m = fmt.mantissa_bits
    _, exponent = np.frexp(magnitude)
    exponent = np.where(magnitude > 0, exponent.astype(np.int64) - 1, fmt.min_exponent)
    exponent = np.maximum(exponent, fmt.min_exponent)
    steps = _round(np.ldexp(magnitude, m - exponent), round_mode).astype(np.int64)
    offset = 0 if fmt.subnormals else 1 << m
    return ((exponent - fmt.min_exponent) << m) + steps - offset


def _encode_float(values: np.ndarray, fmt: MiniFloat, saturate: bool, round_mode: str):
    x = np.asarray(values, dtype=np.float64).ravel()
    negative = np.signbit(x)
    nan = np.isnan(x)
    finite = np.isfinite(x)
    magnitude = np.where(finite, np.abs(x), 0.0)
    codes = _encode_magnitudes(fmt, magnitude, round_mode)
    clamp = fmt.kind == FINITE or (saturate and fmt.saturable)
    overflow = ~finite & ~nan | (codes > fmt.max_code)
    underflow = finite & (codes < 0)  # only E8M0, which has no zero
    if clamp:
        codes = np.where(overflow, fmt.max_code, codes)
        codes = np.where(underflow, 0, codes)
    elif fmt.kind == IEEE:
        codes = np.where(overflow, fmt.inf_code, codes)
    else:
        nan = nan | overflow | underflow
    if fmt.signed:
        sign = np.where(negative, fmt.sign_bit, 0)
        if fmt.kind == FNUZ:
            sign = np.where(codes == 0, 0, sign)
        codes = codes | sign
        nan_codes = fmt.nan_code if fmt.kind == FNUZ else fmt.nan_code ^ sign
    else:  # E8M0: negative numbers have no encoding
        nan = nan | (negative & (magnitude > 0))
        nan_codes = fmt.nan_code
    codes = np.where(nan, nan_codes, codes)
    return codes.reshape(np.shape(values))


def _encode_int(values: np.ndarray, code: DataType, saturate: bool, round_mode: str):
    bits, _, low, high = INT_RANGES[code]
    x = np.asarray(values, dtype=np.float64)
    rounded = np.copysign(_round(np.abs(x), round_mode), x)
    rounded = np.where(np.isnan(rounded), 0.0, rounded)
    if saturate:
        rounded = np.clip(rounded, low, high)
    else:  # two's complement wrap-around (fmod is exact); infinities become 0
        rounded = np.where(np.isinf(rounded), 0.0, np.fmod(rounded, 1 << bits))
    return rounded.astype(np.int64) & ((1 << bits) - 1)


def from_float32(
    array: np.ndarray,
    dtype: DataType,
    *,
    saturate: bool = True,
    round_mode: str = "nearest_even",
) -> np.ndarray:
    """Encode float values (float16/32/64 or integers, rounded once) as exotic ``dtype``.

    Float formats: ``round_mode`` rounds the magnitude ("nearest_even", "nearest" with
    ties away from zero, "up" away from zero, "down" toward zero). Out-of-range values
    and infinities follow ONNX Cast: with ``saturate`` they clamp to the largest finite
    value (float8 types and E8M0 only: ONNX's ``saturate`` does not apply to bfloat16,
    which overflows to infinity like IEEE, nor to float4/float6, which always clamp);
    without it they become infinity (E5M2) or NaN (the finite types). E8M0 results
    below its smallest value clamp to it when saturating and are NaN otherwise.
    Integer formats: values round with ``round_mode``; ``saturate`` clamps to the
    type's range, otherwise they wrap around (two's complement); NaN gives 0.
    """
    dtype = DataType(dtype)
    if round_mode not in ROUND_MODES:
        raise ValueError(f"round_mode must be one of {ROUND_MODES}, got {round_mode!r}")
    with np.errstate(invalid="ignore", over="ignore"):
        if dtype in INT_RANGES:
            return _wrap(_encode_int(array, dtype, saturate, round_mode), dtype)
        if dtype not in FLOAT_FORMATS:
            raise TypeError(f"from_float32 encodes exotic types only, not {dtype.name}")
        return _wrap(_encode_float(array, FLOAT_FORMATS[dtype], saturate, round_mode), dtype)


def from_integers(array: np.ndarray, dtype: DataType) -> np.ndarray:
    """Integers as exotic ``dtype``: sub-byte ints keep the low bits (wrap-around)."""
    dtype = DataType(dtype)
    array = np.asarray(array)
    if dtype in INT_RANGES:
        bits = INT_RANGES[dtype][0]
        if array.dtype == np.uint64:
            return _wrap(array & np.uint64((1 << bits) - 1), dtype)
        return _wrap(array.astype(np.int64) & ((1 << bits) - 1), dtype)
    return from_float32(array, dtype)


# --------------------------------------------------------------------------- raw bits

_UNSIGNED = {8: np.dtype("<u1"), 16: np.dtype("<u2"), 32: np.dtype("<u4"), 64: np.dtype("<u8")}


def bit_patterns(array: np.ndarray) -> tuple[np.ndarray, int]:
    """The raw bits of every element as unsigned integers, and the type's bit width."""
    array = np.asarray(array)
    code = _exotic_type(array)
    if code is not None:
        width = code.bitwidth
        field = _field(array, code)
        unsigned = field.view(_UNSIGNED[field.dtype.itemsize * 8])
        return unsigned & unsigned.dtype.type((1 << width) - 1), width
    if array.dtype.kind == "O" or array.dtype.names is not None:
        raise TypeError(f"no bit pattern for dtype {array.dtype}")
    width = array.dtype.itemsize * 8
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return little.view(_UNSIGNED[width]), width


def from_bit_patterns(bits: np.ndarray, dtype: DataType) -> np.ndarray:
    """Unsigned bit patterns (as from :func:`bit_patterns`) reinterpreted as ``dtype``."""
    dtype = DataType(dtype)
    bits = np.asarray(bits)
    if dtype in EXOTIC_DTYPES:
        mask = (1 << dtype.bitwidth) - 1
        return _wrap(bits.astype(np.int64) & mask, dtype)
    target = dtype.numpy
    if target.kind == "O":
        raise TypeError("no bit pattern for strings")
    width = target.itemsize * 8
    raw = bits.astype(_UNSIGNED[width])
    if target == np.bool_:
        return raw != 0
    return raw.view(target.newbyteorder("<")).astype(target)
