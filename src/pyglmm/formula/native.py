"""Model matrices of R formulas on numeric and factor columns, built without formulaic.

A right-hand side is *native* when it is made of an intercept (``1``, ``0``, ``-1``),
bare column names and R's operators on terms: ``+``, ``-`` (term removal), ``:``,
``*``, ``/`` (nesting) and ``^`` (crossing to a degree), with parentheses, e.g.
``x + f``, ``0 + f``, ``x*f + z``, ``a*b*c - a:b``, ``a/b``, ``(a+b+c)^2``. For such a
formula on numeric columns (integer or float) and categorical columns (unordered or
ordered), :class:`NativeEncoding` builds R's ``model.matrix``: the same columns in
the same order, R's column names, term labels and ``assign``. It follows R's
``terms.formula`` and ``model.matrix``:

* the formula is expanded as R's ``terms.formula`` expands it (``a*b`` is
  ``a + b + a:b``; ``a/b`` is ``a + a:b``; ``(a+b)^2`` is ``a + b + a:b``; ``-``
  removes a term; the last of ``0``/``1``/``-1`` decides the intercept), duplicate
  terms are dropped, and the terms are ordered by degree, keeping the order of the
  expansion within a degree; the variables of a term are ordered by their first
  appearance in the formula (``a + b:a`` has the term ``a:b``);
* a factor ``F`` in a term ``T`` is coded by contrasts when ``T`` without ``F`` is
  empty or contained in an earlier term, and by one indicator per level otherwise;
  without an intercept the first factor of the first term that has one is coded by
  indicators of all its levels;
* contrasts are R's ``contr.treatment`` (unordered factors), ``contr.poly``
  (ordered factors), or the ``contrasts=`` choice of ``contr.sum``,
  ``contr.helmert``, ``contr.poly``, ``contr.SAS`` for a variable, with R's column
  names (``fb``; ``f1``, ``f2``; ``f.L``, ``f.Q``, ``f.C``, ``f^4``);
* the columns of an interaction run with its first variable varying fastest.

Anything else (function calls, ``I()``, ``%in%``, ``.``, backticked names, factors
with fewer than two levels or with missing values, nullable extension dtypes,
``contrasts=`` for a variable that is not a factor) is left to formulaic:
:meth:`NativeEncoding.learn` returns None. :func:`parse_simple_rhs` still expands
formulas whose variables are calls (``log(z):a``), so that formulaic can be given
R's terms (:meth:`SimpleRhs.expanded`).
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
from pyglmm.row_threads import map_row_chunks

#: Tokens of a native right-hand side: names, integers, operators, parentheses.
_TOKEN = re.compile(r"\s*(?:([A-Za-z_.][A-Za-z0-9_.]*)|([0-9]+)|([-+*/:^()]))")
#: A sum of plain names, 0 and 1, read without the parser.
_PLAIN_SUM = re.compile(
    r"\s*(?:[A-Za-z_][A-Za-z0-9_.]*|[01])(?:\s*\+\s*(?:[A-Za-z_][A-Za-z0-9_.]*|[01]))*\s*"
)
#: Bare names formulaic may read as something other than a column.
_RESERVED = {"Intercept", "True", "False", "None", "TRUE", "FALSE", "C", "I", "Q"}
#: Below this many rows the numeric columns are copied one by one; above, a run of
#: numeric columns is taken as one 2-D array and copied at once.
_BLOCK_MIN_ROWS = 4096
#: R's contrast functions by the names ``contrasts=`` accepts.
_CONTRAST_KIND = {
    "treatment": "treatment",
    "contr.treatment": "treatment",
    "sum": "sum",
    "contr.sum": "sum",
    "helmert": "helmert",
    "contr.helmert": "helmert",
    "poly": "poly",
    "contr.poly": "poly",
    "sas": "SAS",
    "contr.SAS": "SAS",
}


@dataclass(frozen=True)
class SimpleRhs:
    """A native right-hand side after R's term expansion.

    Attributes
    ----------
    intercept : bool
        Whether the model has an intercept.
    terms : tuple of tuple of str
        The terms in R's order (by degree, then as expanded), each the tuple of its
        variables in order of first appearance in the formula.
    variables : tuple of str
        The variables of the terms, in order of first appearance in the formula.
    calls : bool
        Whether a variable is a call (``log(z)``, ``I(x^2)``), spelled as written;
        such a formula is built by formulaic, from :meth:`expanded`.
    """

    intercept: bool
    terms: tuple[tuple[str, ...], ...]
    variables: tuple[str, ...]
    calls: bool = False

    def expanded(self) -> str:
        """The formula as the sum of its terms in R's order (``1 + a + a:log(z)``).

        formulaic keeps the order of the terms and of the variables of each term as
        written, so that its columns then come in R's order.
        """
        return " + ".join(["1" if self.intercept else "0", *(":".join(t) for t in self.terms)])


class _NotNative(Exception):
    """The right-hand side uses something the native parser does not read."""


class _Parser:
    """Recursive-descent reader of R's formula operators, expanding terms as R does.

    Precedence, loosest first, as in R: binary ``+ -``; ``* /``; ``:``; unary
    ``+ -``; ``^``. Terms are bit masks over the variables in order of first
    appearance (R's ``EncodeVars``); ``0`` and ``1`` set the intercept, with the
    parity flipped on the right of a ``-``.
    """

    def __init__(self, rhs: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        #: whether a variable is a call (then formulaic evaluates the variables)
        self.calls = False
        pos = 0
        rhs = rhs.rstrip()
        while pos < len(rhs):
            m = _TOKEN.match(rhs, pos)
            if not m or m.end() == pos:
                raise _NotNative
            name, number, op = m.groups()
            if name is not None and rhs[m.end() : m.end() + 1] == "(":
                # a call, e.g. log(z), I(x^2): one variable, spelled as written
                end = _closing_parenthesis(rhs, m.end())
                self.tokens.append(("name", rhs[m.start(1) : end]))
                self.calls = True
                pos = end
                continue
            if name is not None:
                if (
                    name == "."
                    or (name[0] == "." and name[1:2].isdigit())
                    or keyword.iskeyword(name)
                    or name in _RESERVED
                ):
                    raise _NotNative
                self.tokens.append(("name", name))
            elif number is not None:
                self.tokens.append(("number", number))
            else:
                self.tokens.append(("op", op))
            pos = m.end()
        self.pos = 0
        self.variables: dict[str, int] = {}
        for kind, text in self.tokens:  # R's ExtractVars: order of first appearance
            if kind == "name":
                self.variables.setdefault(text, len(self.variables))
        self.intercept = True
        self.parity = True

    # -- tokens --------------------------------------------------------------
    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take_op(self, ops: str) -> str | None:
        if self.pos < len(self.tokens):
            kind, text = self.tokens[self.pos]
            if kind == "op" and text in ops:
                self.pos += 1
                return text
        return None

    # -- grammar: each level returns a list of terms (bit masks) -------------
    def parse(self) -> list[int]:
        if not self.tokens:
            raise _NotNative
        terms = self._sum()
        if self.pos != len(self.tokens):
            raise _NotNative
        return terms

    def _sum(self) -> list[int]:
        if self._take_op("-"):  # a leading unary minus removes from nothing
            terms = self._delete([], self._product)
        else:
            self._take_op("+")
            terms = self._product()
        while (op := self._take_op("+-")) is not None:
            if op == "+":
                terms.extend(self._product())
            else:
                terms = self._delete(terms, self._product)
        # trimmed once: the same as R's trimming after each "+", since a removal
        # takes out every copy of a term
        return _trim(terms)

    def _delete(self, terms: list[int], read: Any) -> list[int]:
        self.parity = not self.parity
        removed = set(read())
        self.parity = not self.parity
        return [t for t in terms if t not in removed]

    def _product(self) -> list[int]:
        terms = self._interaction()
        while (op := self._take_op("*/")) is not None:
            right = self._interaction()
            if op == "*":
                terms = _trim([*terms, *right, *(left | r for left in terms for r in right)])
            else:
                whole = 0
                for left in terms:
                    whole |= left
                terms = _trim([*terms, *(whole | r for r in right)])
        return terms

    def _interaction(self) -> list[int]:
        terms = list(self._unary())
        while self._take_op(":"):
            right = self._unary()
            terms = _trim([left | r for left in terms for r in right])
        return terms

    def _unary(self) -> list[int]:
        if self._take_op("-"):
            return self._delete([], self._unary)
        if self._take_op("+"):
            return self._unary()
        return self._power()

    def _power(self) -> list[int]:
        terms = self._atom(allow_constant=True)
        while self._take_op("^"):
            token = self._peek()
            if token is None or token[0] != "number" or int(token[1]) < 2:
                raise _NotNative  # R: invalid power; formulaic reports it
            self.pos += 1
            # R's PowerTerms: cross the terms with themselves power - 1 times
            crossed = terms
            for _ in range(int(token[1]) - 1):
                crossed = _trim([left | r for left in terms for r in crossed])
            terms = crossed
        return terms

    def _atom(self, allow_constant: bool = False) -> list[int]:
        token = self._peek()
        if token is None:
            raise _NotNative
        kind, text = token
        self.pos += 1
        if kind == "name":
            return [1 << self.variables[text]]
        if kind == "number":
            if text not in ("0", "1") or not allow_constant or not self._constant_context():
                raise _NotNative
            self.intercept = (text == "1") == self.parity
            return []
        if text == "(":
            terms = self._sum()
            if not self._take_op(")"):
                raise _NotNative
            return terms
        raise _NotNative

    def _constant_context(self) -> bool:
        """Whether the ``0``/``1`` just read stands alone between ``+``/``-``/parentheses."""
        before = self.tokens[self.pos - 2] if self.pos >= 2 else None
        after = self._peek()
        return (before is None or before in (("op", "+"), ("op", "-"), ("op", "("))) and (
            after is None or after in (("op", "+"), ("op", "-"), ("op", ")"))
        )


def _closing_parenthesis(text: str, start: int) -> int:
    """The index after the parenthesis closing the one at ``text[start]``."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] in "\"'`":
            raise _NotNative  # quoted text may hold parentheses
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i + 1
    raise _NotNative


def _trim(terms: list[int]) -> list[int]:
    """R's ``TrimRepeats``: drop repeated and empty terms, keeping the first."""
    seen: set[int] = set()
    out = []
    for t in terms:
        if t and t not in seen:
            seen.add(t)
            out.append(t)
    return out


def parse_simple_rhs(rhs: str) -> SimpleRhs | None:
    """Expand ``rhs`` as R's ``terms.formula``, or return None if it is not native."""
    if _PLAIN_SUM.fullmatch(rhs):
        return _plain_sum(rhs)
    try:
        parser = _Parser(rhs)
        masks = parser.parse()
    except _NotNative:
        return None
    names = list(parser.variables)
    masks.sort(key=int.bit_count)  # stable: by degree, then as expanded
    terms = tuple(tuple(names[i] for i in _bits(m)) for m in masks)
    used = 0
    for m in masks:
        used |= m
    return SimpleRhs(
        intercept=parser.intercept,
        terms=terms,
        variables=tuple(names[i] for i in _bits(used)),
        calls=parser.calls,
    )


def _bits(mask: int) -> list[int]:
    """The indices of the set bits of ``mask``, in increasing order."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def _plain_sum(rhs: str) -> SimpleRhs | None:
    """:func:`parse_simple_rhs` of a sum of names, ``0`` and ``1`` (``x + z + 0``)."""
    intercept = True
    names: dict[str, None] = {}
    for piece in rhs.split("+"):
        name = piece.strip()
        if name in ("0", "1"):
            intercept = name == "1"
        elif name == "." or name in _RESERVED or keyword.iskeyword(name):
            return None
        else:
            names.setdefault(name, None)
    return SimpleRhs(
        intercept=intercept, terms=tuple((name,) for name in names), variables=tuple(names)
    )


def contrast_matrix(kind: str, n_levels: int) -> np.ndarray:
    """R's contrast matrix ``contr.<kind>(n_levels)`` (levels by columns).

    ``kind`` is ``treatment``, ``SAS``, ``sum``, ``helmert`` or ``poly``.
    """
    k = n_levels
    if kind == "treatment":
        return np.eye(k)[:, 1:]
    if kind == "SAS":
        return np.eye(k)[:, :-1]
    if kind == "sum":
        out = np.zeros((k, k - 1))
        out[: k - 1] = np.eye(k - 1)
        out[k - 1] = -1.0
        return out
    if kind == "helmert":
        out = np.zeros((k, k - 1))
        for j in range(1, k):
            out[:j, j - 1] = -1.0
            out[j, j - 1] = j
        return out
    if kind == "poly":
        # R's make.poly: orthonormal polynomials in the scores 1..k (centred), each
        # column signed so that its leading coefficient is positive
        scores = np.arange(1, k + 1, dtype=float)
        y = scores - scores.mean()
        q, r = np.linalg.qr(np.vander(y, k, increasing=True))
        z = q * np.sign(np.diag(r))
        z /= np.sqrt((z**2).sum(axis=0))
        return z[:, 1:]
    raise ValueError(f"unknown contrast kind {kind!r}")


def contrast_column_names(kind: str, levels: Sequence[Any]) -> list[str]:
    """The suffixes R's ``model.matrix`` gives the columns of ``contr.<kind>``."""
    k = len(levels)
    if kind == "treatment":
        return [str(lev) for lev in levels[1:]]
    if kind == "SAS":
        return [str(lev) for lev in levels[:-1]]
    if kind == "poly":
        named = [".L", ".Q", ".C"]
        return [named[d - 1] if d <= 3 else f"^{d}" for d in range(1, k)]
    return [str(j) for j in range(1, k)]


#: One factor of a model-matrix column: a variable, and for a factor either the code
#: of the level it indicates or the column of its contrast matrix (a numeric
#: variable has neither: its values enter the product).
Piece = tuple[str, int | None, int | None]
#: A model-matrix column: the pieces of variables that have several columns in the
#: term, and those of variables that have one (empty, empty for the intercept).
Column = tuple[tuple[Piece, ...], tuple[Piece, ...]]


@dataclass(frozen=True)
class IndicatorBlock:
    r"""The indicator columns of one factor that make up a whole term of the matrix.

    Columns ``first .. first + size - 1`` of :math:`X` are :math:`F`, with
    :math:`F_{ij} = 1` when row :math:`i` has the level whose column is
    ``first + j``. A GLM fits such a block from the level codes alone
    (:class:`~pyglmm.glm.design.FactorBlockDesign`), without :math:`F` itself.

    Attributes
    ----------
    variable : str
        The factor.
    first, size : int
        The block's first column and its number of columns.
    column_of_level : (levels + 1,) int array
        For each level code, its column of :math:`X` (-1 for a level without one, the
        reference level; the last entry, for code -1, is -1 too).
    """

    variable: str
    first: int
    size: int
    column_of_level: np.ndarray

    def codes(self, level_codes: np.ndarray) -> np.ndarray:
        """The column of each row within the block, -1 for a row without one."""
        cols = self.column_of_level[level_codes]
        return np.where(cols >= 0, cols - self.first, -1)


class NativeEncoding:
    """How to fill the model matrix of a native right-hand side from columns.

    Built by :meth:`learn` from a :class:`SimpleRhs` and the training data; applied
    to the training data and to new data by :meth:`fill`.

    Attributes
    ----------
    numeric : list of str
        The numeric variables.
    factor_levels : dict
        Levels of each factor variable (the categories of the training column).
    contrasts : dict
        Contrast matrix (levels by columns) of each factor coded by contrasts other
        than indicators of levels (sum, Helmert, polynomial contrasts).
    columns : list of Column
        For each column of the matrix, the variables whose product it is, split in
        two groups multiplied separately (both empty for the intercept).
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
        contrasts: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.numeric = numeric
        self.factor_levels = factor_levels
        self.columns = columns
        self.column_names = column_names
        self.terms = terms
        self.assign = assign
        self.contrasts = dict(contrasts or {})
        self._plan()

    # -- learning ----------------------------------------------------------
    @classmethod
    def learn(
        cls, simple: SimpleRhs | None, data: pd.DataFrame, contrasts: Mapping[str, str] | None
    ) -> NativeEncoding | None:
        """The encoding of ``simple`` on ``data``, or None when formulaic must build it.

        Numeric variables must have a numpy integer or float dtype; factors must be
        categoricals with at least two levels and no missing values. ``contrasts``
        (R's names, per variable) must name factors only.
        """
        if simple is None or simple.calls:
            return None
        numeric: list[str] = []
        levels: dict[str, list[Any]] = {}
        kinds: dict[str, str] = {}
        for var in simple.variables:
            if var not in data:
                return None
            col = data[var]
            dtype = col.dtype
            if isinstance(dtype, pd.CategoricalDtype):
                cats = dtype.categories
                if len(cats) < 2 or (col.array.codes < 0).any():
                    return None
                levels[var] = list(cats)
                kinds[var] = "poly" if dtype.ordered else "treatment"
            elif isinstance(dtype, np.dtype) and dtype.kind in "iuf":
                numeric.append(var)
            else:
                return None
        for var, name in (contrasts or {}).items():
            if var in simple.variables:
                if var not in levels or name not in _CONTRAST_KIND:
                    return None
                kinds[var] = _CONTRAST_KIND[name]
        return cls._from_terms(simple, numeric, levels, kinds)

    @classmethod
    def _from_terms(
        cls,
        simple: SimpleRhs,
        numeric: list[str],
        levels: dict[str, list[Any]],
        kinds: dict[str, str],
    ) -> NativeEncoding:
        terms = simple.terms
        # R's factor pattern (TermCode): 1 = contrasts, 2 = one column per level
        codes: list[dict[str, int]] = []
        for t, term in enumerate(terms):
            coding = {}
            for var in term:
                if var not in levels:
                    continue
                margin = set(term) - {var}
                if not margin or any(margin <= set(terms[u]) for u in range(t)):
                    coding[var] = 1
                else:
                    coding[var] = 2
            codes.append(coding)
        if not simple.intercept:
            # R's model.matrix: without an intercept the first factor (in order of
            # the variables) of the first term that has one gets all its levels
            for term, coding in zip(terms, codes, strict=True):
                if coding:
                    coding[next(v for v in term if v in coding)] = 2
                    break
        tables: dict[str, np.ndarray] = {}
        suffixes: dict[str, list[str]] = {}
        for var, kind in kinds.items():
            suffixes[var] = contrast_column_names(kind, levels[var])
            if kind not in ("treatment", "SAS"):
                tables[var] = contrast_matrix(kind, len(levels[var]))
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
                options: list[tuple[Piece, str]]
                if var not in levels:
                    options = [((var, None, None), var)]
                elif coding[var] == 2:
                    options = [((var, k, None), f"{var}{lev}") for k, lev in enumerate(levels[var])]
                elif var in tables:
                    options = [
                        ((var, None, k), f"{var}{suffix}") for k, suffix in enumerate(suffixes[var])
                    ]
                else:  # treatment (SAS) contrasts: indicators of all levels but the first (last)
                    first = 1 if kinds[var] == "treatment" else 0
                    options = [
                        ((var, first + k, None), f"{var}{suffix}")
                        for k, suffix in enumerate(suffixes[var])
                    ]
                solo.append(len(options) == 1)
                combos = [(*combo, option) for option in options for combo in combos]
            for combo in combos:
                pieces = [piece for piece, _ in combo]
                # the variables with several columns in this term are multiplied in
                # order, then by the product of those with one column (formulaic's
                # order, so that both give the same bits where they agree)
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
            contrasts=tables,
        )

    def _plan(self) -> None:
        """Group the columns by how they are filled."""
        self._intercept_columns: list[int] = []
        #: runs of consecutive plain numeric columns: (first column, variables)
        self._runs: list[tuple[int, list[str]]] = []
        #: per factor, column of each level code for the single-indicator columns
        self._lookups: dict[str, np.ndarray] = {}
        #: columns that are products of two or more pieces, or contrast columns
        self._products: list[tuple[int, Column]] = []
        #: per factor with a contrast matrix, its rows with a row of NaN for code -1
        self._tables = {
            var: np.vstack([table, np.full((1, table.shape[1]), np.nan)])
            for var, table in self.contrasts.items()
        }
        for j, column in enumerate(self.columns):
            pieces = column[0] + column[1]
            if not pieces:
                self._intercept_columns.append(j)
            elif len(pieces) == 1 and pieces[0][1] is None and pieces[0][2] is None:
                var = pieces[0][0]
                if self._runs and self._runs[-1][0] + len(self._runs[-1][1]) == j:
                    self._runs[-1][1].append(var)
                else:
                    self._runs.append((j, [var]))
            elif len(pieces) == 1 and pieces[0][1] is not None:
                var, level, _ = pieces[0]
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
            sum(level is None and column is None for _, level, column in multi + solo) > 1
            for _, (multi, solo) in self._products
        )

    def indicator_block(self, min_columns: int) -> IndicatorBlock | None:
        """The largest :class:`IndicatorBlock` of at least ``min_columns`` columns: the
        indicator columns of one factor that are, by themselves, all the columns of one
        term (``f`` in ``y ~ x + f``, not ``x:f``); None when there is none."""
        best: IndicatorBlock | None = None
        for var, lookup in self._lookups.items():
            cols = np.sort(lookup[lookup >= 0])
            if len(cols) < max(min_columns, 1) or cols[-1] - cols[0] + 1 != len(cols):
                continue
            term = self.assign[cols[0]]
            if np.count_nonzero(self.assign == term) != len(cols) or np.any(
                self.assign[cols] != term
            ):
                continue
            if best is None or len(cols) > best.size:
                best = IndicatorBlock(var, int(cols[0]), len(cols), lookup)
        return best

    @property
    def plain_variables(self) -> frozenset[str]:
        """The numeric variables copied as they are into columns of the matrix."""
        return frozenset(var for _, vars_ in self._runs for var in vars_)

    # -- filling -----------------------------------------------------------
    def fill(
        self,
        data: pd.DataFrame,
        codes: Mapping[str, np.ndarray] | None = None,
        *,
        without: IndicatorBlock | None = None,
    ) -> np.ndarray:
        """The model matrix of ``data`` (C-contiguous, float); see :meth:`fill_checked`."""
        return self.fill_checked(data, codes, without=without)[0]

    def fill_checked(
        self,
        data: pd.DataFrame,
        codes: Mapping[str, np.ndarray] | None = None,
        *,
        without: IndicatorBlock | None = None,
    ) -> tuple[np.ndarray, bool]:
        """The model matrix of ``data`` (C-contiguous, float), and whether the columns of
        :attr:`plain_variables` are all finite (checked chunk by chunk while in cache:
        the sum of a chunk is finite only when each of its values is).

        Parameters
        ----------
        data : pandas.DataFrame
            Has every numeric variable; when ``codes`` is None, also every factor as
            a categorical with the training levels.
        codes : mapping, optional
            Level codes (-1 for missing) of each factor variable, when already known.
        without : IndicatorBlock, optional
            Leave out the columns of this block (of :meth:`indicator_block`): the result
            has the other columns, in order.
        """
        n = len(data)
        p = len(self.columns)
        # where each column goes (-1: left out)
        dest = np.arange(p)
        if without is not None:
            dest[without.first + without.size :] -= without.size
            dest[without.first : without.first + without.size] = -1
            p -= without.size
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
            for v, level, column in multi + solo
            if level is None and column is None
        }
        for var, table in self._tables.items():
            values[var] = table[codes[var]]  # code -1 (missing) takes the row of NaN
        lookups = self._lookups
        if without is not None:
            lookups = {
                var: np.where(lookup >= 0, dest[lookup], -1)
                for var, lookup in lookups.items()
                if var != without.variable
            }
            runs = [(int(dest[j0]), sources) for j0, sources in runs]
        X = np.empty((n, p))
        scatter_indicators(X, lookups, codes)
        intercepts = [int(dest[j]) for j in self._intercept_columns]

        def fill_rows(lo: int, hi: int) -> bool:
            # the runs and the intercept of a chunk of rows while it is in cache; numpy's
            # copies release the GIL, so the chunks share the cores
            finite = True
            for j0, sources in runs:
                if len(sources) == 1 and sources[0].ndim == 2:
                    X[lo:hi, j0 : j0 + sources[0].shape[1]] = sources[0][lo:hi]
                else:
                    for k, src in enumerate(sources):
                        X[lo:hi, j0 + k] = src[lo:hi]
                for src in sources:  # column sums of the source rows, read along columns
                    finite = finite and bool(np.isfinite(np.add.reduce(src[lo:hi], axis=0)).all())
            for j in intercepts:
                X[lo:hi, j] = 1.0
            return finite

        if n >= _BLOCK_MIN_ROWS:
            runs_finite = all(map_row_chunks(fill_rows, n))
        else:
            runs_finite = fill_rows(0, n)
        for j, column in self._products:
            X[:, dest[j]] = _product(column, values, codes)
        return X, runs_finite


def scatter_indicators(
    X: np.ndarray, column_of_level: Mapping[str, np.ndarray], codes: Mapping[str, np.ndarray]
) -> None:
    """Zero ``X`` (when there are indicator columns) and set its indicators of factor levels:
    ``X[i, column_of_level[v][codes[v][i]]] = 1``, where that column is not -1 (the
    lookup's last slot, -1, serves code -1, a missing value)."""
    if not column_of_level:
        return
    # empty + fill: sequential first touch of the pages, much faster than the scattered
    # page faults that np.zeros + scatter would cause
    X.fill(0.0)
    for var, lookup in column_of_level.items():
        cols = lookup[codes[var]]
        hit = np.flatnonzero(cols >= 0)
        X[hit, cols[hit]] = 1.0


def _product(
    column: Column,
    values: Mapping[str, np.ndarray],
    codes: Mapping[str, np.ndarray],
) -> np.ndarray:
    """The product of a column's pieces, multiplied as formulaic multiplies them.

    The one-column variables first (in order), then the others in order, then the
    product of the first group; each variable in its own dtype (indicators as
    booleans), so that integer products stay integers (``-1 * 0`` is ``0``, where in
    floating point it would be ``-0.0``) and the result has formulaic's bits where
    formulaic codes the formula as R does. ``values`` holds the numeric variables and,
    for a factor with a contrast matrix, its rows for each observation.
    """

    def piece_values(piece: Piece) -> np.ndarray:
        var, level, column = piece
        if level is not None:
            return codes[var] == level
        return values[var] if column is None else values[var][:, column]

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
