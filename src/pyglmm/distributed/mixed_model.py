r"""``pg.lmer`` on a Dask DataFrame: the blocks of :math:`[Z\;X\;y]^\top W[Z\;X\;y]` in one pass.

The linear mixed model engine (:mod:`pyglmm.mixed`) needs the rows only to form

.. math::

    A = [Z\;X\;y]^\top W\,[Z\;X\;y]

in blocks (:class:`~pyglmm.mixed.blocks.LmmBlocks`): the diagonal blocks
:math:`Z_0^\top W Z_0` of the first (largest) random-effects term, the sparse
:math:`[Z_{\text{rest}}\;X]^\top W Z_0`, :math:`Z_0^\top W y`, and the dense
:math:`[Z_{\text{rest}}\;X\;y]^\top W [Z_{\text{rest}}\;X\;y]`. Each of these is a sum
over rows, so each partition computes its share with the *global* level coding and
the workers add the shares in a tree. The client then builds the blocks from the
sums and optimizes θ exactly as :func:`pyglmm.mixed.lmer.lmer` does (profiled
REML/ML criterion, BOBYQA, lme4's convergence checks): **the data are read twice
per fit** (one pass to learn the levels, one for the blocks), however many θ the
optimizer tries.

For which models this holds
---------------------------
Everything the client holds is independent of the number of rows :math:`n`:

* the first term: :math:`\ell_0 q_0^2` numbers (``A00``) plus the sparse
  :math:`(m-1)\times \ell_0 q_0` cross products (at most :math:`(m-1)\,\ell_0 q_0`
  entries; :math:`p\,\ell_0 q_0` for a single term);
* a dense symmetric matrix of order :math:`m = \sum_{k\ge1}\ell_k q_k + p + 1`
  (the other terms' levels, the fixed effects and the response).

So a single grouping factor may have millions of levels (a model ``y ~ x + (1|g)``
with 10⁵ groups needs a few megabytes on the client), while the *other* crossed or
nested terms must have, together, at most a few thousand levels (the dense block
grows as :math:`m^2`; each worker also holds one such block per partition it is
adding). :func:`lmer` estimates the client memory before reading the rows and raises
a :class:`~pyglmm.errors.PyglmmError` naming the terms when it exceeds
``max_client_memory`` (2 GB by default).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pyglmm.distributed._dask import is_dask_collection, require_dask
from pyglmm.distributed.frame import FORMULA_LOCK, DistributedFrame, learn_frame
from pyglmm.distributed.mapreduce import map_reduce
from pyglmm.distributed.rows import DistributedNotSupported, approximate_quantiles
from pyglmm.errors import (
    DataError,
    FormulaError,
    PyglmmError,
)
from pyglmm.formula.fixed import FixedDesign
from pyglmm.formula.levels import as_r_factor
from pyglmm.formula.random import _r_label, expand_bars
from pyglmm.mixed.blas_threads import blas_threads
from pyglmm.mixed.blocks import LmmBlocks, merge_same_factor
from pyglmm.mixed.convergence import check_convergence
from pyglmm.mixed.lmer import (
    LinearMixedModel,
    _drop_rank_deficient,
    _fit_threads,
    _use_gradient,
    drop_aliased,
    fit_theta,
)
from pyglmm.mixed.lmm_objective import LmmObjective
from pyglmm.mixed.optimizer import OptResult, optimize_theta
from pyglmm.mixed.remat import ReMat

#: Default bound on the client memory the reduced blocks may take (bytes).
MAX_CLIENT_MEMORY = 2e9


# ---------------------------------------------------------------------- terms
@dataclass
class TermEncoder:
    """Grouping-factor codes and the ``z`` columns of one random-effects term, for any rows."""

    group: str
    factors: tuple[str, ...]
    factor_levels: list[list[Any]]
    combo_keys: np.ndarray | None
    design: FixedDesign
    lhs: str

    @property
    def nlevels(self) -> int:
        if self.combo_keys is not None:
            return len(self.combo_keys)
        return len(self.factor_levels[0])

    def labels(self) -> list[str]:
        if self.combo_keys is None:
            return [_r_label(v) for v in self.factor_levels[0]]
        sizes = [len(lv) for lv in self.factor_levels]
        out = []
        for k in self.combo_keys:
            parts = []
            k = int(k)
            for lv, size in zip(reversed(self.factor_levels), reversed(sizes), strict=True):
                parts.append(_r_label(lv[k % size]))
                k //= size
            out.append(":".join(reversed(parts)))
        return out

    def keys(self, data: pd.DataFrame) -> np.ndarray:
        key = np.zeros(len(data), dtype=np.int64)
        for name, levels in zip(self.factors, self.factor_levels, strict=True):
            codes = as_r_factor(data[name], levels).cat.codes.to_numpy().astype(np.int64)
            if (codes < 0).any():
                raise DataError(f"grouping factor {name!r} has a value outside its levels")
            key = key * len(levels) + codes
        return key

    def refs(self, data: pd.DataFrame) -> np.ndarray:
        key = self.keys(data)
        if self.combo_keys is None:
            return key.astype(np.intp)
        return np.searchsorted(self.combo_keys, key).astype(np.intp)

    def remat(self, data: pd.DataFrame) -> ReMat:
        """A :class:`ReMat` of these (non-empty) rows with the global level coding."""
        with FORMULA_LOCK:
            z = self.design.transform(data)
        return ReMat(
            self.group,
            self._labels_cache(),
            self.refs(data),
            z,
            self.cnames,
            self.design,
            self.factors,
        )

    @property
    def cnames(self) -> list[str]:
        return list(self.design.column_names)

    def _labels_cache(self) -> list[str]:
        cache = getattr(self, "_labels", None)
        if cache is None:
            cache = self.labels()
            object.__setattr__(self, "_labels", cache)
        return cache


def _combo_partition(part, encoder, terms: list[tuple[str, ...]], levels: dict) -> dict:
    e = encoder.encode(part)
    out = {}
    for factors in terms:
        key = np.zeros(e.n, dtype=np.int64)
        for name in factors:
            lv = levels[name]
            codes = as_r_factor(e.data[name], lv).cat.codes.to_numpy().astype(np.int64)
            key = key * len(lv) + codes
        out[factors] = np.unique(key)
    return out


def _combine_combos(a: dict, b: dict) -> dict:
    return {k: np.union1d(a[k], b[k]) for k in a}


# ---------------------------------------------------------------------- blocks pass
class _PartitionBlocks(LmmBlocks):
    """:class:`LmmBlocks` of one partition: the sums only (the Schur complement's map is
    built once, on the client, from the summed blocks)."""

    def _choose_schur_mode(self) -> str:
        return "map"

    def _build_schur_map(self) -> None:
        pass


def _blocks_partition(part, encoder, term_encoders: list[TermEncoder], p: int) -> dict | None:
    e = encoder.encode(part)
    if e.n == 0:
        return None
    w = e.weights
    terms = [te.remat(e.data) for te in term_encoders]
    yz = e.y - e.offset
    b = _PartitionBlocks(terms, e.X, yz, w)
    R_X = np.linalg.qr(e.X, mode="r") if e.n > p else e.X.copy()
    return {
        "A00": b.A00,
        "R": b.R.tocsc(),
        "Ry": b.Ry,
        "Arr": np.ascontiguousarray(b.Arr),
        "R_X": R_X,
        "n": e.n,
        "sum_log_w": 0.0 if w is None else float(np.sum(np.log(w[w > 0]))),
        "n_zero_w": 0 if w is None else int(np.count_nonzero(w == 0)),
    }


def _combine_blocks(a: dict | None, b: dict | None) -> dict | None:
    if a is None:
        return b
    if b is None:
        return a
    S = np.vstack([a["R_X"], b["R_X"]])
    return {
        "A00": a["A00"] + b["A00"],
        "R": (a["R"] + b["R"]).tocsc(),
        "Ry": a["Ry"] + b["Ry"],
        "Arr": a["Arr"] + b["Arr"],
        "R_X": np.linalg.qr(S, mode="r") if S.shape[0] > S.shape[1] else S,
        "n": a["n"] + b["n"],
        "sum_log_w": a["sum_log_w"] + b["sum_log_w"],
        "n_zero_w": a["n_zero_w"] + b["n_zero_w"],
    }


def _weights_carrier(sum_log_w: float) -> np.ndarray:
    r"""Positive numbers whose logs add up to :math:`\sum_i \log w_i`.

    :class:`~pyglmm.mixed.lmm_objective.LmmObjective` reads the prior weights only
    through :math:`\sum_{w_i>0}\log w_i`; the rows' weights stay on the cluster.
    """
    k = int(np.ceil(abs(sum_log_w) / 300.0)) + 1
    return np.exp(np.full(k, sum_log_w / k))


def _shell(te: TermEncoder) -> ReMat:
    """A term with the global levels and names for the client: no rows (one all-zero
    placeholder row, so that :func:`~pyglmm.mixed.blocks.merge_same_factor` can stack
    terms on one factor as it does in memory)."""
    q = len(te.cnames)
    return ReMat(
        te.group,
        te._labels_cache(),
        np.zeros(1, dtype=np.intp),
        np.zeros((1, q)),
        te.cnames,
        te.design,
        te.factors,
    )


def reduced_blocks(
    terms: list[ReMat], sums: dict, keep: np.ndarray, p_full: int, weighted: bool
) -> LmmBlocks:
    """:class:`LmmBlocks` from the reduced sums, keeping the X columns ``keep``.

    Mirrors :meth:`LmmBlocks.__init__` from the point where the sums exist: the engine
    terms (terms on one factor merged), the block layout, the Schur complement's map.
    """
    blocks = object.__new__(LmmBlocks)
    blocks.terms = terms
    blocks.eterms, blocks.emap = merge_same_factor(terms)
    eterms = blocks.eterms
    t0 = eterms[0]
    sizes = [t.ncols for t in eterms[1:]]
    mz = int(sum(sizes))
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    rest_idx = np.concatenate([np.arange(mz), mz + keep, [mz + p_full]]).astype(int)
    blocks.n = int(sums["n"])
    blocks.p = len(keep)
    blocks.weights = _weights_carrier(sums["sum_log_w"]) if weighted else None
    blocks.sqrtw = None
    blocks.X = None
    blocks._Xw = blocks._z0w = blocks._Z0 = blocks._Zrest = None
    blocks.q0, blocks.n0 = t0.q, t0.nlevels
    blocks.A00 = sums["A00"]
    blocks.mz = mz
    blocks.rest_slices = [slice(int(starts[i]), int(starts[i + 1])) for i in range(len(sizes))]
    blocks.m = mz + len(keep) + 1
    R = sums["R"].tocsr()[rest_idx[:-1], :].tocsc()
    R.sum_duplicates()
    R.eliminate_zeros()
    R.sort_indices()
    blocks.R = R
    blocks._RT = R.T.tocsr()
    blocks.Arr = np.asfortranarray(sums["Arr"][np.ix_(rest_idx, rest_idx)])
    blocks.schur_mode = blocks._choose_schur_mode()
    if blocks.schur_mode == "map":
        blocks._build_schur_map()
    else:
        blocks._build_dense_schur()
    blocks.Ry = np.asarray(sums["Ry"], dtype=float).reshape(-1)
    blocks.y = blocks._yw = None
    return blocks


# ---------------------------------------------------------------------- result
def _lmm_rows(part, encoder, term_encoders, kept, beta, bs, what: str, sigma: float):
    e = encoder.encode(part)
    if e.n == 0:
        return pd.Series(np.zeros(0), index=e.index, name=what, dtype=float)
    X = e.X if kept is None else e.X[:, kept]
    mu = X @ beta + e.offset
    for te, bk in zip(term_encoders, bs, strict=True):
        with FORMULA_LOCK:
            z = te.design.transform(e.data)
        mu = mu + np.einsum("ij,ij->i", z, bk[te.refs(e.data)])
    if what == "fitted":
        return pd.Series(mu, index=e.index, name="fitted")
    r = e.y - mu
    if what == "pearson" and e.weights is not None:
        r = r * np.sqrt(e.weights)
    if what in ("pearson_scaled", "scaled"):
        if e.weights is not None and what == "pearson_scaled":
            r = r * np.sqrt(e.weights)
        r = r / sigma
    return pd.Series(r, index=e.index, name="residuals")


class DistributedLinearMixedModel(LinearMixedModel):
    """A linear mixed model fitted to a Dask DataFrame (same attributes as
    :class:`~pyglmm.mixed.lmer.LinearMixedModel`).

    ``fitted`` and ``residuals()`` are lazy Dask Series; ``X``, ``y``, ``offset`` are
    not kept (``None``); ``weights`` is the weights' column name (or None).
    ``simulate``, ``refit(y)`` and the parametric bootstrap need the rows and raise
    :class:`~pyglmm.distributed.rows.DistributedNotSupported`. The scaled-residual
    quartiles of ``summary()`` are approximate beyond 10⁶ rows (min, max exact).
    """

    def __init__(
        self,
        frame: DistributedFrame,
        terms: list[ReMat],
        term_encoders: list[TermEncoder],
        blocks: LmmBlocks,
        reml: bool,
        fixef_names: list[str],
        kept_columns: np.ndarray | None,
        weights_name: str | None,
        opt: OptResult,
        conv,
        seconds: float,
    ) -> None:
        self.frame = frame
        self.formula = frame.formula.text
        self.terms = terms
        self._term_encoders = term_encoders
        self.blocks = blocks
        self.reml = bool(reml)
        self.X = None
        self.y = None
        self.offset = None
        self.weights = weights_name
        self.frame_weights_name = weights_name
        self.data_name = None
        self._kept_columns = kept_columns
        self._objective = LmmObjective(blocks, reml)
        self.theta = np.asarray(opt.x, dtype=float)
        self.theta_names = [nm for t in terms for nm in t.theta_names()]
        self.theta_lower = np.concatenate([t.theta_lower() for t in terms])
        self.objective = float(self._objective(self.theta))
        self.convergence = conv
        self.optinfo = {
            "nevals": opt.nevals,
            "nevals_total": opt.nevals + conv.nevals + 1,
            "status": opt.status,
            "message": opt.message,
            "seconds": seconds,
            "passes": 3 if any(len(t.factors) > 1 for t in terms) else 2,
        }
        self._set_estimates(blocks.n, blocks.p, fixef_names, reml)
        self._condvar = None

    def _rows(self, what: str):
        meta = pd.Series(dtype=float, name="fitted" if what == "fitted" else "residuals")
        meta.index = self.frame.ddf._meta.index
        return self.frame.ddf.map_partitions(
            _lmm_rows,
            self.frame.encoder,
            self._term_encoders,
            self._kept_columns,
            self.fixef.to_numpy(),
            self._b,
            what,
            self.sigma,
            meta=meta,
            enforce_metadata=False,
        )

    @property
    def fitted(self):  # type: ignore[override]
        """Lazy Dask Series of :math:`X\\hat\\beta + Z\\hat b + \\text{offset}`."""
        return self._rows("fitted")

    def residuals(self, type: str = "response", scaled: bool = False):  # type: ignore[override]
        """Lazy Dask Series of residuals (``"response"`` or ``"pearson"``; ``scaled``)."""
        if type not in ("response", "working", "raw", "deviance", "pearson"):
            raise ValueError(f"unknown residual type {type!r}; use 'response' or 'pearson'")
        if type == "pearson":
            return self._rows("pearson_scaled" if scaled else "pearson")
        return self._rows("scaled" if scaled else "response")

    def summary(self, *args: Any, **kwargs: Any):
        """lme4-style summary (as the in-memory model's); the scaled-residual quartiles are
        exact up to 10⁶ rows, then Dask's approximate quantiles (min and max exact)."""
        values = pd.Series(approximate_quantiles(self.residuals("pearson", scaled=True), self.nobs))
        proxy = object.__new__(_RowlessStandIn)
        proxy.__dict__.update(self.__dict__)
        # the type-7 quartiles of these five numbers are the numbers themselves
        proxy._quartiles = values
        return LinearMixedModel.summary(proxy, *args, **kwargs)

    def predict(self, newdata: Any = None, *, re_form: Any = None, allow_new_levels=False):
        """Predictions on pandas ``newdata`` (as the in-memory model); on the fitted rows
        (``newdata=None``, all random effects) a lazy Dask Series."""
        if newdata is None:
            if re_form is not None:
                raise DistributedNotSupported(
                    "predict(re_form=...) on the fitted rows of a Dask fit; pass the rows "
                    "as newdata (pandas) instead"
                )
            return self.fitted
        if is_dask_collection(newdata):
            raise DistributedNotSupported(
                "predict on a Dask newdata: use newdata.map_partitions(model.predict)"
            )
        return super().predict(newdata, re_form=re_form, allow_new_levels=allow_new_levels)

    def simulate(self, *args, **kwargs):
        raise DistributedNotSupported("simulate() needs every row on the client")

    def refit(self, y=None, *, reml=None, start=None, check_conv=False):
        """Refit with another criterion (``reml=``) from the same blocks; a new response
        (``y=``) needs the rows and is not supported."""
        if y is not None:
            raise DistributedNotSupported("refit(y=...) needs every row on the client")
        t0 = time.perf_counter()
        reml = self.reml if reml is None else reml
        obj = LmmObjective(self.blocks, reml)
        x0 = (
            np.concatenate([t.theta_start() for t in self.terms])
            if start is None
            else np.asarray(start, dtype=float)
        )
        fg = obj.value_and_gradient if _use_gradient(self.optimizer, obj) else None
        with blas_threads(_fit_threads(self.blocks)):
            opt = optimize_theta(obj, x0, self.theta_lower, fun_grad=fg)
            conv = check_convergence(obj, opt.x, opt.fun, self.theta_lower, calc_derivs=check_conv)
        return DistributedLinearMixedModel(
            self.frame,
            self.terms,
            self._term_encoders,
            self.blocks,
            reml,
            list(self.fixef.index),
            self._kept_columns,
            self.weights,
            opt,
            conv,
            time.perf_counter() - t0,
        )


class _RowlessStandIn(LinearMixedModel):
    """A distributed LMM seen by the in-memory summary: residuals are five quantiles."""

    _quartiles: pd.Series

    def residuals(self, type: str = "response", scaled: bool = False) -> pd.Series:
        return self._quartiles


# ---------------------------------------------------------------------- entry point
def lmer(
    formula: str,
    data: Any,
    reml: bool = True,
    weights: Any = None,
    offset: Any = None,
    *,
    REML: bool | None = None,
    contrasts: dict[str, str] | None = None,
    start: np.ndarray | None = None,
    calc_derivs: bool | None = None,
    optimizer: str | None = None,
    max_client_memory: float = MAX_CLIENT_MEMORY,
) -> DistributedLinearMixedModel:
    """Fit a linear mixed model to a Dask DataFrame (called by :func:`pyglmm.lmer`).

    Same arguments as :func:`pyglmm.mixed.lmer.lmer`; ``weights`` and ``offset`` must be
    column names or expressions of columns. ``max_client_memory`` (bytes) bounds the
    reduced blocks the client receives (see the module documentation).
    """
    require_dask()
    t0 = time.perf_counter()
    if REML is not None:
        reml = REML
    frame = learn_frame(formula, data, weights=weights, offset=offset, contrasts=contrasts)
    if not frame.random:
        raise FormulaError(
            f"formula {formula!r} has no random-effects terms such as (1 | g); "
            "use pg.lm for a linear model without random effects"
        )
    if frame.formula.response is None:
        raise FormulaError(f"formula {formula!r} has no response (write 'y ~ ...')")
    if frame.encoder.response_columns != 1:
        raise FormulaError("lmer needs a single numeric response (cbind() is for glmer)")
    n = frame.nobs
    bars = expand_bars(frame.random)
    interactions = list(dict.fromkeys(eb.factors for eb in bars if len(eb.factors) > 1))
    combos: dict = {}
    if interactions:
        combos = map_reduce(
            frame.partitions,
            _combo_partition,
            _combine_combos,
            frame.encoder,
            interactions,
            {f: frame.levels[f] for fs in interactions for f in fs},
            stage="learning the levels of interaction grouping factors",
        )
    encoders: list[TermEncoder] = []
    for eb in bars:
        te = TermEncoder(
            group=eb.group,
            factors=eb.factors,
            factor_levels=[frame.levels[f] for f in eb.factors],
            combo_keys=combos.get(eb.factors) if len(eb.factors) > 1 else None,
            design=_bar_design(eb, frame),
            lhs=eb.lhs,
        )
        nl, q = te.nlevels, len(te.cnames)
        if nl < 2:
            raise DataError(
                f"grouping factor {eb.group!r} in {eb} has {nl} level; "
                "a random-effects grouping factor needs at least 2 levels"
            )
        if nl >= n:
            raise DataError(
                f"grouping factor {eb.group!r} has {nl} levels for {n} observations; "
                "the number of levels of each grouping factor must be < number of observations"
            )
        if q == 0:
            raise FormulaError(f"random-effects term {eb} has no columns")
        if nl * q >= n:
            raise DataError(
                f"number of observations (={n}) <= number of random effects "
                f"(={nl * q}) for term {eb}; the random-effects parameters "
                "and the residual variance are probably unidentifiable"
            )
        encoders.append(te)
    order = sorted(range(len(encoders)), key=lambda i: -encoders[i].nlevels)
    encoders = [encoders[i] for i in order]
    p_full = frame.encoder.p
    _check_client_memory(encoders, p_full, max_client_memory)
    sums = map_reduce(
        frame.partitions,
        _blocks_partition,
        _combine_blocks,
        frame.encoder,
        encoders,
        p_full,
        stage="the blocks of [Z X y]'W[Z X y]",
    )
    if sums["n_zero_w"]:
        raise DataError("zero prior weights are not supported in lmer; drop those rows")
    names = list(frame.column_names)
    keep = _drop_rank_deficient(sums["R_X"], names)
    names, kept_columns = drop_aliased(names, keep)
    terms = [_shell(te) for te in encoders]
    blocks = reduced_blocks(terms, sums, keep, p_full, weights is not None)
    # the same optimizer, checks and polish as pyglmm.mixed.lmer.lmer
    obj, opt, conv, use_grad = fit_theta(
        terms, blocks, reml, optimizer=optimizer, start=start, calc_derivs=calc_derivs
    )
    model = DistributedLinearMixedModel(
        frame,
        terms,
        [encoders[i] for i in range(len(encoders))],
        blocks,
        reml,
        names,
        kept_columns,
        weights if isinstance(weights, str) else None,
        opt,
        conv,
        0.0,
    )
    model.optimizer = optimizer
    model.optinfo["optimizer"] = "lbfgsb" if use_grad else "bobyqa"
    model.optinfo["seconds"] = time.perf_counter() - t0
    return model


def _bar_design(eb, frame: DistributedFrame) -> FixedDesign:
    try:
        design = FixedDesign(eb.lhs, frame.meta)
    except FormulaError as exc:
        raise FormulaError(f"cannot build the random-effects model matrix of {eb}: {exc}") from None
    if any(v for v in design.spec.transform_state.values()):
        raise FormulaError(
            f"the random-effects term {eb} uses a stateful transform; on a Dask DataFrame "
            "compute such columns before the fit"
        )
    return design


def _check_client_memory(encoders: list[TermEncoder], p: int, limit: float) -> None:
    # terms on one grouping factor are merged into one engine term (as in memory)
    groups: dict[tuple, list[int]] = {}
    for te in encoders:
        key = (te.group, te.factors)
        groups.setdefault(key, [te.nlevels, 0])[1] += len(te.cnames)
    sizes = list(groups.values())
    t0 = encoders[0]
    n0, q0 = sizes[0]
    mz = sum(nl * q for nl, q in sizes[1:])
    m = mz + p + 1
    need = 8.0 * (m * m + n0 * q0 * q0 + n0 * q0 * (p + 1))
    if need > limit:
        rest = ", ".join(
            f"{te.group} ({te.nlevels} levels x {len(te.cnames)})" for te in encoders[1:]
        )
        raise PyglmmError(
            f"this model needs about {need / 1e9:.1f} GB on the client: after the first "
            f"random-effects term ({t0.group}, {n0} levels, which costs little) the other "
            f"terms [{rest}] and the {p} fixed effects make a dense block of order {m}. "
            f"The limit is max_client_memory={limit:.3g} bytes; raise it if the client has "
            "the memory, or reduce the levels of the crossed/nested terms"
        )
