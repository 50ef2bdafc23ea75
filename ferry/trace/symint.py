"""Sizes read from dynamic axes: integers that remember how to compute themselves.

When a program reads ``x.shape[0]`` and axis 0 of ``x`` is dynamic, the tracer returns a
:class:`SymInt` instead of an ``int``. It carries the concrete size in the traced run and
in the probe run (the same program at other sizes of the dynamic axes), and builds, on
demand, the graph value that computes it (``Shape -> Gather``). Arithmetic on it builds
more graph; turning it into a plain Python ``int`` (``range(n)``, ``if n > 1``) is a
specialization that the tracer reports with the user's source line.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from ferry.ir import Value
    from ferry.trace.tracer import Tracer

__all__ = ["SymInt", "concrete", "probe_value"]


class SymInt(torch.SymInt):
    """A dynamic integer: ``value`` in the traced run, ``probe`` in the probe run.

    It derives from ``torch.SymInt`` so that torch's argument parser hands it to the tracer
    as is (``x.view(n, -1)``, ``torch.arange(n)``) instead of calling ``__index__`` on it.
    """

    __slots__ = ("value", "probe", "_tracer", "_make", "_var")

    def __init__(self, tracer: Tracer, value: int, probe: int, make: Callable[[], Value]) -> None:
        self.value = int(value)
        self.probe = int(probe)
        self._tracer = tracer
        self._make = make
        self._var: Value | None = None

    @property
    def var(self) -> Value:
        """The int64 scalar graph value computing this integer."""
        if self._var is None:
            self._var = self._make()
        return self._var

    # -- arithmetic builds graph ----------------------------------------------------------
    def _binary(self, other: object, python_op: Callable, onnx_op: str, reverse: bool = False):
        if isinstance(other, bool) or not isinstance(other, (int, SymInt)):
            return NotImplemented
        a, b = (other, self) if reverse else (self, other)
        value = python_op(concrete(a), concrete(b))
        probe = python_op(probe_value(a), probe_value(b))
        tracer = self._tracer

        def make() -> Value:
            return tracer.builder.op(onnx_op, tracer.int_var(a), tracer.int_var(b))

        return SymInt(tracer, value, probe, make)

    def __add__(self, other):
        return self._binary(other, operator.add, "Add")

    def __radd__(self, other):
        return self._binary(other, operator.add, "Add", reverse=True)

    def __sub__(self, other):
        return self._binary(other, operator.sub, "Sub")

    def __rsub__(self, other):
        return self._binary(other, operator.sub, "Sub", reverse=True)

    def __mul__(self, other):
        return self._binary(other, operator.mul, "Mul")

    def __rmul__(self, other):
        return self._binary(other, operator.mul, "Mul", reverse=True)

    def __floordiv__(self, other):
        return self._binary(other, operator.floordiv, "Div")  # sizes are >= 0: trunc == floor

    def __rfloordiv__(self, other):
        return self._binary(other, operator.floordiv, "Div", reverse=True)

    def __mod__(self, other):
        return self._binary(other, operator.mod, "Mod")

    def __neg__(self):
        return self._binary(0, operator.sub, "Sub", reverse=True)

    def __pos__(self):
        return self

    def __rmod__(self, other):
        return self._binary(other, operator.mod, "Mod", reverse=True)

    def __abs__(self):
        tracer = self._tracer
        return SymInt(tracer, abs(self.value), abs(self.probe), lambda: tracer.builder.op("Abs", self.var))

    def __floor__(self):
        return self

    __ceil__ = __trunc__ = __floor__

    def __round__(self, ndigits=None):
        return self

    def __sym_max__(self, other):
        return self._binary(other, max, "Max")

    def __sym_min__(self, other):
        return self._binary(other, min, "Min")

    def __sym_float__(self):
        return self.__float__()

    def __rpow__(self, other):
        return concrete(other) ** self._specialize("an exponent")

    @property
    def node(self):
        """torch.SymInt's symbolic node: ferry's sizes have none."""
        from ferry.errors import UnsupportedOperatorError

        raise UnsupportedOperatorError(
            f"a dynamic size ({self!r}) reached torch code the tracer cannot follow; "
            "convert it with int() (a specialization) or file a bug"
        )

    # -- leaving the graph: specializations ------------------------------------------------
    def _specialize(self, what: str) -> int:
        self._tracer.specialize("dynamic-size", f"a dynamic size was used as {what}")
        return self.value

    def __index__(self) -> int:
        return self._specialize("a Python int (e.g. in range() or indexing)")

    def __int__(self) -> int:
        return self._specialize("a Python int")

    def __float__(self) -> float:
        return float(self._specialize("a Python float"))

    def __truediv__(self, other):
        return self._specialize("a float (true division)") / concrete(other)

    def __rtruediv__(self, other):
        return concrete(other) / self._specialize("a float (true division)")

    def __pow__(self, other):
        return self._specialize("a number (power)") ** concrete(other)

    def __bool__(self) -> bool:
        return bool(self._specialize("a condition"))

    def _compare(self, other: object, op: Callable) -> bool:
        if not isinstance(other, (int, float, SymInt)):
            return NotImplemented
        if (isinstance(other, SymInt) and op in (operator.eq, operator.ne)
                and self.value == other.value and self.probe == other.probe):
            return op(0, 0)  # equal at both sizes: the same axis (a shape check), no specialization
        return op(self._specialize("a comparison operand"), concrete(other))

    def __eq__(self, other):
        return self._compare(other, operator.eq)

    def __ne__(self, other):
        return self._compare(other, operator.ne)

    def __lt__(self, other):
        return self._compare(other, operator.lt)

    def __le__(self, other):
        return self._compare(other, operator.le)

    def __gt__(self, other):
        return self._compare(other, operator.gt)

    def __ge__(self, other):
        return self._compare(other, operator.ge)

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"SymInt({self.value}, probe={self.probe})"


def concrete(value: object) -> object:
    """The traced run's value of an int or SymInt (other objects unchanged)."""
    return value.value if isinstance(value, SymInt) else value


def probe_value(value: object) -> object:
    """The probe run's value of an int or SymInt (other objects unchanged)."""
    return value.probe if isinstance(value, SymInt) else value
