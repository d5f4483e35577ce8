"""Every number printed in sections 3.3 and 3.4 of the seed notes (CEB Poisson regression).

The notes fit ``y ~ dur + res + educ`` with ``offset(log(n))`` twice: "by hand" by IRLS on
the unrounded grouped counts ``y`` (R's glm refuses non-integer counts; we fit them with a
DataWarning), and with R's ``glm`` on ``round(y)``. Expected values are the digits the notes
print; a test compares at the precision printed (half a unit in the last printed digit).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import pyglmm as pg
from pyglmm.errors import DataWarning

NAMES = [
    "(Intercept)",
    "dur10-14",
    "dur15-19",
    "dur20-24",
    "dur25-29",
    "dur5-9",
    "resSuva",
    "resurban",
    "educnone",
    "educsec+",
    "educupper",
]


def printed(value: float, digits_after_point: int) -> float:
    """Half a unit in the last printed decimal place."""
    return 0.5 * 10.0**-digits_after_point


@pytest.fixture(scope="module")
def ceb():
    return pg.datasets.load("ceb")


@pytest.fixture(scope="module")
def by_hand(ceb):
    """The notes' by-hand IRLS: unrounded y, offset log(n)."""
    with pytest.warns(DataWarning, match="non-integer counts"):
        return pg.glm("y ~ dur + res + educ + offset(log(n))", ceb, family="poisson")


@pytest.fixture(scope="module")
def rounded(ceb):
    """``glm(round(y) ~ dur + res + educ, family = poisson(link = 'log'), offset = log(n))``."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # integer counts: no warning at all
        return pg.glm("round(y) ~ dur + res + educ", ceb, family="poisson", offset=np.log(ceb["n"]))


def test_by_hand_irls_coefficients_on_unrounded_y(by_hand):
    expected = [
        0.05695417,
        1.37053208,
        1.61423104,
        1.78548879,
        1.97679469,
        0.99765038,
        -0.15121728,
        -0.03895822,
        -0.02308034,
        -0.33266474,
        -0.12474575,
    ]
    assert list(by_hand.coef.index) == NAMES
    # the notes stop their loop when max |change| < 1e-4, so their last digits carry that
    # error: 0.99765038 is 0.997650375... converged; allow one unit in the 8th decimal
    np.testing.assert_allclose(by_hand.coef.to_numpy(), expected, rtol=0, atol=1.5e-8)


def test_glm_summary_table_on_rounded_y(rounded):
    est = [0.05754, 1.36940, 1.61376, 1.78491, 1.97641, 0.99693, -0.15166, -0.03924, -0.02297,
           -0.33312, -0.12425]  # fmt: skip
    se = [0.04803, 0.05107, 0.05119, 0.05121, 0.05003, 0.05274, 0.02833, 0.02463, 0.02266,
          0.05390, 0.03000]  # fmt: skip
    z = [1.198, 26.815, 31.522, 34.852, 39.501, 18.902, -5.353, -1.594, -1.014, -6.180, -4.142]
    assert list(rounded.coef.index) == NAMES
    np.testing.assert_allclose(rounded.coef, est, atol=printed(0, 5))
    np.testing.assert_allclose(rounded.se, se, atol=printed(0, 5))
    np.testing.assert_allclose(rounded.statistic, z, atol=printed(0, 3))
    p = rounded.p_values
    assert p["(Intercept)"] == pytest.approx(0.231, abs=5e-4)
    assert p["resSuva"] == pytest.approx(8.63e-08, abs=5e-11)
    assert p["resurban"] == pytest.approx(0.111, abs=5e-4)
    assert p["educnone"] == pytest.approx(0.311, abs=5e-4)
    assert p["educsec+"] == pytest.approx(6.41e-10, abs=5e-13)
    assert p["educupper"] == pytest.approx(3.44e-05, abs=5e-08)
    assert all(p[n] < 2e-16 for n in NAMES[1:6])
    assert rounded.null_deviance == pytest.approx(3731.852, abs=5e-4)
    assert rounded.deviance == pytest.approx(70.665, abs=5e-4)
    assert rounded.df_null == 69 and rounded.df_resid == 59
    assert rounded.aic == pytest.approx(522.14, abs=5e-3)
    assert rounded.iterations == 4
    assert rounded.dispersion == 1


def test_summary_prints_as_the_notes(rounded):
    text = str(rounded.summary())
    for line in [
        "Deviance Residuals:",
        "    Min       1Q   Median       3Q      Max",
        "-2.2960  -0.6641   0.0725   0.6336   3.6782",
        "            Estimate Std. Error z value Pr(>|z|)",
        "(Intercept)  0.05754    0.04803   1.198    0.231",
        "dur10-14     1.36940    0.05107  26.815  < 2e-16 ***",
        "resSuva     -0.15166    0.02833  -5.353 8.63e-08 ***",
        "educupper   -0.12425    0.03000  -4.142 3.44e-05 ***",
        "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1",
        "(Dispersion parameter for poisson family taken to be 1)",
        "    Null deviance: 3731.852  on 69  degrees of freedom",
        "Residual deviance:   70.665  on 59  degrees of freedom",
        "AIC: 522.14",
        "Number of Fisher Scoring iterations: 4",
    ]:
        assert line in [x.rstrip() for x in text.splitlines()], line


def seed_by_hand_loop(ceb):
    """The notes' R loop of section 3.3.1, transcribed: returns its final mu (rates) and W.

    The notes compute the Pearson and Fletcher dispersions and the Wald intervals from the
    ``mu`` and ``W`` of the start of the loop's last iteration (their loop stops on
    max |beta change| < 1e-4), so those printed numbers differ from the converged fit's in
    the 5th-6th digit. To check them to every printed digit we rerun that loop and pass its
    ``mu`` through our dispersion formulas; the converged values are checked separately.
    """
    X = pg.glm("round(y) ~ dur + res + educ", ceb, family="poisson").model_matrix
    Y = ceb["y"].to_numpy()
    n = ceb["n"].to_numpy(dtype=float)
    mu = Y / n
    W = mu
    z = np.log(mu)
    beta = np.linalg.solve(X.T @ (W[:, None] * X), X.T @ (W * z))
    for _ in range(100):
        mu = np.exp(X @ beta)
        W = n * mu
        z = (Y / W - 1) + X @ beta
        old = beta
        beta = np.linalg.solve(X.T @ (W[:, None] * X), X.T @ (W * z))
        if np.max(np.abs(beta - old)) < 1e-4:
            break
    return X, Y, n, mu, W


def test_pearson_and_fletcher_dispersion(ceb, by_hand):
    from pyglmm.glm.dispersion import fletcher_dispersion, pearson_dispersion

    fam = pg.families.get_family("poisson")
    X, Y, n, mu, W = seed_by_hand_loop(ceb)
    expected_counts = n * mu
    p = X.shape[1]
    assert pearson_dispersion(Y, expected_counts, fam, df=len(Y) - p) == pytest.approx(
        1.211949, abs=5e-7
    )
    assert fletcher_dispersion(Y, expected_counts, fam, df=len(Y) - p) == pytest.approx(
        1.194283, abs=5e-7
    )
    # the converged fit's estimates agree to the notes' stopping accuracy
    assert by_hand.dispersion_pearson == pytest.approx(1.211949, rel=2e-5)
    assert by_hand.dispersion_fletcher == pytest.approx(1.194283, rel=2e-5)
    assert by_hand.dispersion_pearson == pytest.approx(
        pearson_dispersion(Y, by_hand.fitted.to_numpy(), fam, df=len(Y) - p), rel=1e-12
    )


def test_wald_intervals_by_hand(ceb, by_hand):
    ci = by_hand.confint(method="wald")
    expected = {
        "(Intercept)": (-0.03721264, 0.15112097),
        "dur10-14": (1.270425, 1.470639),
        "dur15-19": (1.513870, 1.714592),
        "dur20-24": (1.685091, 1.885886),
    }
    for name, (lo, hi) in expected.items():
        # converged fit vs the notes' last-but-one iterate: agree to ~1e-6
        assert ci.loc[name].to_numpy() == pytest.approx([lo, hi], abs=2e-6)
    # p-value of beta_1 = 0 "indistinguishable from 0"
    assert by_hand.p_values["dur10-14"] == 0.0 or by_hand.p_values["dur10-14"] < 1e-150


def test_profile_interval_for_dur10_14(rounded):
    ci = rounded.confint("dur10-14")
    assert list(ci.columns) == ["2.5 %", "97.5 %"]
    assert ci.loc["dur10-14"].to_numpy() == pytest.approx([1.270141, 1.470370], abs=5e-7)


def test_deviance_difference_full_vs_intercept_only(ceb, by_hand, rounded):
    # unrounded y: the null model's deviance minus the full model's
    assert by_hand.null_deviance - by_hand.deviance == pytest.approx(3660.872, abs=5e-4)
    assert rounded.null_deviance - rounded.deviance == pytest.approx(3661.186, abs=5e-4)
    y = ceb["y"].to_numpy()
    assert y.sum() / ceb["n"].sum() == pytest.approx(3.960497, abs=5e-7)
    assert np.round(y).sum() / ceb["n"].sum() == pytest.approx(3.960403, abs=5e-7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        m0 = pg.glm("y ~ 1 + offset(log(n))", ceb, family="poisson")
    tab = pg.anova(m0, by_hand, test="Chisq")
    assert tab["Deviance"].iloc[1] == pytest.approx(3660.872, abs=5e-4)
    assert tab["Df"].iloc[1] == 10
    assert tab["Pr(>Chi)"].iloc[1] == 0.0 or tab["Pr(>Chi)"].iloc[1] < 1e-300
