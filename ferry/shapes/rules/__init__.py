"""Shape rules, one module per operator family; importing this package registers them all.

A module that does not exist (yet) is skipped; any other import error propagates.
"""

from __future__ import annotations

import importlib

__all__ = ["RULE_MODULES"]

RULE_MODULES = (
    # core
    "elementwise",
    "shape_ops",
    "slicing",
    "shape_spatial",
    "creation",
    "cast",
    # neural-network families
    "nn",
    "linalg",
    "reduce",
    "rnn",
    "attention",
    "resize",
    "quantize",
    "activations",
    # everything else
    "control_flow",
    "sequence",
    "optional",
    "indexing",
    "detection",
    "strings",
    "random",
    "signal",
    "image",
    "sorting",
    "training",
    "misc",
)


def _load() -> None:
    for name in RULE_MODULES:
        qualified = f"{__name__}.{name}"
        try:
            importlib.import_module(qualified)
        except ModuleNotFoundError as error:
            if error.name != qualified:
                raise


_load()
