"""The registry of shape rules: ``@shape_rule(op_type, since)`` and version-aware lookup.

A rule is ``def rule(ctx: InferenceContext) -> None``; it is in force from each of its
``since`` versions up to the next registered version of the same operator, like an
ONNX schema.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ferry.shapes.context import InferenceContext

__all__ = ["Rule", "duplicate_rules", "lookup_rule", "registered_rules", "shape_rule"]

Rule = Callable[["InferenceContext"], None]

# (domain, op_type) -> sorted [(since, rule)]
_RULES: dict[tuple[str, str], list[tuple[int, Rule]]] = {}
# registrations refused because another rule already had the (op, version)
_DUPLICATES: list[str] = []


def _canonical(domain: str) -> str:
    return "" if domain == "ai.onnx" else domain


def shape_rule(
    op_type: str, since: int | tuple[int, ...] = 1, *, domain: str = ""
) -> Callable[[Rule], Rule]:
    """Register the decorated function as the rule of ``op_type`` from opset ``since``
    (one or several versions). Registering the same (op, version) twice keeps the first
    rule and is listed by :func:`duplicate_rules` (tests require none)."""
    versions = (since,) if isinstance(since, int) else tuple(since)

    def register(rule: Rule) -> Rule:
        entries = _RULES.setdefault((_canonical(domain), op_type), [])
        for version in versions:
            other = next((r for since, r in entries if since == version), None)
            if other is not None and other is not rule:
                _DUPLICATES.append(
                    f"{domain or 'ai.onnx'}::{op_type} since {version}: "
                    f"{other.__module__}.{other.__name__} and {rule.__module__}.{rule.__name__}"
                )
                continue
            if other is None:
                bisect.insort(entries, (version, rule), key=lambda entry: entry[0])
        return rule

    return register


def lookup_rule(domain: str, op_type: str, opset: int | None) -> Rule | None:
    """The rule in force at ``opset`` (highest ``since`` <= opset), or None.

    ``opset=None`` means the newest rule."""
    _load_rules()
    entries = _RULES.get((_canonical(domain), op_type))
    if not entries:
        return None
    if opset is None:
        return entries[-1][1]
    position = bisect.bisect_right([since for since, _ in entries], opset)
    return entries[position - 1][1] if position else None


def registered_rules() -> dict[tuple[str, str], list[int]]:
    """(domain, op_type) -> the versions registered for it, ascending."""
    _load_rules()
    return {key: [since for since, _ in entries] for key, entries in sorted(_RULES.items())}


def duplicate_rules() -> list[str]:
    """Registrations ignored because the (op, version) already had a rule."""
    _load_rules()
    return list(_DUPLICATES)


def _load_rules() -> None:
    import ferry.shapes.rules  # noqa: F401  (registers every rule module on import)
