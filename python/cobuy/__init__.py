"""cobuy: recommendations for retail purchase histories, from Python.

A thin layer over the Rust library (the extension module ``cobuy._cobuy``): the numbers, the
lists, the model files and the error messages are those of the ``cobuy`` command line.

    import cobuy
    model = cobuy.Recommender(algorithm="item-knn").fit(df, customer_col="customer", item_col="item")
    ids, scores = model.recommend("17850", N=10)           # implicit-style arrays
    table = model.recommendations(top=10)                 # every customer: a pyarrow Table
    model.save("model.cobuy")                             # the file `cobuy fit` writes
    catalog = cobuy.Catalog("catalog.csv", category_cols=["category"], price_col="price")
    offers = model.cross_sell(catalog, top=3)             # `cobuy cross-sell --model`
    upgrades = model.up_sell(catalog, top=3)              # `cobuy up-sell --model`
    value = cobuy.customer_value(df, customer_col="customer", time_col="time")  # `cobuy customers`

Purchases may be a path (CSV, TSV, gzip, Parquet file or folder), a pandas or polars DataFrame,
a pyarrow Table, or a scipy sparse matrix of customers x items (implicit's ``user_items``).
In-memory data reaches the Rust reader as a temporary Parquet file, so that every row goes
through the one reader the CLI uses: the same validation, rejects, errors and model bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from typing import Any, Iterable, Iterator, Optional, Sequence, Tuple, Union

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from . import _cobuy
from ._cobuy import CobuyError

__all__ = ["Recommender", "Catalog", "CobuyError", "load", "rules", "customer_value", "__version__"]
__version__: str = _cobuy.__version__

PathLike = Union[str, "os.PathLike[str]"]

# The id columns of the CLI's tables stay text whatever they look like ("00123" is an id,
# not the number 123); the other columns are typed by pyarrow (ranks and counts int64,
# scores float64, exactly the numbers the CSV prints).
_ID_COLUMNS = {
    name: pa.string()
    for name in (
        "customer_id",
        "customer",
        "item_id",
        "neighbor_id",
        "anchor_item_id",
        "antecedent",
        "consequent",
        "category",
    )
}


def _table(csv: bytes, pandas: bool) -> Any:
    table = pacsv.read_csv(
        pa.py_buffer(csv),
        convert_options=pacsv.ConvertOptions(column_types=_ID_COLUMNS, strings_can_be_null=False),
    )
    return table.to_pandas() if pandas else table


def _is_canonical_int(s: str) -> bool:
    """``s`` is an int64 written as Python writes it (no sign but ``-``, no leading zero)."""
    t = s[1:] if s.startswith("-") else s
    return 0 < len(t) < 19 and t.isascii() and t.isdigit() and (t == "0" == s or not t.startswith("0"))


def _ids(ids: Sequence[str]) -> np.ndarray:
    """Ids as int64 when every one is an integer written plainly (always so after fitting a
    scipy matrix, whose ids are its row and column numbers), else as Python strings."""
    if ids and all(_is_canonical_int(s) for s in ids):
        return np.fromiter((int(s) for s in ids), dtype=np.int64, count=len(ids))
    return np.array(ids, dtype=object)


def _key(customer: Any) -> str:
    return customer if isinstance(customer, str) else str(customer)


def _to_arrow(data: Any) -> Tuple[pa.Table, dict]:
    """In-memory purchases as a pyarrow Table, with the column options they imply."""
    if isinstance(data, pa.Table):
        return data, {}
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data]), {}
    sparse = sys.modules.get("scipy.sparse")
    if sparse is not None and sparse.issparse(data):
        # implicit's user_items: rows are customers, columns items, values quantities.
        coo = sparse.coo_matrix(data)
        table = pa.table(
            {
                "customer": pa.array(coo.row.astype(np.int64)),
                "item": pa.array(coo.col.astype(np.int64)),
                "quantity": pa.array(coo.data),
            }
        )
        return table, {"customer_col": "customer", "item_col": "item", "quantity_col": "quantity"}
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False), {}
    pl = sys.modules.get("polars")
    if pl is not None and isinstance(data, pl.DataFrame):
        return data.to_arrow(), {}
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data), {}
    raise CobuyError(
        f"cannot read purchases from a {type(data).__name__}: give a path, a pandas or polars "
        "DataFrame, a pyarrow Table or a scipy sparse matrix"
    )


def _read(
    customer_col: Union[str, int, None] = None,
    item_col: Union[str, int, None] = None,
    quantity_col: Union[str, int, None] = None,
    price_col: Union[str, int, None] = None,
    amount_col: Union[str, int, None] = None,
    time_col: Union[str, int, None] = None,
    basket_col: Union[str, int, None] = None,
    rating_col: Union[str, int, None] = None,
    returns: str = "net",
    min_value: Optional[float] = None,
    skip_invalid: bool = False,
    rejects: Optional[PathLike] = None,
) -> dict:
    """The options of :meth:`Recommender.fit` that say how to read purchases, as the Rust
    layer takes them (the CLI's input flags)."""
    return dict(
        customer_col=customer_col,
        item_col=item_col,
        quantity_col=quantity_col,
        price_col=price_col,
        amount_col=amount_col,
        time_col=time_col,
        basket_col=basket_col,
        rating_col=rating_col,
        returns=returns,
        min_value=min_value,
        skip_invalid=skip_invalid,
        rejects=None if rejects is None else os.fspath(rejects),
    )


@contextlib.contextmanager
def _purchases(purchases: Any, read: dict) -> Iterator[Tuple[str, Optional[str]]]:
    """The purchases as a path the Rust reader takes, and the source a model records (the
    path as given, as the CLI records it; none for data in memory, written to a temporary
    Parquet file for the read). Fills in the columns a scipy matrix implies."""
    if isinstance(purchases, (str, os.PathLike)):
        path = os.fspath(purchases)
        yield path, path
        return
    table, implied = _to_arrow(purchases)
    for k, v in implied.items():
        if read.get(k) is None:
            read[k] = v
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="cobuy-") as tmp:
        path = os.path.join(tmp, "purchases.parquet")
        pq.write_table(table, path, compression="none")
        yield path, None


class Recommender:
    """A cobuy model: fit it on purchases, then ask for lists.

    ``algorithm`` is ``"auto"`` (the default: chosen and tuned on a validation split of the
    data, as ``cobuy fit`` does), ``"item-knn"``, ``"user-knn"``, ``"popularity"``,
    ``"buy-again"``, ``"als"`` or ``"ease"``; ``neighbors`` as ``--neighbors``.
    """

    def __init__(self, algorithm: str = "auto", neighbors: Optional[int] = None) -> None:
        self.algorithm = algorithm
        self.neighbors = neighbors
        self._model: Optional[Any] = None
        self._fitted_on = None

    # ---- fitting, saving, loading -------------------------------------------------------

    def fit(
        self,
        purchases: Any,
        *,
        customer_col: Union[str, int, None] = None,
        item_col: Union[str, int, None] = None,
        quantity_col: Union[str, int, None] = None,
        price_col: Union[str, int, None] = None,
        amount_col: Union[str, int, None] = None,
        time_col: Union[str, int, None] = None,
        basket_col: Union[str, int, None] = None,
        rating_col: Union[str, int, None] = None,
        returns: str = "net",
        min_value: Optional[float] = None,
        skip_invalid: bool = False,
        rejects: Optional[PathLike] = None,
    ) -> "Recommender":
        """Reads the purchases and fits the model, as ``cobuy fit`` with the same column flags
        (``customer_col`` is ``--customer-col``, and so on; customer and item columns are found
        by their names when not given). Returns ``self``.

        The model keeps a reference to ``purchases`` and these options, for
        :meth:`cross_sell` and :meth:`up_sell`, which read the purchases again."""
        read = _read(
            customer_col, item_col, quantity_col, price_col, amount_col, time_col, basket_col, rating_col,
            returns, min_value, skip_invalid, rejects,
        )
        with _purchases(purchases, read) as (path, source):
            self._set(_cobuy.fit(path, read, source=source, algorithm=self.algorithm, neighbors=self.neighbors))
        self._fitted_on = (purchases, read)
        return self

    def _set(self, model: Any) -> None:
        self._model = model
        self._fitted_on: Optional[Tuple[Any, dict]] = None
        self.algorithm = model.algorithm
        self._customer_index: Optional[dict] = None
        self._customers: Optional[np.ndarray] = None
        self._items: Optional[np.ndarray] = None

    @classmethod
    def load(cls, path: PathLike) -> "Recommender":
        """Loads a model file written by ``cobuy fit`` or :meth:`save`."""
        r = cls()
        r._set(_cobuy.load(os.fspath(path)))
        return r

    @classmethod
    def from_bytes(cls, data: bytes) -> "Recommender":
        """A model from the bytes of a model file."""
        r = cls()
        r._set(_cobuy.from_bytes(data))
        return r

    def save(self, path: PathLike) -> None:
        """Writes the model file ``cobuy fit`` writes (``cobuy recommend --model`` reads it)."""
        self._fitted().save(os.fspath(path))

    def to_bytes(self) -> bytes:
        """The bytes of the model file."""
        return self._fitted().to_bytes()

    def _fitted(self) -> Any:
        if self._model is None:
            raise CobuyError("the model is not fitted: call fit() or Recommender.load() first")
        return self._model

    # ---- ids and parameters -------------------------------------------------------------

    @property
    def customer_ids(self) -> np.ndarray:
        """Customer ids by index (int64 when all are integers, else str)."""
        if self._customers is None:
            self._customers = _ids(self._fitted().customer_ids())
        return self._customers

    @property
    def item_ids(self) -> np.ndarray:
        """Item ids by index (int64 when all are integers, else str)."""
        if self._items is None:
            self._items = _ids(self._fitted().item_ids())
        return self._items

    @property
    def params(self) -> dict:
        """The fitted parameters (what ``cobuy inspect`` shows)."""
        return json.loads(self._fitted().params_json())

    @property
    def info(self) -> dict:
        """What was read (the ingest summary) and, for ``auto``, what was tried and chosen."""
        return json.loads(self._fitted().info_json())

    # ---- implicit-style calls -----------------------------------------------------------

    def recommend(
        self,
        userid: Any,
        user_items: Any = None,
        N: int = 10,
        filter_already_liked_items: bool = True,
    ) -> Tuple[np.ndarray, np.ndarray]:
        """implicit's ``recommend``: the top ``N`` items of a customer id (an array of them
        gives 2-d arrays, one row per customer), as ``(item ids, scores)``; scores are
        float32, the numbers ``cobuy recommend`` prints. ``user_items`` is accepted for
        implicit's signature and not needed: the model holds each customer's purchases.
        Short lists (a customer who bought nearly everything) are padded with id -1 (or
        None) and score NaN."""
        m = self._fitted()
        include = not filter_already_liked_items
        if isinstance(userid, (str, int, np.integer)):
            items, scores = m.recommend_one(_key(userid), N, include)
            return self.item_ids[np.asarray(items, dtype=np.int64)], np.asarray(scores, dtype=np.float32)
        keys = [_key(u) for u in userid]
        lens, items, scores = m.recommend_many(keys, N, include)
        return self._padded(lens, items, scores, N)

    def _padded(self, lens: bytes, items: bytes, scores: bytes, n: int) -> Tuple[np.ndarray, np.ndarray]:
        lens_a = np.frombuffer(lens, dtype="<u4")
        items_a = np.frombuffer(items, dtype="<u4").astype(np.int64)
        scores_a = np.frombuffer(scores, dtype="<f4")
        rows = len(lens_a)
        ids = self.item_ids
        out_ids = np.full((rows, n), -1 if ids.dtype == np.int64 else None, dtype=ids.dtype)
        out_scores = np.full((rows, n), np.nan, dtype=np.float32)
        mask = np.arange(n)[None, :] < lens_a[:, None]
        out_ids[mask] = ids[items_a]
        out_scores[mask] = scores_a
        return out_ids, out_scores

    def similar_users(self, userid: Any, N: int = 10) -> Tuple[np.ndarray, np.ndarray]:
        """implicit's ``similar_users``: the ``N`` most similar customers (cosine over the
        weighted purchases, as ``cobuy similar-customers``), as ``(customer ids, similarities)``.
        Unlike implicit, the customer is not its own first neighbour."""
        idx, sims, _shared = self._fitted().similar_one(_key(userid), N)
        return self.customer_ids[np.asarray(idx, dtype=np.int64)], np.asarray(sims, dtype=np.float32)

    # ---- cobuy-style tables -------------------------------------------------------------

    def recommendations(
        self,
        customers: Optional[Iterable[Any]] = None,
        top: int = 10,
        explain: bool = False,
        include_bought: bool = False,
        pandas: bool = False,
    ) -> Any:
        """``cobuy recommend``'s table for these customers (every customer, in the model's
        order, when None): customer_id, rank, item_id, score, source (and reason with
        ``explain``), as a pyarrow Table, or a pandas DataFrame with ``pandas=True``."""
        keys = None if customers is None else [_key(c) for c in customers]
        return _table(self._fitted().recommendations_csv(keys, top, explain, include_bought), pandas)

    def similar_customers(
        self, customers: Optional[Iterable[Any]] = None, top: int = 10, pandas: bool = False
    ) -> Any:
        """``cobuy similar-customers``' table: customer_id, rank, neighbor_id, similarity,
        shared_items."""
        keys = None if customers is None else [_key(c) for c in customers]
        return _table(self._fitted().similar_customers_csv(keys, top), pandas)

    # ---- offers: cross-sell and up-sell ----------------------------------------------------

    @contextlib.contextmanager
    def _offer_inputs(self, what: str, purchases: Any, read: dict, catalog: "Catalog") -> Iterator[Tuple[Any, str, dict, dict]]:
        """The model, the purchases' path and read options, and the catalogue's: the
        purchases given, or those :meth:`fit` read."""
        m = self._fitted()
        if purchases is None:
            if read:
                raise CobuyError(f"{what}: the column options ({', '.join(read)}) go with purchases=...")
            if self._fitted_on is None:
                raise CobuyError(
                    f"{what} needs the purchases the model was fitted from: a loaded model does not keep them; "
                    "pass purchases=... with fit()'s column options"
                )
            purchases, options = self._fitted_on
            options = dict(options)
        else:
            options = _read(**read)
        if not isinstance(catalog, Catalog):
            raise CobuyError(f"{what}: give the catalogue as a cobuy.Catalog, not a {type(catalog).__name__}")
        with _purchases(purchases, options) as (path, _source), catalog._args() as cat:
            yield m, path, options, cat

    def cross_sell(
        self,
        catalog: "Catalog",
        purchases: Any = None,
        *,
        customers: Optional[Iterable[Any]] = None,
        top: int = 10,
        level: Optional[int] = None,
        scoring: str = "new-categories",
        cf_weight: float = 0.5,
        novelty: float = 1.0,
        min_support: float = 0.0005,
        min_count: int = 5,
        pandas: bool = False,
        **read: Any,
    ) -> Any:
        """``cobuy cross-sell --model``'s table: complementary offers by category for these
        customers (every customer, in the model's order, when None), scored with this
        model's affinity and the basket rules of ``purchases`` (default: those :meth:`fit`
        read; else give them with fit()'s column options as keywords, and they must be the
        purchases the model was fitted from). Columns: customer_id, rank, item_id, score,
        category, reason. ``level`` is the catalogue level that counts as a category (default
        1, or 0 in a one-level catalogue); ``scoring`` is ``"new-categories"`` (only
        categories the customer never bought) or ``"mix"`` (weighed by ``cf_weight`` and
        ``novelty``); ``min_support`` and ``min_count`` bound the basket rules used."""
        keys = None if customers is None else [_key(c) for c in customers]
        with self._offer_inputs("cross_sell", purchases, read, catalog) as (m, path, options, cat):
            csv = _cobuy.cross_sell_csv(
                m, path, options, cat, customers=keys, top=top, level=level, scoring=scoring,
                cf_weight=cf_weight, novelty=novelty, min_support=min_support, min_count=min_count,
            )
        return _table(csv, pandas)

    def up_sell(
        self,
        catalog: "Catalog",
        purchases: Any = None,
        *,
        customers: Optional[Iterable[Any]] = None,
        top: int = 5,
        level: Optional[int] = None,
        grades: Sequence[str] = (),
        min_step: float = 0.01,
        window_days: int = 365,
        min_path_count: int = 3,
        pair_measure: str = "excess",
        min_score: float = 0.0,
        tiers: int = 4,
        smoothing: float = 10.0,
        price_cap: float = 4.0,
        anchor_half_life: float = 120.0,
        affinity_weight: float = 0.65,
        tiers_only: bool = False,
        pandas: bool = False,
        **read: Any,
    ) -> Any:
        """``cobuy up-sell --model``'s table: for these customers (every customer when None),
        dearer items of the categories they bought, learned from the order of ``purchases``
        (as for :meth:`cross_sell`), with when to offer them. Columns: customer_id, rank,
        item_id, score, anchor_item_id, offer_after (a date), reason. The catalogue needs
        ``price_col`` (and ``brand_col`` with ``grades``); the settings are the up-sell
        flags' (``min_step`` is ``--min-step``, and so on), with the same defaults."""
        keys = None if customers is None else [_key(c) for c in customers]
        with self._offer_inputs("up_sell", purchases, read, catalog) as (m, path, options, cat):
            csv = _cobuy.up_sell_csv(
                m, path, options, cat, customers=keys, top=top, level=level, grades=list(grades),
                min_step=min_step, window_days=window_days, min_path_count=min_path_count,
                pair_measure=pair_measure, min_score=min_score, tiers=tiers, smoothing=smoothing,
                price_cap=price_cap, anchor_half_life=anchor_half_life, affinity_weight=affinity_weight,
                tiers_only=tiers_only,
            )
        return _table(csv, pandas)

    def __repr__(self) -> str:
        if self._model is None:
            return f"Recommender(algorithm={self.algorithm!r}, not fitted)"
        m = self._model
        return (
            f"Recommender({m.algorithm}, {len(m.customer_ids())} customers x {len(m.item_ids())} items)"
        )


class Catalog:
    """A product catalogue for :meth:`Recommender.cross_sell` and :meth:`Recommender.up_sell`,
    read as ``--catalog`` and its column flags read it: a CSV path, or a pandas or polars
    DataFrame or a pyarrow Table (written to a temporary CSV for the same reader). An item
    id column (found by its name when not given) and one to four category columns, top level
    first (or one column split by ``separator``); a name column makes the reasons readable,
    a price column is needed for up-sell, and a brand column for up-sell's ``grades``."""

    def __init__(
        self,
        data: Any,
        *,
        category_cols: Union[str, int, Sequence[Union[str, int]]],
        item_col: Union[str, int, None] = None,
        separator: Optional[str] = None,
        name_col: Union[str, int, None] = None,
        price_col: Union[str, int, None] = None,
        brand_col: Union[str, int, None] = None,
    ) -> None:
        self.data = data
        self.columns = dict(
            item_col=item_col,
            category_cols=[category_cols] if isinstance(category_cols, (str, int)) else list(category_cols),
            separator=separator,
            name_col=name_col,
            price_col=price_col,
            brand_col=brand_col,
        )

    @contextlib.contextmanager
    def _args(self) -> Iterator[dict]:
        """The catalogue as the Rust layer takes it: its path and columns."""
        if isinstance(self.data, (str, os.PathLike)):
            yield dict(self.columns, path=os.fspath(self.data))
            return
        table, _ = _to_arrow(self.data)
        with tempfile.TemporaryDirectory(prefix="cobuy-") as tmp:
            path = os.path.join(tmp, "catalog.csv")
            pacsv.write_csv(table, path)
            yield dict(self.columns, path=path)

    def __repr__(self) -> str:
        what = os.fspath(self.data) if isinstance(self.data, (str, os.PathLike)) else type(self.data).__name__
        return f"Catalog({what!r}, category_cols={self.columns['category_cols']!r})"


def load(path: PathLike) -> Recommender:
    """Loads a model file written by ``cobuy fit`` or :meth:`Recommender.save`."""
    return Recommender.load(path)


def rules(
    purchases: Any,
    *,
    min_support: float = 0.001,
    min_confidence: float = 0.0,
    min_lift: float = 0.0,
    min_count: int = 1,
    customer_col: Union[str, int, None] = None,
    item_col: Union[str, int, None] = None,
    quantity_col: Union[str, int, None] = None,
    time_col: Union[str, int, None] = None,
    basket_col: Union[str, int, None] = None,
    returns: str = "net",
    skip_invalid: bool = False,
    rejects: Optional[PathLike] = None,
    pandas: bool = False,
) -> Any:
    """``cobuy rules``' table: pairwise association rules between items bought in the same
    basket (the same customer without a basket column): antecedent, consequent, support,
    confidence, lift, leverage, conviction, count, antecedent_count, consequent_count."""
    read = _read(
        customer_col, item_col, quantity_col, None, None, time_col, basket_col, None, returns, None, skip_invalid,
        rejects,
    )
    with _purchases(purchases, read) as (path, _source):
        csv = _cobuy.rules_csv(
            path, read, min_support=min_support, min_confidence=min_confidence, min_lift=min_lift, min_count=min_count
        )
    return _table(csv, pandas)


def customer_value(
    purchases: Any,
    *,
    model: str = "auto",
    unit: str = "week",
    horizon: Optional[float] = None,
    discount: float = 0.1,
    until: Optional[str] = None,
    tier_by: str = "value",
    customer_col: Union[str, int, None] = None,
    item_col: Union[str, int, None] = None,
    quantity_col: Union[str, int, None] = None,
    price_col: Union[str, int, None] = None,
    amount_col: Union[str, int, None] = None,
    time_col: Union[str, int, None] = None,
    basket_col: Union[str, int, None] = None,
    returns: str = "net",
    min_value: Optional[float] = None,
    skip_invalid: bool = False,
    rejects: Optional[PathLike] = None,
    pandas: bool = False,
) -> Any:
    """``cobuy customers``' table: what each customer is worth and who is leaving, one row
    per customer: purchases, repeat purchases, recency, age and time since the last purchase
    (in ``unit``\s: day, week or month), first and last purchase dates, revenue and mean
    repeat spend (with amounts or prices), P(alive), expected purchases and P(no purchase)
    (churn risk) over ``horizon`` units (default a year), expected spend and lifetime value
    (discounted by ``discount`` a year), tier (by ``tier_by``: value or revenue), RFM scores
    and segment. ``model`` is the repeat-purchase model: ``"auto"`` (the best likelihood of
    bg-nbd, mbg-nbd and pareto-nbd), or one of them; ``until`` ends the observation at a
    date. Needs ``time_col``; a basket column makes a purchase a basket rather than a day."""
    read = _read(
        customer_col, item_col, quantity_col, price_col, amount_col, time_col, basket_col, None,
        returns, min_value, skip_invalid, rejects,
    )
    with _purchases(purchases, read) as (path, _source):
        csv = _cobuy.customer_value_csv(
            path, read, model=model, unit=unit, horizon=horizon, discount=discount, until=until, tier_by=tier_by
        )
    return _table(csv, pandas)
