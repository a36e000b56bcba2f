"""Cross-sell, up-sell and customer value from Python against the CLI (`cobuy cross-sell
--model`, `cobuy up-sell --model`, `cobuy customers`) on the bundled UCI Online Retail data and
its derived catalogue: the same bytes, the same table values, and bad input as exceptions
carrying the CLI's messages. The CLI binary is the oracle, as in test_cobuy.py.
"""

import datetime
from pathlib import Path

import pandas as pd
import pytest

import cobuy
from cobuy import _cobuy

from test_cobuy import COLS, DATA, ROOT, cli, cli_error, flags, read_csv

CATALOG = str(ROOT / "datasets" / "online-retail" / "catalog.csv")
CAT_COLS = dict(item_col="item_id", category_cols=["category"], price_col="price", name_col="name")
CAT_FLAGS = ["--catalog", CATALOG, "--catalog-item-col", "item_id", "--catalog-category-cols", "category",
             "--catalog-price-col", "price", "--catalog-name-col", "name"]


@pytest.fixture(scope="module")
def offers(tmp_path_factory):
    """item-kNN fitted by the CLI and by Python, and the CLI's offers and customer values."""
    d = tmp_path_factory.mktemp("offers")
    cli("fit", "--purchases", DATA, *flags(COLS), "--algorithm", "item-knn", "--model", d / "cli.cobuy")
    common = ["--purchases", DATA, *flags(COLS), *CAT_FLAGS, "--model", d / "cli.cobuy"]
    cli("cross-sell", *common, "--out", d / "cross.csv")
    cli("cross-sell", *common, "--scoring", "mix", "--top", "3", "--out", d / "mix.csv")
    cli("up-sell", *common, "--out", d / "up.csv")
    cli("customers", "--purchases", DATA, *flags(COLS), "--out", d / "customers.csv")
    cli("customers", "--purchases", DATA, *flags({k: COLS[k] for k in ("customer_col", "time_col")}),
        "--unit", "day", "--model", "bg-nbd", "--out", d / "customers_days.csv")
    model = cobuy.Recommender(algorithm="item-knn").fit(DATA, **COLS)
    return d, model


def catalog_args(**over):
    return dict(dict(CAT_COLS, separator=None, brand_col=None, path=CATALOG), **over)


def assert_table_is(table, path):
    """Every cell of the table is the CSV's: text as written, numbers equal, an empty
    number missing, dates the written date."""
    want = read_csv(path)
    assert table.column_names == list(want[0])
    got = table.to_pylist()
    assert len(got) == len(want)
    for g, w in zip(got, want):
        for k, v in w.items():
            x = g[k]
            if isinstance(x, str):
                assert x == v, (k, w)
            elif x is None:
                assert v == "", (k, w)
            elif isinstance(x, datetime.date):
                assert x.isoformat() == v, (k, w)
            else:
                assert x == type(x)(v), (k, w)


def test_cross_sell_is_the_cli_bytes_and_table(offers):
    d, model = offers
    want = (d / "cross.csv").read_bytes()
    assert want.count(b"\n") > 10_000
    assert _cobuy.cross_sell_csv(model._model, DATA, cobuy._read(**COLS), catalog_args()) == want
    assert_table_is(model.cross_sell(cobuy.Catalog(CATALOG, **CAT_COLS)), d / "cross.csv")
    mix = _cobuy.cross_sell_csv(model._model, DATA, cobuy._read(**COLS), catalog_args(), scoring="mix", top=3)
    assert mix == (d / "mix.csv").read_bytes()


def test_cross_sell_from_memory_and_for_some_customers(offers):
    d, model = offers
    rows = read_csv(d / "cross.csv")
    some = [rows[0]["customer_id"], rows[-1]["customer_id"]]
    # A catalogue DataFrame, the purchases given again, a subset of customers: the CLI's rows.
    cat = cobuy.Catalog(pd.read_csv(CATALOG, dtype=str, keep_default_na=False), **CAT_COLS)
    df = model.cross_sell(cat, DATA, customers=some, pandas=True, **COLS)
    assert isinstance(df, pd.DataFrame)
    want = [r for c in some for r in rows if r["customer_id"] == c]
    assert list(zip(df["customer_id"], df["item_id"], df["reason"])) == [
        (r["customer_id"], r["item_id"], r["reason"]) for r in want
    ]
    assert list(df["score"]) == [float(r["score"]) for r in want]


def test_up_sell_is_the_cli_bytes_and_table(offers):
    d, model = offers
    want = (d / "up.csv").read_bytes()
    assert want.count(b"\n") > 5_000
    assert _cobuy.up_sell_csv(model._model, DATA, cobuy._read(**COLS), catalog_args()) == want
    table = model.up_sell(cobuy.Catalog(CATALOG, **CAT_COLS))
    assert_table_is(table, d / "up.csv")
    # A loaded model (the CLI's file) with the purchases given: the same table.
    loaded = cobuy.load(d / "cli.cobuy")
    assert loaded.up_sell(cobuy.Catalog(CATALOG, **CAT_COLS), DATA, **COLS).equals(table)


def test_customer_value_is_the_cli_bytes_and_table(offers):
    d, _ = offers
    want = (d / "customers.csv").read_bytes()
    assert _cobuy.customer_value_csv(DATA, cobuy._read(**COLS)) == want
    assert_table_is(cobuy.customer_value(DATA, **COLS), d / "customers.csv")
    # No amounts, no baskets, no items, days, a named model: other columns, still the CLI's.
    cols = {k: COLS[k] for k in ("customer_col", "time_col")}
    got = _cobuy.customer_value_csv(DATA, cobuy._read(**cols), unit="day", model="bg-nbd")
    assert got == (d / "customers_days.csv").read_bytes()
    assert b"lifetime_value" not in got.split(b"\n")[0]


# ---- bad input: exceptions with the CLI's messages ---------------------------------------


def raises(f, *args, **kw):
    with pytest.raises(cobuy.CobuyError) as e:
        f(*args, **kw)
    return str(e.value)


def test_bad_offer_input_is_the_cli_error(offers, tmp_path):
    d, model = offers
    common = ["--purchases", DATA, *flags(COLS), "--model", d / "cli.cobuy", "--out", tmp_path / "o.csv"]
    good = cobuy.Catalog(CATALOG, **CAT_COLS)
    # A catalogue column that is not there: the reader's message, naming the file.
    bad_flags = [f if f != "category" else "Nope" for f in CAT_FLAGS]
    want = cli_error("cross-sell", *common, *bad_flags)
    assert "Nope" in want
    assert raises(model.cross_sell, cobuy.Catalog(CATALOG, **dict(CAT_COLS, category_cols="Nope"))) == want
    # Settings out of range: the library's message (the up-sell flag named as the keyword).
    want = cli_error("cross-sell", *common, *CAT_FLAGS, "--cf-weight", "2")
    assert raises(model.cross_sell, good, cf_weight=2) == want
    want = cli_error("up-sell", *common, *CAT_FLAGS, "--min-step", "-1")
    assert raises(model.up_sell, good, min_step=-1) == want.replace("--min-step", "min_step")
    want = cli_error("up-sell", *common, *CAT_FLAGS[:-4], *CAT_FLAGS[-2:])
    assert "prices" in want and raises(model.up_sell, cobuy.Catalog(CATALOG, category_cols="category")).startswith(
        "up-sell needs item prices"
    )
    assert "top must be at least 1" in raises(model.cross_sell, good, top=0)
    assert 'customer "nobody" is not in the model' in raises(model.up_sell, good, customers=["nobody"])
    # Purchases the model was not fitted from; a loaded model without its purchases.
    (tmp_path / "other.csv").write_text("customer,item\n12347,22423\n")
    assert "fitted from other purchases" in raises(model.cross_sell, good, str(tmp_path / "other.csv"))
    assert "a loaded model does not keep them" in raises(cobuy.load(d / "cli.cobuy").cross_sell, good)


def test_bad_customer_value_input_is_the_cli_error(tmp_path):
    out = ["--out", tmp_path / "c.csv"]
    want = cli_error("customers", "--purchases", DATA, *flags(COLS), "--discount", "2", *out)
    assert raises(cobuy.customer_value, DATA, discount=2, **COLS) == want
    want = cli_error("customers", "--purchases", DATA, *flags(COLS), "--model", "magic", *out)
    assert raises(cobuy.customer_value, DATA, model="magic", **COLS) == want.replace("--model", "model")
    want = cli_error("customers", "--purchases", DATA, "--customer-col", "CustomerID", *out)
    assert raises(cobuy.customer_value, DATA, customer_col="CustomerID") == want.replace("--time-col", "time_col")
    want = cli_error("customers", "--purchases", DATA, *flags(COLS), "--until", "2001-01-01", *out)
    assert raises(cobuy.customer_value, DATA, until="2001-01-01", **COLS) == want
