"""Fits on more rows than memory: pg.glm and pg.lmer on a Dask DataFrame, local cluster.

The data are generated partition by partition on the workers (``dd.from_map``), so they
never exist in one place: every pass over the data regenerates each partition, as a
pass over files would re-read them. For each model and each number of workers (one
worker process per core, one thread each) the script reports the wall time of the fit,
the number of passes over the data, the CPU seconds the workers spent (the work, which a
busy machine does not distort), the machine's load average before the fit, and the peak
memory of the client process (resident set size sampled every 20 ms during the fit, minus
the size before it).

Usage::

    python benchmarks/bench_dask.py                       # 10^7 rows, 1 and 2 workers
    python benchmarks/bench_dask.py --rows 200000 --partitions 4 --check   # smoke run

``--check`` also fits the same rows in memory (only sensible for small ``--rows``) and
prints the largest relative difference of the coefficients.

Cases
-----
* GLM: logistic regression, 10^7 rows x 20 numeric predictors (21 coefficients).
* LMM: ``y ~ x1 + x2 + (1 | g)`` with 10^7 rows and 100,000 groups.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time

import numpy as np
import pandas as pd

N_PRED = 20
N_GROUPS = 100_000


def glm_partition(i: int, rows: int, seed: int) -> pd.DataFrame:
    """Partition ``i`` of the GLM data: 20 standard normal predictors, a 0/1 response."""
    rng = np.random.default_rng([seed, i])
    X = rng.standard_normal((rows, N_PRED))
    beta = np.linspace(-0.5, 0.5, N_PRED)
    eta = -0.3 + X @ beta
    y = (rng.random(rows) < 1 / (1 + np.exp(-eta))).astype(float)
    df = pd.DataFrame(X, columns=[f"x{j + 1}" for j in range(N_PRED)])
    df["y"] = y
    return df


def lmm_partition(i: int, rows: int, seed: int) -> pd.DataFrame:
    """Partition ``i`` of the LMM data: groups spread over all partitions."""
    u = np.random.default_rng([seed, 10**6]).standard_normal(N_GROUPS) * 0.8
    rng = np.random.default_rng([seed, i])
    g = rng.integers(0, N_GROUPS, rows)
    x1, x2 = rng.standard_normal(rows), rng.standard_normal(rows)
    y = 1.0 + 0.5 * x1 - 0.3 * x2 + u[g] + rng.standard_normal(rows)
    return pd.DataFrame({"g": g, "x1": x1, "x2": x2, "y": y})


def make_frame(kind: str, rows: int, partitions: int, seed: int):
    import dask.dataframe as dd

    per = [rows // partitions + (1 if k < rows % partitions else 0) for k in range(partitions)]
    func = glm_partition if kind == "glm" else lmm_partition
    meta = func(0, 2, seed).iloc[:0]
    return dd.from_map(
        lambda spec: func(spec[0], spec[1], seed),
        list(enumerate(per)),
        meta=meta,
        enforce_metadata=False,
    )


def _rss_mib() -> float:
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / 2**20


class PeakRSS:
    """Peak resident set size of this process while the block runs (sampled)."""

    def __enter__(self):
        self.base = _rss_mib()
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mib())
            time.sleep(0.02)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss_mib())


def _cpu_of_this_process() -> float:
    import psutil

    t = psutil.Process().cpu_times()
    return t.user + t.system


def _worker_cpu(client) -> float:
    """CPU seconds used so far by all worker processes."""
    return float(sum(client.run(_cpu_of_this_process).values()))


def fit(kind: str, ddf):
    import pyglmm as pg

    if kind == "glm":
        rhs = " + ".join(f"x{j + 1}" for j in range(N_PRED))
        return pg.glm(f"y ~ {rhs}", ddf, family="binomial")
    return pg.lmer("y ~ x1 + x2 + (1 | g)", ddf, calc_derivs=False)


def run(kind: str, rows: int, partitions: int, workers: int, seed: int, check: bool) -> dict:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            memory_limit="6GB",
            silence_logs=40,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(lambda: __import__("pyglmm"))  # warm the workers' imports
        ddf = make_frame(kind, rows, partitions, seed)
        cpu0 = _worker_cpu(client)
        load = os.getloadavg()[0]
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            m = fit(kind, ddf)
            seconds = time.perf_counter() - t0
        worker_cpu = _worker_cpu(client) - cpu0
        out = {
            "model": kind,
            "rows": rows,
            "partitions": partitions,
            "workers": workers,
            "seconds": round(seconds, 2),
            "worker_cpu_seconds": round(worker_cpu, 1),
            "load_average_before": round(load, 1),
            "client_rss_before_mib": round(mem.base, 1),
            "client_peak_increase_mib": round(mem.peak - mem.base, 1),
        }
        if kind == "glm":
            out.update(
                passes=m.passes,
                iterations=m.iterations,
                deviance=m.deviance,
                coef_head=m.coef.iloc[:3].round(6).tolist(),
            )
        else:
            out.update(
                passes=m.optinfo["passes"],
                objective=m.objective,
                theta=m.theta.tolist(),
                sigma=m.sigma,
                fixef=m.fixef.round(6).tolist(),
                nevals=m.optinfo["nevals"],
            )
        if check:
            import pyglmm as pg

            pdf = ddf.compute()
            if kind == "glm":
                ref = pg.glm(
                    f"y ~ {' + '.join(f'x{j + 1}' for j in range(N_PRED))}", pdf, family="binomial"
                ).coef
                new = m.coef
            else:
                ref = pg.lmer("y ~ x1 + x2 + (1 | g)", pdf, calc_derivs=False).fixef
                new = m.fixef
            out["max_rel_diff_vs_in_memory"] = float(np.max(np.abs(new / ref - 1)))
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10**7)
    ap.add_argument("--partitions", type=int, default=50)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--only", choices=["glm", "lmm"], default=None)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--out", default=None, help="append JSON lines here")
    args = ap.parse_args()
    kinds = [args.only] if args.only else ["glm", "lmm"]
    for kind in kinds:
        for w in args.workers:
            res = run(kind, args.rows, args.partitions, w, args.seed, args.check)
            line = json.dumps(res)
            print(line, flush=True)
            if args.out:
                with open(args.out, "a") as fh:
                    fh.write(line + "\n")


if __name__ == "__main__":
    main()
