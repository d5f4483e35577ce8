"""Random-effects bars to terms: lme4's expansions, level order, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pyglmm as pg
from pyglmm.errors import DataError, FormulaError
from pyglmm.formula.parse import RandomBar, parse_formula
from pyglmm.formula.random import expand_bars, grouping_factor, random_terms


def _bars(formula: str) -> list[RandomBar]:
    return parse_formula(formula).random


def test_double_bar_splits_into_uncorrelated_terms():
    eb = expand_bars(_bars("y ~ x + (x || g)"))
    assert [(e.lhs, e.group) for e in eb] == [("1", "g"), ("0 + x", "g")]
    eb = expand_bars(_bars("y ~ (0 + x + z || g)"))
    assert [(e.lhs, e.group) for e in eb] == [("0 + x", "g"), ("0 + z", "g")]


def test_slash_expands_to_interaction_and_outer_factor():
    eb = expand_bars(_bars("y ~ (1 | a/b)"))
    assert [e.group for e in eb] == ["b:a", "a"]
    eb = expand_bars(_bars("y ~ (1 | a/b/c)"))
    assert [e.group for e in eb] == ["c:b:a", "b:a", "a"]


def test_interaction_levels_first_factor_slowest_and_unused_dropped():
    df = pd.DataFrame({"f": ["b", "a", "b", "a"], "g": [2, 1, 1, 1]})
    df["f"] = pd.Categorical(df["f"], categories=["a", "b"])
    codes, labels = grouping_factor(df, ("f", "g"))
    assert labels == ["a:1", "b:1", "b:2"]  # a:2 is not in the data
    assert list(codes) == [2, 0, 1, 0]


def test_numeric_grouping_variable_is_a_factor_with_numeric_level_order():
    df = pd.DataFrame({"g": [10, 2, 10, 2, 33, 33], "y": np.arange(6.0)})
    codes, labels = grouping_factor(df, ("g",))
    assert labels == ["2", "10", "33"]
    assert list(codes) == [1, 0, 1, 0, 2, 2]


def test_terms_sorted_by_number_of_levels_and_named_as_lme4():
    m = pg.datasets.load("Machines")
    terms = random_terms(_bars("score ~ (1 | Worker) + (1 | Worker:Machine)"), m)
    assert [t.group for t in terms] == ["Worker:Machine", "Worker"]
    assert [t.nlevels for t in terms] == [18, 6]
    assert terms[0].levels[:3] == ["1:A", "1:B", "1:C"]
    nested = random_terms(_bars("score ~ (1 | Worker/Machine)"), m)
    assert [t.group for t in nested] == ["Machine:Worker", "Worker"]
    assert nested[0].levels[:3] == ["A:1", "A:2", "A:3"]


def test_factor_inside_bar_gives_indicator_columns():
    m = pg.datasets.load("Machines")
    (t,) = random_terms(_bars("score ~ (0 + Machine | Worker)"), m)
    assert t.cnames == ["MachineA", "MachineB", "MachineC"]
    assert t.q == 3 and t.ntheta == 6
    assert t.theta_names()[:3] == [
        "Worker.MachineA",
        "Worker.MachineB.MachineA",
        "Worker.MachineC.MachineA",
    ]
    (t2,) = random_terms(_bars("score ~ (Machine | Worker)"), m)
    assert t2.cnames == ["(Intercept)", "MachineB", "MachineC"]


def test_theta_start_and_bounds_as_lme4():
    s = pg.datasets.load("sleepstudy")
    (t,) = random_terms(_bars("Reaction ~ (Days | Subject)"), s)
    np.testing.assert_array_equal(t.theta_start(), [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(t.theta_lower(), [0.0, -np.inf, 0.0])
    lam = t.lambda_(np.array([2.0, 0.5, 3.0]))
    np.testing.assert_array_equal(lam, [[2.0, 0.0], [0.5, 3.0]])


def test_bad_formulas_give_clear_errors():
    s = pg.datasets.load("sleepstudy")
    with pytest.raises(FormulaError, match="grouping factor"):
        parse_formula("Reaction ~ Days + (1 | )")
    one = s.assign(g="only")
    with pytest.raises(DataError, match="at least 2 levels"):
        random_terms(_bars("Reaction ~ (1 | g)"), one)
    with pytest.raises(DataError, match="number of random effects"):
        # 18 subjects x 10 columns of a factor = 180 random effects for 180 rows
        random_terms(
            _bars("Reaction ~ (0 + factor_days | Subject)"),
            s.assign(factor_days=s["Days"].astype(str)),
        )
    with pytest.raises(DataError, match="levels for"):
        random_terms(_bars("Reaction ~ (1 | row)"), s.assign(row=np.arange(len(s))))
    with pytest.raises(FormulaError, match="no random-effects terms"):
        random_terms([], s)


def test_unused_categories_are_dropped_and_codes_renumbered():
    g = pd.Categorical(["c", "a", "c", "e"], categories=["a", "b", "c", "d", "e"])
    codes, labels = grouping_factor(pd.DataFrame({"g": g}), ("g",))
    assert labels == ["a", "c", "e"]
    assert list(codes) == [1, 0, 1, 2]
    # numeric categories are labelled as R prints them
    h = pd.Categorical([2.0, 10.0, 2.0], categories=[2.0, 5.0, 10.0])
    codes, labels = grouping_factor(pd.DataFrame({"h": h}), ("h",))
    assert labels == ["2", "10"]
    assert list(codes) == [0, 1, 0]


def test_missing_grouping_value_is_an_error():
    g = pd.Categorical(["a", None, "b"])
    with pytest.raises(DataError, match="missing values"):
        grouping_factor(pd.DataFrame({"g": g}), ("g",))


def test_interaction_with_a_large_key_space_sorts_the_keys():
    # 3 300 x 3 300 combinations > 10⁷: the codes come from np.unique instead of bincount
    n = 3300
    df = pd.DataFrame({"a": np.arange(n), "b": np.arange(n)[::-1]})
    codes, labels = grouping_factor(df, ("a", "b"))
    assert len(labels) == n
    assert labels[:2] == ["0:3299", "1:3298"]
    np.testing.assert_array_equal(codes, np.arange(n))
    small = df.iloc[:50]
    codes_s, labels_s = grouping_factor(small, ("a", "b"))
    assert labels_s == labels[:50][::1] and list(codes_s) == list(range(50))


def test_numeric_design_builds_intercept_and_columns_and_declines_other_dtypes():
    from pyglmm.formula.random import NumericDesign

    df = pd.DataFrame(
        {"x": [1, 2, 3], "z": [0.5, 1.5, 2.5], "b": [True, False, True], "s": ["a", "b", "c"]}
    )
    d = NumericDesign.try_build("x + z", df)
    assert d is not None and d.column_names == ["(Intercept)", "x", "z"]
    np.testing.assert_array_equal(d.matrix, [[1, 1, 0.5], [1, 2, 1.5], [1, 3, 2.5]])
    d0 = NumericDesign.try_build("0 + z", df)
    np.testing.assert_array_equal(d0.matrix, [[0.5], [1.5], [2.5]])
    assert NumericDesign.try_build("b", df) is None  # booleans go to the general encoder
    assert NumericDesign.try_build("s", df) is None
