"""Fixed-effects model matrices with R's column names and a stateful encoding."""

import numpy as np
import pandas as pd
import pytest

import pyglmm as pg
from pyglmm.errors import DataError
from pyglmm.formula.fixed import FixedDesign


@pytest.fixture(scope="module")
def ceb():
    return pg.datasets.load("ceb")


def test_seed_reference_levels_and_r_names(ceb):
    d = FixedDesign("dur + res + educ", ceb)
    # the names (and so the reference levels 0-4, rural, lower) of the seed's glm table
    assert d.column_names == [
        "(Intercept)", "dur10-14", "dur15-19", "dur20-24", "dur25-29", "dur5-9",
        "resSuva", "resurban", "educnone", "educsec+", "educupper",
    ]  # fmt: skip
    assert d.terms == ["dur", "res", "educ"]
    assert d.assign.tolist() == [0, 1, 1, 1, 1, 1, 2, 2, 3, 3, 3]


def test_interactions_transforms_and_terms_order_by_degree(ceb):
    d = FixedDesign("res*educ + I(n^2) + log(n)", ceb)
    assert d.terms == ["res", "educ", "I(n^2)", "log(n)", "res:educ"]
    assert "resSuva:educnone" in d.column_names
    col = d.column_names.index("I(n^2)")
    np.testing.assert_allclose(d.matrix[:, col], ceb["n"].to_numpy() ** 2)


def test_sum_contrasts_by_argument_named_as_r(ceb):
    d = FixedDesign("res", ceb, contrasts={"res": "contr.sum"})
    assert d.column_names == ["(Intercept)", "res1", "res2"]
    urban = ceb["res"].to_numpy() == "urban"
    np.testing.assert_array_equal(d.matrix[urban, 1:], -1.0)


def test_factor_of_numeric_column_named_as_written():
    df = pd.DataFrame({"y": [1.0, 2, 3, 4], "g": [3, 1, 2, 3]})
    d = FixedDesign("factor(g)", df)
    assert d.column_names == ["(Intercept)", "factor(g)2", "factor(g)3"]


def test_transform_new_data_uses_training_encoding(ceb):
    d = FixedDesign("dur + res + center(n)", ceb)
    new = pd.DataFrame({"dur": ["5-9"], "res": ["urban"], "n": [ceb["n"].mean() + 1]})
    row = d.transform(new)[0]
    expected = np.zeros(len(d.column_names))
    expected[[0, d.column_names.index("dur5-9"), d.column_names.index("resurban")]] = 1
    expected[-1] = 1.0  # centred with the training mean, not the new data's
    np.testing.assert_allclose(row, expected)


def test_transform_rejects_new_levels(ceb):
    d = FixedDesign("res", ceb)
    with pytest.raises(DataError, match="new level"):
        d.transform(pd.DataFrame({"res": ["Lautoka"]}))


def test_large_data_fast_path_equals_formulaic(monkeypatch):
    import pyglmm.formula.fixed as fixed

    # the sampled-formulaic path for large data, behind the native builder
    monkeypatch.setattr(fixed, "_NATIVE", False)
    rng = np.random.default_rng(1)
    n = fixed._FAST_PATH_MIN_ROWS + 1000
    df = pd.DataFrame({"a": rng.standard_normal(n), "c": rng.standard_normal(n)})
    df["f"] = pd.Categorical(rng.integers(0, 300, n))
    df["g"] = pd.Categorical(rng.choice(["x", "y", "z"], n))
    for rhs in ["a + f", "a*g + c:g + f", "0 + g + a", "a:g + f:g"]:
        fast = FixedDesign(rhs, df)
        reference = FixedDesign.__new__(FixedDesign)
        saved = fixed._FAST_PATH_MIN_ROWS
        fixed._FAST_PATH_MIN_ROWS = 10**12
        try:
            reference.__init__(rhs, df)
        finally:
            fixed._FAST_PATH_MIN_ROWS = saved
        assert fast.column_names == reference.column_names
        assert fast.built_directly and not reference.built_directly
        np.testing.assert_array_equal(fast.matrix, reference.matrix)
        new = df.iloc[:7]
        np.testing.assert_array_equal(fast.transform(new), reference.transform(new))


def test_transform_ignores_factors_the_formula_does_not_use(ceb):
    d = FixedDesign("res", ceb)
    new = pd.DataFrame({"res": ["urban"], "educ": ["a level never seen"]})
    np.testing.assert_array_equal(d.transform(new), [[1.0, 0.0, 1.0]])
