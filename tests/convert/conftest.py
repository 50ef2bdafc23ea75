"""Prints the conversion sweep's per-suite figures at the end of the run, when it ran."""

from __future__ import annotations

import collections

# (suite, outcome) -> count; outcome is "converted", "blocked" or "failed"
SWEEP_OUTCOMES: collections.Counter = collections.Counter()


def pytest_terminal_summary(terminalreporter):
    if not SWEEP_OUTCOMES:
        return
    terminalreporter.write_sep("-", "opset conversion of the conformance models")
    for suite in sorted({suite for suite, _ in SWEEP_OUTCOMES}):
        counts = {outcome: SWEEP_OUTCOMES[suite, outcome] for outcome in ("converted", "blocked", "failed")}
        terminalreporter.write_line(
            f"{suite}: {counts['converted']} converted, {counts['blocked']} blocked, "
            f"{counts['failed']} failed (model x target)"
        )
