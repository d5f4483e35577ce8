"""The model frame of a Dask DataFrame: the encoding learned once, applied to every partition.

In memory, :func:`pyglmm.formula.frame.model_frame` sees all rows at once: it drops
incomplete rows, turns string and boolean columns into factors whose levels are the
values present (in R's order), keeps the present categories of categoricals, and lets
formulaic learn the fixed-effects encoding. Here the same is done in one pass over
the partitions:

1. each partition reports its row counts after ``na.omit`` and the distinct values of
   every factor-like column (and of the grouping factors);
2. the client forms the union of those values and orders it as the in-memory frame
   would (:func:`pyglmm.formula.levels.r_sorted_levels`, or the categorical's own
   category order), builds a small *meta* pandas frame (a few complete rows of the
   first non-empty partition, factors set to the full level sets) and learns the
   :class:`~pyglmm.formula.fixed.FixedDesign` on it;
3. every later pass encodes each partition with :meth:`PartitionEncoder.encode`, which
   applies exactly that encoding (same levels, same columns, same names).

Stateful transforms whose state depends on all rows (``center(x)``, ``scale(x)``,
``poly(x, 2)``) would be learned from the meta rows only, so they are refused with a
clear error: compute such columns before the fit (``ddf.assign(xc=ddf.x - ddf.x.mean())``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pyglmm.distributed.mapreduce import map_reduce
from pyglmm.errors import DataError, FormulaError
from pyglmm.formula.expressions import check_columns, evaluate
from pyglmm.formula.fixed import FixedDesign
from pyglmm.formula.frame import (
    FixedColumns,
    append_new,
    check_model_arrays,
    formula_offset,
    formula_variables,
    response,
)
from pyglmm.formula.levels import as_r_factor, r_sorted_levels
from pyglmm.formula.parse import ParsedFormula, parse_formula

#: formulaic and the expression evaluator compile Python ASTs; CPython 3.11's AST
#: validation is not thread-safe ("AST constructor recursion depth mismatch"), so the
#: threads of one worker take turns for that part (the numerical work stays parallel).
FORMULA_LOCK = threading.RLock()

_FACTOR_ARG = re.compile(r"\b(?:as\.factor|factor|C)\(\s*([A-Za-z_.][A-Za-z0-9_.]*)\s*[,)]")
_META_ROWS = 50


def _is_factor_like(dtype: Any) -> bool:
    return (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    )


@dataclass
class EncodedPartition:
    """The model's arrays for the complete rows of one partition."""

    X: np.ndarray
    y: np.ndarray
    offset: np.ndarray
    weights: np.ndarray | None
    data: pd.DataFrame
    index: pd.Index

    @property
    def n(self) -> int:
        return self.X.shape[0]


@dataclass
class PartitionEncoder:
    """Everything a worker needs to turn a partition into ``X, y, offset, weights``.

    Picklable: it is shipped to the workers once per pass.
    """

    formula: ParsedFormula
    used: list[str]
    factor_levels: dict[str, list[Any]]
    fixed: FixedDesign
    weights: str | None
    offset: str | None
    p: int
    response_columns: int
    direct_columns: list[str | None] | None = None

    def model_matrix(self, sub: pd.DataFrame) -> np.ndarray:
        """``X`` of complete rows: numeric columns copied directly when the formula is
        only numeric variables (checked against formulaic at learning time), else
        :meth:`FixedDesign.transform`."""
        if self.direct_columns is None:
            with FORMULA_LOCK:
                return self.fixed.transform(sub)
        X = np.empty((len(sub), len(self.direct_columns)))
        for j, name in enumerate(self.direct_columns):
            X[:, j] = 1.0 if name is None else sub[name].to_numpy(dtype=float)
        return X

    def encode(self, part: pd.DataFrame) -> EncodedPartition:
        """``na.omit``, factor levels, response, offset, weights and ``X`` of a partition."""
        sub = part[self.used]
        complete = ~sub.isna().any(axis=1).to_numpy()
        w = None if self.weights is None else _vector(self.weights, part, "weights")
        o = None if self.offset is None else _vector(self.offset, part, "offset")
        if w is not None:
            complete &= ~np.isnan(w)
        if o is not None:
            complete &= ~np.isnan(o)
        if not complete.all():
            sub = sub.loc[complete]
            w = None if w is None else w[complete]
            o = None if o is None else o[complete]
        else:
            sub = sub.copy()
        n = len(sub)
        if n == 0:
            shape = (0,) if self.response_columns == 1 else (0, 2)
            return EncodedPartition(
                np.zeros((0, self.p)),
                np.zeros(shape),
                np.zeros(0),
                None if w is None else np.zeros(0),
                sub,
                sub.index,
            )
        for col, levels in self.factor_levels.items():
            sub[col] = as_r_factor(sub[col], levels)
        y = np.zeros(n)
        with FORMULA_LOCK:
            if self.formula.response is not None:
                y, _ = response(self.formula.response, sub)
            off = formula_offset(self.formula.offsets, sub)
        X = self.model_matrix(sub)
        if o is not None:
            off = off + o
        check_model_arrays(X, n, off, w)
        return EncodedPartition(X, y, off, w, sub, sub.index)


def _vector(expr: str, part: pd.DataFrame, what: str) -> np.ndarray:
    if expr in part.columns:
        return np.asarray(part[expr], dtype=float)
    with FORMULA_LOCK:
        return np.asarray(evaluate(expr, part, what), dtype=float)


# ---------------------------------------------------------------------- learning pass
def _learn_partition(
    part: pd.DataFrame,
    used: list[str],
    factor_like: list[str],
    weights: str | None,
    offset: str | None,
) -> dict:
    sub = part[used]
    complete = ~sub.isna().any(axis=1).to_numpy()
    if weights is not None:
        complete &= ~np.isnan(_vector(weights, part, "weights"))
    if offset is not None:
        complete &= ~np.isnan(_vector(offset, part, "offset"))
    sub = sub.loc[complete]
    values: dict[str, dict] = {}
    categories: dict[str, list[tuple]] = {}
    for col in factor_like:
        s = sub[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            codes = np.unique(s.cat.codes.to_numpy())
            cats = s.cat.categories
            values[col] = dict.fromkeys(cats[codes[codes >= 0]].tolist())
            categories[col] = [tuple(cats.tolist())]
        else:
            values[col] = dict.fromkeys(pd.unique(s).tolist())
    return {
        "rows": [len(part)],
        "used_rows": [len(sub)],
        "values": values,
        "categories": categories,
        "head": sub.head(_META_ROWS) if len(sub) else None,
    }


def _combine_learn(a: dict, b: dict) -> dict:
    values = {c: {**a["values"][c], **b["values"][c]} for c in a["values"]}
    cats = {}
    for c in set(a["categories"]) | set(b["categories"]):
        lst = list(a["categories"].get(c, []))
        for t in b["categories"].get(c, []):
            if t not in lst:
                lst.append(t)
        cats[c] = lst
    return {
        "rows": a["rows"] + b["rows"],
        "used_rows": a["used_rows"] + b["used_rows"],
        "values": values,
        "categories": cats,
        "head": a["head"] if a["head"] is not None else b["head"],
    }


def _order_levels(
    meta_dtype: Any, known: bool, present: list[Any], categories: list[tuple]
) -> list:
    """The levels the in-memory frame would give a column (present values only).

    A categorical keeps its category order: the partitions' own when they all agree,
    else Dask's when it calls them known and they cover the values; otherwise (and for
    strings, booleans and numbers) R's sort order of the values present.
    """
    present_set = set(present)
    if isinstance(meta_dtype, pd.CategoricalDtype):
        if len(categories) == 1:
            return [c for c in categories[0] if c in present_set]
        if known and present_set <= set(meta_dtype.categories):
            return [c for c in meta_dtype.categories if c in present_set]
    return r_sorted_levels(present)


@dataclass
class DistributedFrame(FixedColumns):
    """The learned encoding of a formula on a Dask DataFrame and the data's row counts.

    Attributes
    ----------
    formula : ParsedFormula
    encoder : PartitionEncoder
    fixed : FixedDesign
        Learned on the meta frame with the full level sets.
    levels : dict
        Levels of every factor-like or grouping column (present values, R's order).
    nobs : int
        Rows used (complete cases).
    n_dropped : int
        Rows dropped for missing values.
    partition_rows : list of int
        Rows used per partition.
    partitions : list
        ``ddf.to_delayed()``: one delayed pandas DataFrame per partition.
    meta : pandas.DataFrame
        A few complete rows with the full level sets (for building designs).
    """

    formula: ParsedFormula
    encoder: PartitionEncoder
    fixed: FixedDesign
    levels: dict[str, list[Any]]
    nobs: int
    n_dropped: int
    partition_rows: list[int]
    partitions: list[Any]
    meta: pd.DataFrame
    ddf: Any
    response_levels: list[Any] | None = None
    offset_given: bool = False
    variables: list[str] = field(default_factory=list)
    row_labels: Any = None
    random: list = field(default_factory=list)

    def __getstate__(self) -> dict:
        # Results are shipped to workers (predict on a Dask newdata): leave the graph behind.
        state = dict(self.__dict__)
        state["ddf"] = None
        state["partitions"] = []
        return state

    @property
    def response_name(self) -> str | None:
        return self.formula.response

    @property
    def X(self) -> Any:
        """The model matrix as a lazy Dask array (rows stay on the cluster)."""
        import dask.array as da

        enc = self.encoder
        blocks = [
            da.from_delayed(_x_of(part, enc), shape=(n, enc.p), dtype=float)
            for part, n in zip(self.partitions, self.partition_rows, strict=True)
        ]
        return da.concatenate(blocks, axis=0)


def _encoded_x(df: pd.DataFrame, encoder: PartitionEncoder) -> np.ndarray:
    return encoder.encode(df).X


def _x_of(part, encoder):
    import dask

    return dask.delayed(_encoded_x, pure=True)(part, encoder)


def _direct_columns(
    fixed: FixedDesign, meta: pd.DataFrame, factor_levels: dict
) -> list[str | None] | None:
    """Column sources when ``X`` is only the intercept and numeric columns as they are.

    Verified on the meta rows against formulaic's matrix; None when it does not apply.
    """
    out: list[str | None] = []
    for name in fixed.column_names:
        if name == "(Intercept)":
            out.append(None)
        elif (
            name in meta.columns
            and name not in factor_levels
            and pd.api.types.is_numeric_dtype(meta[name].dtype)
            and not pd.api.types.is_bool_dtype(meta[name].dtype)
        ):
            out.append(name)
        else:
            return None
    direct = np.column_stack(
        [np.ones(len(meta)) if c is None else meta[c].to_numpy(dtype=float) for c in out]
    )
    if direct.shape != fixed.matrix.shape or not np.array_equal(direct, fixed.matrix):
        return None
    return out


def learn_frame(
    formula: str,
    ddf: Any,
    *,
    weights: Any = None,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    group_columns: bool = True,
) -> DistributedFrame:
    """One pass over ``ddf``: row counts, factor levels; then the encoding.

    Parameters
    ----------
    formula : str
    ddf : dask.dataframe.DataFrame
    weights, offset : str or None
        A column name or an expression of columns (arrays cannot be aligned with
        the partitions of a Dask DataFrame: add them as columns).
    contrasts : mapping, optional
    group_columns : bool
        Also learn the levels of the grouping factors of random-effects bars.
    """
    for what, value in (("weights", weights), ("offset", offset)):
        if value is not None and not isinstance(value, str):
            raise DataError(
                f"with a Dask DataFrame, {what}= must be a column name or an expression of "
                f"columns (got {type(value).__name__}); add the values as a column first"
            )
    meta0 = ddf._meta
    pf = parse_formula(formula)
    used, group_vars = formula_variables(pf, meta0)
    for what, value in (("weights", weights), ("offset", offset)):
        if isinstance(value, str):
            append_new(used, check_columns(value, meta0, what))

    factor_cols = [c for c in used if _is_factor_like(meta0[c].dtype)]
    for m in _FACTOR_ARG.finditer(pf.fixed):
        name = m.group(1)
        if name in meta0.columns and name not in factor_cols:
            factor_cols.append(name)
    learn_cols = list(dict.fromkeys(factor_cols + (group_vars if group_columns else [])))
    parts = ddf.to_delayed()
    info = map_reduce(
        parts,
        _learn_partition,
        _combine_learn,
        used,
        learn_cols,
        weights,
        offset,
        stage="learning the factor levels",
    )
    nobs = int(sum(info["used_rows"]))
    n_total = int(sum(info["rows"]))
    if n_total == 0:
        raise DataError("the data have no rows")
    if nobs == 0:
        raise DataError("no rows left after dropping rows with missing values")
    n_dropped = n_total - nobs
    if n_dropped:
        import warnings

        from pyglmm.errors import MissingDataWarning

        warnings.warn(
            f"{n_dropped} row(s) with missing values dropped (na.omit)",
            MissingDataWarning,
            stacklevel=3,
        )
    levels = {}
    for c in learn_cols:
        dtype = meta0[c].dtype
        known = isinstance(dtype, pd.CategoricalDtype) and bool(ddf[c].cat.known)
        levels[c] = _order_levels(
            dtype, known, list(info["values"][c]), info["categories"].get(c, [])
        )
        if not levels[c]:
            raise DataError(f"column {c!r} has no values in the rows used")
    meta = info["head"].copy()
    factor_levels = {c: levels[c] for c in factor_cols}
    for c, lv in factor_levels.items():
        meta[c] = as_r_factor(meta[c], lv)
    fixed = FixedDesign(pf.fixed, meta, contrasts)
    state = {k: v for k, v in fixed.spec.transform_state.items() if v}
    if state:
        raise FormulaError(
            f"the formula uses stateful transform(s) {sorted(state)} whose state (mean, sd, "
            "orthogonal polynomial coefficients) depends on all rows; on a Dask DataFrame "
            "compute such columns before the fit, e.g. ddf.assign(x_c=ddf.x - ddf.x.mean())"
        )
    response_levels = None
    ncol = 1
    if pf.response is not None:
        y_meta, response_levels = response(pf.response, meta)
        ncol = 1 if y_meta.ndim == 1 else 2
    encoder = PartitionEncoder(
        formula=pf,
        used=used,
        factor_levels=factor_levels,
        fixed=fixed,
        weights=weights,
        offset=offset,
        p=len(fixed.column_names),
        response_columns=ncol,
        direct_columns=_direct_columns(fixed, meta, factor_levels),
    )
    return DistributedFrame(
        formula=pf,
        encoder=encoder,
        fixed=fixed,
        levels=levels,
        nobs=nobs,
        n_dropped=n_dropped,
        partition_rows=[int(r) for r in info["used_rows"]],
        partitions=parts,
        meta=meta,
        ddf=ddf,
        response_levels=response_levels,
        offset_given=bool(pf.offsets) or offset is not None,
        variables=used,
        random=list(pf.random),
    )
