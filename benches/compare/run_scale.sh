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
VENV=target/compare-venv
# The same pinned peer stack as run.sh.
PINS=(implicit==0.7.3 numpy==2.4.6 scipy==1.17.1 pandas==3.1.1 threadpoolctl==3.8.0)

if [ ! -x "$VENV/bin/python" ]; then
    PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -c 'import sys; sys.version_info[:2] == (3, 11) or print(f"note: venv Python is {sys.version.split()[0]}, the pins were chosen for 3.11", file=sys.stderr)'
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: "${PINS[@]}"

if [ -z "${COBUY:-}" ]; then
    cargo build --release --quiet
    COBUY=target/release/cobuy
fi

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
