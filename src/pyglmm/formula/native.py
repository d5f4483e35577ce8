"""Model matrices of simple right-hand sides, built from the columns without formulaic.

A right-hand side is *simple* when it is made of an intercept (``1``, ``0``, ``-1``),
bare column names, ``:`` interactions and ``*`` crossings, e.g. ``x + f``,
``0 + f``, ``x*f + z``, ``a*b*c``. For such a formula on numeric columns (integer or
float) and unordered categorical columns, :class:`NativeEncoding` reproduces what
formulaic gives (and so what :class:`~pyglmm.formula.fixed.FixedDesign` has always
given): the same columns in the same order, R's column names, term labels and
``assign``, and bitwise the same matrix. It follows R's ``terms.formula`` and
``model.matrix`` rules:

* terms are expanded (``a*b`` is ``a + b + a:b``, crossing left to right), duplicates
  dropped, and ordered by degree, keeping the written order within a degree;
* a factor ``v`` in a term ``t`` is coded by treatment contrasts when the margin
  ``t`` without ``v`` is empty or contained in an earlier term, and by one indicator
  per level otherwise; without an intercept the first factor of the first term that
  has one gets indicators for all its levels;
* the columns of an interaction run with its first variable varying fastest.

formulaic's coding differs from R's when a term has two or more factors without
their margins (``a:b`` with an intercept: formulaic keeps a full-rank matrix where
R gives every level combination), and it keeps the written order of the variables
of a term where R orders them by first appearance in the formula (``a + b:a`` is
``a:b`` in R). Those formulas, and anything else (function calls, ``I()``, ``^``,
``/``, ``-`` of a term, ``contrasts=`` for a variable of the formula, ordered
factors, factors with fewer than two levels or with missing values, backticked or
dotted names, nullable extension dtypes), are left to formulaic:
:meth:`NativeEncoding.learn` returns None.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pyglmm.errors import DataError

#: Characters a simple right-hand side may contain.
_SIMPLE_TEXT = re.compile(r"[A-Za-z0-9_+\-:*\s]*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SIGNED_PIECE = re.compile(r"\s*([+-]?)\s*([^+-]*)")
#: Bare names formulaic may read as something other than a column.
_RESERVED = {"Intercept", "True", "False", "None", "TRUE", "FALSE", "C", "I", "Q"}
#: Level labels that R-style names cannot carry unambiguously through formulaic's
#: ``f[T.level]`` spelling.
_UNSAFE_LEVEL = re.compile(r"[\[\]]|\*\*|^[A-Z]?\.")
#: Below this many rows the numeric columns are copied one by one; above, a run of
#: numeric columns is taken as one 2-D array and copied at once.
_BLOCK_MIN_ROWS = 4096


@dataclass(frozen=True)
class SimpleRhs:
    """A simple right-hand side after R's term expansion.

    Attributes
    ----------
    intercept : bool
        Whether the model has an intercept.
    terms : tuple of tuple of str
        The terms in R's order (by degree, then as written), each the tuple of its
        variables in order of first appearance in the formula.
    variables : tuple of str
        The variables in order of first appearance.
    """

    intercept: bool
    terms: tuple[tuple[str, ...], ...]
    variables: tuple[str, ...]


def parse_simple_rhs(rhs: str) -> SimpleRhs | None:
    """Read ``rhs`` as a simple right-hand side, or return None if it is not one.

    None also when the expansion would need R's reordering of the variables within
    a term (``b:a`` after ``a``) or a term repeats a variable (``a:a``), which
    formulaic spells differently from R.
    """
    if not _SIMPLE_TEXT.fullmatch(rhs) or not rhs.strip():
        return None
    intercept: bool | None = None
    explicit_one = explicit_zero = False
    written: list[tuple[str, ...]] = []
    position: dict[str, int] = {}
    for m in _SIGNED_PIECE.finditer(rhs):
        sign, body = m.group(1), m.group(2).strip()
        if not body:
            if sign or m.end() < len(rhs):
                return None  # an operator with nothing after it
            continue
        if body in ("0", "1"):
            removes = (body == "0") == (sign != "-")
            explicit_zero |= removes
            explicit_one |= not removes
            intercept = not removes
            continue
        if sign == "-":
            return None  # removing a term
        crossed = []
        for factor in body.split("*"):
            names = tuple(p.strip() for p in factor.split(":"))
            for name in names:
                if (
                    not _NAME.fullmatch(name)
                    or keyword.iskeyword(name)
                    or name in _RESERVED
                    or name.isdigit()
                ):
                    return None
                position.setdefault(name, len(position))
            crossed.append(names)
        expanded = [crossed[0]]
        for right in crossed[1:]:
            expanded = [*expanded, right, *(left + right for left in expanded)]
        written.extend(expanded)
    if explicit_one and explicit_zero:
        return None  # "0 + 1": R's answer depends on the order; leave it to formulaic
    terms: list[tuple[str, ...]] = []
    seen: set[frozenset[str]] = set()
    for term in written:
        key = frozenset(term)
        if len(key) != len(term):
            return None  # a:a
        if [position[v] for v in term] != sorted(position[v] for v in term):
            return None  # R would reorder the variables of this term
        if key not in seen:
            seen.add(key)
            terms.append(term)
    terms.sort(key=len)  # stable: by degree, then as written
    return SimpleRhs(
        intercept=True if intercept is None else intercept,
        terms=tuple(terms),
        variables=tuple(position),
    )


#: One factor of a model-matrix column: a variable and, for a factor, the code of
#: its level (None for a numeric variable, whose values enter the product).
Piece = tuple[str, int | None]
#: A model-matrix column: the pieces of variables that have several columns in the
#: term, and those of variables that have one (empty, empty for the intercept).
Column = tuple[tuple[Piece, ...], tuple[Piece, ...]]


class NativeEncoding:
    """How to fill the model matrix of a simple right-hand side from columns.

    Built by :meth:`learn` from a :class:`SimpleRhs` and the training data; applied
    to the training data and to new data by :meth:`fill`.

    Attributes
    ----------
    numeric : list of str
        The numeric variables.
    factor_levels : dict
        Levels of each factor variable (the categories of the training column).
    columns : list of Column
        For each column of the matrix, the variables whose product it is, split in
        the two groups formulaic multiplies separately (both empty for the intercept).
    column_names, terms, assign
        As :class:`~pyglmm.formula.fixed.FixedDesign`.
    """

    def __init__(
        self,
        numeric: list[str],
        factor_levels: dict[str, list[Any]],
        columns: list[Column],
        column_names: list[str],
        terms: list[str],
        assign: np.ndarray,
    ) -> None:
        self.numeric = numeric
        self.factor_levels = factor_levels
        self.columns = columns
        self.column_names = column_names
        self.terms = terms
        self.assign = assign
        self._plan()

    # -- learning ----------------------------------------------------------
    @classmethod
    def learn(
        cls, simple: SimpleRhs | None, data: pd.DataFrame, contrasts: Mapping[str, str] | None
    ) -> NativeEncoding | None:
        """The encoding of ``simple`` on ``data``, or None when formulaic must build it.

        Numeric variables must have a numpy integer or float dtype; factors must be
        unordered categoricals with at least two levels, no missing values and
        level labels that R-style names carry unambiguously. Variables named in
        ``contrasts`` are left to formulaic.
        """
        if simple is None:
            return None
        if contrasts and any(v in contrasts for v in simple.variables):
            return None
        numeric: list[str] = []
        levels: dict[str, list[Any]] = {}
        for var in simple.variables:
            if var not in data:
                return None
            col = data[var]
            dtype = col.dtype
            if isinstance(dtype, pd.CategoricalDtype):
                if dtype.ordered:
                    return None
                cats = dtype.categories
                if len(cats) < 2 or (col.array.codes < 0).any():
                    return None
                labels = [str(c) for c in cats]
                if any(not s or _UNSAFE_LEVEL.search(s) for s in labels):
                    return None
                levels[var] = list(cats)
            elif isinstance(dtype, np.dtype) and dtype.kind in "iuf":
                numeric.append(var)
            else:
                return None
        return cls._from_terms(simple, numeric, levels)

    @classmethod
    def _from_terms(
        cls, simple: SimpleRhs, numeric: list[str], levels: dict[str, list[Any]]
    ) -> NativeEncoding | None:
        terms = simple.terms
        numeric_set = set(numeric)
        # R's factor pattern (stats:::TermCode): 1 = contrasts, 2 = one column per level
        codes: list[dict[str, int]] = []
        for t, term in enumerate(terms):
            coding = {}
            for var in term:
                if var not in levels:
                    continue
                margin = set(term) - {var}
                holders = [set(terms[u]) for u in range(t) if margin <= set(terms[u])]
                if not margin:
                    coding[var] = 1
                elif not holders:
                    coding[var] = 2
                elif any(not (h - margin) & numeric_set for h in holders):
                    coding[var] = 1
                else:
                    # R codes by contrasts because an earlier term with more numeric
                    # variables holds the margin; formulaic does not count such a term
                    return None
            codes.append(coding)
        if not simple.intercept:
            # R: without an intercept the first factor (in order of the variables) of
            # the first term that has one is coded by indicators of all its levels
            order = {v: i for i, v in enumerate(simple.variables)}
            for term, coding in zip(terms, codes, strict=True):
                if coding:
                    first = min(coding, key=order.__getitem__)
                    if coding[first] == 1 and len(term) > 1:
                        return None  # formulaic keeps contrasts here (x + x:f without 1)
                    coding[first] = 2
                    break
        if any(sum(c == 2 for c in coding.values()) > 1 for coding in codes):
            return None  # formulaic codes this term differently from R
        columns: list[Column] = []
        names: list[str] = []
        assign: list[int] = []
        if simple.intercept:
            columns.append(((), ()))
            names.append("(Intercept)")
            assign.append(0)
        for t, (term, coding) in enumerate(zip(terms, codes, strict=True), start=1):
            # the columns of a term: the first variable varies fastest
            combos: list[tuple[tuple[Piece, str], ...]] = [()]
            solo = []
            for var in term:
                if var in levels:
                    first = 0 if coding[var] == 2 else 1
                    options = [
                        ((var, k), f"{var}{lev}") for k, lev in enumerate(levels[var]) if k >= first
                    ]
                else:
                    options = [((var, None), var)]
                solo.append(len(options) == 1)
                combos = [(*combo, option) for option in options for combo in combos]
            for combo in combos:
                pieces = [piece for piece, _ in combo]
                # formulaic multiplies the variables with several columns in this term
                # in order, then the product of those with one column (numeric
                # variables, two-level factors coded by contrasts)
                columns.append(
                    (
                        tuple(p for p, one in zip(pieces, solo, strict=True) if not one),
                        tuple(p for p, one in zip(pieces, solo, strict=True) if one),
                    )
                )
                names.append(":".join(name for _, name in combo))
                assign.append(t)
        return cls(
            numeric=numeric,
            factor_levels=levels,
            columns=columns,
            column_names=names,
            terms=[":".join(term) for term in terms],
            assign=np.asarray(assign, dtype=int),
        )

    def _plan(self) -> None:
        """Group the columns by how they are filled."""
        self._intercept_columns: list[int] = []
        #: runs of consecutive plain numeric columns: (first column, variables)
        self._runs: list[tuple[int, list[str]]] = []
        #: per factor, column of each level code for the single-indicator columns
        self._lookups: dict[str, np.ndarray] = {}
        #: columns that are products of two or more pieces
        self._products: list[tuple[int, Column]] = []
        for j, column in enumerate(self.columns):
            pieces = column[0] + column[1]
            if not pieces:
                self._intercept_columns.append(j)
            elif len(pieces) == 1 and pieces[0][1] is None:
                var = pieces[0][0]
                if self._runs and self._runs[-1][0] + len(self._runs[-1][1]) == j:
                    self._runs[-1][1].append(var)
                else:
                    self._runs.append((j, [var]))
            elif len(pieces) == 1:
                var, level = pieces[0]
                lookup = self._lookups.setdefault(
                    var, np.full(len(self.factor_levels[var]) + 1, -1, dtype=np.intp)
                )
                lookup[level] = j
            else:
                self._products.append((j, column))

    @property
    def has_numeric_products(self) -> bool:
        """Whether a column multiplies two numeric variables (and so can overflow)."""
        return any(
            sum(level is None for _, level in multi + solo) > 1
            for _, (multi, solo) in self._products
        )

    # -- filling -----------------------------------------------------------
    def fill(self, data: pd.DataFrame, codes: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """The model matrix of ``data`` (C-contiguous, float).

        Parameters
        ----------
        data : pandas.DataFrame
            Has every numeric variable; when ``codes`` is None, also every factor as
            a categorical with the training levels.
        codes : mapping, optional
            Level codes (-1 for missing) of each factor variable, when already known.
        """
        n = len(data)
        p = len(self.columns)
        if codes is None:
            codes = {v: np.asarray(data[v].array.codes) for v in self.factor_levels}
        runs = []
        for j0, vars_ in self._runs:
            if n >= _BLOCK_MIN_ROWS and len(vars_) > 1:
                runs.append((j0, [_numeric_block(data, vars_)]))
            else:
                runs.append((j0, [_numeric_values(data, v) for v in vars_]))
        values = {
            v: data[v].to_numpy()
            for _, (multi, solo) in self._products
            for v, level in multi + solo
            if level is None
        }
        X = np.empty((n, p))
        if self._lookups:
            # empty + fill: sequential first touch of the pages, faster than the
            # scattered page faults np.zeros + scatter would cause
            X.fill(0.0)
            for var, lookup in self._lookups.items():
                cols = lookup[codes[var]]  # code -1 (missing) maps to the last slot, -1
                hit = np.flatnonzero(cols >= 0)
                X[hit, cols[hit]] = 1.0
        for j0, sources in runs:
            if len(sources) == 1 and sources[0].ndim == 2:
                # one transposing copy of the whole run (numpy's blocked copy beats
                # row chunks and column-by-column writes into a row-major matrix)
                X[:, j0 : j0 + sources[0].shape[1]] = sources[0]
            else:
                for k, src in enumerate(sources):
                    X[:, j0 + k] = src
        for j in self._intercept_columns:
            X[:, j] = 1.0
        for j, column in self._products:
            X[:, j] = _product(column, values, codes)
        return X


def _product(
    column: Column,
    values: Mapping[str, np.ndarray],
    codes: Mapping[str, np.ndarray],
) -> np.ndarray:
    """The product of a column's pieces, multiplied as formulaic multiplies them.

    The one-column variables first (in order), then the others in order, then the
    product of the first group; each variable in its own dtype (indicators as
    booleans), so that integer products stay integers (``-1 * 0`` is ``0``, where in
    floating point it would be ``-0.0``) and the result has formulaic's bits.
    """

    def piece_values(piece: Piece) -> np.ndarray:
        var, level = piece
        return values[var] if level is None else codes[var] == level

    multi, solo = column
    factors = [piece_values(p) for p in multi]
    if solo:
        solo_product = piece_values(solo[0])
        for p in solo[1:]:
            solo_product = solo_product * piece_values(p)
        factors.append(solo_product)
    out = factors[0]
    for f in factors[1:]:
        out = out * f
    return out


def _numeric_values(data: pd.DataFrame, var: str) -> np.ndarray:
    return data[var].to_numpy(dtype=float)


def shared_block_view(arrays: Sequence[np.ndarray]) -> np.ndarray | None:
    """The float64 vectors ``arrays`` as one ``(n, m)`` view, when they are consecutive,
    equally spaced rows of one buffer (the columns of one pandas block); else None."""
    if len(arrays) < 2:
        return None
    first = arrays[0]
    base = first.base
    n = len(first)
    if base is None or n == 0:
        return None
    for a in arrays:
        if a.dtype != np.float64 or a.ndim != 1 or a.base is not base or a.strides != first.strides:
            return None
    offsets = [a.ctypes.data - first.ctypes.data for a in arrays]
    step = offsets[1]
    if step < n * first.itemsize or offsets != [k * step for k in range(len(arrays))]:
        return None
    # every vector lies inside the one buffer ``base``, ``step`` bytes after the previous
    return np.lib.stride_tricks.as_strided(
        first, shape=(n, len(arrays)), strides=(first.strides[0], step), writeable=False
    )


def _numeric_block(data: pd.DataFrame, vars_: list[str]) -> np.ndarray:
    """The columns ``vars_`` as one ``(n, m)`` float array.

    A view when they are consecutive rows of one float block of pandas (the usual
    layout of a frame built from a 2-D array), else a copy into a column-major array
    (each column written contiguously, cheaper than writing them into the row-major
    model matrix one by one).
    """
    arrays = [data[v].to_numpy() for v in vars_]
    view = shared_block_view(arrays)
    if view is not None:
        return view
    out = np.empty((len(arrays), len(arrays[0])))
    for k, a in enumerate(arrays):
        out[k] = a
    return out.T


def new_data_columns(encoding: NativeEncoding, newdata: pd.DataFrame, rhs: str) -> pd.DataFrame:
    """The numeric variables of ``newdata`` checked for :meth:`NativeEncoding.fill`.

    Raises :class:`~pyglmm.errors.DataError` for a missing or non-numeric column.
    """
    for var in (*encoding.numeric, *encoding.factor_levels):
        if var not in newdata.columns:
            raise DataError(f"cannot encode new data for {rhs!r}: column {var!r} is missing")
    out = {}
    for var in encoding.numeric:
        col = newdata[var]
        if isinstance(col.dtype, pd.CategoricalDtype):
            raise DataError(
                f"cannot encode new data for {rhs!r}: column {var!r} is a factor, "
                "but it was numeric when fitting"
            )
        if isinstance(col.dtype, np.dtype) and col.dtype.kind in "biuf":
            out[var] = col.to_numpy()
        elif pd.api.types.is_numeric_dtype(col.dtype):  # nullable Int64, Float64, boolean
            out[var] = col.to_numpy(dtype=float, na_value=np.nan)
        else:
            raise DataError(
                f"cannot encode new data for {rhs!r}: column {var!r} is not numeric "
                f"(dtype {col.dtype})"
            )
    return pd.DataFrame(out, index=newdata.index)
