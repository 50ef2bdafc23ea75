"""Checks of opset imports (a model's or a function's) and of the IR version."""

from __future__ import annotations

from ferry.checker.context import (
    MAX_IR_VERSION,
    STRICT_DOMAINS,
    canonical_domain,
    is_known_domain,
    latest,
    show_domain,
)
from ferry.checker.diagnostics import MODEL, Location, Reporter
from ferry.ir import Model

__all__ = ["check_import_versions", "check_ir_version", "model_imports", "normalize_imports"]


def check_ir_version(model: Model, report: Reporter) -> int:
    """Report an unset or unknown IR version; return it (0 when unusable)."""
    version = model.ir_version
    if not isinstance(version, int) or isinstance(version, bool) or version <= 0:
        report.error(
            "ir-version",
            f"ir_version is {version!r}; expected 1 to {MAX_IR_VERSION} (0 means it is unset)",
            MODEL,
        )
        return 0
    if version > MAX_IR_VERSION:
        report.error(
            "ir-version",
            f"ir_version {version} is newer than ferry knows (newest: {MAX_IR_VERSION})",
            MODEL,
        )
    return version


def model_imports(model: Model, ir_version: int, report: Reporter) -> dict[str, int]:
    """The model's opsets in force, after reporting what is wrong with its imports.

    Models before IR version 3 have no opset_import and implicitly use ai.onnx opset 1.
    """
    imports = model.opset_imports
    if 1 <= ir_version < 3:
        if imports:
            report.error(
                "opset-import",
                f"ir_version {ir_version} predates opset_import, yet the model imports "
                f"{_show_imports(imports)}; expected no opset_import (ai.onnx opset 1 is implied)",
                MODEL,
            )
        return {"": 1}
    if not imports:
        report.error(
            "opset-import",
            f"the model imports no opset; ir_version {ir_version or 'unset'} (3 or newer) "
            "requires opset_import with at least the ai.onnx version",
            MODEL,
        )
        return {}
    opsets = normalize_imports(imports, report, MODEL)
    check_import_versions(opsets, report, MODEL, "the model")
    return opsets


def normalize_imports(imports: dict[str, int], report: Reporter, where: Location) -> dict[str, int]:
    """Imports keyed by canonical domain ("ai.onnx" is the default domain "")."""
    opsets: dict[str, int] = {}
    for domain, version in imports.items():
        key = canonical_domain(domain)
        if key in opsets and opsets[key] != version:
            report.warning(
                "opset-import",
                f"the default domain is imported twice, as '' (opset {imports.get('')}) and "
                f"as 'ai.onnx' (opset {imports.get('ai.onnx')}); using opset {imports.get('')}",
                where,
            )
        if domain == "" or key not in opsets:
            opsets[key] = version
    return opsets


def check_import_versions(
    opsets: dict[str, int], report: Reporter, where: Location, importer: str
) -> None:
    """Versions of known domains must lie between 1 and the newest ferry knows.

    For ai.onnx and ai.onnx.ml that is an error; for the preview domains a warning
    (ONNX treats them like custom domains). Custom domains may use any version.
    """
    for domain, version in opsets.items():
        if not is_known_domain(domain):
            continue
        newest = latest(domain)
        if 1 <= version <= newest:
            continue
        if version < 1:
            problem = f"opset {version}; expected 1 to {newest}"
        else:
            problem = f"opset {version}, newer than ferry knows (newest: {newest})"
        message = f"{importer} imports {show_domain(domain)} {problem}"
        if domain in STRICT_DOMAINS:
            report.error("opset-import", message, where)
        else:
            report.warning("opset-import", message, where)


def _show_imports(imports: dict[str, int]) -> str:
    return ", ".join(f"{show_domain(d)} {v}" for d, v in imports.items())
