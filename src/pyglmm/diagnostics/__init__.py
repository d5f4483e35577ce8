"""Model checking for fitted GLMs and linear models: residuals, influence, normality tests.

Result classes inherit :class:`~pyglmm.diagnostics.mixin.DiagnosticsMixin`.
"""

from pyglmm.diagnostics.influence import InfluenceCore, influence_core, influential_flags
from pyglmm.diagnostics.mixin import RESIDUAL_TYPES, DiagnosticsMixin, ShapiroWilk
from pyglmm.diagnostics.residuals import (
    deviance_residuals,
    pearson_residuals,
    response_residuals,
    working_residuals,
)

__all__ = [
    "RESIDUAL_TYPES",
    "DiagnosticsMixin",
    "InfluenceCore",
    "ShapiroWilk",
    "deviance_residuals",
    "influence_core",
    "influential_flags",
    "pearson_residuals",
    "response_residuals",
    "working_residuals",
]
