r"""Analysis of deviance for GLMs, as R's ``anova.glm`` and ``anova.glmlist``.

Sequential table of one fit: the terms are added one at a time (R's order) and the
reduction in deviance :math:`D_{k-1} - D_k` is attributed to term :math:`k`.
Comparison of nested fits :math:`A \subset B`: :math:`D_A - D_B` on
:math:`p_B - p_A` degrees of freedom. Tests (seed notes 3.4):

* ``"Chisq"``/``"LRT"``: :math:`(D_A - D_B)/\hat\phi \sim \chi^2_{\ell}` (the scaled
  deviance difference; :math:`\phi = 1` for Poisson and binomial);
* ``"F"``: :math:`F = \{(D_A - D_B)/\ell\}/\hat\phi \sim F_{\ell, n-p}` with
  :math:`\hat\phi` the Pearson dispersion of the largest model.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from pyglmm.errors import PyglmmError
from pyglmm.glm.irls import fit_irls
from pyglmm.glm.rformat import format_r, print_coefmat
from pyglmm.glm.warn import warn

_TESTS = {"chisq": "Chisq", "lrt": "Chisq", "f": "F", "cp": "Cp", "rao": "Rao"}


class _HeadedTable(pd.DataFrame):
    """A DataFrame with R's heading lines, printed by the subclass's ``to_text``."""

    _metadata = ["heading"]

    def to_text(self) -> str:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def _with_heading(self, body: str) -> str:
        heading = getattr(self, "heading", None) or []
        return "".join(h + "\n" for h in heading) + body

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return self.to_text()


class AnovaTable(_HeadedTable):
    """A DataFrame with R's heading; ``str()`` prints it as R's ``print.anova``."""

    @property
    def _constructor(self):
        return AnovaTable

    def to_text(self, digits: int = 5) -> str:
        cols = list(self.columns)
        nc = len(cols)
        has_p = cols[-1].startswith("Pr(") or cols[-1].startswith("P(")
        tst = [i for i, c in enumerate(cols) if c[1:7] == " value" or c in ("F", "Cp", "Chisq")]
        zap = [
            i for i in range(nc - 1 if has_p else nc) if i not in tst and not cols[i].endswith("Df")
        ]
        body = print_coefmat(
            self.to_numpy(dtype=float),
            [str(r) for r in self.index],
            cols,
            digits,
            has_pvalue=has_p,
            cs_ind=[],
            tst_ind=tst,
            zap_ind=zap,
            na_print="",
        )
        return self._with_heading(body)


def _test_name(test: str | None) -> str | None:
    if test is None:
        return None
    key = str(test).lower()
    if key not in _TESTS:
        raise PyglmmError(f"test must be 'Chisq', 'LRT', 'F', 'Rao' or 'Cp', not {test!r}")
    return _TESTS[key]


def stat_anova(table: pd.DataFrame, test: str, scale: float, df_scale: float, n: int):
    """R's ``stat.anova``: add the test columns to a deviance table."""
    dfs = table["Df"].to_numpy(dtype=float)
    dev = table["Rao" if test == "Rao" else "Deviance"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        if test in ("Chisq", "Rao"):
            vals = dev / scale * np.sign(dfs)
            vals[dfs == 0] = np.nan
            vals[~np.isnan(vals) & (vals < 0)] = np.nan
            table["Pr(>Chi)"] = stats.chi2.sf(vals, np.abs(dfs))
        elif test == "F":
            F = (dev / dfs) / scale
            F[dfs == 0] = np.nan
            F[~np.isnan(F) & (F < 0)] = np.nan
            table["F"] = F
            table["Pr(>F)"] = stats.f.sf(F, np.abs(dfs), df_scale)
        else:  # Cp
            table["Cp"] = table["Resid. Dev"] + 2 * scale * (n - table["Resid. Df"])
    return table


def score_statistic(X: np.ndarray, r: np.ndarray, w: np.ndarray, intercept: bool) -> float:
    r"""Rao's score statistic as R computes it: the weighted regression sum of squares.

    The working residuals :math:`r` and weights :math:`W` of the smaller model are
    regressed on the larger model's columns (a Gaussian fit with prior weights
    :math:`W`); the statistic is that fit's null deviance minus its deviance.
    """
    from pyglmm.families import Gaussian

    fit = fit_irls(X, r, Gaussian(), weights=w, warn=False)
    if intercept:
        null = float(np.sum(w * (r - np.sum(w * r) / np.sum(w)) ** 2))
    else:
        null = float(np.sum(w * r**2))
    return null - fit.deviance


def _f_warning(family_name: str) -> None:
    if family_name in ("binomial", "poisson"):
        warn(
            f"using F test with a '{family_name}' family is inappropriate",
            UserWarning,
        )
    else:
        warn("using F test with a fixed dispersion is inappropriate", UserWarning)


def anova_sequential(model, test: str | None = None, dispersion: float | None = None) -> AnovaTable:
    """Sequential analysis of deviance of one GLM (R's ``anova.glm``)."""
    test = _test_name(test)
    if model.theta_estimated:
        warn("tests made without re-estimating 'theta'", UserWarning)
        if test is None:
            test = "Chisq"
    X = model.model_matrix
    assign = np.asarray(model.assign)
    nvars = int(assign.max()) if assign.size else 0
    resdev, resdf = [], []

    def refit(cols):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fit_irls(
                X[:, cols],
                model.y,
                model.family,
                weights=model.prior_weights,
                offset=model.offset,
                control=model.control,
                warn=False,
            )

    doscore = test == "Rao"
    score = np.zeros(nvars)
    if doscore:
        fit = refit(assign == 0)
        r, w = fit.working_residuals, fit.working_weights
    for i in range(1, nvars):
        cols = assign <= i
        fit = refit(cols)
        if doscore:
            score[i - 1] = score_statistic(X[:, cols], r, w, model.intercept)
            r, w = fit.working_residuals, fit.working_weights
        n_ok = int(np.sum(model.prior_weights != 0))
        resdev.append(fit.deviance)
        resdf.append(n_ok - fit.rank)
    if doscore and nvars:
        score[nvars - 1] = score_statistic(X, r, w, model.intercept)
    resdf = [model.df_null, *resdf, model.df_resid]
    resdev = [model.null_deviance, *resdev, model.deviance]
    df = [np.nan, *(-np.diff(resdf))]
    dev = [np.nan, *np.maximum(0, -np.diff(resdev))]
    table = pd.DataFrame({"Df": df, "Deviance": dev, "Resid. Df": resdf, "Resid. Dev": resdev})
    if doscore:
        table["Rao"] = [np.nan, *score][: len(table)]
    if not model.terms:  # R: a model without terms gives the NULL row only
        table = table.iloc[:1]
    table.index = ["NULL", *model.terms]
    from pyglmm.glm.model import r_family_name

    resp = model.response_name or ""
    heading = [
        "Analysis of Deviance Table\n\nModel: "
        f"{r_family_name(model.family)}, link: {model.family.link.name}\n\nResponse: {resp}\n\n"
        "Terms added sequentially (first to last)\n\n"
    ]
    df_disp = np.inf
    if dispersion is None:
        dispersion = model.dispersion
        df_disp = np.inf if dispersion == 1 else model.df_resid
    if test is not None:
        if test == "F" and df_disp == np.inf:
            _f_warning(model.family.name)
        table = stat_anova(table, test, dispersion, df_disp, model.nobs)
    out = AnovaTable(table)
    out.heading = heading
    return out


class NegativeBinomialAnovaTable(_HeadedTable):
    """MASS's likelihood-ratio table of negative binomial models (``anova.negbin``)."""

    @property
    def _constructor(self):
        return NegativeBinomialAnovaTable

    def to_text(self) -> str:
        shown = self.copy()
        for col in shown.columns:
            if shown[col].dtype.kind == "f":
                vals = shown[col].to_numpy()
                txt = format_r(vals, 7)
                shown[col] = [t if np.isfinite(v) else "" for t, v in zip(txt, vals, strict=True)]
        body = pd.DataFrame(shown).to_string()
        return self._with_heading(body)


def _rhs(formula: str) -> str:
    return formula.split("~", 1)[1].strip() if "~" in formula else formula


def anova_negbin_models(models: Sequence, test: str | None = None) -> NegativeBinomialAnovaTable:
    r"""Likelihood-ratio tests between ``glm.nb`` fits, as MASS's ``anova.negbin``.

    The models are sorted by decreasing residual df; successive fits are compared by
    :math:`2\ell_{k} - 2\ell_{k-1} \sim \chi^2` on the difference in df (theta
    re-estimated in each model).
    """
    if test is not None and test != "Chisq":
        warn("only Chi-squared LR tests are implemented", UserWarning)
    if not all(getattr(m, "theta_estimated", False) for m in models):
        raise PyglmmError("not all models are negative binomial fits with theta estimated")
    models = sorted(models, key=lambda m: -m.df_resid)
    nt = len(models)
    dfs = np.array([m.df_resid for m in models], dtype=float)
    lls = np.array([2 * m.loglik for m in models])
    df = np.concatenate([[np.nan], -np.diff(dfs)])
    x2 = np.concatenate([[np.nan], np.diff(lls)])
    with np.errstate(invalid="ignore"):
        pr = np.concatenate([[np.nan], 1 - stats.chi2.cdf(x2[1:], df[1:])])
    out = NegativeBinomialAnovaTable(
        {
            "Model": [_rhs(m.formula) for m in models],
            "theta": [m.theta for m in models],
            "Resid. df": dfs,
            "   2 x log-lik.": lls,
            "Test": [""] + [f"{i} vs {i + 1}" for i in range(1, nt)],
            "   df": df,
            "LR stat.": x2,
            "Pr(Chi)": pr,
        },
        index=[str(i + 1) for i in range(nt)],
    )
    responses = sorted({m.response_name for m in models})
    out.heading = [
        "Likelihood ratio tests of Negative Binomial Models\n",
        f"Response: {' '.join(map(str, responses))}",
    ]
    return out


def anova_models(models: Sequence, test: str | None = None, dispersion: float | None = None):
    """Analysis of deviance between nested GLMs (R's ``anova.glmlist``).

    Several ``glm.nb`` fits (theta estimated) give MASS's likelihood-ratio table instead.
    """
    models = list(models)
    if len(models) > 1 and any(getattr(m, "theta_estimated", False) for m in models):
        return anova_negbin_models(models, test)
    test = _test_name(test)
    responses = [m.response_name for m in models]
    same = [r == responses[0] for r in responses]
    if not all(same):
        dropped = [r for r, s in zip(responses, same, strict=True) if not s]
        warn(
            f"models with response {dropped} removed because response differs from model 1",
            UserWarning,
        )
        models = [m for m, s in zip(models, same, strict=True) if s]
    ns = [m.nobs for m in models]
    if any(n != ns[0] for n in ns):
        raise PyglmmError("models were not all fitted to the same size of dataset")
    if len(models) == 1:
        return anova_sequential(models[0], test=test, dispersion=dispersion)
    resdf = np.array([m.df_resid for m in models], dtype=float)
    resdev = np.array([m.deviance for m in models], dtype=float)
    table = pd.DataFrame(
        {
            "Resid. Df": resdf,
            "Resid. Dev": resdev,
            "Df": [np.nan, *(-np.diff(resdf))],
            "Deviance": [np.nan, *(-np.diff(resdev))],
        },
        index=[str(i + 1) for i in range(len(models))],
    )
    if test == "Rao":
        score = [np.nan]
        df = -np.diff(resdf)
        for i in range(len(models) - 1):
            small, big = (models[i], models[i + 1]) if df[i] > 0 else (models[i + 1], models[i])
            stat = score_statistic(
                big.model_matrix, small.working_residuals, small.working_weights, small.intercept
            )
            score.append(stat if df[i] >= 0 else -stat)
        table["Rao"] = score
    width = len(str(len(models)))
    topnote = "\n".join(
        f"Model {str(i + 1).rjust(width)}: {m.formula}" for i, m in enumerate(models)
    )
    if test is not None:
        big = models[int(np.argmin(resdf))]
        if dispersion is None:
            dispersion = big.dispersion
        df_disp = np.inf if dispersion == 1 else float(np.min(resdf))
        if test == "F" and df_disp == np.inf:
            _f_warning(big.family.name)
        table = stat_anova(table, test, dispersion, df_disp, big.nobs)
    out = AnovaTable(table)
    out.heading = ["Analysis of Deviance Table\n", topnote]
    return out
