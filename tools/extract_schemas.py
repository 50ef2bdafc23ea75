"""Regenerate ferry's operator-schema table from the installed ``onnx`` package.

Dev-time only (needs ``onnx``):

    python tools/extract_schemas.py [OUTPUT]

It walks every version of every operator schema in the domains ferry knows and writes
``ferry/opset/schemas.json.gz``: compact JSON, gzip with a zero timestamp and no file
name, keys and schemas sorted, so re-running it on the same onnx gives the same bytes.
Only facts are taken (names, versions, types, flags, defaults); no documentation text.
"""

from __future__ import annotations

import gzip
import io
import json
import pathlib
import sys
from typing import Any

import numpy as np
import onnx
import onnx.defs
from onnx import AttributeProto, helper, numpy_helper

OUT_PATH = pathlib.Path(__file__).resolve().parents[1] / "ferry" / "opset" / "schemas.json.gz"
FORMAT_VERSION = 1
DOMAINS = ("", "ai.onnx.ml", "ai.onnx.preview.training", "ai.onnx.preview")

# onnx's ``to_array`` yields ml_dtypes arrays for the exotic codes: the table stores
# sub-byte integers as their values and minifloats as bit patterns.
_INTEGER_STORAGE = {21: np.uint8, 22: np.int8, 25: np.uint8, 26: np.int8}  # [U]INT4, [U]INT2
_EXOTIC_STORAGE = {
    16: np.uint16,  # BFLOAT16
    17: np.uint8,  # FLOAT8E4M3FN
    18: np.uint8,  # FLOAT8E4M3FNUZ
    19: np.uint8,  # FLOAT8E5M2
    20: np.uint8,  # FLOAT8E5M2FNUZ
    23: np.uint8,  # FLOAT4E2M1
    24: np.uint8,  # FLOAT8E8M0
    27: np.uint8,  # FLOAT6E2M3
    28: np.uint8,  # FLOAT6E3M2
}
_COMPLEX = {14: np.float32, 15: np.float64}


def _tensor_default(tensor: onnx.TensorProto) -> dict[str, Any]:
    """A TENSOR default as ``{"dtype", "dims", "values"}`` (values flat, row-major).

    Minifloats store bit patterns, 4- and 2-bit integers their values, complex types
    interleaved (re, im) pairs, strings decoded text.
    """
    array = numpy_helper.to_array(tensor)
    code = tensor.data_type
    if code in _INTEGER_STORAGE:  # values (signed ones sign-extended)
        values = array.astype(_INTEGER_STORAGE[code]).ravel().tolist()
    elif code in _EXOTIC_STORAGE:
        values = array.view(_EXOTIC_STORAGE[code]).ravel().tolist()
    elif code in _COMPLEX:
        values = np.ascontiguousarray(array).view(_COMPLEX[code]).ravel().tolist()
    elif code == onnx.TensorProto.STRING:
        values = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in array.ravel()]
    else:
        values = array.ravel().tolist()
    return {"dtype": int(code), "dims": [int(d) for d in tensor.dims], "values": values}


def _json_value(value: Any) -> Any:
    """An attribute default value (from ``helper.get_attribute_value``) as JSON."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, onnx.TensorProto):
        return _tensor_default(value)
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store a default of type {type(value).__name__} in the table")


def _attribute(attr: onnx.defs.OpSchema.Attribute) -> dict[str, Any]:
    default = None
    if attr.default_value.type != AttributeProto.UNDEFINED:
        default = _json_value(helper.get_attribute_value(attr.default_value))
    return {
        "name": attr.name,
        "type": AttributeProto.AttributeType.Name(int(attr.type.value)),
        "required": bool(attr.required),
        "default": default,
    }


def _parameter(param: onnx.defs.OpSchema.FormalParameter) -> dict[str, Any]:
    return {
        "name": param.name,
        "type_str": param.type_str,
        "option": param.option.name.lower(),
        "is_homogeneous": bool(param.is_homogeneous),
        "min_arity": int(param.min_arity),
    }


def _schema(schema: onnx.defs.OpSchema) -> dict[str, Any]:
    attributes = sorted(schema.attributes.values(), key=lambda a: a.name)
    return {
        "domain": schema.domain,
        "name": schema.name,
        "since_version": int(schema.since_version),
        "deprecated": bool(schema.deprecated),
        "inputs": [_parameter(p) for p in schema.inputs],
        "outputs": [_parameter(p) for p in schema.outputs],
        "attributes": [_attribute(a) for a in attributes],
        "type_constraints": [
            {"name": c.type_param_str, "allowed": list(c.allowed_type_strs)}
            for c in schema.type_constraints
        ],
        "min_input": int(schema.min_input),
        "max_input": int(schema.max_input),
        "min_output": int(schema.min_output),
        "max_output": int(schema.max_output),
        "has_function": bool(schema.has_function or schema.has_context_dependent_function),
    }


def _domain_version_map() -> dict[str, tuple[int, int]]:
    getter = getattr(onnx.defs, "get_domain_to_version_range", None)
    if getter is None:  # onnx 1.23 exposes the map only on the C extension
        getter = onnx.defs.C.schema_version_map
    return {domain: (int(lo), int(hi)) for domain, (lo, hi) in getter().items()}


def _latest_opsets(schemas: list[dict[str, Any]]) -> dict[str, int]:
    ranges = _domain_version_map()
    latest = {}
    for domain in DOMAINS:
        newest = max(s["since_version"] for s in schemas if s["domain"] == domain)
        declared = onnx.defs.onnx_opset_version() if domain == "" else ranges[domain][1]
        latest[domain] = max(declared, newest)
    return latest


def build_table() -> dict[str, Any]:
    """The whole table as a JSON-ready dict."""
    schemas = [_schema(s) for s in onnx.defs.get_all_schemas_with_history() if s.domain in DOMAINS]
    schemas.sort(key=lambda s: (s["domain"], s["name"], s["since_version"]))
    return {
        "format": FORMAT_VERSION,
        "onnx_version": onnx.__version__,
        "latest_opsets": _latest_opsets(schemas),
        "schemas": schemas,
    }


def encode_table(table: dict[str, Any]) -> bytes:
    """Deterministic gzip of compact JSON (no timestamp, no file name in the header)."""
    text = json.dumps(table, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as gz:
        gz.write(text.encode("ascii"))
    return buffer.getvalue()


def write_table(path: str | pathlib.Path = OUT_PATH) -> int:
    """Extract the table into ``path``; returns the number of schemas written."""
    table = build_table()
    pathlib.Path(path).write_bytes(encode_table(table))
    return len(table["schemas"])


def main(argv: list[str]) -> int:
    path = pathlib.Path(argv[1]) if len(argv) > 1 else OUT_PATH
    count = write_table(path)
    print(f"wrote {count} schemas (onnx {onnx.__version__}) to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
