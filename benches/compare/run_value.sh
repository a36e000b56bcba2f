#!/usr/bin/env bash
# cobuy's customer-value models against lifetimes 0.11.3, in one run (issue 13): CDNOW fits against the literature,
# the holdout and churn ranking, then speed on generated customers. See benches/compare/value.py and README.md.
# Usage: benches/compare/run_value.sh [flags of benches/compare/value.py]
#        benches/compare/run_value.sh --quick            100k generated customers, no 10M (a few minutes)
#        benches/compare/run_value.sh --parts cdnow      CDNOW only (seconds)
#        COBUY=/path/to/cobuy                             measures that binary instead of building this tree
# Everything goes to target/value-bench/ (the generated logs are kept and reused while the generator's parameters
# stay the same: about 1.1 GB at 10M customers); prints the Markdown report and writes report.md and results.json.
set -euo pipefail
cd "$(dirname "$0")/../.."

# lifetimes 0.11.3 (2020) predates numpy 2, pandas 2.2 and scipy 1.12's removals: its own venv, pinned to the
# newest versions it runs with on Python 3.11 (and the pure-Python dependencies pinned too).
VENV=${VENV:-target/value-venv}
PINS=(lifetimes==0.11.3 numpy==1.26.4 scipy==1.11.4 pandas==2.1.4 autograd==1.6.2 dill==0.3.8 future==1.0.0
    python-dateutil==2.9.0.post0 six==1.17.0 pytz==2024.2 tzdata==2024.2)
. benches/compare/setup.sh

WORK=target/value-bench
mkdir -p "$WORK"
"$VENV/bin/python" benches/compare/value.py --cobuy "$COBUY" --work "$WORK" --json "$WORK/results.json" "$@" \
    | tee "$WORK/report.md"
