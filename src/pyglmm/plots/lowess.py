r"""Locally weighted scatterplot smoothing, as R's ``lowess`` (used by ``panel.smooth``).

At each evaluation point :math:`x_0` a straight line is fitted by weighted least squares
to the :math:`\lceil f n \rceil` nearest points with tricube weights
:math:`(1 - (|x - x_0|/h)^3)^3`, :math:`h` the distance to the farthest of them;
``iterations`` robustness steps then down-weight points with large residuals by the
bisquare :math:`(1 - (r/6m)^2)^2`, :math:`m` the median absolute residual (Cleveland 1979).

For a plot the curve is evaluated at the distinct ``x`` (at most ``max_points`` of them,
else at that many quantiles) and interpolated linearly in between, as R's ``delta``
shortcut does.
"""

from __future__ import annotations

import numpy as np


def _local_fit(x0: np.ndarray, x: np.ndarray, y: np.ndarray, rw: np.ndarray, k: int) -> np.ndarray:
    out = np.empty(x0.size)
    for start in range(0, x0.size, 64):
        xs = x0[start : start + 64]
        dist = np.abs(x[None, :] - xs[:, None])  # (m, n)
        h = np.partition(dist, k - 1, axis=1)[:, k - 1]
        h = np.maximum(h, 1e-12 * max(1.0, float(np.ptp(x))))
        u = np.clip(dist / h[:, None], 0.0, 1.0)
        w = (1.0 - u**3) ** 3 * rw[None, :]
        sw = w.sum(axis=1)
        xbar = (w * x).sum(axis=1) / sw
        ybar = (w * y).sum(axis=1) / sw
        dx = x[None, :] - xbar[:, None]
        sxx = (w * dx**2).sum(axis=1)
        sxy = (w * dx * (y[None, :] - ybar[:, None])).sum(axis=1)
        rng = float(np.ptp(x))
        slope = np.where(np.sqrt(sxx / sw) > 0.001 * rng, sxy / np.where(sxx > 0, sxx, 1), 0.0)
        out[start : start + 64] = ybar + slope * (xs - xbar)
    return out


def lowess(
    x: np.ndarray,
    y: np.ndarray,
    frac: float = 2.0 / 3.0,
    iterations: int = 3,
    max_points: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth ``y`` on ``x``; returns the evaluation points and the smoothed values.

    Parameters
    ----------
    x, y : numpy.ndarray
        Data; non-finite pairs are dropped.
    frac : float
        Span :math:`f`, the fraction of points in each local fit (R's ``f = 2/3``).
    iterations : int
        Robustness iterations (R's ``iter``; ``plot.lm`` uses 3 for linear models, 0 for GLMs).
    max_points : int
        Evaluate at most this many points and interpolate in between.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = x.size
    if n < 2:
        return x, y
    k = int(min(max(np.floor(frac * n + 1e-5), 2), n))
    grid = np.unique(x)
    if grid.size > max_points:
        grid = np.unique(np.quantile(x, np.linspace(0.0, 1.0, max_points)))
    rw = np.ones(n)
    fit_grid = _local_fit(grid, x, y, rw, k)
    for _ in range(iterations):
        fitted = np.interp(x, grid, fit_grid)
        res = np.abs(y - fitted)
        cmad = 6.0 * float(np.median(res))
        if cmad < 1e-7 * float(np.mean(np.abs(y))) or cmad == 0:
            break
        u = res / cmad
        rw = np.where(u < 1.0, (1.0 - u**2) ** 2, 0.0)
        rw[u <= 0.001] = 1.0
        fit_grid = _local_fit(grid, x, y, rw, k)
    return grid, fit_grid
