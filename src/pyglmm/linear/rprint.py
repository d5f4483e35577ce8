"""Number formatting as R prints it: ``format``, ``format.pval``, ``printCoefmat``.

The text of ``summary(lm)`` and ``anova(lm)`` is made of numeric columns formatted
*jointly* (one number of decimals per column, chosen so that every entry shows
``digits`` significant digits), p-values formatted by ``format.pval`` with a
``< eps`` floor, and significance stars. These helpers reproduce R 4.2's rules so
that pyglmm's printed tables read like R's, digit for digit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: R's ``.Machine$double.eps``, the floor of printed p-values.
DOUBLE_EPS = float(np.finfo(float).eps)

SIGNIF_LEGEND = (
    "Signif. codes:  0 \u2018***\u2019 0.001 \u2018**\u2019 0.01 \u2018*\u2019 "
    "0.05 \u2018.\u2019 0.1 \u2018 \u2019 1"
)


def _sig_and_exponent(x: float, digits: int) -> tuple[int, int]:
    """Significant digits needed (<= digits) and decimal exponent of ``x`` rounded to ``digits``."""
    if x == 0:
        return 1, 0
    mant, exp = f"{abs(x):.{digits - 1}e}".split("e")
    mant = mant.replace(".", "").rstrip("0")
    return max(1, len(mant)), int(exp)


def format_real(values: Sequence[float] | np.ndarray, digits: int = 7, na: str = "NA") -> list[str]:
    """R's ``format(x, digits=digits)`` of a numeric vector: common format, common width.

    Fixed notation with the number of decimals that gives the entry needing most
    significant digits (at most ``digits``) its digits, unless scientific notation is
    narrower (R's ``formatReal`` with ``scipen = 0``).
    """
    x = np.asarray(values, dtype=float).reshape(-1)
    finite = np.isfinite(x)
    if not finite.any():
        return [_nonfinite(v, na) for v in x]
    rgt, left, neg, mxns, mxe = 0, 1, 0, 1, 1
    big_exp = False
    for v in x[finite]:
        nsig, kp = _sig_and_exponent(float(v), digits)
        neg = max(neg, int(v < 0))
        left = max(left, kp + 1)
        rgt = max(rgt, nsig - kp - 1)
        mxns = max(mxns, nsig)
        if abs(kp) >= 100:
            big_exp = True
        mxe = max(mxe, kp)
    width_fixed = neg + left + rgt + (1 if rgt > 0 else 0)
    width_sci = neg + (mxns + 1 if mxns > 1 else mxns) + (5 if big_exp else 4)
    out: list[str] = []
    if width_fixed <= width_sci:
        for v in x:
            out.append(f"{v:.{rgt}f}" if np.isfinite(v) else _nonfinite(v, na))
    else:
        for v in x:
            out.append(_sci(v, mxns - 1) if np.isfinite(v) else _nonfinite(v, na))
    width = max(len(s) for s in out)
    return [s.rjust(width) for s in out]


def _sci(v: float, decimals: int) -> str:
    mant, exp = f"{v:.{decimals}e}".split("e")
    sign = exp[0]
    digits = exp[1:].lstrip("0").rjust(2, "0")
    return f"{mant}e{sign}{digits}"


def _nonfinite(v: float, na: str) -> str:
    if np.isnan(v):
        return na
    return "Inf" if v > 0 else "-Inf"


def signif(x: float, digits: int) -> float:
    """R's ``signif``: round to ``digits`` significant digits."""
    if x == 0 or not math.isfinite(x):
        return x
    return float(f"{x:.{digits - 1}e}")


def _fround(x: float, dig: int) -> float:
    """R 4's ``fround``: the nearer of the two candidates, ties to the even last digit."""
    if not math.isfinite(x) or x == 0:
        return x
    if x < 0:
        return -_fround(-x, dig)
    if dig == 0:
        return float(np.rint(x))
    if dig > 0 and math.log10(x) + dig > 15:
        return x
    if dig > 0:
        p10 = 10.0**dig
        xd = x * p10
        i10 = math.floor(xd)
        lo, hi = i10 / p10, math.ceil(xd) / p10
    else:
        p10 = 10.0**-dig
        xd = x / p10
        i10 = math.floor(xd)
        lo, hi = i10 * p10, math.ceil(xd) * p10
    du, dd = hi - x, x - lo
    return hi if (du < dd or (du == dd and i10 % 2 == 1)) else lo


def r_round(x: np.ndarray | float, digits: float) -> np.ndarray:
    """R 4.2's ``round(x, digits)`` (``digits`` rounded to an integer first)."""
    d = int(math.floor(digits + 0.5))
    arr = np.asarray(x, dtype=float)
    return np.vectorize(lambda v: _fround(float(v), d), otypes=[float])(arr)


def zapsmall(x: np.ndarray, digits: int) -> np.ndarray:
    """R 4.2's ``zapsmall``: round to ``digits - log10(max|x|)`` decimals."""
    x = np.asarray(x, dtype=float)
    ok = ~np.isnan(x)
    if not ok.any():
        return x
    mx = float(np.max(np.abs(x[ok])))
    d = max(0.0, digits - math.log10(mx)) if mx > 0 else digits
    return r_round(x, d)


def format_c(x: float, digits: int) -> str:
    """R's ``formatC(x, digits=digits)``: C's ``%.<digits>g``, at least ``digits + 1`` wide."""
    text = f"{x:.{digits}g}" if math.isfinite(x) else _nonfinite(x, "NaN")
    return text.rjust(digits + 1)


def format_pval(
    pv: Sequence[float] | np.ndarray, digits: int, eps: float = DOUBLE_EPS
) -> list[str]:
    """R's ``format.pval``: p-values below ``eps`` print as ``< eps``."""
    pv = np.asarray(pv, dtype=float).reshape(-1)
    out = ["NA"] * len(pv)
    is0 = pv < eps
    rest = [i for i in range(len(pv)) if not is0[i] and not np.isnan(pv[i])]
    nc = 0
    if rest:
        vals = pv[rest]
        with np.errstate(divide="ignore"):
            expo = np.floor(np.log10(np.where(vals > 0, vals, 1e-50)))
        fixp = (expo >= -3) | ((expo == -4) & (digits > 1)) | (vals == 0)
        formatted = [""] * len(vals)
        for mask in (fixp, ~fixp):
            idx = np.flatnonzero(mask)
            if idx.size:
                strs = format_real(vals[idx], digits)
                for j, s in zip(idx, strs, strict=True):
                    formatted[j] = s
        for i, s in zip(rest, formatted, strict=True):
            out[i] = s
        nc = max(len(s) for s in formatted)
    if is0.any():
        d = max(1, digits - 2)
        if rest:
            if d > 1 and d + 6 > nc:
                d = max(1, nc - 7)
            sep = "" if (d == 1 and nc <= 6) else " "
        else:
            sep = "" if d == 1 else " "
        text = "<" + sep + format_real([eps], d)[0].strip()
        for i in np.flatnonzero(is0):
            out[i] = text
    return out


def signif_stars(p: float) -> str:
    """R's ``symnum`` significance symbol for one p-value."""
    if not np.isfinite(p):
        return ""
    for cut, sym in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p <= cut:
            return sym
    return " "


def print_matrix(
    cells: list[list[str]], row_names: Sequence[str], col_names: Sequence[str]
) -> list[str]:
    """R's ``print.default`` of a character matrix, ``quote=FALSE, right=TRUE``."""
    rw = max([len(r) for r in row_names] + [0])
    widths = [
        max([len(col_names[j])] + [len(row[j]) for row in cells]) for j in range(len(col_names))
    ]
    lines = [" " * rw + "".join(" " + c.rjust(w) for c, w in zip(col_names, widths, strict=True))]
    for name, row in zip(row_names, cells, strict=True):
        lines.append(
            name.ljust(rw) + "".join(" " + c.rjust(w) for c, w in zip(row, widths, strict=True))
        )
    return lines


def print_coefmat(
    values: np.ndarray,
    row_names: Sequence[str],
    col_names: Sequence[str],
    *,
    digits: int,
    cs_ind: Sequence[int] = (),
    tst_ind: Sequence[int] = (),
    zap_ind: Sequence[int] = (),
    has_pvalue: bool = True,
    na_print: str = "NA",
    signif_legend: bool = True,
    nan_mask: np.ndarray | None = None,
) -> list[str]:
    """R's ``printCoefmat``: the coefficient table of ``summary`` and the ``anova`` tables.

    Parameters
    ----------
    values : numpy.ndarray
        The numeric matrix (NaN for NA); the last column is the p-value when
        ``has_pvalue``.
    nan_mask : numpy.ndarray of bool, optional
        Cells that are R's ``NaN`` rather than ``NA`` (printed ``"NaN"``).
    cs_ind, tst_ind, zap_ind : sequence of int
        Columns formatted as coefficient/standard error (jointly), as test
        statistics, and columns passed through ``zapsmall`` first (0-based).
    """
    xm = np.array(values, dtype=float, copy=True)
    nr, nc = xm.shape
    ina = np.isnan(xm)
    cells = [["" for _ in range(nc)] for _ in range(nr)]
    dig_tst = max(1, min(5, digits - 1))
    for i in zap_ind:
        xm[:, i] = zapsmall(xm[:, i], digits)

    def put(col: int, strs: list[str]) -> None:
        for r in range(nr):
            cells[r][col] = strs[r]

    if cs_ind:
        cs = list(cs_ind)
        block = xm[:, cs]
        acs = np.abs(block[np.isfinite(block)])
        acs = acs[acs != 0]
        if np.isfinite(block).any():
            digmin = 1 + (np.floor(np.log10([acs.min(), acs.max()])) if acs.size else (0.0, 0.0))
            rounded = r_round(block, max(1, digits - int(digmin[0]), digits - int(digmin[1])))
            strs = format_real(rounded.T.reshape(-1), digits)
            for k, col in enumerate(cs):
                put(col, strs[k * nr : (k + 1) * nr])
    if tst_ind:
        tst = list(tst_ind)
        strs = format_real(r_round(xm[:, tst], dig_tst).T.reshape(-1), digits)
        for k, col in enumerate(tst):
            put(col, strs[k * nr : (k + 1) * nr])
    special = set(cs_ind) | set(tst_ind) | ({nc - 1} if has_pvalue else set())
    for col in range(nc):
        if col not in special:
            put(col, format_real(xm[:, col], digits))
    # entries that print as zero but are not (R re-formats them with digits - 1)
    ok = ~ina
    for col in range(nc - (1 if has_pvalue else 0)):
        if col in tst_ind:
            continue
        for r in range(nr):
            if not ok[r, col]:
                continue
            try:
                shown_zero = float(cells[r][col]) == 0
            except ValueError:
                continue
            if (xm[r, col] == 0) != shown_zero:
                cells[r][col] = format_real([xm[r, col]], max(1, digits - 1))[0]
    for r in range(nr):
        for col in range(nc):
            if ina[r, col]:
                cells[r][col] = na_print
                if nan_mask is not None and nan_mask[r, col]:
                    cells[r][col] = "NaN"
    stars = False
    names = list(col_names)
    if has_pvalue:
        pcol = nc - 1
        okp = ~ina[:, pcol]
        if okp.any():
            pstr = format_pval(xm[okp, pcol], dig_tst)
            for r, s in zip(np.flatnonzero(okp), pstr, strict=True):
                cells[r][pcol] = s
            stars = bool(np.any(xm[okp, pcol] < 0.1))
            if stars:
                sym = [signif_stars(p) if okp[r] else "" for r, p in enumerate(xm[:, pcol])]
                width = max(len(s) for s in sym)
                for r in range(nr):
                    cells[r].append(sym[r].ljust(width))
                names.append("")
    # pad every column to a common width (R's format of a character column)
    for col in range(len(names)):
        w = max(len(cells[r][col]) for r in range(nr)) if nr else 0
        for r in range(nr):
            if col < nc:
                cells[r][col] = cells[r][col].rjust(w)
    lines = print_matrix(cells, row_names, names)
    if stars and signif_legend:
        lines += ["---", SIGNIF_LEGEND]
    return lines


def print_named_vector(values: np.ndarray, names: Sequence[str], digits: int) -> list[str]:
    """R's ``print`` of a named numeric vector (one line of names, one of values)."""
    strs = format_real(values, digits)
    w = max([len(s) for s in strs] + [len(n) for n in names])
    return [
        " ".join(n.rjust(w) for n in names) + " ",
        " ".join(s.rjust(w) for s in strs) + " ",
    ]
