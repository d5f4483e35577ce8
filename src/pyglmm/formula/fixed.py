"""The fixed-effects model matrix: formulaic underneath, R's names on top.

:class:`FixedDesign` learns the encoding of a right-hand side on the training
data once (factor levels, contrasts, stateful transforms such as ``center(x)``
or ``poly(x, 2)``) and applies the same encoding to new data in
:meth:`FixedDesign.transform`, so ``predict(newdata)`` agrees with the fit.
Columns are named as R's ``model.matrix`` names them: ``(Intercept)``,
``resSuva``, ``dur10-14``, ``log(n)``, ``I(n^2)``, ``MachineB:Worker2``.

Right-hand sides of bare numeric and factor columns with R's operators (``+``,
``-``, ``:``, ``*``, ``/``, ``^``) are built without formulaic by
:mod:`pyglmm.formula.native`, following R's ``terms.formula`` and ``model.matrix``.
The others go through formulaic. When R's expansion of such a formula is known
(calls such as ``log(z)``, ``I(x^2)``, ``poly(x, 2)``, ``factor(k)`` as variables),
formulaic is given its terms in R's order and, with treatment contrasts, builds
indicators of every level of which R's columns are kept (:meth:`FixedDesign._r_columns`),
so that the columns are R's there too. Ordered factors get polynomial contrasts, as in R.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from formulaic import Formula, ModelSpec

from pyglmm.errors import DataError, FormulaError
from pyglmm.formula.expressions import referenced_names
from pyglmm.formula.levels import as_r_factor
from pyglmm.formula.native import (
    IndicatorBlock,
    NativeEncoding,
    new_data_columns,
    parse_simple_rhs,
    scatter_indicators,
)

_FACTOR_CALL = re.compile(r"\b(?:as\.factor|factor)\(")
#: Above this many rows, simple designs skip formulaic's pandas assembly (see
#: :meth:`FixedDesign._learn_on_sample`).
_FAST_PATH_MIN_ROWS = 5000
_LEVEL_SUFFIX = re.compile(r"^(?P<name>.*)\[(?P<kind>[A-Z]?\.)?(?P<level>[^\[\]]*)\]$")

#: Build simple right-hand sides without formulaic (see :mod:`pyglmm.formula.native`).
#: Tests set this to False to compare with formulaic's matrices.
_NATIVE = True

#: R's contrast names accepted in ``contrasts=`` and their formulaic spelling.
CONTRASTS = {
    "treatment": "contr.treatment",
    "contr.treatment": "contr.treatment",
    "sum": "contr.sum",
    "contr.sum": "contr.sum",
    "helmert": "contr.helmert",
    "contr.helmert": "contr.helmert",
    "poly": "contr.poly",
    "contr.poly": "contr.poly",
    "sas": "contr.treatment(base=-1)",
    "contr.SAS": "contr.treatment(base=-1)",
}


def _replace_in_I(text: str) -> str:
    """Turn R's power ``^`` into Python's ``**`` inside ``I( ... )`` calls."""
    out, i = [], 0
    while i < len(text):
        m = re.compile(r"\bI\(").search(text, i)
        if not m:
            out.append(text[i:])
            break
        out.append(text[i : m.end()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            j += 1
        out.append(text[m.end() : j].replace("^", "**"))
        i = j
    return "".join(out)


def _check_contrasts(contrasts: Mapping[str, str] | None) -> None:
    """Raise :class:`~pyglmm.errors.FormulaError` for a contrast name R does not know."""
    for var, kind in (contrasts or {}).items():
        if kind not in CONTRASTS:
            raise FormulaError(
                f"unknown contrasts {kind!r} for {var!r}; use one of {sorted(set(CONTRASTS))}"
            )


def _apply_contrasts(
    rhs: str,
    contrasts: Mapping[str, str] | None,
    display: dict[str, str],
    levels: Mapping[str, Sequence[Any]] | None = None,
) -> str:
    if not contrasts:
        return rhs
    _check_contrasts(contrasts)
    for var, kind in contrasts.items():
        pattern = re.compile(rf"(?<![\w.(]){re.escape(var)}(?![\w.(\[])")
        spelling = CONTRASTS[kind]
        if CONTRASTS[kind] == CONTRASTS["sas"] and levels and levels.get(var):
            # formulaic's base is a level: R's contr.SAS takes the last one
            spelling = f"contr.treatment(base={levels[var][-1]!r})"
        coded = f"C({var}, {spelling})"
        rhs = pattern.sub(coded, rhs)
        display[coded] = var
    return rhs


def to_formulaic(
    rhs: str,
    contrasts: Mapping[str, str] | None = None,
    levels: Mapping[str, Sequence[Any]] | None = None,
) -> tuple[str, dict]:
    """Translate an R right-hand side to formulaic's dialect.

    Returns the translated text and a map from formulaic's spelling of a factor
    expression back to the user's (``C(x)`` -> ``factor(x)``). ``levels`` (the
    levels of factor columns) spells ``contr.SAS`` with its reference level.
    """
    display: dict[str, str] = {}
    text = _replace_in_I(rhs)
    for m in list(_FACTOR_CALL.finditer(text)):
        start = m.end()
        depth, j = 1, start
        while j < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            j += 1
        inner = text[start : j - 1]
        display[f"C({inner})"] = text[m.start() : j]
    text = _FACTOR_CALL.sub("C(", text)
    text = _apply_contrasts(text, contrasts, display, levels)
    return text, display


def _split_colon(name: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, c in enumerate(name):
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == ":" and depth == 0:
            parts.append(name[start:i])
            start = i + 1
    parts.append(name[start:])
    return parts


def _r_expression(expr: str, display: Mapping[str, str]) -> str:
    expr = display.get(expr, expr)
    return expr.replace(" ** ", "^").replace("**", "^")


class FixedDesign:
    """Encoding of a fixed-effects right-hand side, learned once, applied to any data.

    Parameters
    ----------
    rhs : str
        Right-hand side in R's formula language (``"dur + res + educ"``).
    data : pandas.DataFrame
        Training data; string and boolean columns should already be R factors.
    contrasts : mapping, optional
        Per-variable contrasts, R's names: ``{"res": "contr.sum"}``. Treatment
        contrasts (first level as reference) are the default.
    columns : mapping, optional
        Columns of ``data`` already looked up (name to Series), to save pandas
        lookups when building the matrix directly.
    verify_finite : frozenset of str, optional
        Numeric variables whose values have not been checked: :attr:`verified_finite`
        says whether the matrix was filled from them and showed them all finite.
    indicator_block_min : int, optional
        When given and the matrix is built directly, a factor term with at least this
        many indicator columns (:meth:`~pyglmm.formula.native.NativeEncoding.indicator_block`)
        is not filled in: :attr:`matrix` is None, and :attr:`other_columns` and
        :attr:`indicator_block` describe :math:`X` (a GLM fits such a term from the
        level codes).

    Attributes
    ----------
    matrix : numpy.ndarray or None
        The model matrix of the training data (None when an indicator block was left out).
    indicator_block : IndicatorBlock or None
        The factor term left out of :attr:`matrix`.
    other_columns : numpy.ndarray or None
        With an indicator block, the other columns of :math:`X`, in order.
    column_names : list of str
        R-style column names of the model matrix.
    terms : list of str
        Term labels, intercept excluded (R's ``attr(terms, "term.labels")``).
    assign : numpy.ndarray
        For each column, the 1-based index of its term in ``terms`` (0: intercept).
    """

    def __init__(
        self,
        rhs: str,
        data: pd.DataFrame,
        contrasts: Mapping[str, str] | None = None,
        *,
        columns: Mapping[str, pd.Series] | None = None,
        indicator_block_min: int | None = None,
        verify_finite: frozenset[str] = frozenset(),
    ) -> None:
        self.rhs = rhs
        #: whether the variables of ``verify_finite`` were seen to be finite while filling
        self.verified_finite = not verify_finite
        self.indicator_block: IndicatorBlock | None = None
        self.other_columns: np.ndarray | None = None
        self.contrasts = dict(contrasts or {})
        _check_contrasts(self.contrasts)
        self._spec: ModelSpec | None = None
        #: the encoding when the matrix is built without formulaic (simple formulas)
        self._native: NativeEncoding | None = None
        #: True when the matrix was filled directly, not by formulaic
        self.built_directly = False
        #: formulaic's matrix has indicators of every level (see _r_columns)
        self._all_levels = False
        #: the columns of formulaic's matrix that R's model.matrix has (None: all)
        self._keep: np.ndarray | None = None
        #: the right-hand side expanded as R's terms.formula (None: not read natively)
        simple = parse_simple_rhs(rhs)
        if _NATIVE:
            source = _Columns(data, columns)
            self._native = NativeEncoding.learn(simple, source, self.contrasts)
        if self._native is not None:
            native = self._native
            self._factor_levels: dict[str, list[Any]] = native.factor_levels
            block = (
                None if indicator_block_min is None else native.indicator_block(indicator_block_min)
            )
            filled, runs_finite = native.fill_checked(source, without=block)
            if verify_finite:
                self.verified_finite = runs_finite and verify_finite <= native.plain_variables
            if block is None:
                self.matrix = filled
            else:
                self.indicator_block = block
                self.other_columns = filled
                self.matrix = None
            self.column_names = native.column_names
            self.terms = native.terms
            self.assign = native.assign
            self.built_directly = True
            return
        # only the factors this right-hand side uses (not, e.g., grouping factors)
        used = set(referenced_names(rhs))
        # R codes ordered factors by polynomial contrasts unless told otherwise
        coding = dict(self.contrasts)
        for col in data.columns:
            dtype = data[col].dtype
            if col in used and col not in coding and isinstance(dtype, pd.CategoricalDtype):
                if dtype.ordered:
                    coding[col] = "contr.poly"
        self._factor_levels = {
            col: list(data[col].cat.categories)
            for col in data.columns
            if col in used and isinstance(data[col].dtype, pd.CategoricalDtype)
        }
        # formulaic keeps the order of terms and variables as written: give it R's
        self._formulaic_rhs, self._display = to_formulaic(
            rhs if simple is None else simple.expanded(), coding, self._factor_levels
        )
        # with treatment contrasts, R's columns are among formulaic's indicators of
        # every level: take all and keep R's (see _r_columns)
        self._all_levels = simple is not None and all(
            CONTRASTS[kind] == CONTRASTS["treatment"] for var, kind in coding.items() if var in used
        )
        fast = len(data) > _FAST_PATH_MIN_ROWS and self._learn_on_sample(data)
        if not fast:
            try:
                matrix = Formula(self._formulaic_rhs).get_model_matrix(
                    data, output="pandas", na_action="ignore", **self._rank_option
                )
            except Exception as exc:  # formulaic raises many kinds; re-raise with context
                raise FormulaError(f"cannot build the model matrix for {rhs!r}: {exc}") from None
            self._spec = matrix.model_spec
            self._formulaic_names = list(matrix.columns)
            self.matrix = np.ascontiguousarray(matrix.to_numpy(dtype=float))
        if self._all_levels:
            self._keep = self._r_columns()
            self.matrix = np.ascontiguousarray(self.matrix[:, self._keep])
        self.terms, self.assign = self._term_structure()
        self.column_names = self._r_column_names()

    @property
    def spec(self) -> ModelSpec:
        """formulaic's model spec of this encoding.

        For a design built without formulaic it is learned on demand from one row
        per factor level (the encoding of a native formula has no other state), so
        that ``spec.transform_state`` (empty) and the rest of formulaic's interface
        stay available. That spec is formulaic's coding of the expanded formula,
        whose columns can differ from R's (``a:b`` without the main effects:
        formulaic keeps a full-rank matrix); :attr:`matrix` and :meth:`transform`
        follow R.
        """
        if self._spec is None:
            self._spec = self._spec_of_levels()
        return self._spec

    def _spec_of_levels(self) -> ModelSpec:
        native = self._native
        assert native is not None  # formulaic designs set _spec when built
        rows = max([2, *(len(lv) for lv in native.factor_levels.values())])
        frame = {v: np.zeros(rows) for v in native.numeric}
        for v, levels in native.factor_levels.items():
            codes = np.arange(rows) % len(levels)
            frame[v] = pd.Categorical.from_codes(codes, categories=levels)
        simple = parse_simple_rhs(self.rhs)
        assert simple is not None  # native designs have native right-hand sides
        formulaic_rhs, _ = to_formulaic(simple.expanded(), self.contrasts)
        matrix = Formula(formulaic_rhs).get_model_matrix(
            pd.DataFrame(frame), output="pandas", na_action="ignore"
        )
        return matrix.model_spec

    def matrix_is_finite(self, finite_variables: set[str] | frozenset[str]) -> bool | None:
        """Whether :attr:`matrix` is finite, when that follows from its variables.

        True when the matrix was built directly and every numeric variable it uses is
        in ``finite_variables`` (its columns are then products of finite values and
        0/1 indicators, with no product of two numeric variables that could
        overflow); None when the matrix itself has to be checked.
        """
        native = self._native
        if native is None or native.has_numeric_products:
            return None
        return True if all(v in finite_variables for v in native.numeric) else None

    # -- fast path for large data -------------------------------------------
    def _learn_on_sample(self, data: pd.DataFrame) -> bool:
        """Build the model matrix without formulaic's per-column pandas work.

        Applies when every column of the model matrix is a product of plain
        numeric columns and indicator columns of factor levels (``x``,
        ``f[T.b]``, ``x:f[T.b]``): the encoding is learned by formulaic on a
        sample holding every factor level (plain columns carry no state), the
        columns are filled directly into a row-major array, and the sample
        rows are checked against formulaic's own matrix. Returns False (and the
        caller uses formulaic on all rows) whenever this does not apply.
        """
        first_rows = np.arange(min(len(data), 500))
        extra = []
        for col in self._factor_levels:
            codes = data[col].cat.codes.to_numpy()
            _, first = np.unique(codes, return_index=True)
            extra.append(first)
        rows = np.unique(np.concatenate([first_rows, *extra]))
        sample = data.iloc[rows]
        try:
            matrix = Formula(self._formulaic_rhs).get_model_matrix(
                sample, output="pandas", na_action="ignore", **self._rank_option
            )
        except Exception:
            return False
        names = list(matrix.columns)
        level_names = {c: [str(v) for v in lv] for c, lv in self._factor_levels.items()}
        plan = []
        for name in names:
            if name == "Intercept":
                plan.append([])
                continue
            pieces = []
            for piece in _split_colon(name):
                if piece in data.columns and not isinstance(data[piece].dtype, pd.CategoricalDtype):
                    if not pd.api.types.is_numeric_dtype(data[piece].dtype):
                        return False
                    pieces.append((piece, None))
                    continue
                m = _LEVEL_SUFFIX.match(piece)
                if (
                    not m
                    or m.group("kind") not in (None, "T.")
                    or m.group("name") not in (self._factor_levels)
                ):
                    return False
                levels = level_names[m.group("name")]
                if m.group("level") not in levels:
                    return False
                pieces.append((m.group("name"), levels.index(m.group("level"))))
            plan.append(pieces)
        n = len(data)
        codes_of = {c: data[c].cat.codes.to_numpy() for c in self._factor_levels}
        values_of: dict[str, np.ndarray] = {}
        for pieces in plan:
            for var, level in pieces:
                if level is None and var not in values_of:
                    values_of[var] = data[var].to_numpy(dtype=float)
        # indicator columns of one factor alone are set by one scatter per factor;
        # the other columns are products, filled in row chunks that stay in cache
        # (column-by-column writes into a row-major matrix would stream all of it
        # through memory once per column)
        column_of_level: dict[str, np.ndarray] = {}
        products = []
        for j, pieces in enumerate(plan):
            if len(pieces) == 1 and pieces[0][1] is not None:
                var, level = pieces[0]
                lookup = column_of_level.setdefault(
                    var, np.full(len(level_names[var]) + 1, -1, dtype=np.intp)
                )
                lookup[level] = j
            else:
                products.append((j, pieces))
        X = np.empty((n, len(names)))
        scatter_indicators(X, column_of_level, codes_of)
        chunk = max(1, 2**18 // max(1, len(names)))
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            block = X[start:stop]
            for j, pieces in products:
                if not pieces:  # the intercept
                    block[:, j] = 1.0
                    continue
                var, level = pieces[0]
                if len(pieces) == 1:  # a plain numeric column (indicators are set above)
                    block[:, j] = values_of[var][start:stop]
                    continue
                col = (
                    values_of[var][start:stop].copy()
                    if level is None
                    else (codes_of[var][start:stop] == level).astype(float)
                )
                for var, level in pieces[1:]:
                    if level is None:
                        col *= values_of[var][start:stop]
                    else:
                        col *= codes_of[var][start:stop] == level
                block[:, j] = col
        if not np.array_equal(X[rows], matrix.to_numpy(dtype=float), equal_nan=True):
            return False
        self._spec = matrix.model_spec
        self._formulaic_names = names
        self.matrix = X
        self.built_directly = True
        return True

    @property
    def _rank_option(self) -> dict[str, bool]:
        """formulaic's option for indicators of every level (see :meth:`_r_columns`)."""
        return {"ensure_full_rank": False} if self._all_levels else {}

    def _r_columns(self) -> np.ndarray:
        """The columns of formulaic's all-levels matrix that R's ``model.matrix`` has.

        R's rule (as :mod:`pyglmm.formula.native`): a factor in a term is coded by
        treatment contrasts (its first level dropped) when the term without it is
        empty or in an earlier term, else by indicators of all its levels; without
        an intercept the first factor of the first term with one has all its levels.
        """
        spec = self.spec
        levels = {str(f): c.levels for f, c in spec.factor_contrasts.items()}
        intercept = any(str(t) == "1" for t in spec.term_indices)
        keep: list[int] = []
        earlier: list[set[str]] = []
        first_factor_done = intercept
        for term, cols in spec.term_indices.items():
            variables = [str(f) for f in term.factors]
            if str(term) == "1":
                keep.extend(cols)
                continue
            indicators = set()
            for v in variables:
                if v not in levels:
                    continue
                margin = set(variables) - {v}
                if margin and not any(margin <= e for e in earlier):
                    indicators.add(v)
            if not first_factor_done and any(v in levels for v in variables):
                indicators.add(next(v for v in variables if v in levels))
                first_factor_done = True
            earlier.append(set(variables))
            for j in cols:
                pieces = _split_colon(self._formulaic_names[j])
                if all(
                    v not in levels or v in indicators or piece != f"{v}[{levels[v][0]}]"
                    for v, piece in zip(variables, pieces, strict=True)
                ):
                    keep.append(j)
        return np.asarray(keep, dtype=np.intp)

    # -- naming ------------------------------------------------------------
    def _kept_names(self) -> list[str]:
        if self._keep is None:
            return self._formulaic_names
        return [self._formulaic_names[j] for j in self._keep]

    def _term_structure(self) -> tuple[list[str], np.ndarray]:
        terms: list[str] = []
        assign = np.zeros(len(self._formulaic_names), dtype=int)
        for term, cols in self.spec.term_indices.items():
            label = str(term)
            if label == "1":
                continue
            pieces = [_r_expression(p, self._display) for p in _split_colon(label)]
            terms.append(":".join(pieces))
            assign[list(cols)] = len(terms)
        if self._keep is not None:
            assign = assign[self._keep]
        return terms, assign

    def _r_column_names(self) -> list[str]:
        names = []
        index_within: dict[str, list[str]] = {}
        for col in self._kept_names():
            if col == "Intercept":
                names.append("(Intercept)")
                continue
            out = []
            for piece in _split_colon(col):
                m = _LEVEL_SUFFIX.match(piece)
                if not m:
                    out.append(_r_expression(piece, self._display))
                    continue
                base = _r_expression(m.group("name"), self._display)
                kind, level = m.group("kind") or "", m.group("level")
                if kind in ("S.", "H."):
                    seen = index_within.setdefault(m.group("name"), [])
                    if level not in seen:
                        seen.append(level)
                    level = str(seen.index(level) + 1)
                elif kind == ".":
                    level = "." + level
                out.append(f"{base}{level}")
            names.append(":".join(out))
        return names

    @property
    def has_intercept(self) -> bool:
        """Whether the model matrix has an intercept column."""
        return "(Intercept)" in self.column_names

    # -- new data ----------------------------------------------------------
    def transform(self, newdata: pd.DataFrame) -> np.ndarray:
        """Model matrix of ``newdata`` with the training encoding.

        Factor columns are coded with the training levels; a level not seen in
        training is an error that names it.
        """
        native = self._native
        if native is not None:
            data = new_data_columns(native, newdata, self.rhs)
            codes = {
                col: _new_factor(newdata[col], col, levels).cat.codes.to_numpy()
                for col, levels in native.factor_levels.items()
            }
            return native.fill(data, codes)
        data = newdata.copy()
        for col, levels in self._factor_levels.items():
            if col not in data.columns:
                continue
            data[col] = _new_factor(data[col], col, levels)
        try:
            mm = self.spec.get_model_matrix(data, output="pandas", na_action="ignore")
        except Exception as exc:
            raise DataError(f"cannot encode new data for {self.rhs!r}: {exc}") from None
        matrix = mm.to_numpy(dtype=float)
        return np.ascontiguousarray(matrix if self._keep is None else matrix[:, self._keep])


class _Columns:
    """Read access to the columns of a data frame, through Series already looked up."""

    def __init__(self, data: pd.DataFrame, columns: Mapping[str, pd.Series] | None) -> None:
        self._data = data
        self._columns = dict(columns or {})
        self.columns = data.columns

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, name: str) -> bool:
        return name in self._columns or name in self.columns

    def __getitem__(self, name: str) -> pd.Series:
        column = self._columns.get(name)
        return self._data[name] if column is None else column


def _new_factor(values: pd.Series, col: str, levels: list[Any]) -> pd.Series:
    """A column of new data as a factor with the training ``levels``.

    Raises :class:`~pyglmm.errors.DataError` naming a level not seen in training.
    """
    index = values.index
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    unknown = set(pd.unique(values.dropna())) - set(levels)
    if unknown:
        # numbers given for a numeric-coded factor: compare as strings too
        as_str = {str(v) for v in levels}
        if not {str(u) for u in unknown} <= as_str:
            raise DataError(
                f"factor {col!r} has new level(s) {sorted(map(str, unknown))} "
                f"not seen when fitting; known levels: {list(map(str, levels))}"
            )
        mapping = {str(v): v for v in levels}
        values = values.map(lambda v, m=mapping: m.get(str(v), v))
    return as_r_factor(pd.Series(values, index=index, name=col), levels)
