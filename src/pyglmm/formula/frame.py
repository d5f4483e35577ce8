"""The model frame: the rows and columns a model uses, cleaned and encoded.

:func:`model_frame` is the one place where a formula meets the data. It
checks that every variable exists, converts string and boolean columns to
R-ordered factors, drops rows with missing values as R's ``na.omit`` does (with
a warning that says how many), evaluates the response, the offsets and the
prior weights, and builds the fixed-effects model matrix with R's column names.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pyglmm.data import to_pandas
from pyglmm.errors import DataError, FormulaError, MissingDataWarning
from pyglmm.formula.expressions import check_columns, evaluate, referenced_names
from pyglmm.formula.fixed import FixedDesign
from pyglmm.formula.levels import as_r_factor
from pyglmm.formula.native import parse_simple_rhs
from pyglmm.formula.parse import ParsedFormula, RandomBar, parse_formula, split_top_level

_CBIND = re.compile(r"^cbind\((?P<args>.*)\)$", re.S)


class FixedColumns:
    """The column names, term labels and ``assign`` of a frame's :class:`FixedDesign`.

    Mixed into :class:`ModelFrame` and the Dask
    :class:`~pyglmm.distributed.frame.DistributedFrame`, which have a ``fixed`` attribute.
    """

    fixed: FixedDesign

    @property
    def column_names(self) -> list[str]:
        """R-style names of the columns of :attr:`X`."""
        return self.fixed.column_names

    @property
    def terms(self) -> list[str]:
        """Term labels of the fixed part (intercept excluded)."""
        return self.fixed.terms

    @property
    def assign(self) -> np.ndarray:
        """Term index of each column of :attr:`X` (0 for the intercept)."""
        return self.fixed.assign


@dataclass
class ModelFrame(FixedColumns):
    """Everything a model needs from ``formula`` + ``data``.

    Attributes
    ----------
    formula : ParsedFormula
    data : pandas.DataFrame
        The rows used (after ``na.omit``), the variables of the formula; factors
        are categoricals with unused levels dropped.
    y : numpy.ndarray or None
        Response, shape ``(n,)``; ``(n, 2)`` for ``cbind(successes, failures)``.
    response_name : str or None
    response_levels : list or None
        For a two-level factor response, its levels (``y`` is 1 for the second).
    X : numpy.ndarray or None
        Fixed-effects model matrix ``(n, p)``; None when a many-level factor was left out
        of it (``indicator_block_min`` of :func:`model_frame`).
    column_names, terms, assign
        As :class:`~pyglmm.formula.fixed.FixedDesign`.
    offset : numpy.ndarray
        Sum of ``offset()`` terms and the ``offset=`` argument; zeros if none.
    weights : numpy.ndarray or None
        Prior weights.
    fixed : FixedDesign
        For encoding new data (``predict``).
    random : list of RandomBar
    row_labels : pandas.Index
        Labels of the rows used, from the input's index.
    n_dropped : int
        Rows removed for missing values.
    """

    formula: ParsedFormula
    data: pd.DataFrame
    y: np.ndarray | None
    response_name: str | None
    X: np.ndarray | None
    fixed: FixedDesign
    offset: np.ndarray
    weights: np.ndarray | None
    random: list[RandomBar]
    row_labels: pd.Index
    n_dropped: int = 0
    response_levels: list[Any] | None = None
    offset_given: bool = False
    variables: list[str] = field(default_factory=list)

    @property
    def nobs(self) -> int:
        """Number of rows used."""
        return len(self.row_labels)


def group_variables(group: str) -> list[str]:
    """The variables of a grouping expression: ``"g1/g2"`` and ``"g1:g2"`` give
    ``["g1", "g2"]``."""
    return [g.strip() for g in re.split(r"[/:]", group) if g.strip()]


def append_new(used: list[str], names: Sequence[str]) -> None:
    """Append to ``used`` the ``names`` not in it yet, in order."""
    for n in names:
        if n not in used:
            used.append(n)


def formula_variables(pf: ParsedFormula, data: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The columns of ``data`` that the formula uses, checked to exist.

    Returns ``(used, groups)``: every variable of the response, the fixed part, the
    offsets and the random-effects bars (in that order, each once), and the grouping
    variables of the bars. Raises :class:`~pyglmm.errors.DataError` naming a variable
    that is not a column of ``data`` (only the columns and dtypes of ``data`` are read).
    """
    used: list[str] = []
    groups: list[str] = []
    if pf.response is not None:
        append_new(used, check_columns(pf.response.replace("cbind", ""), data, "response"))
    append_new(used, check_columns(pf.fixed, data, "formula"))
    for off in pf.offsets:
        append_new(used, check_columns(off, data, "offset"))
    for bar in pf.random:
        append_new(used, check_columns(bar.lhs, data, "random-effects term"))
        for g in group_variables(bar.group):
            if g not in data.columns:
                raise DataError(
                    f"grouping factor {g!r} in {bar} is not a column of the data "
                    f"(columns: {', '.join(map(str, data.columns[:20]))})"
                )
            append_new(used, [g])
            append_new(groups, [g])
    return used, groups


def formula_offset(offsets: Sequence[str], data: pd.DataFrame) -> np.ndarray:
    """The sum of the formula's ``offset()`` expressions on ``data`` (zeros if none)."""
    off = np.zeros(len(data))
    for expr in offsets:
        off = off + np.asarray(evaluate(expr, data, "offset"), dtype=float)
    return off


def check_model_arrays(
    X: np.ndarray,
    n: int,
    offset: np.ndarray,
    weights: np.ndarray | None,
    *,
    matrix_finite: bool | None = None,
    offset_finite: bool = False,
) -> None:
    """Raise :class:`~pyglmm.errors.DataError` for a non-finite offset, non-finite or
    negative weights, or a non-finite model matrix (:class:`~pyglmm.errors.FormulaError`
    when ``X`` does not have ``n`` rows). ``matrix_finite=True`` says ``X`` is known to
    be finite (see :meth:`~pyglmm.formula.fixed.FixedDesign.matrix_is_finite`),
    ``offset_finite=True`` the same of the offset."""
    if not offset_finite and not np.all(np.isfinite(offset)):
        raise DataError("the offset has non-finite values (e.g. log of zero)")
    if weights is not None:
        if not np.all(np.isfinite(weights)):
            raise DataError("weights have non-finite values")
        if np.any(weights < 0):
            raise DataError("negative weights are not allowed")
    if X.shape[0] != n:
        raise FormulaError("the model matrix does not have one row per observation")
    if not matrix_finite and not np.all(np.isfinite(X)):
        raise DataError("the model matrix has non-finite values (e.g. log of zero or negative)")


def _vector_argument(value: Any, df: pd.DataFrame, what: str) -> tuple[np.ndarray | None, str]:
    """A weights/offset argument: None, a column name, an expression, or an array."""
    if value is None:
        return None, ""
    if isinstance(value, str):
        if value in df.columns:
            return np.asarray(df[value], dtype=float), value
        return np.asarray(evaluate(value, df, what), dtype=float), value
    arr = np.asarray(value, dtype=float).reshape(-1)
    if arr.shape[0] != len(df):
        raise DataError(f"{what} has length {arr.shape[0]} but the data have {len(df)} rows")
    return arr, ""


def model_frame(
    formula: str,
    data: Any,
    *,
    weights: Any = None,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    na_action: str = "omit",
    extra_columns: Sequence[str] = (),
    indicator_block_min: int | None = None,
    _defer_checks: bool = True,
) -> ModelFrame:
    """Build the :class:`ModelFrame` of ``formula`` on ``data``.

    Parameters
    ----------
    formula : str
        R / lme4 formula.
    data : DataFrame
        pandas or polars data frame.
    weights, offset : str, array-like or None
        Prior weights and an offset: a column name, an expression (offset) or
        one value per row of ``data``.
    contrasts : mapping, optional
        Per-variable contrasts, e.g. ``{"res": "contr.sum"}``.
    na_action : {"omit", "fail"}
        ``"omit"`` drops incomplete rows with a :class:`MissingDataWarning`;
        ``"fail"`` raises instead.
    extra_columns : sequence of str
        Further columns to keep in :attr:`ModelFrame.data` (and to check for NA).
    indicator_block_min : int, optional
        Leave a factor term of at least this many indicator columns out of the model
        matrix (see :class:`~pyglmm.formula.fixed.FixedDesign`): ``X`` is then None and
        ``fixed.other_columns`` / ``fixed.indicator_block`` describe it.
    """
    df = data if isinstance(data, pd.DataFrame) else to_pandas(data)  # only read
    if len(df) == 0:
        raise DataError("the data have no rows")
    pf = parse_formula(formula)

    used, _ = formula_variables(pf, df)
    for col in extra_columns:
        if col not in df.columns:
            raise DataError(f"column {col!r} is not in the data")
        append_new(used, [col])

    w_arr, w_name = _vector_argument(weights, df, "weights")
    o_arr, o_name = _vector_argument(offset, df, "offset")
    if w_name and w_name in df.columns:
        append_new(used, [w_name])
    if o_name and o_name in df.columns:
        append_new(used, [o_name])

    # selecting columns by position keeps pandas' blocks (views, tracked by
    # copy-on-write, so the user's frame stays untouched); df[used] costs several
    # times more
    positions = [df.columns.get_loc(c) for c in used]
    if used == list(df.columns):
        sub = df.copy(deep=False)
    elif all(isinstance(i, (int, np.integer)) for i in positions):
        sub = df.take(positions, axis=1)
    else:  # duplicated column names
        sub = df[used]
    columns = {c: df[c] for c in used}
    # float columns that are plain terms of the fixed part are checked for NaN and
    # infinity while the model matrix is filled (one pass over them, not two) when
    # nothing else is missing; if that check fails the frame is built again, checking
    # every column first
    deferred = (
        _checked_by_fill(pf, columns, [w_name, o_name, *extra_columns])
        if _defer_checks
        else frozenset()
    )
    missing, finite = _missing_and_finite({c: s for c, s in columns.items() if c not in deferred})
    if deferred and (missing or any(np.isnan(a).any() for a in (w_arr, o_arr) if a is not None)):
        deferred = frozenset()
        missing, finite = _missing_and_finite(columns)
    finite = set(finite) | deferred
    row_masks = list(missing.values())
    for arr in (w_arr, o_arr):
        if arr is not None and np.isnan(arr).any():
            row_masks.append(np.isnan(arr))
    complete = ~np.logical_or.reduce(row_masks) if row_masks else None
    n_dropped = 0 if complete is None else int(len(df) - complete.sum())
    if n_dropped:
        bad = [c for c in used if c in missing]
        if na_action == "fail":
            raise DataError(f"missing values in column(s) {bad} (na_action='fail')")
        warnings.warn(
            f"{n_dropped} row(s) with missing values dropped (na.omit); columns with NA: "
            f"{bad or ['weights/offset']}",
            MissingDataWarning,
            stacklevel=3,
        )
        if not complete.any():
            raise DataError("no rows left after dropping rows with missing values")
        sub = sub.loc[complete]
        columns = {c: sub[c] for c in used}
        if w_arr is not None:
            w_arr = w_arr[complete]
        if o_arr is not None:
            o_arr = o_arr[complete]
        _, finite = _missing_and_finite(columns)

    # factors: unused levels dropped, strings and booleans as R-ordered factors
    for c, s in columns.items():
        dtype = s.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
            continue
        if isinstance(dtype, pd.CategoricalDtype):
            # (after na.omit no code is -1)
            if not np.bincount(s.array.codes, minlength=len(dtype.categories)).all():
                sub[c] = columns[c] = s.cat.remove_unused_categories()
        elif (isinstance(dtype, np.dtype) and dtype.kind in "bO") or pd.api.types.is_string_dtype(
            dtype
        ):
            sub[c] = columns[c] = as_r_factor(s)
    n = len(sub)

    y, response_levels = None, None
    if pf.response is not None:
        y, response_levels = response(pf.response, sub, columns=columns, finite=finite)

    fixed = FixedDesign(
        pf.fixed,
        sub,
        contrasts,
        columns=columns,
        indicator_block_min=indicator_block_min,
        verify_finite=deferred,
    )
    if not fixed.verified_finite:  # a deferred column is not all finite: check it first
        return model_frame(
            formula,
            data,
            weights=weights,
            offset=offset,
            contrasts=contrasts,
            na_action=na_action,
            extra_columns=extra_columns,
            indicator_block_min=indicator_block_min,
            _defer_checks=False,
        )
    off = formula_offset(pf.offsets, sub) if pf.offsets else np.zeros(n)
    if o_arr is not None:
        off = off + o_arr
    check_model_arrays(
        fixed.matrix if fixed.matrix is not None else fixed.other_columns,
        n,
        off,
        w_arr,
        matrix_finite=fixed.matrix_is_finite(finite),
        offset_finite=not pf.offsets and o_arr is None,  # zeros
    )

    return ModelFrame(
        formula=pf,
        data=sub,
        y=y,
        response_name=pf.response,
        X=fixed.matrix,
        fixed=fixed,
        offset=off,
        weights=w_arr,
        random=list(pf.random),
        row_labels=sub.index,
        n_dropped=n_dropped,
        response_levels=response_levels,
        offset_given=bool(pf.offsets) or o_arr is not None,
        variables=used,
    )


def _checked_by_fill(
    pf: ParsedFormula, columns: Mapping[str, pd.Series], others: Sequence[str]
) -> frozenset[str]:
    """The float64 columns whose NaN / infinity check the model-matrix fill can make:
    plain terms of a natively built fixed part (:func:`parse_simple_rhs`), in no random
    term and not among ``others`` (weights, offset, extra columns) nor in the response
    or the offsets."""
    if pf.random:
        return frozenset()
    simple = parse_simple_rhs(pf.fixed)
    if simple is None or simple.calls:
        return frozenset()
    elsewhere = {name for name in others if name}
    for expr in (pf.response or "", *pf.offsets, *elsewhere):
        elsewhere = elsewhere | set(referenced_names(expr))
    return frozenset(
        term[0]
        for term in simple.terms
        if len(term) == 1
        and term[0] in columns
        and term[0] not in elsewhere
        and columns[term[0]].dtype == np.float64
    )


def _missing_and_finite(columns: Mapping[str, pd.Series]) -> tuple[dict[str, np.ndarray], set[str]]:
    """The missing-value masks of the columns that have missing values, and the names of
    the columns whose values are all finite numbers."""
    missing: dict[str, np.ndarray] = {}
    finite: set[str] = set()
    for name, column in columns.items():
        mask, all_finite = _missing_values(column)
        if mask is not None:
            missing[name] = mask
        if all_finite:
            finite.add(name)
    return missing, finite


def _missing_values(column: pd.Series) -> tuple[np.ndarray | None, bool]:
    """The missing-value mask of a column (None when nothing is missing) and whether all
    its values are finite numbers."""
    dtype = column.dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind in "iub":
            return None, dtype.kind != "b"
        if dtype.kind == "f":
            values = column.to_numpy()
            if np.isfinite(values).all():
                return None, True
            mask = np.isnan(values)
            return (mask if mask.any() else None), False
    elif isinstance(dtype, pd.CategoricalDtype):
        codes = column.array.codes
        return ((codes < 0) if len(codes) and codes.min() < 0 else None), False
    mask = column.isna().to_numpy()
    return (mask if mask.any() else None), False


def response(
    expr: str,
    data: pd.DataFrame,
    columns: Mapping[str, pd.Series] | None = None,
    finite: set[str] | frozenset[str] = frozenset(),
) -> tuple[np.ndarray, list[Any] | None]:
    """Evaluate the response expression ``expr`` on ``data``.

    Returns ``(y, levels)``: ``y`` is ``(n, 2)`` for ``cbind(successes, failures)``, the
    indicator of the second level for a two-level factor (``levels`` its levels, as R's
    binomial response), else the numeric values (``levels`` None). Raises
    :class:`~pyglmm.errors.DataError` for a non-numeric or non-finite response or a
    factor with other than two levels, :class:`~pyglmm.errors.FormulaError` for a
    ``cbind()`` without two columns. ``columns`` may give columns of ``data`` already
    looked up, ``finite`` names columns known to hold only finite numbers.
    """
    columns = columns if columns is not None else {}

    def column(name: str) -> pd.Series | None:
        if name in columns:
            return columns[name]
        return data[name] if name in data.columns else None

    def values(text: str) -> np.ndarray:
        col = column(text)
        if col is None:
            return evaluate(text, data, "response")
        if isinstance(col.dtype, pd.CategoricalDtype):  # as the evaluator sees it
            return np.asarray(col.astype(object))
        return col.to_numpy()

    m = _CBIND.match(expr.strip())
    if m:
        args = split_top_level(m.group("args"), ",")
        if len(args) != 2:
            raise FormulaError(f"cbind() in the response takes two columns, got {len(args)}")
        cols = [_numeric_response(values(a), a, a in finite) for a in args]
        return np.column_stack(cols), None
    col = column(expr)
    if col is not None and isinstance(col.dtype, pd.CategoricalDtype):
        levels = list(col.cat.categories)
        if len(levels) != 2:
            raise DataError(
                f"response {expr!r} is a factor with {len(levels)} levels; a factor response "
                "needs exactly two (the first is failure, as in R)"
            )
        return (col.array.codes == 1).astype(float), levels
    return _numeric_response(values(expr), expr, expr in finite), None


def _numeric_response(values: np.ndarray, expr: str, known_finite: bool = False) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == bool:
        return arr.astype(float)
    if not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"the response {expr!r} is not numeric (dtype {arr.dtype})")
    arr = arr.astype(float)
    if not known_finite and not np.all(np.isfinite(arr)):
        raise DataError(f"the response {expr!r} has non-finite values")
    return arr
