"""The blocked Cholesky factor against a dense Cholesky of the whole system."""

from __future__ import annotations

import numpy as np
import pytest

import pyglmm as pg
from pyglmm.formula.frame import model_frame
from pyglmm.formula.random import random_terms
from pyglmm.mixed.blocked_cholesky import BlockedCholesky
from pyglmm.mixed.blocks import LmmBlocks

CASES = [
    ("Reaction ~ Days + (Days | Subject)", "sleepstudy", None, [0.9, 0.02, 0.22]),
    ("score ~ Machine + (1 | Worker) + (1 | Worker:Machine)", "Machines", None, [1.3, 0.7]),
    (
        "score ~ Machine + (1 | Worker) + (0 + Machine | Worker)",
        "Machines",
        None,
        [0.8, 1.0, 0.2, 0.1, 0.9, -0.3, 0.5],
    ),
    ("incidence/size ~ period + (1 | herd)", "cbpp", "size", [0.0]),
    ("score ~ 1 + (1 | Worker) + (1 | Machine)", "Machines", None, [1.6, 2.2]),
]


def _dense(terms, X, y, w, theta):
    Z = np.hstack([t.sparse().toarray() for t in terms])
    lams = []
    k = 0
    for t in terms:
        lams.append(np.kron(np.eye(t.nlevels), t.lambda_(theta[k : k + t.ntheta])))
        k += t.ntheta
    q = Z.shape[1]
    Lam = np.zeros((q, q))
    o = 0
    for L in lams:
        Lam[o : o + L.shape[0], o : o + L.shape[0]] = L
        o += L.shape[0]
    sw = np.sqrt(w)
    M = np.hstack([Z @ Lam, X, y[:, None]]) * sw[:, None]
    Omega = M.T @ M
    Omega[:q, :q] += np.eye(q)
    return np.linalg.cholesky(Omega), q, Lam


# "gram": the Gram-tensor update of small models; "map": the Schur map (gram=False);
# "dense": the dense Schur complement
MODES = ["gram", "map", "dense"]


def _factor(blocks: LmmBlocks, mode: str) -> BlockedCholesky:
    f = BlockedCholesky(blocks, gram=mode != "map")
    assert (f._gram is not None) == (mode == "gram")
    return f


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("formula,dataset,wcol,theta", CASES)
def test_blocked_factor_equals_dense_factor(formula, dataset, wcol, theta, mode):
    data = pg.datasets.load(dataset)
    mf = model_frame(formula, data, weights=wcol)
    terms = random_terms(mf.random, mf.data)
    theta = np.asarray(theta, dtype=float)
    w = mf.weights if mf.weights is not None else np.ones(len(mf.y))
    schur = "dense" if mode == "dense" else "map"
    blocks = LmmBlocks(terms, mf.X, mf.y, mf.weights, schur_mode=schur)
    assert blocks.schur_mode == schur
    f = _factor(blocks, mode)
    assert f.update(theta)
    L, q, Lam = _dense(terms, mf.X, mf.y, w, theta)
    d = np.diag(L)
    p = mf.X.shape[1]
    assert f.logdet_LZ2() == pytest.approx(2 * np.log(d[:q]).sum(), rel=1e-10, abs=1e-9)
    assert f.logdet_RX2() == pytest.approx(2 * np.log(d[q : q + p]).sum(), rel=1e-10)
    assert f.pwrss() == pytest.approx(d[-1] ** 2, rel=1e-10)
    # β̂ and u from the dense factor
    x = np.linalg.solve(L[:-1, :-1].T, L[-1, :-1])
    beta, us, bs = f.solve()
    np.testing.assert_allclose(beta, x[q:], rtol=1e-8)
    u = np.concatenate([uk.ravel() for uk in us])
    np.testing.assert_allclose(u, x[:q], rtol=1e-7, atol=1e-9)
    b = np.concatenate([bk.ravel() for bk in bs])
    np.testing.assert_allclose(b, Lam @ x[:q], rtol=1e-7, atol=1e-9)
    # diagonal blocks of (Λ'Z'WZΛ + I)^{-1}
    Lz = L[:q, :q]
    inv = np.linalg.inv(Lz @ Lz.T)
    blocks_inv = f.cond_var_u()
    o = 0
    for t, V in zip(terms, blocks_inv, strict=True):
        for lev in range(t.nlevels):
            sl = slice(o + lev * t.q, o + (lev + 1) * t.q)
            np.testing.assert_allclose(V[lev], inv[sl, sl], rtol=1e-7, atol=1e-10)
        o += t.ncols


def test_new_response_reuses_structure():
    data = pg.datasets.load("Machines")
    mf = model_frame("score ~ Machine + (1 | Worker) + (1 | Worker:Machine)", data)
    terms = random_terms(mf.random, mf.data)
    blocks = LmmBlocks(terms, mf.X, mf.y)
    y2 = mf.y[::-1].copy()
    b2 = blocks.with_response(y2)
    fresh = LmmBlocks(terms, mf.X, y2)
    f2, f3 = BlockedCholesky(b2), BlockedCholesky(fresh)
    theta = np.array([0.7, 1.9])
    f2.update(theta)
    f3.update(theta)
    np.testing.assert_allclose(np.tril(f2.Lrr), np.tril(f3.Lrr), rtol=1e-12, atol=1e-12)
    # the original blocks keep their response
    np.testing.assert_array_equal(blocks.y, mf.y)


GRAD_CASES = [
    ("score ~ 1 + (1 | Worker) + (1 | Machine)", "Machines", None, [1.3, 0.8]),
    ("score ~ Machine + (1 | Worker) + (1 | Worker:Machine)", "Machines", None, [0.7, 1.9]),
    ("incidence/size ~ period + (1 | herd)", "cbpp", "size", [0.3]),
    (
        "score ~ Machine + (1 | Worker) + (1 | Machine:Worker) + (1 | Machine)",
        "Machines",
        None,
        [0.9, 1.2, 0.4],
    ),
]


def test_terms_on_one_factor_are_merged_for_the_engine():
    data = pg.datasets.load("sleepstudy")
    mf = model_frame("Reaction ~ Days + (Days || Subject)", data)
    terms = random_terms(mf.random, mf.data)
    blocks = LmmBlocks(terms, mf.X, mf.y)
    assert len(terms) == 2 and len(blocks.eterms) == 1
    assert blocks.eterms[0].q == 2 and blocks.mz == 0
    f = BlockedCholesky(blocks)
    assert not f.supports_gradient()
    f.update(np.array([0.9, 0.2]))
    np.testing.assert_array_equal(f.lambdas[0], [[0.9, 0.0], [0.0, 0.2]])
    beta, us, bs = f.solve()
    assert [u.shape for u in us] == [(18, 1), (18, 1)]
    assert [v.shape for v in f.cond_var_u()] == [(18, 1, 1), (18, 1, 1)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("formula,dataset,wcol,theta", GRAD_CASES)
def test_analytic_gradient_equals_finite_differences(formula, dataset, wcol, theta, reml, mode):
    from pyglmm.mixed.lmm_objective import LmmObjective

    data = pg.datasets.load(dataset)
    mf = model_frame(formula, data, weights=wcol)
    terms = random_terms(mf.random, mf.data)
    schur = "dense" if mode == "dense" else "map"
    obj = LmmObjective(LmmBlocks(terms, mf.X, mf.y, mf.weights, schur_mode=schur), reml=reml)
    obj.factor = _factor(obj.blocks, mode)
    theta = np.asarray(theta, dtype=float)
    _, g = obj.value_and_gradient(theta)
    h = 1e-5
    fd = [(obj(theta + h * e) - obj(theta - h * e)) / (2 * h) for e in np.eye(len(theta))]
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6)
    # the criterion is even in a scalar θ_k: zero derivative at the boundary
    th0 = theta.copy()
    th0[0] = 0.0
    assert obj.value_and_gradient(th0)[1][0] == 0.0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("formula,dataset,wcol,theta", GRAD_CASES)
def test_average_information_equals_dense_formula(formula, dataset, wcol, theta, reml, mode):
    # average information of −ℓ in (θ, σ²): ½ yᵀP V_a P V_b P y with V = σ²(ZΛΛᵀZᵀ + W⁻¹),
    # V_θk = 2σ²θ_k Z_kZ_kᵀ, V_σ² = V/σ², at σ̂²; profiled over σ² (Schur complement),
    # doubled for the −2ℓ scale, plus the exact ∂²V/∂θ_k² term g_k/θ_k
    from pyglmm.mixed.lmm_objective import LmmObjective

    data = pg.datasets.load(dataset)
    mf = model_frame(formula, data, weights=wcol)
    terms = random_terms(mf.random, mf.data)
    blocks = LmmBlocks(
        terms, mf.X, mf.y, mf.weights, schur_mode="dense" if mode == "dense" else "map"
    )
    obj = LmmObjective(blocks, reml=reml)
    obj.factor = _factor(blocks, mode)
    theta = np.asarray(theta, dtype=float)
    _, g = obj.value_and_gradient(theta)
    H = obj.factor.hessian_ai(reml, g)
    g2, H2 = obj.derivatives(theta)  # same factor reused
    np.testing.assert_array_equal(g2, g)
    np.testing.assert_array_equal(H2, H)

    X, y = mf.X, mf.y
    n, p = X.shape
    w = np.ones(n) if mf.weights is None else mf.weights
    Zs = [t.sparse().toarray() for t in blocks.eterms]
    V0 = sum(th**2 * Z @ Z.T for th, Z in zip(theta, Zs, strict=True)) + np.diag(1.0 / w)
    V0i = np.linalg.inv(V0)
    P0 = V0i - V0i @ X @ np.linalg.solve(X.T @ V0i @ X, X.T @ V0i)
    s2 = y @ P0 @ y / (n - p if reml else n)
    P = P0 / s2
    Vd = [2 * s2 * th * Z @ Z.T for th, Z in zip(theta, Zs, strict=True)] + [V0]
    Py = P @ y
    K = len(theta)
    AI = np.array(
        [[0.5 * (Vd[a] @ Py) @ P @ (Vd[b] @ Py) for b in range(K + 1)] for a in range(K + 1)]
    )
    expected = 2 * (AI[:K, :K] - np.outer(AI[:K, K], AI[K, :K]) / AI[K, K]) + np.diag(g / theta)
    np.testing.assert_allclose(H, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


@pytest.mark.parametrize("nblocks", [1, 2, 5])
def test_closed_form_2x2_blocks(nblocks):
    from pyglmm.mixed.blocked_cholesky import _blocks_2x2

    rng = np.random.default_rng(nblocks)
    lam = np.array([[0.9, 0.0], [0.3, 0.2]])
    Xs = rng.normal(size=(nblocks, 10, 2))
    A = np.einsum("nia,nib->nab", Xs, Xs)
    T, W, det = _blocks_2x2(lam, A)
    T_ref = lam.T @ A @ lam + np.eye(2)
    np.testing.assert_allclose(T, T_ref, rtol=1e-13)
    np.testing.assert_allclose(W, lam @ np.linalg.inv(T_ref) @ lam.T, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(det, np.linalg.det(T_ref), rtol=1e-13)


@pytest.mark.parametrize(
    "formula,dataset,wcol,theta",
    [
        ("Reaction ~ Days + (Days | Subject)", "sleepstudy", None, [0.9, 0.02, 0.22]),
        ("Reaction ~ Days + (Days || Subject)", "sleepstudy", None, [0.9, 0.2]),
        ("incidence/size ~ period + (1 | herd)", "cbpp", "size", [0.7]),
        ("Yield ~ 1 + (1 | Batch)", "Dyestuff", None, [0.8]),
    ],
)
def test_one_term_gram_update_equals_general_update(formula, dataset, wcol, theta):
    data = pg.datasets.load(dataset)
    mf = model_frame(formula, data, weights=wcol)
    terms = random_terms(mf.random, mf.data)
    blocks = LmmBlocks(terms, mf.X, mf.y, mf.weights)
    fast = BlockedCholesky(blocks)
    general = BlockedCholesky(blocks, gram=False)
    assert fast._gram is not None and general._gram is None
    theta = np.asarray(theta, dtype=float)
    assert fast.update(theta) and general.update(theta)
    np.testing.assert_allclose(np.tril(fast.Lrr), np.tril(general.Lrr), rtol=1e-11, atol=1e-11)
    assert fast.logdet_L00 == pytest.approx(general.logdet_L00, rel=1e-13)
