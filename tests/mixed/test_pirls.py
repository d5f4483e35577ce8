"""PIRLS, the re-weightable blocked factor, the Laplace gradient and the GH rule, checked
against dense linear algebra and finite differences on small problems."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import pyglmm as pg
from pyglmm.families import get_family
from pyglmm.formula.frame import model_frame
from pyglmm.formula.random import random_terms
from pyglmm.mixed.glmm_blocks import WeightedBlocks
from pyglmm.mixed.glmm_gradient import laplace_and_gradient
from pyglmm.mixed.pirls import GlmmResponse, Pirls
from pyglmm.mixed.quadrature import gh_rule


def _problem(formula: str, family: str = "binomial", n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "x": rng.standard_normal(n),
            "a": pd.Categorical(rng.integers(0, 12, n).astype(str)),
            "b": pd.Categorical(rng.integers(0, 5, n).astype(str)),
        }
    )
    eta = 0.3 + 0.5 * df["x"] + rng.normal(0, 0.7, 12)[df["a"].cat.codes]
    if family == "binomial":
        df["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    else:
        df["y"] = rng.poisson(np.exp(eta)).astype(float)
    fr = model_frame(formula, df)
    fam = get_family(family)
    mustart, y, wt, ntr = fam.initialize(fr.y, np.ones(n))
    terms = random_terms(fr.random, fr.data, n=10**12)
    return terms, fr.X, GlmmResponse(fam, y, wt, ntr, fr.offset), fam, mustart


def _dense_Z(terms, theta):
    blocks, i = [], 0
    for t in terms:
        lam = t.lambda_(theta[i : i + t.ntheta])
        i += t.ntheta
        Zk = t.sparse().toarray()
        blocks.append(Zk @ np.kron(np.eye(t.nlevels), lam))
    return np.hstack(blocks)


@pytest.mark.parametrize(
    "formula", ["y ~ x + (1 | a) + (1 | b)", "y ~ x + (1 + x | a)", "y ~ x + (1 | a) + (x | b)"]
)
def test_blocked_factor_matches_dense(formula):
    terms, X, resp, _, _ = _problem(formula)
    rng = np.random.default_rng(1)
    w = rng.uniform(0.1, 0.3, X.shape[0])
    theta = np.concatenate([t.theta_start() for t in terms]) * 0.8 + 0.1
    for with_x in (False, True):
        bl = WeightedBlocks(terms, X, with_x=with_x)
        bl.reweight(w)
        f = bl.factor(theta)
        ZL = _dense_Z(terms, theta)
        q = ZL.shape[1]
        M = np.hstack([ZL, X]) if with_x else ZL
        H = M.T @ (M * w[:, None])
        H[np.arange(q), np.arange(q)] += 1.0
        # logdet of the Z part
        ldz = np.linalg.slogdet(H[:q, :q])[1]
        assert f.ldL2 == pytest.approx(ldz, rel=1e-10)
        c = rng.standard_normal(H.shape[0])
        n0q0 = terms[0].ncols
        # first term first in both orders (ZΛ columns are in term order)
        x0, xr = f.solve(c[:n0q0], c[n0q0:])
        np.testing.assert_allclose(np.concatenate([x0, xr]), np.linalg.solve(H, c), rtol=1e-8)
        if with_x:
            Hx = H[q:, q:] - H[q:, :q] @ np.linalg.solve(H[:q, :q], H[:q, q:])
            RX = f.RX()
            np.testing.assert_allclose(RX.T @ RX, Hx, rtol=1e-8, atol=1e-10)


def test_pirls_modes_are_stationary():
    terms, X, resp, fam, _ = _problem("y ~ x + (1 | a) + (1 | b)")
    P = Pirls(terms, X, resp)
    theta = np.array([0.7, 0.4])
    beta = np.array([0.2, 0.4])
    P.laplace(theta, beta)
    # ũ = ΛᵀZᵀ(W∘r) at the modes (canonical link)
    W, r = resp.working(P.eta, P.mu)
    c0, cr = P.zt(W * r, P.lams)
    np.testing.assert_allclose(
        np.concatenate([c0, cr]), np.concatenate([P.state.u0, P.state.ur]), atol=1e-7
    )


def test_fast_deviance_equals_family_dev_resids():
    for family in ("binomial", "poisson"):
        terms, X, resp, fam, _ = _problem("y ~ x + (1 | a)", family)
        eta = np.linspace(-3, 3, X.shape[0])
        mu, dev = resp.dev_from_eta(eta)
        ref = fam.dev_resids(resp.y, fam.linkinv(eta), resp.wt).sum()
        assert dev == pytest.approx(ref, rel=1e-12)
        aic = fam.aic(resp.y, resp.ntrials, fam.linkinv(eta), resp.wt, ref)
        assert resp.aic(mu, dev) == pytest.approx(aic, rel=1e-12)


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_laplace_gradient_matches_finite_differences(family):
    terms, X, resp, _, _ = _problem("y ~ x + (1 | a) + (1 | b)", family)
    P = Pirls(terms, X, resp)
    x = np.array([0.8, 0.3, 0.1, 0.4])
    v, g = laplace_and_gradient(P, x[:2], x[2:])
    P.tol, P.eta_tol = 1e-14, 1e-12
    fd = []
    for i in range(4):
        e = np.zeros(4)
        e[i] = 1e-5
        fp = P.laplace((x + e)[:2], (x + e)[2:])
        fm = P.laplace((x - e)[:2], (x - e)[2:])
        fd.append((fp - fm) / 2e-5)
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-5)


def test_gh_rule_integrates_normal_moments():
    z, w = gh_rule(9)
    assert w.sum() == pytest.approx(1.0, rel=1e-13)
    assert (w * z**2).sum() == pytest.approx(1.0, rel=1e-12)
    assert (w * z**4).sum() == pytest.approx(3.0, rel=1e-12)
    assert (w * z**3).sum() == pytest.approx(0.0, abs=1e-12)


def test_agq_with_one_node_is_laplace_up_to_the_saturated_constant():
    """nAGQ=1 through the AGQ formula gives Σd + ‖u‖² + log|L|² (no aic constant)."""
    from pyglmm.mixed.quadrature import agq_deviance

    terms, X, resp, _, _ = _problem("y ~ x + (1 | a)")
    P = Pirls(terms, X, resp)
    theta, beta = np.array([0.6]), np.array([0.1, 0.5])
    lap = P.laplace(theta, beta)
    agq1 = agq_deviance(P, theta, beta, 1)
    shift = resp.aic(P.mu, P.dev) - P.dev
    assert agq1 == pytest.approx(lap - shift, rel=1e-10)


def test_sparse_and_dense_first_term_cross_products_agree(monkeypatch):
    import pyglmm.mixed.glmm_blocks as gb

    terms, X, resp, _, _ = _problem("y ~ x + (1 | a) + (1 | b)")
    w = np.full(X.shape[0], 0.2)
    theta = np.array([0.9, 0.5])
    bl = WeightedBlocks(terms, X, with_x=True)
    bl.reweight(w)
    f1 = bl.factor(theta)
    monkeypatch.setattr(gb, "_DENSE_R_MAX", 0)
    bl2 = WeightedBlocks(terms, X, with_x=True)
    bl2.reweight(w)
    assert sp.issparse(bl2.Rz)
    f2 = bl2.factor(theta)
    assert f1.ldL2 == pytest.approx(f2.ldL2, rel=1e-12)
    np.testing.assert_allclose(f1.RX(), f2.RX(), rtol=1e-10)


def test_glmer_public_entry_point():
    cb = pg.datasets.load("cbpp")
    m = pg.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cb, "binomial", nagq=0)
    assert m.nagq == 0
    assert np.isfinite(m.loglik)


def test_quasi_newton_steps_reach_the_same_modes():
    """PIRLS with the previous call's factor (quasi-Newton steps) and with fresh Newton
    steps only give the same modes and Laplace deviance."""
    terms, X, resp, _, _ = _problem("y ~ x + (1 | a) + (1 | b)")
    quasi, newton = Pirls(terms, X, resp), Pirls(terms, X, resp)
    newton.reuse_factor = False
    points = [
        (np.array([0.8, 0.3]), np.array([0.1, 0.4])),
        (np.array([0.7, 0.35]), np.array([0.15, 0.45])),
        (np.array([0.72, 0.33]), np.array([0.12, 0.42])),
    ]
    for theta, beta in points:
        a = quasi.laplace(theta, beta)
        b = newton.laplace(theta, beta)
        assert a == pytest.approx(b, rel=1e-10)
        np.testing.assert_allclose(quasi.state.u0, newton.state.u0, atol=1e-7)
    assert quasi.quasi_iterations > 0
