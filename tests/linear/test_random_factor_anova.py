"""ANOVA with random factors (section 4.1): aggregated-model F tests, EMS, variance components."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from linear_reference import load_reference
from scipy import stats

import pyglmm as pg
from pyglmm.errors import DataError, PyglmmError
from pyglmm.linear.random_factor_anova import aggregated_f_statistic


class TestMachines:
    """Section 4.1.2: worker (random) by machine (fixed), K = 3 replicates."""

    @pytest.fixture(scope="class")
    @classmethod
    def result(cls, machines):
        return pg.random_anova(machines, "score", "Machine", "Worker")

    def test_design(self, result):
        assert result.design == "two-factor mixed"
        assert (result.a, result.b, result.replicates) == (3, 6, 3)
        assert result.multiplier == 3

    def test_aggregated_f_test_as_r(self, result):
        r = load_reference("machines")["random"]
        assert result.f_statistic == pytest.approx(r["F"], rel=1e-10)
        assert (result.df_num, result.df_den) == (r["df1"], r["df2"]) == (10, 36)
        assert result.p_value == pytest.approx(r["p_value"], rel=1e-6)
        assert result.mse_agg == pytest.approx(r["mse_agg"], rel=1e-10)
        assert result.mse_full == pytest.approx(r["mse_full"], rel=1e-10)

    def test_numbers_printed_in_the_notes(self, result):
        # "(142.18*3/10)/(33.29/36)" -> 46.12628, from the rounded sums of squares
        assert aggregated_f_statistic(142.18 / 10, 33.29 / 36, 3) == pytest.approx(
            46.12628, abs=5e-6
        )
        # the exact statistic rounds to the 46.13 of both anova tables
        assert round(result.f_statistic, 2) == 46.13
        # "1-pf(..., 10, 36)" prints 0: the upper tail is below double precision near 1
        assert 1 - stats.f.cdf(result.f_statistic, 10, 36) == 0.0
        # and equals the partial F test of the additive vs the full model exactly
        full = result.full_model
        additive = pg.lm("score ~ Machine + Worker", full.frame.data)
        table = pg.anova(additive, full)
        assert result.f_statistic == pytest.approx(table["F"].iloc[1], rel=1e-12)
        assert result.p_value == pytest.approx(table["p_value"].iloc[1], rel=1e-10)

    def test_tables_of_the_full_and_aggregated_models(self, result):
        ref = load_reference("machines")
        np.testing.assert_allclose(
            result.anova_full["sum_sq"], ref["anova_full"]["sum_sq"], rtol=1e-10
        )
        np.testing.assert_allclose(
            result.anova_aggregated["sum_sq"], ref["anova_aggregated"]["sum_sq"], rtol=1e-10
        )
        assert len(result.aggregated_data) == 18
        np.testing.assert_allclose(
            result.aggregated_data.sort_values(["Worker", "Machine"])["score"],
            pd.DataFrame(ref["aggregated_data"])["score"],
            rtol=1e-12,
        )

    def test_mixed_model_f_tests(self, result):
        r = load_reference("machines")["random"]
        t = result.tests
        assert t.loc["Machine", "F"] == pytest.approx(r["F_machine"], rel=1e-10)
        assert t.loc["Machine", "p_value"] == pytest.approx(r["p_machine"], rel=1e-7)
        assert t.loc["Worker", "F"] == pytest.approx(r["F_worker"], rel=1e-10)
        assert t.loc["Worker", "p_value"] == pytest.approx(r["p_worker"], rel=1e-7)
        assert t.loc["Machine:Worker", "F"] == pytest.approx(r["F"], rel=1e-10)
        # these are the F values of the aggregated model's own table (20.5761, 5.8232)
        np.testing.assert_allclose(
            t["F"].iloc[:2], result.anova_aggregated["F"].iloc[:2], rtol=1e-12
        )
        assert list(t.loc["Machine", ["df_num", "df_den"]]) == [2, 10]

    def test_variance_components_as_r(self, result):
        r = load_reference("machines")["random"]
        vc = result.variance_components
        assert list(vc.index) == ["Worker", "Worker:Machine", "Residual"]
        assert vc.loc["Residual", "estimate"] == pytest.approx(r["sigma2"], rel=1e-10)
        assert vc.loc["Worker:Machine", "estimate"] == pytest.approx(r["sigma2_ab"], rel=1e-10)
        assert vc.loc["Worker", "estimate"] == pytest.approx(r["sigma2_b"], rel=1e-10)
        # the notes: an unbiased estimate of sigma2_ab is MSE_agg - MSE_full / K
        assert vc.loc["Worker:Machine", "estimate"] == pytest.approx(
            result.mse_agg - result.mse_full / 3, rel=1e-12
        )
        np.testing.assert_allclose(vc["std_dev"], np.sqrt(vc["estimate"]), rtol=1e-12)
        assert result.notes == []

    def test_anova_estimates_equal_lme4_reml(self, result):
        """Balanced data, positive estimates: REML = ANOVA estimates (lme4's numbers)."""
        ref = load_reference("machines")["lmer_reml"]
        reml = dict(zip(ref["group"], ref["vcov"], strict=True))
        vc = result.variance_components["estimate"]
        for group in ("Worker", "Worker:Machine", "Residual"):
            # lme4 stops its optimizer at ~1e-8 relative accuracy
            assert vc[group] == pytest.approx(reml[group], rel=1e-6)

    def test_expected_mean_squares(self, result):
        ems = result.expected_mean_squares
        assert list(ems.index) == ["Machine", "Worker", "Machine:Worker", "Residuals"]
        assert ems.loc["Worker", "expected_mean_square"] == "sigma2 + 3*sigma2_ab + 9*sigma2_b"
        assert ems.loc["Machine:Worker", "expected_mean_square"] == "sigma2 + 3*sigma2_ab"
        assert ems.loc["Machine", "expected_mean_square"] == (
            "sigma2 + 3*sigma2_ab + 18*theta_Machine"
        )
        np.testing.assert_allclose(ems["df"], [2, 5, 10, 36])
        # E(MS) evaluated at the estimates reproduces the random-term mean squares
        vc = result.variance_components["estimate"]
        s2, s2ab, s2b = vc["Residual"], vc["Worker:Machine"], vc["Worker"]
        assert s2 + 3 * s2ab + 9 * s2b == pytest.approx(ems.loc["Worker", "mean_sq"], rel=1e-12)
        assert s2 + 3 * s2ab == pytest.approx(ems.loc["Machine:Worker", "mean_sq"], rel=1e-12)

    def test_restricted_model(self, machines):
        r = load_reference("machines")["random"]
        res = pg.random_anova(machines, "score", "Machine", "Worker", ems="restricted")
        assert res.variance_components.loc["Worker", "estimate"] == pytest.approx(
            r["sigma2_b_restricted"], rel=1e-10
        )
        assert res.tests.loc["Worker", "denominator"] == "MSE"
        assert res.tests.loc["Worker", "df_den"] == 36
        assert res.expected_mean_squares.loc["Worker", "expected_mean_square"] == (
            "sigma2 + 9*sigma2_b"
        )

    def test_report(self, result):
        text = str(result)
        assert "Two-factor mixed model (unrestricted)" in text
        assert "F = 3 * MSE_agg / MSE_full" in text and "on 10 and 36 DF" in text
        assert "Worker:Machine  sigma2_ab" in text
        assert "Machine:Worker 10  426.53   42.65   46.13 < 2.2e-16 ***" in text
        assert result._repr_html_().startswith("<pre>")


class TestBonds:
    """Section 4.1.1: metals (fixed) in ingots (random blocks), one observation per cell."""

    @pytest.fixture(scope="class")
    @classmethod
    def result(cls, bond):
        return pg.random_anova(bond, "pressure", "Metal", "Ingot")

    def test_block_design_test_as_r(self, result):
        r = load_reference("bond")["random"]
        assert result.design == "rcbd"
        assert (result.a, result.b, result.replicates) == (3, 7, 1)
        assert result.multiplier == r["multiplier"] == 3
        assert result.f_statistic == pytest.approx(r["F"], rel=1e-10)
        assert (result.df_num, result.df_den) == (r["df1"], r["df2"]) == (6, 12)
        assert result.p_value == pytest.approx(r["p_value"], rel=1e-7)
        # the aggregated test is the Ingot line of the RCBD table
        assert result.f_statistic == pytest.approx(result.anova_full["F"]["Ingot"], rel=1e-12)

    def test_full_and_aggregated_models_as_r(self, result):
        ref = load_reference("bond")
        np.testing.assert_allclose(result.anova_full["sum_sq"], ref["anova"]["sum_sq"], rtol=1e-10)
        np.testing.assert_allclose(result.anova_full["F"], ref["anova"]["F"][:2] + [np.nan])
        assert result.aggregated_model.sigma == pytest.approx(ref["aggregated"]["sigma"], rel=1e-10)
        assert result.tests.loc["Metal", "F"] == pytest.approx(ref["random"]["F_metal"], rel=1e-10)
        assert result.tests.loc["Metal", "p_value"] == pytest.approx(
            ref["random"]["p_metal"], rel=1e-7
        )

    def test_variance_components_equal_lme4_reml(self, result):
        ref = load_reference("bond")
        vc = result.variance_components["estimate"]
        assert vc["Ingot"] == pytest.approx(ref["random"]["sigma2_b"], rel=1e-10)
        assert vc["Residual"] == pytest.approx(ref["random"]["sigma2"], rel=1e-10)
        reml = dict(zip(ref["lmer_reml"]["group"], ref["lmer_reml"]["vcov"], strict=True))
        assert vc["Ingot"] == pytest.approx(reml["Ingot"], rel=1e-6)
        assert vc["Residual"] == pytest.approx(reml["Residual"], rel=1e-6)
        ems = result.expected_mean_squares
        assert ems.loc["Ingot", "expected_mean_square"] == "sigma2 + 3*sigma2_b"

    def test_report(self, result):
        text = str(result)
        assert "Randomized complete block design" in text
        assert "Aggregated model (block means): pressure ~ 1" in text


class TestNegativeEstimates:
    @pytest.fixture(scope="class")
    @classmethod
    def data(cls):
        ref = load_reference("negative_component")
        return pd.DataFrame(ref["data"])

    def test_negative_estimate_reported_as_computed(self, data):
        ref = load_reference("negative_component")
        res = pg.random_anova(data, "y", "trt", "blk")
        vc = res.variance_components
        assert vc.loc["blk", "estimate"] == pytest.approx(ref["sigma2_b"], rel=1e-10)
        assert vc.loc["blk", "estimate"] < 0
        assert np.isnan(vc.loc["blk", "std_dev"])
        assert vc.loc["blk:trt", "estimate"] == pytest.approx(ref["sigma2_ab"], rel=1e-10)
        assert vc.loc["Residual", "estimate"] == pytest.approx(ref["sigma2"], rel=1e-10)
        assert len(res.notes) == 1 and "negative" in res.notes[0] and "REML" in res.notes[0]
        assert "note: the ANOVA estimate of sigma2_b (blk) is negative" in str(res)
        # lme4's REML fit puts that component on the boundary
        reml = dict(zip(ref["lmer_reml"]["group"], ref["lmer_reml"]["vcov"], strict=True))
        assert reml["blk"] == 0

    def test_additive_block_model_with_replicates(self, data):
        ref = load_reference("negative_component")
        res = pg.random_anova(data, "y", "trt", "blk", interaction=False)
        assert res.design == "rcbd" and res.multiplier == 6
        vc = res.variance_components["estimate"]
        assert vc["blk"] == pytest.approx(ref["additive_sigma2_b"], rel=1e-10)
        assert vc["Residual"] == pytest.approx(ref["additive_sigma2"], rel=1e-10)


class TestRefusals:
    def test_unbalanced_points_to_lmer(self, machines_unbalanced):
        with pytest.raises(DataError, match=r"unbalanced.*pg\.lmer"):
            pg.random_anova(machines_unbalanced, "score", "Machine", "Worker")

    def test_empty_cell_is_unbalanced(self, machines_empty_cell):
        with pytest.raises(DataError, match="range from 0 to 3"):
            pg.random_anova(machines_empty_cell, "score", "Machine", "Worker")

    def test_missing_values(self, machines):
        data = machines.copy()
        data.loc[4, "score"] = np.nan
        with pytest.raises(DataError, match="pg.lmer"):
            pg.random_anova(data, "score", "Machine", "Worker")

    def test_replicates_must_match_the_data(self, machines):
        res = pg.random_anova(machines, "score", "Machine", "Worker", replicates=3)
        assert res.replicates == 3
        with pytest.raises(DataError, match="replicates=2"):
            pg.random_anova(machines, "score", "Machine", "Worker", replicates=2)

    def test_interaction_needs_replicates(self, bond):
        with pytest.raises(DataError, match="replicates"):
            pg.random_anova(bond, "pressure", "Metal", "Ingot", interaction=True)

    def test_unknown_column_and_options(self, machines):
        with pytest.raises(DataError, match="not in the data"):
            pg.random_anova(machines, "score", "Machine", "Operator")
        with pytest.raises(PyglmmError, match="ems"):
            pg.random_anova(machines, "score", "Machine", "Worker", ems="scheffe")
        with pytest.raises(PyglmmError, match="different columns"):
            pg.random_anova(machines, "score", "Machine", "Machine")


@pytest.mark.parametrize(
    ("dataset", "formula", "args"),
    [
        (
            "Machines",
            "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)",
            ("score", "Machine", "Worker"),
        ),
        ("Bond", "pressure ~ Metal + (1 | Ingot)", ("pressure", "Metal", "Ingot")),
    ],
)
def test_pg_lmer_reml_equals_anova_estimates(dataset, formula, args):
    """Theory: in balanced designs with positive ANOVA estimates, REML gives the same values."""
    if not hasattr(pg, "lmer"):
        pytest.skip("pg.lmer is not available yet")
    data = pg.datasets.load(dataset)
    fit = pg.lmer(formula, data, reml=True)
    res = pg.random_anova(data, *args)
    vc = fit.varcorr.set_index("group")["vcov"]
    for group, estimate in res.variance_components["estimate"].items():
        assert vc[group] == pytest.approx(estimate, rel=1e-5), group


def test_pg_lmer_puts_a_negative_anova_estimate_on_the_boundary():
    """When the ANOVA estimate of sigma2_b is negative, REML gives 0 (as lme4 does)."""
    if not hasattr(pg, "lmer"):
        pytest.skip("pg.lmer is not available yet")
    ref = load_reference("negative_component")
    data = pd.DataFrame(ref["data"])
    with pytest.warns(pg.errors.SingularFitWarning):
        fit = pg.lmer("y ~ trt + (1 | blk) + (1 | blk:trt)", data, reml=True)
    vc = fit.varcorr.set_index("group")["vcov"]
    lme4 = dict(zip(ref["lmer_reml"]["group"], ref["lmer_reml"]["vcov"], strict=True))
    assert pg.random_anova(data, "y", "trt", "blk").variance_components.loc["blk", "estimate"] < 0
    assert vc["blk"] == pytest.approx(0.0, abs=1e-8)
    # lme4's optimizer tolerance at the boundary: compare the others to 1e-4 relative
    assert vc["blk:trt"] == pytest.approx(lme4["blk:trt"], rel=1e-4)
    assert vc["Residual"] == pytest.approx(lme4["Residual"], rel=1e-4)
