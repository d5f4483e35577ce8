r"""Locally weighted scatterplot smoothing, R's ``lowess`` (``clowess``, Cleveland 1979).

At an evaluation point :math:`x_0` a straight line is fitted by weighted least squares to
the :math:`\lfloor f n \rfloor` nearest points, with tricube weights
:math:`(1 - (|x - x_0|/h)^3)^3`, :math:`h` the distance to the farthest of them. Points
closer than ``delta`` to the last evaluation point are not fitted but interpolated linearly
(R's default ``delta`` is 1% of the range of ``x``). Each of the ``iterations`` robustness
steps multiplies the weights by the bisquare :math:`(1 - (r_i/6m)^2)^2` of the residuals,
:math:`m` the median absolute residual.
"""

from __future__ import annotations

import numpy as np


def _neighbourhood_radius(x: np.ndarray, i: int, k: int) -> float:
    """Distance from ``x[i]`` to the farthest of its ``k`` nearest points (``x`` sorted).

    The ``k`` nearest points form a window ``x[l : l + k]``; the best ``l`` is the first
    at which moving the window right stops helping, found by bisection.
    """
    n = x.size
    xs = x[i]
    lo, hi = max(0, i - k + 1), min(i, n - k)
    while lo < hi:  # first l with x[l + k] - xs >= xs - x[l] (moving right no longer helps)
        mid = (lo + hi) // 2
        if mid + k < n and x[mid + k] - xs < xs - x[mid]:
            lo = mid + 1
        else:
            hi = mid
    return float(max(xs - x[lo], x[lo + k - 1] - xs))


def _fit_at(x: np.ndarray, y: np.ndarray, rw: np.ndarray, i: int, k: int, rng: float) -> float:
    """The local linear fit at ``x[i]`` (R's ``lowest``); ``x`` sorted."""
    xs = x[i]
    h = _neighbourhood_radius(x, i, k)
    h9, h1 = 0.999 * h, 0.001 * h
    a_idx = int(np.searchsorted(x, xs - h9, side="left"))
    b_idx = int(np.searchsorted(x, xs + h9, side="right"))
    xw, yw = x[a_idx:b_idx], y[a_idx:b_idx]
    dist = np.abs(xw - xs)
    if h > 0:
        u = dist / h
        t = 1.0 - u * u * u
        w = t * t * t
        w[dist <= h1] = 1.0
    else:
        w = np.ones_like(xw)
    w = w * rw[a_idx:b_idx]
    total = w.sum()
    if total <= 0:
        return float(y[i])
    w /= total
    if h > 0:
        a = float((w * xw).sum())
        dx = xw - a
        c = float((w * dx * dx).sum())
        if np.sqrt(c) > 0.001 * rng:
            b = xs - a
            w *= (b / c) * dx + 1.0
    return float((w * yw).sum())


def _smooth_pass(x, y, rw, k, delta, rng) -> np.ndarray:
    n = x.size
    ys = np.empty(n)
    last = -1
    i = 0
    while True:
        ys[i] = _fit_at(x, y, rw, i, k, rng)
        if last < i - 1:  # interpolate the skipped points
            denom = x[i] - x[last]
            alpha = (x[last + 1 : i] - x[last]) / denom
            ys[last + 1 : i] = alpha * ys[i] + (1.0 - alpha) * ys[last]
        last = i
        cut = x[last] + delta
        i = last + 1
        while i < n:
            if x[i] > cut:
                break
            if x[i] == x[last]:
                ys[i] = ys[last]
                last = i
            i += 1
        i = max(last + 1, i - 1)
        if last >= n - 1:
            return ys


def lowess(
    x: np.ndarray,
    y: np.ndarray,
    frac: float = 2.0 / 3.0,
    iterations: int = 3,
    delta: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """R's ``lowess(x, y, f, iter, delta)``: sorted ``x`` and the smoothed values.

    Parameters
    ----------
    x, y : numpy.ndarray
        Data; pairs with a non-finite value are dropped.
    frac : float
        Span :math:`f` (R's default 2/3).
    iterations : int
        Robustness iterations (R's ``iter``; ``plot.lm`` uses 3 for linear models, 0 for
        GLMs).
    delta : float, optional
        Interpolate within this distance of the last fitted point; default 1% of the range.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    order = np.argsort(x[ok], kind="stable")
    x, y = x[ok][order], y[ok][order]
    n = x.size
    if n < 2:
        return x, y.copy()
    rng = float(x[-1] - x[0])
    if delta is None:
        delta = 0.01 * rng
    k = int(min(max(int(frac * n + 1e-7), 2), n))
    rw = np.ones(n)
    ys = _smooth_pass(x, y, rw, k, delta, rng)
    for _ in range(iterations):
        res = y - ys
        absres = np.abs(res)
        cmad = 6.0 * float(np.median(absres))
        if cmad < 1e-7 * float(np.mean(np.abs(y))):
            break
        c9, c1 = 0.999 * cmad, 0.001 * cmad
        rw = np.where(
            absres <= c1, 1.0, np.where(absres > c9, 0.0, (1 - (absres / cmad) ** 2) ** 2)
        )
        ys = _smooth_pass(x, y, rw, k, delta, rng)
    return x, ys
