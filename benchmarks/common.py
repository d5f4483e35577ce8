"""Shared machinery of the benchmarks: timing, the R bridge, memory probes, tables.

Every benchmark script fits pyglmm and its peers on the same data in one run and prints
ratios; absolute times on a 2-core shared machine are noisy, ratios within one run much less so.
Times are medians over repetitions (``reps``); a fit that takes longer than ``budget`` seconds
is not repeated (its single time is reported, with a note).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.metadata as _md
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RSCRIPT = shutil.which("Rscript") or "/usr/bin/Rscript"


# --------------------------------------------------------------------------------------------
# results


@dataclass
class FitResult:
    """What one peer reports for one benchmark case.

    ``times`` are wall-clock seconds of the fit call, one per repetition. ``coef`` are the
    fixed-effect (or GLM) coefficients in the model's column order, ``objective`` the criterion
    the fit minimised on lme4's scale (GLM: deviance; LMM: REML criterion or ML deviance;
    GLMM: -2 log-likelihood at the Laplace optimum), ``n_eval`` the number of objective
    evaluations where the package reports it.
    """

    peer: str
    times: list[float] = field(default_factory=list)
    coef: np.ndarray | None = None
    names: list[str] | None = None
    objective: float = math.nan
    n_eval: int | str | None = None
    note: str = ""
    skipped: bool = False

    @property
    def seconds(self) -> float:
        return statistics.median(self.times) if self.times else math.nan


def skipped(peer: str, why: str) -> FitResult:
    return FitResult(peer=peer, note=why, skipped=True)


# --------------------------------------------------------------------------------------------
# timing


class FitTimeout(Exception):
    """Raised inside a fit that ran past its time limit (Python code only: a call into a
    compiled extension is interrupted when it returns to the interpreter)."""


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    if not seconds or not hasattr(signal, "SIGALRM"):
        yield
        return

    def _raise(signum: int, frame: Any) -> None:
        raise FitTimeout(f"stopped after {seconds:.0f} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def repeat(
    fit: Callable[[], Any],
    reps: int,
    *,
    warmup: bool = False,
    budget: float = 60.0,
    limit: float | None = None,
) -> tuple[list[float], Any, str]:
    """Run ``fit`` ``reps`` times; return (times, last result, note).

    ``warmup`` runs one untimed fit first (imports, caches, lazily loaded modules).
    A repetition slower than ``budget`` seconds ends the series. ``limit`` aborts a single
    fit after that many seconds (raises :class:`FitTimeout`).
    """
    note = ""
    if warmup:
        with time_limit(limit):
            fit()
    times: list[float] = []
    out = None
    for _ in range(reps):
        with time_limit(limit):
            t0 = time.perf_counter()
            out = fit()
            times.append(time.perf_counter() - t0)
        if times[-1] > budget and len(times) < reps:
            note = f"{len(times)} rep(s): slower than {budget:.0f} s"
            break
    return times, out, note


# --------------------------------------------------------------------------------------------
# comparisons


def max_rel_diff(a: np.ndarray | None, b: np.ndarray | None, floor: float = 1e-8) -> float:
    """max_i |a_i - b_i| / max(|b_i|, floor); NaN when either is missing or shapes differ."""
    if a is None or b is None:
        return math.nan
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        return math.nan
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), floor)))


def fmt_time(s: float) -> str:
    if not math.isfinite(s):
        return "-"
    if s < 1e-2:
        return f"{s * 1e3:.2f} ms"
    if s < 1:
        return f"{s * 1e3:.0f} ms"
    return f"{s:.2f} s"


def fmt_num(x: float | None, digits: int = 10) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}g}"


def print_table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """Print a GitHub-markdown table (also readable on a terminal) and return its text."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def report_case(title: str, results: list[FitResult], *, reference: str = "pyglmm") -> str:
    """Print one case: time, ratio pyglmm / peer, objective and its difference to the best,
    coefficient agreement with pyglmm, evaluation counts, notes."""
    print(f"\n### {title}", flush=True)
    ref = next((r for r in results if r.peer == reference and not r.skipped), None)
    # coefficients are compared with pyglmm's, or (pyglmm absent) with the first peer's
    coef_ref = ref or next((r for r in results if not r.skipped and r.coef is not None), None)
    finite_obj = [r.objective for r in results if not r.skipped and math.isfinite(r.objective)]
    best = min(finite_obj) if finite_obj else math.nan
    rows = []
    for r in results:
        if r.skipped:
            rows.append([r.peer, "-", "-", "-", "-", "-", "-", r.note])
            continue
        ratio = ref.seconds / r.seconds if ref is not None and r.peer != reference else math.nan
        obj_gap = r.objective - best if math.isfinite(r.objective) else math.nan
        coef_diff = (
            max_rel_diff(r.coef, coef_ref.coef)
            if coef_ref is not None and r is not coef_ref
            else math.nan
        )
        rows.append(
            [
                r.peer,
                fmt_time(r.seconds) + f" (n={len(r.times)})",
                f"{ratio:.3f}" if math.isfinite(ratio) else "-",
                fmt_num(r.objective, 12),
                f"{obj_gap:.2e}" if math.isfinite(obj_gap) else "-",
                f"{coef_diff:.1e}" if math.isfinite(coef_diff) else "-",
                "-" if r.n_eval is None else str(r.n_eval),
                r.note,
            ]
        )
    text = print_table(
        rows,
        [
            "peer",
            "median time",
            "pyglmm/peer",
            "objective",
            "obj - best",
            f"max rel coef diff vs {coef_ref.peer if coef_ref else '-'}",
            "evals",
            "note",
        ],
    )
    return f"### {title}\n\n{text}\n"


# --------------------------------------------------------------------------------------------
# machine and versions


def machine_info() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
                break
    versions = {}
    for name in ["pyglmm", "numpy", "scipy", "pandas", "statsmodels", "glum", "glmm", "mixedlm"]:
        try:
            versions[name] = _md.version(name)
        except _md.PackageNotFoundError:
            versions[name] = "missing"
    blas = "unknown"
    with contextlib.suppress(Exception):
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]["name"]
    r_version = "not found"
    if Path(RSCRIPT).exists():
        with contextlib.suppress(Exception):
            r_version = subprocess.run(
                [
                    RSCRIPT,
                    "-e",
                    'cat(R.version$major, ".", R.version$minor, ", lme4 ", '
                    'format(packageVersion("lme4")), sep="")',
                ],
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout.strip()
    load = "unknown"
    with contextlib.suppress(OSError):
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load average at start (1/5/15 min)": load,
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "python": platform.python_version(),
        "blas": blas,
        "R": r_version,
        **versions,
    }


def print_machine() -> str:
    info = machine_info()
    text = "\n".join(f"- {k}: {v}" for k, v in info.items())
    print(text, flush=True)
    return text


# --------------------------------------------------------------------------------------------
# the R bridge: data go through a CSV in a temp dir, the fit is timed inside R


def r_available() -> bool:
    if not Path(RSCRIPT).exists():
        return False
    try:
        out = subprocess.run(
            [RSCRIPT, "-e", "suppressMessages(library(lme4)); cat('ok')"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.stdout.strip().endswith("ok")


_TMP = Path(tempfile.mkdtemp(prefix="pyglmm-bench-"))


def tmpdir() -> Path:
    return _TMP


def write_for_r(df: pd.DataFrame, name: str) -> tuple[Path, dict[str, list[str]]]:
    """Write ``df`` to CSV for R; return the path and each factor's levels in order."""
    path = _TMP / f"{name}.csv"
    factors: dict[str, list[str]] = {}
    out = df.copy()
    for col in df.columns:
        if isinstance(df[col].dtype, pd.CategoricalDtype):
            factors[col] = [str(c) for c in df[col].cat.categories]
            out[col] = df[col].astype(str)
    if not path.exists():
        out.to_csv(path, index=False, float_format="%.17g")
    return path, factors


def run_r(
    df: pd.DataFrame,
    name: str,
    *,
    kind: str,
    formula: str,
    family: str = "gaussian",
    reml: bool = True,
    reps: int = 3,
    warmup: bool = False,
    budget: float = 60.0,
    timeout: float = 1800.0,
    peer: str | None = None,
) -> FitResult:
    """Fit in R (``kind`` in glm, lmer, glmer), timing only the fit call inside R."""
    peer = peer or {"glm": "R glm", "lmer": "lme4", "glmer": "lme4"}[kind]
    path, factors = write_for_r(df, name)
    spec = {
        "csv": str(path),
        "factors": factors,
        "kind": kind,
        "formula": formula,
        "family": family,
        "reml": reml,
        "reps": reps,
        "warmup": warmup,
        "budget": budget,
    }
    spec_path = _TMP / f"{name}-{kind}-spec.json"
    out_path = _TMP / f"{name}-{kind}-out.json"
    spec["out"] = str(out_path)
    spec_path.write_text(json.dumps(spec))
    try:
        proc = subprocess.run(
            [RSCRIPT, str(HERE / "r_fit.R"), str(spec_path)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return skipped(peer, f"R did not finish within {timeout:.0f} s")
    if proc.returncode != 0 or not out_path.exists():
        lines = (proc.stderr or "").strip().splitlines()
        why = lines[-1][:200] if lines else f"exit code {proc.returncode}"
        return skipped(peer, "R failed: " + why)
    res = json.loads(out_path.read_text())
    out_path.unlink()
    times = [float(t) for t in np.atleast_1d(res["times"])]
    note = res.get("note", "") or ""
    if isinstance(note, list):
        note = "; ".join(note)
    return FitResult(
        peer=peer,
        times=times,
        coef=np.asarray(res["coef"], dtype=float),
        names=list(np.atleast_1d(res["names"])),
        objective=float(res["objective"]),
        n_eval=None if res.get("feval") in (None, "NA") else int(res["feval"]),
        note=note,
    )


# --------------------------------------------------------------------------------------------
# pyglmm's peak memory, measured in a subprocess


def pyglmm_memory(df: pd.DataFrame, name: str, call: dict[str, Any]) -> dict[str, float]:
    """Fit pyglmm once in a fresh interpreter; return peak RSS (ru_maxrss) before and after the
    fit and the tracemalloc peak of the fit itself, in MiB."""
    path = _TMP / f"{name}.pkl"
    if not path.exists():
        df.to_pickle(path)
    spec_path = _TMP / f"{name}-mem.json"
    spec_path.write_text(json.dumps({"data": str(path), **call}))
    proc = subprocess.run(
        [sys.executable, str(HERE / "memprobe.py"), str(spec_path)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1][:200] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def memory_line(mem: dict[str, Any]) -> str:
    """One line of pyglmm's peak memory, as the mixed-model scripts print it."""
    return "pyglmm peak memory: " + ", ".join(
        f"{k} {v:.0f}" if isinstance(v, float) else f"{k} {v}" for k, v in mem.items()
    )


def mixed_target_line(
    name: str,
    results: list[FitResult],
    *,
    lme4_factor: float,
    objective_label: str,
    mem: dict[str, Any] | None = None,
) -> str | None:
    """The target summary of one mixed-model case: pyglmm's time, its ratio to the
    fastest peer and lme4's ratio to it, its optimum against the best, peak memory."""
    by = {r.peer: r for r in results if not r.skipped}
    if "pyglmm" not in by:
        return None
    pg = by["pyglmm"].seconds
    others = {p: r.seconds for p, r in by.items() if p != "pyglmm"}
    fastest = min(others, key=others.get) if others else None
    parts = [f"pyglmm {fmt_time(pg)}"]
    if fastest:
        parts.append(f"pyglmm/fastest peer ({fastest}) = {pg / others[fastest]:.2f}")
    if "lme4" in by:
        parts.append(f"lme4/pyglmm = {by['lme4'].seconds / pg:.1f} (target >= {lme4_factor:g})")
    objs = {p: r.objective for p, r in by.items() if math.isfinite(r.objective)}
    if objs:
        gap = by["pyglmm"].objective - min(objs.values())
        parts.append(f"pyglmm {objective_label} - best = {gap:.2e}")
    if mem and "rss_peak_mib" in mem:
        parts.append(f"peak RSS {mem['rss_peak_mib']:.0f} MiB (target < 1024)")
    return f"{name}: " + ", ".join(parts)


def finish_report(report: list[str], summary: list[str], out: str | None) -> None:
    """Print the targets and write the markdown report if asked."""
    if summary:
        print("\n## Targets")
        report.append("#### Targets\n")
        for line in summary:
            print("- " + line)
            report.append("- " + line)
    if out:
        Path(out).write_text("\n".join(report) + "\n")
