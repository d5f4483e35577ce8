"""Random-effects bars to random-effects terms, as lme4's ``mkReTrms`` builds them.

* ``(x || g)`` is split as lme4's ``expandDoubleVerts`` splits it: ``(1 | g)``
  for the intercept and ``(0 + t | g)`` for every other term ``t`` of ``x``.
* ``(x | g1/g2)`` becomes ``(x | g2:g1)`` and ``(x | g1)`` (R's ``g1/g2 = g1 + g2 %in% g1``,
  which lme4 names ``g2:g1``); ``g1/g2/g3`` recursively.
* A grouping expression ``g1:g2`` is the interaction factor; its levels are the
  combinations present in the data, ordered with the first factor varying slowest
  (R's ``g1:g2`` followed by dropping unused levels); labels ``"a:b"``.
* Grouping variables that are numbers are treated as factors (levels in numeric
  order, labelled as R prints them).
* Terms are ordered by number of levels, largest first (stable), as lme4 does.

The left-hand side of each bar is a model formula evaluated on the frame's data
with :class:`pyglmm.formula.fixed.FixedDesign` (R column names, treatment contrasts;
``(0 + f | g)`` gives one indicator per level of the factor ``f``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pyglmm.errors import DataError, FormulaError
from pyglmm.formula.fixed import FixedDesign
from pyglmm.formula.levels import as_r_factor
from pyglmm.formula.parse import RandomBar, split_top_level
from pyglmm.mixed.remat import ReMat


@dataclass(frozen=True)
class ExpandedBar:
    """One bar after ``||`` and ``/`` expansion: ``(lhs | group)``, group a ``:``-product."""

    lhs: str
    group: str
    factors: tuple[str, ...]

    def __str__(self) -> str:
        return f"({self.lhs} | {self.group})"


def _nesting(group: str) -> list[tuple[str, ...]]:
    """``"a/b/c"`` -> ``[("c","b","a")…]``: the factor tuples lme4 makes from ``/``."""
    parts = [p.strip() for p in group.split("/")]
    if any(not p for p in parts):
        raise FormulaError(f"cannot read the grouping expression {group!r}")
    out: list[tuple[str, ...]] = []
    # a/b/c -> c:b:a? lme4 (via R's terms) names a/b as "b:a" and a/b/c as "c:b:a"
    for i in range(len(parts), 0, -1):
        chain: list[str] = []
        for p in reversed(parts[:i]):
            chain.extend(f.strip() for f in p.split(":"))
        out.append(tuple(chain))
    return out


def expand_bars(bars: list[RandomBar]) -> list[ExpandedBar]:
    """Apply lme4's ``||`` and ``/`` expansions (in lme4's order)."""
    out: list[ExpandedBar] = []
    for bar in bars:
        lhs = bar.lhs.strip()
        if bar.correlated:
            lhss = [lhs]
        else:
            terms = split_top_level(lhs, "+")
            no_icpt = any(t in ("0", "-1") or t.endswith("-1") for t in terms)
            terms = [t.removesuffix("-1").strip() for t in terms]
            terms = [t for t in terms if t not in ("0", "1", "")]
            lhss = ([] if no_icpt else ["1"]) + [f"0 + {t}" for t in terms]
            if not lhss:
                raise FormulaError(f"random-effects term {bar} has no random effects")
        for factors in _nesting(bar.group):
            if any(not re.fullmatch(r"[A-Za-z_.][A-Za-z0-9_.]*", f) for f in factors):
                raise FormulaError(
                    f"grouping factor {':'.join(factors)!r} in {bar} must be a column name "
                    "(or columns joined by ':' and '/')"
                )
            for lh in lhss:
                out.append(ExpandedBar(lh, ":".join(factors), factors))
    return out


class NumericDesign:
    """Model matrix of a bar's left-hand side made only of ``1``/``0`` and numeric
    columns (``1 + Days``, ``0 + x``): built directly, without formulaic (a few
    milliseconds per term saved on small fits).  Same interface as
    :class:`~pyglmm.formula.fixed.FixedDesign` for what the random terms use:
    ``rhs``, ``matrix``, ``column_names``, ``transform(newdata)``.
    """

    def __init__(self, rhs: str, intercept: bool, columns: list[str], data: pd.DataFrame):
        self.rhs = rhs
        self.intercept = intercept
        self.columns = columns
        self.column_names = (["(Intercept)"] if intercept else []) + list(columns)
        self.matrix = self.transform(data)

    def transform(self, newdata: pd.DataFrame) -> np.ndarray:
        n = len(newdata)
        k = len(self.columns) + int(self.intercept)
        out = np.empty((n, k))
        j = 0
        if self.intercept:
            out[:, 0] = 1.0
            j = 1
        for c in self.columns:
            if c not in newdata.columns:
                raise DataError(f"column {c!r} of the random-effects term is not in the data")
            out[:, j] = np.asarray(newdata[c], dtype=float)
            j += 1
        return out

    @classmethod
    def try_build(cls, rhs: str, data: pd.DataFrame) -> NumericDesign | None:
        """A NumericDesign for ``rhs`` if it is that simple, else None."""
        parts = [p.strip() for p in rhs.split("+")]
        if any(not p for p in parts):
            return None
        intercept = True
        columns: list[str] = []
        for p in parts:
            if p == "1":
                continue
            if p in ("0", "-1"):
                intercept = False
                continue
            if not re.fullmatch(r"[A-Za-z_.][A-Za-z0-9_.]*", p) or p not in data.columns:
                return None
            dt = data[p].dtype
            if isinstance(dt, np.dtype):  # plain numpy column: integers or floats only
                if dt.kind not in "iuf":
                    return None
            elif isinstance(dt, pd.CategoricalDtype) or not (
                pd.api.types.is_numeric_dtype(dt) and not pd.api.types.is_bool_dtype(dt)
            ):
                return None
            if p in columns:
                return None
            columns.append(p)
        if not intercept and not columns:
            return None
        return cls(rhs, intercept, columns, data)


def _r_label(v: object) -> str:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _category_labels(categories: pd.Index) -> list[str]:
    """Level labels of a categorical's categories as R prints them.

    String categories are taken as they are in one vectorised conversion (no
    per-level Python call); numbers go through :func:`_r_label` (``2.0`` -> ``"2"``).
    """
    values = categories.tolist()
    if categories.inferred_type in ("string", "empty"):
        return values
    return [_r_label(v) for v in values]


def _factor_codes(col: pd.Series, name: str) -> tuple[np.ndarray, pd.Index]:
    """Codes ``0 .. k-1`` of a grouping column and its categories, unused ones dropped.

    Used categories are found with one ``bincount`` of the categorical's codes and
    the codes renumbered through a lookup table (linear time; pandas'
    ``remove_unused_categories`` sorts the codes).
    """
    if not isinstance(col.dtype, pd.CategoricalDtype):
        col = as_r_factor(col)
    arr = col.array
    if isinstance(arr, pd.Categorical):  # the codes without a pandas Series around them
        cats, codes = arr.categories, arr.codes
    else:
        cats, codes = col.cat.categories, np.asarray(col.cat.codes)
    if len(codes) and codes.min() < 0:
        raise DataError(f"grouping factor {name!r} has missing values")
    used = np.bincount(codes, minlength=len(cats)) > 0
    if used.all():
        return codes.astype(np.intp, copy=False), cats
    renumber = np.cumsum(used, dtype=np.intp) - 1
    return renumber[codes], cats[used]


def grouping_factor(data: pd.DataFrame, factors: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Codes and level labels of the (interaction of the) grouping factor(s).

    The levels of an interaction are the combinations present in the data, the
    first factor varying slowest; its codes are found by ``bincount`` over the
    combined key when the key space is moderate (≤ 10⁷ or ≤ 8 n), else by sorting.
    """
    codes_list: list[np.ndarray] = []
    cats_list: list[pd.Index] = []
    for name in factors:
        if name not in data.columns:
            raise DataError(f"grouping factor {name!r} is not a column of the data")
        codes, cats = _factor_codes(data[name], name)
        codes_list.append(codes)
        cats_list.append(cats)
    if len(factors) == 1:
        return codes_list[0], _category_labels(cats_list[0])
    sizes = [len(c) for c in cats_list]
    key = np.zeros(len(data), dtype=np.int64)
    for codes, size in zip(codes_list, sizes, strict=True):
        key = key * size + codes
    space = int(np.prod(np.asarray(sizes, dtype=np.float64)))
    if space <= max(10_000_000, 8 * len(key)):
        present = np.bincount(key, minlength=space) > 0
        uniq = np.flatnonzero(present)
        lookup = np.cumsum(present, dtype=np.intp) - 1
        inv = lookup[key]
    else:
        uniq, inv = np.unique(key, return_inverse=True)
    # digits of each present key, last factor fastest
    parts: list[list[str]] = []
    rem = uniq.astype(np.int64)
    for cats, size in zip(reversed(cats_list), reversed(sizes), strict=True):
        rem, digit = np.divmod(rem, size)
        labels = np.asarray(_category_labels(cats), dtype=object)
        parts.append(labels[digit].tolist())
    labels_out = [":".join(p) for p in zip(*reversed(parts), strict=True)]
    return inv.astype(np.intp, copy=False).reshape(-1), labels_out


def random_terms(bars: list[RandomBar], data: pd.DataFrame, n: int | None = None) -> list[ReMat]:
    """Build the random-effects terms of a model, in lme4's order.

    Parameters
    ----------
    bars : list of RandomBar
        From :func:`pyglmm.formula.parse.parse_formula`.
    data : pandas.DataFrame
        The model frame's data (rows used by the fit).
    n : int, optional
        Number of observations (defaults to ``len(data)``), for lme4's checks.

    Raises
    ------
    FormulaError
        No bars, or a bad left-hand side.
    DataError
        A grouping factor with a single level, or with as many levels as
        observations, or more random effects than observations in a term.
    """
    if not bars:
        raise FormulaError(
            "no random-effects terms in the formula; write them as (1 | g) "
            "(for a model without random effects use pg.lm)"
        )
    n = len(data) if n is None else n
    terms: list[ReMat] = []
    for eb in expand_bars(bars):
        refs, levels = grouping_factor(data, eb.factors)
        if len(levels) < 2:
            raise DataError(
                f"grouping factor {eb.group!r} in {eb} has {len(levels)} level; "
                "a random-effects grouping factor needs at least 2 levels"
            )
        if len(levels) >= n:
            raise DataError(
                f"grouping factor {eb.group!r} has {len(levels)} levels for {n} observations; "
                "the number of levels of each grouping factor must be < number of observations"
            )
        try:
            design = NumericDesign.try_build(eb.lhs, data) or FixedDesign(eb.lhs, data)
        except FormulaError as exc:
            raise FormulaError(
                f"cannot build the random-effects model matrix of {eb}: {exc}"
            ) from None
        z = design.matrix
        if z.shape[1] == 0:
            raise FormulaError(f"random-effects term {eb} has no columns")
        if len(levels) * z.shape[1] >= n:
            raise DataError(
                f"number of observations (={n}) <= number of random effects "
                f"(={len(levels) * z.shape[1]}) for term {eb}; the random-effects parameters "
                "and the residual variance are probably unidentifiable"
            )
        terms.append(
            ReMat(eb.group, levels, refs, z, list(design.column_names), design, eb.factors)
        )
    order = sorted(range(len(terms)), key=lambda i: -terms[i].nlevels)
    return [terms[i] for i in order]
