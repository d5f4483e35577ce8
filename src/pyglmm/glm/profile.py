r"""Profile-likelihood confidence intervals for GLM coefficients, as R's ``confint.glm``.

For coefficient :math:`\beta_j` the model is refitted with :math:`\beta_j` fixed
at :math:`\hat\beta_j \pm k\,\delta\,\mathrm{se}_j` (an offset), :math:`k = 1, 2, \dots`,
and the signed root of the scaled deviance difference is recorded,

.. math::

    z(\beta_j) = \operatorname{sign}(\beta_j - \hat\beta_j)
    \sqrt{\{D(\beta_j) - D(\hat\beta)\}/\hat\phi},

until :math:`|z|` exceeds :math:`z_{\max} = \sqrt{\chi^2_{1, 1-\alpha}}` (dispersion
known) or :math:`\sqrt{F_{1, n-p, 1-\alpha}}` (estimated; then :math:`z` is
:math:`\tau` of MASS), with :math:`\alpha = (1 - \text{level})/4` and
:math:`\delta = z_{\max}/5`. An interpolating cubic spline (Forsythe, Malcolm and
Moler's end conditions, R's ``spline(method = "fmm")``) through
:math:`(\beta_j, z)` is evaluated on a grid and inverted by linear interpolation
at :math:`z = \Phi^{-1}(\alpha/2)` and :math:`\Phi^{-1}(1-\alpha/2)` — exactly
the steps of MASS's ``profile.glm`` and ``confint.profile.glm`` (in ``stats``
since R 4.4), so the numbers agree with R's.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from pyglmm.errors import PyglmmError
from pyglmm.glm.inference import percent_labels, select_parameters
from pyglmm.glm.irls import fit_irls

if TYPE_CHECKING:  # pragma: no cover
    from pyglmm.glm.model import GeneralizedLinearModel


def fmm_spline_coef(x: np.ndarray, y: np.ndarray):
    """Coefficients ``(b, c, d)`` of R's ``fmm`` cubic spline through ``(x, y)``."""
    n = len(x)
    b = np.zeros(n)
    c = np.zeros(n)
    d = np.zeros(n)
    if n < 2:
        raise PyglmmError("a spline needs at least two points")
    if n < 3:
        t = (y[1] - y[0]) / (x[1] - x[0])
        b[:] = t
        return b, c, d
    nm1 = n - 1
    # 0-based transcription of R's fmm_spline (splines.c)
    d[0] = x[1] - x[0]
    c[1] = (y[1] - y[0]) / d[0]
    for i in range(1, nm1):
        d[i] = x[i + 1] - x[i]
        b[i] = 2.0 * (d[i - 1] + d[i])
        c[i + 1] = (y[i + 1] - y[i]) / d[i]
        c[i] = c[i + 1] - c[i]
    b[0] = -d[0]
    b[nm1] = -d[n - 2]
    c[0] = c[nm1] = 0.0
    if n > 3:
        c[0] = c[2] / (x[3] - x[1]) - c[1] / (x[2] - x[0])
        c[nm1] = c[n - 2] / (x[nm1] - x[n - 3]) - c[n - 3] / (x[n - 2] - x[n - 4])
        c[0] = c[0] * d[0] * d[0] / (x[3] - x[0])
        c[nm1] = -c[nm1] * d[n - 2] * d[n - 2] / (x[nm1] - x[n - 4])
    for i in range(1, n):
        t = d[i - 1] / b[i - 1]
        b[i] = b[i] - t * d[i - 1]
        c[i] = c[i] - t * c[i - 1]
    c[nm1] = c[nm1] / b[nm1]
    for i in range(n - 2, -1, -1):
        c[i] = (c[i] - d[i] * c[i + 1]) / b[i]
    b[nm1] = (y[nm1] - y[n - 2]) / d[n - 2] + d[n - 2] * (c[n - 2] + 2.0 * c[nm1])
    for i in range(nm1):
        b[i] = (y[i + 1] - y[i]) / d[i] - d[i] * (c[i + 1] + 2.0 * c[i])
        d[i] = (c[i + 1] - c[i]) / d[i]
        c[i] = 3.0 * c[i]
    c[nm1] = 3.0 * c[nm1]
    d[nm1] = d[n - 2]
    return b, c, d


def _regularize(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R's ``regularize.values(ties = mean)``: sort by x and average y over tied x."""
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    ux, inv = np.unique(x, return_inverse=True)
    if len(ux) == len(x):
        return x, y
    sums = np.bincount(inv, y)
    counts = np.bincount(inv)
    return ux, sums / counts


def r_spline(x: np.ndarray, y: np.ndarray, n: int | None = None):
    """R's ``spline(x, y, n = 3 * length(x), method = "fmm")``: points on a regular grid."""
    n = 3 * len(x) if n is None else n
    x, y = _regularize(np.asarray(x, float), np.asarray(y, float))
    b, c, d = fmm_spline_coef(x, y)
    u = np.linspace(x[0], x[-1], n)
    i = np.clip(np.searchsorted(x, u, side="right") - 1, 0, len(x) - 1)
    dx = u - x[i]
    v = y[i] + dx * (b[i] + dx * (c[i] + dx * d[i]))
    return u, v


def r_approx(x: np.ndarray, y: np.ndarray, xout: np.ndarray) -> np.ndarray:
    """R's ``approx(x, y, xout)`` (linear, ``rule = 1``: NA outside the range, ties = mean)."""
    x, y = _regularize(np.asarray(x, float), np.asarray(y, float))
    xout = np.asarray(xout, float)
    out = np.interp(xout, x, y)
    out[(xout < x[0]) | (xout > x[-1])] = np.nan
    return out


def profile_coefficient(
    model: GeneralizedLinearModel, name: str, alpha: float, maxsteps: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Profile of one coefficient: values of :math:`\\beta_j` and signed roots :math:`z`."""
    names = list(model.coef.index)
    j = names.index(name)
    nonA = ~model.aliased
    X = model.model_matrix
    n, p = X.shape
    fam_name = model.family.name
    if fam_name in ("binomial", "poisson"):
        zmax = np.sqrt(stats.chi2.ppf(1 - alpha, 1))
    else:
        # MASS switches on family(fit)$family: Gamma, negative binomial(theta) ("Negative
        # Binomial(2)") and the quasi/gaussian families fall through to the F quantile.
        zmax = np.sqrt(stats.f.ppf(1 - alpha, 1, n - p))
    delta = zmax / 5
    se = model.se.iloc[j]
    b0 = model.coef.to_numpy()
    a = nonA.copy()
    a[j] = False
    Xi = X[:, a]
    offset = model.offset
    y_fit, w = model._profile_response()
    zs = [0.0]
    bs = [b0[j]]
    for sgn in (-1.0, 1.0):
        step = 0
        z = 0.0
        LP = X[:, nonA] @ b0[nonA] + offset
        while True:
            step += 1
            if not (step < maxsteps and abs(z) < zmax):
                break
            bi = b0[j] + sgn * step * delta * se
            o = offset + X[:, j] * bi
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fm = fit_irls(
                    Xi,
                    y_fit,
                    model.family,
                    weights=w,
                    offset=o,
                    etastart=LP,
                    control=model.control,
                    warn=False,
                )
            coef_i = np.where(np.isnan(fm.coef), 0.0, fm.coef)
            LP = Xi @ coef_i + o
            zz = (fm.deviance - model.deviance) / model.dispersion
            if zz > -1e-3:
                zz = max(zz, 0.0)
            else:
                raise PyglmmError(
                    "profiling has found a better solution, so original fit had not converged"
                )
            z = sgn * np.sqrt(zz)
            zs.append(z)
            bs.append(bi)
    zs_arr, bs_arr = np.asarray(zs), np.asarray(bs)
    order = np.argsort(zs_arr, kind="stable")
    return bs_arr[order], zs_arr[order]


def confint_profile(model: GeneralizedLinearModel, parm=None, level: float = 0.95) -> pd.DataFrame:
    """Profile-likelihood intervals (R's ``confint.glm``)."""
    names = select_parameters(model, parm)
    alpha = (1 - level) / 4
    a = (1 - level) / 2
    cutoff = stats.norm.ppf([a, 1 - a])
    out = np.full((len(names), 2), np.nan)
    for r, name in enumerate(names):
        j = list(model.coef.index).index(name)
        if model.aliased[j]:
            continue
        bs, zs = profile_coefficient(model, name, alpha)
        sx, sy = r_spline(bs, zs)
        out[r] = r_approx(sy, sx, cutoff)
    return pd.DataFrame(out, index=names, columns=percent_labels(level))
