"""Factor levels in R's order."""

import pandas as pd
import pytest

from pyglmm.errors import DataError
from pyglmm.formula.levels import as_r_factor, r_sorted_levels, relevel


def test_strings_sort_as_r_locale_collation():
    # R (en_US): rural < Suva < urban; Python's sorted() would put Suva first
    assert r_sorted_levels(["urban", "Suva", "rural", "Suva"]) == ["rural", "Suva", "urban"]
    assert r_sorted_levels(["upper", "none", "lower", "sec+"]) == ["lower", "none", "sec+", "upper"]
    assert r_sorted_levels(["5-9", "0-4", "25-29", "10-14"]) == ["0-4", "10-14", "25-29", "5-9"]


def test_numbers_sort_numerically():
    assert r_sorted_levels([10, 2, 1, 2]) == [1, 2, 10]


def test_existing_categorical_keeps_its_levels():
    s = pd.Series(pd.Categorical(["b", "a"], categories=["b", "a"]))
    assert list(as_r_factor(s).cat.categories) == ["b", "a"]


def test_relevel_moves_reference_first():
    s = relevel(pd.Series(["a", "b", "c"], name="f"), "c")
    assert list(s.cat.categories) == ["c", "a", "b"]
    with pytest.raises(DataError, match="not a level"):
        relevel(pd.Series(["a"], name="f"), "z")
