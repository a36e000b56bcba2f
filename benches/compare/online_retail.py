#!/usr/bin/env python3
"""cobuy vs implicit's item-kNN on the bundled UCI Online Retail data.

Run by benches/compare/run.sh inside its venv (implicit, numpy, scipy, pandas). Without arguments
it runs every measurement `--reps` times, interleaved (cobuy, implicit BM25, implicit cosine,
rotating the order each round after one untimed warm-up round), and prints a Markdown report.
Each measured run is its own process, so its wall time and peak RSS are its own: peak RSS comes
from os.wait4(), the kernel's resource usage of exactly that child (no /usr/bin/time needed).
Linux carries the parent's peak RSS into the ru_maxrss of a child it starts (vfork + exec), so this
orchestrator imports nothing heavy (no numpy) and measures that floor with a no-op child: a reading
at the floor means "at most the floor".

`--worker bm25|cosine` is the implicit side of one run (started by the orchestrator): ingest with
pandas, fit, batch recommend, write a CSV; it prints its stage times as one JSON line.
"""

import argparse
import csv
import json
import os
import statistics
import sys
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, line_time, machine, run_child, sh  # noqa: E402 - the helpers the harnesses share

T_PROCESS_START = time.perf_counter()

DATA = os.path.join(ROOT, "datasets", "online-retail", "online_retail.csv.gz")

# Stock codes of the data set that are not products (datasets/online-retail/README.md, "Quirks").
NON_PRODUCT = {"POST", "DOT", "M", "m", "C2", "D", "S", "BANK CHARGES", "AMAZONFEE", "CRUK", "B", "PADS"}


def is_non_product(code):
    return code in NON_PRODUCT or code.startswith("gift_0001_")


# ---------------------------------------------------------------- implicit worker (one run)


def worker(variant, data, out):
    import warnings

    t_imp = time.perf_counter()
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

    # implicit's bm25_weight/normalize return COO; fit() converts and warns (ParameterWarning).
    warnings.filterwarnings("ignore", module="implicit")
    t0 = time.perf_counter()

    # ingest: the same preparation as cobuy's `--returns net`: drop guest rows, net Quantity per
    # (customer, item), keep pairs with net > 0, CSR customers x items of the net quantities.
    df = pd.read_csv(data, usecols=["StockCode", "Quantity", "CustomerID"], dtype={"StockCode": str})
    df = df[df["CustomerID"].notna()]
    net = df.groupby(["CustomerID", "StockCode"], sort=False)["Quantity"].sum()
    net = net[net > 0].reset_index()
    cust = pd.Categorical(net["CustomerID"])
    item = pd.Categorical(net["StockCode"])
    user_items = sp.csr_matrix(
        (net["Quantity"].to_numpy(np.float32), (cust.codes.astype(np.int32), item.codes.astype(np.int32))),
        shape=(len(cust.categories), len(item.categories)),
    )
    t1 = time.perf_counter()

    if variant == "bm25":
        model = BM25Recommender(K=50, K1=1.2, B=0.75, num_threads=2)
    else:
        model = CosineRecommender(K=50, num_threads=2)
    model.fit(user_items, show_progress=False)
    t2 = time.perf_counter()

    users = np.arange(user_items.shape[0])
    ids, scores = model.recommend(users, user_items[users], N=10, filter_already_liked_items=True)
    t3 = time.perf_counter()

    # write: customer_id,rank,item_id,score (CustomerID is read as float: 17850.0 -> "17850")
    cust_ids = [str(int(c)) for c in cust.categories]
    item_ids = list(item.categories)
    padded = already_bought = 0
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["customer_id", "rank", "item_id", "score"])
        for u in range(len(users)):
            bought = None
            for r in range(ids.shape[1]):
                j = int(ids[u, r])
                if j < 0:  # implicit pads short lists with -1
                    padded += 1
                    continue
                if bought is None:
                    bought = set(user_items.indices[user_items.indptr[u] : user_items.indptr[u + 1]].tolist())
                already_bought += j in bought
                w.writerow([cust_ids[u], r + 1, item_ids[j], f"{scores[u, r]:.6g}"])
    t4 = time.perf_counter()

    try:
        from threadpoolctl import threadpool_info

        blas = [{k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                for p in threadpool_info()]  # fmt: skip
    except Exception:  # noqa: BLE001 - informational only
        blas = []
    print(
        json.dumps(
            {
                "startup_import": t0 - T_PROCESS_START,
                "import": t0 - t_imp,
                "ingest": t1 - t0,
                "fit": t2 - t1,
                "recommend": t3 - t2,
                "write": t4 - t3,
                "customers": int(user_items.shape[0]),
                "items": int(user_items.shape[1]),
                "nnz": int(user_items.nnz),
                "similarity_nnz": int(model.similarity.nnz),
                "padded": padded,
                "already_bought_in_top": int(already_bought),
                "blas": blas,
            }
        )
    )


# ---------------------------------------------------------------- orchestrator


def run_cobuy(cobuy, data, work):
    model, recs = os.path.join(work, "cobuy.model"), os.path.join(work, "cobuy.csv")
    fit = [cobuy, "--threads", "2", "fit", "--purchases", data, "--model", model,
           "--customer-col", "CustomerID", "--item-col", "StockCode", "--quantity-col", "Quantity",
           "--price-col", "UnitPrice", "--time-col", "InvoiceDate", "--basket-col", "InvoiceNo",
           "--neighbors", "50", "--weighting", "bm25"]  # fmt: skip
    rec = [cobuy, "--threads", "2", "recommend", "--model", model, "--top", "10", "--out", recs]
    fr = run_child(fit)
    rr = run_child(rec)
    fw, frss, flines = fr["wall"], fr["rss"], fr["lines"]
    rw, rrss, rlines = rr["wall"], rr["rss"], rr["lines"]
    t_read, m_read = line_time(flines, r"read (\d+) rows in ([\d.]+)s")
    t_fit, m_fit = line_time(flines, r"fitted .* in ([\d.]+)s")
    t_load, m_load = line_time(rlines, r"loaded .* in ([\d.]+)s")
    _, m_rec = line_time(rlines, r"wrote (\d+) .*?recommendations for (\d+) customers .* in ([\d.]+)s \((\d+) customers/s\)")
    customers = int(m_rec.group(2))
    return {
        # from the arrival of cobuy's log lines (stderr is unbuffered), measured here
        "ingest": t_read,  # process start -> "read N rows": gzip CSV parse + merge into the matrix
        "fit": t_fit - t_read,  # -> "fitted ...": weighting + item-item top-k + popularity
        "save": fw - t_fit,  # -> exit: model file write
        "load": t_load,  # recommend process start -> "loaded"
        "recommend": rw - t_load,  # -> exit: score every customer, write CSV
        "fit_wall": fw, "rec_wall": rw, "wall": fw + rw,
        "fit_rss": frss, "rec_rss": rrss, "rss": max(frss, rrss),
        "customers": customers,
        "customers_per_s": customers / (rw - t_load),
        # cobuy's own numbers (one decimal place)
        "own_read": float(m_read.group(2)), "own_fit": float(m_fit.group(1)),
        "own_load": float(m_load.group(1)), "own_rec": float(m_rec.group(3)),
        "own_customers_per_s": float(m_rec.group(4)),
        "log": [l for _, l in flines + rlines],
    }  # fmt: skip


def run_implicit(variant, data, work):
    out = os.path.join(work, f"implicit-{variant}.csv")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    c = run_child([sys.executable, os.path.abspath(__file__), "--worker", variant, "--data", data, "--out", out],
                  env=env)  # fmt: skip
    r = json.loads(c["stdout"].strip().splitlines()[-1])
    r.update(wall=c["wall"], rss=c["rss"], customers_per_s=r["customers"] / r["recommend"])
    return r


def read_lists(path, skip_popular=False):
    lists = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if skip_popular and row.get("source") == "popular":
                continue
            lists.setdefault(row["customer_id"], []).append(row["item_id"])
    return lists


def jaccard(a, b):
    common = sorted(set(a) & set(b))
    vals = [len(set(a[c]) & set(b[c])) / len(set(a[c]) | set(b[c])) for c in common]
    return statistics.fmean(vals), len(common)


def non_product_stats(lists):
    rows = sum(is_non_product(i) for v in lists.values() for i in v)
    custs = sum(any(is_non_product(i) for i in v) for v in lists.values())
    codes = {}
    for v in lists.values():
        for i in v:
            if is_non_product(i):
                codes[i] = codes.get(i, 0) + 1
    return rows, custs, dict(sorted(codes.items(), key=lambda kv: -kv[1]))


def environment(cobuy, label, date):
    m = machine(cobuy, ["implicit", "numpy", "scipy", "pandas"])
    return m | {
        "date": date, "cores": m["os_cpu_count"], "ram_gib": round(m["mem_gib"], 1),
        "cobuy_source": label or sh(["git", "-C", ROOT, "describe", "--always", "--dirty", "--abbrev=12"]),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
    }  # fmt: skip


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def report(env, res, overlap, extra, reps):
    c, b, k = res["cobuy"], res["bm25"], res["cosine"]
    f = lambda x, d=2: f"{x:.{d}f}"  # noqa: E731
    out = []
    out.append(f"Machine: {env['cpu']}, {env['cores']} cores, {env['ram_gib']} GiB RAM; {env['date']}")
    out.append(f"{env['cobuy']} (source {env['cobuy_source']}; {env['rustc']}); implicit {env['implicit']}, numpy {env['numpy']}, "
               f"scipy {env['scipy']}, pandas {env['pandas']}, Python {env['python']}")  # fmt: skip
    blas = "; ".join(" ".join(filter(None, (x["internal_api"], x["version"], x["architecture"] and f"({x['architecture']})")))
                     for x in b[0]["blas"]) or "?"
    out.append(f"Native libraries in the implicit workers (threadpoolctl): {blas}; OPENBLAS_CORETYPE={env['openblas_coretype']}, implicit workers run with "
               "OPENBLAS_NUM_THREADS=1 and num_threads=2; cobuy with --threads 2")  # fmt: skip
    out.append(f"Medians of {reps} interleaved runs (peak RSS: the largest of the runs; measurement floor "
               f"{env['rss_floor']:.1f} MiB, see the README).\n")  # fmt: skip
    out.append("| tool | ingest s | fit s | recommend s | customers/s (recommend) | end-to-end wall s | peak RSS MiB |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    out.append(f"| cobuy (BM25) | {f(med(c,'ingest'))} | {f(med(c,'fit'))} | {f(med(c,'recommend'))} | "
               f"{med(c,'customers_per_s'):,.0f} | {f(med(c,'wall'))} | {f(max(r['rss'] for r in c),1)} |")  # fmt: skip
    for name, runs in (("implicit BM25Recommender", b), ("implicit CosineRecommender", k)):
        out.append(f"| {name} | {f(med(runs,'ingest'))} | {f(med(runs,'fit'))} | {f(med(runs,'recommend'))} | "
                   f"{med(runs,'customers_per_s'):,.0f} | {f(med(runs,'wall'))} | {f(max(r['rss'] for r in runs),1)} |")  # fmt: skip
    out.append("")
    out.append("Ratios, cobuy / implicit BM25 (median over median; below 1: cobuy takes less):\n")
    out.append("| ingest | fit | recommend | end-to-end wall | peak RSS |")
    out.append("|---:|---:|---:|---:|---:|")
    rss_c, rss_b = max(r["rss"] for r in c), max(r["rss"] for r in b)
    out.append(" | ".join(["", *(f"{med(c,key)/med(b,key):.2f}" for key in ("ingest", "fit", "recommend", "wall")),
                           f"{rss_c/rss_b:.2f}", ""]).strip())  # fmt: skip
    out.append("")
    out.append("Details (medians, seconds):\n")
    out.append(f"- cobuy fit process {f(med(c,'fit_wall'))} s (ingest {f(med(c,'ingest'))} + fit {f(med(c,'fit'))} "
               f"+ model save {f(med(c,'save'))}), peak RSS {f(max(r['fit_rss'] for r in c),1)} MiB; "
               f"recommend process {f(med(c,'rec_wall'))} s (model load {f(med(c,'load'))} + score and write "
               f"{f(med(c,'recommend'))}), peak RSS {f(max(r['rec_rss'] for r in c),1)} MiB.")  # fmt: skip
    out.append(f"- cobuy's own stage lines (one decimal): read {med(c,'own_read'):.1f}, fit {med(c,'own_fit'):.1f}, "
               f"load {med(c,'own_load'):.1f}, recommend {med(c,'own_rec'):.1f}; "
               f"{med(c,'own_customers_per_s'):,.0f} customers/s.")  # fmt: skip
    for name, runs in (("implicit BM25", b), ("implicit cosine", k)):
        out.append(f"- {name}: process {f(med(runs,'wall'))} s = interpreter start and imports "
                   f"{f(med(runs,'startup_import'))} + ingest {f(med(runs,'ingest'))} + fit {f(med(runs,'fit'))} + "
                   f"recommend {f(med(runs,'recommend'))} + write CSV {f(med(runs,'write'))} (+ exit).")  # fmt: skip
    out.append(f"- customers scored: cobuy {c[0]['customers']}, implicit {b[0]['customers']} "
               f"(matrix {b[0]['customers']} x {b[0]['items']}, {b[0]['nnz']} pairs); similarity entries: "
               f"implicit {b[0]['similarity_nnz']} (BM25) / {k[0]['similarity_nnz']} (cosine).")  # fmt: skip
    out.append("")
    out.append("Agreement (mean Jaccard of the top-10 item sets per customer; not a quality metric):\n")
    out.append("| pair | customers compared | mean Jaccard |")
    out.append("|---|---:|---:|")
    for name, (j, n) in overlap.items():
        out.append(f"| {name} | {n} | {j:.3f} |")
    out.append("")
    out.append("Output checks:\n")
    for line in extra:
        out.append(f"- {line}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--cobuy", default=os.path.join(ROOT, "target", "release", "cobuy"))
    ap.add_argument("--cobuy-label", help="what --cobuy was built from (default: git describe of this tree)")
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "compare"))
    ap.add_argument("--json", help="also write every run's numbers here")
    ap.add_argument("--worker", choices=["bm25", "cosine"], help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.data, a.out)

    os.makedirs(a.work, exist_ok=True)
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    tasks = {
        "cobuy": lambda: run_cobuy(a.cobuy, a.data, a.work),
        "bm25": lambda: run_implicit("bm25", a.data, a.work),
        "cosine": lambda: run_implicit("cosine", a.data, a.work),
    }
    names = list(tasks)
    floor = 0.0
    res = {n: [] for n in names}
    for rep in range(a.reps + 1):  # round 0: warm-up (page cache, first-run effects), not counted
        order = names[rep % 3 :] + names[: rep % 3]
        floor = max(floor, run_child(["true"])["rss"])
        for n in order:
            r = tasks[n]()
            if rep > 0:
                res[n].append(r)
            print(f"round {rep}{' (warm-up)' if rep == 0 else ''} {n}: wall {r['wall']:.2f}s "
                  f"rss {r['rss']:.0f} MiB", file=sys.stderr, flush=True)  # fmt: skip

    env = environment(a.cobuy, a.cobuy_label, date)  # after the runs: keeps this process small while measuring
    env["rss_floor"] = floor
    cob = read_lists(os.path.join(a.work, "cobuy.csv"))
    cob_knn = read_lists(os.path.join(a.work, "cobuy.csv"), skip_popular=True)
    imb = read_lists(os.path.join(a.work, "implicit-bm25.csv"))
    imc = read_lists(os.path.join(a.work, "implicit-cosine.csv"))
    overlap = {
        "cobuy BM25 vs implicit BM25Recommender": jaccard(cob, imb),
        "cobuy BM25 vs implicit CosineRecommender": jaccard(cob, imc),
        "implicit BM25Recommender vs implicit CosineRecommender": jaccard(imb, imc),
    }
    extra = []
    popular_rows = sum(1 for v in cob.values() for _ in v) - sum(1 for v in cob_knn.values() for _ in v)
    only_popular = sum(1 for cid in cob if cid not in cob_knn)
    extra.append(f"cobuy: {popular_rows} of {sum(len(v) for v in cob.values())} rows come from popularity fill; "
                 f"{only_popular} customers get only popularity items.")  # fmt: skip
    for name, lists in (("cobuy", cob), ("implicit BM25", imb), ("implicit cosine", imc)):
        rows, custs, codes = non_product_stats(lists)
        top = ", ".join(f"{k} {v}" for k, v in list(codes.items())[:8]) or "none"
        extra.append(f"{name}: {rows} recommended rows are non-product stock codes, for {custs} customers ({top}).")
    for name, runs in (("implicit BM25", res["bm25"]), ("implicit cosine", res["cosine"])):
        r = runs[-1]
        extra.append(f"{name}: {r['padded']} list slots padded with -1 (fewer than 10 candidates); "
                     f"{r['already_bought_in_top']} recommended items were already bought by the customer.")  # fmt: skip
    extra.append("cobuy's stderr (last run): " + " | ".join(res["cobuy"][-1]["log"]))

    text = report(env, res, overlap, extra, a.reps)
    print(text)
    if a.json:
        with open(a.json, "w") as fj:
            json.dump({"environment": env, "runs": res, "overlap": overlap, "report": text}, fj, indent=1)


if __name__ == "__main__":
    main()
