"""Inference for mixed models: Satterthwaite and Kenward-Roger tests, likelihood-ratio
tests, profile-likelihood and Wald intervals, and the parametric bootstrap."""

from pyglmm.inference.bootstrap import BootResult, bootstrap
from pyglmm.inference.confint import confint, wald_confint
from pyglmm.inference.kenward_roger import kenward_roger, vcov_kr
from pyglmm.inference.lmm_tests import coef_table, lmm_anova
from pyglmm.inference.lrt import lrt_table
from pyglmm.inference.profile import LmmProfile, profile
from pyglmm.inference.satterthwaite import satterthwaite


def satterthwaite_table(model):
    """lmerTest's ``coef(summary(m))``: the coefficient table with Satterthwaite df."""
    return coef_table(model, ddf="Satterthwaite")


__all__ = [
    "BootResult",
    "LmmProfile",
    "bootstrap",
    "coef_table",
    "confint",
    "kenward_roger",
    "lmm_anova",
    "lrt_table",
    "profile",
    "satterthwaite",
    "satterthwaite_table",
    "vcov_kr",
    "wald_confint",
]
