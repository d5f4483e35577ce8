"""IRLS behaviour: errors, R's warnings, rank deficiency, iteration history, control, start."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from glm_fixtures import dataset, load, refit

import pyglmm as pg
from pyglmm.errors import (
    ConvergenceWarning,
    DataError,
    DataWarning,
    FamilyError,
    PyglmmError,
    RankDeficiencyWarning,
    SeparationWarning,
)
from pyglmm.families import get_family
from pyglmm.glm.irls import fit_irls
from pyglmm.glm.weighted_ls import aliased_columns, dqrdc2_rank


@pytest.fixture(scope="module")
def ceb():
    return pg.datasets.load("ceb")


def test_bad_responses_are_clear_errors(ceb):
    d = ceb.copy()
    d["neg"] = d["y"] - 10
    with pytest.raises(FamilyError, match="negative values are not allowed for the poisson"):
        pg.glm("neg ~ dur", d, family="poisson")
    with pytest.raises(FamilyError, match="0 <= y <= 1"):
        pg.glm("mean ~ dur", d, family="binomial")
    with pytest.raises(FamilyError, match="non-positive values are not allowed for the Gamma"):
        pg.glm("neg ~ dur", d, family="Gamma")
    with pytest.raises(FamilyError, match="inverse.gaussian"):
        pg.glm("neg ~ dur", d, family="inverse.gaussian")
    with pytest.raises(FamilyError, match="unknown family"):
        pg.glm("y ~ dur", d, family="poison")
    with pytest.raises(FamilyError, match="unknown link"):
        pg.glm("y ~ dur", d, family="poisson", link="logitt")
    with pytest.raises(FamilyError, match="not available for the poisson family"):
        pg.glm("round(y) ~ dur", d, family="poisson", link="logit")
    with pytest.raises(FamilyError, match="theta= is only"):
        pg.glm("round(y) ~ dur", d, family="poisson", theta=2)
    with pytest.raises(DataError):
        pg.glm("round(y) ~ nothere", d, family="poisson")
    with pytest.raises(PyglmmError, match="use pg.glmer"):
        pg.glm("round(y) ~ dur + (1 | res)", d, family="poisson")
    with pytest.raises(PyglmmError, match="no response"):
        pg.glm("~ dur", d, family="poisson")
    with pytest.raises(PyglmmError, match="length of 'start'"):
        pg.glm("round(y) ~ dur", d, family="poisson", start=[0.0, 1.0])
    with pytest.raises(PyglmmError, match="unknown control"):
        pg.glm("round(y) ~ dur", d, family="poisson", control={"tol": 1})


def test_non_integer_counts_warn_but_fit(ceb):
    with pytest.warns(DataWarning, match="non-integer counts"):
        m = pg.glm("y ~ dur + offset(log(n))", ceb, family="poisson")
    assert m.converged
    d = ceb.assign(p=ceb["mean"] / 10)
    with pytest.warns(DataWarning, match="non-integer #successes"):
        pg.glm("p ~ dur", d, family="binomial", weights="n")


def test_rank_deficiency_keeps_first_of_collinear_columns(ceb):
    with pytest.warns(RankDeficiencyWarning, match=r"1 coefficient\(s\) not defined.*: n"):
        m = pg.glm("round(y) ~ res + I(n * 2) + n", ceb, family="poisson")
    assert list(m.aliased) == [False, False, False, False, True]
    assert np.isnan(m.coef["n"]) and np.isnan(m.se["n"])
    assert m.rank == 4 and m.model_matrix_rank.shape == (70, 4)
    assert "(1 not defined because of singularities)" in str(m.summary())
    with pytest.warns(RankDeficiencyWarning, match="rank-deficient fit may be misleading"):
        m.predict(ceb.iloc[:3])


def test_dqrdc2_limited_pivoting_moves_aliased_columns_to_the_end():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(20), rng.standard_normal(20)
    X = np.column_stack([np.ones(20), a, 2 * a + 1, b, np.zeros(20), a + b])
    rank, pivot = dqrdc2_rank(X, 1e-11)
    assert rank == 3
    assert list(pivot[:3]) == [0, 1, 3]
    assert set(pivot[3:]) == {2, 4, 5}
    assert list(aliased_columns(X, 1e-11)) == [False, False, True, False, True, True]


def test_near_collinear_columns_are_kept_as_r_keeps_them():
    rng = np.random.default_rng(4)
    x = rng.standard_normal(200)
    X = np.column_stack([np.ones(200), x, x + 1e-6 * rng.standard_normal(200)])
    y = rng.poisson(np.exp(0.2 + 0.1 * x)).astype(float)
    fit = fit_irls(X, y, get_family("poisson"))
    assert fit.rank == 3  # norm ratio 1e-6 > R's tolerance 1e-11: not aliased


def test_separation_warns(ceb):
    ref = load("separation")
    data = dataset(ref)
    with pytest.warns(SeparationWarning) as rec:
        m = pg.glm("y ~ x + z", data, family="binomial")
    messages = [str(w.message) for w in rec]
    assert "glm.fit: fitted probabilities numerically 0 or 1 occurred" in messages
    assert any("completely separated" in msg for msg in messages)
    assert m.deviance < 1e-6
    assert m.iterations == ref["iter"]


def test_non_convergence_warns_with_r_message(ceb):
    with pytest.warns(ConvergenceWarning, match="glm.fit: algorithm did not converge"):
        m = pg.glm("round(y) ~ dur + res + educ", ceb, family="poisson", control={"maxit": 2})
    assert not m.converged and m.iterations == 2


def test_history_records_every_iteration(ceb):
    m = refit("ceb_poisson")
    h = m.history
    assert list(h.columns[:2]) == ["iteration", "deviance"]
    assert list(h["iteration"]) == list(range(1, m.iterations + 1))
    assert h["deviance"].iloc[-1] == pytest.approx(m.deviance, rel=1e-15)
    np.testing.assert_allclose(h.iloc[-1, 2:].to_numpy(dtype=float), m.coef.to_numpy())
    assert np.all(np.diff(h["deviance"]) <= 1e-9)


def test_control_epsilon_and_start(ceb):
    loose = pg.glm(
        "round(y) ~ dur + res + educ", ceb, family="poisson", offset="log(n)",
        control={"epsilon": 1e-3},
    )  # fmt: skip
    tight = pg.glm(
        "round(y) ~ dur + res + educ", ceb, family="poisson", offset="log(n)",
        control=pg.glm_control(epsilon=1e-14, maxit=50),
    )  # fmt: skip
    assert loose.iterations < tight.iterations
    started = pg.glm(
        "round(y) ~ dur + res + educ", ceb, family="poisson", offset="log(n)",
        start=tight.coef.to_numpy(),
    )  # fmt: skip
    assert started.iterations <= 2
    np.testing.assert_allclose(started.coef, tight.coef, rtol=1e-8)


def test_step_halving_when_mu_leaves_its_domain():
    # identity-link Poisson: full Newton steps give mu <= 0; R halves the step back towards
    # the previous coefficients, warns, and ends on the boundary (R: boundary = TRUE, 25
    # iterations, intercept -0.511 = -slope)
    x = np.arange(1.0, 11.0)
    y = np.array([0, 0, 1, 0, 2, 1, 3, 2, 5, 9], dtype=float)
    d = pd.DataFrame({"x": x, "y": y})
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        m = pg.glm("y ~ x", d, family="poisson", link="identity", start=[0.5, 0.1])
    messages = {str(w.message) for w in rec}
    assert "step size truncated: out of bounds" in messages
    assert "glm.fit: algorithm stopped at boundary value" in messages
    assert m.boundary
    assert np.all(m.fitted > 0)
    assert m.coef["(Intercept)"] == pytest.approx(-m.coef["x"], rel=1e-6)
    assert m.coef["x"] == pytest.approx(0.511, abs=2e-3)


def test_zero_prior_weights_drop_out_of_df(ceb):
    w = np.ones(70)
    w[:5] = 0
    m = pg.glm("round(y) ~ dur + res", ceb, family="poisson", weights=w)
    sub = pg.glm("round(y) ~ dur + res", ceb.iloc[5:], family="poisson")
    assert m.df_resid == sub.df_resid == 70 - 5 - m.rank
    np.testing.assert_allclose(m.coef, sub.coef, rtol=1e-8)
    assert m.deviance == pytest.approx(sub.deviance, rel=1e-10)


def test_no_intercept_null_deviance(ceb):
    m = pg.glm("round(y) ~ 0 + dur", ceb, family="poisson", offset="log(n)")
    # R: without an intercept the null model is mu = linkinv(offset)
    fam = m.family
    mu0 = fam.linkinv(np.log(ceb["n"].to_numpy(dtype=float)))
    assert m.null_deviance == pytest.approx(np.sum(fam.dev_resids(m.y, mu0, m.prior_weights)))
    assert m.df_null == 70


def test_refit_without_and_leave_one_out_cooks(ceb):
    m = refit("ceb_gamma_log")
    keep = np.ones(m.nobs, dtype=bool)
    keep[3] = False
    r = m.refit_without(keep)
    assert r.nobs == m.nobs - 1
    direct = pg.glm(
        "mean ~ dur + res + educ", ceb.drop(index=ceb.index[3]), family="Gamma", link="log",
        weights="n",
    )  # fmt: skip
    np.testing.assert_allclose(r.coef, direct.coef, rtol=1e-10)
    # the diagnostics mixin works on our result
    res = m.residuals("deviance")
    assert len(res) == m.nobs
    assert m.cooks_distance().shape == (m.nobs,)


def test_empty_model_fits_the_offset_only(ceb):
    m = pg.glm("round(y) ~ 0 + offset(log(n))", ceb, family="poisson")
    assert m.rank == 0 and len(m.coef) == 0
    np.testing.assert_allclose(m.fitted, ceb["n"].to_numpy(dtype=float))


def test_halving_on_deviance_increase_converges_where_r_oscillates(ceb):
    # identity-link Poisson with an optimum on the boundary: R's glm.fit oscillates for 25
    # iterations (fixture ceb_poisson_identity, converged = FALSE); with glm2-style halving on
    # deviance increases the deviance decreases monotonically and converges lower than R's
    ref = load("ceb_poisson_identity")
    assert not ref["converged"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = pg.glm(
            "round(y) ~ n + res", ceb, family="poisson", link="identity",
            control=pg.glm_control(halve_on_increase=True, maxit=100),
        )  # fmt: skip
    assert m.converged
    assert np.all(np.diff(m.history["deviance"]) <= 1e-9)
    assert m.deviance < ref["deviance"]


def test_response_checks_with_missing_values():
    from pyglmm.glm.model import _all_integers, _any_outside, check_response

    y = np.array([np.nan, 2.0, 0.5])
    assert _any_outside(y, 0.0, 1.0) and not _any_outside(y, 0.0, np.inf)
    assert not _any_outside(np.zeros(0), 0.0, 1.0)
    assert _all_integers(np.array([0.0, 3.0])) and not _all_integers(y)
    with pytest.raises(FamilyError, match="0 <= y <= 1"):
        check_response(get_family("binomial"), y, None)
    with pytest.raises(FamilyError, match="negative values"):
        check_response(get_family("poisson"), np.array([np.nan, -1.0]), None)
    with pytest.warns(DataWarning, match="non-integer counts"):
        check_response(get_family("poisson"), np.array([np.nan, 1.0]), None)
