"""Symbolic dim expressions: canonical forms, folding, printing and parsing."""

from __future__ import annotations

import pytest

from ferry.shapes import expr as dims
from ferry.shapes.expr import Expr, from_dim, to_dim

P = Expr.parse


def test_like_terms_collect_and_constants_fold():
    s = Expr.sym("s")
    assert 2 * s + s == 3 * s
    assert s - s == 0
    assert (s + 2) * 3 - 6 == s * 3
    assert Expr.const(7) + 5 == 12


def test_products_of_sums_expand_to_one_canonical_form():
    a, b = Expr.sym("a"), Expr.sym("b")
    assert (a + 1) * (b + 2) == a * b + 2 * a + b + 2
    assert a * b == b * a
    assert hash(a * b) == hash(b * a)


def test_constant_expression_equals_and_hashes_like_int():
    assert Expr.const(3) == 3 and hash(Expr.const(3)) == hash(3)
    assert Expr.const(3).is_const and Expr.const(3).value == 3
    with pytest.raises(ValueError):
        _ = Expr.sym("n").value


@pytest.mark.parametrize(
    ("text", "simplified"),
    [
        ("(4*n+2)//2", "n*2+1"),
        ("(2*n+1)//2", "n"),  # floor((2n+1)/2) == n for integer n
        ("(a*b)//b", "a"),
        ("(x//2)//3", "x//6"),
        ("7//2", "3"),
        ("-7//2", "-4"),  # floor division, as ONNX dims and Python
        ("(2*n+3)%2", "1"),
        ("(a*b)%b", "0"),
        ("n//1", "n"),
    ],
)
def test_floor_division_and_remainder_fold(text, simplified):
    assert P(text) == P(simplified)
    assert str(P(text)) == str(P(simplified))


def test_floor_division_that_cannot_fold_stays_an_atom():
    e = (Expr.sym("H") - 3) // 2 + 1
    assert not e.is_const
    assert e.substitute({"H": 9}) == 4
    assert e.substitute({"H": 10}) == 4


@pytest.mark.parametrize(
    "text",
    ["batch", "seq*2", "(H-3)//2+1", "-a", "a-b", "W*((H-3)//2)", "a%3*2", "max(a,b)+1",
     "min(seq,5)", "-((H-3)//2)", "{batch size}*2", "(H+pad*2-k)//s+1", "0", "-5"],
)
def test_str_round_trips_through_parse(text):
    e = P(text)
    assert P(str(e)) == e


def test_printing_is_compact():
    assert str(Expr.sym("seq") * 2) == "seq*2"
    assert str((Expr.sym("H") - 3) // 2 + 1) == "(H-3)//2+1"
    assert str(Expr.sym("batch")) == "batch"


def test_a_dim_param_that_is_not_an_expression_is_one_opaque_symbol():
    e = P("batch size")
    assert e.is_symbol and str(e) == "batch size"
    assert e.symbols() == frozenset({"batch size"})
    assert str(e * 2) == "{batch size}*2"
    assert P(str(e * 2)) == e * 2


def test_max_and_min_fold_when_ordered():
    a = Expr.sym("a")
    assert dims.max(a, a + 1) == a + 1
    assert dims.min(a, a + 1) == a
    assert dims.max(3, 5) == 5
    assert dims.max(a, Expr.sym("b")) == dims.max(Expr.sym("b"), a)
    assert not dims.max(a, Expr.sym("b")).is_const


def test_substitute_binds_symbols_and_simplifies():
    e = P("(H+2*pad-k)//s+1")
    assert e.substitute({"H": 32, "pad": 1, "k": 3, "s": 2}) == 16
    partial = e.substitute({"pad": 0, "k": 1, "s": 1})
    assert partial == P("H")
    assert e.symbols() == frozenset({"H", "pad", "k", "s"})


def test_substitute_with_expressions():
    assert P("a*2").substitute({"a": P("b+1")}) == P("b*2+2")


def test_ir_dims_convert_both_ways():
    assert to_dim(Expr.const(4)) == 4
    assert to_dim(P("seq*2")) == "seq*2"
    assert to_dim(None) is None
    assert from_dim(4) == 4 and from_dim("seq*2") == Expr.sym("seq") * 2
    assert from_dim(None) is None


def test_bad_operands_are_rejected():
    with pytest.raises(TypeError):
        Expr.sym("a") + 1.5  # type: ignore[operator]
    with pytest.raises(ZeroDivisionError):
        Expr.sym("a") // 0
