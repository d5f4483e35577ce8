r"""Linear models fitted by least squares: :func:`lm` and :class:`LinearModel`.

The model is :math:`y = X\beta + \text{offset} + \varepsilon`,
:math:`\varepsilon_i \sim N(0, \sigma^2/w_i)` with prior weights :math:`w_i`. It is fitted
as R's ``lm``: Householder QR of :math:`W^{1/2}X` with R's limited column pivoting, so
that columns linearly dependent on earlier ones are *aliased* (coefficient NA) rather
than an error; cases with zero weight take no part in the fit.

Estimates, as R's ``summary.lm``:

.. math::

    \hat\sigma^2 = \frac{\sum_i w_i e_i^2}{n - r}, \quad
    \widehat{\mathrm{Var}}(\hat\beta) = \hat\sigma^2 (X^\top W X)^{-1}, \quad
    R^2 = \frac{\mathrm{MSS}}{\mathrm{MSS} + \mathrm{RSS}}, \quad
    F = \frac{\mathrm{MSS}/(r - d)}{\hat\sigma^2}

with :math:`r` the rank, :math:`d = 1` when there is an intercept (MSS then centred
at the weighted mean of the fitted values) and :math:`n` the number of cases with
positive weight.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from pyglmm.diagnostics.mixin import DiagnosticsMixin
from pyglmm.errors import DataError, DataWarning, PyglmmError, RankDeficiencyWarning
from pyglmm.families import get_family
from pyglmm.formula.expressions import evaluate
from pyglmm.formula.frame import ModelFrame, model_frame
from pyglmm.linear import sums_of_squares
from pyglmm.linear.anova_table import (
    AnovaTable,
    ModelComparisonTable,
    make_anova_table,
    make_comparison_table,
)
from pyglmm.linear.least_squares import LeastSquaresFit, least_squares
from pyglmm.linear.rprint import (
    format_c,
    format_pval,
    format_real,
    print_coefmat,
    print_named_vector,
    signif,
    zapsmall,
)

_TYPE_NAMES = {1: 1, "1": 1, "I": 1, 2: 2, "2": 2, "II": 2, 3: 3, "3": 3, "III": 3}


def lm(
    formula: str,
    data: Any,
    weights: Any = None,
    *,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
) -> LinearModel:
    """Fit a linear model by (weighted) least squares, as R's ``lm``.

    Parameters
    ----------
    formula : str
        R model formula, e.g. ``"score ~ Machine * Worker"``.
    data : DataFrame
        pandas or polars data frame.
    weights : str or array-like, optional
        Prior weights (a column name or one non-negative value per row). Zero
        weights drop a case from the fit but it keeps its fitted value and residual.
    offset : str or array-like, optional
        A known term added to the linear predictor (``offset()`` in the formula works too).
    contrasts : mapping, optional
        Per-factor contrasts by R's names, e.g. ``{"Machine": "contr.sum"}`` (use
        sum-to-zero contrasts for meaningful type III tests).

    Returns
    -------
    LinearModel

    Examples
    --------
    >>> import pyglmm as pg
    >>> m = pg.lm("score ~ Machine * Worker", pg.datasets.load("Machines"))
    >>> print(m.anova())  # doctest: +SKIP
    """
    from pyglmm import distributed

    if distributed.is_dask_collection(data):  # Dask DataFrame: fit on the cluster
        return distributed.lm(formula, data, weights, offset=offset, contrasts=contrasts)
    frame = model_frame(formula, data, weights=weights, offset=offset, contrasts=contrasts)
    check_lm_formula(
        formula, frame.random, frame.y is not None, frame.y is not None and frame.y.ndim == 1
    )
    return LinearModel(frame, formula=formula, contrasts=contrasts)


def check_lm_formula(
    formula: str, random: Sequence[Any], response_given: bool, one_response_column: bool
) -> None:
    """Refuse an ``lm`` formula with random-effects terms (``random``: its bars), without
    a response, or with a ``cbind()`` response, with a :class:`~pyglmm.errors.PyglmmError`
    that says what to do."""
    if random:
        raise PyglmmError(
            f"the formula {formula!r} has random-effects terms; use pg.lmer for mixed models"
        )
    if not response_given:
        raise PyglmmError("the formula has no response (write 'y ~ ...')")
    if not one_response_column:
        raise PyglmmError("cbind() responses are for binomial GLMs; lm needs one response column")


@dataclass(frozen=True)
class LinearModelSummary:
    """R's ``summary.lm``: coefficient table, residual scale, R-squared, overall F.

    ``str(summary)`` is R's printed summary; ``coefficients`` is a DataFrame with
    columns ``Estimate``, ``Std. Error``, ``t value``, ``Pr(>|t|)`` (NaN rows for
    aliased coefficients).
    """

    call: str
    coefficients: pd.DataFrame
    residuals: np.ndarray
    weighted: bool
    sigma: float
    df_resid: int
    rank: int
    n_coef: int
    r_squared: float
    adj_r_squared: float
    fstatistic: tuple[float, float, float] | None
    f_p_value: float | None
    n_dropped: int
    residual_names: list[str]
    aliased: np.ndarray

    def __str__(self) -> str:
        digits = 4
        lines = ["", "Call:", self.call, ""]
        lines.append(("Weighted " if self.weighted else "") + "Residuals:")
        if self.df_resid > 5:
            q = np.quantile(self.residuals, [0, 0.25, 0.5, 0.75, 1.0])
            lines += print_named_vector(
                zapsmall(q, digits + 1), ["Min", "1Q", "Median", "3Q", "Max"], digits
            )
        elif self.df_resid > 0:
            names = [str(i) for i in self.residual_names]
            lines += print_named_vector(self.residuals, names, digits)
        else:
            lines.append(f"ALL {self.rank} residuals are 0: no residual degrees of freedom!")
        nsing = self.n_coef - self.rank
        lines.append("")
        if self.n_coef == 0:
            lines.append("No Coefficients")
        elif nsing:
            lines.append(f"Coefficients: ({nsing} not defined because of singularities)")
        else:
            lines.append("Coefficients:")
        cf = self.coefficients
        lines += (
            []
            if self.n_coef == 0
            else print_coefmat(
                cf.to_numpy(dtype=float),
                [str(i) for i in cf.index],
                list(cf.columns),
                digits=digits,
                cs_ind=[0, 1],
                tst_ind=[2],
                has_pvalue=True,
                na_print="NA",
                nan_mask=np.isnan(cf.to_numpy(dtype=float)) & ~np.asarray(self.aliased)[:, None],
            )
        )
        sigma = format_real([signif(self.sigma, digits)], 7, na="NaN")[0].strip()
        lines += ["", f"Residual standard error: {sigma} on {self.df_resid} degrees of freedom"]
        if self.n_dropped:
            lines.append(
                f"  ({self.n_dropped} observation{'s' if self.n_dropped > 1 else ''} "
                "deleted due to missingness)"
            )
        if self.fstatistic is not None:
            f, d1, d2 = self.fstatistic
            lines.append(
                f"Multiple R-squared:  {format_c(self.r_squared, digits)},\t"
                f"Adjusted R-squared:  {format_c(self.adj_r_squared, digits)} "
            )
            pv = format_pval([self.f_p_value], digits)[0]
            lines.append(
                f"F-statistic: {format_c(f, digits)} on {d1:g} and {d2:g} DF,  p-value: {pv}"
            )
        lines.append("")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.__str__()

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


class LinearModel(DiagnosticsMixin):
    r"""A fitted linear model (the result of :func:`pyglmm.lm`).

    Attributes
    ----------
    coef : pandas.Series
        Least-squares estimates, NaN for aliased coefficients.
    se : pandas.Series
        Standard errors :math:`\hat\sigma\sqrt{[(X^\top WX)^{-1}]_{jj}}`.
    t_values, p_values : pandas.Series
        *t* statistics and two-sided p-values on ``df_resid`` degrees of freedom.
    sigma : float
        Residual standard error :math:`\hat\sigma`.
    dispersion : float
        :math:`\hat\sigma^2`.
    deviance : float
        Residual sum of squares :math:`\sum_i w_i e_i^2`.
    null_deviance : float
        RSS of the intercept-only model (or :math:`\sum w_i y_i^2` without intercept).
    r_squared, adj_r_squared : float
    fstatistic : tuple of (F, numerator df, denominator df) or None
    loglik, aic, bic : float
        Gaussian log-likelihood at the ML variance, as R's ``logLik.lm``.
    fitted : pandas.Series
        Fitted values, indexed by the row labels.
    rank, df_resid, nobs : int
        ``nobs`` counts the cases with positive weight (R's ``nobs``).
    """

    is_lm = True

    def __init__(
        self,
        frame: ModelFrame,
        *,
        formula: str,
        contrasts: Mapping[str, str] | None = None,
        _arrays: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray, pd.Index]
        | None = None,
    ) -> None:
        self.formula = formula
        self.contrasts = dict(contrasts or {})
        self.frame = frame
        if _arrays is None:
            x, y, w, off, labels = frame.X, frame.y, frame.weights, frame.offset, frame.row_labels
        else:
            x, y, w, off, labels = _arrays
        self._X = np.asarray(x, dtype=float)
        self.y = np.asarray(y, dtype=float)
        self._weights_given = w is not None
        self.prior_weights = np.ones(len(self.y)) if w is None else np.asarray(w, dtype=float)
        self._offset = np.asarray(off, dtype=float)
        self.row_labels = labels
        self.column_names: list[str] = list(frame.column_names)
        self.terms: list[str] = list(frame.terms)
        self.assign: np.ndarray = np.asarray(frame.assign)
        self.response_name = frame.response_name
        self.family = get_family("gaussian")
        self._fit: LeastSquaresFit = least_squares(
            self._X, self.y, self.prior_weights, self._offset
        )
        fit = self._fit
        self._set_estimates(fit, self._X.shape[1])
        self.fitted = pd.Series(fit.fitted, index=self.row_labels, name="fitted")
        self.linear_predictor = fit.fitted.copy()
        self.working_weights = self.prior_weights
        self.model_matrix_rank = self._X[:, ~fit.aliased]
        self._summary_statistics()

    def _set_estimates(self, fit: LeastSquaresFit, p: int) -> None:
        r"""Coefficients and their *t* tests from the least-squares fit (R's ``summary.lm``).

        Warns (:class:`~pyglmm.errors.RankDeficiencyWarning`) when the rank is below the
        number ``p`` of columns; sets ``rank``, ``df_resid``, ``nobs``, ``aliased``,
        ``coef``, ``deviance`` (RSS), ``dispersion`` :math:`\hat\sigma^2 = \mathrm{RSS}/(n-r)`,
        ``sigma``, ``se`` :math:`\hat\sigma\sqrt{[(X^\top WX)^{-1}]_{jj}}`, ``t_values``
        and ``p_values`` (two-sided, :math:`t_{n-r}`). Needs ``column_names``.
        """
        if fit.rank < p:
            warnings.warn(
                f"the model matrix is rank deficient: {p - fit.rank} coefficient(s) "
                f"not defined because of singularities "
                f"({', '.join(np.asarray(self.column_names)[fit.aliased])})",
                RankDeficiencyWarning,
                stacklevel=4,
            )
        self.rank = fit.rank
        self.df_resid = fit.df_resid
        self.nobs = fit.n_used
        self.aliased = fit.aliased
        self.coef = pd.Series(fit.coef, index=self.column_names, name="coef")
        self.deviance = fit.rss
        self.dispersion = fit.rss / fit.df_resid if fit.df_resid > 0 else float("nan")
        self.sigma = float(np.sqrt(self.dispersion))
        cov = fit.unscaled_cov() * self.dispersion
        self._cov = cov
        se = np.full(len(self.coef), np.nan)
        se[~fit.aliased] = np.sqrt(np.diag(cov))
        self.se = pd.Series(se, index=self.column_names, name="se")
        with np.errstate(divide="ignore", invalid="ignore"):
            self.t_values = pd.Series(fit.coef / se, index=self.column_names, name="t")
        self.p_values = pd.Series(
            2 * stats.t.sf(np.abs(self.t_values.to_numpy()), self.df_resid),
            index=self.column_names,
            name="p_value",
        )

    # ------------------------------------------------------------ statistics
    @property
    def has_intercept(self) -> bool:
        """Whether the model has an intercept column."""
        return "(Intercept)" in self.column_names

    def _summary_statistics(self) -> None:
        w = self.prior_weights
        used = w > 0
        f = self._fit.fitted - self._offset
        if self.has_intercept:
            m = np.sum(w * f) / np.sum(w)
            mss = float(np.sum(w * (f - m) ** 2))
        else:
            mss = float(np.sum(w * f**2))
        rss = self.deviance
        self.r_squared = mss / (mss + rss) if mss + rss > 0 else float("nan")
        df_int = 1 if self.has_intercept else 0
        n = self.nobs
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.float64(n - df_int) / np.float64(self.df_resid)
            self.adj_r_squared = float(1 - (1 - self.r_squared) * ratio)
        if self.rank != df_int:
            fval = (mss / (self.rank - df_int)) / self.dispersion
            self.fstatistic: tuple[float, float, float] | None = (
                float(fval),
                float(self.rank - df_int),
                float(self.df_resid),
            )
            self.f_p_value: float | None = float(
                stats.f.sf(fval, self.rank - df_int, self.df_resid)
            )
        else:
            self.fstatistic, self.f_p_value = None, None
        z = self.y[used] - self._offset[used]
        wz = w[used]
        if self.has_intercept:
            self.null_deviance = float(np.sum(wz * (z - np.sum(wz * z) / np.sum(wz)) ** 2))
        else:
            self.null_deviance = float(np.sum(wz * z**2))
        # logLik.lm: 0.5 * sum(log w) - n/2 (log(2 pi) + 1 - log(n) + log(sum w e^2))
        with np.errstate(divide="ignore"):
            self.loglik = float(
                0.5 * np.sum(np.log(w[used]))
                - n / 2 * (np.log(2 * np.pi) + 1 - np.log(n) + np.log(rss))
            )
        self.df_loglik = self.rank + 1
        self.aic = -2 * self.loglik + 2 * self.df_loglik
        self.bic = -2 * self.loglik + np.log(n) * self.df_loglik

    @property
    def vcov(self) -> pd.DataFrame:
        r""":math:`\hat\sigma^2 (X^\top WX)^{-1}`, NaN rows/columns for aliased coefficients."""
        p = len(self.coef)
        full = np.full((p, p), np.nan)
        ok = ~self.aliased
        full[np.ix_(ok, ok)] = self._cov
        return pd.DataFrame(full, index=self.column_names, columns=self.column_names)

    @property
    def residual_values(self) -> pd.Series:
        """Response residuals :math:`y - \\hat\\mu` (same as ``residuals("response")``)."""
        return pd.Series(self._fit.residuals, index=self.row_labels, name="residuals")

    @property
    def call(self) -> str:
        """The call as R would print it."""
        extra = ", weights = weights" if self._weights_given else ""
        return f"lm(formula = {self.formula.strip()}, data = data{extra})"

    # ------------------------------------------------------------ summaries
    def summary(self) -> LinearModelSummary:
        """R's ``summary.lm`` (print it for R's text)."""
        table = pd.DataFrame(
            {
                "Estimate": self.coef.to_numpy(),
                "Std. Error": self.se.to_numpy(),
                "t value": self.t_values.to_numpy(),
                "Pr(>|t|)": self.p_values.to_numpy(),
            },
            index=self.column_names,
        )
        # as summary.lm: sqrt(w) * e for every case (zero-weight cases contribute 0)
        w = self.prior_weights
        r = np.sqrt(w) * self._fit.residuals
        weighted = self._weights_given and bool(np.ptp(w) != 0)
        return LinearModelSummary(
            call=self.call,
            coefficients=table,
            residuals=r,
            weighted=weighted,
            sigma=self.sigma,
            df_resid=self.df_resid,
            rank=self.rank,
            n_coef=len(self.coef),
            r_squared=self.r_squared,
            adj_r_squared=self.adj_r_squared,
            fstatistic=self.fstatistic,
            f_p_value=self.f_p_value,
            n_dropped=self.frame.n_dropped,
            residual_names=[str(i) for i in self.row_labels],
            aliased=self.aliased,
        )

    def tidy(self, conf_int: bool = False, level: float = 0.95) -> pd.DataFrame:
        """Coefficient table as a tidy DataFrame.

        Columns ``term``, ``estimate``, ``std_error``, ``statistic`` (*t*), ``p_value``,
        and ``conf_low``, ``conf_high`` when ``conf_int``.
        """
        out = pd.DataFrame(
            {
                "term": self.column_names,
                "estimate": self.coef.to_numpy(),
                "std_error": self.se.to_numpy(),
                "statistic": self.t_values.to_numpy(),
                "p_value": self.p_values.to_numpy(),
            }
        )
        if conf_int:
            ci = self.confint(level=level).to_numpy()
            out["conf_low"], out["conf_high"] = ci[:, 0], ci[:, 1]
        return out

    def confint(self, level: float = 0.95, parm: list[str] | None = None) -> pd.DataFrame:
        r"""Confidence intervals :math:`\hat\beta_j \pm t_{n-r, (1+\text{level})/2}\,\mathrm{se}_j`.

        Columns named as R's (``"2.5 %"``, ``"97.5 %"``); NaN for aliased coefficients.
        """
        a = (1 - level) / 2
        q = stats.t.ppf(1 - a, self.df_resid)
        est, se = self.coef.to_numpy(), self.se.to_numpy()
        labels = [_pct(a), _pct(1 - a)]
        out = pd.DataFrame(
            np.column_stack([est - q * se, est + q * se]), index=self.column_names, columns=labels
        )
        if parm is not None:
            missing = [p for p in parm if p not in out.index]
            if missing:
                raise PyglmmError(f"no coefficient(s) named {missing}; have {self.column_names}")
            out = out.loc[list(parm)]
        return out

    def predict(
        self,
        newdata: Any = None,
        *,
        interval: str | None = None,
        level: float = 0.95,
        se: bool = False,
        pred_weights: Any = None,
        offset: Any = None,
    ) -> pd.Series | pd.DataFrame:
        r"""Predictions, with standard errors and confidence or prediction intervals.

        Parameters
        ----------
        newdata : DataFrame, optional
            Values of the predictors; default: the data of the fit.
        interval : {None, "confidence", "prediction"}
            ``"confidence"``: :math:`\hat y_0 \pm t\,\mathrm{se}(\hat y_0)`;
            ``"prediction"``: :math:`\hat y_0 \pm t\sqrt{\mathrm{se}(\hat y_0)^2 +
            \hat\sigma^2/w_0}` (R's ``predict.lm``), :math:`t` on ``df_resid`` df.
        level : float
            Coverage of the intervals.
        se : bool
            Also return ``se_fit``, :math:`\hat\sigma\sqrt{x_0^\top(X^\top WX)^{-1}x_0}`.
        pred_weights : array-like, optional
            Weights :math:`w_0` of the new cases for prediction intervals (default 1).
        offset : array-like, optional
            Offset for ``newdata`` when the fit used the ``offset=`` argument.

        Returns
        -------
        pandas.Series (``fit``) when neither ``se`` nor ``interval`` is asked,
        else a DataFrame with columns ``fit``, (``se_fit``), (``lwr``, ``upr``).
        """
        if interval not in (None, "none", "confidence", "prediction"):
            raise PyglmmError("interval must be None, 'confidence' or 'prediction'")
        if newdata is None:
            x, off, index = self._X, self._offset, self.row_labels
        else:
            from pyglmm.data import to_pandas

            nd = to_pandas(newdata)
            x = self.frame.fixed.transform(nd)
            off = np.zeros(len(nd))
            for expr in self.frame.formula.offsets:
                off = off + np.asarray(evaluate(expr, nd, "offset"), dtype=float)
            if offset is not None:
                off = off + np.asarray(offset, dtype=float).reshape(-1)
            elif self.frame.offset_given and not self.frame.formula.offsets:
                raise DataError("the fit used offset=; pass offset= for the new data too")
            index = nd.index
        ok = ~self.aliased
        if not ok.all():
            warnings.warn(
                "prediction from a rank-deficient fit may be misleading",
                RankDeficiencyWarning,
                stacklevel=2,
            )
        xo = x[:, ok]
        fit = xo @ self.coef.to_numpy()[ok] + off
        out = pd.DataFrame({"fit": fit}, index=index)
        if interval in (None, "none") and not se:
            return out["fit"]
        from scipy import linalg

        z = linalg.solve_triangular(self._fit.qr.r, xo.T, trans="T", lower=False)
        se_fit = self.sigma * np.sqrt(np.sum(z**2, axis=0))
        if se:
            out["se_fit"] = se_fit
        if interval in ("confidence", "prediction"):
            q = stats.t.ppf((1 + level) / 2, self.df_resid)
            if interval == "confidence":
                half = q * se_fit
            else:
                if pred_weights is None:
                    if self._weights_given:
                        warnings.warn(
                            "assuming constant prediction variance even though the model fit is "
                            "weighted (pass pred_weights=)",
                            DataWarning,
                            stacklevel=2,
                        )
                    pw = np.ones(len(fit))
                else:
                    pw = np.asarray(pred_weights, dtype=float).reshape(-1)
                half = q * np.sqrt(se_fit**2 + self.dispersion / pw)
            out["lwr"] = fit - half
            out["upr"] = fit + half
        return out

    # ------------------------------------------------------------ ANOVA
    def anova(self, type: int | str = 1) -> AnovaTable:
        """ANOVA table of this model.

        Parameters
        ----------
        type : {1, 2, 3} or {"I", "II", "III"}
            1: sequential sums of squares (R's ``anova(lm)``); 2 and 3: as
            ``car::Anova(type=...)`` (type III includes the intercept and depends on the
            contrasts: fit with ``contrasts={"f": "contr.sum"}`` for the usual tests).

        Returns
        -------
        AnovaTable
            DataFrame, index = terms and ``Residuals``, columns ``df``, ``sum_sq``,
            ``mean_sq``, ``F``, ``p_value``.
        """
        kind = _TYPE_NAMES.get(type if not isinstance(type, str) else type.upper())
        if kind is None:
            raise PyglmmError(f"unknown ANOVA type {type!r}; use 1, 2, 3 or 'I', 'II', 'III'")
        if self.df_resid <= 0:
            raise PyglmmError("no residual degrees of freedom: the ANOVA table needs df_resid > 0")
        response = self.response_name or "y"
        if kind == 1:
            terms, dfs, sss = sums_of_squares.sequential(self)
            heading = ["Analysis of Variance Table", "", f"Response: {response}"]
            return make_anova_table(terms, dfs, sss, self.df_resid, self.deviance, heading)
        if kind == 2:
            terms, dfs, sss = sums_of_squares.type2(self)
            title = "Anova Table (Type II tests)"
        else:
            terms, dfs, sss = sums_of_squares.type3(self)
            title = "Anova Table (Type III tests)"
        heading = [title, "", f"Response: {response}"]
        return make_anova_table(
            terms, dfs, sss, self.df_resid, self.deviance, heading, show_mean_sq=False
        )

    @classmethod
    def _anova_compare(cls, models: list[LinearModel], test: str = "F") -> ModelComparisonTable:
        """Partial *F* tests between nested linear models (R's ``anova(m1, m2, ...)``)."""
        if test not in ("F", "Chisq"):
            raise PyglmmError(f"test must be 'F' or 'Chisq' for linear models, got {test!r}")
        for m in models:
            if not isinstance(m, LinearModel):
                raise PyglmmError("pg.anova compares models of one kind: all must be pg.lm fits")
        nobs = {m.nobs for m in models}
        if len(nobs) > 1:
            raise PyglmmError(
                f"models were not all fitted to the same number of observations ({sorted(nobs)})"
            )
        responses = {m.response_name for m in models}
        if len(responses) > 1:
            raise PyglmmError(f"models have different responses: {sorted(map(str, responses))}")
        heading = ["Analysis of Variance Table", ""]
        heading += [f"Model {i + 1}: {m.formula.strip()}" for i, m in enumerate(models)]
        return make_comparison_table(
            [m.df_resid for m in models], [m.deviance for m in models], heading, test=test
        )

    # ------------------------------------------------------------ refits
    def refit_without(self, keep: np.ndarray) -> LinearModel:
        """The same model fitted to the rows where ``keep`` is True."""
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (len(self.y),):
            raise PyglmmError(f"keep must be a boolean mask of length {len(self.y)}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RankDeficiencyWarning)
            return LinearModel(
                self.frame,
                formula=self.formula,
                contrasts=self.contrasts,
                _arrays=(
                    self._X[keep],
                    self.y[keep],
                    self.prior_weights[keep] if self._weights_given else None,
                    self._offset[keep],
                    self.row_labels[keep],
                ),
            )

    # ------------------------------------------------------------ display
    def __repr__(self) -> str:
        coefs = format_real(self.coef.to_numpy(), 4)
        body = "  ".join(f"{n}={c.strip()}" for n, c in zip(self.column_names, coefs, strict=True))
        return f"<LinearModel {self.formula.strip()!r}: {body}; sigma={self.sigma:.4g}>"

    def __str__(self) -> str:
        return str(self.summary())

    def _repr_html_(self) -> str:
        s = self.summary()
        rows = []
        for name, row in s.coefficients.iterrows():
            cells = "".join(
                f"<td>{'' if np.isnan(v) else f'{v:.5g}'}</td>" for v in row.to_numpy(dtype=float)
            )
            rows.append(f"<tr><th>{html.escape(str(name))}</th>{cells}</tr>")
        head = "".join(f"<th>{html.escape(c)}</th>" for c in s.coefficients.columns)
        stats_line = (
            f"Residual standard error: {self.sigma:.4g} on {self.df_resid} df; "
            f"R&sup2; = {self.r_squared:.4g}, adjusted {self.adj_r_squared:.4g}"
        )
        if self.fstatistic is not None:
            f, d1, d2 = self.fstatistic
            stats_line += (
                f"; F = {f:.4g} on {d1:g} and {d2:g} DF, p = {format_pval([self.f_p_value], 4)[0]}"
            )
        return (
            f"<div><p><b>Linear model</b> <code>{html.escape(self.formula)}</code> "
            f"({self.nobs} observations)</p>"
            f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
            f"</table><p>{stats_line}</p></div>"
        )


def _pct(p: float) -> str:
    text = f"{100 * p:.3g}"
    return f"{text} %"
