"""Contrast matrices of the type I and type III hypotheses of fixed-effect terms, as lmerTest.

Type I (sequential): with the Doolittle decomposition ``XᵀX = L U`` (``L`` unit
lower triangular), the rows of ``Lᵀ`` belonging to a term's columns
(lmerTest's ``get_contrasts_type1``).

Type III (lmerTest's ``extract_contrasts_type3``, for treatment contrasts): with
``X_rd`` the rank-deficient design of all the terms coded with every level
(``~ 0 + term`` for each term), ``L = (X⁺ X_rd)ᵀ``; then, from the highest-order
terms down, each term's columns of ``L`` are replaced by their residuals after
regression on the columns of the terms that contain it (a term contains another
if it has all its variables and more, and the same numeric variables).  The
hypothesis of a term is the transposed block of its columns (rows of ``L`` kept
where the names match the columns of ``X``), without rows that are zero.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pyglmm.formula.frame import model_frame


def zapsmall(x: np.ndarray, digits: int = 7) -> np.ndarray:
    """R 4.2's ``zapsmall``: ``round(x, max(0, digits − log10(max|x|)))`` (R rounds a
    non-integer number of digits to the nearest integer)."""
    x = np.asarray(x, dtype=float)
    mx = float(np.nanmax(np.abs(x))) if x.size else 0.0
    d = max(0.0, digits - math.log10(mx)) if mx > 0 else float(digits)
    return np.round(x, int(math.floor(d + 0.5)))


def doolittle(x: np.ndarray, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """lmerTest's ``doolittle``: ``x = L U`` with unit-diagonal ``L``; small entries zeroed."""
    x = np.asarray(x, dtype=float)
    n = x.shape[0]
    L = np.eye(n)
    U = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            U[i, j] = x[i, j] - L[i, :i] @ U[:i, j]
        for j in range(i + 1, n):
            v = x[j, i] - L[j, :i] @ U[:i, i]
            L[j, i] = 0.0 if abs(U[i, i]) < eps else v / U[i, i]
    L[np.abs(L) < eps] = 0.0
    U[np.abs(U) < eps] = 0.0
    return L, U


def _term_columns(model) -> dict[str, np.ndarray]:
    """Columns of the model's (full-rank) X belonging to each term label."""
    frame = model.frame
    assign = np.asarray(frame.assign)
    kept = getattr(model, "_kept_columns", None)
    if kept is not None:
        assign = assign[np.asarray(kept)]
    out = {}
    for k, term in enumerate(frame.terms, start=1):
        out[term] = np.flatnonzero(assign == k)
    return out


def type1_contrasts(model) -> dict[str, np.ndarray]:
    """Contrast matrix of each term's sequential (type I) hypothesis."""
    X = np.asarray(model.X, dtype=float)
    p = X.shape[1]
    cols = _term_columns(model)
    if p == 1:
        L = np.ones((1, 1))
    else:
        L = doolittle(X.T @ X)[0].T
    return {term: L[idx, :] for term, idx in cols.items()}


def _variables(term: str) -> list[str]:
    return [v.strip() for v in term.split(":")]


def _numeric_vars(data: pd.DataFrame, vars_: list[str]) -> set[str]:
    out = set()
    for v in vars_:
        if v in data.columns:
            if not isinstance(data[v].dtype, pd.CategoricalDtype) and data[v].dtype != object:
                out.add(v)
        else:  # an expression such as log(x): numeric
            out.add(v)
    return out


def containment(model) -> dict[str, list[str]]:
    """lmerTest's ``containment``: for each term, the terms that contain it."""
    return _containment(list(model.frame.terms), model.frame.data)


def _containment(terms: list[str], data: pd.DataFrame) -> dict[str, list[str]]:
    vars_ = {t: _variables(t) for t in terms}
    nums = {t: _numeric_vars(data, vars_[t]) for t in terms}
    out = {}
    for t in terms:
        out[t] = [
            u
            for u in terms
            if set(vars_[t]) <= set(vars_[u])
            and len(set(vars_[u]) - set(vars_[t])) > 0
            and nums[t] == nums[u]
        ]
    return out


def type3_contrasts(model) -> dict[str, np.ndarray]:
    """Contrast matrix of each term's type III hypothesis.

    For a model fitted with other contrasts than treatment contrasts, the hypotheses
    are built on the treatment-coded design ``X_t`` and mapped to the model's
    coefficients with ``X_t⁺ X`` (lmerTest's ``get_contrasts_type3``).
    """
    terms = list(model.frame.terms)
    X = np.asarray(model.X, dtype=float)
    if X.shape[1] <= 1 or len(terms) <= 1:
        return type1_contrasts(model)
    fixed = model.frame.fixed
    codings = dict(getattr(fixed, "contrasts", {}) or {})
    if all(v in ("contr.treatment", "treatment") for v in codings.values()):
        return _type3_treatment(
            X, list(model.fixef.index), _term_columns(model), terms, model.frame.data
        )
    from pyglmm.formula.fixed import FixedDesign

    fd = FixedDesign(fixed.rhs, model.frame.data)
    Xt = np.asarray(fd.matrix, dtype=float)
    keep = _independent_columns(Xt)
    Xt = Xt[:, keep]
    names_t = [fd.column_names[i] for i in keep]
    assign_t = np.asarray(fd.assign)[keep]
    cmap = {t: np.flatnonzero(assign_t == k) for k, t in enumerate(terms, start=1)}
    Lt = _type3_treatment(Xt, names_t, cmap, terms, model.frame.data)
    mapping = zapsmall(np.linalg.pinv(Xt) @ X)
    return {t: L @ mapping for t, L in Lt.items()}


def _independent_columns(X: np.ndarray, tol: float = 1e-7) -> np.ndarray:
    """Columns kept by a QR with R's tolerance (lmerTest's ``ensure_full_rank``)."""
    from scipy.linalg import qr

    _, R, piv = qr(X, mode="economic", pivoting=True)
    d = np.abs(np.diag(R))
    rank = int(np.sum(d > tol * d[0])) if d.size else 0
    return np.sort(piv[:rank])


def _type3_treatment(
    X: np.ndarray,
    xnames: list[str],
    cmap: dict[str, np.ndarray],
    terms: list[str],
    data: pd.DataFrame,
) -> dict[str, np.ndarray]:
    """lmerTest's ``extract_contrasts_type3`` for a treatment-coded full-rank ``X``."""
    blocks, rd_names = [], []
    if "(Intercept)" in xnames:
        blocks.append(np.ones((X.shape[0], 1)))
        rd_names.append("(Intercept)")
    for t in terms:
        f = model_frame("~ 0 + " + t, data)
        blocks.append(np.asarray(f.X, dtype=float))
        rd_names.extend(f.column_names)
    rdX = np.hstack(blocks)
    L = zapsmall((np.linalg.pinv(X) @ rdX).T)  # rows: rdX columns; cols: X columns
    contains = _containment(terms, data)
    order = sorted(range(len(terms)), key=lambda i: -len(_variables(terms[i])))
    for i in order:
        term = terms[i]
        cont = contains[term]
        if cont:
            xc = L[:, np.concatenate([cmap[c] for c in cont])]
            yc = L[:, cmap[term]]
            coef, *_ = np.linalg.lstsq(xc, yc, rcond=None)
            L[:, cmap[term]] = zapsmall(yc - xc @ coef)
    pos = {nm: i for i, nm in enumerate(rd_names)}
    missing = [nm for nm in xnames if nm not in pos]
    if missing:
        raise ValueError(f"cannot match model columns {missing} to the full-rank coding")
    L = L[[pos[nm] for nm in xnames], :]
    out = {}
    for term in terms:
        Lt = L[:, cmap[term]].T
        out[term] = Lt[np.abs(Lt).sum(axis=1) > 1e-8]
    return out
