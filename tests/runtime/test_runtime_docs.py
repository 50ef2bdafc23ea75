from __future__ import annotations

import importlib.util
import pathlib

TOOL = pathlib.Path(__file__).resolve().parents[2] / "tools" / "gen_runtime_docs.py"


def test_operator_table_matches_registry():
    spec = importlib.util.spec_from_file_location("gen_runtime_docs", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    page = tool.PAGE.read_text()
    assert tool.render(page) == page, "docs/runtime.md is stale: run python tools/gen_runtime_docs.py"
