"""Linear models, their ANOVA tables, and ANOVA with random factors (the notes' section 4.1)."""

from pyglmm.linear.anova_table import AnovaTable, ModelComparisonTable
from pyglmm.linear.model import LinearModel, LinearModelSummary, lm
from pyglmm.linear.random_factor_anova import RandomFactorAnova, random_anova

__all__ = [
    "AnovaTable",
    "LinearModel",
    "LinearModelSummary",
    "ModelComparisonTable",
    "RandomFactorAnova",
    "lm",
    "random_anova",
]
