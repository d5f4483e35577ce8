"""ANOVA tables of pg.lm: types I (R's anova.lm), II and III (car::Anova), partial F tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from linear_reference import as_float, fit_quietly, load_reference, same_text

import pyglmm as pg
from pyglmm.errors import PyglmmError
from pyglmm.linear import AnovaTable, ModelComparisonTable
from pyglmm.linear.sums_of_squares import relatives

COLUMNS = ["df", "sum_sq", "mean_sq", "F", "p_value"]
SUM = {"Machine": "contr.sum", "Worker": "contr.sum"}


def check_table(table: AnovaTable, ref: dict, *, text: bool = True) -> None:
    """Numbers (and R's printed text) of one ANOVA table."""
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == COLUMNS
    assert list(table.index) == ref["terms"]
    np.testing.assert_allclose(table["df"], as_float(ref["df"]))
    np.testing.assert_allclose(table["sum_sq"], as_float(ref["sum_sq"]), rtol=1e-9)
    np.testing.assert_allclose(table["mean_sq"], as_float(ref["mean_sq"]), rtol=1e-9)
    np.testing.assert_allclose(table["F"], as_float(ref["F"]), rtol=1e-8)
    np.testing.assert_allclose(table["p_value"], as_float(ref["p_value"]), rtol=1e-6, atol=1e-300)
    if text:
        assert not same_text(table, ref["text"])


class TestSeedSection412:
    """The three ANOVA tables and the partial F test printed in section 4.1.2."""

    def test_full_model_table(self, machines):
        ref = load_reference("machines")
        table = pg.lm("score ~ Machine * Worker", machines).anova()
        check_table(table, ref["anova_full"])
        # as printed in the notes
        np.testing.assert_allclose(table["sum_sq"], [1755.26, 1241.89, 426.53, 33.29], atol=0.006)
        np.testing.assert_allclose(table["mean_sq"], [877.63, 248.38, 42.65, 0.92], atol=0.006)
        np.testing.assert_allclose(table["F"].iloc[:3], [949.17, 268.63, 46.13], atol=0.006)
        assert (table["p_value"].iloc[:3] < 2.2e-16).all()
        assert list(table["df"]) == [2, 5, 10, 36]

    def test_additive_model_table(self, machines):
        ref = load_reference("machines")
        table = pg.lm("score ~ Machine + Worker", machines).anova()
        check_table(table, ref["anova_additive"])
        np.testing.assert_allclose(table["sum_sq"], [1755.26, 1241.89, 459.82], atol=0.006)
        np.testing.assert_allclose(table["mean_sq"], [877.63, 248.38, 10.00], atol=0.006)
        np.testing.assert_allclose(table["F"].iloc[:2], [87.798, 24.848], atol=0.0006)
        assert table["p_value"].iloc[0] < 2.2e-16
        assert table["p_value"].iloc[1] == pytest.approx(4.867e-12, rel=1e-3)

    def test_aggregated_model_table(self):
        ref = load_reference("machines")
        agg = pd.DataFrame(ref["aggregated_data"])
        table = pg.lm("score ~ Machine + Worker", agg).anova()
        # 413.965 is a rounding tie: R prints 413.96 here, the notes' R printed 413.97
        check_table(table, ref["anova_aggregated"], text=False)
        np.testing.assert_allclose(table["sum_sq"], [585.09, 413.97, 142.18], atol=0.006)
        np.testing.assert_allclose(table["mean_sq"], [292.544, 82.793, 14.218], atol=0.0006)
        np.testing.assert_allclose(table["F"].iloc[:2], [20.5761, 5.8232], atol=0.00006)
        np.testing.assert_allclose(table["p_value"].iloc[:2], [0.0002855, 0.0089495], rtol=2e-4)
        assert list(table["df"]) == [2, 5, 10]

    def test_partial_f_test_additive_vs_full(self, machines):
        ref = load_reference("machines")
        m1 = pg.lm("score ~ Machine + Worker", machines)
        m0 = pg.lm("score ~ Machine * Worker", machines)
        table = pg.anova(m1, m0)
        assert isinstance(table, ModelComparisonTable)
        assert list(table.columns) == ["df_resid", "rss", "df", "sum_sq", "F", "p_value"]
        r = ref["partial_f"]
        np.testing.assert_allclose(table["df_resid"], r["df_resid"])
        np.testing.assert_allclose(table["rss"], r["rss"], rtol=1e-9)
        np.testing.assert_allclose(table["df"], as_float(r["df"]))
        np.testing.assert_allclose(table["sum_sq"], as_float(r["sum_sq"]), rtol=1e-9)
        np.testing.assert_allclose(table["F"], as_float(r["F"]), rtol=1e-9)
        np.testing.assert_allclose(table["p_value"], as_float(r["p_value"]), rtol=1e-6)
        assert not same_text(table, r["text"])
        # the notes: Res.Df 46, 36; RSS 459.82, 33.29; Df 10; Sum of Sq 426.53; F 46.13
        np.testing.assert_allclose(table["rss"], [459.82, 33.29], atol=0.006)
        assert table["F"].iloc[1] == pytest.approx(46.13, abs=0.006)
        assert table["sum_sq"].iloc[1] == pytest.approx(426.53, abs=0.006)
        # the F of the partial test equals the interaction line of the full model's table
        assert table["F"].iloc[1] == pytest.approx(m0.anova()["F"]["Machine:Worker"], rel=1e-12)

    def test_three_model_comparison(self, machines):
        ref = load_reference("machines")
        models = [
            pg.lm(f, machines)
            for f in ("score ~ Machine", "score ~ Machine + Worker", "score ~ Machine * Worker")
        ]
        table = pg.anova(*models)
        r = ref["partial_f3"]
        np.testing.assert_allclose(table["F"], as_float(r["F"]), rtol=1e-9)
        np.testing.assert_allclose(table["p_value"], as_float(r["p_value"]), rtol=1e-6)
        assert not same_text(table, r["text"])


class TestTypesTwoAndThree:
    def test_balanced_machines(self, machines):
        ref = load_reference("machines")
        m = pg.lm("score ~ Machine * Worker", machines)
        # 1241.895 is a rounding tie in the printed table; the numbers agree to 1e-9
        check_table(m.anova(type=2), ref["anova2_full"], text=False)
        check_table(m.anova("III"), ref["anova3_full"])
        ms = pg.lm("score ~ Machine * Worker", machines, contrasts=SUM)
        check_table(ms.anova(3), ref["anova3_full_sum"])
        add = pg.lm("score ~ Machine + Worker", machines)
        check_table(add.anova("II"), ref["anova2_additive"])
        check_table(add.anova(3), ref["anova3_additive"])

    def test_unbalanced_types_differ_as_in_r(self, machines_unbalanced):
        ref = load_reference("machines_unbalanced")
        m = pg.lm("score ~ Machine * Worker", machines_unbalanced)
        check_table(m.anova(1), ref["anova1"])
        check_table(m.anova(2), ref["anova2"])
        check_table(m.anova(3), ref["anova3_treatment"])
        ms = pg.lm("score ~ Machine * Worker", machines_unbalanced, contrasts=SUM)
        check_table(ms.anova(3), ref["anova3_sum"])
        # type I and II differ for the first main effect; type II does not depend on contrasts
        assert m.anova(1)["sum_sq"]["Machine"] != pytest.approx(m.anova(2)["sum_sq"]["Machine"])
        np.testing.assert_allclose(ms.anova(2)["sum_sq"], m.anova(2)["sum_sq"], rtol=1e-9)

    def test_covariate_by_factor(self, sleep):
        ref = load_reference("sleepstudy")
        m = pg.lm("Reaction ~ Days * Subject", sleep)
        check_table(m.anova(), ref["interaction_anova1"])
        check_table(m.anova(2), ref["interaction_anova2"])
        ms = pg.lm("Reaction ~ Days * Subject", sleep, contrasts={"Subject": "contr.sum"})
        check_table(ms.anova(3), ref["interaction_anova3_sum"])

    def test_weighted_tables(self, ceb):
        ref = load_reference("weighted")
        m = pg.lm("mean ~ dur + res + educ", ceb, weights="n")
        check_table(m.anova(), ref["anova1"])
        check_table(m.anova(2), ref["anova2"])
        mi = pg.lm("mean ~ dur + res * educ", ceb, weights="n")
        check_table(mi.anova(), ref["interaction_anova1"])
        check_table(mi.anova(2), ref["interaction_anova2"])
        contrasts = {"res": "contr.sum", "educ": "contr.sum", "dur": "contr.sum"}
        ms = pg.lm("mean ~ dur + res * educ", ceb, weights="n", contrasts=contrasts)
        check_table(ms.anova(3), ref["interaction_anova3_sum"])

    def test_zero_weights_sequential_table(self, ceb):
        ref = load_reference("weighted")
        data = ceb.assign(w=ceb["n"].astype(float))
        rows = np.array(ref["zero_weight_rows"]) - 1
        data.iloc[rows, data.columns.get_loc("w")] = 0.0
        check_table(pg.lm("mean ~ dur + res + educ", data, weights="w").anova(), ref["zero_anova1"])


class TestRankDeficientTables:
    def test_sequential_and_type2_with_aliased_coefficient(self, machines_empty_cell):
        ref = load_reference("rank_deficient")
        m = fit_quietly("score ~ Machine * Worker", machines_empty_cell)
        check_table(m.anova(), ref["machines_anova1"])
        check_table(m.anova(2), ref["machines_anova2"])
        assert m.anova()["df"]["Machine:Worker"] == 9

    def test_collinear_term_drops_out_of_sequential_table(self, sleep):
        ref = load_reference("rank_deficient")
        m = fit_quietly("Reaction ~ Days + Days2", sleep.assign(Days2=2 * sleep["Days"]))
        check_table(m.anova(), ref["collinear_anova1"])

    def test_type3_refuses_aliased_coefficients(self, machines_empty_cell):
        m = fit_quietly("score ~ Machine * Worker", machines_empty_cell)
        with pytest.raises(PyglmmError, match="aliased coefficients"):
            m.anova(3)


class TestTableObjects:
    def test_table_is_a_dataframe_with_r_text(self, machines):
        table = pg.lm("score ~ Machine * Worker", machines).anova()
        assert table.index.name == "term"
        assert table.loc["Residuals", "df"] == 36
        assert np.isnan(table.loc["Residuals", "F"]) and np.isnan(table.loc["Residuals", "p_value"])
        assert str(table).startswith("Analysis of Variance Table\n\nResponse: score")
        frame = table.to_frame()
        assert type(frame) is pd.DataFrame
        assert "<table" in table._repr_html_()
        # a slice with other columns prints as a plain DataFrame
        assert "Analysis of Variance" not in str(table[["df", "F"]])

    def test_pg_anova_dispatch_for_one_model(self, machines):
        m = pg.lm("score ~ Machine * Worker", machines)
        pd.testing.assert_frame_equal(pg.anova(m).to_frame(), m.anova().to_frame())
        pd.testing.assert_frame_equal(pg.anova(m, type=3).to_frame(), m.anova(3).to_frame())

    def test_unknown_type(self, machines):
        with pytest.raises(PyglmmError, match="unknown ANOVA type"):
            pg.lm("score ~ Machine", machines).anova(type=4)

    def test_comparison_needs_same_observations(self, machines):
        m1 = pg.lm("score ~ Machine", machines)
        m2 = pg.lm("score ~ Machine + Worker", machines.iloc[:30])
        with pytest.raises(PyglmmError, match="same number of observations"):
            pg.anova(m1, m2)

    def test_chisq_comparison(self, machines):
        m1 = pg.lm("score ~ Machine + Worker", machines)
        m0 = pg.lm("score ~ Machine * Worker", machines)
        table = pg.anova(m1, m0, test="Chisq")
        stat = table["sum_sq"].iloc[1] / m0.dispersion
        assert table["p_value"].iloc[1] == pytest.approx(
            __import__("scipy").stats.chi2.sf(stat, 10), rel=1e-12
        )
        with pytest.raises(PyglmmError, match="test must be"):
            pg.anova(m1, m0, test="Cp")


def test_relatives_follow_marginality():
    terms = ["A", "B", "x", "A:B", "A:x", "I(x^2)"]
    assert relatives("A", terms) == ["A:B", "A:x"]
    assert relatives("x", terms) == ["A:x"]
    assert relatives("A:B", terms) == []
    assert relatives("I(x^2)", terms) == []
