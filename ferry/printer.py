"""Text form of models: ``ferry.printer.to_text(model)`` (also ``str(model)``)."""

from __future__ import annotations

from ferry.ir.printer import to_text

__all__ = ["to_text"]
