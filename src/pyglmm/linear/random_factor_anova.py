r"""ANOVA with a random block factor in balanced designs (the notes' section 4.1).

Two designs, with a fixed treatment factor :math:`A` (:math:`a` levels), a random block
factor :math:`B` (:math:`b` levels) and :math:`K` replicates per cell, balanced:

**Randomized complete block design, random blocks** (``interaction=False``; the
Bonds example, :math:`K = 1`)

.. math:: y_{ijk} = \mu + \alpha_i + \beta_j + \epsilon_{ijk}, \quad
          \beta_j \sim N(0, \sigma_b^2),\ \epsilon_{ijk} \sim N(0, \sigma^2).

The block means :math:`\bar y_{\cdot j \cdot}` average the :math:`m = aK` observations
of a block:
:math:`\bar y_{\cdot j\cdot} = \mu + \bar\alpha + \beta_j + \bar\epsilon_{\cdot j\cdot}`,
with variance :math:`\sigma_b^2 + \sigma^2/m`. The aggregated model (block means on an
intercept) has residual mean square :math:`MSE_{agg}` with :math:`b - 1` df, and

.. math:: F = \frac{m \cdot MSE_{agg}}{MSE_{full}} \sim F_{b-1,\ n-a-b+1}
          \quad\text{under } H_0: \sigma_b^2 = 0,

which is the block line of the ANOVA table of the full model (:math:`MS_B/MS_E`).
(The notes write the multiplier as :math:`J` and say the means are taken over
ingots; for :math:`\sigma_b^2` they must be taken over the metals within each ingot,
and the multiplier is the number of observations averaged, here the 3 metals.)

**Two-factor mixed model** (``interaction=True``, :math:`K \ge 2`; the Machines example)

.. math:: y_{ijk} = \mu + \alpha_i + \beta_j + (\alpha\beta)_{ij} + \epsilon_{ijk},\quad
          \beta_j \sim N(0, \sigma_b^2),\ (\alpha\beta)_{ij} \sim N(0, \sigma_{ab}^2),

all independent (the *unrestricted* model, which is the model of ``lmer(y ~ A + (1|B) +
(1|B:A))``). The cell means :math:`\bar y_{ij\cdot}` follow the additive model
:math:`\bar y_{ij\cdot} = \mu + \alpha_i + \beta_j + \epsilon_{ij}` with
:math:`\epsilon_{ij} \sim N(0, \sigma_{ab}^2 + \sigma^2/K)`, so

.. math:: F = \frac{K \cdot MSE_{agg}}{MSE_{full}} \sim F_{(a-1)(b-1),\ ab(K-1)}
          \quad\text{under } H_0: \sigma_{ab}^2 = 0,

exactly the partial *F* test of the additive against the full fixed-effects model.

Expected mean squares (:math:`\theta_A = \sum_i \alpha_i^2/(a-1)`):

=========  ======================  ==================================================
Source     df                      E(MS), unrestricted (restricted)
=========  ======================  ==================================================
A          a-1                     σ² + Kσ²_ab + bK θ_A
B          b-1                     σ² + Kσ²_ab + aKσ²_b   (σ² + aKσ²_b)
A:B        (a-1)(b-1)              σ² + Kσ²_ab
Residuals  ab(K-1)                 σ²
=========  ======================  ==================================================

Equating mean squares to their expectations gives the unbiased ANOVA estimators
:math:`\hat\sigma^2 = MS_E`, :math:`\hat\sigma^2_{ab} = (MS_{AB} - MS_E)/K =
MSE_{agg} - MSE_{full}/K`, :math:`\hat\sigma^2_b = (MS_B - MS_{AB})/(aK)` (restricted:
:math:`(MS_B - MS_E)/(aK)`); for the block design :math:`\hat\sigma^2_b = (MS_B -
MS_E)/(aK)`. The tests of the mixed model are :math:`MS_A/MS_{AB}` for the treatment and
:math:`MS_B/MS_{AB}` for the blocks (restricted: :math:`MS_B/MS_E`) — the *F* values of
the aggregated model's own ANOVA table. An estimate can be negative; it is reported as
it is (as SAS ``PROC VARCOMP METHOD=TYPE1`` and the ANOVA method do), with a note: the
REML estimate (``pg.lmer``) is then 0, and otherwise, in these balanced designs, REML
and ANOVA estimates coincide.

Unbalanced data (unequal cell counts, empty cells) have no such exact tests; use
``pg.lmer`` for them.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from pyglmm.data import to_pandas
from pyglmm.errors import DataError, PyglmmError
from pyglmm.formula.levels import as_r_factor
from pyglmm.linear.anova_table import AnovaTable
from pyglmm.linear.model import LinearModel, lm
from pyglmm.linear.rprint import format_pval, format_real, print_coefmat


def aggregated_f_statistic(mse_agg: float, mse_full: float, multiplier: int) -> float:
    r"""The notes' statistic :math:`F = m \cdot MSE_{agg} / MSE_{full}`.

    ``multiplier`` is the number of observations averaged into each aggregated mean
    (:math:`K` replicates for the cell means; :math:`aK` for block means).
    """
    return multiplier * mse_agg / mse_full


@dataclass
class RandomFactorAnova:
    r"""The analysis of a balanced design with a random block factor.

    Attributes
    ----------
    design : {"rcbd", "two-factor mixed"}
    response, treatment, block : str
        Column names.
    a, b, replicates : int
        Levels of the treatment and of the block factor; observations per cell (``K``).
    ems : {"unrestricted", "restricted"}
    full_model : LinearModel
        ``response ~ treatment + block`` or ``response ~ treatment * block``.
    aggregated_data : pandas.DataFrame
        Block means (RCBD) or cell means (two-factor).
    aggregated_model : LinearModel
        ``response ~ 1`` on block means, or ``response ~ treatment + block`` on cell means.
    anova_full, anova_aggregated : AnovaTable
        Sequential ANOVA tables of the two models.
    f_statistic, df_num, df_den, p_value : float
        The aggregated-model test of the random term (σ²_b for the RCBD, σ²_ab for the
        two-factor design): :math:`m\,MSE_{agg}/MSE_{full}`.
    multiplier : int
        :math:`m`, observations per aggregated mean.
    mse_agg, mse_full : float
    tests : pandas.DataFrame
        *F* tests of the mixed model, one row per source: columns ``numerator``,
        ``denominator``, ``df_num``, ``df_den``, ``F``, ``p_value``.
    expected_mean_squares : pandas.DataFrame
        Index = sources; columns ``df``, ``mean_sq``, ``expected_mean_square``.
    variance_components : pandas.DataFrame
        Index = the random terms and ``Residual``; columns ``parameter`` (σ²_b, ...),
        ``estimate`` (unbiased ANOVA estimate, possibly negative), ``std_dev`` (NaN when
        the estimate is negative), ``estimator`` (the formula used).
    notes : list of str
        Negative estimates, and what REML would report.
    """

    design: str
    response: str
    treatment: str
    block: str
    a: int
    b: int
    replicates: int
    ems: str
    full_model: LinearModel
    aggregated_data: pd.DataFrame
    aggregated_model: LinearModel
    anova_full: AnovaTable
    anova_aggregated: AnovaTable
    multiplier: int
    mse_agg: float
    mse_full: float
    f_statistic: float
    df_num: float
    df_den: float
    p_value: float
    tests: pd.DataFrame
    expected_mean_squares: pd.DataFrame
    variance_components: pd.DataFrame
    notes: list[str]

    def __str__(self) -> str:
        t, bl = self.treatment, self.block
        lines = []
        if self.design == "rcbd":
            lines.append(
                f"Randomized complete block design: fixed {t} ({self.a} levels), random blocks "
                f"{bl} ({self.b} levels), {self.replicates} observation(s) per cell, "
                f"n = {self.full_model.nobs}"
            )
        else:
            lines.append(
                f"Two-factor mixed model ({self.ems}): fixed {t} ({self.a} levels), random {bl} "
                f"({self.b} levels) and {t}:{bl}, K = {self.replicates} replicates per cell, "
                f"n = {self.full_model.nobs}"
            )
        lines += ["", f"Full model: {self.full_model.formula}", str(self.anova_full), ""]
        what = "block means" if self.design == "rcbd" else "cell means"
        lines += [
            f"Aggregated model ({what}): {self.aggregated_model.formula}",
        ]
        if self.aggregated_model.terms:
            lines += [str(self.anova_aggregated), ""]
        else:
            lines += [f"MSE_agg = {_num(self.mse_agg)} on {self.df_num:g} df", ""]
        random_term = "sigma2_b" if self.design == "rcbd" else "sigma2_ab"
        lines.append(
            f"Test of H0: {random_term} = 0: F = {self.multiplier} * MSE_agg / MSE_full = "
            f"{self.multiplier} * {_num(self.mse_agg)} / {_num(self.mse_full)} = "
            f"{_num(self.f_statistic)} on {self.df_num:g} and {self.df_den:g} DF, "
            f"p-value: {format_pval([self.p_value], 4)[0].strip()}"
        )
        lines += ["", "F tests of the mixed model:"]
        tv = self.tests
        lines += print_coefmat(
            tv[["df_num", "df_den", "F", "p_value"]].to_numpy(dtype=float),
            [f"{i} ({r.numerator}/{r.denominator})" for i, r in tv.iterrows()],
            ["Df", "Den Df", "F value", "Pr(>F)"],
            digits=5,
            tst_ind=[2],
            has_pvalue=True,
            na_print="",
        )
        lines += ["", "Expected mean squares:"]
        ems = self.expected_mean_squares
        width = max(len(str(i)) for i in ems.index)
        ms_strs = format_real(ems["mean_sq"].to_numpy(), 5)
        for (name, row), ms in zip(ems.iterrows(), ms_strs, strict=True):
            lines.append(
                f"  {str(name).ljust(width)}  df {int(row['df']):>3}  MS {ms}  "
                f"E(MS) = {row['expected_mean_square']}"
            )
        lines += ["", "Variance components (ANOVA estimates):"]
        vc = self.variance_components
        width = max(len(str(i)) for i in vc.index)
        est = format_real(vc["estimate"].to_numpy(), 5)
        sd = format_real(vc["std_dev"].to_numpy(), 5, na="")
        for (name, row), e, s in zip(vc.iterrows(), est, sd, strict=True):
            lines.append(
                f"  {str(name).ljust(width)}  {row['parameter']:<9} {e}  sd {s}  "
                f"= {row['estimator']}"
            )
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.__str__()

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


def _num(x: float) -> str:
    return f"{x:.7g}"


def random_anova(
    data: Any,
    response: str,
    treatment: str,
    block: str,
    *,
    replicates: int | None = None,
    interaction: bool | None = None,
    ems: str = "unrestricted",
) -> RandomFactorAnova:
    r"""ANOVA of a balanced design with a fixed treatment and a random block factor.

    Parameters
    ----------
    data : DataFrame
        pandas or polars.
    response : str
        Numeric response column.
    treatment : str
        Fixed treatment factor (e.g. ``"Machine"``, ``"Metal"``).
    block : str
        Random block factor (e.g. ``"Worker"``, ``"Ingot"``).
    replicates : int, optional
        Observations per treatment-by-block cell, :math:`K`. Read from the data; when
        given, the data must have exactly this many in every cell.
    interaction : bool, optional
        Include the random treatment-by-block interaction. Default: True when each
        cell has more than one observation, False otherwise (it cannot be separated
        from the error with one observation per cell).
    ems : {"unrestricted", "restricted"}
        Expected mean squares of the two-factor mixed model. The unrestricted model
        (default) is the one ``lmer(y ~ A + (1|B) + (1|B:A))`` fits, and the one whose
        σ²_ab test the notes derive; the restricted (Scheffé) model changes the block
        test to :math:`MS_B/MS_E` and σ²_b to :math:`(MS_B - MS_E)/(aK)`.

    Returns
    -------
    RandomFactorAnova

    Raises
    ------
    DataError
        Missing columns or values, or an unbalanced design (then use ``pg.lmer``).
    """
    if ems not in ("unrestricted", "restricted"):
        raise PyglmmError("ems must be 'unrestricted' or 'restricted'")
    df = to_pandas(data)
    for col in (response, treatment, block):
        if col not in df.columns:
            raise DataError(f"column {col!r} is not in the data (columns: {list(df.columns)})")
    if treatment == block:
        raise PyglmmError("the treatment and block factors must be different columns")
    df = df[[response, treatment, block]].copy()
    if df.isna().any().any():
        bad = [c for c in df.columns if df[c].isna().any()]
        raise DataError(
            f"missing values in {bad}: the design is no longer balanced; fit the mixed model "
            "with pg.lmer, which handles unbalanced data"
        )
    for col in (treatment, block):
        if not isinstance(df[col].dtype, pd.CategoricalDtype):
            df[col] = as_r_factor(df[col])
        else:
            df[col] = df[col].cat.remove_unused_categories()
    if not np.issubdtype(np.asarray(df[response]).dtype, np.number):
        raise DataError(f"the response {response!r} is not numeric")
    counts = pd.crosstab(df[treatment], df[block])
    a, b = counts.shape
    if a < 2 or b < 2:
        raise DataError(f"need at least 2 levels of {treatment!r} and of {block!r}")
    if counts.to_numpy().min() == 0 or counts.to_numpy().max() != counts.to_numpy().min():
        raise DataError(
            f"the design is unbalanced: cell counts of {treatment} x {block} range from "
            f"{counts.to_numpy().min()} to {counts.to_numpy().max()}; the exact F tests and "
            "ANOVA estimators of variance components need equal replication in every cell. "
            f"Fit the mixed model with pg.lmer (e.g. '{response} ~ {treatment} + (1|{block})"
            f"{' + (1|' + block + ':' + treatment + ')' if counts.to_numpy().max() > 1 else ''}'"
            "), which handles unbalanced data."
        )
    k = int(counts.to_numpy()[0, 0])
    if replicates is not None and int(replicates) != k:
        raise DataError(
            f"replicates={replicates} but every {treatment} x {block} cell has {k} observation(s)"
        )
    if interaction is None:
        interaction = k > 1
    if interaction and k < 2:
        raise DataError(
            "the treatment-by-block interaction needs replicates within cells "
            "(one observation per cell here); use interaction=False"
        )
    if interaction:
        return _two_factor(df, response, treatment, block, a, b, k, ems)
    return _block_design(df, response, treatment, block, a, b, k)


def _fit(formula: str, data: pd.DataFrame) -> LinearModel:
    return lm(formula, data)


def _q(name: str) -> str:
    return name if name.isidentifier() else f"`{name}`"


def _note_negative(vc: pd.DataFrame, notes: list[str]) -> None:
    for name, row in vc.iterrows():
        if row["estimate"] < 0:
            notes.append(
                f"the ANOVA estimate of {row['parameter']} ({name}) is negative "
                f"({row['estimate']:.6g}); it is reported as computed (as SAS PROC VARCOMP "
                "METHOD=TYPE1); the REML estimate (pg.lmer) is 0 (a boundary fit)"
            )


def _block_design(
    df: pd.DataFrame, y: str, t: str, bl: str, a: int, b: int, k: int
) -> RandomFactorAnova:
    full = _fit(f"{_q(y)} ~ {_q(t)} + {_q(bl)}", df)
    anova_full = full.anova()
    means = df.groupby(bl, observed=True)[y].mean().reset_index()
    agg = _fit(f"{_q(y)} ~ 1", means)
    anova_agg = agg.anova()
    m = a * k
    mse_agg, mse_full = agg.dispersion, full.dispersion
    f = aggregated_f_statistic(mse_agg, mse_full, m)
    df1, df2 = float(agg.df_resid), float(full.df_resid)
    p = float(stats.f.sf(f, df1, df2))
    ms_t = float(anova_full.loc[t, "mean_sq"])
    ms_b = float(anova_full.loc[bl, "mean_sq"])
    ms_e = mse_full
    tests = pd.DataFrame(
        {
            "numerator": [f"MS_{t}", f"MS_{bl}"],
            "denominator": ["MSE", "MSE"],
            "df_num": [a - 1.0, b - 1.0],
            "df_den": [df2, df2],
            "F": [ms_t / ms_e, ms_b / ms_e],
        },
        index=[t, bl],
    )
    tests["p_value"] = stats.f.sf(tests["F"], tests["df_num"], tests["df_den"])
    bk = f"{b * k}" if b * k > 1 else ""
    ak = f"{a * k}"
    ems_table = pd.DataFrame(
        {
            "df": [a - 1.0, b - 1.0, df2],
            "mean_sq": [ms_t, ms_b, ms_e],
            "expected_mean_square": [
                f"sigma2 + {bk}*theta_{t}",
                f"sigma2 + {ak}*sigma2_b",
                "sigma2",
            ],
        },
        index=[t, bl, "Residuals"],
    )
    vc = pd.DataFrame(
        {
            "parameter": ["sigma2_b", "sigma2"],
            "estimate": [(ms_b - ms_e) / m, ms_e],
            "estimator": [f"(MS_{bl} - MSE)/{m}", "MSE"],
        },
        index=[bl, "Residual"],
    )
    vc["std_dev"] = np.sqrt(vc["estimate"].where(vc["estimate"] >= 0))
    vc = vc[["parameter", "estimate", "std_dev", "estimator"]]
    notes: list[str] = []
    _note_negative(vc, notes)
    return RandomFactorAnova(
        design="rcbd",
        response=y,
        treatment=t,
        block=bl,
        a=a,
        b=b,
        replicates=k,
        ems="unrestricted",
        full_model=full,
        aggregated_data=means,
        aggregated_model=agg,
        anova_full=anova_full,
        anova_aggregated=anova_agg,
        multiplier=m,
        mse_agg=mse_agg,
        mse_full=mse_full,
        f_statistic=f,
        df_num=df1,
        df_den=df2,
        p_value=p,
        tests=tests,
        expected_mean_squares=ems_table,
        variance_components=vc,
        notes=notes,
    )


def _two_factor(
    df: pd.DataFrame, y: str, t: str, bl: str, a: int, b: int, k: int, ems: str
) -> RandomFactorAnova:
    full = _fit(f"{_q(y)} ~ {_q(t)} * {_q(bl)}", df)
    anova_full = full.anova()
    means = df.groupby([t, bl], observed=True)[y].mean().reset_index()
    agg = _fit(f"{_q(y)} ~ {_q(t)} + {_q(bl)}", means)
    anova_agg = agg.anova()
    mse_agg, mse_full = agg.dispersion, full.dispersion
    f = aggregated_f_statistic(mse_agg, mse_full, k)
    df1, df2 = float(agg.df_resid), float(full.df_resid)
    p = float(stats.f.sf(f, df1, df2))
    inter = f"{t}:{bl}"
    ms_t = float(anova_full.loc[t, "mean_sq"])
    ms_b = float(anova_full.loc[bl, "mean_sq"])
    ms_ab = float(anova_full.loc[inter, "mean_sq"])
    ms_e = mse_full
    restricted = ems == "restricted"
    b_den, b_den_ms, b_den_df = ("MSE", ms_e, df2) if restricted else (f"MS_{inter}", ms_ab, df1)
    tests = pd.DataFrame(
        {
            "numerator": [f"MS_{t}", f"MS_{bl}", f"MS_{inter}"],
            "denominator": [f"MS_{inter}", b_den, "MSE"],
            "df_num": [a - 1.0, b - 1.0, df1],
            "df_den": [df1, b_den_df, df2],
            "F": [ms_t / ms_ab, ms_b / b_den_ms, ms_ab / ms_e],
        },
        index=[t, bl, inter],
    )
    tests["p_value"] = stats.f.sf(tests["F"], tests["df_num"], tests["df_den"])
    ems_b = (
        f"sigma2 + {a * k}*sigma2_b"
        if restricted
        else (f"sigma2 + {k}*sigma2_ab + {a * k}*sigma2_b")
    )
    ems_table = pd.DataFrame(
        {
            "df": [a - 1.0, b - 1.0, df1, df2],
            "mean_sq": [ms_t, ms_b, ms_ab, ms_e],
            "expected_mean_square": [
                f"sigma2 + {k}*sigma2_ab + {b * k}*theta_{t}",
                ems_b,
                f"sigma2 + {k}*sigma2_ab",
                "sigma2",
            ],
        },
        index=[t, bl, inter, "Residuals"],
    )
    s2b = (ms_b - ms_e) / (a * k) if restricted else (ms_b - ms_ab) / (a * k)
    vc = pd.DataFrame(
        {
            "parameter": ["sigma2_b", "sigma2_ab", "sigma2"],
            "estimate": [s2b, (ms_ab - ms_e) / k, ms_e],
            "estimator": [
                f"(MS_{bl} - MSE)/{a * k}" if restricted else f"(MS_{bl} - MS_{inter})/{a * k}",
                f"(MS_{inter} - MSE)/{k} = MSE_agg - MSE_full/{k}",
                "MSE",
            ],
        },
        index=[bl, f"{bl}:{t}", "Residual"],
    )
    vc["std_dev"] = np.sqrt(vc["estimate"].where(vc["estimate"] >= 0))
    vc = vc[["parameter", "estimate", "std_dev", "estimator"]]
    notes: list[str] = []
    _note_negative(vc, notes)
    return RandomFactorAnova(
        design="two-factor mixed",
        response=y,
        treatment=t,
        block=bl,
        a=a,
        b=b,
        replicates=k,
        ems=ems,
        full_model=full,
        aggregated_data=means,
        aggregated_model=agg,
        anova_full=anova_full,
        anova_aggregated=anova_agg,
        multiplier=k,
        mse_agg=mse_agg,
        mse_full=mse_full,
        f_statistic=f,
        df_num=df1,
        df_den=df2,
        p_value=p,
        tests=tests,
        expected_mean_squares=ems_table,
        variance_components=vc,
        notes=notes,
    )
