"""Generalized linear models: IRLS fitting, R's summaries, inference and analysis of deviance."""

from pyglmm.glm.control import GLMControl, glm_control
from pyglmm.glm.model import GeneralizedLinearModel, glm

__all__ = ["GLMControl", "GeneralizedLinearModel", "glm", "glm_control"]
