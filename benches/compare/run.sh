#!/usr/bin/env bash
# cobuy vs implicit (item-kNN) on datasets/online-retail: see benches/compare/README.md.
# Usage: benches/compare/run.sh [--reps N]   (other flags: benches/compare/online_retail.py --help)
#        COBUY=/path/to/cobuy benches/compare/run.sh   measures that binary instead of building this tree
# Prints the Markdown report on stdout; progress on stderr. Also writes target/compare/report.md
# and target/compare/results.json (every run's numbers).
set -euo pipefail
cd "$(dirname "$0")/../.."

EXTRA_PINS=()
. benches/compare/setup.sh

mkdir -p target/compare
# OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are unset for this command only, so numpy's bundled OpenBLAS
# picks its own kernel (the report names it); implicit's item-kNN path does not call BLAS anyway.
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
    "$VENV/bin/python" benches/compare/online_retail.py --cobuy "$COBUY" --json target/compare/results.json "$@" \
    | tee target/compare/report.md
