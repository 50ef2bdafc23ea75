from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"onnx\.backend\.test\.case\..*")


def pytest_terminal_summary(terminalreporter):
    """Print ``N passed, M failed, K skipped`` per conformance suite (optimized and not)."""
    tally: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            if "test_conformance.py::test_conformance" not in nodeid or "[" not in nodeid:
                continue
            if outcome == "passed" and report.when != "call":
                continue
            variant = "unoptimized" if "_unoptimized[" in nodeid else "optimized"
            suite = f"{nodeid.split('[', 1)[1].split('/', 1)[0]} ({variant})"
            tally.setdefault(suite, {"passed": 0, "failed": 0, "skipped": 0})[outcome] += 1
    if tally:
        terminalreporter.write_sep("-", "conformance by suite")
        for suite, counts in sorted(tally.items()):
            terminalreporter.write_line(
                f"{suite}: {counts['passed']} passed, {counts['failed']} failed, "
                f"{counts['skipped']} skipped"
            )
