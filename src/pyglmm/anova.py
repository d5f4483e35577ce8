"""``pg.anova``: analysis-of-deviance / variance tables for one fit or between nested fits.

Dispatch, so that every model type plugs in its own table:

* one model, ``pg.anova(m, **kwargs)`` calls ``m.anova(**kwargs)`` (for a GLM the
  sequential analysis of deviance of R's ``anova.glm``; for ``pg.lm`` the
  sequential ANOVA table);
* several models, ``pg.anova(m0, m1, ..., **kwargs)`` calls
  ``type(m0)._anova_compare([m0, m1, ...], **kwargs)`` (a classmethod or
  staticmethod of the first model's class: R's ``anova.glmlist`` for GLMs, the
  partial F table for linear models, likelihood-ratio tests for mixed models).

A model class that supports comparison therefore defines
``_anova_compare(models, **kwargs)`` and returns a table object (a pandas
DataFrame subclass or an object with a ``__str__`` printing R's table).
"""

from __future__ import annotations

from typing import Any

from pyglmm.errors import PyglmmError


def anova(*models: Any, **kwargs: Any):
    """Analysis of deviance (or variance) of one model, or a comparison of nested models.

    Parameters
    ----------
    *models
        One fitted model, or several fitted to the same data (smallest first, as R).
    **kwargs
        Passed on, e.g. ``test="Chisq" | "LRT" | "F"`` for GLMs.

    Returns
    -------
    The model type's table (for GLMs an :class:`pyglmm.glm.analysis_of_deviance.AnovaTable`).
    """
    if not models:
        raise PyglmmError("anova() needs at least one fitted model")
    if len(models) == 1:
        model = models[0]
        if not hasattr(model, "anova"):
            raise PyglmmError(f"anova() is not available for {type(model).__name__} objects")
        return model.anova(**kwargs)
    compare = getattr(type(models[0]), "_anova_compare", None)
    if compare is None:
        raise PyglmmError(
            f"comparing {type(models[0]).__name__} models with anova() is not supported"
        )
    return compare(list(models), **kwargs)
