"""pyglmm: GLMs, linear mixed models and GLMMs with lme4's formula language and numbers."""

from pyglmm import datasets
from pyglmm.anova import anova
from pyglmm.glm import glm, glm_control
from pyglmm.inference import (
    bootstrap,
    kenward_roger,
    lmm_anova,
    satterthwaite,
    satterthwaite_table,
)
from pyglmm.linear import lm, random_anova
from pyglmm.mixed.glmer import glmer
from pyglmm.mixed.glmer_nb import glmer_nb
from pyglmm.mixed.lmer import lmer

__version__ = "0.1.0"

__all__ = [
    "anova",
    "bootstrap",
    "datasets",
    "glm",
    "glm_control",
    "glmer",
    "glmer_nb",
    "kenward_roger",
    "lm",
    "lmer",
    "lmm_anova",
    "random_anova",
    "satterthwaite",
    "satterthwaite_table",
    "__version__",
]
