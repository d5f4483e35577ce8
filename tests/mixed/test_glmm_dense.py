"""The dense small-model GLMM engine (pyglmm.mixed.glmm_dense) against the general engine
(Pirls + glmm_gradient) and against finite differences of itself."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pyglmm as pg
import pyglmm.mixed.glmer as glmer_module
from pyglmm.mixed.glmm_dense import DenseLaplace, dense_applicable
from pyglmm.mixed.glmm_gradient import laplace_and_gradient
from pyglmm.mixed.pirls import PirlsError

CB = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def cbpp() -> pd.DataFrame:
    df = pg.datasets.load("cbpp").copy()
    df["obs"] = pd.Categorical([str(i) for i in range(len(df))])
    return df


def simulated(seed: int, n: int, ngroups: int, sd: float, family: str, slope: bool = False):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, ngroups, n)
    x = rng.standard_normal(n)
    b = rng.normal(0.0, sd, ngroups)
    eta = -0.3 + 0.6 * x + (b[g] * x if slope else b[g])
    if family == "binomial":
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    else:
        y = rng.poisson(np.exp(eta)).astype(float)
    return pd.DataFrame({"y": y, "x": x, "g": pd.Categorical([f"g{i:03d}" for i in g])})


def fit(formula, data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pg.glmer(formula, data, **kw)


def fit_general(formula, data, monkeypatch, **kw):
    """The same fit through the general engine."""
    with monkeypatch.context() as mp:
        mp.setattr(glmer_module, "dense_applicable", lambda pirls: False)
        return fit(formula, data, **kw)


@pytest.fixture(scope="module")
def cbpp_fit():
    return fit(CB, cbpp(), family="binomial")


@pytest.fixture(scope="module")
def cbpp_obs_fit():
    return fit(CB + " + (1 | obs)", cbpp(), family="binomial")


@pytest.fixture(scope="module")
def poisson_slope_fit():
    return fit("y ~ x + (0 + x | g)", simulated(3, 400, 15, 0.5, "poisson", True), family="poisson")


def test_applicability():
    df = cbpp()
    assert dense_applicable(fit(CB, df, family="binomial")._pirls)
    assert dense_applicable(fit(CB + " + (1 | obs)", df, family="binomial")._pirls)
    # non-canonical link, and a vector-valued term: the general engine
    assert not dense_applicable(fit(CB, df, family="binomial", link="probit")._pirls)
    sim = simulated(1, 200, 10, 0.5, "poisson")
    assert not dense_applicable(fit("y ~ x + (x | g)", sim, family="poisson")._pirls)


@pytest.mark.parametrize("which", ["cbpp_fit", "cbpp_obs_fit", "poisson_slope_fit"])
def test_value_and_gradient_match_the_general_engine(which, request):
    m = request.getfixturevalue(which)
    pl = m._pirls
    k = len(m.theta)
    x = np.r_[m.theta, m.fixef.to_numpy()] * 1.2
    dense = DenseLaplace(pl)
    v, g = dense.value_and_gradient(x)
    with pl.precise():
        v_ref, g_ref = laplace_and_gradient(pl, x[:k], x[k:])
    assert v == pytest.approx(v_ref, rel=1e-12)
    np.testing.assert_allclose(g, g_ref, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("which", ["cbpp_fit", "cbpp_obs_fit"])
def test_mode_sensitivities_are_derivatives_of_the_modes(which, request):
    m = request.getfixturevalue(which)
    dense = DenseLaplace(m._pirls)
    k = len(m.theta)
    x = np.r_[m.theta, m.fixef.to_numpy()] * 0.9
    dense.modes(x[:k], x[k:])
    u0, J = dense.u.copy(), dense.sensitivity()
    h = 1e-6
    for j in range(x.size):
        e = np.zeros(x.size)
        e[j] = h
        dense.modes((x + e)[:k], (x + e)[k:], u0)
        up = dense.u.copy()
        dense.modes((x - e)[:k], (x - e)[k:], u0)
        np.testing.assert_allclose((up - dense.u) / (2 * h), J[:, j], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("which", ["cbpp_fit", "poisson_slope_fit"])
@pytest.mark.parametrize("scale", [1.0, 1.3, -0.8])
def test_exact_hessian_matches_differences_of_the_gradient(which, scale, request):
    m = request.getfixturevalue(which)
    dense = DenseLaplace(m._pirls)
    x = np.r_[m.theta * scale, m.fixef.to_numpy()]
    _, g = dense.value_and_gradient(x)
    J = dense.sensitivity()
    H = dense.hessian_single(J)
    H_fd = dense.hessian(x, g, np.full(x.size, -np.inf), dense.u.copy(), J, delta=1e-5)
    np.testing.assert_allclose(H, H_fd, rtol=1e-7, atol=1e-7 * np.abs(H_fd).max())


def test_joint_modes_match_the_general_nagq0_deviance(cbpp_fit):
    pl = cbpp_fit._pirls
    fam = pl.resp.family
    eta0 = fam.linkfun(glmer_module._mustart(fam, pl.resp.y, pl.resp.wt))
    for theta in ([1.0], [0.3]):
        dense = DenseLaplace(pl)
        v = dense.joint_modes(np.array(theta), eta0)
        pl.set_start(eta0)
        with pl.precise():
            v_ref = pl.laplace(np.array(theta))
        assert v == pytest.approx(v_ref, rel=1e-10)
        np.testing.assert_allclose(dense.beta, pl.state.beta, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize(
    "name",
    ["cbpp", "cbpp_weights", "cbpp_obs", "poisson_slope_only", "binomial_many_levels"],
)
def test_dense_fit_equals_general_fit(name, monkeypatch):
    cases = {
        "cbpp": (CB, cbpp, {"family": "binomial"}),
        "cbpp_weights": (
            "incidence / size ~ period + (1 | herd)",
            cbpp,
            {"family": "binomial", "weights": "size"},
        ),
        "cbpp_obs": (CB + " + (1 | obs)", cbpp, {"family": "binomial"}),
        "poisson_slope_only": (
            "y ~ x + (0 + x | g)",
            lambda: simulated(3, 400, 15, 0.5, "poisson", True),
            {"family": "poisson"},
        ),
        "binomial_many_levels": (
            "y ~ x + (1 | g)",
            lambda: simulated(6, 3000, 800, 1.0, "binomial"),
            {"family": "binomial"},
        ),
    }
    formula, data, kw = cases[name]
    df = data()
    a = fit(formula, df, **kw)
    b = fit_general(formula, df, monkeypatch, **kw)
    assert dense_applicable(a._pirls)
    assert a.objective <= b.objective + 1e-9 * abs(b.objective)
    assert a.objective == pytest.approx(b.objective, rel=1e-11)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-6)
    np.testing.assert_allclose(a.fixef.to_numpy(), b.fixef.to_numpy(), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(a.se.to_numpy(), b.se.to_numpy(), rtol=1e-6)
    assert a.hessian_used and b.hessian_used
    assert a.deviance == pytest.approx(b.deviance, rel=1e-6)
    np.testing.assert_allclose(a.fitted.to_numpy(), b.fitted.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(a.vcov_rx.to_numpy(), b.vcov_rx.to_numpy(), rtol=1e-5)


def test_singular_fit_ends_on_the_bound_with_lme4s_message(monkeypatch):
    df = simulated(7, 200, 8, 0.0, "poisson")
    with pytest.warns(pg.errors.SingularFitWarning, match="boundary"):
        a = pg.glmer("y ~ x + (1 | g)", df, family="poisson")
    b = fit_general("y ~ x + (1 | g)", df, monkeypatch, family="poisson")
    assert a.theta[0] == 0.0 and b.theta[0] == 0.0
    assert a.singular and not a.hessian_used
    assert a.objective == pytest.approx(b.objective, rel=1e-12)
    np.testing.assert_allclose(a.se.to_numpy(), b.se.to_numpy(), rtol=1e-6)


def test_newton_from_a_negative_theta_returns_the_mirror_optimum(cbpp_fit):
    pl = cbpp_fit._pirls
    x_opt = np.r_[cbpp_fit.theta, cbpp_fit.fixef.to_numpy()]
    dense = DenseLaplace(pl)
    x0 = x_opt.copy()
    x0[0] = -0.5
    dense.modes(x0[:1], x0[1:])
    opt, g, H, done = dense.newton_single(x0)
    assert done and opt.x[0] > 0
    np.testing.assert_allclose(opt.x, x_opt, rtol=1e-6)
    assert opt.fun == pytest.approx(cbpp_fit.objective, rel=1e-12)
    # gradient and Hessian are those at the (positive) optimum
    _, g_pos = dense.value_and_gradient(opt.x)
    np.testing.assert_allclose(g, g_pos, atol=1e-4)
    np.testing.assert_allclose(H, dense.hessian_single(), rtol=1e-4)


def test_lbfgs_fallback_when_newton_fails(monkeypatch, cbpp_fit):
    def failing(self, x0, **kw):
        raise PirlsError("forced")

    monkeypatch.setattr(DenseLaplace, "newton_single", failing)
    m = fit(CB, cbpp(), family="binomial")
    assert m.objective == pytest.approx(cbpp_fit.objective, rel=1e-11)
    np.testing.assert_allclose(m.se.to_numpy(), cbpp_fit.se.to_numpy(), rtol=1e-6)
    assert m.optinfo["nevals"] > 15  # L-BFGS-B and the finite-difference Hessian


def test_pandas_views_are_built_on_first_use(cbpp_fit):
    m = cbpp_fit
    assert list(m.fixef.index) == ["(Intercept)", "period2", "period3", "period4"]
    np.testing.assert_allclose(m.se.to_numpy() ** 2, np.diag(m.vcov.to_numpy()), rtol=1e-12)
    assert m.fixef is m.fixef  # cached
    assert m.vcov_rx.shape == (4, 4)


def test_lbfgs_optimizer_option_takes_lbfgs_on_the_dense_path(cbpp_fit):
    m = fit(CB, cbpp(), family="binomial", optimizer="lbfgs")
    assert m.objective == pytest.approx(cbpp_fit.objective, rel=1e-11)
    np.testing.assert_allclose(m.se.to_numpy(), cbpp_fit.se.to_numpy(), rtol=1e-6)
    assert m.optinfo["nevals"] > 15
    assert cbpp_fit.optinfo["nevals"] < 12  # Newton with the exact Hessian


def test_start_values_are_used(cbpp_fit):
    x = np.r_[cbpp_fit.theta, cbpp_fit.fixef.to_numpy()]
    m = fit(CB, cbpp(), family="binomial", start={"theta": x[:1] * 1.01, "fixef": x[1:] * 1.01})
    assert m.objective == pytest.approx(cbpp_fit.objective, rel=1e-11)
    assert m.optinfo["nevals"] <= cbpp_fit.optinfo["nevals"]


def test_em_start_matches_the_general_engines_modes(cbpp_fit):
    pl = cbpp_fit._pirls
    fam = pl.resp.family
    eta0 = fam.linkfun(glmer_module._mustart(fam, pl.resp.y, pl.resp.wt))
    dense = DenseLaplace(pl)
    dense.joint_modes(np.ones(1), eta0)
    pl.set_start(eta0)
    with pl.precise():
        pl.laplace(np.ones(1))
    u, H = pl.state.u0, pl.factor.T[:, 0, 0]  # modes and H = 1 + θ²ZᵀWZ (one term)
    expected = np.sqrt(np.mean(u * u + 1.0 / H))
    assert dense.em_theta(np.ones(1)) == pytest.approx(expected, rel=1e-7)
    # the EM step moves θ = 1 towards the optimum
    assert abs(dense.em_theta(np.ones(1)) - cbpp_fit.theta[0]) < 1.0 - cbpp_fit.theta[0]


def _random_case(seed: int, index: int):
    """The ``index``-th of a stream of random one-term GLMMs (binomial and Poisson, with
    factors, slopes, offsets and trials), as used to compare the engines."""
    rng = np.random.default_rng(seed)
    for k in range(index + 1):
        family = ["binomial", "poisson"][k % 2]
        n, ng = int(rng.integers(30, 1500)), int(rng.integers(3, 80))
        sd = float(rng.choice([0.0, 0.02, 0.1, 0.3, 0.7, 1.5, 3.0]))
        g, x, f2 = rng.integers(0, ng, n), rng.standard_normal(n), rng.integers(0, 3, n)
        slope = rng.random() < 0.25
        b = rng.normal(0, sd, ng)
        off = rng.normal(0, 0.3, n) if rng.random() < 0.3 else np.zeros(n)
        eta = rng.normal(-0.5, 0.5) + rng.normal(0, 1) * x + 0.3 * f2 + off
        eta = eta + (b[g] * x if slope else b[g])
        trials = int(rng.choice([1, 1, 3, 10]))
        if family == "binomial":
            y = rng.binomial(trials, 1 / (1 + np.exp(-eta))) / trials
        else:
            y = rng.poisson(np.exp(eta)).astype(float)
    df = pd.DataFrame(
        {
            "y": y,
            "x": x,
            "f": pd.Categorical(f2.astype(str)),
            "g": pd.Categorical([f"g{i}" for i in g]),
            "w": float(trials),
            "o": off,
        }
    )
    formula = "y ~ x + f + " + ("(0 + x | g)" if slope else "(1 | g)")
    kw = {"family": family}
    if family == "binomial" and trials > 1:
        kw["weights"] = "w"
    if np.any(off != 0):
        formula += " + offset(o)"
    return formula, df, kw


def test_large_counts_newton_stops_at_the_rounding_level(monkeypatch):
    # Poisson means up to ~6e4: the deviance carries rounding errors of ~1e-8, which the
    # line search cannot resolve; Newton stops at a decrement of that size
    formula, df, kw = _random_case(1, 33)
    a = fit(formula, df, **kw)
    b = fit_general(formula, df, monkeypatch, **kw)
    assert a.optinfo["nevals"] <= 8
    assert a.objective == pytest.approx(b.objective, rel=1e-11)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-4)


def test_exact_hessian_standard_errors_in_an_ill_conditioned_model():
    # large Poisson counts: central differences of the deviance itself (lme4's deriv12) at
    # a step large enough for its rounding errors agree with the exact Hessian
    from pyglmm.mixed.convergence import deriv12

    formula, df, kw = _random_case(1, 35)
    m = fit(formula, df, **kw)
    dense = DenseLaplace(m._pirls)
    x = np.r_[m.theta, m.fixef.to_numpy()]
    with np.errstate(all="ignore"):
        dense.modes(x[:1], x[1:])
    u = dense.u.copy()

    def f(z):
        with np.errstate(all="ignore"):  # PIRLS candidates may overflow (as in glmer)
            return dense.modes(z[:1], z[1:], u)

    _, H, _ = deriv12(f, x, f(x), np.full(x.size, -np.inf), delta=1e-3)
    se = np.sqrt(np.diag(2.0 * np.linalg.inv(H))[1:])
    np.testing.assert_allclose(m.se.to_numpy(), se, rtol=1e-3)


def test_pirls_converges_from_zero_modes_with_large_counts():
    # Poisson means up to ~1e7: the penalized deviance carries rounding errors of ~1e-7, so
    # near the modes Newton steps look like increases; a tiny full step is still taken and
    # the modes are the same from any start
    formula, df, kw = _random_case(2, 39)
    m = fit(formula, df, **kw)
    dense = DenseLaplace(m._pirls)
    x = np.r_[m.theta, m.fixef.to_numpy()]
    with np.errstate(all="ignore"):
        v0, g0 = dense.value_and_gradient(x, np.zeros(dense.q))
        u0 = dense.u.copy()
        v1, g1 = dense.value_and_gradient(x, u0 + 1e-3)
    np.testing.assert_allclose(dense.u, u0, atol=1e-9)
    assert v1 == pytest.approx(v0, rel=1e-12)
    np.testing.assert_allclose(g1, g0, atol=1e-6 * np.abs(g0).max() + 1e-6)


@pytest.mark.parametrize("case", [(1, 35), (0, 9)])
def test_general_engine_standard_errors_agree_with_the_exact_hessian(case, monkeypatch):
    # large Poisson means: the general engine's PIRLS must not stop on a step halved because
    # of the deviance's rounding errors (its finite-difference Hessian was off by up to 8%)
    formula, df, kw = _random_case(*case)
    a = fit(formula, df, **kw)
    b = fit_general(formula, df, monkeypatch, **kw)
    np.testing.assert_allclose(b.se.to_numpy(), a.se.to_numpy(), rtol=1e-4)
    assert b.objective == pytest.approx(a.objective, rel=1e-11)


def test_general_path_leaves_the_theta_bound_of_an_even_deviance(monkeypatch):
    # L-BFGS-B stopped on θ = 0 (a stationary point of the even deviance) although the
    # optimum is inside: 0.65 worse than the dense Newton fit before the unbounded rerun
    formula, df, kw = _random_case(2, 41)
    a = fit(formula, df, **kw)
    b = fit_general(formula, df, monkeypatch, **kw)
    assert a.theta[0] > 0.1
    assert b.objective == pytest.approx(a.objective, rel=1e-10)
    np.testing.assert_allclose(b.theta, a.theta, rtol=1e-5)


def test_escape_bounds_on_an_even_function():
    from scipy.optimize import minimize

    from pyglmm.mixed.optimizer import OptResult

    def runner(f):
        def run(x0, lower):
            bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
            r = minimize(f, x0, method="L-BFGS-B", bounds=bounds)
            return OptResult(r.x, float(r.fun), int(r.nfev), 1, "")

        return run

    lower = np.array([0.0, -np.inf])
    # θ = 0 is stationary for an even function: an optimizer may stop there
    trapped = OptResult(np.array([0.0, 2.0]), 1.0, 5, 1, "")
    out = glmer_module._escape_bounds(
        runner(lambda x: (x[0] ** 2 - 1.0) ** 2 + (x[1] - 2.0) ** 2), trapped, lower, 1
    )
    np.testing.assert_allclose(out.x, [1.0, 2.0], atol=1e-4)
    assert out.fun < 1e-8 and out.nevals > 5
    # an optimum on the bound stays there
    on_bound = OptResult(np.array([0.0, 2.0]), 0.0, 5, 1, "")
    same = glmer_module._escape_bounds(
        runner(lambda x: x[0] ** 2 + (x[1] - 2.0) ** 2), on_bound, lower, 1
    )
    np.testing.assert_array_equal(same.x, [0.0, 2.0])
    assert same.fun == 0.0
