from __future__ import annotations


def pytest_terminal_summary(terminalreporter):
    """Print ``N passed, M failed, K skipped`` per suite of the shape conformance test."""
    tally: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "skipped", "xfailed", "xpassed"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            if "test_conformance_shapes.py::test_shapes[" not in nodeid:
                continue
            if outcome in ("passed", "xpassed") and report.when != "call":
                continue
            suite = nodeid.split("[", 1)[1].split("/", 1)[0]
            counts = tally.setdefault(suite, dict.fromkeys(("passed", "failed", "skipped", "xfailed", "xpassed"), 0))
            counts[outcome] += 1
    if tally:
        terminalreporter.write_sep("-", "shape inference conformance by suite")
        for suite, counts in sorted(tally.items()):
            terminalreporter.write_line(
                f"{suite}: {counts['passed']} passed, {counts['failed']} failed, "
                f"{counts['skipped']} skipped ({counts['xfailed']} expected failures, "
                f"{counts['xpassed']} of them now passing)"
            )
