"""Compact display of dim expressions (``str(Expr)``).

An :class:`~ferry.shapes.expr.Expr` is stored expanded (a sum of monomials), which keeps
equality canonical but turns ``(a-1)*(b-1)`` into ``a*b-a-b+1``. The printer recovers a
product form from the canonical terms alone, so equal expressions still print the same:

- factors every term shares are pulled out (``batch*(seq+1)``, not ``batch*seq+batch``);
- a sum that is the product of sums over disjoint sets of atoms is printed as that
  product (the coefficient table of the two sets has rank one);
- higher degrees first, a positive term leads (``b-a``, not ``-a+b``); coefficients go
  last (``seq*2``).

Products are read back by :meth:`Expr.parse`, which expands them to the same terms.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

from ferry.shapes.expr import _atom_key, _monomial_key, _monomial_text
from ferry.shapes.expr import _sum_text as _terms_text

if TYPE_CHECKING:
    from ferry.shapes.expr import Expr, _Atom, _Monomial

__all__ = ["format_expr"]

_MAX_SPLIT_ATOMS = 8  # at most 2**7 ways to split the atoms of a sum into two sets
_Terms = dict  # monomial -> coefficient


def format_expr(expr: Expr) -> str:
    """The compact text of ``expr`` (see the module docstring)."""
    terms = dict(expr._terms)
    if not terms:
        return "0"
    if expr.is_symbol:
        return expr._terms[0][0][0]  # a bare name, even when it is not an identifier
    return _text(terms)


def _text(terms: _Terms) -> str:
    if len(terms) == 1:
        (monomial, coefficient), = terms.items()
        term = _monomial_text(monomial, abs(coefficient), coefficient < 0)
        return term if coefficient > 0 else f"-{term}"
    coefficient, atoms, sums = _factor(terms)
    if not atoms and len(sums) == 1:
        return _sum_text(terms)
    factors = [f"({_sum_text(s)})" for s in sorted(sums, key=_terms_key)]
    head = _monomial_text(atoms, 1, coefficient < 0) if atoms else ""
    text = "*".join(([head] if head else []) + factors)
    if abs(coefficient) != 1:
        text += f"*{abs(coefficient)}"
    return f"-{text}" if coefficient < 0 else text


def _sum_text(terms: _Terms) -> str:
    """The expanded sum, higher degrees first, led by its first positive term."""
    ordered = sorted(terms.items(), key=lambda item: (-len(item[0]), _monomial_key(item[0])))
    lead = next((k for k, (_, c) in enumerate(ordered) if c > 0), 0)
    ordered = ordered[lead:lead + 1] + ordered[:lead] + ordered[lead + 1:]
    return _terms_text(ordered, None)


def _terms_key(terms: _Terms) -> tuple:
    return tuple(sorted((_monomial_key(m), c) for m, c in terms.items()))


# -- factoring ---------------------------------------------------------------------------------
def _factor(terms: _Terms) -> tuple[int, _Monomial, list[_Terms]]:
    """``terms`` as coefficient * atoms * product of sums (each sum has >= 2 terms and a
    positive leading term in canonical order)."""
    coefficient, atoms, rest = _content(terms)
    sums: list[_Terms] = []
    _split_all(rest, sums)
    signs = 1
    for k, factor in enumerate(sums):
        sign, sums[k] = _positive_lead(factor)
        signs *= sign
    return coefficient * signs, atoms, sums


def _content(terms: _Terms) -> tuple[int, _Monomial, _Terms]:
    """The coefficients' gcd and the atoms every term shares, and what remains."""
    divisor = math.gcd(*terms.values())
    common: list[_Atom] | None = None
    for monomial in terms:
        if common is None:
            common = list(monomial)
            continue
        remaining = list(monomial)
        kept = []
        for atom in common:
            if atom in remaining:
                remaining.remove(atom)
                kept.append(atom)
        common = kept
    shared = tuple(common or ())
    rest = {_without(m, shared): c // divisor for m, c in terms.items()}
    return divisor, shared, rest


def _without(monomial: _Monomial, atoms: _Monomial) -> _Monomial:
    remaining = list(monomial)
    for atom in atoms:
        remaining.remove(atom)
    return tuple(remaining)


def _positive_lead(terms: _Terms) -> tuple[int, _Terms]:
    first = min(terms, key=_monomial_key)
    if terms[first] > 0:
        return 1, terms
    return -1, {m: -c for m, c in terms.items()}


def _split_all(terms: _Terms, found: list[_Terms]) -> None:
    """Append the factors of ``terms`` (a sum without common content) to ``found``."""
    split = _split(terms)
    if split is None:
        found.append(terms)
        return
    for part in split:
        _split_all(part, found)


def _split(terms: _Terms) -> tuple[_Terms, _Terms] | None:
    """Two sums over disjoint atom sets whose product is ``terms``, if there are."""
    atoms = sorted({a for m in terms for a in m}, key=_atom_key)
    if not 2 <= len(atoms) <= _MAX_SPLIT_ATOMS:
        return None
    first, others = atoms[0], atoms[1:]
    for size in range(len(others)):  # the other side keeps at least one atom
        for chosen in itertools.combinations(others, size):
            left = {first, *chosen}
            split = _rank_one(terms, left)
            if split is not None:
                return split
    return None


def _rank_one(terms: _Terms, left: set) -> tuple[_Terms, _Terms] | None:
    """F(left atoms) * G(other atoms) == terms, when the coefficient table has rank one."""
    table: dict[_Monomial, dict[_Monomial, int]] = {}
    for monomial, coefficient in terms.items():
        row = tuple(a for a in monomial if a in left)
        column = tuple(a for a in monomial if a not in left)
        table.setdefault(row, {})[column] = coefficient
    rows = sorted(table, key=_monomial_key)
    columns = sorted({c for entries in table.values() for c in entries}, key=_monomial_key)
    if len(rows) < 2 or len(columns) < 2 or len(terms) != len(rows) * len(columns):
        return None
    first_row = [table[rows[0]][c] for c in columns]
    divisor = math.gcd(*first_row)
    g = {c: v // divisor for c, v in zip(columns, first_row)}
    f = {}
    for row in rows:
        value, remainder = divmod(table[row][columns[0]], g[columns[0]])
        if remainder:
            return None
        f[row] = value
    if any(table[r][c] != f[r] * g[c] for r in rows for c in columns):
        return None
    return f, g
