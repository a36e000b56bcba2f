"""The Python package against the CLI: the same lists, numbers and model files on the bundled
UCI Online Retail data, and bad input as exceptions carrying the CLI's messages.

The CLI binary is ``$COBUY_BIN`` or target/release/cobuy (``.ci/run`` builds it first); it is the
oracle: every comparison is with what it wrote, read back as text.
"""

import csv
import gzip
import io
import os
import subprocess
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import cobuy

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("COBUY_BIN", str(ROOT / "target" / "release" / "cobuy"))
DATA = str(ROOT / "datasets" / "online-retail" / "online_retail.csv.gz")
COLS = dict(
    customer_col="CustomerID",
    item_col="StockCode",
    quantity_col="Quantity",
    price_col="UnitPrice",
    time_col="InvoiceDate",
    basket_col="InvoiceNo",
)


def flags(cols):
    out = []
    for k, v in cols.items():
        out += ["--" + k.replace("_", "-"), str(v)]
    return out


def cli(*args, ok=True):
    r = subprocess.run([BIN, "--quiet", *map(str, args)], capture_output=True, text=True)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def cli_error(*args):
    """The message the CLI prints after `cobuy: error: `, with exit code 2."""
    r = cli(*args, ok=False)
    assert r.returncode == 2, r.stderr
    line = [l for l in r.stderr.splitlines() if l.startswith("cobuy: error: ")][-1]
    return line[len("cobuy: error: "):]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """item-kNN fitted by the CLI and by Python on the same file, and the CLI's outputs."""
    d = tmp_path_factory.mktemp("retail")
    cli("fit", "--purchases", DATA, *flags(COLS), "--algorithm", "item-knn", "--model", d / "cli.cobuy")
    cli("recommend", "--model", d / "cli.cobuy", "--out", d / "recs.csv", "--explain")
    cli("similar-customers", "--model", d / "cli.cobuy", "--out", d / "similar.csv", "--top", "5")
    model = cobuy.Recommender(algorithm="item-knn").fit(DATA, **COLS)
    return d, model


def test_recommendations_are_the_cli_bytes(fitted):
    d, model = fitted
    assert model._model.recommendations_csv(None, 10, True, False) == (d / "recs.csv").read_bytes()


def test_recommendation_table_holds_the_cli_values(fitted):
    d, model = fitted
    want = read_csv(d / "recs.csv")
    t = model.recommendations(top=10, explain=True)
    assert t.column_names == ["customer_id", "rank", "item_id", "score", "source", "reason"]
    assert t.schema.field("customer_id").type == pa.string()
    got = t.to_pylist()
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g["customer_id"] == w["customer_id"] and g["item_id"] == w["item_id"]
        assert g["rank"] == int(w["rank"]) and g["score"] == float(w["score"])
        assert g["source"] == w["source"] and g["reason"] == w["reason"]
    df = model.recommendations(customers=[w["customer_id"] for w in want[:20:10]], pandas=True)
    assert isinstance(df, pd.DataFrame) and list(df["item_id"]) == [w["item_id"] for w in want[:20]]


def test_implicit_recommend_gives_the_cli_lists(fitted):
    d, model = fitted
    want = {}
    for w in read_csv(d / "recs.csv"):
        want.setdefault(w["customer_id"], []).append(w)
    customers = list(want)
    for c in customers[::7]:
        ids, scores = model.recommend(int(c), N=10)
        assert [str(i) for i in ids] == [w["item_id"] for w in want[c]]
        assert scores.dtype == np.float32
        assert list(scores) == [np.float32(w["score"]) for w in want[c]]
    # Many customers at once: one row each, in the order asked.
    ids, scores = model.recommend(np.array([int(c) for c in customers]), N=10)
    assert ids.shape == (len(customers), 10)
    for k, c in enumerate(customers):
        n = len(want[c])
        assert [str(i) for i in ids[k, :n]] == [w["item_id"] for w in want[c]]
        assert list(scores[k, :n]) == [np.float32(w["score"]) for w in want[c]]
        assert np.isnan(scores[k, n:]).all()


def test_similar_customers_are_the_cli_values(fitted):
    d, model = fitted
    want = read_csv(d / "similar.csv")
    got = model.similar_customers(top=5).to_pylist()
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert (g["customer_id"], g["neighbor_id"]) == (w["customer_id"], w["neighbor_id"])
        assert (g["rank"], g["similarity"], g["shared_items"]) == (
            int(w["rank"]),
            float(w["similarity"]),
            int(w["shared_items"]),
        )
    c = want[0]["customer_id"]
    ids, sims = model.similar_users(c, N=5)
    rows = [w for w in want if w["customer_id"] == c]
    assert [str(i) for i in ids] == [w["neighbor_id"] for w in rows]
    assert list(sims) == [np.float32(w["similarity"]) for w in rows]


def test_model_file_is_the_cli_file_both_ways(fitted, tmp_path):
    d, model = fitted
    model.save(tmp_path / "py.cobuy")
    # Fitted from the same path as given: the same bytes, the source recorded included.
    assert (tmp_path / "py.cobuy").read_bytes() == (d / "cli.cobuy").read_bytes()
    assert model.to_bytes() == (d / "cli.cobuy").read_bytes()
    # The CLI scores the file Python wrote, and Python the file the CLI wrote.
    loaded = cobuy.load(d / "cli.cobuy")
    assert loaded._model.recommendations_csv(None, 10, True, False) == (d / "recs.csv").read_bytes()
    assert cobuy.Recommender.from_bytes(model.to_bytes()).params == model.params
    cli("recommend", "--model", tmp_path / "py.cobuy", "--out", tmp_path / "recs.csv", "--explain")
    assert (tmp_path / "recs.csv").read_bytes() == (d / "recs.csv").read_bytes()


def retail_strings():
    """The bundled file as a DataFrame of its text, as the CSV reader sees it."""
    with gzip.open(DATA, "rt", newline="") as f:
        return pd.read_csv(f, dtype=str, keep_default_na=False)


@pytest.mark.parametrize("kind", ["pandas", "pyarrow", "polars"])
def test_in_memory_frames_give_the_cli_lists(fitted, kind):
    d, _ = fitted
    df = retail_strings()
    data = {"pandas": lambda: df, "pyarrow": lambda: pa.Table.from_pandas(df, preserve_index=False)}.get(kind)
    if kind == "polars":
        pl = pytest.importorskip("polars")
        data = lambda: pl.from_pandas(df)
    model = cobuy.Recommender(algorithm="item-knn").fit(data(), **COLS)
    assert model._model.recommendations_csv(None, 10, True, False) == (d / "recs.csv").read_bytes()
    # Every summary figure but the file's compression is the CLI's.
    got, want = model.info["ingest"], cobuy.load(d / "cli.cobuy").info["ingest"]
    assert (got.pop("gzip"), want.pop("gzip")) == (False, True)
    assert got == want


def test_scipy_matrix_fits_like_its_triplets_in_the_cli(tmp_path):
    sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(7)
    dense = (rng.random((60, 25)) < 0.2) * rng.integers(1, 4, (60, 25))
    dense[5] = 0  # a customer without purchases: not in the model
    user_items = sparse.csr_matrix(dense.astype(np.float32))
    coo = user_items.tocoo()
    with open(tmp_path / "triplets.csv", "w") as f:
        f.write("customer,item,quantity\n")
        for r, c, v in zip(coo.row, coo.col, coo.data):
            f.write(f"{r},{c},{int(v)}\n")
    cols = dict(customer_col="customer", item_col="item", quantity_col="quantity")
    cli("fit", "--purchases", tmp_path / "triplets.csv", *flags(cols), "--algorithm", "item-knn", "--model", tmp_path / "m.cobuy")
    cli("recommend", "--model", tmp_path / "m.cobuy", "--out", tmp_path / "recs.csv", "--top", "5")
    want = {}
    for w in read_csv(tmp_path / "recs.csv"):
        want.setdefault(int(w["customer_id"]), []).append(w)
    model = cobuy.Recommender(algorithm="item-knn").fit(user_items)
    assert model.item_ids.dtype == np.int64 and model.customer_ids.dtype == np.int64
    assert 5 not in set(model.customer_ids)
    for userid, rows in want.items():
        ids, scores = model.recommend(userid, user_items[userid], N=5)
        assert list(ids) == [int(w["item_id"]) for w in rows]
        assert list(scores) == [np.float32(w["score"]) for w in rows]
        assert not (dense[userid, ids] > 0).any()  # bought items are filtered, as implicit does
    ids, _ = model.recommend(0, N=25, filter_already_liked_items=False)
    assert set(np.nonzero(dense[0])[0]) <= set(ids)


def test_auto_is_the_cli_default(tmp_path):
    """`algorithm="auto"` (the default) chooses as `cobuy fit` does: same model bytes."""
    cli("generate", "--customers", 300, "--items", 60, "--rows", 4000, "--out", tmp_path / "p.csv")
    cli("fit", "--purchases", tmp_path / "p.csv", "--model", tmp_path / "cli.cobuy")
    model = cobuy.Recommender().fit(str(tmp_path / "p.csv"))
    assert model.info["selection"] is not None
    assert model.to_bytes() == (tmp_path / "cli.cobuy").read_bytes()


def test_rules_are_the_cli_rules(tmp_path):
    cols = {k: COLS[k] for k in ("customer_col", "item_col", "quantity_col", "basket_col")}
    cli("rules", "--purchases", DATA, *flags(cols), "--min-support", "0.01", "--out", tmp_path / "rules.csv")
    want = read_csv(tmp_path / "rules.csv")
    assert len(want) > 100
    table = cobuy.rules(DATA, min_support=0.01, **cols)
    assert table.column_names == list(want[0])
    got = table.to_pylist()
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert (g["antecedent"], g["consequent"]) == (w["antecedent"], w["consequent"])
        for k in ("support", "confidence", "lift", "leverage", "conviction"):
            assert g[k] == float(w[k]), k
        for k in ("count", "antecedent_count", "consequent_count"):
            assert g[k] == int(w[k]), k
    # From a DataFrame of the file's text: the same rules.
    df = cobuy.rules(retail_strings(), min_support=0.01, pandas=True, **cols)
    assert list(df["consequent"]) == [w["consequent"] for w in want]
    with pytest.raises(cobuy.CobuyError, match="min_count must be at least 1"):
        cobuy.rules(DATA, min_count=0, **cols)


def test_concurrent_calls_agree(fitted):
    """Calls from several threads (the GIL released, scoring buffers pooled) give the lists
    of one thread."""
    _, model = fitted
    customers = list(model.customer_ids[:200])
    want = [model.recommend(c, N=10) for c in customers]
    got = [None] * 4

    def work(k):
        got[k] = [model.recommend(c, N=10) for c in customers]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g in got:
        for (gi, gs), (wi, ws) in zip(g, want):
            assert list(gi) == list(wi) and list(gs) == list(ws)


# ---- bad input: exceptions with the CLI's messages ---------------------------------------


def test_bad_column_is_the_cli_error(tmp_path):
    want = cli_error("fit", "--purchases", DATA, "--customer-col", "Nope", "--item-col", "StockCode",
                     "--algorithm", "item-knn", "--model", tmp_path / "m.cobuy")
    with pytest.raises(cobuy.CobuyError) as e:
        cobuy.Recommender(algorithm="item-knn").fit(DATA, customer_col="Nope", item_col="StockCode")
    assert str(e.value) == want and "not in the header" in want


def test_bad_row_is_the_cli_error(tmp_path):
    bad = str(ROOT / "tests" / "data" / "ingest" / "bad_quantity.csv")
    want = cli_error("fit", "--purchases", bad, "--quantity-col", "quantity", "--algorithm", "item-knn",
                     "--model", tmp_path / "m.cobuy")
    with pytest.raises(cobuy.CobuyError) as e:
        cobuy.Recommender(algorithm="item-knn").fit(bad, quantity_col="quantity")
    assert str(e.value) == want and ":4: column quantity" in want
    # skip_invalid counts the row and goes on, as --skip-invalid does.
    model = cobuy.Recommender(algorithm="item-knn").fit(bad, quantity_col="quantity", skip_invalid=True)
    assert model.info["ingest"]["rejected_by_reason"] == {"invalid number": 1}


def test_damaged_model_file_is_the_cli_error(fitted, tmp_path):
    d, _ = fitted
    damaged = bytearray((d / "cli.cobuy").read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    (tmp_path / "bad.cobuy").write_bytes(bytes(damaged))
    want = cli_error("recommend", "--model", tmp_path / "bad.cobuy", "--out", tmp_path / "r.csv")
    with pytest.raises(cobuy.CobuyError) as e:
        cobuy.load(tmp_path / "bad.cobuy")
    assert str(e.value) == want and "bad.cobuy" in want
    with pytest.raises(cobuy.CobuyError, match="checksum|corrupt|damaged|truncated|magic"):
        cobuy.Recommender.from_bytes(bytes(damaged[:100]))


def test_bad_arguments_raise_clear_errors(fitted):
    _, model = fitted
    with pytest.raises(cobuy.CobuyError, match='customer "nobody" is not in the model'):
        model.recommend("nobody")
    with pytest.raises(cobuy.CobuyError, match='customer "nobody" is not in the model'):
        model.recommendations(customers=["12347", "nobody"])
    with pytest.raises(cobuy.CobuyError, match="top must be at least 1"):
        model.recommendations(top=0)
    with pytest.raises(cobuy.CobuyError, match='unknown algorithm "magic"; accepted: auto, item-knn'):
        cobuy.Recommender(algorithm="magic").fit(DATA, **COLS)
    with pytest.raises(cobuy.CobuyError, match="neighbors must be between 1 and 100000"):
        cobuy.Recommender(algorithm="item-knn", neighbors=0).fit(DATA, **COLS)
    with pytest.raises(cobuy.CobuyError, match="returns"):
        cobuy.Recommender(algorithm="item-knn").fit(DATA, returns="sometimes", **{k: v for k, v in COLS.items()})
    with pytest.raises(cobuy.CobuyError, match="cannot read purchases from a dict"):
        cobuy.Recommender().fit({"customer": [1]})
    with pytest.raises(cobuy.CobuyError, match="not fitted"):
        cobuy.Recommender().recommend(1)
    with pytest.raises(cobuy.CobuyError, match="cannot open"):
        cobuy.Recommender(algorithm="item-knn").fit("/nonexistent/purchases.csv")
