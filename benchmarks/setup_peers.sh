#!/usr/bin/env bash
# Create the peers' environment for the benchmarks: a venv at benchmarks/.peers (gitignored)
# holding pyglmm (editable, so a benchmark always runs the work tree's code) and the Python peers
# (statsmodels, glum, and the Rust-backed glmm and mixedlm), plus py-spy for profiling.
# R and lme4 are not installed here: the benchmarks call /usr/bin/Rscript when it exists.
#
# Usage: bash benchmarks/setup_peers.sh            (idempotent; re-run after pyproject changes)
#        PYTHON=python3.11 bash benchmarks/setup_peers.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="$here/.peers"
python="${PYTHON:-python3}"

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
# pyglmm itself, editable, with its own dependencies.
"$venv/bin/python" -m pip install --quiet -e "$root"
# The peers. Versions are left free (the benchmark prints the versions it ran against).
"$venv/bin/python" -m pip install --quiet statsmodels glum glmm mixedlm pyarrow py-spy

"$venv/bin/python" - <<'PY'
import importlib.metadata as md
for name in ["pyglmm", "numpy", "scipy", "pandas", "statsmodels", "glum", "glmm", "mixedlm"]:
    try:
        print(f"{name:12s} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name:12s} MISSING")
PY
if command -v Rscript >/dev/null 2>&1; then
    Rscript -e 'cat("R", R.version$major, ".", R.version$minor, " lme4 ", format(packageVersion("lme4")), "\n", sep="")' \
        || echo "Rscript found but lme4 is not loadable: the R peers will be skipped"
else
    echo "Rscript not found: the R peers (glm, lme4) will be skipped"
fi
echo "peers environment ready: $venv/bin/python"
