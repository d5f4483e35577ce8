"""Splitting formulas into response, fixed part, offsets and random bars."""

import pytest

from pyglmm.errors import FormulaError
from pyglmm.formula.parse import RandomBar, parse_formula


def test_response_fixed_offset_and_bar():
    pf = parse_formula("cbind(a, b - a) ~ x + f + offset(log(n)) + (1 + x | g)")
    assert pf.response == "cbind(a, b - a)"
    assert pf.fixed == "x + f"
    assert pf.offsets == ["log(n)"]
    assert pf.random == [RandomBar("1 + x", "g", True)]
    assert pf.has_intercept


def test_double_bar_nested_and_interaction_groups():
    pf = parse_formula("y ~ 1 + (x || g/h) + (1 | g:h)")
    assert pf.fixed == "1"
    assert pf.random == [RandomBar("x", "g/h", False), RandomBar("1", "g:h", True)]


@pytest.mark.parametrize("text", ["y ~ x - 1", "y ~ 0 + x", "y ~ -1 + x"])
def test_intercept_removed(text):
    assert not parse_formula(text).has_intercept


def test_only_random_terms_gives_intercept_only_fixed_part():
    pf = parse_formula("y ~ (1 | g)")
    assert pf.fixed == "1" and pf.has_intercept


@pytest.mark.parametrize(
    "text, match",
    [
        ("y ~ x + (1 | )", "no grouping factor"),
        ("y ~ x + ( | g)", "nothing before the bar"),
        ("y ~ (x", "unbalanced"),
        ("y ~ x ~ z", "more than one"),
        ("", "non-empty"),
        ("y ~ ", "nothing on the right"),
        ("y ~ dur +", "nothing on one side"),
        ("y ~ * x", "nothing on one side"),
    ],
)
def test_bad_formulas_are_named(text, match):
    with pytest.raises(FormulaError, match=match):
        parse_formula(text)
