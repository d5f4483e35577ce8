"""Plots of fitted models (matplotlib Figures, drawn without pyplot).

* :mod:`pyglmm.plots.regression`: residual and influence plots of GLMs and linear models
  (R's ``plot.lm`` panels, the notes' QQ / histogram / residuals-vs-mean plots, Cook's
  distances), and :func:`residual_figure` for any fitted values and residuals.
* :mod:`pyglmm.plots.mixed`: plots of mixed models (caterpillar, QQ of random effects,
  profiles).
"""

from pyglmm.plots.regression import cooks_plot, diagnostic_panels, residual_figure, residual_panels

__all__ = ["cooks_plot", "diagnostic_panels", "residual_figure", "residual_panels"]
