"""Factor levels ordered as R orders them.

R's ``factor()`` sorts the distinct values of a character vector with the
locale's collation (``en_US`` in the seed's output): case is ignored at the first
level, so ``rural < Suva < urban``, where Python's ``sorted`` gives
``Suva < rural < urban``. Numbers sort numerically. This module reproduces that
ordering so that reference levels (and so coefficient names) come out as R's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

_NON_ALNUM = re.compile(r"[^0-9A-Za-z]+")


def r_collation_key(value: Any) -> tuple:
    """Sort key that mimics R's (glibc ``en_US``) collation of character levels.

    Primary: alphanumerics only, case-folded; secondary: the whole string
    case-folded; tertiary: lower case before upper case.
    """
    s = str(value)
    return (_NON_ALNUM.sub("", s).casefold(), s.casefold(), s.swapcase())


def r_sorted_levels(values: Iterable[Any]) -> list[Any]:
    """Distinct non-missing values in R's factor-level order."""
    uniq = pd.unique(pd.Series(list(values)).dropna())
    if len(uniq) and all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        for v in uniq
    ):
        return sorted(uniq.tolist())
    return sorted(uniq.tolist(), key=r_collation_key)


def as_r_factor(series: pd.Series, levels: Sequence[Any] | None = None) -> pd.Series:
    """Convert a column to an (unordered) categorical with R's level order.

    A column that is already categorical keeps its categories (the user chose
    them); strings, booleans and objects get :func:`r_sorted_levels`.
    """
    if isinstance(series.dtype, pd.CategoricalDtype):
        if levels is None:
            return series
        return series.cat.set_categories(list(levels))
    if levels is None:
        levels = r_sorted_levels(series)
    return pd.Series(
        pd.Categorical(series, categories=list(levels)), index=series.index, name=series.name
    )


def relevel(series: pd.Series, ref: Any) -> pd.Series:
    """Move level ``ref`` to the front, as R's ``relevel`` (it becomes the reference)."""
    s = as_r_factor(series)
    cats = list(s.cat.categories)
    if ref not in cats:
        from pyglmm.errors import DataError

        raise DataError(f"relevel: {ref!r} is not a level of {series.name!r}; levels: {cats}")
    cats.remove(ref)
    return s.cat.reorder_categories([ref, *cats])
