r"""Model checking shared by GLM and linear-model results: :class:`DiagnosticsMixin`.

A result class inherits :class:`DiagnosticsMixin` and provides the attributes of
the shared protocol of fitted regression models:

``nobs``, ``row_labels`` (pandas.Index), ``y`` (response on the fitted scale,
proportions for binomial), ``fitted`` (pandas.Series of :math:`\hat\mu`),
``linear_predictor`` (:math:`\hat\eta`, offset included), ``prior_weights``,
``working_weights`` (IRLS :math:`W` at convergence; prior weights for a linear
model), ``family``, ``dispersion`` (:math:`\hat\phi`), ``model_matrix_rank``
(the ``n x rank`` non-aliased columns of :math:`X`), ``rank``, ``df_resid``,
``coef`` (NaN where aliased), ``aliased``, ``refit_without(keep)`` and ``is_lm``.
Optional: ``terms`` and ``assign`` (partial residuals by term, as R), ``frame`` (a
:class:`~pyglmm.formula.frame.ModelFrame`: the factors of the constant-leverage plot
panel) and ``formula`` (plot titles).

Quantities that need the leverages leave out cases with a zero prior weight, as R
does: their hat value is 0 and their other influence measures are NaN.

Every quantity follows R: ``residuals.glm``/``residuals.lm``, ``hatvalues``,
``rstandard``, ``rstudent``, ``cooks.distance``, ``dfbeta``, ``dfbetas``,
``dffits``, ``covratio`` and ``influence.measures``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from pyglmm.diagnostics.influence import InfluenceCore, influence_core, influential_flags
from pyglmm.diagnostics.residuals import (
    deviance_residuals,
    pearson_residuals,
    response_residuals,
    working_residuals,
)
from pyglmm.errors import PyglmmError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

RESIDUAL_TYPES = (
    "response",
    "working",
    "pearson",
    "pearson_scaled",
    "deviance",
    "standardized",
    "standardized_pearson",
    "studentized",
    "partial",
)


class ShapiroWilk(NamedTuple):
    """Result of the Shapiro-Wilk normality test (unpacks as ``W, p_value``)."""

    statistic: float
    p_value: float


class DiagnosticsMixin:
    """Residuals, leverage, influence measures, normality tests and plots for a fitted model.

    Mixed into GLM and linear-model result classes; see the module docstring for the
    attributes a class must provide.
    """

    # attributes provided by the result class (declared for type checkers)
    nobs: int
    row_labels: pd.Index
    y: np.ndarray
    fitted: pd.Series
    linear_predictor: np.ndarray
    prior_weights: np.ndarray
    working_weights: np.ndarray
    family: Any
    dispersion: float
    model_matrix_rank: np.ndarray
    rank: int
    df_resid: int
    coef: pd.Series
    aliased: np.ndarray
    is_lm: bool
    refit_without: Callable[[np.ndarray], Any]  # refit on the rows where the mask is True

    # ------------------------------------------------------------------ helpers
    def _diag_cache(self) -> dict[str, Any]:
        try:
            store = self.__dict__
        except AttributeError:  # __slots__ class: no caching
            return {}
        return store.setdefault("_diagnostics_cache", {})

    def _series(self, values: np.ndarray, name: str | None = None) -> pd.Series:
        return pd.Series(np.asarray(values, dtype=float), index=self.row_labels, name=name)

    def _mu(self) -> np.ndarray:
        return np.asarray(self.fitted, dtype=float)

    def _y(self) -> np.ndarray:
        return np.asarray(self.y, dtype=float)

    def _pearson(self) -> np.ndarray:
        return pearson_residuals(
            self._y(), self._mu(), np.asarray(self.prior_weights, dtype=float), self.family
        )

    def _deviance_res(self) -> np.ndarray:
        return deviance_residuals(
            self._y(), self._mu(), np.asarray(self.prior_weights, dtype=float), self.family
        )

    def _influence_core(self) -> InfluenceCore:
        cache = self._diag_cache()
        core = cache.get("influence_core")
        if core is None:
            core = influence_core(
                np.asarray(self.model_matrix_rank, dtype=float),
                np.asarray(self.working_weights, dtype=float),
                np.asarray(self.prior_weights, dtype=float),
                self._deviance_res(),
                self._pearson(),
            )
            cache["influence_core"] = core
        return core

    def _expand(self, active_values: np.ndarray, fill: float = np.nan) -> np.ndarray:
        core = self._influence_core()
        out = np.full(len(core.active), fill, dtype=float)
        out[core.active] = active_values
        return out

    def _coef_names_used(self) -> list[str]:
        aliased = np.asarray(self.aliased, dtype=bool)
        return [str(n) for n, a in zip(self.coef.index, aliased, strict=True) if not a]

    # ---------------------------------------------------------------- residuals
    def residuals(self, type: str | None = None) -> pd.Series | pd.DataFrame:
        r"""Residuals of the fit, indexed by the row labels.

        Parameters
        ----------
        type : str, optional
            One of

            * ``"response"``: :math:`y_i - \hat\mu_i` (default for linear models, as
              R's ``residuals.lm``);
            * ``"working"``: :math:`(y_i - \hat\mu_i)/\mu'(\hat\eta_i)`;
            * ``"pearson"``: :math:`e^P_i = (y_i - \hat\mu_i)\sqrt{w_i/V(\hat\mu_i)}`;
            * ``"pearson_scaled"``: :math:`e^P_i/\sqrt{\hat\phi}`;
            * ``"deviance"``: :math:`e^D_i = \mathrm{sign}(y_i-\hat\mu_i)\sqrt{d_i}`
              (default for GLMs, as R's ``residuals.glm``);
            * ``"standardized"``: :math:`e^D_i/\sqrt{\hat\phi(1-h_i)}` (R's ``rstandard``);
            * ``"standardized_pearson"``: :math:`e^P_i/\sqrt{\hat\phi(1-h_i)}`
              (R's ``rstandard(type="pearson")``);
            * ``"studentized"``: R's ``rstudent``,
              :math:`\mathrm{sign}(e^D_i)\sqrt{(e^D_i)^2 + h_i (e^P_i)^2/(1-h_i)}`, divided
              by the leave-one-out scale :math:`s_{(i)}` unless the family is binomial or
              Poisson (for a linear model: :math:`e_i/(s_{(i)}\sqrt{1-h_i})`);
            * ``"partial"``: working residuals plus each term's contribution
              :math:`\sum_{j \in \text{term}} (x_{ij} - \bar x_j)\hat\beta_j` (centred by the
              column means when there is an intercept), one column per term when the result
              has ``terms`` and ``assign`` (as R's ``residuals(type="partial")``), else one
              per coefficient; a DataFrame.

        Returns
        -------
        pandas.Series or pandas.DataFrame
        """
        if type is None:
            type = "response" if getattr(self, "is_lm", False) else "deviance"
        key = str(type).lower().replace("-", "_")
        aliases = {
            "rstandard": "standardized",
            "standardised": "standardized",
            "rstudent": "studentized",
            "studentised": "studentized",
            "scaled_pearson": "pearson_scaled",
        }
        key = aliases.get(key, key)
        if key not in RESIDUAL_TYPES:
            raise PyglmmError(
                f"unknown residual type {type!r}; use one of {', '.join(RESIDUAL_TYPES)}"
            )
        y, mu = self._y(), self._mu()
        if key == "response":
            return self._series(response_residuals(y, mu), "response")
        if key == "working":
            eta = np.asarray(self.linear_predictor, dtype=float)
            return self._series(working_residuals(y, mu, eta, self.family), "working")
        if key == "pearson":
            return self._series(self._pearson(), "pearson")
        if key == "pearson_scaled":
            return self._series(self._pearson() / np.sqrt(self.dispersion), "pearson_scaled")
        if key == "deviance":
            return self._series(self._deviance_res(), "deviance")
        if key in ("standardized", "standardized_pearson"):
            core = self._influence_core()
            base = core.pear_res if key == "standardized_pearson" else core.dev_res
            with np.errstate(divide="ignore", invalid="ignore"):
                res = base / np.sqrt(self.dispersion * (1.0 - core.hat))
            res[np.isinf(res)] = np.nan
            return self._series(self._expand(res), key)
        if key == "studentized":
            return self._series(self._expand(self._studentized_active()), "studentized")
        return self._partial_residuals()

    def _studentized_active(self) -> np.ndarray:
        core = self._influence_core()
        h, d, p = core.hat, core.dev_res, core.pear_res
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.sign(d) * np.sqrt(d**2 + h * p**2 / (1.0 - h))
            r[np.isinf(r)] = np.nan
            if self.family.name not in ("binomial", "poisson"):
                r = r / core.sigma
        return r

    def _partial_residuals(self) -> pd.DataFrame:
        x = np.asarray(self.model_matrix_rank, dtype=float)
        names = self._coef_names_used()
        beta = np.asarray(self.coef.loc[names], dtype=float)
        has_intercept = "(Intercept)" in names
        # R's predict(type="terms"): centred by the unweighted column means with an intercept
        contrib = (x - x.mean(axis=0)) * beta if has_intercept else x * beta
        working = np.asarray(self.residuals("working"), dtype=float)
        assign = getattr(self, "assign", None)
        terms = getattr(self, "terms", None)
        if assign is not None and terms is not None:
            used_assign = np.asarray(assign)[~np.asarray(self.aliased, dtype=bool)]
            columns, data = [], []
            for t_index, label in enumerate(terms, start=1):
                # a term whose columns are all aliased contributes 0, as in R
                cols = np.flatnonzero(used_assign == t_index)
                columns.append(str(label))
                data.append(contrib[:, cols].sum(axis=1) + working)
            values = np.column_stack(data) if data else np.empty((len(working), 0))
            return pd.DataFrame(values, index=self.row_labels, columns=columns)
        keep = [j for j, n in enumerate(names) if n != "(Intercept)"]
        data = contrib[:, keep] + working[:, None]
        return pd.DataFrame(data, index=self.row_labels, columns=[names[j] for j in keep])

    # ---------------------------------------------------------------- influence
    def hat_values(self) -> pd.Series:
        r"""Leverages :math:`h_i`, diagonal of :math:`H = W^{1/2}X(X^\top WX)^{-1}X^\top W^{1/2}`.

        Computed from a thin QR of :math:`W^{1/2}X` (R's ``hatvalues``); 0 for cases with
        zero weight.
        """
        core = self._influence_core()
        return self._series(self._expand(core.hat, fill=0.0), "hat")

    def cooks_distance(self, form: str = "hat", rows: Iterable[Any] | None = None) -> pd.Series:
        r"""Cook's distances.

        Parameters
        ----------
        form : {"hat", "refit"}
            ``"hat"`` (R's ``cooks.distance.glm`` and ``cooks.distance.lm``):

            .. math:: C_k = \frac{(e^P_k)^2}{\hat\phi\, p}\,\frac{h_k}{(1-h_k)^2}

            ``"refit"`` (the leave-one-out definition): refit without case :math:`k`
            (``refit_without``) and

            .. math:: C_k = \frac{1}{p}\sum_{i=1}^n
                      \frac{w_i(\hat\mu_i^{[k]} - \hat\mu_i)^2}{\hat\phi V(\hat\mu_i)}

            summing over all cases (case :math:`k` included, predicted from the refit), with
            :math:`\hat\phi` and :math:`V(\hat\mu_i)` from the full fit and :math:`w_i` the
            prior weights. In both forms :math:`p` is the rank of the model matrix (the number
            of estimated coefficients; the lecture notes write :math:`p+1` for the same count,
            while R's code, and the numbers printed in the notes, use the rank). For a linear
            model the two forms agree exactly; for a GLM the ``"hat"`` form is the one-step
            approximation of the ``"refit"`` form.
        rows : iterable of row labels, optional
            For ``"refit"`` only: compute these cases only (each needs one refit); default all.

        Returns
        -------
        pandas.Series
        """
        form = str(form).lower()
        if form == "hat":
            core = self._influence_core()
            h = core.hat
            with np.errstate(divide="ignore", invalid="ignore"):
                cd = (core.pear_res / (1.0 - h)) ** 2 * h / (self.dispersion * self.rank)
            cd[np.isinf(cd)] = np.nan
            return self._series(self._expand(cd), "cooks_distance")
        if form != "refit":
            raise PyglmmError(f"unknown Cook's distance form {form!r}; use 'hat' or 'refit'")
        return self._cooks_refit(rows)

    def _cooks_refit(self, rows: Iterable[Any] | None) -> pd.Series:
        labels = self.row_labels
        positions = (
            np.arange(len(labels)) if rows is None else labels.get_indexer(pd.Index(list(rows)))
        )
        if np.any(positions < 0):
            raise PyglmmError("rows for Cook's distance must be row labels of the fit")
        x = np.asarray(self.model_matrix_rank, dtype=float)
        names = self._coef_names_used()
        beta = np.asarray(self.coef.loc[names], dtype=float)
        eta = np.asarray(self.linear_predictor, dtype=float)
        offset = eta - x @ beta
        mu = self._mu()
        w = np.asarray(self.prior_weights, dtype=float)
        denom = self.dispersion * np.asarray(self.family.variance(mu), dtype=float)
        out = np.full(len(labels), np.nan)
        for k in positions:
            keep = np.ones(len(labels), dtype=bool)
            keep[k] = False
            refit = self.refit_without(keep)
            beta_k = np.asarray(refit.coef.reindex(names), dtype=float)
            beta_k = np.where(np.isnan(beta_k), 0.0, beta_k)
            mu_k = self.family.linkinv(x @ beta_k + offset)
            out[k] = float(np.sum(w * (mu_k - mu) ** 2 / denom)) / self.rank
        series = self._series(out, "cooks_distance")
        return series if rows is None else series.iloc[positions]

    def dfbeta(self) -> pd.DataFrame:
        r"""R's ``dfbeta``: :math:`\hat\beta - \hat\beta_{(i)}` per case (one-step for GLMs)."""
        core = self._influence_core()
        cf = np.full((len(core.active), core.rank), np.nan)
        cf[core.active] = core.coefficient_changes()
        return pd.DataFrame(cf, index=self.row_labels, columns=self._coef_names_used())

    def dfbetas(self) -> pd.DataFrame:
        r"""R's ``dfbetas``: scaled changes in the coefficients when a case is dropped.

        :math:`(\hat\beta_j - \hat\beta_{(i)j}) / (s_{(i)}\sqrt{[(X^\top WX)^{-1}]_{jj}})`.
        """
        core = self._influence_core()
        scale = np.outer(core.sigma, np.sqrt(np.diag(core.xtwx_inverse())))
        with np.errstate(divide="ignore", invalid="ignore"):
            values = core.coefficient_changes() / scale
        out = np.full((len(core.active), core.rank), np.nan)
        out[core.active] = values
        return pd.DataFrame(out, index=self.row_labels, columns=self._coef_names_used())

    def dffits(self) -> pd.Series:
        r"""DFFITS :math:`e_i\sqrt{h_i}/(s_{(i)}(1-h_i))`, :math:`e_i` deviance residuals."""
        core = self._influence_core()
        e = self._deviance_res()[core.active]
        with np.errstate(divide="ignore", invalid="ignore"):
            res = e * np.sqrt(core.hat) / (core.sigma * (1.0 - core.hat))
        res[np.isinf(res)] = np.nan
        return self._series(self._expand(res), "dffits")

    def covratio(self) -> pd.Series:
        r"""R's ``covratio``: :math:`(s_{(i)}/s)^{2p}/(1-h_i)`, :math:`s^2 = \sum_i e_i^2/(n-p)`.

        :math:`e_i` are deviance residuals, :math:`p` the rank; equal to R's
        :math:`1/\{(1-h_i)[(n-p-1+e_i^{*2})/(n-p)]^p\}`.
        """
        return self._series(self._expand(self._covratio_active()), "covratio")

    def _covratio_active(self) -> np.ndarray:
        core = self._influence_core()
        e = self._deviance_res()[core.active]
        s = np.sqrt(np.sum(e**2) / self.df_resid)
        with np.errstate(divide="ignore", invalid="ignore"):
            res = (core.sigma / s) ** (2 * core.rank) / (1.0 - core.hat)
        res[np.isinf(res)] = np.nan
        return res

    def influence(self) -> pd.DataFrame:
        r"""Influence measures of every case, as R's ``influence.measures``.

        Columns ``dfb.<coefficient>`` (dfbetas, one per non-aliased coefficient; R
        abbreviates these names and writes ``1_`` for the intercept), ``dffit``,
        ``cov.r``, ``cook.d`` (the ``"hat"`` form), ``hat`` and ``inf``: True when any of
        R's rules flags the case (:func:`influence_flags` gives them one by one):
        :math:`|\mathrm{dfbetas}| > 1`, :math:`|\mathrm{dffit}| > 3\sqrt{k/(n-k)}`,
        :math:`|1-\mathrm{cov.r}| > 3k/(n-k)`, :math:`F_{k,n-k}(\mathrm{cook.d}) > 0.5`,
        :math:`h > 3k/n`.
        """
        if self.rank == 0:
            raise PyglmmError("the model has no coefficients: there are no influence measures")
        table = self._influence_table()
        flags = self._flags_of(table)
        table["inf"] = flags.to_numpy().any(axis=1)
        return table

    def _influence_table(self) -> pd.DataFrame:
        dfb = self.dfbetas()
        dfb.columns = [f"dfb.{c}" for c in dfb.columns]
        table = dfb.copy()
        table["dffit"] = self.dffits().to_numpy()
        table["cov.r"] = self.covratio().to_numpy()
        table["cook.d"] = self.cooks_distance("hat").to_numpy()
        table["hat"] = self.hat_values().to_numpy()
        return table

    def influence_flags(self) -> pd.DataFrame:
        """R's ``influence.measures()$is.inf``: one boolean column per measure."""
        if self.rank == 0:
            raise PyglmmError("the model has no coefficients: there are no influence measures")
        return self._flags_of(self._influence_table())

    @staticmethod
    def _flags_of(table: pd.DataFrame) -> pd.DataFrame:
        values = table.to_numpy(dtype=float)
        n_cases = int(np.sum(table["hat"].to_numpy() > 0))
        flags = influential_flags(values, n_cases)
        return pd.DataFrame(flags, index=table.index, columns=table.columns)

    # ---------------------------------------------------------------- normality
    def shapiro(self, type: str = "deviance") -> ShapiroWilk:
        """Shapiro-Wilk test of normality of the residuals (R's ``shapiro.test``).

        Parameters
        ----------
        type : str
            Residual type, as for :meth:`residuals` (default ``"deviance"``).

        Returns
        -------
        ShapiroWilk
            ``(statistic, p_value)``; scipy's algorithm (Royston 1995) is R's.
        """
        from scipy import stats

        r = np.asarray(self.residuals(type), dtype=float)
        r = r[np.isfinite(r)]
        if not 3 <= r.size <= 5000:
            raise PyglmmError(
                f"the Shapiro-Wilk test needs between 3 and 5000 residuals, got {r.size}"
            )
        res = stats.shapiro(r)
        return ShapiroWilk(float(res.statistic), float(res.pvalue))

    # -------------------------------------------------------------------- plots
    def plot(self, which: Sequence[int] = (1, 2, 3, 5), **kwargs: Any) -> Figure:
        """R's ``plot.lm`` panels; see :func:`pyglmm.plots.regression.diagnostic_panels`."""
        from pyglmm.plots.regression import diagnostic_panels

        return diagnostic_panels(self, which=which, **kwargs)

    def plot_residuals(self, type: str | None = None, **kwargs: Any) -> Figure:
        """QQ plot, histogram with normal density and residuals vs fitted mean.

        See :func:`pyglmm.plots.regression.residual_panels`.
        """
        from pyglmm.plots.regression import residual_panels

        return residual_panels(self, type=type, **kwargs)

    def plot_cooks(self, **kwargs: Any) -> Figure:
        """Cook's distance by observation; see :func:`pyglmm.plots.regression.cooks_plot`."""
        from pyglmm.plots.regression import cooks_plot

        return cooks_plot(self, **kwargs)
