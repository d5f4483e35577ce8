"""Residuals and influence measures against R (fixtures from tools/reference/diagnostics.R).

Each reference model is fitted twice: by the small protocol fit of
``diagnostics_protocol_fit`` (IRLS exactly as R's glm.fit), which checks the diagnostics
alone, and by ``pg.glm`` / ``pg.lm``, which checks them on the real result classes.
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from diagnostics_protocol_fit import MODEL_NAMES, model_spec, protocol_fit

import pyglmm as pg

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "diagnostics"
RTOL = 1e-6  # the fits agree with R's to ~1e-9; diagnostics are smooth functions of them
ATOL = 1e-9


@cache
def reference(name):
    return json.loads((FIXTURES / f"{name}.json").read_text())


@cache
def _fit(name, kind):
    if kind == "protocol":
        return protocol_fit(name)
    formula, data, family, kwargs = model_spec(name)
    kwargs = dict(kwargs)
    kwargs.pop("epsilon", None)  # options of the protocol fit only
    kwargs.pop("dispersion", None)
    family = kwargs.pop("pg_family", family)
    if kwargs.pop("is_lm", False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pg.errors.RankDeficiencyWarning)  # the aliased model
            return pg.lm(formula, data, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pg.errors.DataWarning)  # non-integer ceb counts
        return pg.glm(formula, data, family=family, **kwargs)


@pytest.fixture(params=["protocol", "pg"])
def fit(request):
    return lambda name: _fit(name, request.param)


def close(actual, expected, rtol=RTOL, atol=ATOL, ref=None):
    """Compare to R's values; R leaves out cases with zero weight from influence measures."""
    expected = np.array([np.nan if v is None else v for v in expected], dtype=float)
    actual = np.asarray(actual, dtype=float)
    if ref is not None and len(expected) != len(actual):
        assert len(expected) == len(ref["active_rows"])
        positions = [ref["row_labels"].index(r) for r in ref["active_rows"]]
        inactive = np.setdiff1d(np.arange(len(actual)), positions)
        assert np.all(np.isnan(actual[inactive]) | (actual[inactive] == 0))
        actual = actual[positions]
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_fit_matches_r(name, fit):
    ref, m = reference(name), fit(name)
    close(m.coef.to_numpy(), list(ref["coef"].values()), rtol=1e-7)
    close([m.dispersion], [ref["dispersion"]], rtol=1e-7)
    assert [str(x) for x in m.row_labels] == ref["row_labels"] or len(m.row_labels) == len(
        ref["row_labels"]
    )


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize(
    "rtype",
    [
        "response",
        "working",
        "pearson",
        "pearson_scaled",
        "deviance",
        "standardized",
        "standardized_pearson",
        "studentized",
    ],
)
def test_residuals(name, rtype, fit):
    res = fit(name).residuals(rtype)
    assert list(res.index) == list(fit(name).row_labels)
    close(res, reference(name)["residuals"][rtype], ref=reference(name))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_default_residual_type_is_rs(name, fit):
    m = fit(name)
    expected = "response" if m.is_lm else "deviance"
    close(m.residuals(), reference(name)["residuals"][expected])


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_partial_residuals(name, fit):
    ref = reference(name)["partial"]
    part = fit(name).residuals("partial")
    assert list(part.columns) == list(ref)  # one column per term, as R
    for term, values in ref.items():
        close(part[term], values, ref=reference(name))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_hat_and_cooks(name, fit):
    ref, m = reference(name), fit(name)
    close(m.hat_values(), ref["hat"], ref=ref)
    close(m.cooks_distance(), ref["cooks"], ref=ref)
    close(m.dffits(), ref["dffits"], ref=ref)
    close(m.covratio(), ref["covratio"], ref=ref)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_dfbeta_dfbetas(name, fit):
    ref, m = reference(name), fit(name)
    dfb, dfbs = m.dfbeta(), m.dfbetas()
    assert list(dfb.columns) == list(ref["dfbeta"])
    for col in ref["dfbeta"]:
        close(dfb[col], ref["dfbeta"][col], ref=ref)
        close(dfbs[col], ref["dfbetas"][col], ref=ref)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_influence_measures(name, fit):
    ref, m = reference(name), fit(name)
    table = m.influence()
    r_cols = list(ref["infmat"])
    assert list(table.columns[: len(r_cols)][-4:]) == ["dffit", "cov.r", "cook.d", "hat"]
    assert table.columns[-1] == "inf"
    for ours, theirs in zip(table.columns[:-1], r_cols, strict=True):
        close(table[ours], ref["infmat"][theirs], ref=ref)
    flags = m.influence_flags()
    r_flags = np.column_stack([ref["is_inf"][c] for c in r_cols])
    positions = [ref["row_labels"].index(r) for r in ref["active_rows"]]
    np.testing.assert_array_equal(flags.to_numpy()[positions], r_flags)
    np.testing.assert_array_equal(table["inf"].to_numpy()[positions], r_flags.any(axis=1))


@pytest.mark.parametrize("name", ["ceb_poisson_rounded", "cbpp_binomial", "machines_lm"])
def test_cooks_refit(name, fit):
    # one refit per case: every 5th case (and the largest by R) keeps the suite fast
    ref, m = reference(name), fit(name)
    expected = np.array(ref["cooks_refit"])
    positions = sorted(set(range(0, m.nobs, 5)) | {int(np.argmax(expected))})
    got = m.cooks_distance(form="refit", rows=m.row_labels[positions])
    assert list(got.index) == list(m.row_labels[positions])
    close(got, expected[positions], rtol=1e-6)


def test_cooks_refit_subset_of_rows(fit):
    m = fit("sleepstudy_gamma")
    ref = reference("sleepstudy_gamma")["cooks_refit"]
    got = m.cooks_distance(form="refit", rows=[m.row_labels[0], m.row_labels[9]])
    assert list(got.index) == [m.row_labels[0], m.row_labels[9]]
    close(got, [ref[0], ref[9]])


def test_cooks_forms_agree_for_a_linear_model(fit):
    m = fit("sleepstudy_lm")
    np.testing.assert_allclose(
        m.cooks_distance(form="refit", rows=m.row_labels[:5]),
        m.cooks_distance()[:5],
        rtol=1e-10,
    )


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("rtype", ["deviance", "pearson"])
def test_shapiro(name, rtype, fit):
    w, p = fit(name).shapiro(rtype)
    close([w, p], reference(name)["shapiro"][rtype], rtol=1e-6)


def test_bad_residual_type_is_a_clear_error(fit):
    from pyglmm.errors import PyglmmError

    with pytest.raises(PyglmmError, match="unknown residual type 'martingale'"):
        fit("sleepstudy_lm").residuals("martingale")
    with pytest.raises(PyglmmError, match="Cook's distance form"):
        fit("sleepstudy_lm").cooks_distance(form="exact")


def test_model_without_coefficients():
    from pyglmm.errors import PyglmmError

    m = pg.lm("Reaction ~ 0", pg.datasets.load("sleepstudy"))
    assert (m.hat_values() == 0).all()
    # R: rstandard = e / sqrt(RSS / n) when there is nothing to fit
    e = m.residuals("response").to_numpy()
    np.testing.assert_allclose(m.residuals("standardized"), e / np.sqrt(np.mean(e**2)))
    assert m.dfbetas().shape == (180, 0)
    with pytest.raises(PyglmmError, match="no coefficients"):
        m.influence()
