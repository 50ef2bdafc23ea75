"""Prints what the optimizer did to the conformance models, when the sweep ran."""

from __future__ import annotations

import collections

SWEEP_TOTALS: collections.Counter = collections.Counter()


def pytest_terminal_summary(terminalreporter):
    if not SWEEP_TOTALS:
        return
    totals = dict(SWEEP_TOTALS)
    terminalreporter.write_sep("-", "optimizer on the conformance models")
    terminalreporter.write_line(
        f"{totals.pop('models')} models ({totals.pop('models changed', 0)} changed): "
        f"{totals.pop('nodes before')} nodes before, {totals.pop('nodes after')} after"
    )
    for name, count in sorted(totals.items()):
        terminalreporter.write_line(f"  {name}: {count} rewrites")
