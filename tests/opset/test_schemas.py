"""The shipped schema table against onnx.defs (the oracle), and lookup semantics."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import numpy as np
import onnx
import onnx.defs
import pytest
from onnx import AttributeProto, TensorProto, helper, numpy_helper

import ferry.opset as opset
from ferry.errors import FerryError, SchemaNotFoundError
from ferry.opset import table as opset_table
from ferry.opset.schema import _tensor_from_json
from tests.oracle import to_ferry_array

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOMAINS = ("", "ai.onnx.ml", "ai.onnx.preview.training", "ai.onnx.preview")
ONNX_SCHEMAS = sorted(
    (s for s in onnx.defs.get_all_schemas_with_history() if s.domain in DOMAINS),
    key=lambda s: (s.domain, s.name, s.since_version),
)


def _load_tool():
    path = ROOT / "tools" / "extract_schemas.py"
    spec = importlib.util.spec_from_file_location("_ferry_extract_schemas", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _schema_id(schema: onnx.defs.OpSchema) -> str:
    return f"{schema.domain or 'ai.onnx'}/{schema.name}-{schema.since_version}"


def _oracle_default(attr: onnx.defs.OpSchema.Attribute) -> object:
    """onnx's default value in ferry's representation (None when absent)."""
    if attr.default_value.type == AttributeProto.UNDEFINED:
        return None
    value = helper.get_attribute_value(attr.default_value)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, TensorProto):
        return to_ferry_array(numpy_helper.to_array(value))
    if isinstance(value, list):
        return tuple(v.decode("utf-8") if isinstance(v, bytes) else v for v in value)
    return value


def _assert_default_equal(ours: object, expected: object) -> None:
    if isinstance(expected, np.ndarray):
        assert isinstance(ours, np.ndarray)
        assert ours.dtype == expected.dtype and ours.shape == expected.shape
        assert ours.tobytes() == expected.tobytes()
    else:
        assert type(ours) is type(expected)
        assert ours == expected


def _assert_params_equal(ours, theirs) -> None:
    assert [p.name for p in ours] == [p.name for p in theirs]
    for mine, other in zip(ours, theirs, strict=True):
        assert mine.type_str == other.type_str, mine.name
        assert mine.option == other.option.name.lower(), mine.name
        assert mine.is_homogeneous == other.is_homogeneous, mine.name
        assert mine.min_arity == other.min_arity, mine.name


# -- the table against the oracle -------------------------------------------------------


def test_every_schema_is_shipped() -> None:
    ours = [(s.domain, s.name, s.since_version) for s in opset.all_schemas()]
    theirs = [(s.domain, s.name, s.since_version) for s in ONNX_SCHEMAS]
    assert ours == theirs
    assert len(ours) == len(set(ours))


@pytest.mark.parametrize("expected", ONNX_SCHEMAS, ids=_schema_id)
def test_schema_matches_onnx(expected: onnx.defs.OpSchema) -> None:
    schema = opset.get_schema(expected.name, expected.domain, expected.since_version)
    assert (schema.domain, schema.name) == (expected.domain, expected.name)
    assert schema.since_version == expected.since_version
    assert schema.deprecated == expected.deprecated
    _assert_params_equal(schema.inputs, expected.inputs)
    _assert_params_equal(schema.outputs, expected.outputs)
    assert (schema.min_input, schema.max_input) == (expected.min_input, expected.max_input)
    assert (schema.min_output, schema.max_output) == (expected.min_output, expected.max_output)
    assert schema.has_function == (expected.has_function or expected.has_context_dependent_function)
    assert sorted(schema.attributes) == sorted(expected.attributes)
    for name, attr in expected.attributes.items():
        mine = schema.attributes[name]
        assert mine.name == name
        assert mine.type == AttributeProto.AttributeType.Name(attr.type.value)
        assert mine.required == attr.required
        _assert_default_equal(mine.default, _oracle_default(attr))
    theirs = {c.type_param_str: tuple(c.allowed_type_strs) for c in expected.type_constraints}
    assert list(schema.type_constraints) == list(theirs)
    for name, allowed in theirs.items():
        assert schema.type_constraints[name].name == name
        assert schema.type_constraints[name].allowed == allowed


def test_latest_opsets_match_onnx() -> None:
    assert opset.latest_opset() == onnx.defs.onnx_opset_version() == 28
    assert opset.latest_opset("ai.onnx") == 28
    assert opset.latest_opset("ai.onnx.ml") == onnx.defs.onnx_ml_opset_version()
    ranges = onnx.defs.C.schema_version_map()
    for domain in ("ai.onnx.preview.training", "ai.onnx.preview"):
        assert opset.latest_opset(domain) == ranges[domain][1]
    assert set(opset.known_domains()) == set(DOMAINS)
    table_version = opset.ONNX_VERSION
    assert table_version == onnx.__version__


def test_lookup_agrees_with_onnx_at_every_opset() -> None:
    for domain, name in sorted({(s.domain, s.name) for s in ONNX_SCHEMAS}):
        for version in range(1, opset.latest_opset(domain) + 1):
            try:
                expected = onnx.defs.get_schema(name, version, domain).since_version
            except onnx.defs.SchemaError:
                expected = None
            found = opset.has_schema(name, domain, version)
            assert found == (expected is not None), (domain, name, version)
            if found:
                assert opset.get_schema(name, domain, version).since_version == expected
            else:
                with pytest.raises(SchemaNotFoundError):
                    opset.get_schema(name, domain, version)


def test_regeneration_is_byte_identical(tmp_path: pathlib.Path) -> None:
    tool = _load_tool()
    out = tmp_path / "regenerated.json.gz"
    count = tool.write_table(out)
    assert count == len(ONNX_SCHEMAS)
    shipped = ROOT / "ferry" / "opset" / opset_table.TABLE_FILE
    assert out.read_bytes() == shipped.read_bytes()


_TENSOR_CASES = [
    (TensorProto.FLOAT, [2, 2], [0.5, -1.0, 3.25, 0.0]),
    (TensorProto.INT64, [3], [1, -2, 2**40]),
    (TensorProto.BOOL, [2], [True, False]),
    (TensorProto.DOUBLE, [], [2.5]),
    (TensorProto.FLOAT16, [2], [0.5, -2.0]),
    (TensorProto.UINT8, [0], []),
    (TensorProto.COMPLEX64, [2], [1 + 2j, -3.5 + 0.25j]),
    (TensorProto.COMPLEX128, [1], [1e-300 + 2j]),
    (TensorProto.STRING, [2], [b"abc", "d\u00e9".encode()]),
    (TensorProto.BFLOAT16, [2], [0.5, -3.0]),
    (TensorProto.FLOAT8E4M3FN, [2], [0.5, -3.0]),
    (TensorProto.FLOAT8E5M2FNUZ, [1], [2.0]),
    (TensorProto.FLOAT8E8M0, [1], [4.0]),
    (TensorProto.FLOAT4E2M1, [2], [0.5, -3.0]),
    (TensorProto.FLOAT6E3M2, [2], [0.5, -3.0]),
    (TensorProto.INT4, [3], [-8, 7, -1]),
    (TensorProto.UINT4, [2], [15, 3]),
    (TensorProto.INT2, [2], [-2, 1]),
    (TensorProto.UINT2, [2], [3, 0]),
]


@pytest.mark.parametrize(
    ("code", "dims", "values"),
    _TENSOR_CASES,
    ids=[TensorProto.DataType.Name(c[0]) for c in _TENSOR_CASES],
)
def test_tensor_default_round_trip(code: int, dims: list[int], values: list) -> None:
    """onnx 1.23 has no TENSOR defaults; check the encoding on synthetic tensors."""
    tool = _load_tool()
    tensor = helper.make_tensor("default", code, dims, values)
    encoded = tool._json_value(helper.get_attribute_value(helper.make_attribute("a", tensor)))
    ours = _tensor_from_json(encoded)
    expected = to_ferry_array(numpy_helper.to_array(tensor))
    assert not ours.flags.writeable
    if code == TensorProto.STRING:
        assert ours.shape == expected.shape
        assert ours.tolist() == [
            v.decode("utf-8") if isinstance(v, bytes) else v for v in expected.tolist()
        ]
    else:
        _assert_default_equal(ours, expected)


# -- lookup semantics --------------------------------------------------------------------


def test_version_in_force() -> None:
    assert opset.get_schema("Add", opset=12).since_version == 7
    assert opset.get_schema("Add", opset=7).since_version == 7
    assert opset.get_schema("Add", opset=6).since_version == 6
    assert opset.get_schema("Add").since_version == opset.schema_versions("Add")[-1] == 14
    assert opset.get_schema("Add", opset=99).since_version == 14
    assert opset.schema_versions("Add") == [1, 6, 7, 13, 14]
    assert opset.schema_versions("NoSuchOp") == []


def test_split_13_has_split_input() -> None:
    split = opset.get_schema("Split", opset=13)
    assert split.since_version == 13
    assert [p.name for p in split.inputs] == ["input", "split"]
    assert split.inputs[1].option == "optional"
    assert "split" not in split.attributes
    assert "split" in opset.get_schema("Split", opset=12).attributes


def test_schema_fields() -> None:
    concat = opset.get_schema("Concat", opset=13)
    assert concat.inputs[0].option == "variadic"
    assert concat.max_input == opset.UNBOUNDED == 2147483647
    axis = concat.attributes["axis"]
    assert (axis.type, axis.required, axis.default) == ("INT", True, None)
    leaky = opset.get_schema("LeakyRelu", opset=16).attributes["alpha"]
    assert leaky.type == "FLOAT" and leaky.default == pytest.approx(0.01)
    rnn = opset.get_schema("RNN", opset=22).attributes["activations"]
    assert rnn.default == ("Tanh", "Tanh")
    assert opset.get_schema("Cast", opset=21).attributes["saturate"].default == 1
    assert "tensor(float)" in opset.get_schema("Relu").type_constraints["T"].allowed
    assert opset.get_schema("Gelu").has_function
    assert not opset.get_schema("Conv").has_function
    with pytest.raises(TypeError):
        concat.attributes["x"] = axis  # type: ignore[index]


def test_deprecated_schema_is_returned() -> None:
    scatter = opset.get_schema("Scatter", opset=13)
    assert scatter.since_version == 11
    assert scatter.deprecated
    assert not opset.get_schema("Scatter", opset=10).deprecated


def test_ai_onnx_alias() -> None:
    assert opset.get_schema("Relu", "ai.onnx", 14) is opset.get_schema("Relu", "", 14)
    assert opset.has_schema("Relu", "ai.onnx")
    assert opset.schema_versions("Relu", "ai.onnx") == opset.schema_versions("Relu")
    assert opset.latest_opset("ai.onnx") == opset.latest_opset("")


def test_other_domains() -> None:
    assert opset.get_schema("LinearClassifier", "ai.onnx.ml").domain == "ai.onnx.ml"
    assert opset.get_schema("Adam", "ai.onnx.preview.training", 1).since_version == 1
    assert not opset.has_schema("Relu", "ai.onnx.ml")


def test_unknown_op_error() -> None:
    with pytest.raises(SchemaNotFoundError) as info:
        opset.get_schema("NoSuchOp", opset=13)
    message = str(info.value)
    assert "'NoSuchOp'" in message and "ai.onnx" in message and "13" in message
    assert "no such operator in domain 'ai.onnx'" in message
    assert isinstance(info.value, KeyError) and isinstance(info.value, FerryError)
    assert not opset.has_schema("NoSuchOp")


def test_too_old_opset_error() -> None:
    with pytest.raises(SchemaNotFoundError) as info:
        opset.get_schema("Gelu", opset=19)
    message = str(info.value)
    assert "'Gelu'" in message and "opset 19" in message and "ai.onnx" in message
    assert "20" in message
    assert not opset.has_schema("Gelu", opset=19)
    assert opset.has_schema("Gelu", opset=20)


def test_unknown_domain_error() -> None:
    with pytest.raises(SchemaNotFoundError) as info:
        opset.get_schema("Add", "com.example", 3)
    message = str(info.value)
    assert "'Add'" in message and "'com.example'" in message and "opset 3" in message
    assert "ai.onnx.ml" in message  # lists the known domains
    with pytest.raises(SchemaNotFoundError, match="com.example"):
        opset.latest_opset("com.example")
    assert not opset.has_schema("Add", "com.example")


def test_all_schemas_is_a_fresh_list() -> None:
    first = opset.all_schemas()
    first.clear()
    assert len(opset.all_schemas()) == len(ONNX_SCHEMAS)
