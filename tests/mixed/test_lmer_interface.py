"""pg.lmer's result object: refits, objective at θ, predict, simulate, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from lmer_fixtures import load_fixture

import pyglmm as pg
from pyglmm.errors import DataError, FormulaError


@pytest.fixture(scope="module")
def sleep():
    return pg.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def fm1(sleep):
    return pg.lmer("Reaction ~ Days + (Days | Subject)", sleep)


def test_refit_with_new_response_equals_a_fresh_fit(fm1, sleep):
    ynew = fm1.simulate(1, seed=3).iloc[:, 0].to_numpy()
    re = fm1.refit(ynew)
    fresh = pg.lmer("y ~ Days + (Days | Subject)", sleep.assign(y=ynew))
    assert re.objective == pytest.approx(fresh.objective, rel=1e-9)
    np.testing.assert_allclose(re.fixef, fresh.fixef, rtol=1e-5)
    np.testing.assert_allclose(re.theta, fresh.theta, rtol=1e-3, atol=1e-5)
    # the original model is untouched
    assert fm1.objective == pytest.approx(load_fixture("sleepstudy_reml")["objective"], rel=1e-9)


def test_refit_by_ml_matches_lme4_ml(fm1):
    ml = fm1.refit(reml=False)
    ref = load_fixture("sleepstudy_ml")
    assert ml.objective == pytest.approx(ref["objective"], rel=1e-9)
    assert not ml.reml


def test_objective_and_deviance_at_given_parameters(fm1):
    ref = load_fixture("sleepstudy_reml")
    for th, val in zip(ref["devfun_theta"], ref["devfun_value"], strict=True):
        assert fm1.objective_at(np.array(th)) == pytest.approx(val, rel=1e-10)
    # profiled over β: the ML deviance at (θ̂_ML, β̂) is the ML optimum, larger elsewhere
    ml = load_fixture("sleepstudy_ml")
    beta = np.array(list(ml["fixef"].values()))
    th = np.array(ml["theta"])
    assert fm1.deviance_at(th, beta) == pytest.approx(ml["objective"], rel=1e-8)
    assert fm1.deviance_at(th, beta + [1.0, 0.0]) > ml["objective"]
    f = fm1.objective_function()
    assert f(fm1.theta) == pytest.approx(fm1.objective, rel=1e-12)
    fac = fm1.factor_at(fm1.theta)
    assert fac.pwrss() == pytest.approx(fm1.pwrss, rel=1e-12)


def test_predict_matches_lme4(fm1):
    ref = load_fixture("sleepstudy_reml")
    nd = pd.DataFrame(ref["newdata"])
    full = fm1.predict(nd, allow_new_levels=True)
    np.testing.assert_allclose(full, ref["predict_full"], rtol=1e-6)
    fixed = fm1.predict(nd, re_form="NA")
    np.testing.assert_allclose(fixed, ref["predict_fixed"], rtol=1e-6)
    with pytest.raises(DataError, match="new level"):
        fm1.predict(nd)
    np.testing.assert_allclose(fm1.predict(), fm1.fitted.to_numpy(), rtol=1e-12)
    only = fm1.predict(nd.iloc[:2], re_form="~(Days | Subject)")
    np.testing.assert_allclose(only, full[:2], rtol=1e-12)


def test_simulate_is_reproducible_and_has_the_model_variance(fm1):
    a = fm1.simulate(3, seed=11)
    b = fm1.simulate(3, seed=11)
    assert a.shape == (180, 3)
    pd.testing.assert_frame_equal(a, b)
    big = fm1.simulate(400, seed=1).to_numpy()
    # marginal variance at Days = 0: σ² + σ²λ₁₁² (intercept variance)
    day0 = big[fm1.X[:, 1] == 0].ravel()
    vc = fm1.varcorr
    expect = vc["vcov"].iloc[0] + fm1.sigma**2
    assert day0.var() == pytest.approx(expect, rel=0.1)


def test_ranef_and_tidy_frames(fm1):
    re = fm1.ranef
    assert list(re) == ["Subject"]
    assert list(re["Subject"].columns) == ["(Intercept)", "Days"]
    assert re["Subject"].shape == (18, 2)
    cv = fm1.ranef_condvar[0]
    assert cv.shape == (18, 2, 2)
    assert np.all(np.linalg.eigvalsh(cv) > 0)
    t = fm1.tidy()
    assert list(t.columns) == ["term", "estimate", "std_error", "statistic"]
    assert "<pre>" in fm1._repr_html_()


def test_numeric_grouping_column_gives_the_same_fit(sleep):
    as_int = sleep.assign(Subject=sleep["Subject"].astype(int))
    m = pg.lmer("Reaction ~ Days + (Days | Subject)", as_int)
    ref = load_fixture("sleepstudy_reml")
    assert m.objective == pytest.approx(ref["objective"], rel=1e-9)
    assert list(m.ranef["Subject"].index[:3]) == ["308", "309", "310"]


def test_weights_as_column_name_and_rank_deficient_X():
    cb = pg.datasets.load("cbpp")
    m = pg.lmer("incidence/size ~ period + (1 | herd)", cb, weights="size")
    assert m.objective == pytest.approx(load_fixture("cbpp_weighted")["objective"], rel=1e-9)
    dup = cb.assign(p2=(cb["period"] == "2").astype(float))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        m2 = pg.lmer("incidence ~ period + p2 + (1 | herd)", dup)
    assert any("rank deficient" in str(x.message) for x in w)
    assert "p2" not in m2.fixef.index


def test_errors_are_clear(sleep):
    with pytest.raises(FormulaError, match="no random-effects terms"):
        pg.lmer("Reaction ~ Days", sleep)
    with pytest.raises(DataError, match="at least 2 levels"):
        pg.lmer("Reaction ~ Days + (1 | g)", sleep.assign(g="a"))
    with pytest.raises(DataError):
        pg.lmer("Reaction ~ Days + (1 | nothere)", sleep)


def test_no_fixed_effects(sleep):
    m = pg.lmer("Reaction ~ 0 + (1 | Subject)", sleep)
    assert len(m.fixef) == 0
    assert np.isfinite(m.objective)
    assert "No fixed effect coefficients" in str(m.summary())


@pytest.mark.parametrize("name", ["machines_interaction", "machines_crossed", "cbpp_singular"])
def test_gradient_optimizer_reaches_lme4_optimum_even_from_the_boundary(name):
    from pyglmm.formula.frame import model_frame
    from pyglmm.formula.random import random_terms
    from pyglmm.mixed.blocks import LmmBlocks
    from pyglmm.mixed.lmm_objective import LmmObjective
    from pyglmm.mixed.optimizer import optimize_theta

    fx = load_fixture(name)
    data = pg.datasets.load(fx["dataset"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = pg.lmer(fx["formula"], data, optimizer="lbfgsb")
    assert m.optinfo["optimizer"] == "lbfgsb"
    assert m.objective == pytest.approx(fx["objective"], rel=1e-9)
    # θ = 0 is a stationary point of the criterion (even in each scalar θ_k):
    # started there, the boundary restart must still find the optimum
    mf = model_frame(fx["formula"], data)
    terms = random_terms(mf.random, mf.data)
    obj = LmmObjective(LmmBlocks(terms, mf.X, mf.y), True)
    zero = np.zeros(len(terms))
    res = optimize_theta(obj, zero, zero, fun_grad=obj.value_and_gradient)
    assert res.fun == pytest.approx(fx["objective"], rel=1e-9)


@pytest.mark.parametrize("seed,noise", [(1, 3.0), (2, 1.0), (3, 5.0)])
def test_gradient_and_bobyqa_paths_agree_on_crossed_models(seed, noise):
    # a small variance for h: the gradient vanishes at θ_h = 0 (even criterion), where
    # a bounded quasi-Newton run can stop; the unbounded even-function path must not
    rng = np.random.default_rng(seed)
    n, G, H = 20_000, 400, 60
    g = rng.integers(0, G, n)
    h = rng.integers(0, H, n)
    b0 = rng.normal(size=G) * 0.5
    c0 = rng.normal(size=H) * 0.05
    x = rng.normal(size=n)
    y = 1 + 0.3 * x + b0[g] + c0[h] + rng.normal(size=n) * noise
    df = pd.DataFrame({"y": y, "x": x, "g": g, "h": h})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = pg.lmer("y ~ x + (1 | g) + (1 | h)", df)
        b = pg.lmer("y ~ x + (1 | g) + (1 | h)", df, optimizer="bobyqa")
    assert a.optinfo["optimizer"] == "lbfgsb"
    assert a.objective <= b.objective + 1e-9 * abs(b.objective)
    assert a.objective == pytest.approx(b.objective, rel=1e-9)
    np.testing.assert_allclose(a.theta, b.theta, atol=2e-4)
