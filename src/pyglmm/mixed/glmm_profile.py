"""Profile-likelihood confidence intervals for GLMMs (lme4's ``confint(m, method="profile")``).

For a parameter ``ψ`` (a fixed effect, or the standard deviation of a scalar
random-effects term, ``σ_k = θ_k`` for families without a dispersion parameter) the
profiled deviance ``D_p(ψ) = min D(θ, β | ψ)`` is computed by optimizing the stage-2
objective (Laplace or AGQ) over the other parameters, and the signed root

.. math::  ζ(ψ) = \\operatorname{sign}(ψ − \\hat ψ)\\sqrt{D_p(ψ) − D(\\hat θ, \\hat β)}

is solved for ``ζ = ±z_{(1+level)/2}`` (Brent's method).  A lower limit of a standard
deviation whose ``ζ(0)`` does not reach ``−z`` is 0, as lme4 reports it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from pyglmm.errors import PyglmmError
from pyglmm.mixed.optimizer import bobyqa


def _names(model) -> tuple[list[str], list[int]]:
    names, idx = [], []
    k = 0
    for t in model.terms:
        if t.q == 1 and not model.family.estimates_dispersion:
            names.append(f"sd_{t.cnames[0]}|{t.group}")
            idx.append(k)
        k += t.ntheta
    nt = len(model.theta)
    names += list(model.fixef.index)
    idx += list(range(nt, nt + model.p))
    return names, idx


def profile_confint(
    model, level: float = 0.95, parm: list[str] | None = None, **_: Any
) -> pd.DataFrame:
    """Profile intervals for the scalar random-effect SDs and the fixed effects."""
    fun = model.deviance_function()
    x_hat = np.concatenate([model.theta, model.fixef.to_numpy()])
    d_hat = fun(x_hat)
    nt = len(model.theta)
    lower_all = np.concatenate([model.theta_lower, np.full(model.p, -np.inf)])
    names, idx = _names(model)
    if parm is not None:
        keep = [i for i, nm in enumerate(names) if nm in parm]
        if not keep:
            raise PyglmmError(f"no parameters among {parm}; available: {names}")
        names = [names[i] for i in keep]
        idx = [idx[i] for i in keep]
    z = stats.norm.ppf(0.5 + level / 2)
    se_beta = model.se.to_numpy()
    rows = []
    for j in idx:
        others = np.array([i for i in range(len(x_hat)) if i != j])
        warm = {"x": x_hat[others].copy()}

        def profiled(v: float, j=j, others=others, warm=warm) -> float:
            def inner(xo: np.ndarray) -> float:
                x = x_hat.copy()
                x[j] = v
                x[others] = xo
                return fun(x)

            res = bobyqa(inner, warm["x"], lower_all[others], xtol_abs=1e-7, ftol_abs=1e-9)
            if math.isfinite(res.fun):
                warm["x"] = res.x
            return res.fun

        def zeta(v: float, j=j, profiled=profiled) -> float:
            dv = profiled(v) - d_hat
            return math.copysign(math.sqrt(max(dv, 0.0)), v - x_hat[j])

        scale = se_beta[j - nt] if j >= nt else max(0.2 * abs(x_hat[j]), 0.05)
        lims = []
        for side in (-1.0, 1.0):
            warm["x"] = x_hat[others].copy()
            target = side * z
            lo_bound = lower_all[j]
            step = scale
            a = x_hat[j]
            b = a + side * step
            found = False
            for _ in range(30):
                if side < 0 and b <= lo_bound:
                    b = lo_bound
                    if zeta(b) - target > 0:  # ζ at the bound does not reach −z
                        lims.append(float(lo_bound))
                        found = None
                        break
                zb = zeta(b)
                if (zb - target) * side >= 0:
                    found = True
                    break
                a, b = b, b + side * step
                step *= 1.6
            if found is None:
                continue
            if not found:
                lims.append(float("nan"))
                continue
            warm["x"] = x_hat[others].copy()
            root = optimize.brentq(lambda v, t=target: zeta(v) - t, min(a, b), max(a, b), xtol=1e-7)
            lims.append(float(root))
        rows.append(lims)
    pct = [f"{100 * (1 - level) / 2:.1f} %", f"{100 * (1 + level) / 2:.1f} %"]
    # leave the model's PIRLS state at the optimum
    fun(x_hat)
    return pd.DataFrame(rows, index=names, columns=pct)
