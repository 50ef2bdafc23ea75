"""Loading of the shipped schema table and version-aware lookup.

The table (``schemas.json.gz``, made by ``tools/extract_schemas.py``) is read once, on
first use.
"""

from __future__ import annotations

import bisect
import functools
import gzip
import json
from dataclasses import dataclass
from importlib import resources

from ferry.errors import SchemaNotFoundError
from ferry.opset.schema import OpSchema, schema_from_json

__all__ = [
    "all_schemas",
    "get_schema",
    "has_schema",
    "known_domains",
    "latest_opset",
    "onnx_version",
    "schema_versions",
]

TABLE_FILE = "schemas.json.gz"
_DOMAIN_ALIASES = {"ai.onnx": ""}


@dataclass(frozen=True)
class _Table:
    onnx_version: str
    latest: dict[str, int]  # domain -> newest opset version
    schemas: tuple[OpSchema, ...]  # sorted by (domain, name, since_version)
    versions: dict[tuple[str, str], list[int]]  # (domain, name) -> sorted since_versions
    by_key: dict[tuple[str, str, int], OpSchema]


@functools.cache
def _table() -> _Table:
    raw = resources.files("ferry.opset").joinpath(TABLE_FILE).read_bytes()
    data = json.loads(gzip.decompress(raw))
    schemas = tuple(schema_from_json(s) for s in data["schemas"])
    versions: dict[tuple[str, str], list[int]] = {}
    for s in schemas:
        versions.setdefault((s.domain, s.name), []).append(s.since_version)
    for found in versions.values():
        found.sort()
    return _Table(
        onnx_version=data["onnx_version"],
        latest={d: int(v) for d, v in data["latest_opsets"].items()},
        schemas=schemas,
        versions=versions,
        by_key={(s.domain, s.name, s.since_version): s for s in schemas},
    )


def _show(domain: str) -> str:
    return domain or "ai.onnx"


def _domain(domain: str, context: str = "") -> str:
    """The canonical domain name; raises for a domain the table does not know."""
    canonical = _DOMAIN_ALIASES.get(domain, domain)
    if canonical not in _table().latest:
        known = ", ".join(repr(_show(d)) for d in known_domains())
        raise SchemaNotFoundError(
            f"{context}unknown operator domain {domain!r} (known domains: {known})"
        )
    return canonical


def onnx_version() -> str:
    """The version of the ONNX standard (onnx package) the table was taken from."""
    return _table().onnx_version


def known_domains() -> tuple[str, ...]:
    """The domains in the table (``""`` is ai.onnx), sorted."""
    return tuple(sorted(_table().latest))


def latest_opset(domain: str = "") -> int:
    """The newest opset version of ``domain`` in the table (28 for ai.onnx in onnx 1.23)."""
    return _table().latest[_domain(domain)]


def schema_versions(op_type: str, domain: str = "") -> list[int]:
    """The ``since_version`` of every version of ``op_type``, ascending.

    ``[]`` for an operator the domain lacks; SchemaNotFoundError for an unknown domain.
    """
    return list(_table().versions.get((_domain(domain), op_type), ()))


def _version_in_force(op_type: str, domain: str, opset: int | None) -> int | None:
    versions = _table().versions.get((domain, op_type))
    if not versions:
        return None
    if opset is None:
        return versions[-1]
    index = bisect.bisect_right(versions, opset)
    return versions[index - 1] if index else None


def _where(op_type: str, domain: str, opset: int | None) -> str:
    at = f" at opset {opset}" if opset is not None else ""
    return f"no schema for operator {op_type!r} in domain {_show(domain)!r}{at}"


def _not_found(op_type: str, domain: str, opset: int | None) -> SchemaNotFoundError:
    where = _where(op_type, domain, opset)
    versions = _table().versions.get((domain, op_type))
    if not versions:
        return SchemaNotFoundError(f"{where}: no such operator in domain {_show(domain)!r}")
    listed = ", ".join(str(v) for v in versions)
    return SchemaNotFoundError(
        f"{where}: the operator first appears at opset {versions[0]} (versions: {listed})"
    )


def get_schema(op_type: str, domain: str = "", opset: int | None = None) -> OpSchema:
    """The schema of ``op_type`` in force at ``opset`` (``None``: the latest).

    That is the version with the highest ``since_version`` <= ``opset``. A deprecated
    version is still returned (``deprecated=True``). Raises SchemaNotFoundError.
    """
    canonical = _domain(domain, _where(op_type, domain, opset) + ": ")
    since = _version_in_force(op_type, canonical, opset)
    if since is None:
        raise _not_found(op_type, canonical, opset)
    return _table().by_key[(canonical, op_type, since)]


def has_schema(op_type: str, domain: str = "", opset: int | None = None) -> bool:
    """Whether ``get_schema`` would find a schema (False for unknown domains too)."""
    canonical = _DOMAIN_ALIASES.get(domain, domain)
    if canonical not in _table().latest:
        return False
    return _version_in_force(op_type, canonical, opset) is not None


def all_schemas() -> list[OpSchema]:
    """Every version of every operator, sorted by (domain, name, since_version)."""
    return list(_table().schemas)
