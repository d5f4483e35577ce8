r"""Wald inference for GLMs: intervals, tests of linear hypotheses, confidence ellipsoids.

With :math:`\hat V = \hat\phi (X^\top W X)^{-1}` the estimated covariance of
:math:`\hat\beta` (seed notes 3.4):

* Wald intervals :math:`\hat\beta_j \pm z_{1-\alpha/2}\sqrt{\hat V_{jj}}` (R's
  ``confint.default``, normal quantiles whatever the family).
* The multivariate Wald test of :math:`H_0: L\beta = c` (:math:`q` rows):
  :math:`W = (L\hat\beta - c)^\top (L \hat V L^\top)^{-1}(L\hat\beta - c)`,
  referred to :math:`\chi^2_q` when :math:`\phi` is known and :math:`W/q` to
  :math:`F_{q, n-p}` when it is estimated.
* The simultaneous confidence region for :math:`k` coefficients:
  :math:`(\hat\beta - \beta)^\top \hat V^{-1} (\hat\beta - \beta) \le \chi^2_{k, 1-\alpha}`
  when :math:`\phi` is known, and
  :math:`(\hat\beta - \beta)^\top \hat V^{-1} (\hat\beta - \beta)/k \le F_{k, n-p, 1-\alpha}`
  when it is estimated. (The notes print the quadratic form without the
  :math:`1/k` in the F case; the F distribution of the Wald statistic needs it.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from pyglmm.errors import PyglmmError

if TYPE_CHECKING:  # pragma: no cover
    from pyglmm.glm.model import GeneralizedLinearModel


def percent_labels(level: float) -> list[str]:
    """R's column names of an interval, e.g. ``["2.5 %", "97.5 %"]``."""
    a = (1 - level) / 2
    out = []
    for q in (a, 1 - a):
        v = round(100 * q, 1)
        txt = f"{v:.1f}".rstrip("0").rstrip(".") if v != int(v) else f"{int(v)}"
        out.append(f"{txt} %")
    return out


def select_parameters(model, parm: str | Sequence[str] | Sequence[int] | None) -> list[str]:
    """Coefficient names from ``parm`` (names, 0-based positions, or None for all)."""
    names = list(model.coef.index)
    if parm is None:
        return names
    if isinstance(parm, str | int | np.integer):
        parm = [parm]
    out = []
    for p in parm:
        if isinstance(p, int | np.integer):
            if not 0 <= p < len(names):
                raise PyglmmError(f"parameter position {p} out of range 0..{len(names) - 1}")
            out.append(names[p])
        elif p in names:
            out.append(p)
        else:
            raise PyglmmError(f"unknown coefficient {p!r}; coefficients: {names}")
    return out


def confint_wald(model: GeneralizedLinearModel, parm=None, level: float = 0.95) -> pd.DataFrame:
    r"""Wald intervals :math:`\hat\beta_j \pm z_{1-\alpha/2}\,\mathrm{se}_j` (confint.default)."""
    names = select_parameters(model, parm)
    z = stats.norm.ppf(1 - (1 - level) / 2)
    b = model.coef[names].to_numpy()
    se = model.se[names].to_numpy()
    return pd.DataFrame(
        np.column_stack([b - z * se, b + z * se]), index=names, columns=percent_labels(level)
    )


@dataclass(frozen=True)
class WaldTest:
    r"""Result of a multivariate Wald test of :math:`L\beta = c`.

    Attributes
    ----------
    statistic : float
        :math:`W`; with ``test == "F"`` the reported statistic is :math:`F = W/q`.
    df : int
        :math:`q`, the number of restrictions.
    df_denom : float
        :math:`n - p` for the F test (inf for chi-square).
    p_value : float
    test : str
        ``"Chisq"`` (dispersion known) or ``"F"`` (estimated).
    chisq : float
        :math:`W` whatever the test.
    """

    statistic: float
    df: int
    df_denom: float
    p_value: float
    test: str
    chisq: float
    estimate: np.ndarray
    rhs: np.ndarray

    def __str__(self) -> str:
        if self.test == "F":
            return (
                f"Wald test of {self.df} linear restriction(s): F = {self.statistic:.6g} on "
                f"{self.df} and {self.df_denom:g} df, p-value = {self.p_value:.4g}"
            )
        return (
            f"Wald test of {self.df} linear restriction(s): Chisq = {self.statistic:.6g} on "
            f"{self.df} df, p-value = {self.p_value:.4g}"
        )


def hypothesis_matrix(model, L) -> np.ndarray:
    """The matrix :math:`L` over all coefficients from an array, a dict or coefficient names.

    ``L`` may be a ``(q, p)`` array (or one row), a dict ``{name: weight}`` (one
    restriction), a list of such dicts, or a list of coefficient names (each
    tested equal to ``rhs``) or term labels (all coefficients of the term, e.g.
    ``["educ"]`` for the 3 contrasts of a 4-level factor).
    """
    names = list(model.coef.index)
    p = len(names)

    def row_from_dict(d) -> np.ndarray:
        r = np.zeros(p)
        for k, v in d.items():
            if k not in names:
                raise PyglmmError(f"unknown coefficient {k!r} in the hypothesis")
            r[names.index(k)] = float(v)
        return r

    if isinstance(L, dict):
        return row_from_dict(L)[None, :]
    if isinstance(L, str):
        L = [L]
    if isinstance(L, list | tuple) and L and all(isinstance(x, str | dict) for x in L):
        terms = list(getattr(model, "terms", []))
        assign = np.asarray(getattr(model, "assign", []))
        rows = []
        for x in L:
            if isinstance(x, dict):
                rows.append(row_from_dict(x))
            elif x not in names and x in terms:
                # a term label: all its (non-aliased) coefficients
                cols = np.flatnonzero((assign == terms.index(x) + 1) & ~model.aliased)
                rows.extend(row_from_dict({names[j]: 1.0}) for j in cols)
            else:
                rows.append(row_from_dict({x: 1.0}))
        return np.vstack(rows)
    M = np.atleast_2d(np.asarray(L, dtype=float))
    if M.shape[1] != p:
        raise PyglmmError(f"the hypothesis matrix must have {p} columns (one per coefficient)")
    return M


def wald_test(model: GeneralizedLinearModel, L, rhs=0.0) -> WaldTest:
    r"""Multivariate Wald test of :math:`H_0: L\beta = c`."""
    M = hypothesis_matrix(model, L)
    q = M.shape[0]
    c = np.broadcast_to(np.asarray(rhs, dtype=float), (q,)).astype(float)
    keep = ~model.aliased
    if np.any(M[:, ~keep] != 0):
        raise PyglmmError("the hypothesis involves aliased (not estimable) coefficients")
    Mk = M[:, keep]
    b = model.coef.to_numpy()[keep]
    V = model.vcov.to_numpy()[np.ix_(keep, keep)]
    d = Mk @ b - c
    S = Mk @ V @ Mk.T
    try:
        W = float(d @ np.linalg.solve(S, d))
    except np.linalg.LinAlgError:
        raise PyglmmError("the restrictions are linearly dependent (L V L' is singular)") from None
    if model.dispersion_estimated:
        F = W / q
        return WaldTest(
            F,
            q,
            float(model.df_resid),
            float(stats.f.sf(F, q, model.df_resid)),
            "F",
            W,
            Mk @ b,
            c,
        )
    return WaldTest(W, q, float("inf"), float(stats.chi2.sf(W, q)), "Chisq", W, Mk @ b, c)


@dataclass
class ConfidenceRegion:
    r"""Simultaneous Wald confidence ellipsoid for several coefficients.

    The region is :math:`\{\beta: (\beta - \hat\beta)^\top \hat V^{-1}(\beta - \hat\beta) \le c\}`
    with :math:`c = \chi^2_{k,1-\alpha}` (dispersion known) or
    :math:`c = k F_{k,n-p,1-\alpha}` (estimated).
    """

    names: list[str]
    center: np.ndarray
    cov: np.ndarray
    level: float
    critical: float
    distribution: str

    @classmethod
    def from_model(cls, model, parm=None, level: float = 0.95) -> ConfidenceRegion:
        names = select_parameters(model, parm)
        if model.aliased[[list(model.coef.index).index(n) for n in names]].any():
            raise PyglmmError("aliased coefficients have no confidence region")
        k = len(names)
        center = model.coef[names].to_numpy()
        cov = model.vcov.loc[names, names].to_numpy()
        if model.dispersion_estimated:
            crit = k * stats.f.ppf(level, k, model.df_resid)
            dist = f"F({k}, {model.df_resid})"
        else:
            crit = stats.chi2.ppf(level, k)
            dist = f"Chisq({k})"
        return cls(names, center, cov, level, float(crit), dist)

    def distance(self, beta) -> np.ndarray:
        r"""Quadratic form :math:`(\beta - \hat\beta)^\top \hat V^{-1}(\beta - \hat\beta)`."""
        B = np.atleast_2d(np.asarray(beta, dtype=float))
        if B.shape[-1] != len(self.names):
            raise PyglmmError(f"points must have {len(self.names)} coordinates ({self.names})")
        D = B - self.center
        sol = np.linalg.solve(self.cov, D.T).T
        out = np.sum(D * sol, axis=1)
        return out if np.ndim(beta) > 1 else out[0]

    def contains(self, beta) -> bool | np.ndarray:
        """Whether the point(s) lie inside the region."""
        return self.distance(beta) <= self.critical

    def boundary(self, n_points: int = 200) -> pd.DataFrame:
        """Points on the boundary ellipse (two coefficients only), for plotting."""
        if len(self.names) != 2:
            raise PyglmmError("the boundary can be drawn for exactly two coefficients")
        t = np.linspace(0, 2 * np.pi, n_points)
        Lc = np.linalg.cholesky(self.cov)
        pts = self.center[:, None] + np.sqrt(self.critical) * Lc @ np.vstack([np.cos(t), np.sin(t)])
        return pd.DataFrame(pts.T, columns=self.names)
