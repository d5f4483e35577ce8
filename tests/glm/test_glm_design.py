"""Model-matrix strategies of the IRLS loop: dense BLAS and the structured factor block."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest

import pyglmm as pg
from pyglmm.families import get_family
from pyglmm.formula.frame import model_frame
from pyglmm.glm.design import DenseDesign, FactorBlockDesign, design_of_frame, make_design
from pyglmm.glm.irls import fit_irls
from pyglmm.glm.weighted_ls import weighted_crossprod, weighted_gram


def factor_data(n=3000, levels=60, seed=5):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, levels, n)
    x = rng.standard_normal(n)
    a = rng.uniform(-0.5, 0.5, levels)
    y = rng.poisson(np.exp(0.2 + 0.3 * x + a[codes])).astype(float)
    f = pd.Categorical.from_codes(codes, [f"L{i:03d}" for i in range(levels)])
    return pd.DataFrame({"y": y, "x": x, "f": f, "g": rng.integers(0, 3, n).astype(str)})


def test_blocked_crossprod_equals_plain_crossprod():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10_007, 7))
    w = rng.random(10_007)
    v = rng.standard_normal(10_007)
    A, r = weighted_gram(X, w, v)
    B, Xs = weighted_crossprod(X, np.sqrt(w))
    np.testing.assert_allclose(np.triu(A), np.triu(B), rtol=1e-12)
    np.testing.assert_allclose(r, X.T @ v, rtol=1e-12)


@pytest.mark.parametrize("formula", ["y ~ x + f + g", "y ~ 0 + f + x", "y ~ f:x + x"])
def test_factor_block_design_agrees_with_dense(formula):
    data = factor_data()
    mf = model_frame(formula, data)
    design = make_design(mf.X, mf.data, mf.terms, mf.assign, mf.column_names)
    if formula == "y ~ f:x + x":  # an interaction is not an indicator block
        assert isinstance(design, DenseDesign)
        return
    assert isinstance(design, FactorBlockDesign)
    rng = np.random.default_rng(1)
    sw, u, beta = rng.random(len(data)), rng.standard_normal(len(data)), rng.random(mf.X.shape[1])
    A1, r1 = design.crossprod(sw, u)
    A2, r2 = DenseDesign(mf.X).crossprod(sw, u)
    np.testing.assert_allclose(np.triu(A1), np.triu(A2), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(r1, r2, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(design.matvec(beta), mf.X @ beta, rtol=1e-12)
    np.testing.assert_array_equal(design.dense(), mf.X)
    fam = get_family("poisson")
    f1 = fit_irls(design, mf.y, fam)
    f2 = fit_irls(mf.X, mf.y, fam)
    np.testing.assert_allclose(f1.coef, f2.coef, rtol=1e-9, atol=1e-12)
    assert f1.iterations == f2.iterations


def test_glm_with_a_many_level_factor_uses_the_structured_design():
    data = factor_data()
    m = pg.glm("y ~ x + f", data, family="poisson")
    assert m.converged and len(m.coef) == 61
    dense = fit_irls(m.model_matrix, m.y, m.family)
    np.testing.assert_allclose(m.coef, dense.coef, rtol=1e-9, atol=1e-12)


def test_a_many_level_factor_fit_drops_x_and_rebuilds_it_exactly():
    """The result does not hold the mostly-zero dense X; model_matrix rebuilds it bit for
    bit, and the diagnostics that need X (hat values, Cook's distance) still work."""
    data = factor_data()
    m = pg.glm("y ~ x + f + g", data, family="poisson")
    assert m.frame.X is None and m.frame.fixed.matrix is None
    X = model_frame("y ~ x + f + g", data).X
    np.testing.assert_array_equal(m.model_matrix, X)
    sw = np.sqrt(
        m.working_weights.to_numpy()
        if hasattr(m.working_weights, "to_numpy")
        else m.working_weights
    )
    Q, _ = np.linalg.qr(X * sw[:, None])
    np.testing.assert_allclose(m.hat_values().to_numpy(), np.sum(Q * Q, axis=1), rtol=1e-8)
    assert np.all(np.isfinite(m.cooks_distance().to_numpy()))


def test_a_matrix_that_only_looks_like_a_factor_block_stays_dense():
    data = factor_data()
    mf = model_frame("y ~ x + f", data)
    X = mf.X.copy()
    X[5, -1] = 0.5  # break one indicator
    assert isinstance(make_design(X, mf.data, mf.terms, mf.assign, mf.column_names), DenseDesign)


@pytest.mark.parametrize(
    "formula", ["y ~ x + f + g", "y ~ 0 + f + x", "y ~ g + f + x:g", "y ~ f + f:x"]
)
def test_frame_leaves_the_factor_block_out_and_the_fit_is_the_dense_fit(formula):
    """With ``indicator_block_min`` the frame never forms the indicator columns: the other
    columns are X without them, the design built from the level codes is the dense X, and
    the fit equals the IRLS fit on the dense matrix."""
    data = factor_data()
    full = model_frame(formula, data)
    mf = model_frame(formula, data, indicator_block_min=30)
    assert mf.X is None
    block = mf.fixed.indicator_block
    assert block.variable == "f" and mf.column_names == full.column_names
    cols = np.arange(block.first, block.first + block.size)
    assert all(full.column_names[j].startswith("f") for j in cols)
    np.testing.assert_array_equal(mf.fixed.other_columns, np.delete(full.X, cols, axis=1))
    design = design_of_frame(mf)
    assert isinstance(design, FactorBlockDesign)
    np.testing.assert_array_equal(design.dense(), full.X)
    m = pg.glm(formula, data, family="poisson")
    assert isinstance(m._factor_design, FactorBlockDesign)
    dense = fit_irls(full.X, full.y, get_family("poisson"))
    np.testing.assert_allclose(m.coef.to_numpy(), dense.coef, rtol=1e-9, atol=1e-12)
    assert m.iterations == dense.iterations


@pytest.mark.parametrize(
    ("formula", "contrasts"),
    [
        ("y ~ x + f:x", None),  # indicators multiplied by x: not a block
        ("y ~ x + f", {"f": "contr.sum"}),  # contrast columns, not indicators
        ("y ~ x + g", None),  # too few levels
    ],
)
def test_frames_without_an_indicator_block_keep_x(formula, contrasts):
    data = factor_data()
    mf = model_frame(formula, data, contrasts=contrasts, indicator_block_min=30)
    assert mf.fixed.indicator_block is None
    np.testing.assert_array_equal(mf.X, model_frame(formula, data, contrasts=contrasts).X)


def test_the_largest_indicator_block_is_left_out():
    data = factor_data()
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 40, len(data))
    data["h"] = pd.Categorical.from_codes(codes, [f"H{i}" for i in range(40)])
    mf = model_frame("y ~ h + x + f", data, indicator_block_min=30)
    assert mf.fixed.indicator_block.variable == "f" and mf.fixed.indicator_block.size == 59
    full = model_frame("y ~ h + x + f", data)
    np.testing.assert_array_equal(design_of_frame(mf).dense(), full.X)


def test_block_elimination_falls_back_to_r_rank_rule():
    """Where block elimination cannot decide the rank as R does (a level whose rows all
    have zero weight, a numeric column collinear with others), the step factors X'WX in
    R's column order: the same aliased coefficients (NA) as the dense fit."""
    data = factor_data()
    data["x2"] = 2.0 * data["x"]
    weights = np.ones(len(data))
    weights[(data["f"] == "L007").to_numpy()] = 0.0
    with pytest.warns(pg.errors.RankDeficiencyWarning, match="x2, fL007"):
        m = pg.glm("y ~ x + x2 + f", data, family="poisson", weights=weights)
    assert isinstance(m._factor_design, FactorBlockDesign)
    X = model_frame("y ~ x + x2 + f", data).X
    dense = fit_irls(X, data["y"].to_numpy(), get_family("poisson"), weights=weights, warn=False)
    aliased = np.isnan(m.coef.to_numpy())
    np.testing.assert_array_equal(aliased, np.isnan(dense.coef))
    assert m.coef.index[aliased].tolist() == ["x2", "fL007"]
    np.testing.assert_allclose(m.coef.to_numpy()[~aliased], dense.coef[~aliased], rtol=1e-9)


def test_direct_step_solves_the_normal_equations():
    data = factor_data()
    mf = model_frame("y ~ x + g + f", data, indicator_block_min=30)
    design = design_of_frame(mf)
    rng = np.random.default_rng(7)
    w, v = rng.random(len(data)) + 0.1, rng.standard_normal(len(data))
    beta = design.direct_step(w, v)
    X = design.dense()
    np.testing.assert_allclose(X.T @ (w * (X @ beta)), X.T @ v, rtol=1e-9, atol=1e-9)
    w[design.codes == 3] = 0.0  # a level without weight: not decided here
    assert design.direct_step(w, v) is None


@pytest.mark.parametrize(
    ("family", "link"),
    [("binomial", "logit"), ("binomial", "probit"), ("Gamma", "log"), ("gaussian", "identity")],
)
def test_factor_block_fits_equal_dense_fits_across_families(family, link):
    """The block path (frame without the indicator columns, direct steps, R's-order factor
    at the end) against IRLS on the dense X, with prior weights and an offset: the same
    coefficients, standard errors, deviance and iterations."""
    data = factor_data()
    rng = np.random.default_rng(11)
    n = len(data)
    data["off"] = rng.uniform(-0.2, 0.2, n)
    weights = rng.integers(1, 4, n).astype(float)  # integer: binomial trials
    if family == "binomial":
        p = 1 / (1 + np.exp(-(0.3 * data["x"] + 0.1 * data["f"].cat.codes / 60)))
        data["y"] = (rng.random(n) < p).astype(float)
    elif family == "Gamma":
        data["y"] = rng.gamma(2.0, np.exp(0.2 + 0.3 * data["x"]) / 2.0)
    m = pg.glm("y ~ x + g + f", data, family=family, link=link, weights=weights, offset="off")
    assert isinstance(m._factor_design, FactorBlockDesign)
    X = model_frame("y ~ x + g + f", data).X
    fam = get_family(family, link)
    dense = fit_irls(X, data["y"].to_numpy(), fam, weights=weights, offset=data["off"].to_numpy())
    np.testing.assert_allclose(m.coef.to_numpy(), dense.coef, rtol=1e-8, atol=1e-10)
    assert m.iterations == dense.iterations
    np.testing.assert_allclose(m.deviance, dense.deviance, rtol=1e-12)
    U = dense.chol
    se = np.sqrt(np.diag(np.linalg.inv(U.T @ U)) * m.dispersion)
    np.testing.assert_allclose(m.se.to_numpy(), se, rtol=1e-7)


def test_glm_nb_with_a_many_level_factor_uses_the_block_design():
    """glm.nb's alternation (IRLS for beta, theta.ml for theta) runs on the factor block
    too: the same theta, coefficients and log-likelihood as on the dense X."""
    data = factor_data()
    rng = np.random.default_rng(4)
    data["y"] = rng.negative_binomial(3, 3 / (3 + np.exp(0.5 + 0.3 * data["x"])))
    m = pg.glm("y ~ x + f", data, family="negative.binomial")
    assert isinstance(m._factor_design, FactorBlockDesign) and m.frame.X is None
    with pytest.MonkeyPatch.context() as mp:  # the dense path: no indicator block
        for module in ("pyglmm.glm.model", "pyglmm.glm.design"):
            mp.setattr(importlib.import_module(module), "MIN_FACTOR_COLUMNS", 10**9)
        dense = pg.glm("y ~ x + f", data, family="negative.binomial")
    assert dense._factor_design is None and dense.frame.X is not None
    np.testing.assert_allclose(m.theta, dense.theta, rtol=1e-8)
    np.testing.assert_allclose(m.coef.to_numpy(), dense.coef.to_numpy(), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(m.loglik, dense.loglik, rtol=1e-10)
