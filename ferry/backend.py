"""onnx's ``Backend`` interface over ferry's runtime, so onnx's own ``BackendTest`` runner
can run ferry (``onnx.backend.test.BackendTest(ferry.backend, __name__)``).

ferry does not import onnx: models and nodes arrive as onnx protobuf messages and are
read through their serialized bytes. Arrays of types numpy lacks travel in onnx's
runner as ``ml_dtypes`` arrays; they are converted to ferry's representation on the way
in and back (when ``ml_dtypes`` is installed, as it is wherever onnx is) on the way out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ferry.format import ferry_onnx_pb2 as pb
from ferry.format.io import model_from_bytes
from ferry.ir import DataType, from_numpy_dtype
from ferry.opset import latest_opset
from ferry.runtime import InferenceSession

__all__ = [
    "BackendRep",
    "is_compatible",
    "prepare",
    "run_model",
    "run_node",
    "supports_device",
    "to_ferry",
]

# ml_dtypes' names for the types ferry stores as structured dtypes.
_ML_DTYPE_NAMES = {
    "bfloat16": DataType.BFLOAT16,
    "float8_e4m3fn": DataType.FLOAT8E4M3FN,
    "float8_e4m3fnuz": DataType.FLOAT8E4M3FNUZ,
    "float8_e5m2": DataType.FLOAT8E5M2,
    "float8_e5m2fnuz": DataType.FLOAT8E5M2FNUZ,
    "float8_e8m0fnu": DataType.FLOAT8E8M0,
    "int4": DataType.INT4,
    "uint4": DataType.UINT4,
    "float4_e2m1fn": DataType.FLOAT4E2M1,
    "int2": DataType.INT2,
    "uint2": DataType.UINT2,
    "float6_e2m3fn": DataType.FLOAT6E2M3,
    "float6_e3m2fn": DataType.FLOAT6E3M2,
}
_SIGNED = {DataType.INT4, DataType.INT2}


def to_ferry(value: Any) -> Any:
    """A value from onnx's runner (ml_dtypes arrays, numpy scalars) in ferry's representation."""
    if isinstance(value, list):
        return [to_ferry(v) for v in value]
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if not isinstance(value, np.ndarray):
        return value
    code = _ML_DTYPE_NAMES.get(value.dtype.name)
    if code is None:
        return value
    if code in _SIGNED:
        return value.astype(np.int8).view(code.numpy)
    storage = code.numpy.fields[code.numpy.names[0]][0]
    return value.view(storage).view(code.numpy)


def _to_caller(value: Any) -> Any:
    if isinstance(value, list):
        return [_to_caller(v) for v in value]
    if not isinstance(value, np.ndarray) or not value.dtype.names:
        return value
    try:
        import ml_dtypes
    except ImportError:
        return value
    code = from_numpy_dtype(value.dtype)
    name = next(n for n, c in _ML_DTYPE_NAMES.items() if c == code)
    target = np.dtype(getattr(ml_dtypes, name))
    if code in _SIGNED:
        return value.view(np.int8).astype(target)
    storage = code.numpy.fields[code.numpy.names[0]][0]
    return value.view(storage).view(target)


class BackendRep:
    """A prepared model: ``run(inputs)`` takes a list (positional) or a dict of inputs."""

    def __init__(self, session: InferenceSession) -> None:
        self.session = session

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        names = [i.name for i in self.session.get_inputs()]
        if isinstance(inputs, dict):
            feeds = {k: to_ferry(v) for k, v in inputs.items()}
        else:
            if not isinstance(inputs, (list, tuple)):
                inputs = [inputs]
            feeds = {name: to_ferry(v) for name, v in zip(names, inputs)}
        return tuple(_to_caller(v) for v in self.session.run(None, feeds))


def _serialize(message: Any) -> bytes:
    return message if isinstance(message, (bytes, bytearray)) else message.SerializeToString()


def is_compatible(model: Any, device: str = "CPU", **kwargs: Any) -> bool:
    return supports_device(device)


def prepare(model: Any, device: str = "CPU", **kwargs: Any) -> BackendRep:
    """Check and compile ``model`` (an onnx ModelProto, or its bytes)."""
    return BackendRep(InferenceSession(model_from_bytes(_serialize(model))))


def run_model(model: Any, inputs: Any, device: str = "CPU", **kwargs: Any) -> tuple[Any, ...]:
    return prepare(model, device, **kwargs).run(inputs)


def run_node(
    node: Any,
    inputs: Any,
    device: str = "CPU",
    outputs_info: Sequence[tuple[np.dtype, tuple[int, ...]]] | None = None,
    **kwargs: Any,
) -> tuple[Any, ...]:
    """Run one node (an onnx NodeProto) on ``inputs`` (listed in the node's input order)."""
    node_proto = pb.NodeProto.FromString(_serialize(node))
    model = pb.ModelProto(ir_version=10)
    domain = node_proto.domain if node_proto.domain != "ai.onnx" else ""
    version = kwargs.get("opset_version") or latest_opset(domain or "")
    model.opset_import.add(domain=domain, version=version)
    graph = model.graph
    graph.name = "run_node"
    graph.node.add().CopyFrom(node_proto)
    present = [name for name in node_proto.input if name]
    values = [to_ferry(v) for v in (inputs.values() if isinstance(inputs, dict) else inputs)]
    for name, value in zip(present, values):
        info = graph.input.add(name=name)
        if isinstance(value, np.ndarray):
            info.type.tensor_type.elem_type = int(from_numpy_dtype(value.dtype))
    for name in node_proto.output:
        if name:
            graph.output.add(name=name)
    session = InferenceSession(model_from_bytes(model.SerializeToString()), check=False)
    results = session.run(None, dict(zip(present, values)))
    return tuple(_to_caller(v) for v in results)


def supports_device(device: str) -> bool:
    """ferry runs on the CPU only."""
    return str(device).upper().startswith("CPU")
