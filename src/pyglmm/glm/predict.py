r"""Predictions from a GLM, with delta-method standard errors (R's ``predict.glm``).

On the link scale :math:`\hat\eta_0 = x_0^\top\hat\beta + o_0` with
:math:`\mathrm{se}(\hat\eta_0) = \sqrt{\hat\phi\, x_0^\top (X^\top W X)^{-1} x_0}`.
On the response scale the delta method (seed notes 3.4) gives
:math:`\mathrm{se}(\hat\mu_0) = |d\mu/d\eta|\,\mathrm{se}(\hat\eta_0)`, and the
interval :math:`g^{-1}(x_0^\top\hat\beta) \pm q_{1-\alpha/2}\,\mathrm{se}(\hat\mu_0)`
with :math:`q` the normal quantile (dispersion known) or Student's t with
:math:`n-p` degrees of freedom (estimated). On the link scale the interval is
:math:`\hat\eta_0 \pm q\,\mathrm{se}(\hat\eta_0)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from pyglmm.data import to_pandas
from pyglmm.errors import DataError, PyglmmError, RankDeficiencyWarning
from pyglmm.formula.expressions import evaluate
from pyglmm.glm.warn import warn

if TYPE_CHECKING:  # pragma: no cover
    from pyglmm.glm.model import GeneralizedLinearModel


def new_design(
    model: GeneralizedLinearModel, newdata: Any
) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """Model matrix and offset of ``newdata`` with the fit's encoding."""
    nd = to_pandas(newdata)
    X = model.frame.fixed.transform(nd)
    if X.shape[0] != len(nd):
        raise DataError("new data have missing values in the model's variables")
    offset = np.zeros(len(nd))
    for expr in model.frame.formula.offsets:
        offset = offset + np.asarray(evaluate(expr, nd, "offset"), dtype=float)
    if model.offset_expression is not None:
        offset = offset + np.asarray(evaluate(model.offset_expression, nd, "offset"), dtype=float)
    elif model._offset_arg is not None and np.any(model._offset_arg != 0):
        raise PyglmmError(
            "the model was fitted with an offset given as an array; give it as a column name "
            "or expression (offset='log(n)') to predict on new data"
        )
    return X, offset, nd.index


def predict_glm(
    model: GeneralizedLinearModel,
    newdata: Any = None,
    type: str = "link",
    se: bool = False,
    interval: bool = False,
    level: float = 0.95,
    dispersion: float | None = None,
):
    """Predictions (``type="link"`` or ``"response"``), optionally with SEs and intervals.

    Returns a pandas Series of predictions, or a DataFrame with columns ``fit``,
    ``se_fit`` (and ``lower``, ``upper`` when ``interval=True``).
    """
    if type not in ("link", "response"):
        raise PyglmmError(f"type must be 'link' or 'response', not {type!r}")
    keep = ~model.aliased
    beta = model.coef.to_numpy()[keep]
    if newdata is None:
        X = model.model_matrix
        eta = model.linear_predictor
        index = model.row_labels
    else:
        X, offset, index = new_design(model, newdata)
        eta = X[:, keep] @ beta + offset
        if not np.all(keep):
            warn(
                "prediction from a rank-deficient fit may be misleading",
                RankDeficiencyWarning,
            )
    fam = model.family
    fit = eta if type == "link" else fam.linkinv(eta)
    if not se and not interval:
        return pd.Series(fit, index=index, name="fit")
    phi = model.dispersion if dispersion is None else float(dispersion)
    Xk = X[:, keep]
    V = model.cov_unscaled.to_numpy()[np.ix_(keep, keep)] * phi
    se_eta = np.sqrt(np.einsum("ij,jk,ik->i", Xk, V, Xk))
    se_fit = se_eta if type == "link" else se_eta * np.abs(fam.mu_eta(eta))
    out = pd.DataFrame({"fit": fit, "se_fit": se_fit}, index=index)
    if interval:
        a = (1 - level) / 2
        if model.dispersion_estimated and dispersion is None:
            q = stats.t.ppf(1 - a, model.df_resid)
        else:
            q = stats.norm.ppf(1 - a)
        out["lower"] = fit - q * se_fit
        out["upper"] = fit + q * se_fit
    return out
