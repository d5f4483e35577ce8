"""The ``pyglmm`` command line (run in-process through ``main``, plus one subprocess)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pyglmm
from pyglmm.cli import main, read_data

DATA_DIR = Path(pyglmm.__file__).parent / "datasets" / "data"
FIXTURES = Path(__file__).parent / "fixtures" / "diagnostics"
CEB_ROUNDED = "round(y) ~ dur + res + educ + offset(log(n))"
CEB = "y ~ dur + res + educ + offset(log(n))"


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_fit_prints_summary_and_writes_json(capsys, tmp_path):
    target = tmp_path / "fit.json"
    status, out, err = run(
        capsys, "fit", CEB_ROUNDED, "--data", "ceb", "--family", "poisson", "--json", str(target)
    )
    assert status == 0
    assert "Residual deviance:   70.665  on 59  degrees of freedom" in out  # the notes' summary
    assert "AIC: 522.14" in out
    assert "Traceback" not in err
    res = json.loads(target.read_text())
    assert res["model"] == "glm" and res["family"] == "poisson" and res["link"] == "log"
    assert res["deviance"] == pytest.approx(70.665, abs=5e-4)
    assert res["aic"] == pytest.approx(522.14, abs=5e-3)
    assert res["df_resid"] == 59 and res["nobs"] == 70 and res["dispersion"] == 1.0
    coefs = {row["term"]: row for row in res["coefficients"]}
    assert list(coefs)[:2] == ["(Intercept)", "dur10-14"]
    assert coefs["(Intercept)"]["estimate"] == pytest.approx(0.05754, abs=5e-6)
    assert coefs["educupper"]["std_error"] == pytest.approx(0.03000, abs=5e-6)
    # the notes' three largest Cook's distances (section 3.6.1)
    largest = res["diagnostics"]["cooks_distance_largest"]
    assert [r["row"] for r in largest] == ["57", "30", "65"]
    assert largest[0]["value"] == pytest.approx(0.2448544534, abs=1e-10)


def test_fit_json_to_stdout_is_pure_json(capsys):
    status, out, _ = run(
        capsys, "fit", CEB_ROUNDED, "--data", "ceb", "--family", "poisson", "--json", "-"
    )
    assert status == 0
    assert json.loads(out)["null_deviance"] == pytest.approx(3731.852, abs=5e-4)


def test_fit_writes_plots(capsys, tmp_path):
    status, _, err = run(
        capsys, "fit", CEB_ROUNDED, "--data", "ceb", "--family", "poisson",
        "--plots", str(tmp_path / "plots"), "-q",
    )  # fmt: skip
    assert status == 0
    files = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert files == ["cooks.png", "diagnostics.png", "residuals.png"]
    for name in files:
        assert (tmp_path / "plots" / name).read_bytes()[:4] == b"\x89PNG"
        assert name in err


def test_fit_csv_file_binomial_against_r(capsys, tmp_path):
    # in the CSV file period is a number (1..4): --factor (or factor() in the formula) as R
    ref = json.loads((FIXTURES / "cbpp_binomial.json").read_text())
    status, out, _ = run(
        capsys, "fit", "cbind(incidence, size - incidence) ~ period", "--factor", "period",
        "--data", str(DATA_DIR / "cbpp.csv"), "--family", "binomial", "--json", "-",
    )  # fmt: skip
    assert status == 0
    got = {row["term"]: row["estimate"] for row in json.loads(out)["coefficients"]}
    assert got == pytest.approx(ref["coef"], rel=1e-7)
    status, out, _ = run(
        capsys, "fit", "cbind(incidence, size - incidence) ~ factor(period)",
        "--data", str(DATA_DIR / "cbpp.csv"), "--family", "binomial", "--json", "-",
    )  # fmt: skip
    got = [row["estimate"] for row in json.loads(out)["coefficients"]]
    assert got == pytest.approx(list(ref["coef"].values()), rel=1e-7)


def test_fit_weights_offset_and_link(capsys):
    status, out, _ = run(
        capsys, "fit", "incidence / size ~ period", "--data", "cbpp", "--family", "binomial",
        "--weights", "size", "--link", "logit", "--json", "-",
    )  # fmt: skip
    assert status == 0
    ref = json.loads((FIXTURES / "cbpp_binomial.json").read_text())
    got = {row["term"]: row["estimate"] for row in json.loads(out)["coefficients"]}
    assert got == pytest.approx(ref["coef"], rel=1e-7)  # proportions + weights = cbind()
    status, out, _ = run(
        capsys, "fit", "round(y) ~ dur + res + educ", "--data", "ceb", "--family", "poisson",
        "--offset", "log(n)", "--json", "-",
    )  # fmt: skip
    assert status == 0
    assert json.loads(out)["deviance"] == pytest.approx(70.665, abs=5e-4)


def test_fit_negative_binomial_against_r(capsys):
    # theta estimated as MASS::glm.nb; then known theta as negative.binomial(theta)
    ref = json.loads((FIXTURES / "cbpp_negbin.json").read_text())
    status, out, _ = run(
        capsys, "fit", "incidence ~ period + offset(log(size))", "--data", "cbpp",
        "--family", "negative.binomial", "--json", "-",
    )  # fmt: skip
    assert status == 0
    res = json.loads(out)
    assert res["theta"] == pytest.approx(ref["theta"], rel=1e-6)
    got = {row["term"]: row["estimate"] for row in res["coefficients"]}
    assert got == pytest.approx(ref["coef"], rel=1e-6)
    ref = json.loads((FIXTURES / "cbpp_negbin_glm.json").read_text())
    status, out, _ = run(
        capsys, "fit", "incidence ~ period + offset(log(size))", "--data", "cbpp",
        "--family", "negative.binomial", "--theta", str(ref["theta"]), "--json", "-",
    )  # fmt: skip
    res = json.loads(out)
    assert res["dispersion"] == pytest.approx(ref["dispersion"], rel=1e-9)


@pytest.mark.parametrize(
    ("filename", "writer"),
    [
        ("ceb.parquet", lambda df, p: df.to_parquet(p)),
        ("ceb.tsv", lambda df, p: df.to_csv(p, sep="\t")),
        ("ceb.csv.gz", lambda df, p: df.to_csv(p)),
    ],
)
def test_read_data_formats(tmp_path, filename, writer):
    df = pyglmm.datasets.load("ceb")
    path = tmp_path / filename
    writer(df, path)
    back = read_data(str(path))
    assert list(back.index) == list(df.index)
    assert list(back.columns) == list(df.columns)
    assert back["y"].tolist() == df["y"].tolist()


def test_read_whitespace_dat_keeps_row_names():
    df = read_data(str(DATA_DIR / "ceb.dat"))
    assert df.index[16] == "17" and "68" not in df.index and len(df) == 70


def test_lm_with_anova(capsys):
    ref = json.loads((FIXTURES / "machines_lm.json").read_text())
    status, out, _ = run(
        capsys, "lm", "score ~ Machine + Worker", "--data", "Machines", "--anova", "--json",
        "-", "-q",
    )  # fmt: skip
    assert status == 0
    res = json.loads(out)
    got = {row["term"]: row["estimate"] for row in res["coefficients"]}
    assert got == pytest.approx(ref["coef"], rel=1e-9)
    assert res["sigma"] ** 2 == pytest.approx(ref["dispersion"], rel=1e-9)
    status, out, _ = run(capsys, "lm", "Reaction ~ Days", "--data", "sleepstudy", "--anova")
    assert status == 0
    assert "Analysis of Variance Table" in out and "Residual standard error: 47.71" in out


def test_datasets_and_version(capsys):
    status, out, _ = run(capsys, "datasets")
    assert status == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert names == pyglmm.datasets.names()
    assert "Children Ever Born" in out
    status, out, _ = run(capsys, "--version")
    assert status == 0 and out.strip() == f"pyglmm {pyglmm.__version__}"


LMER_FIXTURES = Path(__file__).parent / "fixtures" / "lmer"
GLMER_FIXTURES = Path(__file__).parent / "fixtures" / "glmer"


@pytest.mark.skipif(not hasattr(pyglmm, "lmer"), reason="pg.lmer not available")
def test_lmer_against_lme4(capsys, tmp_path):
    ref = json.loads((LMER_FIXTURES / "sleepstudy_reml.json").read_text())
    status, out, err = run(
        capsys, "lmer", ref["formula"], "--data", "sleepstudy", "--json", "-",
        "--plots", str(tmp_path),
    )  # fmt: skip
    assert status == 0
    res = json.loads(out)
    assert res["model"] == "lmer" and res["reml"] is True
    assert res["objective"] == pytest.approx(ref["objective"], rel=1e-6)
    got = {row["term"]: row["estimate"] for row in res["coefficients"]}
    assert got == pytest.approx(ref["fixef"], rel=1e-4)
    assert res["sigma"] == pytest.approx(ref["sigma"], rel=1e-4)
    assert [v["group"] for v in res["varcorr"]] == ["Subject", "Subject", "Subject", "Residual"]
    for name in ("residuals.png", "ranef.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    status, out, _ = run(capsys, "lmer", ref["formula"], "--data", "sleepstudy", "--ml")
    assert status == 0 and "Linear mixed model fit by maximum likelihood" in out


@pytest.mark.skipif(not hasattr(pyglmm, "glmer"), reason="pg.glmer not available")
def test_glmer_against_lme4(capsys):
    ref = json.loads((GLMER_FIXTURES / "cbpp_agq5.json").read_text())
    status, out, _ = run(
        capsys, "glmer", ref["formula"], "--data", "cbpp", "--family", "binomial",
        "--nagq", "5", "--json", "-",
    )  # fmt: skip
    assert status == 0
    res = json.loads(out)
    assert res["model"] == "glmer" and res["family"] == "binomial" and res["nagq"] == 5
    assert res["loglik"] == pytest.approx(ref["loglik"], rel=1e-6)
    got = {row["term"]: row["estimate"] for row in res["coefficients"]}
    assert got == pytest.approx(ref["fixef"], rel=1e-4)


BAD_INPUT = [
    (["fit", "y ~ dur", "--data", "no_such_file.csv"], "no data file 'no_such_file.csv'"),
    (["fit", "y ~ durx", "--data", "ceb", "--family", "poisson"], "'durx'"),
    (["fit", "y ~ dur", "--data", "ceb", "--family", "binomial"], "binomial"),
    (["fit", "res ~ dur", "--data", "ceb", "--family", "poisson"], "res"),
    (["fit", "y ~ (dur", "--data", "ceb", "--family", "poisson"], "parentheses"),
    (["fit", "y ~ dur", "--data", "ceb", "--family", "weibull"], "unknown family 'weibull'"),
    (["fit", "y ~ dur", "--data", "ceb", "--family", "poisson", "--link", "logit"], "logit"),
    (["fit", "y ~ dur", "--data", "ceb", "--weights", "wt"], "--weights 'wt'"),
    (["fit", "y ~ dur + (1 | res)", "--data", "ceb", "--family", "poisson"], "random"),
    (["lm", "~ dur", "--data", "ceb"], "response"),
    (["lm", "y ~ dur", "--data", "ceb", "--factor", "n,nope"], "--factor 'nope'"),
    (["lmer", "Reaction ~ Days", "--data", "sleepstudy"], "random-effects terms"),
    (["glmer", "y ~ dur + (1 | res)", "--data", "ceb", "--family", "binomial"], "binomial"),
]


@pytest.mark.parametrize(("argv", "fragment"), BAD_INPUT)
def test_bad_input_is_one_clear_line(capsys, argv, fragment):
    status, out, err = run(capsys, *argv)
    assert status == 1
    errors = [line for line in err.splitlines() if not line.startswith("pyglmm: warning:")]
    assert len(errors) == 1, err
    assert errors[0].startswith("pyglmm: error: ") and fragment in errors[0]
    assert "Traceback" not in err


def test_unreadable_file_and_unwritable_json(capsys, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\xff\xfe\x00garbage\x00\n\x00")
    status, _, err = run(capsys, "fit", "y ~ x", "--data", str(bad))
    assert status == 1 and err.startswith("pyglmm: error: ") and "Traceback" not in err
    status, _, err = run(capsys, "fit", "y ~ x", "--data", str(tmp_path))
    assert status == 1 and "directory" in err
    target = tmp_path / "missing_dir" / "file.json"
    target.parent.mkdir()
    target.parent.chmod(0o500)
    try:
        status, _, err = run(capsys, "lm", "Reaction ~ Days", "--data", "sleepstudy", "-q",
                             "--json", str(target))  # fmt: skip
    finally:
        target.parent.chmod(0o700)
    if status == 1:  # (root may write anyway)
        assert err.strip().splitlines()[-1].startswith("pyglmm: error: ")


@pytest.mark.parametrize("argv", [["fit", "y ~ x"], ["nonsense"], []])
def test_usage_errors(capsys, argv):
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert "Traceback" not in err


def test_subprocess_smoke():
    exe = shutil.which("pyglmm")
    cmd = [exe] if exe else [sys.executable, "-m", "pyglmm.cli"]
    proc = subprocess.run(
        [*cmd, "fit", CEB, "--data", "ceb", "--family", "poisson"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Coefficients:" in proc.stdout and "dur10-14" in proc.stdout
    assert "1.37053" in proc.stdout  # the notes' by-hand estimate (unrounded counts)
    # the non-integer counts warning, as one line
    assert proc.stderr.startswith("pyglmm: warning: ") and "Traceback" not in proc.stderr
