"""A minimal progress bar on stderr (no dependency)."""

from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress("bench", total) as bar: bar.advance()`` draws ``[#####     ] 50/100``."""

    def __init__(self, label: str, total: int, *, width: int = 30, stream=None) -> None:
        self.label = label
        self.total = max(total, 1)
        self.width = width
        self.done = 0
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self.suffix = ""

    def __enter__(self) -> Progress:
        self._draw()
        return self

    def advance(self, steps: int = 1, suffix: str = "") -> None:
        self.done = min(self.total, self.done + steps)
        self.suffix = suffix
        self._draw()

    def _draw(self) -> None:
        filled = int(self.width * self.done / self.total)
        bar = "#" * filled + " " * (self.width - filled)
        elapsed = time.perf_counter() - self.started
        text = f"\r{self.label} [{bar}] {self.done}/{self.total} {elapsed:5.1f}s {self.suffix}"
        self.stream.write(text)
        self.stream.flush()

    def __exit__(self, *exc) -> None:
        self.stream.write("\n")
        self.stream.flush()
