"""lmerTest's ``summary(m, ddf=)``: lme4's summary with t-tests using Satterthwaite's or
Kenward-Roger's degrees of freedom (``Estimate, Std. Error, df, t value, Pr(>|t|)``)."""

from __future__ import annotations

from pyglmm.inference.format import print_coefmat
from pyglmm.inference.lmm_tests import _ddf_name, coef_table
from pyglmm.mixed.summary_lmm import LmerSummary


def _strwrap(text: str, width: int, exdent: int = 0) -> list[str]:
    """R's ``strwrap``: greedy lines shorter than ``width``, continuation lines indented."""
    lines: list[str] = []
    cur = ""
    for word in text.split():
        pad = " " * exdent if lines else ""
        cand = f"{cur} {word}" if cur else pad + word
        if cur and len(cand) >= width:
            lines.append(cur)
            cur = " " * exdent + word
        else:
            cur = cand
    if cur:
        lines.append(cur)
    return lines


def method_title(mtit: str, cls: str, width: int = 80) -> list[str]:
    """lme4's ``.prt.methTit``: the title, wrapped with ``cat(..., fill = TRUE)`` when long."""
    if len(mtit) + 5 + len(cls) <= width:
        return [f"{mtit} ['{cls}']"]
    items = _strwrap(mtit, width - 2, exdent=2) + [" [", cls, "]"]
    out: list[str] = []
    cur = ""
    for it in items:
        if cur and len(cur) + len(it) > width:
            out.append(cur)
            cur = ""
        cur += it
    out.append(cur)
    return out


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
        lines[0:1] = method_title(head, "lmerModLmerTest")
        return lines

    def _fixed(self) -> list[str]:
        text = print_coefmat(self.coefficients, 4, cs_ind=[0, 1, 2], tst_ind=[3])
        return ["Fixed effects:"] + text.split("\n")


def lmm_summary(model, ddf: str = "Satterthwaite", correlation: bool | None = None):
    """lmerTest's ``summary(m, ddf=)`` (print it)."""
    return LmerTestSummary(model, ddf=ddf, correlation=correlation)
