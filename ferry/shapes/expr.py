"""Symbolic dimension expressions: ``batch``, ``seq*2``, ``(H-3)//2+1``.

An :class:`Expr` is kept in a canonical form so that equal expressions compare equal:
a sum of monomials, each an integer coefficient times a sorted product of *atoms*.
An atom is a symbol (a dim name) or an operation that is not a polynomial: floor
division ``a//b``, remainder ``a%b``, ``max(a,b)`` and ``min(a,b)``. Arithmetic folds
constants, collects like terms (``2*s+s == 3*s``), expands products of sums and
simplifies floor division by a divisor of every non-constant coefficient
(``(4*n+2)//2 == 2*n+1``). Dims are assumed to be non-negative integers.

``str()`` prints a compact, space-free text that :meth:`Expr.parse` reads back (common
factors and products of sums recovered from the canonical terms, see
:mod:`ferry.shapes.expr_print`); a
dim name that is not an identifier (``"batch size"``) is one opaque symbol, printed
bare when alone and in braces (``{batch size}*2``) inside a larger expression.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["Expr", "from_dim", "max", "min", "to_dim"]

_builtin_max = max
_builtin_min = min
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class _Op:
    """A non-polynomial atom: ``kind`` is one of ``//``, ``%``, ``max``, ``min``."""

    kind: str
    args: tuple[Expr, Expr]

    def text(self) -> str:
        """The display text (arguments printed compactly)."""
        left, right = self.args
        if self.kind in ("max", "min"):
            return f"{self.kind}({left},{right})"
        return f"{left._operand()}{self.kind}{right._operand()}"

    @functools.cached_property
    def key(self) -> str:
        """The canonical text (arguments expanded), used to order atoms; it depends only
        on the canonical form, never on how expressions are displayed."""
        left, right = self.args
        if self.kind in ("max", "min"):
            return f"{self.kind}({left.canonical_text()},{right.canonical_text()})"
        return f"({left.canonical_text()}){self.kind}({right.canonical_text()})"


_Atom = str | _Op
_Monomial = tuple[_Atom, ...]


def _atom_key(atom: _Atom) -> tuple[int, str]:
    return (0, atom) if isinstance(atom, str) else (1, atom.key)


def _monomial_key(monomial: _Monomial) -> tuple:
    return (len(monomial) == 0, tuple(_atom_key(a) for a in monomial))


class Expr:
    """An immutable integer expression over named dims (see the module docstring)."""

    __slots__ = ("_terms", "_hash", "_text", "_canonical")

    def __init__(self, terms: Mapping[_Monomial, int]) -> None:
        kept = {m: c for m, c in terms.items() if c != 0}
        self._terms: tuple[tuple[_Monomial, int], ...] = tuple(
            sorted(kept.items(), key=lambda item: _monomial_key(item[0]))
        )
        self._hash = hash(self.value) if self.is_const else hash(self._terms)
        self._text: str | None = None
        self._canonical: str | None = None

    # -- construction -------------------------------------------------------------------
    @staticmethod
    def sym(name: str) -> Expr:
        """The symbol ``name`` (any dim_param text; it is not parsed)."""
        return Expr({(name,): 1})

    @staticmethod
    def const(value: int) -> Expr:
        return Expr({(): int(value)})

    @staticmethod
    def parse(text: str) -> Expr:
        """Read what ``str()`` prints, or a plain dim name; text that is not a valid
        expression is one opaque symbol."""
        try:
            return _Parser(text).parse()
        except ValueError:
            return Expr.sym(text)

    @staticmethod
    def _of(value: Expr | int) -> Expr:
        if isinstance(value, Expr):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return Expr.const(value)
        if isinstance(value, np.integer):
            return Expr.const(int(value))
        raise TypeError(f"cannot use {value!r} ({type(value).__name__}) in a dim expression")

    # -- inspection ---------------------------------------------------------------------
    @property
    def is_const(self) -> bool:
        return all(not monomial for monomial, _ in self._terms)

    @property
    def value(self) -> int:
        """The integer value of a constant expression (ValueError otherwise)."""
        if not self.is_const:
            raise ValueError(f"dim expression {self} is not a constant")
        return self._terms[0][1] if self._terms else 0

    @property
    def is_symbol(self) -> bool:
        """True for a bare symbol such as ``batch``."""
        return (
            len(self._terms) == 1
            and self._terms[0][1] == 1
            and len(self._terms[0][0]) == 1
            and isinstance(self._terms[0][0][0], str)
        )

    def symbols(self) -> frozenset[str]:
        """Every symbol name the expression mentions."""
        found: set[str] = set()
        for monomial, _ in self._terms:
            for atom in monomial:
                if isinstance(atom, str):
                    found.add(atom)
                else:
                    found.update(atom.args[0].symbols() | atom.args[1].symbols())
        return frozenset(found)

    def substitute(self, bindings: Mapping[str, int | Expr]) -> Expr:
        """Replace bound symbols by their values and simplify."""
        total = Expr.const(0)
        for monomial, coefficient in self._terms:
            product = Expr.const(coefficient)
            for atom in monomial:
                product = product * _substitute_atom(atom, bindings)
            total = total + product
        return total

    def _constant_part(self) -> int:
        return dict(self._terms).get((), 0)

    # -- arithmetic ---------------------------------------------------------------------
    def __add__(self, other: Expr | int) -> Expr:
        terms = dict(self._terms)
        for monomial, coefficient in Expr._of(other)._terms:
            terms[monomial] = terms.get(monomial, 0) + coefficient
        return Expr(terms)

    __radd__ = __add__

    def __neg__(self) -> Expr:
        return Expr({m: -c for m, c in self._terms})

    def __sub__(self, other: Expr | int) -> Expr:
        return self + (-Expr._of(other))

    def __rsub__(self, other: Expr | int) -> Expr:
        return Expr._of(other) + (-self)

    def __mul__(self, other: Expr | int) -> Expr:
        terms: dict[_Monomial, int] = {}
        for left, left_coefficient in self._terms:
            for right, right_coefficient in Expr._of(other)._terms:
                monomial = tuple(sorted(left + right, key=_atom_key))
                terms[monomial] = terms.get(monomial, 0) + left_coefficient * right_coefficient
        return Expr(terms)

    __rmul__ = __mul__

    def __floordiv__(self, other: Expr | int) -> Expr:
        return _floordiv(self, Expr._of(other))

    def __rfloordiv__(self, other: Expr | int) -> Expr:
        return _floordiv(Expr._of(other), self)

    def __mod__(self, other: Expr | int) -> Expr:
        return _mod(self, Expr._of(other))

    def __rmod__(self, other: Expr | int) -> Expr:
        return _mod(Expr._of(other), self)

    # -- comparison -------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if isinstance(other, Expr):
            return self._terms == other._terms
        if isinstance(other, int) and not isinstance(other, bool):
            return self.is_const and self.value == other
        return NotImplemented

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"Expr({str(self)!r})"

    # -- printing ---------------------------------------------------------------------
    def __str__(self) -> str:
        """Compact text: common factors pulled out and products of sums kept as products
        (``(a-1)*(b-1)``, not ``a*b-a-b+1``); a function of the canonical form, so equal
        expressions print the same, and :meth:`parse` reads it back."""
        if self._text is None:
            from ferry.shapes.expr_print import format_expr

            self._text = format_expr(self)
        return self._text

    def canonical_text(self) -> str:
        """The expanded sum of monomials in canonical order (a stable sort key)."""
        if self._canonical is None:
            self._canonical = _sum_text(self._terms, lambda atom: atom.key) if self._terms else "0"
        return self._canonical

    def _operand(self) -> str:
        """The text as an operand of ``//``/``%``: parenthesised unless a single atom or a
        non-negative constant."""
        if self.is_const and self.value >= 0:
            return str(self.value)
        if len(self._terms) == 1 and self._terms[0][1] == 1 and len(self._terms[0][0]) == 1:
            atom = self._terms[0][0][0]
            if isinstance(atom, str) or atom.kind in ("max", "min"):
                return _symbol_text(atom) if isinstance(atom, str) else atom.text()
        return f"({self})"


def _sum_text(terms, atom_text) -> str:
    """The expanded text of ``terms`` (monomial, coefficient) in their given order."""
    text = ""
    for monomial, coefficient in terms:
        term = _monomial_text(monomial, abs(coefficient), not text and coefficient < 0, atom_text)
        if not text:
            text = term if coefficient > 0 else f"-{term}"
        else:
            text += f"+{term}" if coefficient > 0 else f"-{term}"
    return text


def _symbol_text(name: str) -> str:
    return name if _IDENTIFIER.match(name) else "{" + name + "}"


def _monomial_text(monomial: _Monomial, coefficient: int, negated: bool, atom_text=None) -> str:
    """One term's text; ``negated``: it follows a unary minus, which binds tighter than
    ``//`` and ``%``, so a leading division is parenthesised. ``atom_text`` prints an
    operation atom (default: its display text)."""
    factors = []
    for position, atom in enumerate(monomial):
        if isinstance(atom, str):
            factors.append(_symbol_text(atom))
            continue
        text = atom.text() if atom_text is None else atom_text(atom)
        if atom.kind in ("//", "%") and (position > 0 or negated):
            factors.append(f"({text})")
        else:
            factors.append(text)
    if coefficient != 1 or not factors:
        factors.append(str(coefficient))
    return "*".join(factors)


def _substitute_atom(atom: _Atom, bindings: Mapping[str, int | Expr]) -> Expr:
    if isinstance(atom, str):
        return Expr._of(bindings[atom]) if atom in bindings else Expr.sym(atom)
    left, right = (arg.substitute(bindings) for arg in atom.args)
    return {"//": _floordiv, "%": _mod, "max": max, "min": min}[atom.kind](left, right)


def _atom_expr(kind: str, left: Expr, right: Expr) -> Expr:
    return Expr({(_Op(kind, (left, right)),): 1})


def _divide_exactly(numerator: Expr, divisor: Expr) -> Expr | None:
    """numerator / divisor when the divisor (one monomial) divides every term, else None."""
    if len(divisor._terms) != 1:
        return None
    (divisor_monomial, divisor_coefficient), = divisor._terms
    terms: dict[_Monomial, int] = {}
    for monomial, coefficient in numerator._terms:
        remaining = list(monomial)
        for atom in divisor_monomial:
            if atom not in remaining:
                return None
            remaining.remove(atom)
        if coefficient % divisor_coefficient:
            return None
        terms[tuple(remaining)] = coefficient // divisor_coefficient
    return Expr(terms)


def _floordiv(numerator: Expr, divisor: Expr) -> Expr:
    if divisor == 0:
        raise ZeroDivisionError(f"dim expression {numerator} divided by zero")
    if numerator.is_const and divisor.is_const:
        return Expr.const(numerator.value // divisor.value)
    exact = _divide_exactly(numerator, divisor)
    if exact is not None:
        return exact
    if divisor.is_const and divisor.value > 0:
        d = divisor.value
        constant = numerator._constant_part()
        variable = numerator - constant
        if all(c % d == 0 for _, c in variable._terms):
            return Expr({m: c // d for m, c in variable._terms}) + constant // d
        nested = _nested_floordiv(numerator, d)
        if nested is not None:
            return nested
    return _atom_expr("//", numerator, divisor)


def _nested_floordiv(numerator: Expr, d: int) -> Expr | None:
    """(x//a)//d == x//(a*d) for positive constants a, d."""
    if len(numerator._terms) == 1 and numerator._terms[0][1] == 1:
        (monomial, _), = numerator._terms
        if len(monomial) == 1 and isinstance(monomial[0], _Op) and monomial[0].kind == "//":
            inner, a = monomial[0].args
            if a.is_const and a.value > 0:
                return _floordiv(inner, Expr.const(a.value * d))
    return None


def _mod(numerator: Expr, divisor: Expr) -> Expr:
    if divisor == 0:
        raise ZeroDivisionError(f"dim expression {numerator} modulo zero")
    if numerator.is_const and divisor.is_const:
        return Expr.const(numerator.value % divisor.value)
    if _divide_exactly(numerator, divisor) is not None:
        return Expr.const(0)
    if divisor.is_const and divisor.value > 0:
        d = divisor.value
        constant = numerator._constant_part()
        variable = numerator - constant
        if all(c % d == 0 for _, c in variable._terms):
            return Expr.const(constant % d)
    return _atom_expr("%", numerator, divisor)


def _extremum(kind: str, a: Expr | int, b: Expr | int) -> Expr:
    a, b = Expr._of(a), Expr._of(b)
    difference = a - b
    if difference.is_const:
        a_wins = difference.value >= 0 if kind == "max" else difference.value <= 0
        return a if a_wins else b
    left, right = sorted((a, b), key=Expr.canonical_text)
    return _atom_expr(kind, left, right)


def max(a: Expr | int, b: Expr | int) -> Expr:  # noqa: A001 - mirrors the dim function
    """``max(a,b)``, folded when both are constants or their difference is constant."""
    return _extremum("max", a, b)


def min(a: Expr | int, b: Expr | int) -> Expr:  # noqa: A001
    """``min(a,b)``, folded when both are constants or their difference is constant."""
    return _extremum("min", a, b)


def to_dim(value: int | Expr | None) -> int | str | None:
    """The IR form of a dim: an int when constant, the expression text otherwise."""
    if value is None:
        return None
    if isinstance(value, Expr):
        return value.value if value.is_const else str(value)
    return int(value)


def from_dim(dim: int | str | Expr | None) -> Expr | None:
    """The expression for an IR dim (None stays None: unknown)."""
    if dim is None or isinstance(dim, Expr):
        return dim
    if isinstance(dim, str):
        return Expr.parse(dim) if dim else None
    return Expr.const(int(dim))


# -- parsing ------------------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(\{[^{}]*\})|(//|[-+*%(),]))")


class _Parser:
    """Recursive descent over ``+ - * // %``, unary minus, parentheses, max/min."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                if text[position:].strip() == "":
                    break
                raise ValueError(f"unexpected text at {position}")
            number, name, braced, symbol = match.groups()
            if number is not None:
                self.tokens.append(("int", number))
            elif name is not None:
                self.tokens.append(("name", name))
            elif braced is not None:
                self.tokens.append(("name", braced[1:-1]))
            else:
                self.tokens.append(("op", symbol))
            position = match.end()
        self.position = 0

    def parse(self) -> Expr:
        if not self.tokens:
            raise ValueError("empty")
        result = self.sum()
        if self.position != len(self.tokens):
            raise ValueError("trailing tokens")
        return result

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, kind: str, text: str | None = None) -> str:
        token = self.peek()
        if token is None or token[0] != kind or (text is not None and token[1] != text):
            raise ValueError(f"expected {text or kind}")
        self.position += 1
        return token[1]

    def sum(self) -> Expr:
        result = self.product()
        while self.peek() in (("op", "+"), ("op", "-")):
            operator = self.take("op")
            operand = self.product()
            result = result + operand if operator == "+" else result - operand
        return result

    def product(self) -> Expr:
        result = self.unary()
        while self.peek() in (("op", "*"), ("op", "//"), ("op", "%")):
            operator = self.take("op")
            operand = self.unary()
            if operator == "*":
                result = result * operand
            elif operator == "//":
                result = _floordiv(result, operand)
            else:
                result = _mod(result, operand)
        return result

    def unary(self) -> Expr:
        if self.peek() == ("op", "-"):
            self.take("op")
            return -self.unary()
        return self.atom()

    def atom(self) -> Expr:
        token = self.peek()
        if token is None:
            raise ValueError("unexpected end")
        kind, text = token
        if kind == "int":
            self.position += 1
            return Expr.const(int(text))
        if kind == "name":
            self.position += 1
            if text in ("max", "min") and self.peek() == ("op", "("):
                self.take("op", "(")
                left = self.sum()
                self.take("op", ",")
                right = self.sum()
                self.take("op", ")")
                return _extremum(text, left, right)
            return Expr.sym(text)
        self.take("op", "(")
        inner = self.sum()
        self.take("op", ")")
        return inner
