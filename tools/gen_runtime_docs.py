"""Regenerate the operator table of docs/runtime.md from the kernel registry.

    python tools/gen_runtime_docs.py

The table sits between the BEGIN/END markers; the rest of the page is written by hand.
tests/runtime/test_runtime_docs.py fails when the page and the registry disagree.
"""

from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ferry.opset import all_schemas  # noqa: E402
from ferry.runtime.registry import registered_ops  # noqa: E402

PAGE = ROOT / "docs" / "runtime.md"
BEGIN = "<!-- BEGIN OPERATOR TABLE (tools/gen_runtime_docs.py) -->"
END = "<!-- END OPERATOR TABLE -->"


def operator_table() -> str:
    """A markdown table: every operator of the standard, its schema versions, ferry's kernels."""
    versions: dict[tuple[str, str], list[int]] = {}
    for schema in all_schemas():
        versions.setdefault((schema.domain, schema.name), []).append(schema.since_version)
    kernels = registered_ops()
    lines = ["| domain | operator | schema versions | kernel since | status |", "|---|---|---|---|---|"]
    for (domain, name), since in sorted(versions.items()):
        have = kernels.get((domain, name), [])
        covered = bool(have) and min(have) <= min(since)
        status = "yes" if covered else ("partial" if have else "**missing**")
        lines.append(
            f"| {domain or 'ai.onnx'} | {name} | {', '.join(map(str, sorted(since)))} | "
            f"{', '.join(map(str, have)) or '-'} | {status} |"
        )
    return "\n".join(lines)


def render(page: str) -> str:
    head, rest = page.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{operator_table()}\n{END}{tail}"


def main() -> int:
    PAGE.write_text(render(PAGE.read_text()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
