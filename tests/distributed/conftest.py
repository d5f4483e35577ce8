"""A Dask LocalCluster with two worker processes, shared by the distributed tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")


def _cluster(processes: bool):
    return distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=processes,
        dashboard_address=":0",
        silence_logs=40,
    )


@pytest.fixture(scope="session")
def client():
    """``Client`` on a LocalCluster of 2 worker processes.

    Processes, not threads: ``warnings.catch_warnings`` (used by pytest.warns and by the
    workers' checking pass) is process-global state, so worker threads in the test's own
    process can make a test miss a warning now and then.
    """
    cluster = _cluster(processes=True)
    c = distributed.Client(cluster, set_as_default=True)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


@pytest.fixture(scope="session")
def process_client(client):
    """``Client`` on a LocalCluster of 2 worker *processes*; use ``with
    process_client.as_current():`` (rows and results really cross process boundaries)."""
    cluster = _cluster(processes=True)
    c = distributed.Client(cluster, set_as_default=False)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def _piece(i, pieces):
    return pieces[i]


def make_partitioned(df: pd.DataFrame, bounds: list[int]):
    """A Dask DataFrame whose partitions are the row ranges between ``bounds``
    (a repeated bound gives an empty partition)."""
    import dask.dataframe as dd

    pieces = [df.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return dd.from_map(
        _piece, range(len(pieces)), pieces=pieces, meta=df.iloc[:0], enforce_metadata=False
    )


@pytest.fixture
def partitioned():
    """``partitioned(df, bounds)``: explicit partitions, possibly empty."""
    return make_partitioned


@pytest.fixture
def uneven_frame() -> pd.DataFrame:
    """Rows sorted by the factor ``g`` so that partitions see different levels; a string
    column (R-sorted levels), a categorical with an unused category, a count, a weight."""
    rng = np.random.default_rng(1)
    n = 400
    g = np.sort(rng.choice(["zeta", "Alpha", "beta", "b", "Gamma", "delta"], n))
    df = pd.DataFrame(
        {
            "g": g,
            "f": pd.Categorical(
                rng.choice(["lo", "mid", "hi"], n), categories=["lo", "mid", "hi", "unused"]
            ),
            "x": rng.normal(size=n),
            "k": rng.integers(1, 5, n),
            "w": rng.uniform(0.5, 2.0, n),
        }
    )
    eta = 0.3 + 0.4 * df["x"] + 0.5 * (df["g"] == "beta") - 0.3 * (df["f"] == "hi")
    df["y"] = eta + rng.normal(size=n)
    df["count"] = rng.poisson(np.exp(eta))
    df["succ"] = rng.binomial(df["k"] + 3, 1 / (1 + np.exp(-eta)))
    df["fail"] = df["k"] + 3 - df["succ"]
    df["pos"] = rng.gamma(2.0, np.exp(eta) / 2.0)
    return df
