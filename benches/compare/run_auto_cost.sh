#!/usr/bin/env bash
# The cost bar of `algorithm = auto` (issue 12): plain `cobuy fit` against `cobuy fit --algorithm item-knn` on
# generated data, in interleaved rounds; see benches/compare/auto_cost.py.
# Usage: benches/compare/run_auto_cost.sh [flags of benches/compare/auto_cost.py]
#        SCALE=small benches/compare/run_auto_cost.sh   100K customers x 10K items x 2M rows (quick check)
#        SCALE=full (default)                           1M customers x 100K items x 20M rows (~1 GB CSV, ~5 min)
#        ROUNDS=N (2)                                   rounds, the order alternating each round
#        COBUY=/path/to/cobuy                           measures that binary instead of building this tree
# Needs only python3 and cargo. The data (generated when missing, shared with run_scale.sh) and the models go to
# target/scale/$SCALE/; prints the Markdown table on stdout and writes target/scale/$SCALE/auto-cost.md and
# auto-cost.json; progress on stderr. Exits 1 when the bar is not met.
set -euo pipefail
cd "$(dirname "$0")/../.."

SCALE=${SCALE:-full}
if [ -z "${COBUY:-}" ]; then
    cargo build --release --quiet
    COBUY=target/release/cobuy
fi
exec python3 benches/compare/auto_cost.py --size "$SCALE" --rounds "${ROUNDS:-2}" --cobuy "$COBUY" "$@"
