"""``check_model``: run every check over a model and report all findings at once."""

from __future__ import annotations

import os

from ferry.checker.context import Context
from ferry.checker.diagnostics import MODEL, Diagnostic, Location, Reporter
from ferry.checker.functions import check_functions
from ferry.checker.graphs import check_graph
from ferry.checker.imports import check_ir_version, model_imports
from ferry.errors import CheckError
from ferry.ir import Model

__all__ = ["check_model"]


def check_model(
    model: Model | str | os.PathLike | bytes | bytearray | memoryview, *, full: bool = False
) -> list[Diagnostic]:
    """Check that ``model`` is a valid ONNX model; raise :class:`CheckError` if not.

    ``model`` is a :class:`~ferry.ir.Model`, or a path or bytes that are loaded first
    (a file that does not decode raises :class:`~ferry.errors.FormatError`).

    Every check runs, and all findings are collected: if any is an error, one
    ``CheckError`` is raised whose message lists each diagnostic on its own line and
    whose ``diagnostics`` holds them all (errors first). Otherwise the warnings and
    informational notes are returned, for the caller to show.

    The rules follow what ``onnx.checker.check_model`` enforces, so that a model onnx
    accepts is accepted here too; the few places where ferry is stricter are an opset
    newer than ferry knows, ``ref_attr_name`` outside a function body, and function
    outputs that nothing defines.

    ``full=True`` also runs shape and type inference (:mod:`ferry.shapes`, on a copy)
    when the structural checks pass, and reports its findings: conflicting shapes or
    types are errors, operators without a shape rule are notes.
    """
    if not isinstance(model, Model):
        from ferry.format import load

        model = load(model)
    report = Reporter()
    _run(model, report)
    if full:
        _infer(model, report)
    diagnostics = report.sorted()
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise CheckError(_summary(diagnostics, len(errors)), diagnostics)
    return diagnostics


def _run(model: Model, report: Reporter) -> None:
    ir_version = check_ir_version(model, report)
    opsets = model_imports(model, ir_version, report)
    ctx = Context(model, report, ir_version, model_opsets=opsets, opsets=opsets)
    check_graph(model.graph, ctx, Location(graph=model.graph.name or ""), None, "main")
    check_functions(ctx)
    ctx.flush()


def _infer(model: Model, report: Reporter) -> None:
    if report.errors:
        report.info("full-check", "shape inference did not run: the structural checks found "
                    "errors", MODEL)
        return
    from ferry.shapes.infer import infer

    report.diagnostics.extend(infer(model).diagnostics)


def _summary(diagnostics: list[Diagnostic], errors: int) -> str:
    others = len(diagnostics) - errors
    head = f"the model is not valid: {errors} error{'s' if errors != 1 else ''}"
    if others:
        head += f" (and {others} warning{'s' if others != 1 else ''} or note{'s' if others != 1 else ''})"
    return head + "\n" + "\n".join(f"  {d}" for d in diagnostics)
