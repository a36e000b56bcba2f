#!/usr/bin/env bash
# cobuy vs implicit (item-kNN) on datasets/online-retail: see benches/compare/README.md.
# Usage: benches/compare/run.sh [--reps N]   (other flags: benches/compare/online_retail.py --help)
#        COBUY=/path/to/cobuy benches/compare/run.sh   measures that binary instead of building this tree
# Prints the Markdown report on stdout; progress on stderr. Also writes target/compare/report.md
# and target/compare/results.json (every run's numbers).
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=target/compare-venv
# Pinned peer stack: implicit 0.7.3 is the newest release (with a manylinux wheel for CPython 3.11).
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

mkdir -p target/compare
# OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are unset for this command only, so numpy's bundled OpenBLAS
# picks its own kernel (the report names it); implicit's item-kNN path does not call BLAS anyway.
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
    "$VENV/bin/python" benches/compare/online_retail.py --cobuy "$COBUY" --json target/compare/results.json "$@" \
    | tee target/compare/report.md
