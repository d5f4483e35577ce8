"""Accepting the user's data: pandas, polars and anything narwhals reads."""

from __future__ import annotations

from typing import Any

import pandas as pd

from pyglmm.errors import DataError


def to_pandas(data: Any) -> pd.DataFrame:
    """Return ``data`` as a pandas DataFrame (a shallow copy; the input is never modified).

    pandas DataFrames pass through; polars (and other eager frames narwhals
    knows) are converted; a dict of columns is accepted as pandas would.
    """
    if isinstance(data, pd.DataFrame):
        return data.copy(deep=False)
    if isinstance(data, dict):
        return pd.DataFrame(data)
    try:
        import narwhals as nw

        frame = nw.from_native(data, eager_only=True)
        return frame.to_pandas()
    except (TypeError, ImportError):
        pass
    raise DataError(
        "data must be a pandas or polars DataFrame (or a dict of columns), "
        f"not {type(data).__name__}"
    )
