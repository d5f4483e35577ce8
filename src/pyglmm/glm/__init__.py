"""Generalized linear models: IRLS fitting, R's summaries, inference and analysis of deviance.

Public entry points (also exported as ``pg.glm`` and ``pg.glm_control``):

* :func:`glm` fits a model and returns a :class:`GeneralizedLinearModel`;
* :class:`GLMControl` / :func:`glm_control` set R's ``glm.control`` (``epsilon``, ``maxit``).

Modules, one concept each: ``irls`` (R's ``glm.fit``), ``weighted_ls`` (X'WX, Cholesky,
R's ``dqrdc2`` rank rule), ``design`` (dense and factor-block model matrices), ``model``
(the result class), ``summary_glm`` and ``rformat`` (R's printed output), ``dispersion``,
``inference`` (Wald intervals, tests, ellipsoids), ``profile`` (profile-likelihood
intervals), ``predict``, ``negative_binomial`` (``glm.nb``, ``theta.ml``) and
``analysis_of_deviance`` (``anova.glm``, ``anova.glmlist``, ``anova.negbin``).
"""

from pyglmm.glm.control import GLMControl, glm_control
from pyglmm.glm.model import GeneralizedLinearModel, glm

__all__ = ["GLMControl", "GeneralizedLinearModel", "glm", "glm_control"]
