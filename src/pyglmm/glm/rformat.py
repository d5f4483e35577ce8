"""R's number formatting, so printed summaries match R's character for character.

These functions reproduce the parts of R's ``formatReal`` (``format()``,
``print.default``), ``format.pval``, ``printCoefmat`` and ``symnum`` that
``summary.glm`` and ``anova`` tables use. R's defaults are ``digits = 7`` and
``scipen = 0``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

_DBL_EPS = float(np.finfo(float).eps)


def _scientific(x: float, digits: int) -> tuple[int, int, int]:
    """Sign, decimal exponent and number of significant digits of ``x`` at ``digits``.

    As R's ``scientific()`` in ``format.c``: round ``|x|`` to ``digits``
    significant digits and drop trailing zeros.
    """
    if x == 0:
        return 0, 0, 1
    neg = 1 if x < 0 else 0
    mant, exp = f"{abs(x):.{digits - 1}e}".split("e")
    sig = mant.replace(".", "").rstrip("0")
    return neg, int(exp), max(1, len(sig))


def format_real_spec(values: Sequence[float], digits: int = 7, nsmall: int = 0):
    """Common width, decimals and notation of ``values``, as R's ``formatReal``.

    Returns ``(width, decimals, scientific)``; ``scientific`` is the number of
    exponent digits (0 for fixed notation).
    """
    finite = [float(v) for v in values if v is not None and np.isfinite(v)]
    naflag = len(finite) < len(values)
    if not finite:
        width = max((len(_special(v)) for v in values), default=0)
        return width, 0, 0
    neg = 0
    mxsl = rgt = mxns = -(10**9)
    mxl = -(10**9)
    mnl = 10**9
    for v in finite:
        neg_i, kpower, nsig = _scientific(v, digits)
        left = kpower + 1
        # R's "rounding widens" adjustment (e.g. 9.9999 -> 10.000)
        rounded = float(f"{abs(v):.{digits - 1}e}") if v != 0 else 0.0
        if kpower > 0 and rounded < 10.0**kpower:
            left -= 1
        sleft = neg_i + (1 if left <= 0 else left)
        right = nsig - left
        if neg_i:
            neg = 1
        rgt = max(rgt, right)
        mxl = max(mxl, left)
        mnl = min(mnl, left)
        mxsl = max(mxsl, sleft)
        mxns = max(mxns, nsig)
    if mxl < 0:
        mxsl = 1 + neg
    rgt = max(rgt, 0)
    w_fixed = mxsl + rgt + (1 if rgt else 0)
    e = 2 if (mxl > 100 or mnl <= -99) else 1
    d = mxns - 1
    w_sci = neg + (1 if d > 0 else 0) + d + 4 + e
    if w_fixed <= w_sci:
        if nsmall > rgt:
            rgt = nsmall
            w_fixed = mxsl + rgt + (1 if rgt else 0)
        width, decimals, sci = w_fixed, rgt, 0
    else:
        width, decimals, sci = w_sci, d, e
    if naflag:
        width = max(width, max(len(_special(v)) for v in values if not _is_finite(v)))
    return width, decimals, sci


def _is_finite(v) -> bool:
    return v is not None and bool(np.isfinite(v))


def _special(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "NA"
    if np.isnan(v):
        return "NaN"
    return "Inf" if v > 0 else "-Inf"


def _encode(v: float, width: int, decimals: int, sci: int, na: str = "NA") -> str:
    if not _is_finite(v):
        s = na if (v is None or np.isnan(v)) else _special(v)
        return s.rjust(width)
    if v == 0:
        v = 0.0  # R prints negative zero as 0
    if sci:
        s = f"{v:.{decimals}e}"
        mant, exp = s.split("e")
        sign = exp[0]
        digits_ = exp[1:].lstrip("0").rjust(2, "0")
        s = f"{mant}e{sign}{digits_}"
    else:
        s = f"{v:.{decimals}f}"
    return s.rjust(width)


def format_r(values, digits: int = 7, nsmall: int = 0, na: str = "NA") -> list[str]:
    """R's ``format(x, digits=)`` of a numeric vector: common notation and width."""
    vals = [None if v is None else float(v) for v in np.asarray(values, dtype=float).ravel()]
    vals = [None if (v is not None and math.isnan(v)) else v for v in vals]
    width, decimals, sci = format_real_spec(
        [np.nan if v is None else v for v in vals], digits, nsmall
    )
    out = [_encode(np.nan if v is None else v, width, decimals, sci, na) for v in vals]
    width = max(len(s) for s in out) if out else 0
    return [s.rjust(width) for s in out]


def format_scalar(value: float, digits: int = 7, nsmall: int = 0) -> str:
    """R's ``format(x, digits=)`` of one number."""
    return format_r([value], digits, nsmall)[0].strip()


def signif(x: float, digits: int) -> float:
    """R's ``signif``."""
    if x == 0 or not np.isfinite(x):
        return x
    return float(f"{x:.{digits - 1}e}")


def r_round(x, digits: int = 0):
    """R's ``round(x, digits)`` (IEC 60559 round half to even on the decimal value)."""
    return np.round(np.asarray(x, dtype=float), digits)


def format_pval(pv: Sequence[float], digits: int, eps: float = _DBL_EPS) -> list[str]:
    """R's ``format.pval``."""
    pv = np.asarray(pv, dtype=float)
    out = [""] * len(pv)
    is0 = pv < eps
    rr: list[str] = []
    if np.any(~is0):
        idx = np.flatnonzero(~is0)
        sub = pv[idx]
        with np.errstate(divide="ignore"):
            expo = np.floor(np.log10(np.where(sub > 0, sub, 1e-50)))
        fixp = (expo >= -3) | ((expo == -4) & (digits > 1))
        rr = [""] * len(sub)
        if np.any(fixp):
            f = format_r(sub[fixp], digits)
            for j, s in zip(np.flatnonzero(fixp), f, strict=True):
                rr[j] = s
        if np.any(~fixp):
            f = format_r(sub[~fixp], digits)
            for j, s in zip(np.flatnonzero(~fixp), f, strict=True):
                rr[j] = s
        for j, i in enumerate(idx):
            out[i] = rr[j]
    if np.any(is0):
        d = max(1, digits - 2)
        if np.any(~is0):
            nc = max(len(s) for s in rr)
            if d > 1 and d + 6 > nc:
                d = max(1, nc - 7)
            sep = "" if (d == 1 and nc <= 6) else " "
        else:
            sep = "" if d == 1 else " "
        txt = "<" + sep + format_r([eps], d)[0].strip()
        for i in np.flatnonzero(is0):
            out[i] = txt
    return out


def signif_stars(pv: Sequence[float]) -> list[str]:
    """R's ``symnum`` significance codes for p-values."""
    out = []
    for p in pv:
        if p is None or not np.isfinite(p):
            out.append("")
        elif p <= 0.001:
            out.append("***")
        elif p <= 0.01:
            out.append("**")
        elif p <= 0.05:
            out.append("*")
        elif p <= 0.1:
            out.append(".")
        else:
            out.append(" ")
    return out


SIGNIF_LEGEND = "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"


def zapsmall(x, digits: int) -> np.ndarray:
    """R's ``zapsmall`` (R 4.2): ``round(x, max(0, digits - log10(max|x|)))``.

    R's ``round`` takes a fractional number of digits to the nearest integer
    (``floor(d + 0.5)``).
    """
    x = np.asarray(x, dtype=float)
    fin = x[~np.isnan(x)]
    if fin.size == 0:
        return x
    mx = np.max(np.abs(fin))
    d = max(0.0, digits - math.log10(mx)) if mx > 0 else float(digits)
    return np.round(x, int(math.floor(d + 0.5)))


def print_matrix(
    cells: list[list[str]],
    row_names: Sequence[str],
    col_names: Sequence[str],
    right: bool = True,
    gap: int = 1,
) -> str:
    """R's ``print.default`` of a character matrix (quote = FALSE)."""
    ncol = len(col_names)
    rn_width = max((len(r) for r in row_names), default=0)
    widths = []
    for j in range(ncol):
        w = len(col_names[j])
        for row in cells:
            w = max(w, len(row[j]))
        widths.append(w)
    lines = []
    head = " " * rn_width
    for j, name in enumerate(col_names):
        head += " " * gap + (name.rjust(widths[j]) if right else name.ljust(widths[j]))
    lines.append(head)
    for i, row in enumerate(cells):
        line = row_names[i].ljust(rn_width)
        for j in range(ncol):
            cell = row[j]
            line += " " * gap + (cell.rjust(widths[j]) if right else cell.ljust(widths[j]))
        lines.append(line)
    return "\n".join(lines)


def print_named_vector(values, names: Sequence[str], digits: int, gap: int = 1) -> str:
    """R's ``print.default`` of a named numeric vector (one line of names, one of values)."""
    formatted = format_r(values, digits)
    w = max([len(s) for s in formatted] + [len(n) for n in names])
    head = "".join(n.rjust(w) + " " * gap for n in names)
    vals = "".join(s.rjust(w) + " " * gap for s in formatted)
    return head + "\n" + vals


def print_coefmat(
    table: np.ndarray,
    row_names: Sequence[str],
    col_names: Sequence[str],
    digits: int,
    *,
    signif_stars_on: bool = True,
    has_pvalue: bool | None = None,
    cs_ind: Sequence[int] | None = (0, 1),
    tst_ind: Sequence[int] | None = None,
    zap_ind: Sequence[int] = (),
    na_print: str = "NA",
    signif_legend: bool = True,
) -> str:
    """R's ``printCoefmat`` (stats), returned as text.

    ``table`` is numeric with NaN for missing values; column indices are 0-based.
    """
    xm = np.array(table, dtype=float, copy=True)
    nr, nc = xm.shape
    if has_pvalue is None:
        has_pvalue = nc >= 4 and col_names[-1][:3] in ("Pr(", "p-v")
    if tst_ind is None:
        k = nc - int(has_pvalue) - 1
        tst_ind = [k]
    dig_tst = max(1, min(5, digits - 1))
    cf = [["" for _ in range(nc)] for _ in range(nr)]
    ina = np.isnan(xm)
    ok = ~ina
    for i in zap_ind:
        xm[:, i] = zapsmall(xm[:, i], digits)
    cs_ind = list(cs_ind or [])
    if cs_ind:
        coef_se = xm[:, cs_ind]
        acs = np.abs(coef_se)
        ia = np.isfinite(acs)
        if np.any(ia):
            nz = acs[ia & (acs != 0)]
            if nz.size:
                digmin = 1 + np.floor(np.log10([nz.min(), nz.max()]))
            else:
                digmin = np.array([1.0, 1.0])
            dec = int(max(1, np.max(digits - digmin)))
            rounded = np.round(coef_se, dec)
            f = format_r(rounded.T.ravel(), digits)  # R formats the matrix column-major
            for jj, j in enumerate(cs_ind):
                for i in range(nr):
                    cf[i][j] = f[jj * nr + i]
    if tst_ind:
        for j in tst_ind:
            f = format_r(np.round(xm[:, j], dig_tst), digits)
            for i in range(nr):
                cf[i][j] = f[i]
    special = set(cs_ind) | set(tst_ind) | ({nc - 1} if has_pvalue else set())
    for j in range(nc):
        if j not in special:
            f = format_r(xm[:, j], digits)
            for i in range(nr):
                cf[i][j] = f[i]
    okp = ok.copy()
    okp[:, list(tst_ind)] = False
    cols = range(nc - 1) if has_pvalue else range(nc)
    fix = []
    for j in cols:
        for i in range(nr):
            if okp[i, j]:
                try:
                    shown_zero = float(cf[i][j]) == 0
                except ValueError:
                    continue
                if (xm[i, j] == 0) != shown_zero:
                    fix.append((i, j))
    if fix:
        f = format_r([xm[i, j] for i, j in fix], max(1, digits - 1))
        for (i, j), s in zip(fix, f, strict=True):
            cf[i][j] = s
    for i in range(nr):
        for j in range(nc):
            if ina[i, j]:
                cf[i][j] = na_print
    stars_shown = False
    if has_pvalue:
        okpv = ok[:, nc - 1]
        if np.any(okpv):
            pv = xm[:, nc - 1]
            fp = format_pval(pv[okpv], dig_tst)
            for i, s in zip(np.flatnonzero(okpv), fp, strict=True):
                cf[i][nc - 1] = s
            stars_shown = signif_stars_on and bool(np.any(pv[okpv] < 0.1))
            if stars_shown:
                stars = signif_stars(pv)
                w = max(len(s) for s in stars)
                for i in range(nr):
                    cf[i].append(stars[i].ljust(w))
    names = list(col_names) + ([""] if stars_shown else [])
    text = print_matrix(cf, list(row_names), names)
    if stars_shown and signif_legend:
        text += "\n---\n" + SIGNIF_LEGEND
    return text
