"""pg.lm on a Dask DataFrame equals the in-memory fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")

import pyglmm as pg  # noqa: E402
from pyglmm.distributed import DistributedNotSupported  # noqa: E402
from pyglmm.linear.model import LinearModel  # noqa: E402

RTOL = 1e-8
BOUNDS = [0, 60, 60, 130, 290, 400]


def assert_same_lm(m0: LinearModel, m1: LinearModel) -> None:
    assert isinstance(m1, LinearModel)
    assert list(m1.coef.index) == list(m0.coef.index)
    np.testing.assert_array_equal(m1.aliased, m0.aliased)
    for name in ("nobs", "rank", "df_resid"):
        assert getattr(m1, name) == getattr(m0, name), name
    scale = np.nanmax(np.abs(m0.coef.to_numpy()))
    for name in ("coef", "se", "t_values"):
        a, b = getattr(m0, name).to_numpy(), getattr(m1, name).to_numpy()
        np.testing.assert_allclose(b, a, rtol=RTOL, atol=1e-12 * scale, err_msg=name)
    for name in (
        "deviance",
        "null_deviance",
        "sigma",
        "r_squared",
        "adj_r_squared",
        "loglik",
        "aic",
        "bic",
    ):
        np.testing.assert_allclose(getattr(m1, name), getattr(m0, name), rtol=RTOL, err_msg=name)
    if m0.fstatistic is not None:
        np.testing.assert_allclose(m1.fstatistic, m0.fstatistic, rtol=RTOL)
    np.testing.assert_allclose(m1.vcov.to_numpy(), m0.vcov.to_numpy(), rtol=RTOL, atol=1e-15)


def test_machines_two_way_with_anova(client):
    mac = pg.datasets.load("Machines")
    m0 = pg.lm("score ~ Machine * Worker", mac)
    m1 = pg.lm("score ~ Machine * Worker", dd.from_pandas(mac, npartitions=4))
    assert_same_lm(m0, m1)
    a0, a1 = m0.anova(), m1.anova()
    np.testing.assert_allclose(a1.sum_sq.to_numpy(), a0.sum_sq.to_numpy(), rtol=RTOL)
    assert str(m1.summary()) == str(m0.summary())


def test_weighted_with_zero_weights_and_empty_partition(client, partitioned, uneven_frame):
    df = uneven_frame.copy()
    df.loc[df.index[::17], "w"] = 0.0
    m0 = pg.lm("y ~ x + g + f + x:f", df, weights="w")
    m1 = pg.lm("y ~ x + g + f + x:f", partitioned(df, BOUNDS), weights="w")
    assert_same_lm(m0, m1)
    r1 = m1.residuals().compute()
    np.testing.assert_allclose(r1.to_numpy(), m0.residuals().to_numpy(), rtol=1e-7, atol=1e-12)
    new = df.iloc[[5, 200]]
    pd.testing.assert_frame_equal(
        m1.predict(new, interval="confidence"),
        m0.predict(new, interval="confidence"),
        rtol=RTOL,
    )


def test_rank_deficient_and_no_intercept(client, partitioned, uneven_frame):
    df = uneven_frame.assign(x2=lambda d: 3 * d["x"])
    with pytest.warns(pg.errors.RankDeficiencyWarning):
        m0 = pg.lm("y ~ 0 + x + x2 + g", df)
    with pytest.warns(pg.errors.RankDeficiencyWarning):
        m1 = pg.lm("y ~ 0 + x + x2 + g", partitioned(df, BOUNDS))
    assert_same_lm(m0, m1)
    with pytest.raises(DistributedNotSupported):
        m1.anova(type=2)
    with pytest.raises(DistributedNotSupported):
        m1.cooks_distance()
