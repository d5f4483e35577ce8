"""Evaluating R-style expressions (responses, offsets) against a data frame.

Formulas carry small R expressions that formulaic does not evaluate for us: the
response (``round(y)``, ``log(y)``, ``cbind(s, n - s)``) and offsets
(``offset(log(n))``). They are translated to Python (``^`` becomes ``**``) and
evaluated with numpy functions and the data's columns as the only names.
"""

from __future__ import annotations

import ast
import re
from typing import Any

import numpy as np
import pandas as pd

from pyglmm.errors import DataError, FormulaError

#: Functions available in response and offset expressions, spelled as in R.
EXPRESSION_FUNCTIONS: dict[str, Any] = {
    "log": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p,
    "exp": np.exp,
    "expm1": np.expm1,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "round": np.round,
    "floor": np.floor,
    "ceiling": np.ceil,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "I": lambda x: x,
    "as_numeric": lambda x: np.asarray(x, dtype=float),
    "pi": np.pi,
    "True": True,
    "False": False,
    "TRUE": True,
    "FALSE": False,
}

#: Names that may appear in fixed-effect formulas without being data columns.
FORMULA_KEYWORDS = {
    "contr",
    "treatment",
    "sum",
    "helmert",
    "poly",
    "diff",
    "np",
    "numpy",
    "levels",
    "reference",
    "base",
    "raw",
    "degree",
    "center",
    "scale",
    "df",
    "True",
    "False",
    "TRUE",
    "FALSE",
    "pi",
    "inf",
    "nan",
    "Intercept",
}

#: An identifier and, when the next non-blank character is ``(`` or ``=`` (a call or a
#: keyword argument), that character.
_IDENT = re.compile(r"(?<![\w.])([A-Za-z_.][\w.]*)(?=\s*([(=])?)")
_STRING = re.compile(r"'[^']*'|\"[^\"]*\"")
_BACKTICK = re.compile(r"`([^`]*)`")


def r_to_python(expr: str) -> str:
    """Translate an R arithmetic expression to Python (``^`` to ``**``, ``as.numeric``)."""
    out = expr.replace("^", "**").replace("as.numeric(", "as_numeric(")
    return out


def referenced_names(expr: str) -> list[str]:
    """Identifiers in ``expr`` that are not function calls (candidate column names).

    Backticked names (R's way of writing non-syntactic names) are returned as written
    inside the backticks.
    """
    names = [m.group(1) for m in _BACKTICK.finditer(expr)]
    text = _STRING.sub("''", _BACKTICK.sub("_", expr))
    for m in _IDENT.finditer(text):
        name = m.group(1)
        if m.group(2):
            continue
        if name.startswith(".") and name[1:].isdigit():
            continue
        names.append(name)
    seen: dict[str, None] = {}
    for n in names:
        seen.setdefault(n, None)
    return list(seen)


def check_columns(expr: str, data: pd.DataFrame, what: str) -> list[str]:
    """Names used in ``expr`` that are data columns; error on unknown names.

    Raises
    ------
    DataError
        If a name is neither a column of ``data`` nor a known function or keyword.
    """
    used = []
    for name in referenced_names(expr):
        if name in data.columns:
            used.append(name)
        elif name in EXPRESSION_FUNCTIONS or name in FORMULA_KEYWORDS or "." in name:
            # dotted names are R functions / contrasts (contr.sum) or attributes
            if name in data.columns:
                used.append(name)
            continue
        else:
            cols = ", ".join(map(str, data.columns[:20]))
            more = ", ..." if len(data.columns) > 20 else ""
            raise DataError(
                f"variable {name!r} in the {what} is not a column of the data "
                f"(columns: {cols}{more})"
            )
    return used


def evaluate(expr: str, data: pd.DataFrame, what: str = "expression") -> np.ndarray:
    """Evaluate an R-style expression to a float array with one value per row."""
    check_columns(expr, data, what)
    code = r_to_python(_BACKTICK.sub(lambda m: f"__bt_{abs(hash(m.group(1)))}", expr))
    namespace: dict[str, Any] = dict(EXPRESSION_FUNCTIONS)
    for m in _BACKTICK.finditer(expr):
        namespace[f"__bt_{abs(hash(m.group(1)))}"] = _column_values(data[m.group(1)])
    for name in referenced_names(expr):
        if name in data.columns:
            namespace[name] = _column_values(data[name])
    try:
        tree = ast.parse(code, mode="eval")
        with np.errstate(all="ignore"):
            value = eval(compile(tree, "<formula>", "eval"), {"__builtins__": {}}, namespace)
    except SyntaxError as exc:
        raise FormulaError(f"cannot read the {what} {expr!r}: {exc.msg}") from None
    except (TypeError, ValueError, NameError) as exc:
        raise DataError(f"cannot evaluate the {what} {expr!r}: {exc}") from None
    arr = np.asarray(value)
    if arr.ndim == 0:
        arr = np.full(len(data), float(arr))
    return arr


def _column_values(col: pd.Series) -> np.ndarray:
    if isinstance(col.dtype, pd.CategoricalDtype):
        return np.asarray(col.astype(object))
    return col.to_numpy()
