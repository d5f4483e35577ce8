"""The engine's criterion equals the REML criterion of the notes, written with dense matrices.

Seed notes, section 4.2: integrating the random effects and β out of the joint
density gives the marginal posterior of the variance parameters

    Π_n(θ) = (2π)^{-(n-p)/2} |V|^{-1/2} |XᵀV^{-1}X|^{-1/2}
             exp(-½ (y − Xβ̂)ᵀ V^{-1} (y − Xβ̂)),   V = Z ψ Zᵀ + σ² W^{-1},

with ψ = σ² ΛΛᵀ.  −2 log Π_n minimized over σ² is lme4's REML criterion; the ML
deviance is −2 log of the multivariate normal density of y at β̂ with σ² profiled.
"""

from __future__ import annotations

import numpy as np
import pytest

import pyglmm as pg
from pyglmm.formula.frame import model_frame
from pyglmm.formula.random import random_terms
from pyglmm.mixed.blocks import LmmBlocks
from pyglmm.mixed.lmm_objective import LmmObjective


def _dense_Z_Lambda(terms, theta):
    Zs, Ls = [], []
    k = 0
    for t in terms:
        Zs.append(t.sparse().toarray())
        lam = t.lambda_(theta[k : k + t.ntheta])
        k += t.ntheta
        Ls.append(np.kron(np.eye(t.nlevels), lam))
    Z = np.hstack(Zs)
    q = Z.shape[1]
    Lam = np.zeros((q, q))
    o = 0
    for L in Ls:
        Lam[o : o + L.shape[0], o : o + L.shape[0]] = L
        o += L.shape[0]
    return Z, Lam


def _minus2_log_post(sigma2, X, y, Z, Lam, w, reml):
    n, p = X.shape
    V = sigma2 * (Z @ Lam @ Lam.T @ Z.T + np.diag(1.0 / w))
    Vi = np.linalg.inv(V)
    XtViX = X.T @ Vi @ X
    beta = np.linalg.solve(XtViX, X.T @ Vi @ y)
    r = y - X @ beta
    _, ldV = np.linalg.slogdet(V)
    if reml:
        _, ldX = np.linalg.slogdet(XtViX)
        return (n - p) * np.log(2 * np.pi) + ldV + ldX + r @ Vi @ r
    return n * np.log(2 * np.pi) + ldV + r @ Vi @ r


def _dense_criterion(X, y, Z, Lam, w, reml):
    """−2 log Π_n at the σ² that minimizes it (σ̂² = Q₀/(n−p) for REML, Q₀/n for ML,
    with Q₀ the quadratic form at σ² = 1), checked to be a minimum."""
    n, p = X.shape
    V0 = Z @ Lam @ Lam.T @ Z.T + np.diag(1.0 / w)
    V0i = np.linalg.inv(V0)
    beta = np.linalg.solve(X.T @ V0i @ X, X.T @ V0i @ y)
    r = y - X @ beta
    s2 = (r @ V0i @ r) / (n - p if reml else n)
    val = _minus2_log_post(s2, X, y, Z, Lam, w, reml)
    assert val < _minus2_log_post(s2 * 1.001, X, y, Z, Lam, w, reml)
    assert val < _minus2_log_post(s2 * 0.999, X, y, Z, Lam, w, reml)
    return val


CASES = [
    (
        "Reaction ~ Days + (Days | Subject)",
        "sleepstudy",
        None,
        [[1.0, 0.0, 1.0], [0.9, 0.02, 0.22]],
    ),
    (
        "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)",
        "Machines",
        None,
        [[1.0, 1.0], [0.5, 3.0]],
    ),
    ("score ~ Machine + (Machine | Worker)", "Machines", None, [[1, 0.2, -0.1, 0.8, 0.3, 0.5]]),
    ("incidence/size ~ period + (1 | herd)", "cbpp", "size", [[0.3], [0.0]]),
    ("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", "sleepstudy", None, [[0.5, 0.3]]),
]


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("formula,dataset,wcol,thetas", CASES)
def test_engine_criterion_equals_dense_marginal_posterior(formula, dataset, wcol, thetas, reml):
    data = pg.datasets.load(dataset)
    mf = model_frame(formula, data, weights=wcol)
    terms = random_terms(mf.random, mf.data)
    w = mf.weights if mf.weights is not None else np.ones(len(mf.y))
    obj = LmmObjective(LmmBlocks(terms, mf.X, mf.y, mf.weights), reml=reml)
    for theta in thetas:
        theta = np.asarray(theta, dtype=float)
        Z, Lam = _dense_Z_Lambda(terms, theta)
        dense = _dense_criterion(mf.X, mf.y, Z, Lam, w, reml)
        engine = obj(theta)
        assert engine == pytest.approx(dense, rel=1e-9, abs=1e-8)


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize(
    "formula,dataset,wcol,k",
    [
        ("Reaction ~ Days + (Days | Subject)", "sleepstudy", None, 3),
        ("Reaction ~ Days + (Days || Subject)", "sleepstudy", None, 2),
        ("incidence/size ~ period + (1 | herd)", "cbpp", "size", 1),
    ],
)
def test_batched_values_equal_single_evaluations(formula, dataset, wcol, k, reml):
    data = pg.datasets.load(dataset)
    mf = model_frame(formula, data, weights=wcol)
    blocks = LmmBlocks(random_terms(mf.random, mf.data), mf.X, mf.y, mf.weights)
    obj = LmmObjective(blocks, reml)
    thetas = np.abs(np.random.default_rng(2).normal(size=(6, k))) + 0.05
    vals = obj.values(thetas)
    assert vals is not None
    np.testing.assert_allclose(vals, [obj(t) for t in thetas], rtol=1e-12)


def test_batched_values_not_available_with_two_factors():
    data = pg.datasets.load("Machines")
    mf = model_frame("score ~ 1 + (1 | Worker) + (1 | Machine)", data)
    blocks = LmmBlocks(random_terms(mf.random, mf.data), mf.X, mf.y)
    assert LmmObjective(blocks).values(np.ones((3, 2))) is None
