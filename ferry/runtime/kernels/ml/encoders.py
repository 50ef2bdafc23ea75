"""ai.onnx.ml encoders and map conversions: LabelEncoder, CategoryMapper, OneHotEncoder,
DictVectorizer, CastMap and ZipMap. Maps are Python dicts; ZipMap returns a list of them."""

from __future__ import annotations

import math

import numpy as np

from ferry.runtime.kernels.ml._common import ML, class_labels
from ferry.runtime.registry import kernel


def _is_strings(x: np.ndarray) -> bool:
    return x.dtype == object or x.dtype.kind in "US"


def _key(value: object) -> object:
    """A dict key for one element: NaN floats collapse to one key so NaN matches NaN."""
    if isinstance(value, float) and math.isnan(value):
        return "<nan>", float
    return value


def map_elements(x: np.ndarray, table: dict, default: object, dtype) -> np.ndarray:
    """Look every element of ``x`` up in ``table`` (keys made with :func:`_key`)."""
    flat = x.ravel()
    if flat.size == 0:
        return np.empty(x.shape, dtype=dtype)
    uniques, inverse = np.unique(flat.astype(object) if _is_strings(x) else flat, return_inverse=True)
    looked_up = [table.get(_key(u.item() if hasattr(u, "item") else u), default) for u in uniques]
    mapped = np.empty(len(looked_up), dtype=dtype)
    mapped[:] = looked_up
    return mapped[inverse.ravel()].reshape(x.shape)


def _object_array(values) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


# ------------------------------------------------------------------------- LabelEncoder


@kernel("LabelEncoder", since=1, domain=ML)
def label_encoder_v1(x, *, classes_strings, default_int64, default_string):
    """Strings to their index in classes_strings (else default_int64), or integers to
    classes_strings[i] (else default_string)."""
    x = np.asarray(x)
    classes = list(classes_strings or [])
    if _is_strings(x):
        table = {s: i for i, s in reversed(list(enumerate(classes)))}
        return map_elements(x, table, default_int64, np.int64)
    if x.dtype.kind not in "iu":
        raise TypeError(f"LabelEncoder(1) expects string or int64 input, got {x.dtype}")
    return map_elements(x, dict(enumerate(classes)), default_string, object)


_LIST_KINDS = {"strings": object, "int64s": np.int64, "floats": np.float32}


def _encoder_column(role: str, lists: dict, tensor: np.ndarray | None) -> tuple[list, object]:
    """The one keys_*/values_* attribute set, as (Python values, numpy dtype)."""
    given = {kind: v for kind, v in lists.items() if v is not None}
    if tensor is not None:
        given["tensor"] = tensor
    if len(given) != 1:
        raise ValueError(f"LabelEncoder needs exactly one {role}_* attribute, got {sorted(given) or 'none'}")
    (kind, values), = given.items()
    if kind == "tensor":
        array = np.asarray(values).ravel()
        return array.tolist(), array.dtype
    return list(values), _LIST_KINDS[kind]


def _encoder_default(dtype, default_tensor, default_int64, default_float, default_string, use_tensor: bool):
    if use_tensor and default_tensor is not None:
        return np.asarray(default_tensor).ravel()[0]
    if np.dtype(dtype).kind == "O":
        return default_string if default_string is not None else "_Unused"
    if np.dtype(dtype).kind == "f":
        return default_float if default_float is not None else -0.0
    return default_int64 if default_int64 is not None else -1


@kernel("LabelEncoder", since=(2, 4), domain=ML)
def label_encoder(
    x,
    *,
    default_float,
    default_int64,
    default_string,
    keys_floats,
    keys_int64s,
    keys_strings,
    values_floats,
    values_int64s,
    values_strings,
    default_tensor=None,
    keys_tensor=None,
    values_tensor=None,
    _opset,
):
    """Map each element through keys_* -> values_* (NaN keys match NaN), using the default_* of the
    values' type for elements not among the keys; a repeated key maps as its last occurrence from
    version 4 (as the spec says) and as its first before (the spec is silent; onnxruntime's choice)."""
    x = np.asarray(x)
    keys, key_type = _encoder_column(
        "keys", {"strings": keys_strings, "int64s": keys_int64s, "floats": keys_floats}, keys_tensor
    )
    values, value_type = _encoder_column(
        "values", {"strings": values_strings, "int64s": values_int64s, "floats": values_floats}, values_tensor
    )
    if len(keys) != len(values):
        raise ValueError(f"LabelEncoder has {len(keys)} keys but {len(values)} values")
    if (np.dtype(key_type).kind == "O") != _is_strings(x):
        raise TypeError(f"LabelEncoder keys are {np.dtype(key_type)} but the input is {x.dtype}")
    if np.dtype(key_type).kind == "f":
        keys = [float(np.asarray(k, dtype=key_type)) for k in keys]
        x = x.astype(key_type) if x.dtype.kind == "f" and x.dtype.itemsize < np.dtype(key_type).itemsize else x
    default = _encoder_default(
        value_type, default_tensor, default_int64, default_float, default_string, values_tensor is not None
    )
    pairs = list(zip(keys, values))
    table = {_key(k): v for k, v in (pairs if _opset >= 4 else reversed(pairs))}
    return map_elements(x, table, default, value_type)


# ----------------------------------------------------------------------- CategoryMapper


@kernel("CategoryMapper", since=1, domain=ML)
def category_mapper(x, *, cats_int64s, cats_strings, default_int64, default_string):
    """Strings to integers through cats_strings -> cats_int64s (else default_int64), or back."""
    x = np.asarray(x)
    strings, ints = list(cats_strings or []), list(cats_int64s or [])
    if len(strings) != len(ints):
        raise ValueError(f"CategoryMapper: {len(strings)} cats_strings but {len(ints)} cats_int64s")
    if _is_strings(x):
        return map_elements(x, dict(zip(strings, ints)), default_int64, np.int64)
    if x.dtype.kind not in "iu":
        raise TypeError(f"CategoryMapper expects string or int64 input, got {x.dtype}")
    return map_elements(x, dict(zip(ints, strings)), default_string, object)


# ----------------------------------------------------------------------- OneHotEncoder


@kernel("OneHotEncoder", since=1, domain=ML)
def one_hot_encoder(x, *, cats_int64s, cats_strings, zeros):
    """A new last axis of 0/1 floats marking each element's category (numbers are truncated to int64)."""
    x = np.asarray(x)
    if _is_strings(x):
        categories: list = list(cats_strings or [])
        items = x.astype(object)
    else:
        categories = list(cats_int64s or [])
        items = x.astype(np.int64)
    if not categories:
        raise ValueError("OneHotEncoder needs cats_strings (string input) or cats_int64s (numeric input)")
    positions = map_elements(items, {c: i for i, c in reversed(list(enumerate(categories)))}, -1, np.int64)
    if not zeros and (positions < 0).any():
        unknown = items.ravel()[(positions < 0).ravel()][0]
        raise ValueError(f"OneHotEncoder: {unknown!r} is not a category and zeros=0")
    out = (positions[..., None] == np.arange(len(categories))).astype(np.float32)
    return out


# ------------------------------------------------------------------ maps: Dict/Cast/Zip


def _scalar(value: object) -> object:
    return value.item() if isinstance(value, (np.ndarray, np.generic)) else value


def _map_dtype(values: list):
    """The element type of a map's values: their numpy type, else str -> object,
    int -> int64, float -> float32."""
    for value in values:
        if isinstance(value, (np.ndarray, np.generic)):
            return object if value.dtype.kind in "OUS" else value.dtype
    if values and all(isinstance(v, str) for v in values):
        return object
    if values and all(isinstance(v, (int, np.integer)) for v in values):
        return np.int64
    return np.float32


@kernel("DictVectorizer", since=1, domain=ML)
def dict_vectorizer(x, *, int64_vocabulary, string_vocabulary):
    """A [1, V] tensor holding each map value at its key's position in the vocabulary (0 elsewhere)."""
    if not isinstance(x, dict):
        raise TypeError(f"DictVectorizer expects a map (dict), got {type(x).__name__}")
    vocabulary = list(string_vocabulary) if string_vocabulary else list(int64_vocabulary or [])
    if not vocabulary:
        raise ValueError("DictVectorizer needs string_vocabulary or int64_vocabulary")
    position = {key: i for i, key in reversed(list(enumerate(vocabulary)))}
    dtype = _map_dtype(list(x.values()))
    out = np.full(len(vocabulary), "" if np.dtype(dtype).kind == "O" else 0, dtype=dtype)
    for key, value in x.items():
        index = position.get(_scalar(key))
        if index is not None:
            out[index] = _scalar(value)
    return out.reshape(1, -1)


def _cast_value(value: object, cast_to: str) -> object:
    if cast_to == "TO_STRING":
        return value if isinstance(value, str) else f"{float(value):f}"
    if cast_to == "TO_INT64":
        return int(value) if not isinstance(value, str) else int(float(value))
    return float(value)


_CAST_TYPES = {"TO_FLOAT": np.float32, "TO_STRING": object, "TO_INT64": np.int64}


@kernel("CastMap", since=1, domain=ML)
def cast_map(x, *, cast_to, map_form, max_map):
    """A [1, n] tensor of the map's values in ascending key order (DENSE), or placed at
    their keys in a [1, max_map] tensor (SPARSE; zeros elsewhere, '' for strings)."""
    if not isinstance(x, dict):
        raise TypeError(f"CastMap expects a map (dict), got {type(x).__name__}")
    if cast_to not in _CAST_TYPES:
        raise ValueError(f"CastMap cast_to must be one of {sorted(_CAST_TYPES)}, got {cast_to!r}")
    dtype = _CAST_TYPES[cast_to]
    items = sorted((int(_scalar(k)), _cast_value(_scalar(v), cast_to)) for k, v in x.items())
    if map_form == "DENSE":
        out = np.empty(len(items), dtype=dtype)
        out[:] = [v for _, v in items]
    elif map_form == "SPARSE":
        out = np.full(max_map, "" if dtype is object else 0, dtype=dtype)
        for key, value in items:
            if 0 <= key < max_map:
                out[key] = value
    else:
        raise ValueError(f"CastMap map_form must be DENSE or SPARSE, got {map_form!r}")
    return out.reshape(1, -1)


@kernel("ZipMap", since=1, domain=ML)
def zip_map(x, *, classlabels_int64s, classlabels_strings):
    """One {label: score} map per row of X (a 1-D X is one row)."""
    labels = class_labels(classlabels_int64s, classlabels_strings, "ZipMap").tolist()
    x = np.asarray(x)
    rows = x.reshape(1, -1) if x.ndim == 1 else x
    if rows.ndim != 2 or rows.shape[1] != len(labels):
        raise ValueError(f"ZipMap expects [N, {len(labels)}] scores (one column per label), got shape {x.shape}")
    return [dict(zip(labels, row)) for row in rows.astype(np.float64).tolist()]
