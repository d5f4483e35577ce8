"""lme4-style printed summary of a GLMM (``summary(glmer(...))``)."""

from __future__ import annotations

import html
import math

import numpy as np


def _sig_decimals(values, digits: int = 4, cap: int = 10, strip: bool = True) -> int:
    """Decimals R's ``format(x, digits=)`` uses for a column: each value rounded to ``digits``
    significant digits, trailing zeros dropped; the most decimals any value then needs."""
    v = np.abs(np.asarray(values, dtype=float))
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return 0
    best = 0
    for x in v:
        d = int(digits - 1 - math.floor(math.log10(x)))
        r = round(x, d)
        while strip and d > 0 and round(x, d - 1) == r:
            d -= 1
        best = max(best, d)
    return max(0, min(cap, best))


def _fmt_col(values, decimals: int) -> list[str]:
    return [f"{x:.{decimals}f}" for x in values]


def _signif(x: float, digits: int = 4) -> str:
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    d = max(0, digits - 1 - int(math.floor(math.log10(abs(x)))))
    return f"{x:.{d}f}"


def _format_pvals(p: np.ndarray) -> list[str]:
    out = []
    eps = 2e-16
    fix_idx = [i for i, v in enumerate(p) if v >= 1e-4]
    sci_idx = [i for i, v in enumerate(p) if v >= eps and i not in fix_idx]
    out = [""] * len(p)
    if fix_idx:
        dec = _sig_decimals([p[i] for i in fix_idx], 3)
        for i in fix_idx:
            out[i] = f"{p[i]:.{dec}f}"
    for i in sci_idx:
        out[i] = f"{p[i]:.2e}".replace("e-0", "e-")
        m, e = f"{p[i]:.2e}".split("e")
        out[i] = f"{m}e{int(e):03d}" if int(e) < 0 else f"{m}e+{int(e):02d}"
        out[i] = out[i].replace("e-0", "e-") if abs(int(e)) >= 10 else out[i]
    # R pads "<2e-16" to the width of scientific p-values when the column has some
    tiny = "< 2e-16" if sci_idx else "<2e-16"
    for i, v in enumerate(p):
        if v < eps:
            out[i] = tiny
    return out


def _stars(p: float) -> str:
    if p < 0.001:
        return "***"
    if p < 0.01:
        return "**"
    if p < 0.05:
        return "*"
    if p < 0.1:
        return "."
    return ""


def abbreviate(name: str, minlength: int = 6) -> str:
    """R's ``abbreviate``: drop lower-case vowels, then lower-case letters, from the end."""
    s = list(name)
    if len(s) <= minlength:
        return name
    for cls in ("aeiou", "abcdefghijklmnopqrstuvwxyz"):
        i = len(s) - 1
        while len(s) > minlength and i > 0:
            if s[i] in cls and s[i - 1] != " ":
                del s[i]
            i -= 1
    return "".join(s[:minlength]) if len(s) > minlength else "".join(s)


def _table(rows: list[list[str]], right: list[bool]) -> list[str]:
    widths = [max(len(r[j]) for r in rows) for j in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [
            r[j].rjust(widths[j]) if right[j] else r[j].ljust(widths[j]) for j in range(len(r))
        ]
        lines.append(" ".join(cells))
    return lines


class GlmerSummary:
    """Printable summary; ``str()`` gives lme4's layout."""

    def __init__(self, model, correlation: bool | None = None) -> None:
        self.model = model
        self.correlation = True if correlation is None else bool(correlation)

    def header(self) -> list[str]:
        m = self.model
        if m.nagq != 1:  # lme4 prints nAGQ = 0 this way too
            meth = f"(Adaptive\n  Gauss-Hermite Quadrature, nAGQ = {m.nagq}) [glmerMod]"
        else:
            meth = "(Laplace\n  Approximation) [glmerMod]"
        fam = m.family
        lines = [f"Generalized linear mixed model fit by maximum likelihood {meth}"]
        fname = fam.display_name
        if fam.name == "negative.binomial":
            fname = f"Negative Binomial({fam.theta:.5g})"
        lines.append(f" Family: {fname}  ( {fam.link.name} )")
        lines.append(f"Formula: {m.formula}")
        return lines

    def aic_table(self) -> list[str]:
        m = self.model
        names = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
        vals = [
            f"{m.aic:.1f}",
            f"{m.bic:.1f}",
            f"{m.loglik:.1f}",
            f"{-2 * m.loglik:.1f}",
            f"{m.df_resid:d}",
        ]
        w = [max(8, len(a), len(b)) for a, b in zip(names, vals, strict=True)]
        return [
            " ".join(a.rjust(k) for a, k in zip(names, w, strict=True)) + " ",
            " ".join(b.rjust(k) for b, k in zip(vals, w, strict=True)) + " ",
        ]

    def scaled_residuals(self) -> list[str]:
        m = self.model
        r = m.residuals("pearson").to_numpy() / m.sigma
        q = np.quantile(r, [0, 0.25, 0.5, 0.75, 1.0])
        dec = _sig_decimals(q, 4)
        vals = _fmt_col(q, dec)
        names = ["Min", "1Q", "Median", "3Q", "Max"]
        w = [max(max(len(a) for a in names), max(len(b) for b in vals))] * 5
        return [
            "Scaled residuals: ",
            " ".join(a.rjust(k) for a, k in zip(names, w, strict=True)) + " ",
            " ".join(b.rjust(k) for b, k in zip(vals, w, strict=True)) + " ",
        ]

    def random_effects(self) -> list[str]:
        m = self.model
        vc = m.varcorr
        has_corr = any(t.q > 1 for t in m.terms)
        header = ["Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] if has_corr else [])
        rows = [header]
        var_rows = vc[vc["var2"].isna()]
        cov_rows = vc[vc["var2"].notna()]
        # R formats each column jointly: enough decimals for 4 significant digits everywhere
        dv = _sig_decimals(var_rows["vcov"].to_numpy(), 4)
        ds = _sig_decimals(var_rows["sdcor"].to_numpy(), 4)
        for grp in dict.fromkeys(var_rows["group"]):
            sub = var_rows[var_rows["group"] == grp]
            names = list(sub["var1"])
            for i, (_, r) in enumerate(sub.iterrows()):
                row = [
                    str(grp) if i == 0 else "",
                    "" if r["var1"] is None else str(r["var1"]),
                    f"{r['vcov']:.{dv}f}",
                    f"{r['sdcor']:.{ds}f}",
                ]
                if has_corr:
                    cors = []
                    for j in range(i):
                        hit = cov_rows[
                            (cov_rows["group"] == grp)
                            & (cov_rows["var1"] == names[j])
                            & (cov_rows["var2"] == names[i])
                        ]
                        cors.append(f"{float(hit['sdcor'].iloc[0]):.2f}" if len(hit) else "")
                    row.append(" ".join(cors))
                rows.append(row)
        lines = [" " + x for x in _table(rows, [False] * len(header))]
        groups = ", ".join(f"{t.group}, {t.nlevels}" for t in _unique_groups(m.terms))
        lines.append(f"Number of obs: {m.nobs}, groups:  {groups.replace(', ', '; ', 0)}")
        lines[-1] = f"Number of obs: {m.nobs}, groups:  " + "; ".join(
            f"{t.group}, {t.nlevels}" for t in _unique_groups(m.terms)
        )
        return ["Random effects:"] + lines

    def fixed_effects(self) -> list[str]:
        m = self.model
        tab = m.coef_table()
        est, se = tab["Estimate"].to_numpy(), tab["Std. Error"].to_numpy()
        stat_name = tab.columns[2]
        z = tab[stat_name].to_numpy()
        p = tab["Pr(>|z|)"].to_numpy()
        dec = _sig_decimals([np.min(np.abs(se))], 4, strip=False)  # printCoefmat's rule
        dz = min(3, _sig_decimals(z, 4))
        pv = _format_pvals(p)
        rows = [["", "Estimate", "Std. Error", stat_name, "Pr(>|z|)", ""]]
        for i, name in enumerate(tab.index):
            rows.append(
                [
                    str(name),
                    f"{est[i]:.{dec}f}",
                    f"{se[i]:.{dec}f}",
                    f"{z[i]:.{dz}f}",
                    pv[i],
                    _stars(p[i]).ljust(3),
                ]
            )
        lines = _table(rows, [False, True, True, True, True, False])
        out = ["Fixed effects:"] + lines
        out += ["---", "Signif. codes:  0 ‘***’ 0.001 ‘**’ 0.01 ‘*’ 0.05 ‘.’ 0.1 ‘ ’ 1"]
        return out

    def correlation_table(self) -> list[str]:
        m = self.model
        if m.p < 2 or not self.correlation:
            return []
        C = m.fixef_correlation().to_numpy()
        names = list(m.fixef.index)
        ab = [abbreviate(n) for n in names]
        k = len(names)
        # R formats the matrix jointly (common width, right-justified), then prints the
        # cells left-justified under the abbreviated names
        vals = {(i, j): f"{C[i, j]:.3f}" for i in range(1, k) for j in range(i)}
        wv = max(len(v) for v in vals.values())
        rows = [[""] + ab[:-1]]
        for i in range(1, k):
            rows.append(
                [names[i]] + [vals[(i, j)].rjust(wv) if j < i else "" for j in range(k - 1)]
            )
        lines = _table(rows, [False] * k)
        return ["Correlation of Fixed Effects:"] + lines

    def __str__(self) -> str:
        parts = self.header() + [""] + self.aic_table() + [""] + self.scaled_residuals()
        parts += [""] + self.random_effects() + [""] + self.fixed_effects()
        corr = self.correlation_table()
        if corr:
            parts += [""] + corr
        conv = self.model.convergence
        if conv is not None and conv.messages:
            parts += [""] + [f"optimizer convergence: {msg}" for msg in conv.messages]
        return "\n".join(parts)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


def _unique_groups(terms):
    seen, out = set(), []
    for t in terms:
        if t.group not in seen:
            seen.add(t.group)
            out.append(t)
    return out


def short_repr(model) -> str:
    m = model
    return (
        f"<GeneralizedLinearMixedModel {m.formula!r} family={m.family.name}"
        f"({m.family.link.name}) nobs={m.nobs} logLik={m.loglik:.4f} nagq={m.nagq}>"
    )
