"""R's interpolating natural cubic spline and its inverse (``splines::interpSpline`` and
``backSpline``), used to invert likelihood profiles as lme4 does.

A polynomial spline is stored as knots ``k_i`` and coefficients ``c_{i,0..3}`` with
``s(x) = Σ_j c_{i,j}(x − k_i)^j`` on ``(k_i, k_{i+1}]``.  ``backSpline`` of a
monotone spline ``ζ(p)`` is the piecewise cubic ``p(ζ)`` through the same points with
slopes ``1/ζ'(p_i)``; the first and last pieces are quadratics (or lines), as R's.
Outside the knots the inverse is undefined (NaN), as R's ``predict.polySpline``.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline


class PolySpline:
    """Piecewise polynomial with knots and ``(nk, 4)`` coefficients (R's ``polySpline``)."""

    def __init__(self, knots: np.ndarray, coef: np.ndarray) -> None:
        self.knots = np.asarray(knots, dtype=float)
        self.coef = np.asarray(coef, dtype=float)

    def __call__(self, x) -> np.ndarray:
        x = np.atleast_1d(np.asarray(x, dtype=float))
        k = self.knots
        # R's cut(x, knots): intervals (k_i, k_{i+1}], x == k_0 in the first
        i = np.searchsorted(k, x, side="left") - 1
        i = np.where(x == k[0], 0, i)
        ok = (i >= 0) & (i < len(k) - 1) & np.isfinite(x)
        out = np.full(x.shape, np.nan)
        ii = i[ok]
        d = x[ok] - k[ii]
        c = self.coef[ii]
        out[ok] = c[:, 0] + d * (c[:, 1] + d * (c[:, 2] + d * c[:, 3]))
        return out


def interp_spline(x: np.ndarray, y: np.ndarray) -> PolySpline:
    """``splines::interpSpline``: the natural cubic spline through ``(x, y)``."""
    cs = CubicSpline(np.asarray(x, float), np.asarray(y, float), bc_type="natural")
    k = cs.x
    coef = np.column_stack([cs(k), cs(k, 1), cs(k, 2) / 2.0, cs(k, 3) / 6.0])
    return PolySpline(k, coef)


def back_spline(sp: PolySpline) -> PolySpline:
    """``splines::backSpline`` of a monotone (increasing) cubic spline."""
    knots = sp.knots
    coeff = sp.coef
    nk = len(knots)
    nkm1 = nk - 1
    kdiff = np.diff(knots)
    bknots = coeff[:, 0]
    adiff = np.diff(bknots)
    if np.all(adiff < 0):
        rev = True
    elif np.all(adiff > 0):
        rev = False
    else:
        raise ValueError("spline must be monotone")
    b = np.zeros_like(coeff)
    b[:, 0] = knots
    b[:, 1] = 1.0 / coeff[:, 1]
    for i in range(nkm1):
        a = np.array([[adiff[i] ** 2, adiff[i] ** 3], [2 * adiff[i], 3 * adiff[i] ** 2]])
        rhs = np.array([kdiff[i] - adiff[i] * b[i, 1], b[i + 1, 1] - b[i, 1]])
        b[i, 2:4] = np.linalg.solve(a, rhs)
    b[nk - 1, 1:4] = np.nan
    if nk > 2:
        b[0, 3] = 0.0
        b[nkm1 - 1, 3] = 0.0
        a = np.array([[adiff[0], adiff[0] ** 2], [1.0, 2 * adiff[0]]])
        b[0, 1:3] = np.linalg.solve(a, np.array([kdiff[0], 1.0 / coeff[1, 1]]))
        b[nkm1 - 1, 2] = (kdiff[nkm1 - 1] - adiff[nkm1 - 1] * b[nkm1 - 1, 1]) / adiff[nkm1 - 1] ** 2
    if b[0, 2] > 0:
        b[0, 2] = 0.0
        b[0, 1] = kdiff[0] / adiff[0]
    if b[nkm1 - 1, 2] < 0:
        b[nkm1 - 1, 2] = 0.0
        b[nkm1 - 1, 1] = kdiff[nkm1 - 1] / adiff[nkm1 - 1]
    if rev:
        return PolySpline(bknots[::-1], b[::-1])
    return PolySpline(bknots, b)
