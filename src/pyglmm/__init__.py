"""pyglmm: GLMs, linear mixed models and GLMMs with lme4's formula language and numbers."""

from pyglmm import datasets
from pyglmm.anova import anova
from pyglmm.glm import glm
from pyglmm.linear import lm, random_anova

__version__ = "0.1.0"

__all__ = ["datasets", "lm", "random_anova", "__version__"]
