"""Optional kernels: an empty optional is ``None``, a non-empty one is its tensor or sequence."""

from __future__ import annotations

import numpy as np

from ferry.runtime.registry import kernel


@kernel("Optional", since=(15, 28))
def optional(value=None, *, type):
    """An optional holding ``value``, or an empty optional (of ``type``) when it is omitted."""
    if value is None and type is None:
        raise ValueError("Optional without an input needs the 'type' attribute")
    return value


@kernel("OptionalGetElement", since=(15, 18, 28))
def optional_get_element(value):
    """The element of a non-empty optional; a plain tensor or sequence is returned as is."""
    if value is None:
        raise ValueError("OptionalGetElement got an empty optional: it has no element")
    return value


@kernel("OptionalHasElement", since=(15, 18, 28))
def optional_has_element(value=None):
    """True (bool scalar) unless the input is omitted or an empty optional."""
    return np.array(value is not None)
