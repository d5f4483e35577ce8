"""Printing of the inference tables as R prints them.

Implements the pieces of R needed for lmerTest's and lme4's tables: ``format(x,
digits=)`` of a numeric vector (R's ``formatReal``: common number of decimals,
fixed or scientific notation by width), ``zapsmall`` (R 4.2's), ``format.pval`` and
``printCoefmat`` (coefficient tables with significance stars, and ``print.anova``),
and ``print.default`` of a character matrix (``quote=FALSE, right=TRUE``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

EPS = float(np.finfo(float).eps)
SIGNIF_LEGEND = "Signif. codes:  0 ‘***’ 0.001 ‘**’ 0.01 ‘*’ 0.05 ‘.’ 0.1 ‘ ’ 1"


def r_round(x, digits: float):
    """R's ``round(x, digits)`` with a possibly non-integer ``digits`` (rounded half up)."""
    d = int(math.floor(digits + 0.5))
    return np.round(np.asarray(x, dtype=float), d)


def r_zapsmall(x, digits: int = 7) -> np.ndarray:
    """R 4.2's ``zapsmall``: ``round(x, max(0, digits − log10(max|x|)))``."""
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(x)
    if not ok.any():
        return x
    mx = float(np.max(np.abs(x[ok])))
    d = max(0.0, digits - math.log10(mx)) if mx > 0 else digits
    return r_round(x, d)


def _sci(x: float, digits: int) -> tuple[int, int, bool]:
    """(exponent, significant digits needed, negative) of ``x`` at ``digits`` significant."""
    s = f"{abs(x):.{digits - 1}e}"
    mant, ex = s.split("e")
    kp = int(ex)
    d = mant.replace(".", "").rstrip("0")
    return kp, max(1, len(d)), x < 0


def r_format(values, digits: int = 7, na: str = "NA") -> list[str]:
    """R's ``format(x, digits = digits)`` of a numeric vector (common formatting)."""
    x = np.asarray(values, dtype=float).reshape(-1)
    fin = np.isfinite(x)
    if not fin.any():
        out = [na if np.isnan(v) else ("Inf" if v > 0 else "-Inf") for v in x]
        w = max(len(s) for s in out) if out else 0
        return [s.rjust(w) for s in out]
    neg = 0
    rgt = -(10**9)
    mxsl = -(10**9)
    mxns = 0
    mxe, mne = -(10**9), 10**9
    mxl = -(10**9)
    for v in x[fin]:
        if v == 0:
            kp, nsig, isneg = 0, 1, False
        else:
            kp, nsig, isneg = _sci(float(v), digits)
        left = kp + 1
        sleft = int(isneg) + (1 if left <= 0 else left)
        right = nsig - left
        neg = max(neg, int(isneg))
        rgt = max(rgt, right)
        mxl = max(mxl, left)
        mxsl = max(mxsl, sleft)
        mxns = max(mxns, nsig)
        mxe, mne = max(mxe, kp), min(mne, kp)
    if mxl < 0:
        mxsl = 1 + neg
    rgt = max(rgt, 0)
    wF = mxsl + rgt + (rgt != 0)
    e = 2 if (mxe >= 100 or mne <= -99) else 1
    d = mxns - 1
    wE = neg + (d > 0) + d + 4 + e
    out = []
    for v in x:
        if np.isnan(v):
            out.append(na)
        elif not np.isfinite(v):
            out.append("Inf" if v > 0 else "-Inf")
        elif wF <= wE:
            out.append(f"{v:.{rgt}f}")
        else:
            out.append(f"{v:.{d}e}")
    w = max(len(s) for s in out)
    return [s.rjust(w) for s in out]


def format_pval(pv, digits: int = 3, eps: float = EPS) -> list[str]:
    """R's ``format.pval(pv, digits, eps)``."""
    pv = np.asarray(pv, dtype=float).reshape(-1)
    out = [""] * len(pv)
    is0 = pv < eps
    idx = np.flatnonzero(~is0)
    rr: list[str] = []
    if idx.size:
        sub = pv[idx]
        with np.errstate(divide="ignore"):
            expo = np.floor(np.log10(np.where(sub > 0, sub, 1e-50)))
        fixp = (expo >= -3) | (sub == 0)
        rr = [""] * len(sub)
        for mask in (fixp, ~fixp):
            if mask.any():
                f = r_format(sub[mask], digits)
                for j, s in zip(np.flatnonzero(mask), f, strict=True):
                    rr[j] = s
        for j, i in enumerate(idx):
            out[i] = rr[j]
    if is0.any():
        dg = max(1, digits - 2)
        if idx.size:
            nc = max(len(s) for s in rr)
            if dg > 1 and dg + 6 > nc:
                dg = max(1, nc - 7)
            sep = "" if (dg == 1 and nc <= 6) else " "
        else:
            sep = "" if dg == 1 else " "
        txt = "<" + sep + r_format([eps], dg)[0].strip()
        for i in np.flatnonzero(is0):
            out[i] = txt
    return out


def _stars(p: float) -> str:
    if not np.isfinite(p):
        return ""
    for cut, s in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p <= cut:
            return s
    return " "


def print_matrix(cells: list[list[str]], rownames: Sequence[str], colnames: Sequence[str]) -> str:
    """R's ``print.default`` of a character matrix (``quote = FALSE, right = TRUE``)."""
    rw = max([len(r) for r in rownames] + [0]) if len(rownames) else 4  # R: empty matrix
    widths = [max([len(c)] + [len(row[j]) for row in cells]) for j, c in enumerate(colnames)]
    lines = [" " * rw + "".join(" " + c.rjust(w) for c, w in zip(colnames, widths, strict=True))]
    for rn, row in zip(rownames, cells, strict=True):
        lines.append(
            rn.ljust(rw) + "".join(" " + s.rjust(w) for s, w in zip(row, widths, strict=True))
        )
    return "\n".join(lines)


def print_coefmat(
    tab: pd.DataFrame,
    digits: int,
    *,
    cs_ind: Sequence[int] | None,
    tst_ind: Sequence[int],
    zap_ind: Sequence[int] = (),
    has_pvalue: bool = True,
    na_print: str = "NA",
    signif_stars: bool = True,
) -> str:
    """R's ``printCoefmat`` (columns by 0-based index); returns the printed text."""
    xm = tab.to_numpy(dtype=float).copy()
    n, nc = xm.shape
    dig_tst = max(1, min(5, digits - 1))
    cf = [[""] * nc for _ in range(n)]
    ina = np.isnan(xm)
    for i in zap_ind:
        xm[:, i] = r_zapsmall(xm[:, i], digits)

    def put(col: int, strs: list[str]) -> None:
        for r in range(n):
            cf[r][col] = strs[r]

    if cs_ind:
        cs = list(cs_ind)
        acs = np.abs(xm[:, cs])
        fin = np.isfinite(acs) & (acs != 0)
        if np.isfinite(acs).any():
            if fin.any():
                digmin = 1 + np.floor(np.log10([acs[fin].min(), acs[fin].max()]))
            else:
                digmin = np.array([1.0, 1.0])
            dec = max(1, int(np.max(digits - digmin)))
            block = r_format(np.round(xm[:, cs], dec).T.reshape(-1), digits)
            for k, c in enumerate(cs):
                put(c, block[k * n : (k + 1) * n])
    for c in tst_ind:
        put(c, r_format(np.round(xm[:, c], dig_tst), digits))
    pcol = nc - 1 if has_pvalue else None
    skip = set(cs_ind or []) | set(tst_ind) | ({pcol} if pcol is not None else set())
    for c in range(nc):
        if c not in skip:
            put(c, r_format(xm[:, c], digits))
    # entries that print as 0 but are not 0: fewer digits
    okp = ~ina
    for c in range(nc):
        if c in tst_ind or c == pcol:
            continue
        for r in range(n):
            if okp[r, c]:
                try:
                    shown0 = float(cf[r][c]) == 0
                except ValueError:
                    continue
                if (xm[r, c] == 0) != shown0:
                    cf[r][c] = r_format([xm[r, c]], max(1, digits - 1))[0]
    for r in range(n):
        for c in range(nc):
            if ina[r, c]:
                cf[r][c] = na_print
    colnames = [str(c) for c in tab.columns]
    stars = False
    if has_pvalue:
        pv = xm[:, pcol]
        ok = ~np.isnan(pv)
        if ok.any():
            fp = format_pval(pv[ok], dig_tst)
            for j, r in enumerate(np.flatnonzero(ok)):
                cf[r][pcol] = fp[j]
            stars = signif_stars and bool(np.any(pv[ok] < 0.1))
            if stars:
                sy = [_stars(p) if np.isfinite(p) else "" for p in pv]
                w = max(len(s) for s in sy)
                for r in range(n):
                    cf[r].append(sy[r].ljust(w))
                colnames.append("")
    text = print_matrix(cf, [str(i) for i in tab.index], colnames)
    if stars:
        text += "\n---\n" + SIGNIF_LEGEND
    return text


def format_anova_table(tab, heading: str | None = None) -> str:
    """Print an ANOVA table as R's ``print.anova`` (heading, then ``printCoefmat``).

    ``heading`` defaults to the table's ``heading`` attribute."""
    df = pd.DataFrame(tab)
    cn = list(df.columns)
    nc = len(cn)
    has_p = cn[-1].startswith("Pr(") or cn[-1].startswith("P(")
    zap = list(range(nc - 1 if has_p else nc))
    tst = [i for i, c in enumerate(cn) if c[1:7] == " value" or c in ("F", "Cp", "Chisq")]
    zap = [i for i in zap if i not in tst and not cn[i].endswith("Df")]
    if heading is None:
        heading = getattr(tab, "heading", None)
    body = print_coefmat(
        df, 5, cs_ind=None, tst_ind=tst, zap_ind=zap, has_pvalue=has_p, na_print=""
    )
    return (heading + "\n" if heading else "") + body
