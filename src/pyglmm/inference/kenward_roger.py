"""Kenward-Roger adjusted covariance of β̂ and denominator degrees of freedom, as pbkrtest.

Write the marginal covariance of ``y`` as ``Σ = Σ_r γ_r G_r`` where ``γ`` holds,
term by term, the variances and covariances of the random effects (the lower
triangle of ``σ²λ_kλ_kᵀ`` column by column) and finally ``σ²`` (``G = I``); for
the ``(i, j)`` entry of term ``k``, ``G = Z_{k,i}Z_{k,j}ᵀ + Z_{k,j}Z_{k,i}ᵀ``
(``Z_{k,i}Z_{k,i}ᵀ`` on the diagonal).  With ``Φ = (XᵀΣ^{-1}X)^{-1}`` (the
REML ``vcov``), ``P_r = −XᵀΣ^{-1}G_rΣ^{-1}X``,
``Q_{rs} = XᵀΣ^{-1}G_rΣ^{-1}G_sΣ^{-1}X`` and the expected information
``I_{rs} = tr(Σ^{-1}G_rΣ^{-1}G_s) − 2 tr(ΦQ_{rs}) + tr(ΦP_rΦP_s)``, ``W = 2 I^{-1}``,
Kenward & Roger (1997) adjust

.. math:: Φ_A = Φ + 2Φ\\Bigl[\\sum_{r,s} W_{rs}(Q_{rs} − P_rΦP_s)\\Bigr]Φ .

For ``H₀: Lβ = 0`` (``q = rank L``) with ``Θ = Lᵀ(LΦLᵀ)^{-1}L``,
``A₁ = Σ W_{rs} tr(ΘΦP_rΦ) tr(ΘΦP_sΦ)`` and ``A₂ = Σ W_{rs} tr(ΘΦP_rΦΘΦP_sΦ)``,
the scaled Wald statistic ``F* = λ F`` has approximately an ``F(q, m)``
distribution (pbkrtest's ``.KR_adjust``; Halekoh & Højsgaard 2014, JSS 59(9)).

pbkrtest forms the ``n × n`` matrices ``Σ^{-1}`` and ``G_rΣ^{-1}``; that computation is
kept (``method="dense"``), but by default everything is computed in the space of the
``q`` random effects through ``Σ^{-1} = σ^{-2}(I − ZΛT^{-1}ΛᵀZᵀ)`` (see
:func:`_pieces_lowrank`): the same numbers to rounding, and feasible for large ``n``
(InstEval's 73 421 rows with ``q`` ≈ 1 150 take seconds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg as sla
import scipy.sparse as sp
from scipy import stats

from pyglmm.errors import PyglmmError

_MAX_BYTES = 2.0e9  # dense n x n work arrays allowed in total


@dataclass
class KRAdjustment:
    """Result of :func:`vcov_adjusted`: ``Φ_A``, and ``P``, ``W`` for the df."""

    vcov_adj: np.ndarray
    vcov: np.ndarray
    P: list[np.ndarray]
    W: np.ndarray
    condition: float


def _check(model) -> None:
    k = sum(t.ntheta for t in model.terms) + 1
    need = (2 * k + 3) * 8.0 * model.nobs**2
    if need > _MAX_BYTES:
        raise PyglmmError(
            f"Kenward-Roger needs {2 * k + 3} dense {model.nobs} x {model.nobs} matrices "
            f"({need / 1e9:.1f} GB); use Satterthwaite's method for data this large"
        )


def sigma_g(model) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """pbkrtest's ``get_SigmaG``: ``γ``, the ``G_r`` (dense) and ``Σ = Σ γ_r G_r``."""
    n = model.nobs
    gam: list[float] = []
    G: list[np.ndarray] = []
    for t, S in zip(model.terms, model.cov_re(), strict=True):
        cols = [
            sp.csc_matrix((t.z[:, a], (np.arange(n), t.refs)), shape=(n, t.nlevels))
            for a in range(t.q)
        ]
        for j in range(t.q):
            for i in range(j, t.q):
                gam.append(float(S[i, j]))
                Zi, Zj = cols[i], cols[j]
                if i == j:
                    Gm = (Zi @ Zi.T).toarray()
                else:
                    A = (Zi @ Zj.T).toarray()
                    Gm = A + A.T
                G.append(Gm)
    gam.append(float(model.sigma) ** 2)
    G.append(np.eye(n))
    gam_a = np.asarray(gam)
    Sigma = sum(g * Gm for g, Gm in zip(gam_a, G, strict=True))
    return gam_a, G, Sigma


_KR_CACHE: dict[tuple[int, str], tuple[object, KRAdjustment]] = {}


def vcov_adjusted(model, method: str = "auto") -> KRAdjustment:
    """The Kenward-Roger adjusted covariance of β̂ (pbkrtest's ``vcovAdj``).

    Parameters
    ----------
    model : LinearMixedModel
        A REML fit without prior weights.
    method : "auto", "lowrank" or "dense"
        ``"dense"`` forms the ``n × n`` matrices as pbkrtest does; ``"lowrank"``
        works in the space of the ``q`` random effects (:func:`_pieces_lowrank`);
        ``"auto"`` uses the low-rank form when ``q < n``.
    """
    hit = _KR_CACHE.get((id(model), method))
    if hit is not None and hit[0] is model:
        return hit[1]
    if not model.reml:
        raise PyglmmError("Kenward-Roger's method is only available for REML model fits")
    if model.weights is not None:
        raise PyglmmError("Kenward-Roger's method is not available for models with prior weights")
    qtot = sum(t.ncols for t in model.terms)
    use_lowrank = method == "lowrank" or (method == "auto" and qtot < model.nobs)
    if use_lowrank:
        need = 8.0 * (6 * qtot**2 + 4 * qtot * model.p)
        if need > _MAX_BYTES:
            raise PyglmmError(
                f"Kenward-Roger needs dense {qtot} x {qtot} matrices ({need / 1e9:.1f} GB); "
                "use Satterthwaite's method for a model this large"
            )
        PP, QQ, Ktr = _pieces_lowrank(model)
    elif method in ("dense", "auto"):
        _check(model)
        PP, QQ, Ktr = _pieces_dense(model)
    else:
        raise PyglmmError("method must be 'auto', 'lowrank' or 'dense'")
    out = _adjust(np.asarray(model.vcov, dtype=float), PP, QQ, Ktr)
    _KR_CACHE.clear()
    _KR_CACHE[(id(model), method)] = (model, out)
    return out


def _pieces_dense(model):
    """``P_r``, ``Q_rs`` and ``tr(Σ⁻¹G_rΣ⁻¹G_s)`` from the dense ``n × n`` matrices."""
    X = model.X
    _, G, Sigma = sigma_g(model)
    cf = sla.cho_factor(Sigma, lower=True)
    SigmaInv = sla.cho_solve(cf, np.eye(model.nobs))
    TT = SigmaInv @ X
    HH = [Gm @ SigmaInv for Gm in G]
    OO = [H @ X for H in HH]
    k = len(G)
    PP = [-(O.T @ TT) for O in OO]
    QQ = {}
    for r in range(k):
        SO = OO[r].T @ SigmaInv
        for s in range(r, k):
            QQ[r, s] = SO @ OO[s]
    Ktr = np.empty((k, k))
    for r in range(k):
        for s in range(r, k):
            Ktr[r, s] = Ktr[s, r] = float(np.sum(HH[r].T * HH[s]))
    return PP, QQ, Ktr


def _pieces_lowrank(model):
    """The same pieces without ``n × n`` matrices.

    With ``Σ = σ²(I + ZΛΛᵀZᵀ)``, ``T = ΛᵀZᵀZΛ + I`` and ``𝒫 = ZΛT⁻¹ΛᵀZᵀ``,
    ``Σ⁻¹ = σ⁻²(I − 𝒫)``, and for ``U, V`` among ``Z, X`` (``A_U = ΛᵀZᵀU``,
    ``Y_U = T⁻¹A_U``, ``S = ΛᵀZᵀZΛ``)

    .. math::
        UᵀΣ^{-1}V &= σ^{-2}(UᵀV − A_UᵀY_V),\\
        UᵀΣ^{-2}V &= σ^{-4}(UᵀV − 2A_UᵀY_V + Y_UᵀSY_V),\\
        UᵀΣ^{-3}V &= σ^{-6}(UᵀV − 3A_UᵀY_V + 3Y_UᵀSY_V − (SY_U)ᵀT^{-1}(SY_V)).

    With ``G_r = ZD_rZᵀ`` (``D_r = I_ℓ ⊗ E_r`` on term ``k``'s columns),
    ``M = ZᵀΣ⁻¹Z``, ``M₂ = ZᵀΣ⁻²Z``, ``B = ZᵀΣ⁻¹X``, ``B₂ = ZᵀΣ⁻²X``:
    ``tr(Σ⁻¹G_rΣ⁻¹G_s) = tr(D_rMD_sM)``, ``tr(Σ⁻¹G_rΣ⁻¹) = tr(D_rM₂)``,
    ``P_r = −BᵀD_rB``, ``Q_rs = BᵀD_rMD_sB``, ``Q_{r,ε} = BᵀD_rB₂``, and for the
    residual ``G = I``: ``P = −XᵀΣ⁻²X``, ``Q = XᵀΣ⁻³X``, ``tr(Σ⁻²)``.
    """
    terms = model.terms
    X = np.asarray(model.X, dtype=float)
    n = model.nobs
    s2 = float(model.sigma) ** 2
    Z = sp.hstack([t.sparse() for t in terms], format="csc")
    offs = np.cumsum([0] + [t.ncols for t in terms])
    Lam = sp.block_diag(
        [
            sp.kron(sp.identity(t.nlevels), sp.csr_matrix(lam))
            for t, lam in zip(terms, model.lambdas, strict=True)
        ],
        format="csr",
    )
    K = (Z.T @ Z).toarray()
    Kx = np.asarray(Z.T @ X)
    Kxx = X.T @ X
    LtK = np.asarray(Lam.T @ K)  # A_Z = Λᵀ K
    Ax = np.asarray(Lam.T @ Kx)  # A_X = Λᵀ Kx
    S = np.asarray(Lam.T @ LtK.T)  # Λᵀ K Λ
    S = (S + S.T) / 2.0
    q = S.shape[0]
    T = S + np.eye(q)
    cf = sla.cho_factor(T, lower=True)
    Yz = sla.cho_solve(cf, LtK)
    Yx = sla.cho_solve(cf, Ax)
    SYz, SYx = S @ Yz, S @ Yx
    AzYz = LtK.T @ Yz
    AzYx = LtK.T @ Yx
    AxYx = Ax.T @ Yx
    M = (K - AzYz) / s2
    M2 = (K - 2.0 * AzYz + Yz.T @ SYz) / s2**2
    B = (Kx - AzYx) / s2
    B2 = (Kx - 2.0 * AzYx + Yz.T @ SYx) / s2**2
    X2 = (Kxx - 2.0 * AxYx + Yx.T @ SYx) / s2**2
    X3 = (Kxx - 3.0 * AxYx + 3.0 * (Yx.T @ SYx) - SYx.T @ sla.cho_solve(cf, SYx)) / s2**3
    TiS = sla.cho_solve(cf, S)
    trW2 = (n - 2.0 * np.trace(TiS) + float(np.sum(TiS * TiS.T))) / s2**2
    # D_r as (rows, D_r restricted to its rows) pairs
    Ds: list[tuple[np.ndarray, sp.csr_matrix]] = []
    for t, o in zip(terms, offs[:-1], strict=True):
        qk, nl = t.q, t.nlevels
        for j in range(qk):
            for i in range(j, qk):
                E = np.zeros((qk, qk))
                E[i, j] = E[j, i] = 1.0
                D = sp.kron(sp.identity(nl), sp.csr_matrix(E), format="csr")
                rows = np.arange(o, o + t.ncols)
                Ds.append((rows, D))
    kr = len(Ds)
    DM = []  # (D_r M) restricted to term rows: (ℓq_k, q)
    DB = []  # (D_r B) restricted to term rows
    for rows, D in Ds:
        DM.append(D @ M[rows, :])
        DB.append(D @ B[rows, :])
    k = kr + 1
    PP: list[np.ndarray] = []
    for (rows, _), dB in zip(Ds, DB, strict=True):
        PP.append(-(B[rows, :].T @ dB))
    PP.append(-X2)
    QQ: dict[tuple[int, int], np.ndarray] = {}
    Ktr = np.empty((k, k))
    for r in range(kr):
        rows_r = Ds[r][0]
        for s in range(r, kr):
            rows_s = Ds[s][0]
            # Q_rs = Bᵀ D_r M D_s B, with Bᵀ D_r = (D_r B)ᵀ as D_r is symmetric
            QQ[r, s] = DB[r].T @ (M[rows_r, :][:, rows_s] @ DB[s])
            Ktr[r, s] = Ktr[s, r] = float(np.sum(DM[r][:, rows_s] * DM[s][:, rows_r].T))
        QQ[r, kr] = DB[r].T @ B2[rows_r, :]
        Ktr[r, kr] = Ktr[kr, r] = float((Ds[r][1] @ M2[rows_r, :][:, rows_r]).diagonal().sum())
    QQ[kr, kr] = X3
    Ktr[kr, kr] = trW2
    return PP, QQ, Ktr


def _adjust(Phi: np.ndarray, PP, QQ, Ktr) -> KRAdjustment:
    """pbkrtest's ``vcovAdj_internal`` from ``P_r``, ``Q_rs`` and the traces."""
    k = len(PP)
    PP = [(Pm + Pm.T) / 2.0 for Pm in PP]
    IE2 = np.empty((k, k))
    for r in range(k):
        PhiPr = Phi @ PP[r]
        for s in range(r, k):
            tr_q = float(np.sum(Phi * QQ[r, s]))
            tr_pp = float(np.sum(PhiPr * (PP[s] @ Phi)))
            IE2[r, s] = IE2[s, r] = Ktr[r, s] - 2.0 * tr_q + tr_pp
    ev = np.linalg.eigvalsh(IE2)
    condi = float(np.min(np.abs(ev)))
    W = 2.0 * (np.linalg.inv(IE2) if condi > 1e-10 else np.linalg.pinv(IE2))
    W = (W + W.T) / 2.0
    p = Phi.shape[0]
    UU = np.zeros((p, p))
    for r in range(k - 1):
        for s in range(r + 1, k):
            UU += W[r, s] * (QQ[r, s] - PP[r] @ Phi @ PP[s])
    UU = UU + UU.T
    for r in range(k):
        UU += W[r, r] * (QQ[r, r] - PP[r] @ Phi @ PP[r])
    PhiA = Phi + 2.0 * (Phi @ UU @ Phi)
    return KRAdjustment(PhiA, Phi, PP, W, condi)


def _div_zero(x: float, y: float, tol: float = 1e-14) -> float:
    return 1.0 if (abs(x) < tol and abs(y) < tol) else x / y


def _kr_quantities(adj: KRAdjustment, L: np.ndarray, q: int) -> tuple[float, float]:
    """``(df2, F.scaling)`` of pbkrtest's ``.KR_adjust`` / ``Lb_ddf``."""
    Phi = adj.vcov
    Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
    ThetaPhi = Theta @ Phi
    k = len(adj.P)
    us = [ThetaPhi @ adj.P[i] @ Phi for i in range(k)]
    A1 = A2 = 0.0
    for i in range(k):
        for j in range(i, k):
            e = 1.0 if i == j else 2.0
            A1 += e * adj.W[i, j] * np.trace(us[i]) * np.trace(us[j])
            A2 += e * adj.W[i, j] * float(np.sum(us[i] * us[j].T))
    B = (A1 + 6.0 * A2) / (2.0 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    den = 3.0 * q + 2.0 * (1.0 - g)
    c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
    V0 = 1.0 + c1 * B
    V1 = 1.0 - c2 * B
    V2 = 1.0 - c3 * B
    if abs(V0) < 1e-10:
        V0 = 0.0
    rho = (1.0 / q) * _div_zero(1.0 - A2 / q, V1) ** 2 * V0 / V2
    df2 = 4.0 + (q + 2.0) / (q * rho - 1.0)
    fscale = 1.0 if abs(df2 - 2.0) < 1e-2 else df2 * (1.0 - A2 / q) / (df2 - 2.0)
    return float(df2), float(fscale)


def kr_ddf(model, L) -> float:
    """pbkrtest's ``Lb_ddf``: Kenward-Roger df for the contrast(s) ``L`` (``q = nrow(L)``)."""
    from pyglmm.inference.satterthwaite import _as_contrast

    L = np.atleast_2d(_as_contrast(model, L))
    return _kr_quantities(vcov_adjusted(model), L, L.shape[0])[0]


def kr_contest1d(model, L) -> dict[str, float]:
    """t-test of ``lᵀβ = 0``: KR-adjusted SE and KR df (lmerTest's ``ddf="Kenward-Roger"``)."""
    from pyglmm.inference.satterthwaite import _as_contrast

    lv = np.asarray(_as_contrast(model, L), dtype=float).reshape(-1)
    adj = vcov_adjusted(model)
    est = float(lv @ model.fixef.to_numpy())
    var = float(lv @ adj.vcov_adj @ lv)
    df = _kr_quantities(adj, lv[None, :], 1)[0]
    se = float(np.sqrt(var))
    t = est / se
    return {
        "Estimate": est,
        "Std. Error": se,
        "df": df,
        "t value": t,
        "Pr(>|t|)": float(2.0 * stats.t.sf(abs(t), df)),
    }


def kr_contest_md(model, L) -> dict[str, float]:
    """F test of ``Lβ = 0`` as pbkrtest's ``KRmodcomp`` (lmerTest's KR anova rows).

    ``Mean Sq = F_U σ̂²`` with the unscaled ``F_U = β̂ᵀLᵀ(LΦ_ALᵀ)^{-1}Lβ̂ / q``,
    ``F value = λ F_U``, ``NumDF = q = rank(L)``, ``DenDF = m``.
    """
    from pyglmm.inference.satterthwaite import _as_contrast, _ftable_row

    L = np.atleast_2d(_as_contrast(model, L))
    adj = vcov_adjusted(model)
    q = int(np.linalg.matrix_rank(L))
    df2, fscale = _kr_quantities(adj, L, q)
    Lb = L @ model.fixef.to_numpy()
    wald = float(Lb @ np.linalg.solve(L @ adj.vcov_adj @ L.T, Lb))
    return _ftable_row(wald / q, q, df2, float(model.sigma), fscale)


def kenward_roger(model, L) -> pd.DataFrame:
    """Test ``Lβ = 0`` with Kenward-Roger's method (one row, as :func:`satterthwaite`)."""
    from pyglmm.inference.satterthwaite import _as_contrast

    Lc = _as_contrast(model, L)
    if np.ndim(Lc) == 1:
        return pd.DataFrame([kr_contest1d(model, Lc)])
    return pd.DataFrame([kr_contest_md(model, Lc)])


def vcov_kr(model) -> pd.DataFrame:
    """The Kenward-Roger adjusted ``vcov(β̂)`` as a labelled DataFrame."""
    names = list(model.fixef.index)
    return pd.DataFrame(vcov_adjusted(model).vcov_adj, index=names, columns=names)
