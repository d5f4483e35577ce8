"""Printed lmerTest tables: the fixed-effects block of summary(m, ddf=) and
anova(m, type=3) text, character for character."""

from __future__ import annotations

import numpy as np
import pytest
from lmm_inference_data import MODELS, fitted, load_fixture

import pyglmm as pg
from pyglmm.inference.format import format_pval, r_format, r_zapsmall
from pyglmm.inference.lmm_summary import lmm_summary


def _fixed_block(text: str) -> str:
    lines = text.split("\n")
    i = lines.index("Fixed effects:")
    j = next(k for k in range(i, len(lines)) if lines[k].startswith("Signif") or not lines[k])
    return "\n".join(lines[i : j + 1])


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("ddf", ["Satterthwaite", "Kenward-Roger"])
def test_summary_fixed_effects_text(name, ddf):
    ref = load_fixture(name)["summary_text" if ddf == "Satterthwaite" else "summary_kr_text"]
    text = str(lmm_summary(fitted(name), ddf=ddf))
    assert text.split("\n")[:2] == ref.split("\n")[:2]
    assert _fixed_block(text) == _fixed_block(ref)


@pytest.mark.parametrize("name", list(MODELS))
def test_anova_text(name):
    assert str(pg.lmm_anova(fitted(name), type=3)) == load_fixture(name)["anova3_text"]


def test_r_format_helpers():
    # values checked in R 4.2: format(c(251.405, 1.5), digits = 4); format(1e-20, digits = 3)
    assert r_format([251.405, 1.5], 4) == ["251.4", "  1.5"]
    assert r_format([1e-20], 3) == ["1e-20"]
    assert r_format([np.nan, 2.0], 3) == ["NA", " 2"]
    assert format_pval([1e-20, 3.26e-06], 3) == ["< 2e-16", "3.26e-06"]
    # R 4.2's zapsmall(c(28593.34, 714.86), 5) rounds to one decimal
    np.testing.assert_allclose(r_zapsmall([28593.3415, 714.8623], 5), [28593.3, 714.9])


def test_summary_text_ml_fit():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = pg.lmer(
            "Reaction ~ Days + (Days | Subject)", pg.datasets.load("sleepstudy"), reml=False
        )
    ref = load_fixture("sleep_ml")["summary_text"]
    text = str(lmm_summary(m))
    # lme4 wraps the long title as cat(fill = TRUE) does
    assert text.split("\n")[:2] == ref.split("\n")[:2]
    assert _fixed_block(text) == _fixed_block(ref)


@pytest.mark.parametrize("name", ["sleep_corr", "sleep_grp", "machines"])
def test_lme4_anova(name):
    tab = pg.lmm_anova(fitted(name), ddf="lme4")
    ref = load_fixture(name)
    r = ref["anova_lme4"]
    for c in ("npar", "Sum Sq", "Mean Sq", "F value"):
        np.testing.assert_allclose(tab[c], np.atleast_1d(np.asarray(r[c], float)), rtol=1e-4)
    assert str(tab) == ref["anova_lme4_text"]
