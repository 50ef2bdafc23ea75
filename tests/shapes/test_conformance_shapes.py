"""Shape inference on every conformance model the runtime passes.

Each model is inferred with its graph outputs' declared types and its value_info
removed. Every graph output's inferred type must match the expected output data: same
element type, same rank, and every dim equal once the graph inputs' symbolic dims are
bound to the input data's sizes (a fresh ``unk__N`` matches any size, consistently).
Where onnx's own shape inference (the oracle) gives a concrete output dim, ours must
give the same. Cases known not to pass are listed in EXPECTED_FAILURES with a reason.
"""

from __future__ import annotations

import pathlib

import onnx
import pytest

import ferry
from ferry.ir import DataType, OptionalType, SequenceType, TensorType
from ferry.shapes import infer
from ferry.shapes.expr import Expr, from_dim
from tests.conformance_data import SUITES, Case, cases, data_files

RUNTIME_SKIPS = pathlib.Path(__file__).parents[1] / "runtime" / "conformance_skips.txt"

EXPECTED_FAILURES: dict[str, str] = {}


def _runtime_skips() -> dict[str, str]:
    skips = {}
    for line in RUNTIME_SKIPS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            case_id, reason = line.split(maxsplit=1)
            skips[case_id] = reason
    return skips


def test_expected_failures_name_real_cases():
    known = {case.id for suite in SUITES for case in cases(suite)}
    assert not [case_id for case_id in EXPECTED_FAILURES if case_id not in known]


def _params():
    skips = _runtime_skips()
    params = []
    for suite in SUITES:
        for case in cases(suite):
            marks = []
            if case.id in skips:
                marks.append(pytest.mark.skip(reason=f"the runtime skips it: {skips[case.id]}"))
            elif case.id in EXPECTED_FAILURES:
                marks.append(pytest.mark.xfail(reason=EXPECTED_FAILURES[case.id], strict=False))
            params.append(pytest.param(case, id=case.id, marks=marks))
    return params


# -- expected data --------------------------------------------------------------------------------
def _read(path: pathlib.Path, message):
    message.ParseFromString(path.read_bytes())
    return message


def _tensor_fact(proto: onnx.TensorProto) -> tuple[DataType, tuple[int, ...]]:
    return DataType(proto.data_type), tuple(proto.dims)


def _expected(path: pathlib.Path, declared) -> object:
    """(dtype, dims) for a tensor, ("seq", [...]) for a sequence, ("opt", x|None)."""
    if isinstance(declared, SequenceType):
        sequence = _read(path, onnx.SequenceProto())
        return ("seq", [_tensor_fact(t) for t in sequence.tensor_values])
    if isinstance(declared, OptionalType):
        optional = _read(path, onnx.OptionalProto())
        if optional.HasField("tensor_value"):
            return ("opt", _tensor_fact(optional.tensor_value))
        if optional.HasField("sequence_value"):
            return ("opt", ("seq", [_tensor_fact(t) for t in optional.sequence_value.tensor_values]))
        return ("opt", None)
    return _tensor_fact(_read(path, onnx.TensorProto()))


def _inputs_and_outputs(case: Case, model: ferry.Model):
    graph = model.graph
    inputs = [v for v in graph.inputs if v.name not in graph.initializers]
    declared_out = [v.type for v in graph.outputs]
    if case.suite == "light":
        dims = [tuple(d if isinstance(d, int) else 1 for d in (v.shape or ())) for v in inputs]
        expected_path = case.model_path.with_name(case.model_path.stem + "_output_0.pb")
        return list(zip(inputs, dims)), [_expected(expected_path, declared_out[0])]
    data_set = case.data_sets[0]
    given = []
    for value, path in zip(inputs, data_files(data_set, "input")):
        if isinstance(value.type, TensorType):
            given.append((value, _tensor_fact(_read(path, onnx.TensorProto()))[1]))
    expected = [_expected(p, t) for p, t in zip(data_files(data_set, "output"), declared_out)]
    return given, expected


def _bindings(given) -> dict[str, int]:
    bindings: dict[str, int] = {}
    for value, dims in given:
        shape = value.shape
        if shape is None or len(shape) != len(dims):
            continue
        for declared, actual in zip(shape, dims):
            if isinstance(declared, str):
                bindings.setdefault(declared, actual)
    return bindings


# -- comparison ---------------------------------------------------------------------------------
class _Matcher:
    """Compares inferred dims with actual sizes; fresh unknown names bind on first use."""

    def __init__(self, bindings: dict[str, int]) -> None:
        self.bindings = dict(bindings)

    def dims(self, inferred, actual: tuple[int, ...], label: str, consistent: bool = True) -> None:
        assert inferred is not None, f"{label}: rank unknown, expected shape {list(actual)}"
        assert len(inferred) == len(actual), f"{label}: inferred {list(inferred)}, expected {list(actual)}"
        for index, (dim, size) in enumerate(zip(inferred, actual)):
            self.dim(from_dim(dim), size, f"{label} dim {index} (inferred {list(inferred)}, expected {list(actual)})", consistent)

    def dim(self, dim: Expr | None, size: int, label: str, consistent: bool) -> None:
        if dim is None:
            return
        value = dim.substitute(self.bindings)
        if value.is_const:
            assert value.value == size, f"{label}: {dim} gives {value.value}, expected {size}"
            return
        if value.is_symbol and consistent:
            self.bindings[str(value)] = size

    def value(self, inferred, expected, label: str, consistent: bool = True) -> None:
        if isinstance(expected[0], DataType):
            self.tensor(inferred, expected, label, consistent)
            return
        if expected[0] == "seq":
            assert isinstance(inferred, SequenceType), f"{label}: inferred {inferred}, expected a sequence"
            for k, element in enumerate(expected[1]):
                self.value(inferred.elem_type, element, f"{label} element {k}", consistent=False)
            return
        if expected[0] == "opt":
            assert isinstance(inferred, OptionalType), f"{label}: inferred {inferred}, expected an optional"
            if expected[1] is not None:
                self.value(inferred.elem_type, expected[1], f"{label} element")

    def tensor(self, inferred, expected, label: str, consistent: bool = True) -> None:
        dtype, dims = expected
        if inferred is None and not consistent:
            return  # unknown element type of a sequence
        assert isinstance(inferred, TensorType), f"{label}: inferred {inferred}, expected a tensor"
        assert inferred.dtype == dtype, f"{label}: inferred element type {inferred.dtype}, expected {dtype.name}"
        if inferred.shape is None and not consistent:
            return  # sequence elements may differ in shape
        self.dims(inferred.shape, dims, label, consistent)


def _strip(model: ferry.Model) -> None:
    """Forget what the model declares beyond its inputs: output types and value_info."""
    graph = model.graph
    boundary = {id(v) for v in graph.inputs} | {id(v) for v in graph.initializers.values()}
    for value in graph.values():
        if id(value) not in boundary:
            value.type = None
    for value in graph.outputs:
        value.type = None
    graph.value_info_order = []


def _oracle_dims(case: Case) -> list[list[int | None] | None]:
    proto = onnx.load(str(case.model_path), load_external_data=False)
    del proto.graph.value_info[:]
    for output in proto.graph.output:
        output.ClearField("type")
    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # the oracle failing says nothing about ferry
        return [None] * len(proto.graph.output)
    dims: list[list[int | None] | None] = []
    for output in inferred.graph.output:
        tensor = output.type.tensor_type
        if output.type.WhichOneof("value") != "tensor_type" or not tensor.HasField("shape"):
            dims.append(None)
            continue
        dims.append([d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim])
    return dims


@pytest.mark.parametrize("case", _params())
def test_shapes(case: Case) -> None:
    model = ferry.load(case.model_path)
    given, expected = _inputs_and_outputs(case, model)
    _strip(model)
    result = infer(model, copy=False)
    errors = [str(d) for d in result.diagnostics if d.severity == "error"]
    assert not errors, "shape inference reported errors:\n" + "\n".join(errors)
    matcher = _Matcher(_bindings(given))
    outputs = model.graph.outputs
    for index, (value, want) in enumerate(zip(outputs, expected)):
        matcher.value(value.type, want, f"output {index} {value.name!r}")
    for index, (value, oracle) in enumerate(zip(outputs, _oracle_dims(case))):
        shape = value.shape
        if oracle is None or shape is None or len(shape) != len(oracle):
            continue
        for k, (ours, theirs) in enumerate(zip(shape, oracle)):
            if theirs is None:
                continue
            mine = from_dim(ours)
            bound = mine.substitute(matcher.bindings) if mine is not None else None
            assert bound is not None and bound.is_const and bound.value == theirs, (
                f"output {index} {value.name!r} dim {k}: onnx infers {theirs}, ferry {ours}")
