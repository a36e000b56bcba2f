"""Per-call time of the implicit-style `recommend` for one customer, on the bundled data.

    python python/bench/overhead.py [ALGORITHM]

Prints the median over rounds of the mean time per call (every customer once per round,
in the model's order) for `recommend(customer, N=10)`, the same scoring in a Rust loop
alone, and their difference: the overhead of a call from Python (argument conversion, id
lookup, releasing the GIL, the result arrays).
"""

import statistics
import sys
import time
from pathlib import Path

import cobuy

ROOT = Path(__file__).resolve().parents[2]
DATA = str(ROOT / "datasets" / "online-retail" / "online_retail.csv.gz")

algorithm = sys.argv[1] if len(sys.argv) > 1 else "item-knn"
model = cobuy.Recommender(algorithm=algorithm).fit(
    DATA, customer_col="CustomerID", item_col="StockCode", quantity_col="Quantity", time_col="InvoiceDate"
)
customers = list(model.customer_ids)
model.recommend(customers[0], N=10)  # id arrays built once


def per_call(f, rounds=7):
    means = []
    for _ in range(rounds):
        start = time.perf_counter()
        for c in customers:
            f(c)
        means.append((time.perf_counter() - start) / len(customers))
    return statistics.median(means) * 1e6


def rust_alone(rounds=7):
    keys = [str(c) for c in customers]
    return statistics.median(model._model._scoring_seconds(keys, 10) / len(keys) for _ in range(rounds)) * 1e6


full = per_call(lambda c: model.recommend(c, N=10))
rust = rust_alone()
print(f"{algorithm}: {len(customers)} customers x {len(model.item_ids)} items")
print(f"recommend(customer, N=10) from Python: {full:.1f} us per call")
print(f"the same scoring in Rust alone:        {rust:.1f} us per customer")
print(f"overhead of a call from Python:        {full - rust:.1f} us")
