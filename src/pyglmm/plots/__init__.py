"""Plots of fitted models (matplotlib Figures, drawn without pyplot).

* :mod:`pyglmm.plots.regression`: residual and influence plots of GLMs and linear models.
"""

from pyglmm.plots.regression import cooks_plot, diagnostic_panels, residual_panels

__all__ = ["cooks_plot", "diagnostic_panels", "residual_panels"]
