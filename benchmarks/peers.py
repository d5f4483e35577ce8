"""Thin adapters: one function per package and model kind.

Each ``fit_*`` function takes the data and the model and returns a zero-argument callable that
fits once (what is timed) and an extractor that turns the fitted object into
``(coef, names, objective, n_eval)``; :func:`run` times it and packs a :class:`FitResult`.

Settings of the peers (chosen to give each peer its fastest sensible path, with results
comparable to lme4's / R's):

- statsmodels GLM: ``sm.GLM(y, X, family).fit()`` on a prebuilt design matrix (building it is not
  timed), IRLS with its default ``tol=1e-8`` (relative deviance change, as R's ``epsilon``).
- glum: ``GeneralizedLinearRegressor(alpha=0, family=..., gradient_tol=1e-8)`` on the numeric
  matrix (dense case) or on the DataFrame with the categorical column (factor case, tabmat's
  categorical matrix, ``drop_first=True`` for R's treatment coding). glum's default
  ``gradient_tol=1e-4`` applies to the weight-normalised gradient and stops ~1e-4 away from the
  optimum, so it is tightened to reach the same optimum as the others.
- glmm (Rust kernel): ``glmm.fit(data, formula, family, reml=, satterthwaite=False,
  wald_se="rx", anova_test="Wald")`` -- lme4's outputs (RX-based standard errors) without the
  extra Satterthwaite / Hessian / LRT passes glmm runs by default. Objective: -2 * ``loglik``
  (``Fit.deviance`` omits a data-independent constant).
- mixedlm (Rust backend): ``mixedlm.lmer(formula, data, REML=)`` / ``mixedlm.glmer(formula,
  data, family=Binomial())`` with defaults. Objective: ``REMLcrit()`` / ``deviance`` /
  -2 ``logLik``; evaluations: ``function_evals``.
- statsmodels MixedLM: nested models as ``groups=`` + ``re_formula``; crossed models as one
  group spanning all rows with ``vc_formula`` per factor (``re_formula="0"``). Objective:
  -2 ``llf``.
- statsmodels BinomialBayesMixedGLM: variational Bayes (``fit_vb``), a different estimator: its
  time is shown, its objective is not comparable (posterior means as coefficients).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from common import FitResult, repeat, skipped

Extract = Callable[[Any], tuple[np.ndarray, list[str] | None, float, int | None]]


def run(
    peer: str,
    make: Callable[[], tuple[Callable[[], Any], Extract]],
    *,
    reps: int,
    warmup: bool = False,
    budget: float = 60.0,
    limit: float | None = None,
) -> FitResult:
    """Time one peer; never raise (a failing peer is reported, not fatal)."""
    try:
        fit, extract = make()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            times, out, note = repeat(fit, reps, warmup=warmup, budget=budget, limit=limit)
        coef, names, objective, n_eval = extract(out)
    except ImportError as e:
        return skipped(peer, f"not installed ({e.name})")
    except Exception as e:  # noqa: BLE001 - a peer's failure is a result to print
        msg = f"{type(e).__name__}: {e}".splitlines()[0][:160]
        return skipped(peer, msg)
    return FitResult(
        peer=peer,
        times=times,
        coef=None if coef is None else np.asarray(coef, dtype=float),
        names=names,
        objective=float(objective) if objective is not None else math.nan,
        n_eval=n_eval,
        note=note,
    )


# ---------------------------------------------------------------------------------------------
# pyglmm


def pyglmm_fn(name: str) -> Callable[..., Any] | None:
    """``pyglmm.<name>``, or (before it is exported) ``pyglmm.mixed.<name>.<name>``."""
    try:
        import pyglmm
    except ImportError:
        return None
    fn = getattr(pyglmm, name, None)
    if callable(fn):
        return fn
    try:
        import importlib

        fn = getattr(importlib.import_module(f"pyglmm.mixed.{name}"), name, None)
    except ImportError:
        return None
    return fn if callable(fn) else None


def pyglmm_has(name: str) -> bool:
    return pyglmm_fn(name) is not None


def _pg_coef(m: Any) -> tuple[np.ndarray, list[str] | None]:
    for attr in ("fixef", "coef"):
        c = getattr(m, attr, None)
        if callable(c):
            c = c()
        if c is not None:
            if isinstance(c, pd.Series):
                return c.to_numpy(dtype=float), [str(i) for i in c.index]
            return np.asarray(c, dtype=float), None
    raise AttributeError("pyglmm result has neither fixef nor coef")


def _pg_n_eval(m: Any) -> int | str | None:
    for attr in ("n_eval", "feval", "nfev", "n_evals", "evaluations", "iterations"):
        v = getattr(m, attr, None)
        if isinstance(v, int | np.integer):
            return int(v)
    info = getattr(m, "optinfo", None)
    if isinstance(info, dict):
        for key in ("nevals", "feval", "n_eval", "nfev"):
            if key in info:
                n = int(info[key])
                total = info.get("nevals_total")
                return f"{n} ({int(total)} total)" if total and int(total) != n else n
    return None


def _pg_value(m: Any, attr: str) -> float:
    v = getattr(m, attr)
    return float(v() if callable(v) else v)


def pyglmm_call(spec: dict[str, Any]) -> Callable[[pd.DataFrame], Any]:
    """The pyglmm fit a spec describes (``kind``: glm / lmer / glmer), as ``data -> fit``.
    Shared by the timed runs and the memory probe."""
    kind = spec["kind"]
    formula = spec["formula"]
    fn = pyglmm_fn(kind)
    if fn is None:
        raise ImportError(f"pyglmm.{kind} not available", name="pyglmm")
    if kind == "glm":
        return lambda df: fn(formula, df, family=spec["family"])
    if kind == "lmer":
        return lambda df: fn(formula, df, reml=spec["reml"])
    if kind == "glmer":
        return lambda df: fn(formula, df, family=spec["family"])
    raise ValueError(kind)


def fit_pyglmm(df: pd.DataFrame, spec: dict[str, Any]):
    def make():
        fit = pyglmm_call(spec)

        def extract(m):
            coef, names = _pg_coef(m)
            if spec["kind"] == "glm":
                obj = _pg_value(m, "deviance")
            elif spec["kind"] == "lmer":
                obj = _pg_value(m, "objective")
            else:
                obj = -2.0 * _pg_value(m, "loglik")
            return coef, names, obj, _pg_n_eval(m)

        return (lambda: fit(df)), extract

    return make


# ---------------------------------------------------------------------------------------------
# GLM peers


def glm_design(df: pd.DataFrame, formula_rhs: list[str]) -> np.ndarray:
    """Dense design matrix with intercept and treatment-coded factors (R's column order)."""
    cols = [np.ones(len(df))]
    for term in formula_rhs:
        s = df[term]
        if isinstance(s.dtype, pd.CategoricalDtype):
            codes = s.cat.codes.to_numpy()
            D = np.zeros((len(df), len(s.cat.categories) - 1))
            rows = np.nonzero(codes > 0)[0]
            D[rows, codes[rows] - 1] = 1.0
            cols.append(D)
        else:
            cols.append(s.to_numpy(dtype=float)[:, None])
    return np.column_stack(cols)


def fit_statsmodels_glm(df: pd.DataFrame, terms: list[str], family: str):
    def make():
        import statsmodels.api as sm

        X = glm_design(df, terms)
        y = df["y"].to_numpy(dtype=float)
        fam = {"poisson": sm.families.Poisson(), "binomial": sm.families.Binomial()}[family]

        def extract(r):
            return r.params, None, r.deviance, None

        return (lambda: sm.GLM(y, X, family=fam).fit()), extract

    return make


def fit_glum(df: pd.DataFrame, terms: list[str], family: str):
    def make():
        from glum import GeneralizedLinearRegressor

        has_cat = any(isinstance(df[t].dtype, pd.CategoricalDtype) for t in terms)
        X = df[terms] if has_cat else df[terms].to_numpy(dtype=float)
        y = df["y"].to_numpy(dtype=float)

        def fit():
            model = GeneralizedLinearRegressor(
                alpha=0.0,
                family=family,
                fit_intercept=True,
                gradient_tol=1e-8,
                drop_first=True,
            )
            model.fit(X, y)
            return model

        def extract(model):
            coef = np.concatenate([[model.intercept_], model.coef_])
            eta = model.linear_predictor(X)
            if family == "poisson":
                mu = np.exp(eta)
                with np.errstate(divide="ignore", invalid="ignore"):
                    dev = 2 * np.sum(np.where(y > 0, y * np.log(y / mu), 0.0) - (y - mu))
            else:
                mu = 1 / (1 + np.exp(-eta))
                dev = -2 * np.sum(y * np.log(mu) + (1 - y) * np.log1p(-mu))
            return coef, None, dev, int(model.n_iter_)

        return fit, extract

    return make


# ---------------------------------------------------------------------------------------------
# mixed-model peers


def fit_glmm(df: pd.DataFrame, formula: str, family: str = "gaussian", reml: bool | None = None):
    def make():
        import glmm

        kwargs: dict[str, Any] = {"satterthwaite": False, "wald_se": "rx", "anova_test": "Wald"}
        if family == "gaussian":
            kwargs["reml"] = reml

        def extract(f):
            if not f.converged:
                raise RuntimeError("glmm did not converge")
            return f.beta, list(f.names), -2.0 * f.loglik, int(f.n_eval)

        return (lambda: glmm.fit(df, formula, family, **kwargs)), extract

    return make


def fit_mixedlm(df: pd.DataFrame, formula: str, family: str = "gaussian", reml: bool = True):
    def make():
        import mixedlm

        if family == "gaussian":

            def fit():
                return mixedlm.lmer(formula, df, REML=reml)

            def extract(r):
                fe = r.fixef()
                obj = r.REMLcrit() if reml else _call(r.deviance)
                return np.array(list(fe.values())), list(fe), obj, _int_or_none(r.function_evals)

        else:
            fam = {"binomial": mixedlm.families.Binomial, "poisson": mixedlm.families.Poisson}[
                family
            ]()

            def fit():
                return mixedlm.glmer(formula, df, family=fam)

            def extract(r):
                fe = r.fixef()
                ll = r.logLik()
                ll = float(getattr(ll, "value", ll))
                return (
                    np.array(list(fe.values())),
                    list(fe),
                    -2 * ll,
                    _int_or_none(getattr(r, "n_iter", None)),
                )

        return fit, extract

    return make


def _call(v: Any) -> float:
    return float(v() if callable(v) else v)


def _int_or_none(v: Any) -> int | None:
    v = v() if callable(v) else v
    return int(v) if isinstance(v, int | np.integer) else None


def fit_statsmodels_mixedlm(df: pd.DataFrame, sm_spec: dict[str, Any], reml: bool):
    """``sm_spec``: fixed (formula), groups (column name or None for one group), re_formula,
    vc_formula (dict or None)."""

    def make():
        import statsmodels.formula.api as smf

        groups = sm_spec.get("groups")
        g = df[groups] if groups else np.ones(len(df))

        def fit():
            model = smf.mixedlm(
                sm_spec["fixed"],
                df,
                groups=g,
                re_formula=sm_spec.get("re_formula"),
                vc_formula=sm_spec.get("vc_formula"),
            )
            return model.fit(reml=reml)

        def extract(r):
            k = r.k_fe
            return r.fe_params.to_numpy()[:k], list(r.fe_params.index[:k]), -2 * r.llf, None

        return fit, extract

    return make


def fit_statsmodels_bayes_binomial(
    df: pd.DataFrame, response: str, fixed_terms: list[str], vc_factors: list[str]
):
    """BinomialBayesMixedGLM with a sparse random-effects design (one indicator column per
    level of each factor in ``vc_factors``); ``from_formula`` would build it densely through
    patsy (200,000 x 5,200 doubles = 8.3 GB on the largest case)."""

    def make():
        import scipy.sparse as sp
        from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

        n = len(df)
        blocks, ident = [], []
        for k, f in enumerate(vc_factors):
            codes = df[f].cat.codes.to_numpy()
            nl = len(df[f].cat.categories)
            blocks.append(sp.csr_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, nl)))
            ident.append(np.full(nl, k))

        def fit():
            X = glm_design(df, fixed_terms)
            vc = sp.hstack(blocks, format="csr")
            model = BinomialBayesMixedGLM(
                df[response].to_numpy(dtype=float), X, vc, np.concatenate(ident)
            )
            return model.fit_vb()

        def extract(r):
            return np.asarray(r.fe_mean), None, None, None

        return fit, extract

    return make
