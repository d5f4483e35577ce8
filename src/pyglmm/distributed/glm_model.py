r"""``pg.glm`` on a Dask DataFrame: :class:`DistributedGeneralizedLinearModel`.

The fit is R's ``glm.fit`` with every sum over rows done on the cluster
(:mod:`pyglmm.distributed.irls`); the result is a
:class:`~pyglmm.glm.model.GeneralizedLinearModel` (a subclass of it) whose numbers —
coefficients, standard errors, deviances, dispersion, AIC — are computed from those
sums exactly as the in-memory result computes them from the rows:

.. math::

    \hat\phi = \frac{\sum_i W_i r_i^2}{n - p},\qquad
    X^2 = \sum_i \frac{w_i (y_i - \hat\mu_i)^2}{V(\hat\mu_i)},\qquad
    \operatorname{Var}(\hat\beta) = \hat\phi\,(X^\top W X)^{-1}.

Per-row quantities (``fitted``, ``linear_predictor``, ``residuals()``) are lazy Dask
Series (:mod:`pyglmm.distributed.rows`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from pyglmm.distributed._dask import require_dask
from pyglmm.distributed.frame import DistributedFrame, learn_frame
from pyglmm.distributed.irls import (
    DistributedIRLSFit,
    aic_total,
    final_statistics,
    fit_irls_distributed,
)
from pyglmm.distributed.rows import (
    DistributedNotSupported,
    RowsOnClusterMixin,
    approximate_quantiles,
    lazy_rows,
)
from pyglmm.errors import ConvergenceWarning, FamilyError
from pyglmm.families import Family, NegativeBinomial, get_family
from pyglmm.glm.coefficient_inference import (
    summary_dispersion,
)
from pyglmm.glm.control import GLMControl
from pyglmm.glm.model import (
    FIXED_DISPERSION_FAMILIES,
    GeneralizedLinearModel,
    argument_label,
    call_text,
    check_glm_formula,
    check_response,
    names_negative_binomial,
)


class DistributedGeneralizedLinearModel(RowsOnClusterMixin, GeneralizedLinearModel):
    r"""A GLM fitted to a Dask DataFrame (same attributes as :class:`GeneralizedLinearModel`).

    Differences from the in-memory result:

    * ``fitted``, ``linear_predictor``, ``y``-based residuals (``residuals(type)``) are
      lazy Dask Series; ``prior_weights``, ``working_weights``, ``model_matrix`` are not
      kept (``model_matrix`` is a lazy Dask array);
    * diagnostics that need every row on the client (``hat_values``, ``cooks_distance``,
      ``influence``, ``plot``) and refits (profile ``confint``, ``anova``) raise
      :class:`~pyglmm.distributed.rows.DistributedNotSupported`;
    * the deviance-residual quartiles of ``summary()`` are exact up to 10⁶ rows, then
      Dask's approximate quantiles (min and max exact).

    Extra attributes: ``passes`` (number of passes over the data).
    """

    def __init__(
        self,
        *,
        frame: DistributedFrame,
        family: Family,
        fit: DistributedIRLSFit,
        final: dict,
        null_dev: float,
        control: GLMControl,
        formula: str,
        call: str,
        contrasts: Mapping[str, str] | None,
        offset_expression: str | None,
        passes: int,
    ) -> None:
        self._set_arguments(
            frame=frame,
            family=family,
            fit=fit,
            control=control,
            formula=formula,
            call=call,
            contrasts=contrasts,
            weights_arg=None,
            offset_arg=None,
            offset_expression=offset_expression,
            theta_estimated=False,
            theta_se=None,
            theta_warning=None,
        )
        self.passes = passes
        self.row_labels = None
        self.nobs = int(fit.nobs)
        self._set_fit_results(fit, null_dev, fit.n_zero_weights)

        self.dispersion_estimated = family.name not in FIXED_DISPERSION_FAMILIES
        self.dispersion = summary_dispersion(
            self.dispersion_estimated, self.df_resid, lambda: final["pearson_disp"]
        )
        self.pearson_chisq = float(final["pearson_x2"])
        s_bar = final["sbar_sum"] / final["sbar_n"] if final["sbar_n"] else float("nan")
        df = self.df_resid if self.df_resid > 0 else np.nan
        self.dispersion_pearson = self.pearson_chisq / df
        self.dispersion_fletcher = self.dispersion_pearson / (1 - s_bar)
        self.dispersion_deviance = self.deviance / df

        self._set_inference(
            fit.chol,
            lambda: aic_total(
                family,
                final["aic"],
                self.deviance,
                self.nobs,
                fit.sum_weights,
                fit.sum_log_weights,
            ),
        )

    # ------------------------------------------------------------ per-row, lazily
    @property
    def fitted(self):  # type: ignore[override]
        r"""Lazy Dask Series of :math:`\hat\mu` (response scale)."""
        return lazy_rows(self.frame, self.family, self.coef.to_numpy(), "fitted")

    @property
    def linear_predictor(self):  # type: ignore[override]
        r"""Lazy Dask Series of :math:`\hat\eta` (with the offset)."""
        return lazy_rows(self.frame, self.family, self.coef.to_numpy(), "link")

    @property
    def y(self):  # type: ignore[override]
        """Lazy Dask Series of the response on the fitted scale (proportions for binomial)."""
        return lazy_rows(self.frame, self.family, self.coef.to_numpy(), "y")

    @property
    def prior_weights(self):  # type: ignore[override]
        """Lazy Dask Series of the prior weights (times the trials for ``cbind``)."""
        return lazy_rows(self.frame, self.family, self.coef.to_numpy(), "prior_weights")

    @property
    def model_matrix(self):
        """Lazy Dask array of :math:`X`."""
        return self.frame.X

    @property
    def model_matrix_rank(self):
        return self.frame.X[:, ~self.aliased]

    def residuals(self, type: str | None = None):  # type: ignore[override]
        """Lazy Dask Series of residuals: ``"deviance"`` (default), ``"pearson"``,
        ``"working"`` or ``"response"``."""
        type = type or "deviance"
        if type not in ("deviance", "pearson", "working", "response"):
            self._not_supported(f"residuals(type={type!r})")
        return lazy_rows(self.frame, self.family, self.coef.to_numpy(), type)

    # ------------------------------------------------------------ output and inference
    def summary(self, dispersion: float | None = None):
        """R's ``summary.glm`` (residual quartiles approximate beyond 10⁶ rows)."""
        from pyglmm.glm.summary_glm import GLMSummary

        dres = self.residuals("deviance")
        if self.df_resid > 5:
            # R's type-7 quantiles of these five numbers are the numbers themselves,
            # so the printed summary shows them unchanged.
            values = pd.Series(
                approximate_quantiles(dres, self.nobs), index=["Min", "1Q", "Median", "3Q", "Max"]
            )
        else:
            values = dres.compute()
        # the in-memory summary, built on a row-less stand-in of this model
        proxy = object.__new__(_RowlessStandIn)
        proxy.__dict__.update(self.__dict__)
        proxy.y = proxy.prior_weights = np.ones(1)
        proxy.fitted = pd.Series(np.ones(1))
        proxy.row_labels = pd.RangeIndex(1)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            s = GLMSummary(proxy, dispersion)
        s.model = self
        s.deviance_residuals = values
        if self.df_resid <= 5:
            self.row_labels = values.index
        return s

    def confint(self, parm=None, level: float = 0.95, method: str = "wald") -> pd.DataFrame:
        """Wald intervals (profile intervals need refits and are not done on Dask fits)."""
        if method != "wald":
            self._not_supported(f"confint(method={method!r}) (profile likelihood refits)")
        return super().confint(parm, level, method="wald")

    def predict(
        self,
        newdata: Any = None,
        type: str = "link",
        se: bool = False,
        interval: bool = False,
        level: float = 0.95,
        dispersion: float | None = None,
    ):
        """Predictions: on pandas ``newdata`` as the in-memory model; on the fitted data
        (``newdata=None``) or a Dask ``newdata`` as a lazy Dask Series/DataFrame."""
        from pyglmm.distributed._dask import is_dask_collection

        if newdata is None:
            if se or interval:
                newdata = self.frame.ddf
            else:
                what = "link" if type == "link" else "response_fit"
                return lazy_rows(self.frame, self.family, self.coef.to_numpy(), what)
        if is_dask_collection(newdata):
            light, row = self._light(), self.frame.meta.head(1)
            meta = _predict_partition(
                row.iloc[:0], light, row, type, se, interval, level, dispersion
            )
            return newdata.map_partitions(
                _predict_partition,
                light,
                row,
                type,
                se,
                interval,
                level,
                dispersion,
                meta=meta,
                enforce_metadata=False,
            )
        return super().predict(newdata, type, se, interval, level, dispersion)

    def anova(self, test: str | None = None, dispersion: float | None = None):
        self._not_supported("anova() (sequential refits)")

    def _light(self) -> SimpleNamespace:
        """What :func:`~pyglmm.glm.predict.predict_glm` reads, without the Dask graph."""
        return SimpleNamespace(
            aliased=self.aliased,
            coef=self.coef,
            frame=SimpleNamespace(fixed=self.frame.fixed, formula=self.frame.formula),
            offset_expression=self.offset_expression,
            _offset_arg=None,
            family=self.family,
            dispersion=self.dispersion,
            cov_unscaled=self.cov_unscaled,
            dispersion_estimated=self.dispersion_estimated,
            df_resid=self.df_resid,
        )


class _RowlessStandIn(GeneralizedLinearModel):
    """The attributes of a distributed GLM with plain (non-lazy) row attributes."""


def _predict_partition(part, model, meta_row, type, se, interval, level, dispersion):
    from pyglmm.distributed.frame import FORMULA_LOCK

    with FORMULA_LOCK:
        return _predict_rows(part, model, meta_row, type, se, interval, level, dispersion)


def _predict_rows(part, model, meta_row, type, se, interval, level, dispersion):
    from pyglmm.glm.predict import predict_glm

    if len(part) == 0:
        return predict_glm(model, meta_row, type, se, interval, level, dispersion).iloc[:0]
    return predict_glm(model, part, type, se, interval, level, dispersion)


def glm(
    formula: str,
    data: Any,
    family: str | Family = "gaussian",
    link: str | None = None,
    weights: Any = None,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    control: GLMControl | Mapping[str, Any] | None = None,
    start: Sequence[float] | np.ndarray | None = None,
    theta: float | None = None,
) -> DistributedGeneralizedLinearModel:
    r"""Fit a GLM to a Dask DataFrame (called by :func:`pyglmm.glm` for Dask input).

    Same arguments as :func:`pyglmm.glm`, except that ``weights`` and ``offset`` must
    be column names or expressions of columns, and the negative binomial family needs
    a known ``theta``. Runs on the active Dask scheduler (a ``dask.distributed.Client``
    if one exists).
    """
    require_dask()
    control = GLMControl.coerce(control)
    if isinstance(family, Family):
        fam = get_family(family, link)
    elif names_negative_binomial(family):
        if theta is None:
            raise DistributedNotSupported(
                "estimating the negative binomial theta (glm.nb) is not supported on a "
                "Dask DataFrame; give theta= (e.g. from a fit to a sample)"
            )
        fam = NegativeBinomial(theta, link=link)
    else:
        if theta is not None:
            raise FamilyError("theta= is only for the negative binomial family")
        fam = get_family(family, link)
    frame = learn_frame(
        formula, data, weights=weights, offset=offset, contrasts=contrasts, group_columns=False
    )
    check_glm_formula(formula, frame.random, frame.formula.response is not None)
    call = call_text(
        formula, fam, argument_label(weights, "weights"), argument_label(offset, "offset")
    )
    fit = fit_irls_distributed(
        frame,
        fam,
        start=start,
        control=control,
        column_names=frame.column_names,
        check=check_response,
    )
    passes = 1 + fit.passes
    intercept = frame.fixed.has_intercept
    null_mu: float | None
    if intercept and frame.offset_given and fit.any_offset:
        beta_full = np.where(fit.aliased, 0.0, fit.coef)
        null_fit = fit_irls_distributed(
            frame,
            fam,
            init_spec=("mu_of_full", beta_full),
            control=control,
            intercept_only=True,
            warn=False,
        )
        passes += null_fit.passes
        if not null_fit.converged:
            warnings.warn(
                "fitting to calculate the null deviance did not converge -- increase 'maxit'?",
                ConvergenceWarning,
                stacklevel=2,
            )
        null_dev, null_mu = float(null_fit.deviance), None
    elif intercept:
        null_dev, null_mu = float("nan"), fit.sum_weighted_y / fit.sum_weights
    else:
        null_dev, null_mu = float("nan"), 0.0
    final = final_statistics(frame, fam, fit, intercept=intercept, null_mu=null_mu)
    passes += 1
    if null_mu is not None:
        null_dev = float(final["null_dev"])
    if fam.name == "binomial" and (final["any_hi"] or final["any_lo"]):
        from pyglmm.errors import SeparationWarning

        warnings.warn(
            "glm.fit: fitted probabilities numerically 0 or 1 occurred",
            SeparationWarning,
            stacklevel=2,
        )
    if fam.name == "poisson" and final["any_lo"]:
        warnings.warn(
            "glm.fit: fitted rates numerically 0 occurred", ConvergenceWarning, stacklevel=2
        )
    return DistributedGeneralizedLinearModel(
        frame=frame,
        family=fam,
        fit=fit,
        final=final,
        null_dev=null_dev,
        control=control,
        formula=formula,
        call=call,
        contrasts=contrasts,
        offset_expression=offset if isinstance(offset, str) else None,
        passes=passes,
    )
