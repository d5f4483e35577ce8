"""A bounded BOBYQA (nlopt) for the inner optimizations of profiling and ML refits."""

from __future__ import annotations

import math
from collections.abc import Callable

import nlopt
import numpy as np


def minimize_bobyqa(
    fun: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray | None = None,
    *,
    xtol_abs: float = 1e-8,
    ftol_abs: float = 1e-8,
    maxeval: int = 100_000,
) -> tuple[np.ndarray, float]:
    """Minimize ``fun`` under box constraints with nlopt's ``LN_BOBYQA`` (lme4's
    ``nloptwrap`` settings by default); returns the best point seen and its value.

    One-dimensional problems use ``LN_BOBYQA`` too (nlopt supports it)."""
    x0 = np.asarray(x0, dtype=float)
    n = x0.size
    lower = np.asarray(lower, dtype=float)
    upper = np.full(n, np.inf) if upper is None else np.asarray(upper, dtype=float)
    best = [math.inf, x0.copy()]

    def f(x: np.ndarray, grad: np.ndarray) -> float:
        v = float(fun(x))
        if not math.isfinite(v):
            v = 1e300
        if v < best[0]:
            best[0] = v
            best[1] = x.copy()
        return v

    if n == 0:
        return x0, float(fun(x0))
    opt = nlopt.opt(nlopt.LN_BOBYQA, n)
    opt.set_min_objective(f)
    opt.set_lower_bounds(np.where(np.isfinite(lower), lower, -np.inf))
    opt.set_upper_bounds(np.where(np.isfinite(upper), upper, np.inf))
    opt.set_xtol_abs(xtol_abs)
    opt.set_ftol_abs(ftol_abs)
    opt.set_maxeval(int(maxeval))
    x = np.clip(x0, lower, upper)
    try:
        opt.optimize(x)
    except (nlopt.RoundoffLimited, RuntimeError, ValueError):
        pass
    return np.asarray(best[1]), float(best[0])


def refit_ml(model):
    """Refit an LMM by maximum likelihood (same structure), polished to ~1e-10.

    A tight BOBYQA run from the REML θ locates the ML optimum; the model's own
    :meth:`refit` then builds the result from there (so it is never worse than
    lme4's ``refitML``, whose default tolerances stop ~1e-7 short on flat optima).
    """
    obj = model.objective_function(reml=False)
    x, _ = minimize_bobyqa(
        obj, np.asarray(model.theta), model.theta_lower, xtol_abs=1e-10, ftol_abs=1e-12
    )
    return model.refit(reml=False, start=x)
