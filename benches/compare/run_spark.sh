#!/usr/bin/env bash
# Spark local[2] scoring: cobuy.spark (mapInArrow) vs Spark MLlib ALS recommendForAllUsers(10), and the
# Spark path's overhead over `cobuy recommend`, on the generated 1M-customer set: see spark_score.py.
# Usage: benches/compare/run_spark.sh [flags of benches/compare/spark_score.py, e.g. --rounds 3 --als-users 100000]
# Needs a Java runtime (17 or later). Its venv (the cobuy wheel of this tree with pyspark) is target/spark-venv;
# data, models and outputs go to target/spark-bench/. Prints the Markdown report on stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=${VENV:-target/spark-venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check "./python[spark]"
cargo build --release --quiet --bin cobuy
"$VENV/bin/python" benches/compare/spark_score.py --json target/spark-bench/results.json "$@" \
    | tee target/spark-bench/report.md
