r"""Least squares by Householder QR with R's limited column pivoting (LINPACK ``dqrdc2``).

For the (weighted) model :math:`W^{1/2} y = W^{1/2} X \beta + \varepsilon`, the QR
decomposition :math:`W^{1/2} X P = Q R` gives

.. math::

    \hat\beta = R_{11}^{-1} (Q^\top W^{1/2} y)_{1:r}, \qquad
    \mathrm{RSS} = \sum_{i > r} (Q^\top W^{1/2} y)_i^2, \qquad
    (X^\top W X)^{-1} = R_{11}^{-1} R_{11}^{-\top},

with :math:`r` the rank. As R's ``lm`` (``dqrdc2`` with ``tol = 1e-7``), columns are
kept in their order except that a column whose norm, after removing its projection on
the columns accepted before it, is below ``tol`` times its original norm is moved to
the end and reported as *aliased* (its coefficient is NA). The *effects*
:math:`Q^\top W^{1/2} y` give R's sequential (type I) sums of squares.

Cases with zero prior weight take no part in the fit (R's ``lm.wfit``); their fitted
values are :math:`x_i^\top\hat\beta` and their residuals :math:`y_i - x_i^\top\hat\beta`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

#: R's ``lm`` tolerance for detecting linear dependence among the columns of X.
QR_TOL = 1e-7


@dataclass(frozen=True)
class PivotedQR:
    """Householder QR with R's limited pivoting of (weighted) ``X`` and the effects of ``y``.

    Attributes
    ----------
    r : numpy.ndarray
        Upper-triangular ``rank x rank`` factor of the non-aliased columns.
    pivot : numpy.ndarray
        Column order used (non-aliased columns first, in their original order).
    rank : int
    effects : numpy.ndarray
        :math:`Q^\top y`; its first ``rank`` entries go with ``pivot[:rank]`` (only those are
        kept when the model matrix has full rank).
    """

    r: np.ndarray
    pivot: np.ndarray
    rank: int
    effects: np.ndarray

    @property
    def aliased(self) -> np.ndarray:
        """Boolean mask over the original columns: True for the aliased ones."""
        mask = np.ones(len(self.pivot), dtype=bool)
        mask[self.pivot[: self.rank]] = False
        return mask


def pivoted_qr(x: np.ndarray, y: np.ndarray, tol: float = QR_TOL) -> PivotedQR:
    """QR decomposition of ``x`` with R's ``dqrdc2`` pivoting, applied also to ``y``.

    Parameters
    ----------
    x : numpy.ndarray
        ``(n, p)`` matrix (already multiplied by the square roots of the weights).
    y : numpy.ndarray
        ``(n,)`` response (likewise weighted).
    tol : float
        Relative tolerance for rank detection (R's ``lm`` uses ``1e-7``).
    """
    a = np.array(x, dtype=float, copy=True, order="F")
    qty = np.array(y, dtype=float, copy=True)
    n, p = a.shape
    pivot = np.arange(p)
    original = np.linalg.norm(a, axis=0)
    reference = np.where(original == 0, 1.0, original)
    if 0 < p <= n:
        # Fast path (LAPACK): without pivoting |R_jj| is the norm of column j after removing
        # its projection on columns 1..j-1, which is dqrdc2's criterion; if no column fails
        # it, the unpivoted QR is the pivoted one.
        q, r = linalg.qr(a, mode="economic", check_finite=False)
        if np.all(np.abs(np.diag(r)) >= reference * tol):
            return PivotedQR(r=np.triu(r), pivot=pivot, rank=p, effects=q.T @ qty)
    k = p  # columns l >= k have been moved to the end as aliased
    lup = min(n, p)
    for l in range(lup):
        while l < k and np.linalg.norm(a[l:, l]) < reference[l] * tol:
            order = np.r_[np.arange(l), np.arange(l + 1, p), l]
            a = a[:, order]
            pivot = pivot[order]
            reference = reference[order]
            k -= 1
        if l >= k or l == n - 1:
            continue
        col = a[l:, l]
        alpha = np.linalg.norm(col)
        if alpha == 0:
            continue
        v = col.copy()
        v[0] += np.copysign(alpha, col[0]) if col[0] != 0 else alpha
        vnorm2 = float(v @ v)
        if vnorm2 == 0:
            continue
        beta = 2.0 / vnorm2
        a[l:, l:] -= beta * np.outer(v, v @ a[l:, l:])
        qty[l:] -= beta * v * (v @ qty[l:])
        a[l + 1 :, l] = 0.0
    rank = min(k, n)
    r = np.triu(a[:rank, :rank])
    return PivotedQR(r=r, pivot=pivot, rank=rank, effects=qty)


@dataclass(frozen=True)
class LeastSquaresFit:
    r"""The numbers of a (weighted) least-squares fit.

    Attributes
    ----------
    coef : numpy.ndarray
        Length ``p``; NaN for aliased columns.
    aliased : numpy.ndarray of bool
    rank : int
    qr : PivotedQR
        Of the weighted model matrix restricted to cases with positive weight.
    fitted : numpy.ndarray
        :math:`X\hat\beta + \text{offset}` for every case (zero-weight cases included).
    residuals : numpy.ndarray
        :math:`y - \hat\mu` (unweighted).
    rss : float
        :math:`\sum_i w_i (y_i - \hat\mu_i)^2`.
    n_used : int
        Cases with positive weight.
    df_resid : int
        ``n_used - rank``.
    """

    coef: np.ndarray
    aliased: np.ndarray
    rank: int
    qr: PivotedQR
    fitted: np.ndarray
    residuals: np.ndarray
    rss: float
    n_used: int
    df_resid: int

    def unscaled_cov(self) -> np.ndarray:
        r""":math:`(X^\top W X)^{-1}` over the non-aliased columns (in their original order)."""
        rinv = linalg.solve_triangular(self.qr.r, np.eye(self.rank), lower=False)
        cov_piv = rinv @ rinv.T
        # pivot[:rank] is increasing (dqrdc2 keeps order), so this is the original order
        order = np.argsort(self.qr.pivot[: self.rank])
        return cov_piv[np.ix_(order, order)]


def least_squares(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
    offset: np.ndarray | None = None,
    tol: float = QR_TOL,
) -> LeastSquaresFit:
    r"""Weighted least squares of ``y - offset`` on ``x`` with R's rank detection.

    Parameters
    ----------
    x : numpy.ndarray
        ``(n, p)`` model matrix.
    y : numpy.ndarray
        ``(n,)`` response.
    weights : numpy.ndarray, optional
        Non-negative prior weights; zero-weight cases do not enter the fit.
    offset : numpy.ndarray, optional
        Known component of the linear predictor.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = x.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    off = np.zeros(n) if offset is None else np.asarray(offset, dtype=float)
    used = w > 0
    sw = np.sqrt(w[used])
    z = y[used] - off[used]
    qr = pivoted_qr(x[used] * sw[:, None], z * sw, tol)
    coef = np.full(p, np.nan)
    keep = qr.pivot[: qr.rank]
    if qr.rank:
        coef[keep] = linalg.solve_triangular(qr.r, qr.effects[: qr.rank], lower=False)
    beta = np.where(np.isnan(coef), 0.0, coef)
    fitted = x @ beta + off
    residuals = y - fitted
    rss = float(np.sum(w[used] * residuals[used] ** 2))
    n_used = int(used.sum())
    return LeastSquaresFit(
        coef=coef,
        aliased=qr.aliased,
        rank=qr.rank,
        qr=qr,
        fitted=fitted,
        residuals=residuals,
        rss=rss,
        n_used=n_used,
        df_resid=n_used - qr.rank,
    )
