"""A partition that fails in the middle of a fit: a clear error, nothing half-written."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
cloudpickle = pytest.importorskip("cloudpickle")

import pyglmm as pg  # noqa: E402
from pyglmm.distributed import PartitionError  # noqa: E402

# worker processes cannot import this test module: ship its functions by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _flaky_piece(i: int, pieces, bad: int, fail_at: int, counter: str) -> pd.DataFrame:
    """Partition ``i``; reading partition ``bad`` fails from its ``fail_at``-th read on
    (the read count is kept in a file, shared by the worker processes)."""
    if i == bad:
        path = Path(counter)
        reads = (int(path.read_text()) if path.exists() else 0) + 1
        path.write_text(str(reads))
        if reads >= fail_at:
            raise OSError(f"simulated disk failure on read {reads} of partition {i}")
    return pieces[i].copy()


def flaky_frame(df: pd.DataFrame, bounds, bad: int, fail_at: int, counter: Path):
    pieces = [df.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return dd.from_map(
        _flaky_piece,
        range(len(pieces)),
        pieces=pieces,
        bad=bad,
        fail_at=fail_at,
        counter=str(counter),
        meta=df.iloc[:0],
        enforce_metadata=False,
    )


def _worker_keys(client) -> dict:
    return client.run(lambda dask_worker: len(dask_worker.data))


def test_glm_partition_failing_mid_fit(process_client, uneven_frame, tmp_path):
    df = uneven_frame
    original = df.copy(deep=True)
    # reads of partition 2: learning the levels (1), IRLS start (2), IRLS iteration 1 (3):
    # fail there, after the fit has started iterating
    d = flaky_frame(df, [0, 100, 200, 300, 400], bad=2, fail_at=3, counter=tmp_path / "n")
    result = None
    with process_client.as_current():
        with pytest.raises(PartitionError) as info:
            result = pg.glm("count ~ x + g + f", d, family="poisson")
        msg = str(info.value)
        assert "failed during IRLS iteration 1: OSError" in msg
        assert "OSError: simulated disk failure on read 3 of partition 2" in msg
        assert result is None
        # nothing half-written: no intermediate results left on the workers
        deadline = time.time() + 10
        while any(_worker_keys(process_client).values()) and time.time() < deadline:
            time.sleep(0.1)
        assert not any(_worker_keys(process_client).values())
        # the input is untouched and the cluster still fits healthy data
        pd.testing.assert_frame_equal(df, original)
        ok = pg.glm("count ~ x + g + f", dd.from_pandas(df, npartitions=3), family="poisson")
    ref = pg.glm("count ~ x + g + f", df, family="poisson")
    np.testing.assert_allclose(ok.coef, ref.coef, rtol=1e-8)


def test_lmer_partition_failing_in_the_blocks_pass(client, uneven_frame, tmp_path):
    d = flaky_frame(uneven_frame, [0, 150, 400], bad=1, fail_at=2, counter=tmp_path / "n")
    with pytest.raises(
        PartitionError, match=r"failed during the blocks of .*OSError: simulated disk failure"
    ):
        pg.lmer("y ~ x + (1 | g)", d)
