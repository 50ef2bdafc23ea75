"""Checks of one node against its operator: the domain is imported, the operator
exists at the imported opset (or is a model-local function), input and output counts,
and attributes (names, types, required ones, references to function attributes).

Dataflow (where inputs come from, where outputs go) is :mod:`ferry.checker.graphs`.
"""

from __future__ import annotations

import difflib
import functools

from ferry.checker.context import (
    STRICT_DOMAINS,
    Context,
    canonical_domain,
    function_label,
    is_known_domain,
    show_domain,
)
from ferry.checker.diagnostics import Location
from ferry.checker.values import attribute_payload_problems, attribute_value_problem
from ferry.errors import SchemaNotFoundError
from ferry.ir import Attribute, Function, Node
from ferry.opset import UNBOUNDED, FormalParameter, OpSchema, get_schema, schema_versions
from ferry.opset import has_schema as _has_schema

__all__ = ["check_attributes", "check_operator"]


def check_operator(node: Node, ctx: Context, where: Location) -> None:
    """Resolve the node's operator and check the node against it."""
    if not node.op_type:
        ctx.report.error("unknown-op", "the node has no op_type; expected an operator name", where)
        return
    domain = canonical_domain(node.domain)
    version = ctx.opsets.get(domain)
    if version is None:
        ctx.note_unimported(node.domain, node.op_type, where)
        return
    if ctx.function is not None:
        _check_function_opset(node, domain, version, ctx, where)
    function = ctx.model.function_for(node)
    has_schema = _has_schema(node.op_type, domain, version)
    if domain in STRICT_DOMAINS or (is_known_domain(domain) and has_schema):
        _check_standard(node, domain, version, ctx, where)
    elif function is not None:
        _check_call(node, function, ctx, where)
    elif is_known_domain(domain):
        ctx.report.warning(
            "unknown-op",
            f"{_no_such_op(node.op_type, domain, version, ctx)}; ONNX does not reject "
            "unknown operators of preview domains, so this is not an error",
            where,
        )
    else:
        ctx.note_custom(node.domain, node.op_type, where)


def _check_standard(node: Node, domain: str, version: int, ctx: Context, where: Location) -> None:
    try:
        schema = get_schema(node.op_type, domain, version)
    except SchemaNotFoundError:
        ctx.report.error("unknown-op", _no_such_op(node.op_type, domain, version, ctx), where)
        return
    if schema.deprecated:
        ctx.report.error(
            "deprecated-op",
            f"{node.op_type} is deprecated at {show_domain(domain)} opset {version} "
            f"(deprecated since opset {schema.since_version}); expected an operator that "
            "is not deprecated at the imported opset",
            where,
        )
        return
    _check_arity(node, schema, version, ctx, where)
    _check_schema_attributes(node, schema, version, ctx, where)


def _no_such_op(op_type: str, domain: str, version: int, ctx: Context) -> str:
    versions = schema_versions(op_type, domain)
    shown = show_domain(domain)
    if not versions:
        message = f"operator {op_type!r} does not exist in domain {shown!r}"
        close = difflib.get_close_matches(op_type, _op_names(domain), n=1)
        return message + (f" (did you mean {close[0]!r}?)" if close else "")
    if version < versions[0]:
        return (
            f"operator {op_type!r} first appears at {shown} opset {versions[0]}, but "
            f"{ctx.importer} imports opset {version}"
        )
    return f"operator {op_type!r} has no schema at {shown} opset {version}"


@functools.cache
def _op_names(domain: str) -> list[str]:
    from ferry.opset import all_schemas

    return sorted({s.name for s in all_schemas() if s.domain == domain})


def _check_function_opset(
    node: Node, domain: str, version: int, ctx: Context, where: Location
) -> None:
    """Inside a function, an operator must mean the same as at the model's import."""
    model_version = ctx.model_opsets.get(domain)
    if model_version is None or model_version == version or not is_known_domain(domain):
        return
    at_function = _since(node.op_type, domain, version)
    at_model = _since(node.op_type, domain, model_version)
    if at_function is None and at_model is None or at_function == at_model:
        return
    ctx.report.error(
        "opset-import",
        f"{ctx.importer} imports {show_domain(domain)} opset {version} but the model imports "
        f"opset {model_version}, and {node.op_type} differs between them "
        f"({_show_since(node.op_type, at_function)} vs {_show_since(node.op_type, at_model)}); "
        "expected the same operator version at both imports",
        where,
    )


def _since(op_type: str, domain: str, version: int) -> int | None:
    try:
        return get_schema(op_type, domain, version).since_version
    except SchemaNotFoundError:
        return None


def _show_since(op_type: str, since: int | None) -> str:
    return "absent" if since is None else f"{op_type}-{since}"


# -- inputs and outputs ------------------------------------------------------------------
def _check_arity(node: Node, schema: OpSchema, version: int, ctx: Context, where: Location) -> None:
    for kind, values, formals, low, high in (
        ("input", node.inputs, schema.inputs, schema.min_input, schema.max_input),
        ("output", node.outputs, schema.outputs, schema.min_output, schema.max_output),
    ):
        if not low <= len(values) <= high:
            ctx.report.error(
                f"{kind}-count",
                f"{schema.name} (opset {version}) takes {_range(low, high)} "
                f"{_plural(kind, low, high)}, found {len(values)}",
                where,
            )
        for position, value in enumerate(values):
            formal = _formal_at(formals, position)
            if value is None and formal is not None and formal.option == "single":
                ctx.report.error(
                    f"missing-{kind}",
                    f"{kind} {position} ({formal.name!r}) of {schema.name} is required, but "
                    "the node leaves it empty",
                    where,
                )


def _range(low: int, high: int) -> str:
    if high >= UNBOUNDED:
        return f"at least {low}"
    if low == high:
        return f"exactly {low}"
    return f"{low} to {high}"


def _plural(kind: str, low: int, high: int) -> str:
    return kind if low == 1 and (high == 1 or high >= UNBOUNDED) else f"{kind}s"


def _formal_at(formals: tuple[FormalParameter, ...], position: int) -> FormalParameter | None:
    if position < len(formals):
        return formals[position]
    if formals and formals[-1].option == "variadic":
        return formals[-1]
    return None


# -- attributes --------------------------------------------------------------------------
def _check_schema_attributes(
    node: Node, schema: OpSchema, version: int, ctx: Context, where: Location
) -> None:
    for name, attr in node.attributes.items():
        spec = schema.attributes.get(name)
        if spec is None:
            known = ", ".join(sorted(schema.attributes)) or "none"
            ctx.report.error(
                "unknown-attribute",
                f"attribute {name!r} is not an attribute of {schema.name} at opset {version} "
                f"(known attributes: {known})",
                where,
            )
        elif _has_content(attr) and attr.type.name != spec.type:
            ctx.report.error(
                "attribute-type",
                f"attribute {name!r} has type {attr.type.name}, expected {spec.type}",
                where,
            )
    for spec in schema.attributes.values():
        if spec.required and spec.name not in node.attributes:
            ctx.report.error(
                "missing-attribute",
                f"required attribute {spec.name!r} ({spec.type}) of {schema.name} is missing",
                where,
            )


def _has_content(attr: Attribute) -> bool:
    """A value or a reference: an attribute without either is reported once, elsewhere."""
    return attr.value is not None or attr.ref_attr_name is not None


def check_attributes(node: Node, ctx: Context, where: Location) -> None:
    """Checks every attribute needs, whatever the operator: a name, a value of its
    declared type (or a reference, inside a function only), valid tensors."""
    for key, attr in node.attributes.items():
        if not attr.name:
            ctx.report.error(
                "attribute-name", "an attribute has no name; expected a non-empty name", where
            )
        elif attr.name != key:
            ctx.report.error(
                "attribute-name",
                f"attribute {attr.name!r} is filed under {key!r}; expected a non-empty name "
                "matching its key",
                where,
            )
        if attr.ref_attr_name is not None:
            _check_reference(attr, ctx, where)
            continue
        problem = attribute_value_problem(attr)
        if problem is not None:
            ctx.report.error("attribute-value", f"attribute {attr.name!r} {problem}", where)
            continue
        for problem in attribute_payload_problems(attr):
            ctx.report.error("attribute-value", f"attribute {attr.name!r}: {problem}", where)


def _check_reference(attr: Attribute, ctx: Context, where: Location) -> None:
    if ctx.function is None:
        ctx.report.error(
            "attribute-ref",
            f"attribute {attr.name!r} refers to a function attribute ({attr.ref_attr_name!r}) "
            "outside any function body; expected a value (ref_attr_name is only meaningful "
            "inside a model-local function)",
            where,
        )
        return
    declared = {*ctx.function.attribute_names, *ctx.function.attribute_defaults}
    if attr.ref_attr_name not in declared:
        ctx.report.warning(
            "attribute-ref",
            f"attribute {attr.name!r} refers to {attr.ref_attr_name!r}, which function "
            f"{function_label(ctx.function)!r} does not declare (declared: "
            f"{', '.join(sorted(declared)) or 'none'})",
            where,
        )


def _check_call(node: Node, function: Function, ctx: Context, where: Location) -> None:
    """A call of a model-local function. ONNX does not check calls, so these are warnings."""
    label = function_label(function)
    for kind, found, declared in (
        ("input", len(node.inputs), len(function.graph.inputs)),
        ("output", len(node.outputs), len(function.graph.outputs)),
    ):
        if found > declared:
            ctx.report.warning(
                "function-call",
                f"the call passes {found} {kind}s, but function {label!r} declares {declared}",
                where,
            )
    declared_attrs = {*function.attribute_names, *function.attribute_defaults}
    for name in node.attributes:
        if name not in declared_attrs:
            ctx.report.warning(
                "function-call",
                f"attribute {name!r} is not an attribute of function {label!r} (declared: "
                f"{', '.join(sorted(declared_attrs)) or 'none'})",
                where,
            )
