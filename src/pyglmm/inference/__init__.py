"""Inference for mixed models: Satterthwaite and Kenward-Roger tests, likelihood-ratio
tests, profile-likelihood and Wald intervals, and the parametric bootstrap."""

from pyglmm.inference.kenward_roger import kenward_roger, vcov_kr
from pyglmm.inference.lmm_tests import coef_table, lmm_anova
from pyglmm.inference.satterthwaite import satterthwaite

__all__ = ["coef_table", "kenward_roger", "lmm_anova", "satterthwaite", "vcov_kr"]
