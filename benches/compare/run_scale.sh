#!/usr/bin/env bash
# cobuy vs implicit / scipy at scale (generated data): see benches/compare/README.md and BENCHMARKS.md.
# Usage: benches/compare/run_scale.sh [flags of benches/compare/scale.py]
#        SCALE=small benches/compare/run_scale.sh   100K customers x 10K items x 2M rows (quick check)
#        SCALE=full (default)                       1M customers x 100K items x 20M rows (~1 GB CSV, ~30 min)
#        REPS=N (5) SIM_REPS=N (3) IMPLICIT_USERS=N (0: all) SIM_CUSTOMERS=N (2000)   override the defaults
#        COBUY=/path/to/cobuy                        measures that binary instead of building this tree
# Data, models and outputs go to target/scale/$SCALE/ (ignored by git). Prints the Markdown report on
# stdout and writes target/scale/$SCALE/report.md and results.json; progress on stderr.
set -euo pipefail
cd "$(dirname "$0")/../.."

SCALE=${SCALE:-full}
EXTRA_PINS=()
. benches/compare/setup.sh

ARGS=(--size "$SCALE")
[ -n "${REPS:-}" ] && ARGS+=(--reps "$REPS")
[ -n "${SIM_REPS:-}" ] && ARGS+=(--sim-reps "$SIM_REPS")
[ -n "${IMPLICIT_USERS:-}" ] && ARGS+=(--implicit-users "$IMPLICIT_USERS")
[ -n "${SIM_CUSTOMERS:-}" ] && ARGS+=(--sim-customers "$SIM_CUSTOMERS")

WORK=target/scale/$SCALE
mkdir -p "$WORK"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
    "$VENV/bin/python" benches/compare/scale.py --cobuy "$COBUY" --work "$WORK" --json "$WORK/results.json" \
    "${ARGS[@]}" "$@" | tee "$WORK/report.md"
