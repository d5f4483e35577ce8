r"""Fitted generalized linear models: :class:`GeneralizedLinearModel` and :func:`glm`.

A GLM says :math:`g(\mu_i) = \eta_i = x_i^\top\beta + o_i` with
:math:`\operatorname{Var}(Y_i) = \phi V(\mu_i)/w_i`. :func:`glm` turns a formula
and a data frame into the model frame, fits :math:`\beta` by IRLS
(:mod:`pyglmm.glm.irls`), and returns the result with R's inference:
Wald tests with :math:`\operatorname{Var}(\hat\beta) = \phi (X^\top W X)^{-1}`
(z when :math:`\phi` is known, t with :math:`n - p` degrees of freedom when it is
estimated by Pearson's :math:`\hat\phi = X^2/(n-p)`), deviances, AIC and BIC.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from pyglmm.diagnostics.mixin import DiagnosticsMixin
from pyglmm.errors import DataWarning, FamilyError, PyglmmError
from pyglmm.families import Family, NegativeBinomial, get_family
from pyglmm.formula.frame import ModelFrame, formula_offset, model_frame
from pyglmm.glm.coefficient_inference import (
    CoefficientInference,
    LikelihoodCriteria,
    coefficient_inference,
    likelihood_criteria,
    summary_dispersion,
)
from pyglmm.glm.control import GLMControl
from pyglmm.glm.design import MIN_FACTOR_COLUMNS, FactorBlockDesign, design_of_frame
from pyglmm.glm.dispersion import (
    deviance_dispersion,
    fletcher_dispersion,
    pearson_chisq,
    pearson_dispersion,
)
from pyglmm.glm.irls import IRLSFit, fit_irls, null_deviance
from pyglmm.glm.warn import warn

#: Families whose dispersion R's ``summary.glm`` fixes at 1.
FIXED_DISPERSION_FAMILIES = ("poisson", "binomial")


def r_family_name(family: Family) -> str:
    """The family name R prints (``Negative Binomial(1.2345)`` for a negative binomial)."""
    if isinstance(family, NegativeBinomial):
        return family.display_name
    return family.name


class GeneralizedLinearModel(DiagnosticsMixin):
    r"""A fitted GLM (R's ``glm`` object plus ``summary.glm``).

    Attributes
    ----------
    coef : pandas.Series
        :math:`\hat\beta` by R's column names; NaN for aliased columns.
    se : pandas.Series
        Standard errors :math:`\sqrt{\hat\phi\,[(X^\top W X)^{-1}]_{jj}}`.
    statistic, p_values : pandas.Series
        z (dispersion known) or t (estimated) values and two-sided p-values.
    vcov : pandas.DataFrame
        :math:`\hat\phi (X^\top W X)^{-1}` (NaN rows/columns for aliased coefficients).
    deviance, null_deviance : float
        Residual and null deviance (R's: with an offset the null model is fitted).
    df_resid, df_null : int
    loglik, aic, bic : float
        As R's ``logLik``, ``AIC`` and ``BIC`` (NaN for quasi families).
    dispersion : float
        R's ``summary.glm`` dispersion: 1 for Poisson and binomial, otherwise
        Pearson's :math:`\sum_i W_i r_i^2/(n-p)` with the working weights and
        residuals.
    dispersion_pearson, dispersion_fletcher, dispersion_deviance : float
        :math:`X^2/(n-p)`, Fletcher's :math:`\hat\phi_P/(1-\bar s)` with
        :math:`\bar s = n^{-1}\sum_i V'(\hat\mu_i)(y_i-\hat\mu_i)/V(\hat\mu_i)`, and
        :math:`D/(n-p)`.
    dispersion_estimated : bool
        True when inference uses t and F (the dispersion is estimated).
    iterations : int
        Fisher scoring iterations.
    converged, boundary : bool
    history : pandas.DataFrame
        One row per IRLS iteration: ``iteration``, ``deviance`` and the coefficients.
    fitted : pandas.Series
        :math:`\hat\mu` (response scale).
    linear_predictor : numpy.ndarray
        :math:`\hat\eta` including the offset.
    y, prior_weights, working_weights, offset : numpy.ndarray
    theta, theta_se : float or None
        Negative binomial :math:`\theta` (and its standard error when estimated).
    """

    is_lm = False

    #: the structured design of a fit with a many-level factor, whose dense X is dropped
    _factor_design: FactorBlockDesign | None = None

    def __init__(
        self,
        *,
        frame: ModelFrame,
        family: Family,
        fit: IRLSFit,
        null_dev: float,
        control: GLMControl,
        formula: str,
        call: str,
        weights_arg: np.ndarray | None,
        offset_arg: np.ndarray | None,
        contrasts: Mapping[str, str] | None,
        theta_estimated: bool = False,
        theta_se: float | None = None,
        nb_loglik: float | None = None,
        nb_warning: str | None = None,
        offset_expression: str | None = None,
    ) -> None:
        self._set_arguments(
            frame=frame,
            family=family,
            fit=fit,
            control=control,
            formula=formula,
            call=call,
            contrasts=contrasts,
            weights_arg=weights_arg,
            offset_arg=offset_arg,
            offset_expression=offset_expression,
            theta_estimated=theta_estimated,
            theta_se=theta_se,
            theta_warning=nb_warning,
        )
        self.row_labels = frame.row_labels
        self.nobs = int(len(fit.y))
        self.y = fit.y
        self.prior_weights = fit.prior_weights
        self.n_trials = fit.n_trials
        self.offset = frame.offset
        self.linear_predictor = fit.eta
        self.fitted = pd.Series(fit.mu, index=self.row_labels, name="fitted")
        self.working_weights = fit.working_weights
        self.working_residuals = fit.working_residuals
        self._set_fit_results(fit, null_dev, np.sum(self.prior_weights == 0))

        # dispersion (summary.glm) ----------------------------------------
        self.dispersion_estimated = not (
            family.name in FIXED_DISPERSION_FAMILIES or theta_estimated
        )
        w2, wres = self.working_weights, self.working_residuals
        self.dispersion = summary_dispersion(
            self.dispersion_estimated, self.df_resid, lambda: np.sum((w2 * wres**2)[w2 > 0])
        )
        # Pearson's and Fletcher's dispersions: computed when first asked for (properties)
        mu, y, pw = fit.mu, fit.y, fit.prior_weights
        self.dispersion_deviance = deviance_dispersion(self.deviance, self.df_resid)

        # covariance, Wald tests and likelihood (logLik/AIC/BIC when first asked for) ------
        def family_aic() -> float:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return family.aic(y, self.n_trials, mu, pw, self.deviance)

        self._set_inference(fit.chol, family_aic, nb_loglik if theta_estimated else None)

    def _set_arguments(
        self,
        *,
        frame,
        family: Family,
        fit,
        control: GLMControl,
        formula: str,
        call: str,
        contrasts: Mapping[str, str] | None,
        weights_arg: np.ndarray | None,
        offset_arg: np.ndarray | None,
        offset_expression: str | None,
        theta_estimated: bool,
        theta_se: float | None,
        theta_warning: str | None,
    ) -> None:
        r"""The model's specification as attributes (in-memory or Dask): the frame, family,
        fit, control, formula, printed call, contrasts, weights/offset arguments, the
        negative binomial :math:`\theta` and ``column_names``."""
        self.frame = frame
        self.family = family
        self._fit = fit
        self.control = control
        self.formula = formula
        self.call = call
        self.contrasts = dict(contrasts) if contrasts else None
        self._weights_arg = weights_arg
        self._offset_arg = offset_arg
        self.offset_expression = offset_expression
        self.theta_estimated = theta_estimated
        self.theta = family.theta if isinstance(family, NegativeBinomial) else None
        self.theta_se = theta_se
        self.theta_warning = theta_warning
        self.column_names = list(frame.column_names)

    def _set_fit_results(self, fit, null_dev: float, n_zero_weights) -> None:
        """The attributes taken from the IRLS fit (in-memory or Dask).

        Sets ``aliased``, ``rank``, ``iterations``, ``converged``, ``boundary``,
        ``deviance``, ``null_deviance``, ``fit_warnings``, ``intercept``, ``df_null``,
        ``df_resid`` (rows with positive weight minus the rank) and ``coef`` (``history``
        is built from ``fit.history`` when first read).
        Needs ``frame``, ``column_names`` and ``nobs``.
        """
        names = self.column_names
        self.aliased = fit.aliased
        self.rank = fit.rank
        self.iterations = fit.iterations
        self.converged = fit.converged
        self.boundary = fit.boundary
        self.deviance = fit.deviance
        self.null_deviance = null_dev
        self.fit_warnings = list(fit.warnings)
        n_ok = int(self.nobs - n_zero_weights)
        self.intercept = bool(self.frame.fixed.has_intercept)
        self.df_null = n_ok - int(self.intercept)
        self.df_resid = n_ok - self.rank
        self.coef = pd.Series(fit.coef, index=pd.Index(names), name="coef")

    @cached_property
    def history(self) -> pd.DataFrame:
        """One row per IRLS iteration: ``iteration``, ``deviance`` and the coefficients."""
        return pd.DataFrame(
            [[it, dev, *coefs] for it, dev, coefs in self._fit.history],
            columns=["iteration", "deviance", *self.column_names],
        )

    def _set_inference(self, chol: np.ndarray, family_aic, nb_loglik: float | None = None) -> None:
        r"""What the covariance, SEs, statistics, p-values (:func:`coefficient_inference`)
        and logLik/AIC/BIC (:func:`likelihood_criteria`) are computed from, when first read.

        Needs ``coef``, ``aliased``, ``dispersion``, ``dispersion_estimated``,
        ``df_resid``, ``family``, ``rank`` and ``nobs``; ``chol`` is the Cholesky factor of
        :math:`X^\top W X` and ``family_aic()`` R's ``family$aic`` at the fit.
        """
        self._chol = chol
        self._family_aic = family_aic
        self._nb_loglik = nb_loglik

    # ------------------------------------------------------------------ lazy statistics
    # Computed at the first access and kept (functools.cached_property, so a subclass may
    # also set them as attributes): a fit whose user reads only the coefficients pays for
    # neither the covariance tables nor the sums over rows of the likelihood and dispersion.
    @cached_property
    def _coefficient_inference(self) -> CoefficientInference:
        return coefficient_inference(
            self.coef,
            self.aliased,
            self._chol,
            self.dispersion,
            self.dispersion_estimated,
            self.df_resid,
        )

    @cached_property
    def cov_unscaled(self) -> pd.DataFrame:
        r""":math:`(X^\top W X)^{-1}` (NaN rows/columns for aliased coefficients)."""
        return self._coefficient_inference.cov_unscaled

    @cached_property
    def vcov(self) -> pd.DataFrame:
        r""":math:`\hat\phi (X^\top W X)^{-1}`."""
        return self._coefficient_inference.vcov

    @cached_property
    def se(self) -> pd.Series:
        r"""Standard errors :math:`\sqrt{\hat\phi\,[(X^\top W X)^{-1}]_{jj}}`."""
        return self._coefficient_inference.se

    @cached_property
    def statistic(self) -> pd.Series:
        """z (dispersion known) or t (estimated) values."""
        return self._coefficient_inference.statistic

    @cached_property
    def p_values(self) -> pd.Series:
        """Two-sided p-values of :attr:`statistic`."""
        return self._coefficient_inference.p_values

    @cached_property
    def _likelihood_criteria(self) -> LikelihoodCriteria:
        return likelihood_criteria(
            self.family, self.rank, self.nobs, self._family_aic, nb_loglik=self._nb_loglik
        )

    @cached_property
    def loglik(self) -> float:
        """R's ``logLik`` (NaN for quasi families)."""
        return self._likelihood_criteria.loglik

    @cached_property
    def aic(self) -> float:
        r"""R's ``AIC``: :math:`-2\ell + 2k` (NaN for quasi families)."""
        return self._likelihood_criteria.aic

    @cached_property
    def bic(self) -> float:
        r"""R's ``BIC``: :math:`-2\ell + k\log n` (NaN for quasi families)."""
        return self._likelihood_criteria.bic

    @cached_property
    def df_loglik(self) -> int:
        """Number of parameters of ``logLik`` (:math:`p`, +1 for an estimated dispersion)."""
        return self._likelihood_criteria.df_loglik

    @cached_property
    def pearson_chisq(self) -> float:
        r"""Pearson's :math:`X^2 = \sum_i w_i (y_i - \hat\mu_i)^2 / V(\hat\mu_i)`."""
        fit = self._fit
        return pearson_chisq(fit.y, fit.mu, self.family, fit.prior_weights)

    @cached_property
    def dispersion_pearson(self) -> float:
        r""":math:`X^2/(n-p)`."""
        fit = self._fit
        return pearson_dispersion(fit.y, fit.mu, self.family, self.df_resid, fit.prior_weights)

    @cached_property
    def dispersion_fletcher(self) -> float:
        r"""Fletcher's :math:`\hat\phi_P/(1-\bar s)`."""
        fit = self._fit
        return fletcher_dispersion(fit.y, fit.mu, self.family, self.df_resid, fit.prior_weights)

    # ------------------------------------------------------------------ protocol
    @property
    def model_matrix(self) -> np.ndarray:
        r"""The full model matrix :math:`X` (``n x p``).

        A fit with a many-level factor does not keep :math:`X` (see :func:`glm`): it is
        rebuilt here from the blocks :math:`[D \; F]` of its design, bit for bit.
        """
        if self.frame.X is None:
            self.frame.X = self._factor_design.dense()
        return self.frame.X

    @property
    def model_matrix_rank(self) -> np.ndarray:
        """The non-aliased columns of :math:`X` (``n x rank``; :math:`X` itself when full rank)."""
        if not np.any(self.aliased):
            return self.model_matrix
        return self.model_matrix[:, ~self.aliased]

    @property
    def link(self):
        return self.family.link

    @property
    def coefficients(self) -> pd.Series:
        return self.coef

    @property
    def df_model(self) -> int:
        """Number of estimated coefficients (the rank)."""
        return self.rank

    @property
    def response_name(self) -> str | None:
        return self.frame.response_name

    @property
    def terms(self) -> list[str]:
        return self.frame.terms

    @property
    def assign(self) -> np.ndarray:
        return self.frame.assign

    def _profile_response(self) -> tuple[np.ndarray, np.ndarray]:
        """The response and prior weights as given (before ``family.initialize``)."""
        w = self._weights_arg
        return self.frame.y, (np.ones(self.nobs) if w is None else w)

    def refit_without(self, keep: np.ndarray) -> GeneralizedLinearModel:
        """Refit on the rows where ``keep`` is True (same formula, family, weights, offset)."""
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (self.nobs,):
            raise PyglmmError(f"keep must be a boolean array of length {self.nobs}")
        data = self.frame.data.loc[keep]
        w = None if self._weights_arg is None else self._weights_arg[keep]
        o = None if self._offset_arg is None else self._offset_arg[keep]
        family = self.family
        theta = None
        if self.theta_estimated:
            family, theta = "negative.binomial", None
        refit = _fit_glm(
            self.formula,
            data,
            family=family,
            link=None,
            weights=w,
            offset=o,
            contrasts=self.contrasts,
            control=self.control,
            start=None,
            theta=theta,
            warn=False,
            call=self.call,
        )
        refit.offset_expression = self.offset_expression
        return refit

    # ------------------------------------------------------------------ output
    def summary(self, dispersion: float | None = None):
        r"""R's ``summary.glm`` (printable; ``str()`` gives R's text).

        ``dispersion`` overrides :math:`\hat\phi` and makes the tests z tests, as R's
        ``summary(fit, dispersion = ...)``.
        """
        from pyglmm.glm.summary_glm import GLMSummary

        return GLMSummary(self, dispersion)

    def coef_table(self, conf_int: bool = False, level: float = 0.95) -> pd.DataFrame:
        """Tidy coefficient table: estimate, std_error, statistic, p_value (+ Wald CI)."""
        out = pd.DataFrame(
            {
                "estimate": self.coef,
                "std_error": self.se,
                "statistic": self.statistic,
                "p_value": self.p_values,
            }
        )
        if conf_int:
            ci = self.confint(level=level, method="wald")
            out["conf_low"] = ci.iloc[:, 0]
            out["conf_high"] = ci.iloc[:, 1]
        return out

    def __repr__(self) -> str:
        from pyglmm.glm.summary_glm import print_glm

        return print_glm(self)

    def __str__(self) -> str:
        return self.__repr__()

    def _repr_html_(self) -> str:
        from pyglmm.glm.summary_glm import summary_html

        return summary_html(self)

    # ------------------------------------------------------------------ inference
    def confint(
        self,
        parm: str | Sequence[str] | None = None,
        level: float = 0.95,
        method: str = "profile",
    ) -> pd.DataFrame:
        """Confidence intervals for coefficients.

        ``method="profile"`` (R's ``confint.glm``, MASS's profile likelihood with
        spline interpolation of the signed root deviance) or ``"wald"``
        (:math:`\\hat\\beta \\pm z_{1-\\alpha/2}\\,\\text{se}`, R's ``confint.default``).
        """
        from pyglmm.glm.inference import confint_wald
        from pyglmm.glm.profile import confint_profile

        if method == "wald":
            return confint_wald(self, parm, level)
        if method == "profile":
            return confint_profile(self, parm, level)
        raise PyglmmError(f"method must be 'profile' or 'wald', not {method!r}")

    def wald_test(self, L, rhs=0.0):
        """Multivariate Wald test of :math:`L\\beta = c` (see :mod:`pyglmm.glm.inference`)."""
        from pyglmm.glm.inference import wald_test

        return wald_test(self, L, rhs)

    def confidence_region(self, parm: Sequence[str] | None = None, level: float = 0.95):
        """Simultaneous Wald confidence ellipsoid (see :mod:`pyglmm.glm.inference`)."""
        from pyglmm.glm.inference import ConfidenceRegion

        return ConfidenceRegion.from_model(self, parm, level)

    def predict(
        self,
        newdata: Any = None,
        type: str = "link",
        se: bool = False,
        interval: bool = False,
        level: float = 0.95,
        dispersion: float | None = None,
    ):
        """Predictions on the link or response scale, with delta-method SEs and intervals."""
        from pyglmm.glm.predict import predict_glm

        return predict_glm(self, newdata, type, se, interval, level, dispersion)

    def anova(self, test: str | None = None, dispersion: float | None = None):
        """Sequential analysis of deviance (R's ``anova.glm`` of one model)."""
        from pyglmm.glm.analysis_of_deviance import anova_sequential

        return anova_sequential(self, test=test, dispersion=dispersion)

    @classmethod
    def _anova_compare(cls, models, test: str | None = None, dispersion: float | None = None):
        """Analysis of deviance between nested GLMs (R's ``anova.glmlist``)."""
        from pyglmm.glm.analysis_of_deviance import anova_models

        return anova_models(models, test=test, dispersion=dispersion)


# ---------------------------------------------------------------------- fitting
def check_response(family: Family, y: np.ndarray, weights: np.ndarray | None) -> None:
    """Check the response against the family, as R's ``family$initialize`` does.

    Raises :class:`~pyglmm.errors.FamilyError` for negative counts, non-positive Gamma or
    inverse Gaussian responses and binomial proportions outside [0, 1]; warns
    (:class:`~pyglmm.errors.DataWarning`) for non-integer counts or successes.
    """
    y = np.asarray(y, dtype=float)
    name = family.name
    if name in ("poisson", "negative.binomial"):
        if _any_outside(y, 0.0, np.inf):
            raise FamilyError(
                f"negative values are not allowed for the {name} family (counts); "
                f"found {int(np.sum(y < 0))}"
            )
        if not _all_integers(y):
            warn(
                f"non-integer counts in a {name} model: the fit uses the score equations "
                "(quasi-likelihood), the log-likelihood and AIC extend dpois through lgamma",
                DataWarning,
            )
    elif name in ("Gamma", "inverse.gaussian") and np.any(y <= 0):
        raise FamilyError(
            f"non-positive values are not allowed for the {name} family; "
            f"found {int(np.sum(y <= 0))} (min {np.min(y):g})"
        )
    elif name == "binomial":
        if y.ndim == 2:
            counts = y
        else:
            if _any_outside(y, 0.0, 1.0):
                raise FamilyError(
                    "binomial response values must be 0 <= y <= 1 (proportions with weights, "
                    "or use cbind(successes, failures))"
                )
            counts = y if weights is None else weights * y
        if not _all_integers(counts) and np.any(np.abs(counts - np.round(counts)) > 1e-7):
            warn("non-integer #successes in a binomial glm!", DataWarning)


def _any_outside(values: np.ndarray, lower: float, upper: float) -> bool:
    """Whether some value is below ``lower`` or above ``upper`` (NaN is neither)."""
    if values.size == 0:
        return False
    lo, hi = np.min(values), np.max(values)
    if np.isnan(lo) or np.isnan(hi):  # min/max propagate NaN: compare elementwise
        return bool(np.any((values < lower) | (values > upper)))
    return bool(lo < lower or hi > upper)


def _all_integers(values: np.ndarray) -> bool:
    """Whether every value is an integer (NaN is not); two vector passes."""
    return bool(np.array_equal(values, np.round(values)))


#: The names (lower case, without spaces) that ask for the negative binomial family.
NEGATIVE_BINOMIAL_NAMES = (
    "negative.binomial",
    "negative_binomial",
    "negbin",
    "nb",
    "negativebinomial",
)


def names_negative_binomial(family: str) -> bool:
    """Whether the family name ``family`` asks for the negative binomial family."""
    return str(family).strip().lower().replace(" ", "") in NEGATIVE_BINOMIAL_NAMES


def check_glm_formula(formula: str, random: Sequence[Any], response_given: bool) -> None:
    """Refuse a GLM formula with random-effects terms (``random``: its bars) or without a
    response, with a :class:`~pyglmm.errors.PyglmmError` that says what to do."""
    if random:
        raise PyglmmError(
            f"the formula {formula!r} has random-effects terms; use pg.glmer for mixed models"
        )
    if not response_given:
        raise PyglmmError("the formula has no response (left-hand side)")


def call_text(formula, family: Family, weights_given, offset_given) -> str:
    """R's printed call ``glm(formula = ..., family = ..., data = data, ...)``.

    ``weights_given`` and ``offset_given`` are the labels of
    :func:`argument_label` (None when the argument was not given).
    """
    fam = family.name
    if isinstance(family, NegativeBinomial):
        fam_txt = f'negative.binomial(theta = {family.theta:.10g}, link = "{family.link.name}")'
    else:
        fam_txt = f'{fam}(link = "{family.link.name}")'
    args = [f"formula = {formula}", f"family = {fam_txt}", "data = data"]
    if weights_given:
        args.append(f"weights = {weights_given}")
    if offset_given:
        args.append(f"offset = {offset_given}")
    return "glm(" + ", ".join(args) + ")"


def argument_label(value: Any, what: str) -> str | None:
    """How an argument shows in the printed call: the column/expression, or its name."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return what


def _fit_glm(
    formula: str,
    data: Any,
    *,
    family,
    link,
    weights,
    offset,
    contrasts,
    control,
    start,
    theta,
    warn: bool = True,
    call: str | None = None,
) -> GeneralizedLinearModel:
    control = GLMControl.coerce(control)
    estimate_theta = False
    if isinstance(family, Family):
        fam = get_family(family, link)
    elif names_negative_binomial(family):
        if theta is None:
            estimate_theta = True
            fam = NegativeBinomial(1.0, link=link)
        else:
            fam = NegativeBinomial(theta, link=link)
    else:
        if theta is not None:
            raise FamilyError("theta= is only for the negative binomial family")
        fam = get_family(family, link)
    frame = model_frame(
        formula,
        data,
        weights=weights,
        offset=offset,
        contrasts=contrasts,
        # a many-level factor is fitted from its level codes: its indicator columns are
        # not formed
        indicator_block_min=MIN_FACTOR_COLUMNS,
    )
    check_glm_formula(formula, frame.random, frame.y is not None)
    weights_arr = frame.weights
    # the offset= argument, per used row (formula offsets are re-evaluated on refits)
    offset_arg = (
        None if offset is None else frame.offset - formula_offset(frame.formula.offsets, frame.data)
    )
    if warn:
        check_response(fam, frame.y, weights_arr)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_response(fam, frame.y, weights_arr)
    if call is None:
        call = call_text(
            formula,
            fam,
            argument_label(weights, "weights"),
            argument_label(offset, "offset"),
        )
    if estimate_theta:
        from pyglmm.glm.negative_binomial import fit_glm_nb

        return fit_glm_nb(
            frame,
            fam.link.name,
            control=control,
            start=start,
            formula=formula,
            call=call,
            weights_arg=weights_arr,
            offset_arg=offset_arg,
            contrasts=contrasts,
            warn=warn,
            offset_expression=offset if isinstance(offset, str) else None,
        )
    ctx = warnings.catch_warnings()
    with ctx:
        if not warn:
            warnings.simplefilter("ignore")
        design = design_of_frame(frame)
        fit = fit_irls(
            design,
            frame.y,
            fam,
            weights=weights_arr,
            offset=frame.offset,
            start=start,
            control=control,
            intercept=frame.fixed.has_intercept,
            column_names=frame.column_names,
            warn=True,
        )
        null_dev = null_deviance(
            fit.y,
            fam,
            fit.prior_weights,
            frame.offset,
            fit.mu,
            frame.fixed.has_intercept,
            control,
            frame.offset_given,
            rows=fit.rows,
        )
    model = GeneralizedLinearModel(
        frame=frame,
        family=fam,
        fit=fit,
        null_dev=null_dev,
        control=control,
        formula=formula,
        call=call,
        weights_arg=weights_arr,
        offset_arg=offset_arg,
        contrasts=contrasts,
        offset_expression=offset if isinstance(offset, str) else None,
    )
    return keep_design(model, design)


def keep_design(model: GeneralizedLinearModel, design) -> GeneralizedLinearModel:
    """Let a fit with a many-level factor keep its :class:`FactorBlockDesign`, not X.

    X of a many-level factor is mostly indicator zeros (800 MB at 10^5 rows x 1,005
    columns). A result that kept it would make the next fit's fresh X come from new pages
    (measured: 2.2 s of kernel time against 0.4 s for the whole fit); the design's blocks
    rebuild it exactly when asked (:attr:`GeneralizedLinearModel.model_matrix`).
    """
    if isinstance(design, FactorBlockDesign):
        model._factor_design = design
        model.frame.X = None
        model.frame.fixed.matrix = None
    return model


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
) -> GeneralizedLinearModel:
    r"""Fit a generalized linear model, as R's ``glm``.

    Parameters
    ----------
    formula : str
        R formula, e.g. ``"round(y) ~ dur + res + educ + offset(log(n))"``;
        binomial responses may be 0/1, proportions (with ``weights`` = trials) or
        ``cbind(successes, failures)``.
    data : DataFrame
        pandas or polars.
    family : str or Family
        ``"gaussian"``, ``"binomial"``, ``"poisson"``, ``"Gamma"``,
        ``"inverse.gaussian"``, ``"quasipoisson"``, ``"quasibinomial"``,
        ``"negative.binomial"`` (with ``theta=`` for a known :math:`\theta`; without
        it :math:`\theta` is estimated by maximum likelihood as ``MASS::glm.nb``).
    link : str, optional
        ``"identity"``, ``"log"``, ``"logit"``, ``"probit"``, ``"cloglog"``,
        ``"cauchit"``, ``"inverse"``, ``"1/mu^2"``, ``"sqrt"``; default canonical.
    weights : str or array-like, optional
        Prior weights :math:`w_i` (a column name or one value per row).
    offset : str or array-like, optional
        Added to the linear predictor (summed with ``offset()`` terms of the formula).
    contrasts : mapping, optional
        ``{"res": "contr.sum"}``; treatment contrasts by default.
    control : GLMControl or dict, optional
        ``epsilon`` (1e-8), ``maxit`` (25), ``trace``.
    start : array-like, optional
        Starting coefficients.
    theta : float, optional
        Known negative binomial :math:`\theta`.

    Returns
    -------
    GeneralizedLinearModel

    Examples
    --------
    The Poisson regression of the seed notes (chapter 3):

    >>> import pyglmm as pg
    >>> ceb = pg.datasets.load("ceb")
    >>> m = pg.glm("round(y) ~ dur + res + educ", ceb, family="poisson", offset="log(n)")
    >>> round(m.deviance, 3), round(m.aic, 2), m.iterations
    (70.665, 522.14, 4)
    >>> print(m.summary())  # doctest: +SKIP
    >>> m.confint("dur10-14")  # profile likelihood, as R  # doctest: +SKIP
    >>> pg.anova(m, test="Chisq")  # sequential analysis of deviance  # doctest: +SKIP
    """
    from pyglmm import distributed

    if distributed.is_dask_collection(data):  # Dask DataFrame: fit on the cluster
        args = (family, link, weights, offset, contrasts, control, start, theta)
        return distributed.glm(formula, data, *args)
    from pyglmm.mixed.blas_threads import blas_threads
    from pyglmm.page_advice import ordinary_pages

    # ordinary pages: no huge-page compaction stalls on the new model matrix. One BLAS
    # thread for the whole fit, not only for IRLS: the cores are shared by pyglmm's own row
    # threads, and one multithreaded BLAS call (say a dot product of length n in the null
    # deviance) leaves OpenBLAS's worker spinning on a core for the next ~0.1 s, measured
    # here to slow a logistic fit of 10^5 x 20 from 20 to 33 ms.
    with ordinary_pages(), blas_threads(1):
        return _fit_glm(
            formula,
            data,
            family=family,
            link=link,
            weights=weights,
            offset=offset,
            contrasts=contrasts,
            control=control,
            start=start,
            theta=theta,
        )
