r"""Leverage and leave-one-out influence of a fitted GLM or linear model, as R's ``lm.influence``.

Everything is computed from a thin QR decomposition of :math:`W^{1/2} X`, with
:math:`W` the IRLS working weights at convergence (the prior weights for a linear
model) and :math:`X` the non-aliased columns of the model matrix:

.. math::

    W^{1/2} X = Q R, \qquad
    H = W^{1/2} X (X^\top W X)^{-1} X^\top W^{1/2} = Q Q^\top, \qquad
    h_i = \sum_j Q_{ij}^2 .

With :math:`e_i` the deviance residuals (R's ``weighted.residuals``; for a linear
model :math:`\sqrt{w_i}(y_i - \hat\mu_i)`), :math:`n` the number of cases with
positive weight and :math:`k` the rank,

* leave-one-out scale (R's ``influence()$sigma``)
  :math:`s_{(i)} = \sqrt{(\sum_j e_j^2 - e_i^2/(1-h_i))/(n-k-1)}`;
* change in coefficients when case :math:`i` is dropped (exact for a linear
  model, one-step for a GLM, R's ``dfbeta``)
  :math:`\hat\beta - \hat\beta_{(i)} = (X^\top W X)^{-1} x_i w_i^{1/2} e_i/(1-h_i)
  = R^{-1} Q^\top_{\cdot i}\, e_i/(1-h_i)`.

Cases with a zero prior weight take no part in the fit: their hat value is 0
and their influence measures are NaN, as in R.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

from pyglmm.errors import PyglmmError

_EPS = np.finfo(float).eps


@dataclass(frozen=True)
class InfluenceCore:
    """The pieces of R's ``lm.influence`` for the cases that take part in the fit.

    Attributes
    ----------
    active : numpy.ndarray of bool
        Cases with positive prior (and working) weight, length ``nobs``.
    q : numpy.ndarray
        ``Q`` of the thin QR of :math:`W^{1/2}X` (active rows only), ``n_active x rank``.
    r : numpy.ndarray
        ``R`` of that QR, ``rank x rank``.
    hat : numpy.ndarray
        Diagonal of the hat matrix (active rows), values within ``10 eps`` of 1 set to 1.
    dev_res : numpy.ndarray
        Deviance residuals of the active rows, entries below ``100 eps median|e|`` set to 0.
    pear_res : numpy.ndarray
        Pearson residuals of the active rows.
    sigma : numpy.ndarray
        Leave-one-out scale estimates :math:`s_{(i)}`.
    """

    active: np.ndarray
    q: np.ndarray
    r: np.ndarray
    hat: np.ndarray
    dev_res: np.ndarray
    pear_res: np.ndarray
    sigma: np.ndarray

    @property
    def n(self) -> int:
        """Number of cases in the fit (positive weight)."""
        return int(self.q.shape[0])

    @property
    def rank(self) -> int:
        return int(self.q.shape[1])

    def xtwx_inverse(self) -> np.ndarray:
        r""":math:`(X^\top W X)^{-1} = R^{-1} R^{-\top}` (R's ``chol2inv(qr$qr)``)."""
        rinv = linalg.solve_triangular(self.r, np.eye(self.rank), lower=False)
        return rinv @ rinv.T

    def coefficient_changes(self) -> np.ndarray:
        r"""R's ``lm.influence()$coefficients``: row :math:`i` is :math:`\hat\beta-\hat\beta_{(i)}`.

        Computed as :math:`(R^{-1}Q^\top)^\top_{i\cdot}\, e_i/(1-h_i)`, 0 where :math:`h_i = 1`.
        """
        inv_r_qt = linalg.solve_triangular(self.r, self.q.T, lower=False).T  # n x k
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(self.hat == 1.0, 0.0, self.dev_res / (1.0 - self.hat))
        return inv_r_qt * scale[:, None]


def influence_core(
    x_rank: np.ndarray,
    working_weights: np.ndarray,
    prior_weights: np.ndarray,
    dev_res: np.ndarray,
    pear_res: np.ndarray,
) -> InfluenceCore:
    r"""Compute the thin QR of :math:`W^{1/2}X`, the hat values and :math:`s_{(i)}`.

    Parameters
    ----------
    x_rank : numpy.ndarray
        ``n x rank`` model matrix of the non-aliased columns.
    working_weights, prior_weights : numpy.ndarray
        IRLS weights :math:`W` at convergence and the prior weights (length ``n``).
    dev_res, pear_res : numpy.ndarray
        Deviance and Pearson residuals of all ``n`` cases.
    """
    x_rank = np.asarray(x_rank, dtype=float)
    ww = np.asarray(working_weights, dtype=float)
    pw = np.asarray(prior_weights, dtype=float)
    active = (pw > 0) & (ww > 0)
    xw = np.sqrt(ww[active])[:, None] * x_rank[active]
    if xw.shape[1] == 0:
        q = np.zeros((xw.shape[0], 0))
        r = np.zeros((0, 0))
    else:
        q, r = np.linalg.qr(xw, mode="reduced")
    hat = np.einsum("ij,ij->i", q, q)
    hat[hat > 1.0 - 10.0 * _EPS] = 1.0

    e = np.asarray(dev_res, dtype=float)[active].copy()
    if e.size:
        e[np.abs(e) < 100.0 * _EPS * np.median(np.abs(e))] = 0.0
    n, k = q.shape
    denom = n - k - 1
    total = float(np.sum(e**2))
    with np.errstate(divide="ignore", invalid="ignore"):
        if k == 0:  # R: no leave-one-out change without coefficients
            sigma = np.full(n, np.sqrt(total / n) if n > 0 else np.nan)
        else:
            loo = np.where(hat < 1.0, total - e**2 / (1.0 - hat), total)
            sigma = np.sqrt(loo / denom) if denom > 0 else np.full(n, np.nan)
    return InfluenceCore(
        active=active,
        q=q,
        r=r,
        hat=hat,
        dev_res=e,
        pear_res=np.asarray(pear_res, dtype=float)[active],
        sigma=sigma,
    )


def influential_flags(table: np.ndarray, n_cases: int) -> np.ndarray:
    r"""R's rules of ``influence.measures`` for a matrix [dfbetas | dffit | cov.r | cook.d | hat].

    A case is flagged on a column when :math:`|\mathrm{dfbetas}| > 1`,
    :math:`|\mathrm{dffit}| > 3\sqrt{k/(n-k)}`, :math:`|1-\mathrm{cov.r}| > 3k/(n-k)`,
    :math:`F_{k,n-k}(\mathrm{cook.d}) > 0.5` or :math:`h > 3k/n`, with :math:`k` the
    number of coefficients and :math:`n` the number of cases with :math:`h_i > 0`.
    """
    from scipy import stats

    k = table.shape[1] - 4
    n = n_cases
    if n <= k:
        raise PyglmmError(
            f"influence measures need more cases with positive leverage than coefficients "
            f"(n = {n}, k = {k})"
        )
    with np.errstate(invalid="ignore"):
        absmat = np.abs(table)
        flags = np.column_stack(
            [
                absmat[:, :k] > 1.0,
                absmat[:, k] > 3.0 * np.sqrt(k / (n - k)),
                np.abs(1.0 - table[:, k + 1]) > 3.0 * k / (n - k),
                stats.f.cdf(table[:, k + 2], k, n - k) > 0.5,
                table[:, k + 3] > 3.0 * k / n,
            ]
        )
    return flags
