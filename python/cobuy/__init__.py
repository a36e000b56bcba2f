"""cobuy: recommendations for retail purchase histories, from Python.

A thin layer over the Rust library (the extension module ``cobuy._cobuy``): the numbers, the
lists, the model files and the error messages are those of the ``cobuy`` command line.

    import cobuy
    model = cobuy.Recommender(algorithm="item-knn").fit(df, customer_col="customer", item_col="item")
    ids, scores = model.recommend("17850", N=10)           # implicit-style arrays
    table = model.recommendations(top=10)                 # every customer: a pyarrow Table
    model.save("model.cobuy")                             # the file `cobuy fit` writes

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

__all__ = ["Recommender", "CobuyError", "load", "rules", "__version__"]
__version__: str = _cobuy.__version__

PathLike = Union[str, "os.PathLike[str]"]

# The id columns of the CLI's tables stay text whatever they look like ("00123" is an id,
# not the number 123); the other columns are typed by pyarrow (ranks and counts int64,
# scores float64, exactly the numbers the CSV prints).
_ID_COLUMNS = {name: pa.string() for name in ("customer_id", "item_id", "neighbor_id", "antecedent", "consequent")}


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
        by their names when not given). Returns ``self``."""
        read = dict(
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
        with _purchases(purchases, read) as (path, source):
            self._set(_cobuy.fit(path, read, source=source, algorithm=self.algorithm, neighbors=self.neighbors))
        return self

    def _set(self, model: Any) -> None:
        self._model = model
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

    def __repr__(self) -> str:
        if self._model is None:
            return f"Recommender(algorithm={self.algorithm!r}, not fitted)"
        m = self._model
        return (
            f"Recommender({m.algorithm}, {len(m.customer_ids())} customers x {len(m.item_ids())} items)"
        )


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
    read = dict(
        customer_col=customer_col,
        item_col=item_col,
        quantity_col=quantity_col,
        price_col=None,
        amount_col=None,
        time_col=time_col,
        basket_col=basket_col,
        rating_col=None,
        returns=returns,
        min_value=None,
        skip_invalid=skip_invalid,
        rejects=None if rejects is None else os.fspath(rejects),
    )
    with _purchases(purchases, read) as (path, _source):
        csv = _cobuy.rules_csv(
            path, read, min_support=min_support, min_confidence=min_confidence, min_lift=min_lift, min_count=min_count
        )
    return _table(csv, pandas)
