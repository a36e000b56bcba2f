#!/usr/bin/env python3
"""cobuy vs implicit / scipy at scale, on data from `cobuy generate`.

Run by benches/compare/run_scale.sh inside the venv of run.sh (implicit, numpy, scipy, pandas).
Default size: 1M customers x 100K items x 20M purchase rows (seed 1), about 1 GB of CSV under
target/scale/full/; `--size small` is 100K x 10K x 2M under target/scale/small/ for a quick check.

The orchestrator (this process, kept small: no numpy) runs every measurement as its own child
process, so wall time, CPU time (user + sys) and peak RSS come from os.wait4() on exactly that
child. Linux starts a child's ru_maxrss at its parent's peak RSS, so the floor is measured with a
no-op child and reported.

Phase 1, `--reps` rounds, interleaved (the order alternates each round):
  cobuy fit K=50 | implicit ingest (pandas) | cobuy fit K=49 | implicit CosineRecommender fit (K=50) |
  cobuy recommend (all customers) | implicit recommend (a random sample, or all) |
  cobuy recommend for the first --mem-customers customers (peak-memory check).
Phase 2, `--sim-reps` rounds: exact top-K similar customers for the first --sim-customers customers
(in cobuy's order), cobuy similar-customers vs a scipy reference (sparse product, dense rows,
partition), then an agreement check of the similarity lists.

`--worker ingest|fit|recommend|similar` is the Python side of one measurement (started by the
orchestrator); it prints its stage times as one JSON line.
"""

import argparse
import csv
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, line_time, loadavg, machine, run_child, sh  # noqa: E402 - the helpers the harnesses share

T_PROCESS_START = time.perf_counter()

SIZES = {  # customers, items, purchase rows
    "full": (1_000_000, 100_000, 20_000_000),
    "small": (100_000, 10_000, 2_000_000),
}


def natural_key(s):
    """cobuy's natural id order (src/ids.rs natural_cmp): all-digit ids first, numerically
    (shorter first, then bytewise), then every other id bytewise (= code point order)."""
    if s and s.isascii() and s.isdigit():
        return (0, len(s), s)
    return (1, 0, s)


# ---------------------------------------------------------------- Python workers (one run each)


def emit(d):
    print(json.dumps(d), flush=True)


def load_user_items(work):
    import numpy as np
    import scipy.sparse as sp

    with np.load(os.path.join(work, "user_items.npz"), allow_pickle=False) as z:
        x = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
        cust = z["customers"]
    return x, cust


def worker_ingest(a):
    """pandas: read the 3 columns, sum quantity per (customer, item), CSR float32."""
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    t0 = time.perf_counter()
    df = pd.read_csv(a.data, usecols=["customer_id", "item_id", "quantity"],
                     dtype={"customer_id": "category", "item_id": "category", "quantity": np.int32})  # fmt: skip
    t1 = time.perf_counter()
    g = df.groupby([df["customer_id"].cat.codes, df["item_id"].cat.codes], sort=False)["quantity"].sum()
    cu = g.index.get_level_values(0).to_numpy(np.int32)
    it = g.index.get_level_values(1).to_numpy(np.int32)
    ccat = df["customer_id"].cat.categories
    icat = df["item_id"].cat.categories
    t2 = time.perf_counter()
    # Harness only (not the peer's work; timed separately): renumber customers and items in cobuy's
    # natural id order, so row r is cobuy's r-th customer and ids line up for the similar-customer check.
    cust_ids = [str(s) for s in ccat]
    item_ids = [str(s) for s in icat]
    corder = sorted(range(len(cust_ids)), key=lambda k: natural_key(cust_ids[k]))
    iorder = sorted(range(len(item_ids)), key=lambda k: natural_key(item_ids[k]))
    crank = np.empty(len(corder), np.int32)
    crank[np.asarray(corder, np.int64)] = np.arange(len(corder), dtype=np.int32)
    irank = np.empty(len(iorder), np.int32)
    irank[np.asarray(iorder, np.int64)] = np.arange(len(iorder), dtype=np.int32)
    cu, it = crank[cu], irank[it]
    t3 = time.perf_counter()
    x = sp.csr_matrix((g.to_numpy(np.float32), (cu, it)), shape=(len(cust_ids), len(item_ids)))
    x.sum_duplicates()
    t4 = time.perf_counter()
    np.savez(os.path.join(a.work, "user_items.npz"), data=x.data, indices=x.indices, indptr=x.indptr,
             shape=np.array(x.shape), customers=np.array([cust_ids[k] for k in corder]),
             items=np.array([item_ids[k] for k in iorder]))  # fmt: skip
    emit({"read_csv": t1 - t0, "groupby": t2 - t1, "reorder": t3 - t2, "csr": t4 - t3,
          "ingest": (t1 - t0) + (t2 - t1) + (t4 - t3), "rows": int(len(df)),
          "customers": int(x.shape[0]), "items": int(x.shape[1]), "nnz": int(x.nnz),
          "value_sum": float(x.data.sum(dtype=np.float64))})  # fmt: skip


def worker_fit(a):
    import warnings

    from implicit.nearest_neighbours import CosineRecommender

    warnings.filterwarnings("ignore", module="implicit")  # fit() converts COO to CSR and warns
    t0 = time.perf_counter()
    x, _ = load_user_items(a.work)
    t1 = time.perf_counter()
    model = CosineRecommender(K=a.k, num_threads=2)
    model.fit(x, show_progress=False)
    t2 = time.perf_counter()
    s = model.similarity
    self_slots = int((s.diagonal() != 0).sum())
    model.save(os.path.join(a.work, f"implicit-cosine-k{a.k}.npz"))
    emit({"load": t1 - t0, "fit": t2 - t1, "similarity_nnz": int(s.nnz), "items": int(s.shape[0]),
          "items_with_self": self_slots})  # fmt: skip


def worker_recommend(a):
    import numpy as np
    from implicit.nearest_neighbours import CosineRecommender

    t0 = time.perf_counter()
    x, cust = load_user_items(a.work)
    model = CosineRecommender.load(os.path.join(a.work, f"implicit-cosine-k{a.k}.npz"))
    t1 = time.perf_counter()
    n = x.shape[0]
    if a.users and a.users < n:  # a random sample, sorted (the same sample every run)
        users = np.sort(np.random.default_rng(1).choice(n, a.users, replace=False))
    else:
        users = np.arange(n)
    t2 = time.perf_counter()
    ids, scores = model.recommend(users, x[users], N=10, filter_already_liked_items=True)
    t3 = time.perf_counter()
    with np.load(os.path.join(a.work, "user_items.npz"), allow_pickle=False) as z:
        item_ids = z["items"]
    padded = already = 0
    with open(os.path.join(a.work, "implicit-recs.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["customer_id", "rank", "item_id", "score"])
        for r, u in enumerate(users):
            bought = set(x.indices[x.indptr[u] : x.indptr[u + 1]].tolist())
            for k in range(ids.shape[1]):
                j = int(ids[r, k])
                if j < 0:
                    padded += 1
                    continue
                already += j in bought
                w.writerow([cust[u], k + 1, item_ids[j], f"{scores[r, k]:.7g}"])
    t4 = time.perf_counter()
    emit({"load": t1 - t0, "slice": t2 - t1, "recommend": t3 - t2, "write": t4 - t3, "users": int(len(users)),
          "customers": int(n), "padded": padded, "already_bought_in_top": already})  # fmt: skip


def worker_similar(a):
    """Exact top-K cosine neighbours of the first S customers: normalise rows, then for batches of
    rows X[batch] @ X.T as dense rows, exclude self, partition, sort by score desc then index asc."""
    import numpy as np
    import scipy.sparse as sp

    t0 = time.perf_counter()
    x, cust = load_user_items(a.work)
    t1 = time.perf_counter()
    norm = np.sqrt(np.asarray(x.multiply(x).sum(axis=1), dtype=np.float64).ravel())
    inv = np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 0).astype(np.float32)
    xn = sp.diags(inv) @ x  # CSR, float32, unit rows
    xt = xn.T.tocsr()
    n, k, s = x.shape[0], a.k, min(a.sim_customers, x.shape[0])
    t2 = time.perf_counter()
    result = []
    batch_times, peak_dense = [], 0
    for start in range(0, s, a.batch):
        tb = time.perf_counter()
        stop = min(start + a.batch, s)
        d = (xn[start:stop] @ xt).toarray()  # (b, n) float32, dense
        peak_dense = max(peak_dense, d.nbytes)
        for r in range(stop - start):
            row = d[r]
            row[start + r] = -np.inf  # not one's own neighbour
            kth = np.partition(row, n - k)[n - k] if n > k else -np.inf
            cand = np.flatnonzero(row > 0) if kth <= 0 else np.flatnonzero(row >= kth)  # every tie at the cut
            top = cand[np.lexsort((cand, -row[cand]))][:k]  # score desc, then index (= natural id) asc
            result.append((start + r, top, row[top]))
        del d
        batch_times.append(time.perf_counter() - tb)
    t3 = time.perf_counter()
    with open(os.path.join(a.work, "scipy-similar.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["customer_id", "rank", "neighbor_id", "similarity"])
        for u, top, sims in result:
            for rank, (v, sv) in enumerate(zip(top, sims), 1):
                w.writerow([cust[u], rank, cust[v], f"{sv:.8g}"])
    emit({"load": t1 - t0, "prepare": t2 - t1, "neighbours": t3 - t2, "similar": t3 - t1, "customers": s,
          "batch": a.batch, "batch_times": batch_times, "dense_batch_mib": peak_dense / 2**20})  # fmt: skip


# ---------------------------------------------------------------- orchestrator


class Bench:
    def __init__(self, a):
        self.a = a
        self.w = a.work
        self.data = os.path.join(self.w, "p.csv")
        self.cobuy = a.cobuy
        self.res = {}
        self.floor = 0.0

    def path(self, name):
        return os.path.join(self.w, name)

    def record(self, name, r):
        r.pop("stdout", None)
        r["log"] = [l for _, l in r.pop("lines", [])]
        self.res.setdefault(name, []).append(r)
        print(f"  {name}: wall {r['wall']:.2f}s cpu {r['cpu']:.2f}s rss {r['rss']:.0f} MiB "
              f"(load {r['load_before'][0]:.2f})", file=sys.stderr, flush=True)  # fmt: skip

    # ---- cobuy
    def cobuy_fit(self, k):
        model = self.path(f"cobuy-k{k}.model")
        r = run_child([self.cobuy, "--threads", "2", "fit", "--purchases", self.data, "--model", model,
                       "--customer-col", "customer_id", "--item-col", "item_id", "--quantity-col", "quantity",
                       "--algorithm", "item-knn", "--weighting", "count", "--neighbors", str(k)])  # fmt: skip
        t_read, m_read = line_time(r["lines"], r"read (\d+) rows in ([\d.]+)s")
        t_fit, m_fit = line_time(r["lines"], r"fitted item-knn .* in ([\d.]+)s")
        _, m_cnt = line_time(r["lines"], r"(\d+) customers .*?, (\d+) items")
        # the stored pairs, from `cobuy inspect` after the timed process (the fit log does not count them)
        shown = subprocess.run([self.cobuy, "inspect", model], capture_output=True, text=True, check=True).stdout
        m_pairs = re.search(r"^neighbours\s+(\d+) item pairs", shown, re.M)
        r.update(ingest=t_read, kernel=t_fit - t_read, save=r["wall"] - t_fit,
                 own_read=float(m_read.group(2)), own_fit=float(m_fit.group(1)), rows=int(m_read.group(1)),
                 pairs=int(m_pairs.group(1)), customers=int(m_cnt.group(1)), items=int(m_cnt.group(2)))  # fmt: skip
        self.record(f"cobuy_fit_k{k}", r)

    def cobuy_recommend(self, name, customers_file=None):
        out = self.path(f"{name}.csv")
        argv = [self.cobuy, "--threads", "2", "recommend", "--model", self.path("cobuy-k50.model"), "--top", "10",
                "--out", out]  # fmt: skip
        if customers_file:
            argv += ["--customers", customers_file]
        r = run_child(argv)
        t_load, m_load = line_time(r["lines"], r"loaded .* in ([\d.]+)s")
        _, m = line_time(r["lines"], r"wrote (\d+) .*?recommendations for (\d+) customers .* in ([\d.]+)s \((\d+) customers/s\)")
        r.update(load=t_load, score=r["wall"] - t_load, customers=int(m.group(2)), own_load=float(m_load.group(1)),
                 own_score=float(m.group(3)), own_customers_per_s=float(m.group(4)),
                 customers_per_s=int(m.group(2)) / (r["wall"] - t_load))  # fmt: skip
        self.record(name, r)

    def cobuy_similar(self):
        r = run_child([self.cobuy, "--threads", "2", "similar-customers", "--model", self.path("cobuy-k50.model"),
                       "--top", str(self.a.sim_k), "--out", self.path("cobuy-similar.csv"),
                       "--customers", self.path("first-sim.txt")])  # fmt: skip
        t_load, _ = line_time(r["lines"], r"loaded .* in ([\d.]+)s")
        _, m = line_time(r["lines"], r"wrote (\d+) neighbours .* for (\d+) customers .* in ([\d.]+)s \((\d+) customers/s\)")
        n = int(m.group(2))
        r.update(load=t_load, similar=r["wall"] - t_load, customers=n, own_similar=float(m.group(3)),
                 own_customers_per_s=float(m.group(4)), customers_per_s=n / (r["wall"] - t_load))  # fmt: skip
        self.record("cobuy_similar", r)

    # ---- Python peers
    def py(self, name, *args):
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
        r = run_child([sys.executable, os.path.abspath(__file__), "--work", self.w, "--data", self.data,
                       "--worker", *args], env=env)  # fmt: skip
        r.update(json.loads(r["stdout"].strip().splitlines()[-1]))
        if name == "implicit_recommend":
            r["customers_per_s"] = r["users"] / r["recommend"]
        if name == "scipy_similar":
            r["customers_per_s"] = r["customers"] / r["similar"]
        self.record(name, r)

    def implicit_ingest(self):
        self.py("implicit_ingest", "ingest")

    def implicit_fit(self):
        self.py("implicit_fit", "fit", "--k", "50")

    def implicit_recommend(self):
        self.py("implicit_recommend", "recommend", "--k", "50", "--users", str(self.a.implicit_users))

    def scipy_similar(self):
        self.py("scipy_similar", "similar", "--k", str(self.a.sim_k), "--sim-customers", str(self.a.sim_customers),
                "--batch", str(self.a.sim_batch))  # fmt: skip


def first_customers(path, n, out):
    """The first n distinct customer ids of a recommendations CSV (model order), one a line."""
    seen, last = [], None
    with open(path, newline="") as f:
        r = csv.reader(f)
        next(r)
        for row in r:
            if row[0] != last:
                last = row[0]
                seen.append(last)
                if len(seen) == n:
                    break
    with open(out, "w") as f:
        f.write("".join(c + "\n" for c in seen))
    return len(seen)


def read_groups(path, id_col, val_col, keep=None):
    """customer_id -> [(id, value)] in file order; only customers in `keep` (a set) if given."""
    out = {}
    with open(path, newline="") as f:
        r = csv.reader(f)
        head = next(r)
        ci, ii, vi = head.index("customer_id"), head.index(id_col), head.index(val_col)
        for row in r:
            c = row[ci]
            if keep is not None and c not in keep:
                continue
            out.setdefault(c, []).append((row[ii], float(row[vi])))
    return out


def customer_ids(path):
    """The distinct customer ids of a CSV grouped by customer, in file order."""
    ids, last = [], None
    with open(path, newline="") as f:
        r = csv.reader(f)
        next(r)
        for row in r:
            if row[0] != last:
                last = row[0]
                ids.append(last)
    return ids


def similar_agreement(cob, ref, tol=1e-5):
    """Per customer: same length, similarities equal rank by rank within tol, ids differ only at ties."""
    same_ids = tie_only = bad = 0
    max_diff = 0.0
    examples = []
    for c in sorted(set(cob) | set(ref)):
        a, b = cob.get(c, []), ref.get(c, [])
        ok = len(a) == len(b)
        diffs = [abs(x[1] - y[1]) for x, y in zip(a, b)]
        if diffs:
            max_diff = max(max_diff, max(diffs))
        ok = ok and all(d <= tol for d in diffs)
        if ok and [x[0] for x in a] == [y[0] for y in b]:
            same_ids += 1
            continue
        if ok:  # ids differ somewhere: each differing slot must be a tie (within tol)
            last = a[-1][1] if a else 0.0
            pos_b = {v: s for v, s in b}
            for (va, sa), (vb, sb) in zip(a, b):
                if va == vb:
                    continue
                tied = (va in pos_b and abs(pos_b[va] - sa) <= tol) or abs(sa - last) <= tol
                ok = ok and tied
        if ok:
            tie_only += 1
        else:
            bad += 1
            if len(examples) < 3:
                examples.append({"customer": c, "cobuy": a[:5], "reference": b[:5], "len": [len(a), len(b)]})
    return {"customers": len(set(cob) | set(ref)), "identical": same_ids, "ties_only": tie_only, "disagree": bad,
            "max_abs_diff": max_diff, "examples": examples}  # fmt: skip


def jaccard(a, b):
    common = sorted(set(a) & set(b))
    vals = [len({x for x, _ in a[c]} & {x for x, _ in b[c]}) / len({x for x, _ in a[c]} | {x for x, _ in b[c]})
            for c in common]  # fmt: skip
    return (statistics.fmean(vals) if vals else float("nan")), len(common)


def environment(a):
    m = machine(a.cobuy, ["implicit", "numpy", "scipy", "pandas"])
    return m | {
        "cores": m["os_cpu_count"], "ram_gib": round(m["mem_gib"], 1),
        "cobuy_source": a.cobuy_label or sh(["git", "-C", ROOT, "describe", "--always", "--dirty", "--abbrev=12"]),
    }  # fmt: skip


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def rng(runs, key, d=2):
    v = [r[key] for r in runs]
    return f"{min(v):.{d}f}-{max(v):.{d}f}"


def report(a, env, res, extra):
    f = lambda x, d=2: f"{x:,.{d}f}"  # noqa: E731
    mx = lambda runs, key: max(r[key] for r in runs)  # noqa: E731
    c50, c49, ci, cf, cr = res["cobuy_fit_k50"], res["cobuy_fit_k49"], res["implicit_ingest"], res["implicit_fit"], res["implicit_recommend"]  # fmt: skip
    rec, rec_m = res["cobuy_recommend"], res["cobuy_recommend_first"]
    o = []
    o.append(f"Data: `cobuy generate --customers {a.customers} --items {a.items} --purchases {a.purchases} --seed {a.seed}` "
             f"({extra['data_bytes'] / 2**20:,.0f} MiB CSV, generated in {extra['generate_wall']:.1f} s); "
             f"{c50[0]['rows']:,} rows, {c50[0]['customers']:,} customers x {c50[0]['items']:,} items; pandas: "
             f"{ci[0]['customers']:,} x {ci[0]['items']:,}, {ci[0]['nnz']:,} pairs, sum of values {ci[0]['value_sum']:,.0f}.")  # fmt: skip
    o.append(f"Machine: {env['cpu']}, {env['cores']} cores, {env['ram_gib']} GiB RAM, Linux {env['kernel']}; "
             f"started {extra['date_start']}, ended {extra['date_end']}.")  # fmt: skip
    o.append(f"Load average (1/5/15 min) at start {extra['load_start']}, at end {extra['load_end']}; "
             f"1-min load before each measured run: {min(extra['loads']):.2f} to {max(extra['loads']):.2f}.")  # fmt: skip
    o.append(f"{env['cobuy']} (source {env['cobuy_source']}; {env['rustc']}); implicit {env['implicit']}, numpy {env['numpy']}, "
             f"scipy {env['scipy']}, pandas {env['pandas']}, Python {env['python']}.")  # fmt: skip
    o.append(f"Medians of {a.reps} interleaved rounds (similar customers: {a.sim_reps}); peak RSS is the largest of "
             f"the rounds (os.wait4; floor {extra['rss_floor']:.1f} MiB). CPU = user + sys of the process.\n")  # fmt: skip

    o.append("| step | tool | wall s | CPU s | stage s | customers/s | peak RSS MiB |")
    o.append("|---|---|---:|---:|---:|---:|---:|")
    row = lambda step, tool, runs, stage, cps="", rss=None: o.append(  # noqa: E731
        f"| {step} | {tool} | {f(med(runs, 'wall'))} | {f(med(runs, 'cpu'))} | {stage} | {cps} | "
        f"{f(mx(runs, 'rss') if rss is None else rss, 0)} |")  # fmt: skip
    row("ingest + fit", "cobuy fit K=50 (process)", c50,
        f"ingest {f(med(c50, 'ingest'))}, kernel {f(med(c50, 'kernel'))} (log: {med(c50, 'own_read'):.1f} / {med(c50, 'own_fit'):.1f}), save {f(med(c50, 'save'))}")  # fmt: skip
    row("ingest + fit", "cobuy fit K=49 (process)", c49,
        f"ingest {f(med(c49, 'ingest'))}, kernel {f(med(c49, 'kernel'))} (log: {med(c49, 'own_read'):.1f} / {med(c49, 'own_fit'):.1f})")  # fmt: skip
    row("ingest", "pandas (process)", ci,
        f"ingest {f(med(ci, 'ingest'))} (read_csv {f(med(ci, 'read_csv'))}, groupby {f(med(ci, 'groupby'))}, CSR {f(med(ci, 'csr'))})")  # fmt: skip
    row("fit", "implicit CosineRecommender K=50 (process)", cf, f"fit {f(med(cf, 'fit'))} (matrix load {f(med(cf, 'load'))})")
    row("recommend top 10", f"cobuy, all {rec[0]['customers']:,} customers (process)", rec,
        f"load {f(med(rec, 'load'))}, score + write {f(med(rec, 'score'))} (log: {med(rec, 'own_score'):.1f} s, "
        f"{med(rec, 'own_customers_per_s'):,.0f} customers/s)",
        f"{med(rec, 'customers_per_s'):,.0f}")  # fmt: skip
    who = "all" if cr[0]["users"] == cr[0]["customers"] else "random sample of"
    row("recommend top 10", f"implicit, {who} {cr[0]['users']:,} customers (process)", cr,
        f"load {f(med(cr, 'load'))}, recommend {f(med(cr, 'recommend'))}, write {f(med(cr, 'write'))}",
        f"{med(cr, 'customers_per_s'):,.0f}")  # fmt: skip
    row("recommend top 10", f"cobuy, first {rec_m[0]['customers']:,} customers (process)", rec_m,
        f"load {f(med(rec_m, 'load'))}, score + write {f(med(rec_m, 'score'))}", f"{med(rec_m, 'customers_per_s'):,.0f}")  # fmt: skip
    cs, ss = res.get("cobuy_similar"), res.get("scipy_similar")
    if cs and ss:
        row(f"similar customers top {a.sim_k}", f"cobuy, first {cs[0]['customers']:,} customers (process)", cs,
            f"load {f(med(cs, 'load'))}, similar + write {f(med(cs, 'similar'))}", f"{med(cs, 'customers_per_s'):,.1f}")  # fmt: skip
        row(f"similar customers top {a.sim_k}", f"scipy, first {ss[0]['customers']:,} customers, batches of {a.sim_batch} (process)", ss,
            f"matrix load {f(med(ss, 'load'))}, normalise {f(med(ss, 'prepare'))}, neighbours {f(med(ss, 'neighbours'))}",
            f"{med(ss, 'customers_per_s'):,.1f}")  # fmt: skip
    o.append("")

    o.append("cobuy / peer (median over median; peak RSS: max over max; below 1: cobuy takes less):\n")
    o.append("| comparison | wall or stage time | CPU s (process) | peak RSS |")
    o.append("|---|---:|---:|---:|")
    o.append(f"| ingest: cobuy `read` line / pandas ingest | {med(c50, 'own_read') / med(ci, 'ingest'):.2f} | | |")
    o.append(f"| fit: cobuy kernel (log line) / implicit `fit`; CPU and RSS: whole processes (cobuy's includes ingest, "
             f"implicit's gets the matrix prebuilt) | {med(c50, 'own_fit') / med(cf, 'fit'):.2f} | "
             f"{med(c50, 'cpu') / med(cf, 'cpu'):.2f} | {mx(c50, 'rss') / mx(cf, 'rss'):.2f} |")  # fmt: skip
    same_users = cr[0]["users"] == rec[0]["customers"]
    o.append(f"| recommend: time per customer (cobuy score + write / implicit `recommend` call) | "
             f"{med(cr, 'customers_per_s') / med(rec, 'customers_per_s'):.2f} | | |")  # fmt: skip
    o.append(f"| recommend: whole process (load, score{' all' if same_users else ''}, write CSV) | "
             f"{med(rec, 'wall') / med(cr, 'wall'):.2f}{'' if same_users else ' (different numbers of customers)'} | "
             f"{med(rec, 'cpu') / med(cr, 'cpu'):.2f} | {mx(rec, 'rss') / mx(cr, 'rss'):.2f} |")  # fmt: skip
    if cs and ss:
        o.append(f"| similar customers: time per customer (whole process for CPU and RSS) | "
                 f"{med(ss, 'customers_per_s') / med(cs, 'customers_per_s'):.3f} | {med(cs, 'cpu') / med(ss, 'cpu'):.3f} | "
                 f"{mx(cs, 'rss') / mx(ss, 'rss'):.3f} |")  # fmt: skip
    o.append(f"| end to end from the CSV (cobuy fit + recommend processes / pandas + implicit fit + recommend processes) | "
             f"{(med(c50, 'wall') + med(rec, 'wall')) / (med(ci, 'wall') + med(cf, 'wall') + med(cr, 'wall')):.2f} | "
             f"{(med(c50, 'cpu') + med(rec, 'cpu')) / (med(ci, 'cpu') + med(cf, 'cpu') + med(cr, 'cpu')):.2f} | "
             f"{max(mx(c50, 'rss'), mx(rec, 'rss')) / max(mx(ci, 'rss'), mx(cf, 'rss'), mx(cr, 'rss')):.2f} |")  # fmt: skip
    o.append("")
    # Each bar is measured in every round (round i of cobuy against round i of its peer, which ran beside it) and
    # is met only if every round meets it: a margin inside the machine's noise does not count.
    o.append("The bars of issue 17, round by round (speed-ups are peer time / cobuy time; round i of cobuy against "
             "round i of its peer). A bar is met only if every round meets it.\n")  # fmt: skip
    o.append("| bar | over the rounds (speed: median over median; RSS: max over max) | each round | bar met |")
    o.append("|---|---:|---|---|")

    def bar(name, median, rounds, ok, fmt="{:.2f}x"):
        each = ", ".join(fmt.format(v) for v in rounds)
        met = "-" if ok is None else "**met**" if all(ok(v) for v in rounds) else "not met"
        o.append(f"| {name} | {fmt.format(median)} | {each} | {met} |")

    per = lambda a, b, fn: [fn(x, y) for x, y in zip(a, b)]  # noqa: E731 - one value per round
    e2e = lambda cf_, cr_, c50_, rec_, ci_: (ci_["wall"] + cf_["wall"] + cr_["wall"]) / (c50_["wall"] + rec_["wall"])  # noqa: E731
    bar("end to end from the CSV >= 10x (pandas + implicit fit + implicit recommend processes / cobuy fit + "
        "recommend processes, wall" + ("" if same_users else "; implicit recommends a sample only, not comparable") + ")",
        (med(ci, "wall") + med(cf, "wall") + med(cr, "wall")) / (med(c50, "wall") + med(rec, "wall")),
        [e2e(*t) for t in zip(cf, cr, c50, rec, ci)], lambda v: v >= 10)  # fmt: skip
    bar("ingest >= 3x pandas (pandas ingest / cobuy `read` line)", med(ci, "ingest") / med(c50, "own_read"),
        per(ci, c50, lambda p, c: p["ingest"] / c["own_read"]), lambda v: v >= 3)  # fmt: skip
    bar("item-kNN fit kernel >= 4x implicit CosineRecommender.fit (cobuy K=50 `fitted` log line)",
        med(cf, "fit") / med(c50, "own_fit"), per(cf, c50, lambda p, c: p["fit"] / c["own_fit"]), lambda v: v >= 4)  # fmt: skip
    bar("(the same with K=49, the same number of other neighbours as implicit's K=50; not a bar)",
        med(cf, "fit") / med(c49, "own_fit"), per(cf, c49, lambda p, c: p["fit"] / c["own_fit"]), None)  # fmt: skip
    bar("recommend >= 12x implicit customers/s (cobuy: `loaded` line to exit, scoring and writing the CSV; "
        "implicit: the recommend call, no writing)",
        med(rec, "customers_per_s") / med(cr, "customers_per_s"),
        per(rec, cr, lambda c, p: c["customers_per_s"] / p["customers_per_s"]), lambda v: v >= 12)  # fmt: skip
    if cs and ss:
        bar("similar customers >= 10x scipy customers/s", med(cs, "customers_per_s") / med(ss, "customers_per_s"),
            per(cs, ss, lambda c, p: c["customers_per_s"] / p["customers_per_s"]), lambda v: v >= 10)  # fmt: skip
    rss = lambda c, p: c["rss"] / p["rss"]  # noqa: E731
    bar("peak RSS: cobuy fit process (ingest included) / implicit fit process (matrix prebuilt) <= 1",
        mx(c50, "rss") / mx(cf, "rss"), per(c50, cf, rss), lambda v: v <= 1, "{:.3f}")  # fmt: skip
    bar("peak RSS: cobuy recommend process / implicit recommend process < 1", mx(rec, "rss") / mx(cr, "rss"),
        per(rec, cr, rss), lambda v: v < 1, "{:.3f}")  # fmt: skip
    bar(f"batch memory flat: peak RSS of cobuy recommend, all {rec[0]['customers']:,} / first "
        f"{rec_m[0]['customers']:,} customers <= 1.05", mx(rec, "rss") / mx(rec_m, "rss"),
        per(rec, rec_m, rss), lambda v: v <= 1.05, "{:.3f}")  # fmt: skip
    o.append("")
    o.append("Details:\n")
    o.append(f"- Ranges over the rounds: cobuy fit kernel {rng(c50, 'kernel')} s, implicit fit {rng(cf, 'fit')} s; "
             f"cobuy recommend score+write {rng(rec, 'score')} s, implicit recommend {rng(cr, 'recommend')} s; "
             f"cobuy fit peak RSS {rng(c50, 'rss', 0)} MiB, cobuy recommend peak RSS {rng(rec, 'rss', 0)} MiB, "
             f"first-{rec_m[0]['customers']:,} {rng(rec_m, 'rss', 0)} MiB.")  # fmt: skip
    o.append(f"- End to end from the CSV: cobuy fit + recommend processes {f(med(c50, 'wall') + med(rec, 'wall'))} s wall, "
             f"{f(med(c50, 'cpu') + med(rec, 'cpu'))} s CPU; implicit ingest + fit + recommend processes "
             f"{f(med(ci, 'wall') + med(cf, 'wall') + med(cr, 'wall'))} s wall "
             f"(its recommend covers {cr[0]['users']:,} customers).")  # fmt: skip
    o.append(f"- Item neighbour pairs: cobuy K=50 {c50[0]['pairs']:,}, K=49 {c49[0]['pairs']:,}; implicit K=50 "
             f"{cf[0]['similarity_nnz']:,}, of which {cf[0]['items_with_self']:,} are an item's own slot (its K counts the item itself).")  # fmt: skip
    o.append(f"- implicit recommend: {cr[-1]['padded']} slots padded with -1, {cr[-1]['already_bought_in_top']} "
             f"already-bought items in the top 10. cobuy recommend log: " + " | ".join(
                 l for l in rec[-1]["log"] if "scoring:" not in l))  # fmt: skip
    for line in extra["notes"]:
        o.append(f"- {line}")
    return "\n".join(o)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--customers", type=int)
    ap.add_argument("--items", type=int)
    ap.add_argument("--purchases", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--sim-reps", type=int, default=3)
    ap.add_argument("--implicit-users", type=int, default=0, help="implicit recommends for a random sample of N customers; 0: all")
    ap.add_argument("--agree-customers", type=int, default=50_000, help="customers sampled for the top-10 agreement check")
    ap.add_argument("--mem-customers", type=int, default=None, help="first N customers for the memory check (default: customers / 10)")
    ap.add_argument("--sim-customers", type=int, default=2000)
    ap.add_argument("--sim-k", type=int, default=50)
    ap.add_argument("--sim-batch", type=int, default=1024)
    ap.add_argument("--skip-similar", action="store_true")
    ap.add_argument("--generate-only", action="store_true", help="generate the data (if needed) and stop")
    ap.add_argument("--cobuy", default=os.path.join(ROOT, "target", "release", "cobuy"))
    ap.add_argument("--cobuy-label")
    ap.add_argument("--work")
    ap.add_argument("--json")
    ap.add_argument("--worker", choices=["ingest", "fit", "recommend", "similar"], help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--k", type=int, default=50, help=argparse.SUPPRESS)
    ap.add_argument("--users", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=1024, help=argparse.SUPPRESS)
    ap.add_argument("--report-from", help="print the report again from a results.json (no measuring)")
    a = ap.parse_args()
    if a.report_from:
        saved = json.load(open(a.report_from))
        print(report(argparse.Namespace(**saved["args"]), saved["environment"], saved["runs"], saved["extra"]))
        return
    if a.worker:
        return {"ingest": worker_ingest, "fit": worker_fit, "recommend": worker_recommend, "similar": worker_similar}[a.worker](a)

    dc, di, dp = SIZES[a.size]
    a.customers, a.items, a.purchases = a.customers or dc, a.items or di, a.purchases or dp
    a.work = a.work or os.path.join(ROOT, "target", "scale", a.size)
    a.mem_customers = a.mem_customers or a.customers // 10
    os.makedirs(a.work, exist_ok=True)
    b = Bench(a)
    extra = {"notes": [], "date_start": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
             "load_start": " / ".join(f"{v:.2f}" for v in loadavg())}  # fmt: skip
    print(f"start {extra['date_start']}, load {extra['load_start']}", file=sys.stderr, flush=True)

    # Data: regenerated only when the parameters change (same seed, same bytes).
    stamp = f"{a.customers} {a.items} {a.purchases} {a.seed}\n"
    stamp_path = b.path("p.csv.params")
    if not (os.path.exists(b.data) and os.path.exists(stamp_path) and open(stamp_path).read() == stamp):
        r = run_child([a.cobuy, "--threads", "2", "generate", "--customers", str(a.customers), "--items", str(a.items),
                       "--purchases", str(a.purchases), "--seed", str(a.seed), "--out", b.data])  # fmt: skip
        with open(stamp_path, "w") as fs:
            fs.write(stamp)
        with open(b.path("generate.json"), "w") as fs:
            json.dump({"wall": r["wall"], "cpu": r["cpu"], "rss": r["rss"]}, fs)
    gen = json.load(open(b.path("generate.json")))
    extra["generate_wall"] = gen["wall"]
    extra["data_bytes"] = os.path.getsize(b.data)
    with open(b.data, "rb") as fd:  # into the page cache, so nobody pays the first read from disk
        while fd.read(1 << 20):  # small reads: this process's peak RSS is every child's floor
            pass
    if a.generate_only:
        return

    # Phase 1. Round 1 runs in dependency order; later rounds reverse the cobuy/peer pairs.
    pairs = [(lambda: b.cobuy_fit(50), b.implicit_ingest), (lambda: b.cobuy_fit(49), b.implicit_fit),
             (lambda: b.cobuy_recommend("cobuy_recommend"), b.implicit_recommend),
             (lambda: b.cobuy_recommend("cobuy_recommend_first", b.path("first-mem.txt")), None)]  # fmt: skip
    for rep in range(a.reps):
        b.floor = max(b.floor, run_child(["true"])["rss"])
        print(f"round {rep + 1} of {a.reps}", file=sys.stderr, flush=True)
        for x, y in pairs:
            for task in ((x, y) if rep % 2 == 0 else (y, x)):
                if task is None:
                    continue
                task()
                if task is pairs[2][0] and rep == 0:  # ids in model order, from the full output
                    first_customers(b.path("cobuy_recommend.csv"), a.mem_customers, b.path("first-mem.txt"))
                    first_customers(b.path("cobuy_recommend.csv"), a.sim_customers, b.path("first-sim.txt"))

    # Phase 2: similar customers.
    if not a.skip_similar:
        for rep in range(a.sim_reps):
            print(f"similar customers, round {rep + 1} of {a.sim_reps}", file=sys.stderr, flush=True)
            for task in ((b.cobuy_similar, b.scipy_similar) if rep % 2 == 0 else (b.scipy_similar, b.cobuy_similar)):
                task()

    extra["date_end"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    extra["load_end"] = " / ".join(f"{v:.2f}" for v in loadavg())
    extra["loads"] = [r["load_before"][0] for runs in b.res.values() for r in runs]
    extra["rss_floor"] = b.floor

    # Checks (after every measurement: they make this process large).
    # cobuy with K=49 on implicit's sample: the same number of other neighbours as implicit's K=50.
    # On a random sample of at most --agree-customers of the customers implicit scored.
    ids = customer_ids(b.path("implicit-recs.csv"))
    keep = set(random.Random(1).sample(ids, min(a.agree_customers, len(ids))))
    del ids
    imp = read_groups(b.path("implicit-recs.csv"), "item_id", "score", keep)
    with open(b.path("implicit-sample.txt"), "w") as fs:
        fs.write("".join(c + "\n" for c in imp))
    r = run_child([a.cobuy, "--threads", "2", "recommend", "--model", b.path("cobuy-k49.model"), "--top", "10",
                   "--customers", b.path("implicit-sample.txt"), "--out", b.path("cobuy-k49-sample.csv")])  # fmt: skip
    c50 = read_groups(b.path("cobuy_recommend.csv"), "item_id", "score", keep)
    c49 = read_groups(b.path("cobuy-k49-sample.csv"), "item_id", "score", keep)
    for name, other in (("cobuy K=50", c50), ("cobuy K=49", c49)):
        j, n = jaccard(other, imp)
        same = sum(1 for c in imp if c in other and [x for x, _ in other[c]] == [x for x, _ in imp[c]])
        extra["notes"].append(f"Agreement of top-10 lists, {name} vs implicit K=50 on its {n:,} customers: mean Jaccard "
                              f"{j:.4f}; identical ordered lists for {same:,}.")  # fmt: skip
    if not a.skip_similar:
        ag = similar_agreement(read_groups(b.path("cobuy-similar.csv"), "neighbor_id", "similarity"),
                               read_groups(b.path("scipy-similar.csv"), "neighbor_id", "similarity"))  # fmt: skip
        extra["similar_agreement"] = ag
        extra["notes"].append(f"Similar customers, cobuy vs scipy on {ag['customers']:,} customers: identical lists "
                              f"{ag['identical']:,}, ids differ only at ties {ag['ties_only']:,}, disagree {ag['disagree']:,}; "
                              f"largest similarity difference {ag['max_abs_diff']:.2e} (tolerance 1e-5).")  # fmt: skip
        ss = b.res["scipy_similar"]
        extra["notes"].append(f"scipy similar: dense batch {ss[0]['dense_batch_mib']:,.0f} MiB; batch times "
                              + ", ".join(f"{t:.1f}" for t in ss[-1]["batch_times"]) + " s (last round).")  # fmt: skip
    env = environment(a)
    text = report(a, env, b.res, extra)
    print(text)
    if a.json:
        with open(a.json, "w") as fj:
            json.dump({"args": vars(a), "environment": env, "runs": b.res, "extra": extra, "report": text}, fj, indent=1)


if __name__ == "__main__":
    main()
