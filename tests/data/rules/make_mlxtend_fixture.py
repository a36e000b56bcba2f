"""Write the mlxtend oracle fixture for cobuy's pairwise association rules on arules Groceries.

Output: tests/data/rules/groceries_pairs_mlxtend.csv.gz (see README.md beside this script).

Setup (from the repository root; target/ is gitignored):

    python3 -m venv target/mlxtend-venv
    target/mlxtend-venv/bin/python -m pip install --only-binary=:all: \
        mlxtend==0.25.0 pandas==3.1.1 numpy==2.4.6

Run (from the repository root):

    target/mlxtend-venv/bin/python tests/data/rules/make_mlxtend_fixture.py \
        [../shared/datasets/groceries/groceries_baskets.csv]

The script refuses to run under other versions of mlxtend, pandas or numpy than PINS.
Besides writing the fixture it checks mlxtend's output against counts taken directly from the
CSV (same frequent pairs, same metrics to 1e-12), so a fixture that it writes is cross-checked.
"""

import argparse
import csv
import gzip
import hashlib
import io
import itertools
import math
import sys
from collections import Counter
from pathlib import Path

PINS = {"mlxtend": "0.25.0", "pandas": "3.1.1", "numpy": "2.4.6"}
MIN_SUPPORT = 0.001
REPO = Path(__file__).resolve().parents[3]
DEFAULT_INPUT = REPO.parent / "shared" / "datasets" / "groceries" / "groceries_baskets.csv"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "groceries_pairs_mlxtend.csv.gz"
HEADER = [
    "antecedent",
    "consequent",
    "antecedent_support",
    "consequent_support",
    "support",
    "confidence",
    "lift",
    "leverage",
    "conviction",
    "count",
]


def check_versions():
    from importlib.metadata import version

    wrong = {name: version(name) for name in PINS if version(name) != PINS[name]}
    if wrong:
        sys.exit(f"version mismatch: found {wrong}, want {PINS}")


def read_baskets(path):
    """Baskets in transaction_id order, each a list of its items in file order, labels byte-exact
    (the csv module does not trim: 'cream cheese ' keeps its trailing space)."""
    baskets = {}
    lines = 0
    duplicates = 0
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        if next(reader) != ["transaction_id", "item"]:
            sys.exit(f"{path}: header is not transaction_id,item")
        for row in reader:
            tid, item = int(row[0]), row[1]
            lines += 1
            basket = baskets.setdefault(tid, [])
            if item in basket:
                duplicates += 1
            else:
                basket.append(item)
    ids = sorted(baskets)
    if ids != list(range(1, len(ids) + 1)):
        sys.exit(f"{path}: transaction ids are not 1..n")
    return [baskets[i] for i in ids], lines, duplicates


def fmt(x):
    # float() first: repr of a numpy float64 is 'np.float64(...)' under numpy 2.
    # Python's repr is the shortest string that parses back to the same double ('inf' for
    # infinity); Rust's f64::from_str reads it back exactly.
    return repr(float(x))


def quote(label):
    return '"' + label.replace('"', '""') + '"'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input", nargs="?", default=str(DEFAULT_INPUT))
    ap.add_argument("--out", default=str(DEFAULT_OUTPUT))
    args = ap.parse_args()
    check_versions()

    import numpy as np
    import pandas as pd
    from mlxtend.frequent_patterns import apriori, association_rules
    from mlxtend.preprocessing import TransactionEncoder

    baskets, lines, duplicates = read_baskets(args.input)
    n = len(baskets)
    te = TransactionEncoder()
    onehot = pd.DataFrame(te.fit(baskets).transform(baskets), columns=te.columns_)
    assert onehot.dtypes.eq(bool).all()

    frequent = apriori(onehot, min_support=MIN_SUPPORT, use_colnames=True, max_len=2)
    # num_itemsets only enters the metrics through null-value corrections (none here), as
    # confidence = (sAC * num_itemsets) / (sA * num_itemsets); min_threshold=0 on confidence
    # keeps every rule of every frequent itemset.
    rules = association_rules(
        frequent, num_itemsets=n, metric="confidence", min_threshold=0.0
    )
    sizes = frequent["itemsets"].map(len)
    n_items = int((sizes == 1).sum())
    n_pairs = int((sizes == 2).sum())
    pairwise = rules[
        (rules["antecedents"].map(len) == 1) & (rules["consequents"].map(len) == 1)
    ]
    assert len(pairwise) == len(rules) == 2 * n_pairs, (len(pairwise), len(rules), n_pairs)

    def count_of(support):
        c = float(support) * n
        r = round(c)
        assert abs(c - r) <= 1e-9, (support, c)
        return int(r)

    rows = []
    for ant, con, sa, sc, s, conf, lift, lev, conv in zip(
        pairwise["antecedents"],
        pairwise["consequents"],
        pairwise["antecedent support"],
        pairwise["consequent support"],
        pairwise["support"],
        pairwise["confidence"],
        pairwise["lift"],
        pairwise["leverage"],
        pairwise["conviction"],
    ):
        (a,) = ant
        (c,) = con
        rows.append((a, c, sa, sc, s, conf, lift, lev, conv, count_of(s)))
    rows.sort(key=lambda r: (r[0].encode("utf-8"), r[1].encode("utf-8")))

    # Cross-check against counts taken straight from the baskets.
    item_count = Counter(i for b in baskets for i in b)
    pair_count = Counter(
        p for b in baskets for p in itertools.combinations(sorted(b), 2)
    )
    min_count = math.ceil(MIN_SUPPORT * n)
    assert n_items == sum(1 for v in item_count.values() if v / n >= MIN_SUPPORT)
    direct_pairs = {p for p, v in pair_count.items() if v / n >= MIN_SUPPORT}
    assert {tuple(sorted(r[:2])) for r in rows} == direct_pairs
    infinite = 0
    for a, c, sa, sc, s, conf, lift, lev, conv, k in rows:
        ka, kc, kac = item_count[a], item_count[c], pair_count[tuple(sorted((a, c)))]
        assert k == kac >= min_count and count_of(sa) == ka and count_of(sc) == kc
        exp_conf = kac / ka
        expected = (kac / n, exp_conf, exp_conf / (kc / n), kac / n - (ka / n) * (kc / n))
        for got, want in zip((s, conf, lift, lev), expected):
            assert abs(got - want) <= 1e-12 * max(1.0, abs(want)), (a, c, got, want)
        if kac == ka:
            assert conv == math.inf
            infinite += 1
        else:
            want = (1 - kc / n) / (1 - exp_conf)
            assert abs(conv - want) <= 1e-12 * max(1.0, abs(want)), (a, c, conv, want)

    text = io.StringIO(newline="")
    text.write(",".join(HEADER) + "\n")
    for a, c, *nums, k in rows:
        text.write(",".join([quote(a), quote(c)] + [fmt(x) for x in nums] + [str(k)]) + "\n")
    raw = text.getvalue().encode("utf-8")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f:
        # no file name and mtime 0 in the gzip header: the same rows give the same bytes
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, compresslevel=9, mtime=0) as gz:
            gz.write(raw)

    print(f"input: {args.input} ({lines} lines, {duplicates} duplicate (transaction_id, item) lines)")
    print(f"baskets: {n}, distinct items: {len(item_count)}")
    print(f"frequent items: {n_items}, frequent pairs: {n_pairs}, rules: {len(rows)}, "
          f"rules with confidence 1 (conviction inf): {infinite}")
    print(f"min pair count: {min(r[-1] for r in rows)} (threshold count {min_count})")
    print(f"wrote {out}")
    print(f"sha256 (gzip file): {hashlib.sha256(out.read_bytes()).hexdigest()}")
    print(f"sha256 (uncompressed CSV): {hashlib.sha256(raw).hexdigest()}")
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, pandas {pd.__version__}, "
          f"mlxtend {PINS['mlxtend']}")


if __name__ == "__main__":
    main()
