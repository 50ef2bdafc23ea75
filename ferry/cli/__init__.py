"""The ``ferry`` command."""

from __future__ import annotations

from ferry.cli.main import main

__all__ = ["main"]
