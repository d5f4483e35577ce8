"""The native model-matrix builder gives the matrices of the formulaic path.

R is the reference (tests/formula/test_model_matrix_r.py). The formulaic path is
given the terms in R's order and keeps R's columns of formulaic's all-levels matrix,
so both paths give R's columns; here they are compared bit for bit.
"""

import pickle
import random
import warnings

import numpy as np
import pandas as pd
import pytest

import pyglmm.formula.fixed as fixed
from pyglmm.errors import DataError
from pyglmm.formula.fixed import FixedDesign
from pyglmm.formula.frame import model_frame
from pyglmm.formula.levels import as_r_factor
from pyglmm.formula.native import parse_simple_rhs


def formulaic_design(rhs, data, contrasts=None):
    """The design built through formulaic (the native builder switched off)."""
    saved = fixed._NATIVE
    fixed._NATIVE = False
    try:
        return FixedDesign(rhs, data, contrasts)
    finally:
        fixed._NATIVE = saved


def bits(a):
    """The bytes of a float matrix, so that -0.0 and 0.0 differ."""
    return np.ascontiguousarray(a, dtype=float).view(np.uint64)


def assert_same_design(native, reference, newdata=None):
    assert native.built_directly and native._native is not None
    assert reference._native is None
    assert native.column_names == reference.column_names
    assert native.terms == reference.terms
    np.testing.assert_array_equal(native.assign, reference.assign)
    assert native.has_intercept == reference.has_intercept
    assert native.matrix.flags.c_contiguous
    assert native.matrix.shape == reference.matrix.shape
    np.testing.assert_array_equal(bits(native.matrix), bits(reference.matrix))
    if newdata is not None:
        np.testing.assert_array_equal(
            bits(native.transform(newdata)), bits(reference.transform(newdata))
        )


def make_data(n, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "x": rng.standard_normal(n),
            "z": rng.standard_normal(n) * 1e3,
            "w": rng.integers(-5, 5, n),
            "u": rng.integers(0, 7, n).astype(np.uint8),
            "f32": rng.standard_normal(n).astype(np.float32),
            "a": pd.Categorical(rng.choice(["a1", "a2", "a3"], n)),
            "b": pd.Categorical(rng.choice(["lo", "hi"], n)),
            "c": pd.Categorical(rng.choice([3, 1, 2], n)),
            # categories in the user's order, one of them unused
            "d": pd.Categorical(
                rng.choice(["p q", "r", "s", "t"], n), categories=["t", "s", "r", "p q", "unused"]
            ),
        }
    )
    df["e"] = as_r_factor(pd.Series(rng.choice(["Suva", "rural", "urban"], n)))
    return df


SIMPLE_FORMULAS = [
    "1",
    "0",
    "-1",
    "x",
    "x + z + w + u + f32",
    "0 + x",
    "x - 1",
    "x + 0",
    "a",
    "0 + a",
    "-1 + a",
    "a + b + c + d + e",
    "0 + a + b",
    "x + a",
    "0 + x + a",
    "x*a",
    "a*x",
    "x:a",
    "0 + x:a",
    "x + x:a",
    "a*b",
    "b*a",
    "a*b*c",
    "a*b + c",
    "a:b:c + a*b + a:c + b:c + c",
    "x*z",
    "x*z*a",
    "w*b",
    "w:b",
    "w:b:x",
    "x:w:b",
    "b:w:x + b",
    "x:a + w:b + d:z + a",
    "z:c + d*w + 0",
    "1 + x + a + 1",
    "x + x + a",
    "a*x + a:x",
    "x - a",
    "a:a",
    "(x + a)^2",
    "0 + 1 + x",
    # formulaic is given the terms expanded in R's order (a:b, b:a, a:x), as R orders them
    "a + b:a",
    "a + x:a",
    "a*x + x:a",
    "b + a*b",
    "a/b",
    # formulaic codes these unlike R; FixedDesign keeps R's columns of its all-levels matrix
    "a:b",  # R: every level combination
    "x + a:b",
    "a:b*c",  # a:b without its margins
    "-1 + x + x:b",  # R: indicators for every level of b
    "x + x:a + w + a:b",  # R counts x:a as holding the margin a
]

#: Formulas with calls, built by formulaic.
FALLBACK_FORMULAS = ["log(z)", "I(x^2)", "factor(w)", "poly(x, 2)", "`x`"]


@pytest.fixture(scope="module")
def data():
    return make_data(60)


@pytest.mark.parametrize("rhs", SIMPLE_FORMULAS)
def test_simple_formulas_equal_formulaic(rhs, data):
    newdata = data.sample(25, random_state=2)
    assert_same_design(FixedDesign(rhs, data), formulaic_design(rhs, data), newdata)


@pytest.mark.parametrize("rhs", FALLBACK_FORMULAS)
def test_other_formulas_go_to_formulaic(rhs, data):
    native = FixedDesign(rhs, data)
    assert native._native is None and not native.built_directly
    reference = formulaic_design(rhs, data)
    assert native.column_names == reference.column_names
    np.testing.assert_array_equal(native.matrix, reference.matrix)


@pytest.mark.parametrize(
    "contrasts",
    [
        {"a": "contr.sum"},
        {"a": "treatment", "e": "sum"},
        {"a": "contr.helmert", "d": "contr.treatment"},
        {"a": "poly", "e": "contr.poly"},
    ],
)
def test_contrasts_by_argument_equal_formulaic(contrasts, data):
    rhs = "x + a + e + d + b:x"
    design = FixedDesign(rhs, data, contrasts)
    assert design._native is not None
    reference = formulaic_design(rhs, data, contrasts)
    assert design.column_names == reference.column_names
    np.testing.assert_array_equal(design.assign, reference.assign)
    np.testing.assert_allclose(design.matrix, reference.matrix, rtol=1e-14, atol=1e-15)
    newdata = data.sample(20, random_state=1)
    np.testing.assert_allclose(
        design.transform(newdata), reference.transform(newdata), rtol=1e-14, atol=1e-15
    )


def test_contrasts_for_unused_or_numeric_variables(data):
    # contrasts for a variable the formula does not use do not matter
    assert FixedDesign("x + b", data, {"a": "contr.sum"})._native is not None
    # contrasts for a numeric variable: formulaic decides
    assert FixedDesign("x + b", data, {"x": "contr.sum"})._native is None


def test_ordered_factors_get_polynomial_contrasts(data):
    df = data.copy()
    df["o"] = pd.Categorical(df["a"].astype(str), ordered=True)
    design = FixedDesign("x + o", df)
    assert design._native is not None
    assert design.column_names == ["(Intercept)", "x", "o.L", "o.Q"]
    reference = formulaic_design("x + o", df)  # formulaic told contr.poly for ordered
    assert reference.column_names == design.column_names
    np.testing.assert_allclose(design.matrix, reference.matrix, rtol=1e-14, atol=1e-15)
    treatment = FixedDesign("x + o", df, {"o": "contr.treatment"})
    assert treatment.column_names == ["(Intercept)", "x", "oa2", "oa3"]


def test_columns_the_native_builder_does_not_take(data):
    df = data.copy()
    df["one"] = pd.Categorical(["k"] * len(df))
    df["na"] = df["a"].cat.add_categories(["zz"])
    df.loc[df.index[0], "na"] = np.nan
    df["n64"] = pd.array(df["w"], dtype="Int64")
    df["s"] = df["a"].astype(str)
    for rhs in ["x + one", "x + na", "n64", "s"]:
        design = FixedDesign(rhs, df)
        assert design._native is None, rhs
        reference = formulaic_design(rhs, df)
        assert design.column_names == reference.column_names


def test_random_formulas_equal_formulaic_path(data):
    rng = random.Random(3)
    variables = ["x", "z", "w", "u", "f32", "a", "b", "c", "d", "e"]
    newdata = data.sample(20, random_state=5)
    taken = 0
    for _ in range(250):
        terms = []
        for _ in range(rng.choice([1, 2, 3])):
            chosen = rng.sample(variables, rng.choice([1, 1, 2, 2, 3]))
            terms.append((":" if rng.random() < 0.5 else "*").join(chosen))
        rhs = rng.choice(["", "", "0 + ", "-1 + "]) + " + ".join(terms)
        native = FixedDesign(rhs, data)
        assert native._native is not None
        taken += 1
        assert_same_design(native, formulaic_design(rhs, data), newdata)
    assert taken == 250


def test_large_data_is_filled_in_row_chunks_with_formulaic_bits():
    df = make_data(20_000, seed=4)
    df.loc[df.index[::97], "x"] = np.nan  # NaN rows are kept (na_action="ignore")
    for rhs in ["x + z + w + u + f32", "x*a + z + z:d + e", "0 + a*b + b:w:x"]:
        assert_same_design(FixedDesign(rhs, df), formulaic_design(rhs, df), df.iloc[:500])


def test_transform_new_levels_and_missing_columns(data):
    design = FixedDesign("x*a + e", data)
    assert design._native is not None
    with pytest.raises(DataError, match="new level"):
        design.transform(pd.DataFrame({"x": [1.0], "a": ["a9"], "e": ["urban"]}))
    with pytest.raises(DataError, match="'x'"):
        design.transform(pd.DataFrame({"a": ["a1"], "e": ["urban"]}))
    with pytest.raises(DataError, match="not numeric"):
        design.transform(pd.DataFrame({"x": ["1.5"], "a": ["a1"], "e": ["urban"]}))
    # strings, categoricals with other category orders and missing values as formulaic
    new = pd.DataFrame(
        {
            "x": [1.0, np.nan, -3.0],
            "a": pd.Categorical(["a3", "a1", None], categories=["a3", "a1", "a2"]),
            "e": ["rural", "Suva", "urban"],
        }
    )
    reference = formulaic_design("x*a + e", data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(bits(design.transform(new)), bits(reference.transform(new)))


def test_spec_of_native_design_is_formulaics(data):
    design = FixedDesign("x*a + b", data)
    assert design._native is not None
    spec = design.spec
    assert not any(spec.transform_state.values())
    again = spec.get_model_matrix(data, output="pandas", na_action="ignore")
    np.testing.assert_array_equal(again.to_numpy(dtype=float), design.matrix)


def test_native_design_pickles(data):
    design = FixedDesign("x*a + b", data)
    copy = pickle.loads(pickle.dumps(design))
    np.testing.assert_array_equal(copy.transform(data), design.matrix)
    assert copy.column_names == design.column_names


def test_parse_simple_rhs_expands_as_r():
    parsed = parse_simple_rhs("c + a*b:d - 1")
    assert parsed is not None and not parsed.intercept
    assert parsed.terms == (("c",), ("a",), ("b", "d"), ("a", "b", "d"))
    with_call = parse_simple_rhs("log(y):a + a - 1 + x")
    assert with_call is not None and with_call.calls
    assert with_call.terms == (("a",), ("x",), ("log(y)", "a"))
    assert with_call.expanded() == "0 + a + x + log(y):a"
    assert parse_simple_rhs("a/(b + c) - a:c").terms == (("a",), ("a", "b"))
    assert parse_simple_rhs("(a + b + c)^2").terms == (
        ("a",),
        ("b",),
        ("c",),
        ("a", "b"),
        ("a", "c"),
        ("b", "c"),
    )
    assert parse_simple_rhs("b - a + a:b").terms == (("b",), ("b", "a"))
    assert parse_simple_rhs("1 + 0 + x").intercept is False
    assert parse_simple_rhs("0 + 1 + x").intercept is True
    # a plain sum (read without the parser) as the parser reads it
    for text in ["x + z + 0", "1 + x + 1", "a + b + a", "x.1 + _y", "0"]:
        assert parse_simple_rhs(text) == parse_simple_rhs(f"({text})"), text
    for text in ["x +", "x + .", "a %in% b", "(a + b", "(a + b)^1", "a:1", "`x`", "I(x"]:
        assert parse_simple_rhs(text) is None, text
    assert parse_simple_rhs("-1").intercept is False
    assert parse_simple_rhs("-0 + x").intercept is True


def test_model_frame_native_equals_formulaic(monkeypatch, data):
    df = data.copy()
    df.loc[df.index[3], "x"] = np.nan
    df.loc[df.index[7], "a"] = np.nan
    df["s"] = df["e"].astype(str)
    df["flag"] = df["x"].fillna(0) > 0
    df["y"] = np.arange(len(df), dtype=float)
    formula = "y ~ x*a + s + flag + w:b + (1 | d)"
    with pytest.warns(Warning, match="2 row"):
        native = model_frame(formula, df)
    monkeypatch.setattr(fixed, "_NATIVE", False)
    with pytest.warns(Warning, match="2 row"):
        reference = model_frame(formula, df)
    assert native.fixed._native is not None and reference.fixed._native is None
    assert native.column_names == reference.column_names
    np.testing.assert_array_equal(bits(native.X), bits(reference.X))
    np.testing.assert_array_equal(native.y, reference.y)
    pd.testing.assert_frame_equal(native.data, reference.data)


def test_model_frame_from_polars_takes_native_path(data):
    pl = pytest.importorskip("polars")
    df = data[["x", "w"]].copy()
    df["y"] = np.linspace(0, 1, len(df))
    df["s"] = data["a"].astype(str)
    df["b"] = data["b"].astype(str)
    frame_pl = model_frame("y ~ x*s + w + b", pl.from_pandas(df))
    frame_pd = model_frame("y ~ x*s + w + b", df)
    assert frame_pl.fixed._native is not None
    assert frame_pl.column_names == frame_pd.column_names
    np.testing.assert_array_equal(bits(frame_pl.X), bits(frame_pd.X))


def test_formulaic_path_keeps_r_columns_on_large_data(monkeypatch):
    df = make_data(8_000, seed=6)
    df["n64"] = pd.array(df["w"], dtype="Int64")  # not native: formulaic path
    df["pos"] = df["z"].abs() + 1.0
    cases = ["n64 + a:b", "-1 + n64 + n64:e", "n64:a:b + c", "log(pos) + a:b", "I(x^2):a:b + c"]
    for rhs in cases:
        # above _FAST_PATH_MIN_ROWS: filled directly after formulaic learns on a sample
        # (plain columns only), else by formulaic
        fast = FixedDesign(rhs, df)
        assert fast._keep is not None and fast._native is None
        assert fast.built_directly == rhs.startswith(("n64", "-1"))
        monkeypatch.setattr(fixed, "_FAST_PATH_MIN_ROWS", 10**9)
        slow = FixedDesign(rhs, df)
        monkeypatch.undo()
        assert not slow.built_directly
        assert fast.column_names == slow.column_names
        np.testing.assert_array_equal(fast.assign, slow.assign)
        # equal values (the direct fill can give -0.0 where formulaic gives 0.0)
        np.testing.assert_array_equal(fast.matrix, slow.matrix)
        np.testing.assert_array_equal(fast.transform(df.iloc[:300]), slow.matrix[:300])
    levels = [f"a{a}:b{b}" for b in ("hi", "lo") for a in ("a1", "a2", "a3")]
    assert FixedDesign("log(pos) + a:b", df).column_names == ["(Intercept)", "log(pos)", *levels]
    assert FixedDesign("n64 + a:b", df).column_names == ["(Intercept)", "n64", *levels]


def test_formulaic_path_with_contrasts(data):
    df = data.copy()
    df["pos"] = df["z"].abs() + 1.0
    # treatment contrasts, or others for a variable not in the formula: R's columns
    for contrasts in (None, {"a": "contr.treatment"}, {"d": "contr.sum"}):
        design = FixedDesign("log(pos) + a:b", df, contrasts)
        assert design._keep is not None
        assert len(design.column_names) == 2 + 6
    # other contrasts: formulaic's coding (R's where formulaic agrees)
    design = FixedDesign("log(pos) + a*b", df, {"a": "contr.sum"})
    assert design._keep is None
    assert design.column_names == ["(Intercept)", "log(pos)", "a1", "a2", "blo", "a1:blo", "a2:blo"]
