"""Parametric bootstrap of mixed models, as lme4's ``bootMer``.

All ``nsim`` responses are simulated first from the fitted model (``model.simulate``,
unconditional on the random effects, one seeded generator: results do not depend on
how the work is split), then each is refitted *reusing the model structure*
(``model.refit(y)``: for an LMM only ``Zᵀy``, ``Xᵀy`` and ``yᵀy`` change, the
formula and the design are not rebuilt) and the statistic is evaluated on each
refit.  Anything with ``simulate(nsim, seed)`` and ``refit(y)`` can be bootstrapped,
so GLMMs use the same code.

Refits are spread over processes (``fork`` workers that inherit the model, so
nothing large is pickled; chunks of replicates per task).  On the 2-core test
machine processes beat threads: a refit of a small model is dominated by Python
work inside the optimizer's callback, which holds the GIL.

Intervals (as ``boot::boot.ci`` called by lme4's ``confint(method="boot")``):

* ``"perc"``: quantiles ``t*_{((R+1)α)}`` of the replicates, interpolated on the
  normal quantile scale between order statistics (boot's ``norm.inter``);
* ``"basic"``: ``2t̂ − t*_{(1−α/2)}``, ``2t̂ − t*_{(α/2)}``;
* ``"norm"``: ``t̂ − b ± z_{1−α/2} s`` with bias ``b = \\bar t* − t̂`` and ``s`` the SD of
  the replicates.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from pyglmm.errors import PyglmmError


def _param_names(model) -> list[str]:
    nv = len(model.theta)
    names = [f".sig{i + 1:02d}" for i in range(nv)]
    if _has_scale(model):
        names.append(".sigma")
    return names + list(model.fixef.index)


def _has_scale(model) -> bool:
    fam = getattr(model, "family", None)
    if fam is None:
        return True
    return bool(getattr(fam, "estimates_dispersion", False))


def default_statistic(fit) -> pd.Series:
    """lme4's ``confint(method="boot")`` statistic: random-effect SDs and correlations
    (``.sig01, ...``), ``.sigma`` (when the model has a scale) and the fixed effects."""
    from pyglmm.inference.profile import theta_to_sdcor

    sc = _has_scale(fit)
    sigma = float(fit.sigma) if sc else 1.0
    sv = theta_to_sdcor(fit.terms, np.asarray(fit.theta, dtype=float), sigma)
    if not sc:
        sv = sv[:-1]
    return pd.Series(
        np.concatenate([sv, np.asarray(fit.fixef, dtype=float)]), index=_param_names(fit)
    )


# below this estimated serial time the refits run in the calling process
_MIN_PARALLEL_SECONDS = 1.0

# state inherited by forked workers
_WORK: dict[str, Any] = {}


def _run_chunk(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    model = _WORK["model"]
    ys = _WORK["ys"]
    fn = _WORK["statistic"]
    k = _WORK["k"]
    out = np.full((len(idx), k), np.nan)
    ok = np.zeros(len(idx), dtype=bool)
    msgs: list[str] = []
    with _one_blas_thread():
        _refit_chunk(model, ys, fn, idx, out, ok, msgs)
    return out, ok, msgs


def _one_blas_thread():
    """One BLAS thread per worker (the refits are small; idle BLAS threads spinning on a
    busy machine cost more than they give)."""
    try:
        from pyglmm.mixed.blas_threads import blas_threads
    except ImportError:  # pragma: no cover
        import contextlib

        return contextlib.nullcontext()
    return blas_threads(1)


def _refit_chunk(model, ys, fn, idx, out, ok, msgs) -> None:
    for r, i in enumerate(idx):
        try:
            with warnings.catch_warnings(record=True) as wl:
                warnings.simplefilter("always")
                fit = model.refit(ys[:, i])
                val = np.asarray(fn(fit), dtype=float).reshape(-1)
            out[r] = val
            ok[r] = True
            msgs.extend(str(w.message) for w in wl)
        except Exception as exc:  # a failed replicate is NaN, as bootMer
            msgs.append(f"replicate {i + 1} failed: {exc}")


class _Progress:
    """A minimal text progress bar on stderr."""

    def __init__(self, total: int, enabled: bool, width: int = 30) -> None:
        self.total, self.enabled, self.width = total, enabled, width
        self.done = 0
        self.t0 = time.perf_counter()

    def update(self, k: int) -> None:
        if not self.enabled:
            return
        self.done += k
        frac = self.done / self.total if self.total else 1.0
        bar = "=" * int(frac * self.width)
        el = time.perf_counter() - self.t0
        sys.stderr.write(f"\rbootstrap |{bar:<{self.width}}| {self.done}/{self.total} ({el:.1f}s)")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


@dataclass
class BootResult:
    """Replicates of a parametric bootstrap (lme4's ``bootMer`` object).

    Attributes
    ----------
    t0 : pandas.Series
        The statistic on the original fit.
    t : pandas.DataFrame
        ``nsim`` rows of replicate statistics (NaN rows for failed refits).
    nsim : int
    seed : int or None
    messages : list of str
        Warnings and errors raised by the refits.
    """

    t0: pd.Series
    t: pd.DataFrame
    nsim: int
    seed: int | None
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def n_failed(self) -> int:
        """Number of replicates whose refit failed."""
        return int(self.t.isna().all(axis=1).sum())

    @property
    def se(self) -> pd.Series:
        """Bootstrap standard errors (SD of the replicates)."""
        return self.t.std(ddof=1)

    @property
    def bias(self) -> pd.Series:
        """Mean of the replicates minus the original estimate."""
        return self.t.mean() - self.t0

    def summary(self) -> pd.DataFrame:
        """``original, bootBias, bootSE, bootMed`` per statistic (as boot's summary)."""
        return pd.DataFrame(
            {
                "original": self.t0,
                "bootBias": self.bias,
                "bootSE": self.se,
                "bootMed": self.t.median(),
            }
        )

    def confint(self, level: float = 0.95, type: str = "perc") -> pd.DataFrame:
        """Bootstrap confidence intervals: ``type="perc"``, ``"basic"`` or ``"norm"``."""
        a = (1.0 - level) / 2.0
        cols = [f"{100 * q:.3g} %" for q in (a, 1 - a)]
        out = np.full((len(self.t0), 2), np.nan)
        for j, nm in enumerate(self.t0.index):
            tj = self.t[nm].to_numpy()
            tj = tj[np.isfinite(tj)]
            if tj.size < 2:
                continue
            t0 = float(self.t0[nm])
            if type == "perc":
                out[j] = norm_inter(tj, np.array([a, 1 - a]))
            elif type == "basic":
                q = norm_inter(tj, np.array([1 - a, a]))
                out[j] = 2.0 * t0 - q
            elif type == "norm":
                bias = tj.mean() - t0
                merr = tj.std(ddof=1) * stats.norm.ppf(1 - a)
                out[j] = [t0 - bias - merr, t0 - bias + merr]
            else:
                raise PyglmmError("type must be 'perc', 'basic' or 'norm'")
        return pd.DataFrame(out, index=self.t0.index, columns=cols)


def norm_inter(t: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """boot's ``norm.inter``: order statistics interpolated on the normal scale."""
    t = np.sort(t[np.isfinite(t)])
    R = t.size
    rk = (R + 1) * np.asarray(alpha, dtype=float)
    if not np.all((rk > 1) & (rk < R)):
        warnings.warn("extreme order statistics used as endpoints", UserWarning, stacklevel=3)
    k = np.trunc(rk).astype(int)
    out = np.empty(len(alpha))
    for i in range(len(alpha)):
        if k[i] == rk[i] and 0 < k[i] <= R:
            out[i] = t[k[i] - 1]
        elif k[i] <= 0:
            out[i] = t[0]
        elif k[i] >= R:
            out[i] = t[R - 1]
        else:
            z1 = stats.norm.ppf(alpha[i])
            z2 = stats.norm.ppf(k[i] / (R + 1))
            z3 = stats.norm.ppf((k[i] + 1) / (R + 1))
            tk, tk1 = t[k[i] - 1], t[k[i]]
            out[i] = tk + (z1 - z2) / (z3 - z2) * (tk1 - tk)
    return out


def bootstrap(
    model,
    nsim: int = 500,
    seed: int | None = None,
    statistic: Callable[[Any], Any] | None = None,
    n_jobs: int = -1,
    progress: bool = True,
    *,
    backend: str = "process",
    chunksize: int | None = None,
) -> BootResult:
    """Parametric bootstrap as lme4's ``bootMer(m, FUN, nsim, seed)``.

    Parameters
    ----------
    model
        A fitted LMM or GLMM (anything with ``simulate(nsim, seed)`` and ``refit(y)``).
    nsim : int
        Number of replicates.
    seed : int, optional
        Seed of the simulation (results are reproducible and do not depend on
        ``n_jobs``).
    statistic : callable, optional
        ``fit -> Series/array`` evaluated on every refit (default
        :func:`default_statistic`: ``.sig01..``, ``.sigma``, fixed effects).
    n_jobs : int
        Worker processes (``-1``: all cores; ``1``: run here, no workers).
    progress : bool
        Show a progress bar on stderr.
    backend : "process" or "thread"
    chunksize : int, optional
        Replicates per task (default: about four tasks per worker).

    Returns
    -------
    BootResult
    """
    if not (hasattr(model, "simulate") and hasattr(model, "refit")):
        raise PyglmmError(f"cannot bootstrap {type(model).__name__}: needs simulate() and refit()")
    nsim = int(nsim)
    if nsim < 1:
        raise PyglmmError("nsim must be at least 1")
    fn = default_statistic if statistic is None else statistic
    t0_raw = fn(model)
    if isinstance(t0_raw, pd.Series):
        t0 = t0_raw.astype(float)
    else:
        arr = np.asarray(t0_raw, dtype=float).reshape(-1)
        t0 = pd.Series(arr, index=[f"t{i + 1}" for i in range(arr.size)])
    start = time.perf_counter()
    ys = np.asarray(model.simulate(nsim=nsim, seed=seed), dtype=float)
    ncpu = os.cpu_count() or 1
    workers = ncpu if n_jobs is None or n_jobs < 0 else max(1, int(n_jobs))
    workers = min(workers, nsim)
    if chunksize is None:
        chunksize = max(1, math.ceil(nsim / (4 * workers)))
    chunks = [np.arange(i, min(nsim, i + chunksize)) for i in range(0, nsim, chunksize)]
    k = len(t0)
    res = np.full((nsim, k), np.nan)
    msgs: list[str] = []
    bar = _Progress(nsim, progress)
    _WORK.update(model=model, ys=ys, statistic=fn, k=k)
    try:
        if workers > 1 and nsim > 1:
            # time one refit here: small jobs are not worth starting workers for
            t1 = time.perf_counter()
            out, _, m = _run_chunk(np.array([0]))
            res[0] = out[0]
            msgs.extend(m)
            bar.update(1)
            if (time.perf_counter() - t1) * (nsim - 1) < _MIN_PARALLEL_SECONDS:
                workers = 1
            rest = np.arange(1, nsim)
            chunks = [rest[i : i + chunksize] for i in range(0, rest.size, chunksize)]
        if workers == 1:
            for idx in chunks:
                out, _, m = _run_chunk(idx)
                res[idx] = out
                msgs.extend(m)
                bar.update(len(idx))
        else:
            if backend == "thread":
                ex = ThreadPoolExecutor(max_workers=workers)
            elif backend == "process":
                ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
                ex = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
            else:
                raise PyglmmError("backend must be 'process' or 'thread'")
            with ex:
                futs = {ex.submit(_run_chunk, idx): idx for idx in chunks}
                for fut in as_completed(futs):
                    idx = futs[fut]
                    out, _, m = fut.result()
                    res[idx] = out
                    msgs.extend(m)
                    bar.update(len(idx))
    finally:
        bar.close()
        _WORK.clear()
    t = pd.DataFrame(res, columns=t0.index)
    nfail = int(np.isnan(res).all(axis=1).sum())
    if nfail:
        warnings.warn(f"{nfail} of {nsim} bootstrap refits failed", UserWarning, stacklevel=2)
    return BootResult(
        t0=t0, t=t, nsim=nsim, seed=seed, messages=msgs, seconds=time.perf_counter() - start
    )
