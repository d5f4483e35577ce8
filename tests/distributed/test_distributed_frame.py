"""The encoding learned over all partitions equals the in-memory encoding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")

import pyglmm as pg  # noqa: E402
from pyglmm.distributed import is_dask_collection  # noqa: E402
from pyglmm.distributed.frame import learn_frame  # noqa: E402
from pyglmm.errors import DataError, FormulaError  # noqa: E402
from pyglmm.formula.frame import model_frame  # noqa: E402


def test_is_dask_collection():
    df = pd.DataFrame({"a": [1.0, 2.0]})
    assert is_dask_collection(dd.from_pandas(df, npartitions=1))
    assert not is_dask_collection(df)
    assert not is_dask_collection(None)


def test_levels_and_columns_match_model_frame(partitioned, uneven_frame):
    df = uneven_frame
    d = partitioned(df, [0, 50, 50, 120, 300, 400])  # partition 1 is empty
    formula = "y ~ x + g + f + factor(k) + g:x"
    frame = learn_frame(formula, d)
    mf = model_frame(formula, df)
    assert frame.column_names == mf.column_names
    assert frame.nobs == mf.nobs
    assert frame.partition_rows == [50, 0, 70, 180, 100]
    X = np.vstack([frame.encoder.encode(p).X for p in (df.iloc[:50], df.iloc[50:400])])
    np.testing.assert_array_equal(X, mf.X)
    # the lazily encoded model matrix is the in-memory one
    np.testing.assert_array_equal(frame.X.compute(), mf.X)


def test_missing_values_dropped_as_na_omit(partitioned, uneven_frame):
    df = uneven_frame
    df.loc[[3, 77, 250], "x"] = np.nan
    d = partitioned(df, [0, 100, 200, 400])
    with pytest.warns(pg.errors.MissingDataWarning, match="3 row"):
        frame = learn_frame("y ~ x + g", d)
    assert frame.nobs == 397 and frame.n_dropped == 3


def test_stateful_transform_is_refused(partitioned, uneven_frame):
    df = uneven_frame
    d = partitioned(df, [0, 200, 400])
    with pytest.raises(FormulaError, match="stateful transform"):
        learn_frame("y ~ center(x)", d)


def test_weights_must_be_columns(partitioned, uneven_frame):
    df = uneven_frame
    d = partitioned(df, [0, 200, 400])
    with pytest.raises(DataError, match="column name"):
        learn_frame("y ~ x", d, weights=np.ones(400))


def test_categoricals_with_unknown_categories(partitioned, uneven_frame):
    """Dask's meta of a categorical made per partition has placeholder categories: the
    levels come from the partitions (here each has its own: R's order of the values)."""
    df = uneven_frame
    mf = model_frame("y ~ x + g", df)
    d = partitioned(df, [0, 100, 100, 400]).map_partitions(
        lambda p: p.assign(g=p["g"].astype("category"))
    )
    frame = learn_frame("y ~ x + g", d)
    assert frame.column_names == mf.column_names
    known = partitioned(df, [0, 100, 400]).astype({"g": "category"}).categorize(columns=["g"])
    # a categorical keeps its own category order, as in memory
    expected = model_frame("y ~ x + g", known.compute()).column_names
    assert learn_frame("y ~ x + g", known).column_names == expected
