"""Moment estimates of θ as start values for the gradient path of ``lmer``.

lme4 starts every fit at ``λ_k = I`` (θ = 1).  For models whose terms are all
scalar, one-way moment estimates computed from the blocks of
``A = [Z X y]ᵀW[Z X y]`` (no pass over the rows) are usually much closer to the
optimum, and the Newton iterations of :func:`pyglmm.mixed.optimizer.newton_ai`
then need one to three fewer evaluations with the gradient (InstEval: REML 5 → 4,
ML 5 → 3).

For term k, with ``r = y − Xβ̂`` the (weighted) ordinary least-squares residual,
``S_l = z_lᵀr_l`` and ``Q_l = z_lᵀz_l`` over the rows of level l, and each term
considered alone (``r_i = z_i b_{l(i)} + e_i``),

.. math::

    E\\Bigl[\\sum_l S_l^2/Q_l\\Bigr] = σ_k^2 \\sum_l Q_l + ℓ_k σ^2 ,

so ``σ̂_k² = (Σ_l S_l²/Q_l − ℓ_k σ̂²) / Σ_l Q_l`` with ``σ̂² = (rᵀr − Σ_l S_l²/Q_l)/(n − p − ℓ_k)``
and ``θ_k = σ̂_k/σ̂``.  The other terms' variation is ignored (it inflates the
estimates a little); the result is only a start.
"""

from __future__ import annotations

import numpy as np

from pyglmm.mixed.blocks import LmmBlocks


def moment_start(blocks: LmmBlocks, floor: float = 0.1) -> np.ndarray | None:
    """One-way moment estimates of θ for scalar terms (None if not applicable).

    Parameters
    ----------
    blocks : LmmBlocks
        Only ``A``'s blocks are read (so it also works for blocks summed over
        partitions of a distributed data set).
    floor : float
        Smallest start value: θ_k = 0 is a stationary point of the criterion
        (it is even in a scalar θ_k), so starting there would stall.

    Returns
    -------
    numpy.ndarray or None
        θ in the order of ``blocks.terms``; None when a term is not scalar, two
        terms share a factor, or the estimates are not finite.
    """
    b = blocks
    if len(b.eterms) != len(b.terms) or any(t.q != 1 for t in b.terms):
        return None
    m1, mz, p = b.m - 1, b.mz, b.p
    Arr = b.Arr
    if p:
        XtX = Arr[mz:m1, mz:m1]
        Xty = Arr[mz:m1, m1]
        try:
            beta = np.linalg.solve(XtX, Xty)
        except np.linalg.LinAlgError:
            return None
        rr = float(Arr[m1, m1] - beta @ Xty)
    else:
        beta = np.zeros(0)
        rr = float(Arr[m1, m1])
    pad = np.zeros(m1)
    pad[mz:] = beta
    RT = b.Rd_T if getattr(b, "Rd_T", None) is not None else b._RT
    S = [b.Ry - RT @ pad]
    Q = [b.A00[:, 0, 0]]
    Sr = Arr[:mz, m1] - Arr[:mz, mz:m1] @ beta
    Qr = np.diagonal(Arr)[:mz]
    for sl in b.rest_slices:
        S.append(Sr[sl])
        Q.append(Qr[sl])
    theta = np.empty(len(S))
    for k, (s, q) in enumerate(zip(S, Q, strict=True)):
        used = q > 0
        nlev = int(np.count_nonzero(used))
        ssb = float(np.sum(s[used] ** 2 / q[used]))
        dfw = b.n - p - nlev
        s2 = (rr - ssb) / dfw if dfw > 0 else np.nan
        if not (np.isfinite(s2) and s2 > 0):
            return None
        s2b = (ssb - nlev * s2) / float(np.sum(q[used]))
        theta[k] = np.sqrt(max(s2b, 0.0) / s2)
    if not np.all(np.isfinite(theta)):
        return None
    return np.maximum(theta, floor)
