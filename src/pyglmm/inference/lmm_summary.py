"""lmerTest's ``summary(m, ddf=)``: lme4's summary with t-tests using Satterthwaite's or
Kenward-Roger's degrees of freedom (``Estimate, Std. Error, df, t value, Pr(>|t|)``)."""

from __future__ import annotations

from pyglmm.inference.format import print_coefmat
from pyglmm.inference.lmm_tests import _ddf_name, coef_table
from pyglmm.mixed.summary_lmm import LmerSummary


class LmerTestSummary(LmerSummary):
    """The printed summary of an LMM with lmerTest's coefficient table.

    Attributes
    ----------
    coefficients : pandas.DataFrame
        ``Estimate, Std. Error, df, t value, Pr(>|t|)`` (Kenward-Roger: adjusted SEs).
    ddf : str
    """

    def __init__(self, model, ddf: str = "Satterthwaite", correlation: bool | None = None):
        super().__init__(model, correlation=correlation)
        self.ddf = _ddf_name(ddf)
        self.coefficients = coef_table(model, ddf=self.ddf)

    def _title(self) -> list[str]:
        lines = super()._title()
        m = self.model
        meth = "REML" if m.reml else "maximum likelihood "
        head = f"Linear mixed model fit by {meth}. t-tests use {self.ddf}'s method"
        cls = "lmerModLmerTest"
        if len(head) + len(cls) > 65:
            lines[0:1] = [f"{head} [", f"{cls}]"]
        else:
            lines[0] = f"{head} ['{cls}']"
        return lines

    def _fixed(self) -> list[str]:
        text = print_coefmat(self.coefficients, 4, cs_ind=[0, 1, 2], tst_ind=[3])
        return ["Fixed effects:"] + text.split("\n")


def lmm_summary(model, ddf: str = "Satterthwaite", correlation: bool | None = None):
    """lmerTest's ``summary(m, ddf=)`` (print it)."""
    return LmerTestSummary(model, ddf=ddf, correlation=correlation)
