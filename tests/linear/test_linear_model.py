"""pg.lm against R's lm / summary.lm / predict.lm / confint (tools/reference/linear.R)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from linear_reference import as_float, fit_quietly, load_reference, same_text

import pyglmm as pg
from pyglmm.errors import DataError, DataWarning, PyglmmError, RankDeficiencyWarning
from pyglmm.linear import LinearModel

RTOL = 1e-8  # least squares is exact: R and pyglmm agree to rounding
SCALARS = {"rank", "df_resid", "nobs", "sigma", "rss", "r_squared", "adj_r_squared"}
SCALARS |= {"f_p_value", "loglik", "aic", "bic", "summary_text"}


def check_summary(m: LinearModel, ref: dict) -> None:
    """Every number of summary.lm, logLik, vcov, confint, fitted and residuals."""
    ref = {k: (v if isinstance(v, list | dict) or v is None else [v]) for k, v in ref.items()}
    ref = {k: (v[0] if k in SCALARS and v is not None else v) for k, v in ref.items()}
    assert list(m.coef.index) == ref["coef_names"]
    np.testing.assert_array_equal(m.aliased, np.array(ref["aliased"], dtype=bool))
    np.testing.assert_allclose(m.coef.to_numpy(), as_float(ref["estimate"]), rtol=RTOL, atol=1e-10)
    np.testing.assert_allclose(m.se.to_numpy(), as_float(ref["se"]), rtol=RTOL)
    np.testing.assert_allclose(m.t_values.to_numpy(), as_float(ref["t"]), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(m.p_values.to_numpy(), as_float(ref["p"]), rtol=1e-6, atol=1e-300)
    assert m.rank == ref["rank"]
    assert m.df_resid == ref["df_resid"]
    assert m.nobs == ref["nobs"]
    assert m.sigma == pytest.approx(ref["sigma"], rel=RTOL)
    assert m.deviance == pytest.approx(ref["rss"], rel=RTOL)
    assert m.r_squared == pytest.approx(ref["r_squared"], rel=RTOL)
    assert m.adj_r_squared == pytest.approx(ref["adj_r_squared"], rel=RTOL)
    if ref["fstatistic"] is None:
        assert m.fstatistic is None
    else:
        np.testing.assert_allclose(m.fstatistic, ref["fstatistic"], rtol=RTOL)
        assert m.f_p_value == pytest.approx(ref["f_p_value"], rel=1e-6, abs=1e-300)
    assert m.loglik == pytest.approx(ref["loglik"], rel=1e-10)
    assert m.aic == pytest.approx(ref["aic"], rel=1e-10)
    assert m.bic == pytest.approx(ref["bic"], rel=1e-10)
    np.testing.assert_allclose(m.fitted.to_numpy(), ref["fitted"], rtol=1e-10)
    np.testing.assert_allclose(m.residual_values.to_numpy(), ref["residuals"], atol=1e-9)
    ok = ~m.aliased
    vcov = np.array(ref["vcov"], dtype=float).reshape(ok.sum(), ok.sum())
    np.testing.assert_allclose(m.vcov.to_numpy()[np.ix_(ok, ok)], vcov, rtol=1e-7, atol=1e-12)
    ci = np.array([as_float(r) for r in ref["confint"]]).reshape(-1, 2)
    np.testing.assert_allclose(m.confint().to_numpy(), ci, rtol=1e-8)


class TestMachines:
    """Section 4.1.2's three linear models."""

    def test_full_interaction_model(self, machines):
        ref = load_reference("machines")
        m = pg.lm("score ~ Machine * Worker", machines)
        check_summary(m, ref["full"])
        assert not same_text(m.summary(), ref["full"]["summary_text"])

    def test_additive_model(self, machines):
        ref = load_reference("machines")
        m = pg.lm("score ~ Machine + Worker", machines)
        check_summary(m, ref["additive"])
        assert not same_text(m.summary(), ref["additive"]["summary_text"])

    def test_aggregated_cell_mean_model(self):
        ref = load_reference("machines")
        agg = pd.DataFrame(ref["aggregated_data"])
        m = pg.lm("score ~ Machine + Worker", agg)
        check_summary(m, ref["aggregated"])
        assert not same_text(m.summary(), ref["aggregated"]["summary_text"])

    def test_sum_to_zero_contrasts(self, machines):
        ref = load_reference("machines")
        m = pg.lm(
            "score ~ Machine * Worker",
            machines,
            contrasts={"Machine": "contr.sum", "Worker": "contr.sum"},
        )
        check_summary(m, ref["full_sum"])
        assert not same_text(m.summary(), ref["full_sum"]["summary_text"])


def test_bond_randomized_block_model(bond):
    ref = load_reference("bond")
    m = pg.lm("pressure ~ Metal + Ingot", bond)
    check_summary(m, ref["fit"])
    assert not same_text(m.summary(), ref["fit"]["summary_text"])


def test_intercept_only_model_has_no_f_statistic(bond):
    ref = load_reference("bond")
    means = bond.groupby("Ingot", observed=True)["pressure"].mean().reset_index()
    m = pg.lm("pressure ~ 1", means)
    check_summary(m, ref["aggregated"])
    assert "F-statistic" not in str(m.summary())


def test_unbalanced_interaction_model(machines_unbalanced):
    ref = load_reference("machines_unbalanced")
    m = pg.lm("score ~ Machine * Worker", machines_unbalanced)
    check_summary(m, ref["fit"])
    assert not same_text(m.summary(), ref["fit"]["summary_text"])


class TestRankDeficient:
    def test_empty_cell_gives_aliased_coefficient(self, machines_empty_cell):
        ref = load_reference("rank_deficient")
        with pytest.warns(RankDeficiencyWarning, match="MachineC:Worker6"):
            m = pg.lm("score ~ Machine * Worker", machines_empty_cell)
        check_summary(m, ref["machines"])
        assert np.isnan(m.coef["MachineC:Worker6"]) and np.isnan(m.se["MachineC:Worker6"])
        text = str(m.summary())
        assert "Coefficients: (1 not defined because of singularities)" in text
        assert not same_text(text, ref["machines"]["summary_text"])

    def test_collinear_covariate(self, sleep):
        ref = load_reference("rank_deficient")
        data = sleep.assign(Days2=2 * sleep["Days"])
        m = fit_quietly("Reaction ~ Days + Days2", data)
        check_summary(m, ref["collinear"])
        assert not same_text(m.summary(), ref["collinear"]["summary_text"])

    def test_prediction_uses_estimable_columns(self, sleep):
        data = sleep.assign(Days2=2 * sleep["Days"])
        m = fit_quietly("Reaction ~ Days + Days2", data)
        full = pg.lm("Reaction ~ Days", sleep)
        new = pd.DataFrame({"Days": [1.0, 4.0], "Days2": [2.0, 8.0]})
        with pytest.warns(RankDeficiencyWarning):
            pred = m.predict(new)
        np.testing.assert_allclose(pred.to_numpy(), full.predict(new).to_numpy(), rtol=1e-12)


class TestPredict:
    def test_confidence_and_prediction_intervals(self, sleep):
        ref = load_reference("sleepstudy")
        m = pg.lm("Reaction ~ Days", sleep)
        check_summary(m, ref["fit"])
        new = pd.DataFrame({"Days": ref["newdata_days"]})
        conf = m.predict(new, interval="confidence", se=True)
        assert list(conf.columns) == ["fit", "se_fit", "lwr", "upr"]
        np.testing.assert_allclose(conf["fit"], ref["predict_fit"], rtol=1e-10)
        np.testing.assert_allclose(conf["se_fit"], ref["predict_se"], rtol=1e-8)
        np.testing.assert_allclose(conf["lwr"], ref["confidence_lwr"], rtol=1e-10)
        np.testing.assert_allclose(conf["upr"], ref["confidence_upr"], rtol=1e-10)
        pred = m.predict(new, interval="prediction", level=0.9)
        np.testing.assert_allclose(pred["lwr"], ref["prediction90_lwr"], rtol=1e-10)
        np.testing.assert_allclose(pred["upr"], ref["prediction90_upr"], rtol=1e-10)

    def test_predict_without_newdata_is_fitted(self, machines):
        m = pg.lm("score ~ Machine + Worker", machines)
        pd.testing.assert_series_equal(
            m.predict(), m.fitted.rename("fit"), check_exact=False, rtol=1e-12
        )

    def test_weighted_confidence_intervals(self, ceb):
        ref = load_reference("weighted")
        m = pg.lm("mean ~ dur + res + educ", ceb, weights="n")
        rows = np.array(ref["newdata_rows"]) - 1
        new = ceb.iloc[rows][["dur", "res", "educ"]]
        conf = m.predict(new, interval="confidence", se=True)
        np.testing.assert_allclose(conf["fit"], ref["predict_fit"], rtol=1e-10)
        np.testing.assert_allclose(conf["se_fit"], ref["predict_se"], rtol=1e-8)
        np.testing.assert_allclose(conf["lwr"], ref["confidence_lwr"], rtol=1e-10)
        np.testing.assert_allclose(conf["upr"], ref["confidence_upr"], rtol=1e-10)
        with pytest.warns(DataWarning, match="constant prediction variance"):
            m.predict(new, interval="prediction")

    def test_new_factor_level_is_a_clear_error(self, machines):
        m = pg.lm("score ~ Machine + Worker", machines)
        with pytest.raises(DataError, match="new level"):
            m.predict(pd.DataFrame({"Machine": ["D"], "Worker": [1]}))

    def test_bad_interval(self, machines):
        m = pg.lm("score ~ Machine", machines)
        with pytest.raises(PyglmmError, match="interval"):
            m.predict(interval="tolerance")


class TestWeighted:
    def test_weighted_least_squares(self, ceb):
        ref = load_reference("weighted")
        m = pg.lm("mean ~ dur + res + educ", ceb, weights="n")
        check_summary(m, ref["fit"])
        assert "Weighted Residuals:" in str(m.summary())
        assert not same_text(m.summary(), ref["fit"]["summary_text"])

    def test_weighted_interaction(self, ceb):
        ref = load_reference("weighted")
        m = pg.lm("mean ~ dur + res * educ", ceb, weights="n")
        check_summary(m, ref["interaction"])
        assert not same_text(m.summary(), ref["interaction"]["summary_text"])

    def test_zero_weights_as_r(self, ceb):
        ref = load_reference("weighted")
        data = ceb.assign(w=ceb["n"].astype(float))
        rows = np.array(ref["zero_weight_rows"]) - 1
        data.iloc[rows, data.columns.get_loc("w")] = 0.0
        m = pg.lm("mean ~ dur + res + educ", data, weights="w")
        check_summary(m, ref["zero"])
        assert m.nobs == len(data) - len(rows)
        assert not same_text(m.summary(), ref["zero"]["summary_text"])
        # zero-weight cases keep a fitted value and a residual but no leverage
        hat = m.hat_values().to_numpy()
        assert np.all(hat[rows] == 0)
        keep = np.setdiff1d(np.arange(len(data)), rows)
        np.testing.assert_allclose(hat[keep], ref["zero_hat"], rtol=1e-8)
        cooks = m.cooks_distance().to_numpy()
        np.testing.assert_allclose(cooks[keep], ref["zero_cooks"], rtol=1e-7)

    def test_negative_weights_rejected(self, machines):
        w = np.ones(len(machines))
        w[3] = -1
        with pytest.raises(DataError, match="negative weights"):
            pg.lm("score ~ Machine", machines, weights=w)


class TestDiagnosticsProtocol:
    """The shared residual/influence implementation works on pg.lm results."""

    def test_influence_measures_match_r(self, sleep):
        ref = load_reference("sleepstudy")
        m = pg.lm("Reaction ~ Days", sleep)
        assert m.is_lm and m.family.name == "gaussian"
        np.testing.assert_allclose(m.hat_values(), ref["hat"], rtol=1e-8)
        np.testing.assert_allclose(m.cooks_distance(), ref["cooks"], rtol=1e-7)
        np.testing.assert_allclose(m.residuals("standardized"), ref["rstandard"], rtol=1e-8)
        np.testing.assert_allclose(m.residuals("studentized"), ref["rstudent"], rtol=1e-8)
        np.testing.assert_allclose(m.residuals(), ref["fit"]["residuals"], atol=1e-9)
        assert m.dispersion == pytest.approx(m.sigma**2)
        np.testing.assert_array_equal(m.working_weights, m.prior_weights)

    def test_refit_without_and_leave_one_out_cooks(self, sleep):
        m = pg.lm("Reaction ~ Days", sleep)
        keep = np.ones(len(sleep), dtype=bool)
        keep[[0, 5]] = False
        refit = m.refit_without(keep)
        direct = pg.lm("Reaction ~ Days", sleep.iloc[keep])
        np.testing.assert_allclose(refit.coef, direct.coef, rtol=1e-12)
        assert refit.nobs == len(sleep) - 2
        rows = list(sleep.index[:4])
        np.testing.assert_allclose(
            m.cooks_distance("refit", rows=rows), m.cooks_distance().iloc[:4], rtol=1e-8
        )

    def test_model_matrix_rank_drops_aliased_columns(self, machines_empty_cell):
        m = fit_quietly("score ~ Machine * Worker", machines_empty_cell)
        assert m.model_matrix_rank.shape == (len(machines_empty_cell), m.rank)
        assert m.rank == len(m.coef) - 1


class TestInterface:
    def test_tidy_and_confint(self, machines):
        m = pg.lm("score ~ Machine + Worker", machines)
        tidy = m.tidy(conf_int=True)
        assert list(tidy.columns) == [
            "term",
            "estimate",
            "std_error",
            "statistic",
            "p_value",
            "conf_low",
            "conf_high",
        ]
        np.testing.assert_allclose(tidy["estimate"], m.coef.to_numpy())
        ci = m.confint(level=0.9, parm=["MachineB"])
        assert list(ci.columns) == ["5 %", "95 %"] and list(ci.index) == ["MachineB"]
        with pytest.raises(PyglmmError, match="no coefficient"):
            m.confint(parm=["MachineZ"])

    def test_repr_html_and_repr(self, machines):
        m = pg.lm("score ~ Machine", machines)
        html = m._repr_html_()
        assert "<table>" in html and "MachineB" in html
        assert "MachineB" in repr(m)
        assert m.summary()._repr_html_().startswith("<pre>")

    def test_missing_values_dropped_with_note(self, machines):
        data = machines.copy()
        data.iloc[[0, 1], data.columns.get_loc("score")] = np.nan
        with pytest.warns(pg.errors.MissingDataWarning):
            m = pg.lm("score ~ Machine", data)
        assert m.nobs == len(data) - 2
        assert "(2 observations deleted due to missingness)" in str(m.summary())

    def test_random_effect_terms_point_to_lmer(self, sleep):
        with pytest.raises(PyglmmError, match="lmer"):
            pg.lm("Reaction ~ Days + (Days | Subject)", sleep)

    def test_missing_response(self, sleep):
        with pytest.raises(PyglmmError, match="no response"):
            pg.lm("~ Days", sleep)

    def test_polars_input(self, machines):
        pl = pytest.importorskip("polars")
        data = pl.from_pandas(machines.astype({"Worker": int, "Machine": str}))
        m = pg.lm("score ~ Machine", data)
        ref = pg.lm("score ~ Machine", machines)
        np.testing.assert_allclose(m.coef, ref.coef, rtol=1e-12)

    def test_offset(self, sleep):
        off = 0.5 * sleep["Days"].to_numpy()
        m = pg.lm("Reaction ~ Days", sleep, offset=off)
        plain = pg.lm("Reaction ~ Days", sleep)
        assert m.coef["Days"] == pytest.approx(plain.coef["Days"] - 0.5)
        np.testing.assert_allclose(m.fitted, plain.fitted, rtol=1e-12)
        with pytest.raises(DataError, match="offset"):
            m.predict(pd.DataFrame({"Days": [1.0]}))
        assert m.predict(pd.DataFrame({"Days": [1.0]}), offset=[0.5]).iloc[0] == pytest.approx(
            plain.predict(pd.DataFrame({"Days": [1.0]})).iloc[0]
        )

    def test_no_warning_for_full_rank(self, machines):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            pg.lm("score ~ Machine * Worker", machines)


def test_plot_panels_come_from_the_shared_implementation(machines):
    import matplotlib.pyplot as plt

    from pyglmm.diagnostics.mixin import DiagnosticsMixin

    m = pg.lm("score ~ Machine * Worker", machines)
    assert isinstance(m, DiagnosticsMixin)
    fig = m.plot()
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:3] == ["Residuals vs Fitted", "Normal Q-Q", "Scale-Location"]
    plt.close(fig)
    table = m.influence()
    assert list(table.columns[-5:]) == ["dffit", "cov.r", "cook.d", "hat", "inf"]
    np.testing.assert_allclose(table["hat"], 1 / 3)  # K = 3 replicates per cell


class TestFewResidualDegreesOfFreedom:
    def test_all_residuals_printed_when_df_resid_at_most_5(self, machines):
        ref = load_reference("small")
        data = machines  # the index holds R's row names (1-based)
        m = pg.lm("score ~ Machine", data.loc[ref["rows"]])
        check_summary(m, ref["fit"])
        ours = str(m.summary()).splitlines()
        theirs = ref["fit"]["summary_text"].splitlines()
        assert ours[5].split() == theirs[5].split() == [str(r) for r in ref["rows"]]
        np.testing.assert_allclose(
            [float(v) for v in ours[6].split()], [float(v) for v in theirs[6].split()], atol=1e-12
        )
        # R prints a residual of rounding noise (1.388e-17), which sets that block's width;
        # the rest is R's text
        assert not same_text("\n".join(ours[:5] + ours[7:]), "\n".join(theirs[:5] + theirs[7:]))

    def test_saturated_fit_prints_as_r(self, machines):
        ref = load_reference("small")
        data = machines
        m = pg.lm("score ~ Machine", data.loc[ref["saturated_rows"]])
        assert m.df_resid == 0 and np.isnan(m.sigma)
        np.testing.assert_allclose(m.coef, ref["saturated_coef"], rtol=1e-12)
        assert np.isnan(m.se).all() and np.isnan(m.adj_r_squared) and m.r_squared == 1
        assert not same_text(m.summary(), ref["saturated_text"])

    def test_model_without_coefficients(self, machines):
        ref = load_reference("small")
        m = pg.lm("score ~ 0", machines)
        assert m.rank == 0 and m.fstatistic is None
        assert not same_text(m.summary(), ref["empty_text"])
