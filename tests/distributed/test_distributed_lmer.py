"""pg.lmer on a Dask DataFrame: the same blocks of [Z X y]'W[Z X y], the same fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")

import pyglmm as pg  # noqa: E402
from pyglmm.distributed.mixed_model import DistributedLinearMixedModel  # noqa: E402
from pyglmm.errors import PyglmmError  # noqa: E402
from pyglmm.mixed.lmer import LinearMixedModel  # noqa: E402

RTOL = 1e-8


def assert_same_lmm(m0: LinearMixedModel, m1: LinearMixedModel) -> None:
    """Blocks and objective to 1e-8 relative; the optimum to the optimizer's tolerance.

    The distributed blocks equal the in-memory ones up to summation order (~1e-15), so
    the two objectives are the same function to ~1e-13. BOBYQA stops when its trust
    region is small, and on a flat optimum two paths that differ by rounding stop at
    points that differ by ~1e-7 in θ while their objectives agree to ~1e-12; so θ, β̂
    and σ̂ are compared at 1e-5, and the objective *at the same θ* at 1e-10.
    """
    assert isinstance(m1, DistributedLinearMixedModel) and isinstance(m1, LinearMixedModel)
    b0, b1 = m0.blocks, m1.blocks
    np.testing.assert_allclose(b1.A00, b0.A00, rtol=1e-12)
    np.testing.assert_allclose(b1.Arr, b0.Arr, rtol=1e-11, atol=1e-9 * np.abs(b0.Arr).max())
    np.testing.assert_allclose(b1.R.toarray(), b0.R.toarray(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b1.Ry, b0.Ry, rtol=1e-12)
    assert [t.levels for t in m1.terms] == [t.levels for t in m0.terms]
    assert m1.theta_names == m0.theta_names
    assert m1.nobs == m0.nobs and list(m1.fixef.index) == list(m0.fixef.index)
    np.testing.assert_allclose(m1.objective_at(m0.theta), m0.objective, rtol=1e-10)
    np.testing.assert_allclose(m1.objective, m0.objective, rtol=RTOL)
    assert m1.objective <= m0.objective + 1e-8 * abs(m0.objective)
    np.testing.assert_allclose(m1.theta, m0.theta, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m1.fixef, m0.fixef, rtol=1e-5)
    np.testing.assert_allclose(m1.se, m0.se, rtol=1e-5)
    np.testing.assert_allclose(m1.sigma, m0.sigma, rtol=1e-5)


@pytest.mark.parametrize(
    ("dataset", "formula", "reml"),
    [
        ("sleepstudy", "Reaction ~ Days + (Days | Subject)", True),
        ("Machines", "score ~ Machine + (1 | Worker/Machine)", False),
        ("Dyestuff", "Yield ~ 1 + (1 | Batch)", True),
        ("sleepstudy", "Reaction ~ Days + (Days || Subject)", False),
    ],
)
def test_lmer_equals_in_memory(client, dataset, formula, reml):
    df = pg.datasets.load(dataset)
    m0 = pg.lmer(formula, df, reml=reml)
    m1 = pg.lmer(formula, dd.from_pandas(df, npartitions=4), reml=reml)
    assert_same_lmm(m0, m1)
    fitted = m1.fitted.compute().sort_index()
    np.testing.assert_allclose(fitted.to_numpy(), m0.fitted.sort_index().to_numpy(), rtol=1e-6)
    pd.testing.assert_frame_equal(
        m1.varcorr[["group", "var1", "var2"]], m0.varcorr[["group", "var1", "var2"]]
    )
    s0, s1 = str(m0.summary()), str(m1.summary())
    assert s1.split("Random effects:")[0] == s0.split("Random effects:")[0]


def test_uneven_levels_empty_partition_weights(client, partitioned):
    """Groups that live in one partition only, an empty partition, weights, a string
    grouping factor and a crossed numeric-coded factor."""
    rng = np.random.default_rng(3)
    n = 600
    g = np.sort(rng.choice([f"s{i:02d}" for i in range(30)], n))
    h = rng.integers(1, 7, n)
    x = rng.normal(size=n)
    gi = np.searchsorted(np.unique(g), g)
    u, v = rng.normal(size=30)[gi], 0.7 * rng.normal(size=30)[gi]
    y = 1 + (0.5 + v) * x + u + 1.5 * rng.normal(size=6)[h - 1] + rng.normal(size=n)
    df = pd.DataFrame({"g": g, "h": h, "x": x, "y": y, "w": rng.uniform(0.5, 2, n)})
    formula = "y ~ x + (1 + x | g) + (1 | h)"
    m0 = pg.lmer(formula, df, weights="w")
    m1 = pg.lmer(formula, partitioned(df, [0, 100, 100, 350, 600]), weights="w")
    assert_same_lmm(m0, m1)
    new = df.iloc[[0, 599]]
    np.testing.assert_allclose(m1.predict(new), m0.predict(new), rtol=1e-5)


def test_client_memory_limit_is_a_clear_error(client):
    df = pg.datasets.load("sleepstudy")
    with pytest.raises(PyglmmError, match="GB on the client"):
        pg.distributed.lmer(
            "Reaction ~ Days + (1 | Subject) + (1 | Days)",
            dd.from_pandas(df, npartitions=2),
            max_client_memory=100,
        )


def test_glmer_says_dask_is_not_supported_yet(client):
    from pyglmm.distributed import DistributedNotSupported

    d = dd.from_pandas(pg.datasets.load("cbpp"), npartitions=2)
    with pytest.raises(DistributedNotSupported, match="glmer"):
        pg.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", d)
