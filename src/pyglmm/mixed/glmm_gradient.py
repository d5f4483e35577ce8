"""Analytic gradient of the Laplace deviance (scalar random-effects terms, canonical links).

With ``F(u) = Σ d_i(η_i) + ‖u‖²``, ``η = o + Xβ + ZΛ(θ)u``, ``H = ΛᵀZᵀWZΛ + I`` and ``ũ``
the PIRLS modes, the Laplace deviance is ``D(θ, β) = F(ũ) + log|H(W(η̃))| + const``.
For a canonical link ``∂d_i/∂η_i = −2W_i r_i`` and ``∂(W r)/∂η = −W``, so the modes
satisfy ``ũ = ΛᵀZᵀ(W∘r)`` and, differentiating that identity,

.. math::  H\\,dũ = dΛᵀZᵀ(W∘r) − ΛᵀZᵀW(X\\,dβ + Z\\,dΛ\\,ũ).

With the leverages ``h_i = z̃_iᵀH^{-1}z̃_i`` (``z̃_i`` row ``i`` of ``ZΛ``),
``W'_i = dW_i/dη_i``, ``v = h∘W'`` and ``a = H^{-1}ΛᵀZᵀv``:

.. math::

    ∂D/∂β = −2Xᵀ(W∘r) + Xᵀv − Xᵀ(W∘ZΛa),

    ∂D/∂θ_k = −2\\,Z_kᵀ(W∘r)·ũ_k + 2\\sum_{c∈k} (1 − (H^{-1})_{cc})/θ_k
              + s_k·ũ_k + Z_kᵀ(W∘r)·a_k ,\\qquad s = Zᵀv − Zᵀ(W∘ZΛa),

the second term of ``∂D/∂θ_k`` being ``tr(H^{-1}∂H/∂θ_k)`` at fixed ``W`` (0 at
``θ_k = 0``).  ``h_i`` needs ``H^{-1}`` only at the pairs of levels that occur
together, which the blocked factor gives as
``(H^{-1})_{00} = T^{-1} + T^{-1}BᵀS^{-1}BT^{-1}``, ``(H^{-1})_{0r} = −T^{-1}BᵀS^{-1}``,
``(H^{-1})_{rr} = S^{-1}``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import cho_solve

from pyglmm.mixed.pirls import Pirls, PirlsState

_CANONICAL = {("binomial", "logit"), ("poisson", "log")}


def gradient_available(pirls: Pirls) -> bool:
    """Whether :func:`laplace_and_gradient` applies (scalar terms, canonical link)."""
    fam = pirls.resp.family
    return (fam.name, fam.link.name) in _CANONICAL and all(t.q == 1 for t in pirls.terms)


def _dW(pirls: Pirls, mu: np.ndarray) -> np.ndarray:
    fam = pirls.resp.family
    wt = pirls.resp.wt
    if fam.name == "binomial":
        return wt * mu * (1.0 - mu) * (1.0 - 2.0 * mu)
    return wt * mu


def _leverages(terms, b, th, H00, Tinv, G, diag_rr, Sinv) -> np.ndarray:
    """``h_i = z̃_iᵀH^{-1}z̃_i`` from the blocks of ``H^{-1}`` (general ``z``)."""
    z0 = terms[0].z[:, 0] * th[0]
    l0 = terms[0].refs
    h = z0 * z0 * H00[l0]
    rest_idx = []
    for t, sl, tk in zip(terms[1:], b.rest_slices, th[1:], strict=True):
        j = sl.start + t.refs
        zk = t.z[:, 0] * tk
        rest_idx.append((j, zk))
        h += zk * zk * diag_rr[j]
        h -= 2.0 * z0 * zk * Tinv[l0] * G.ravel()[j * G.shape[1] + l0]
    for a_i in range(len(rest_idx)):
        for b_i in range(a_i):
            ja, za = rest_idx[a_i]
            jb, zb = rest_idx[b_i]
            h += 2.0 * za * zb * Sinv[ja, jb]
    return h


def _leverages_intercepts(pirls, b, th, H00, Tinv, G, diag_rr, Sinv) -> np.ndarray:
    """:func:`_leverages` when every ``z`` is an intercept (all ones): the same products
    with the scalar factors first and the level indices (row-major, for ``take``) cached."""
    terms = pirls.terms
    idx = getattr(pirls, "_leverage_index", None)
    if idx is None or idx[0] is not b:
        l0 = terms[0].refs
        js = [sl.start + t.refs for t, sl in zip(terms[1:], b.rest_slices, strict=True)]
        gflat = [j * b.nq0 + l0 for j in js]
        pairs = [
            (a_i, b_i, js[a_i] * b.mz + js[b_i]) for a_i in range(len(js)) for b_i in range(a_i)
        ]
        idx = (b, l0, js, gflat, pairs)
        pirls._leverage_index = idx
    _, l0, js, gflat, pairs = idx
    h = H00.take(l0)
    h *= th[0] * th[0]
    tinv0 = Tinv.take(l0)
    Gf = G.ravel()
    for j, gf, tk in zip(js, gflat, th[1:], strict=True):
        g = diag_rr.take(j)
        g *= tk * tk
        h += g
        g = np.multiply(tinv0, 2.0 * th[0] * tk, out=g)
        g *= Gf.take(gf)
        h -= g
    Sf = Sinv.ravel()
    for a_i, b_i, pf in pairs:
        g = Sf.take(pf)
        g *= 2.0 * th[1 + a_i] * th[1 + b_i]
        h += g
    return h


def laplace_and_gradient(
    pirls: Pirls, theta: np.ndarray, beta: np.ndarray | None
) -> tuple[float, np.ndarray]:
    """The Laplace deviance at ``(θ, β)`` and its gradient (see the module docstring).

    ``beta=None``: lme4's ``nAGQ = 0`` objective of θ alone (β inside PIRLS).  Then the
    modes ``(ũ, β̃)`` solve the joint system ``K``, the identity ``0 = Xᵀ(W∘r)`` joins
    ``ũ = ΛᵀZᵀ(W∘r)``, ``a = K^{-1}[ΛᵀZᵀv; Xᵀv]`` and ``ZΛa`` becomes ``ZΛa_u + Xa_β``;
    the leverages still use ``H = ΛᵀZᵀWZΛ + I`` (the determinant is of the ``Z`` part).
    """
    joint = beta is None
    value = pirls.laplace(theta, beta)
    f = pirls.factor
    b = pirls.blocks_ux if joint else pirls.blocks_u
    terms = pirls.terms
    lams = pirls.lams
    th = np.array([lam[0, 0] for lam in lams])
    eta, mu = pirls.eta, pirls.mu
    wa = pirls._working_at
    if wa is not None and wa[0] is eta:
        _, W, r = wa  # formed by PIRLS at the modes (for the factor there)
    else:
        W, r = pirls.resp.working(eta, mu)
    Wr = W * r
    Wp = _dW(pirls, mu)
    mz = b.mz
    Tinv = 1.0 / f.T[:, 0, 0]
    # H^{-1} pieces
    G = Sinv = None
    if mz:
        # the leading m_Z block of the factor is the factor of the Z-part Schur complement
        Sinv = cho_solve((f.L[:mz, :mz], True), np.eye(mz), check_finite=False)
        # B = Λ_rᵀ R_Z Λ₀ (rest × first-term levels), u-space
        lam_r = np.empty(mz)
        for sl, t_th in zip(b.rest_slices, th[1:], strict=True):
            lam_r[sl] = t_th
        Rz = f.Rz
        if sp.issparse(Rz):
            # G = S^{-1} B with B = Λ_r R_Z θ₀ : (S^{-1}Λ_r θ₀) R_Z, a dense-sparse product
            SL = Sinv * (lam_r * th[0])[None, :]
            G = np.asarray(Rz.T.tocsr() @ SL.T).T  # (mz, n0); CSR kernel (CSC's is slow)
            rows = np.repeat(np.arange(mz), np.diff(Rz.indptr))
            bvals = Rz.data * lam_r[rows] * th[0]
            BSB = np.bincount(Rz.indices, weights=bvals * G[rows, Rz.indices], minlength=b.n0)
        else:
            # G = S^{-1}B with B = Λ_r R_Z θ₀ = (S^{-1}Λ_r θ₀) R_Z: the scaling on the small
            # side; BSB_l = Σ_k (Λ_r θ₀)_k R_{kl} G_{kl} without forming B
            lr0 = lam_r * th[0]
            G = (Sinv * lr0[None, :]) @ Rz
            BSB = np.einsum("k,kl,kl->l", lr0, Rz, G)
        H00 = Tinv + Tinv * Tinv * BSB
        diag_rr = np.diag(Sinv)
    else:
        H00 = Tinv
        diag_rr = np.zeros(0)
    # leverages h_i
    if mz and all(zc[0] is None for zc in pirls._zcols):
        h = _leverages_intercepts(pirls, b, th, H00, Tinv, G, diag_rr, Sinv)
    else:
        h = _leverages(terms, b, th, H00, Tinv, G, diag_rr, Sinv)
    v = h * Wp
    X = pirls.X
    c0, cr = pirls.zt(v, lams)
    if joint:
        cr = np.concatenate([cr, X.T @ v])
    a0, ar = f.solve(c0, cr)
    a_beta = ar[mz:]
    ar = ar[:mz]
    Zla = pirls.zb(PirlsState(a0, ar, np.zeros(X.shape[1])), lams)
    if joint:
        Zla = Zla + X @ a_beta
    WZla = W * Zla
    g_beta = -2.0 * (X.T @ Wr) + X.T @ v - X.T @ WZla
    # θ gradient (unscaled Zᵀ products per term)
    st = pirls.state
    u_terms = [st.u0] + [st.ur[sl] for sl in b.rest_slices]
    a_terms = [a0] + [ar[sl] for sl in b.rest_slices]
    hdiag = [H00] + [diag_rr[sl] for sl in b.rest_slices]
    g_theta = np.empty(len(terms))
    svec = v - WZla
    for k, t in enumerate(terms):
        zc = pirls._zcols[k][0]
        zwr = np.bincount(t.refs, weights=Wr if zc is None else Wr * zc, minlength=t.nlevels)
        zs = np.bincount(t.refs, weights=svec if zc is None else svec * zc, minlength=t.nlevels)
        uk, ak = u_terms[k], a_terms[k]
        g = -2.0 * zwr @ uk + zs @ uk + zwr @ ak
        if th[k] > 1e-10:
            g += 2.0 * np.sum(1.0 - hdiag[k]) / th[k]
        g_theta[k] = g
    if joint:
        return value, g_theta
    return value, np.concatenate([g_theta, g_beta])
