"""Model frames: checks, na.omit, responses, offsets and weights."""

import warnings

import numpy as np
import pandas as pd
import pytest

import pyglmm as pg
from pyglmm.errors import DataError, FormulaError, MissingDataWarning
from pyglmm.formula.frame import model_frame


@pytest.fixture(scope="module")
def ceb():
    return pg.datasets.load("ceb")


def test_offset_in_formula_and_argument_add_up(ceb):
    f = model_frame("round(y) ~ dur + offset(log(n))", ceb, offset=np.ones(len(ceb)))
    np.testing.assert_allclose(f.offset, np.log(ceb["n"]) + 1)
    np.testing.assert_array_equal(f.y, np.round(ceb["y"]))
    assert f.offset_given


def test_cbind_response_is_two_columns():
    cbpp = pg.datasets.load("cbpp")
    f = model_frame("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    assert f.y.shape == (56, 2)
    np.testing.assert_array_equal(f.y.sum(axis=1), cbpp["size"])
    assert "herd" in f.data.columns and len(f.random) == 1


def test_missing_values_dropped_with_warning(ceb):
    df = ceb.copy()
    df.loc["3", "y"] = np.nan
    with pytest.warns(MissingDataWarning, match="1 row"):
        f = model_frame("y ~ dur", df, weights="n")
    assert f.nobs == 69 and f.n_dropped == 1 and "3" not in f.row_labels


def test_unknown_column_named(ceb):
    with pytest.raises(DataError, match="'durr'"):
        model_frame("y ~ durr", ceb)
    with pytest.raises(DataError, match="grouping factor 'h'"):
        model_frame("y ~ dur + (1 | h)", ceb)


def test_non_numeric_response_refused():
    df = pd.DataFrame({"y": ["a", "b", "c"], "x": [1.0, 2, 3]})
    with pytest.raises(DataError, match="factor with 3 levels"):
        model_frame("y ~ x", df)


def test_two_level_factor_response_is_zero_one():
    df = pd.DataFrame({"y": ["no", "yes", "yes"], "x": [1.0, 2, 3]})
    f = model_frame("y ~ x", df)
    np.testing.assert_array_equal(f.y, [0, 1, 1])
    assert f.response_levels == ["no", "yes"]


def test_bad_weights_and_offsets(ceb):
    with pytest.raises(DataError, match="negative weights"):
        model_frame("y ~ dur", ceb, weights=-np.ones(len(ceb)))
    with pytest.raises(DataError, match="length"):
        model_frame("y ~ dur", ceb, weights=np.ones(3))
    with pytest.raises(DataError, match="offset"):
        model_frame("y ~ dur + offset(log(n - n))", ceb)
    with pytest.raises(FormulaError):
        model_frame("cbind(y) ~ dur", ceb)


def test_polars_input_gives_same_matrix(ceb):
    pl = pytest.importorskip("polars")
    plain = ceb.reset_index(drop=True).astype({"dur": str, "res": str, "educ": str})
    f1 = model_frame("y ~ dur + res + educ", plain)
    f2 = model_frame("y ~ dur + res + educ", pl.from_pandas(plain))
    assert f1.column_names == f2.column_names
    np.testing.assert_array_equal(f1.X, f2.X)


def test_input_frame_is_not_modified():
    df = pd.DataFrame({"y": [1.0, 2, 3, 4], "g": ["b", "a", "b", "a"], "x": [1.0, 2, 3, 5]})
    before = df.copy()
    model_frame("y ~ g + x", df)
    pd.testing.assert_frame_equal(df, before)


def test_na_omit_with_duplicate_labels_weights_column_and_unused_levels():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "y": rng.standard_normal(12),
            "x": rng.standard_normal(12),
            "weights": np.r_[np.nan, np.ones(11)],
            "g": pd.Categorical(list("aabbccddeeff"), categories=list("abcdefz")),
            "s": list("uvuvuvuvuvuv"),
            "b": [True, False] * 6,
        },
        index=np.repeat(np.arange(6), 2),
    )
    df.loc[2, "x"] = np.nan  # two rows share the label 2
    df.iloc[7, 3] = np.nan
    with pytest.warns(MissingDataWarning, match=r"4 row.*\['x', 'g', 'weights'\]"):
        f = model_frame("y ~ x + g + s + b + (1 | g)", df, weights="weights")
    assert f.n_dropped == 4 and list(f.row_labels) == [0, 1, 1, 3, 4, 4, 5, 5]
    assert f.column_names == ["(Intercept)", "x", "gb", "gd", "ge", "gf", "sv", "bTrue"]
    assert list(f.data["g"].cat.categories) == ["a", "b", "d", "e", "f"]
    assert list(f.data.columns) == ["y", "x", "g", "s", "b", "weights"]
    np.testing.assert_array_equal(f.weights, np.ones(8))
    np.testing.assert_array_equal(f.X[:, 1], df["x"].to_numpy()[[1, 2, 3, 6, 8, 9, 10, 11]])
    with pytest.raises(DataError, match=r"\['x', 'g'\]"):
        model_frame("y ~ x + g", df, na_action="fail")


def test_frame_data_is_a_copy_on_write_view():
    df = pd.DataFrame({"y": [1.0, 2, 3, 4], "x": [1.0, 2, 3, 5], "z": [0.0, 1, 0, 1]})
    f = model_frame("y ~ x", df)
    f.data.loc[f.data.index[0], "x"] = 99.0
    assert df.loc[0, "x"] == 1.0 and f.X[0, 1] == 1.0
    assert list(f.data.columns) == ["y", "x"]


def test_infinite_values_in_the_model_matrix_refused():
    df = pd.DataFrame(
        {"y": [1.0, 2, 3, 4], "x": [1.0, np.inf, 3, 5], "z": [1e200, 1.0, 1, 2], "w": 1e200}
    )
    with pytest.raises(DataError, match="model matrix has non-finite"):
        model_frame("y ~ x", df)
    f = model_frame("y ~ z + w", df)  # finite columns
    assert f.fixed.built_directly
    with pytest.raises(DataError, match="model matrix has non-finite"):
        model_frame("y ~ z:w", df)  # a product that overflows


def test_huge_finite_values_are_not_missing():
    # their sum of squares overflows; each value is still finite
    df = pd.DataFrame({"y": [1.0, 2, 3, 4], "x": [1e200, -1e200, 3.0, 1e300]})
    f = model_frame("y ~ x", df)
    assert f.n_dropped == 0
    np.testing.assert_array_equal(f.X[:, 1], df["x"].to_numpy())


@pytest.mark.parametrize("n", [50, 10_000])
@pytest.mark.parametrize("bad", ["x1 nan", "x2 inf", "y nan and x1 nan", "none"])
def test_predictor_checks_made_while_filling_agree_with_checking_first(n, bad):
    """Plain float predictors are checked for NaN / infinity while X is filled; data where
    that check fails are framed again with every column checked first, so the rows
    dropped, the one warning and the errors are those of checking first."""
    rng = np.random.default_rng(2)
    df = pd.DataFrame(rng.standard_normal((n, 3)), columns=["y", "x1", "x2"])
    if "x1 nan" in bad:
        df.loc[[3, n - 2], "x1"] = np.nan
    if "x2 inf" in bad:
        df.loc[7, "x2"] = np.inf
    if "y nan" in bad:
        df.loc[[3, 5], "y"] = np.nan

    def frame(defer):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = model_frame("y ~ x1 + x2", df, _defer_checks=defer)
            except DataError as e:
                result = str(e)
        return result, [str(w.message) for w in caught]

    (checked, warned_checked), (deferred, warned_deferred) = frame(False), frame(True)
    assert warned_deferred == warned_checked and len(warned_checked) <= 1
    if bad == "x2 inf":
        assert "non-finite" in deferred and deferred == checked
        return
    np.testing.assert_array_equal(deferred.X, checked.X)
    np.testing.assert_array_equal(deferred.y, checked.y)
    assert deferred.n_dropped == checked.n_dropped == {"x1 nan": 2, "none": 0}.get(bad, 3)
