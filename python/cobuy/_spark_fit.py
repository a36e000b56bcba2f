"""Item-kNN fitted by Spark: a map stage over blocks of customers and a reduce stage over
blocks of items, with the model file byte-identical to ``cobuy fit --algorithm item-knn
--sum-block B`` for any number of partitions.

    from cobuy._spark_fit import fit
    fit(spark, "purchases.csv.gz", "model.cobuy", customer_col="CustomerID",
        item_col="StockCode", quantity_col="Quantity", sum_block=100_000, partitions=8)

Every sum over customers is made within fixed blocks of ``sum_block`` customers, then the
blocks' sums in block order (``cobuy::algo::partial``), so how Spark spreads the blocks
changes no bit. The driver reads and weighs the purchases with the CLI's reader (the model
file holds them); executors map customer blocks (``mapInArrow``), Spark shuffles the pairs
by item block (``repartition``), executors reduce each item block to its top-k lists
(``mapInArrow``), and the driver writes the model. What crosses machines is the documented
bytes of ``cobuy::algo::partial``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterator, List, Optional, Union

import pyarrow as pa

from . import _cobuy
from . import _purchases

_MAPPED = pa.schema([("item_block", pa.int32()), ("block", pa.int32()), ("bytes", pa.binary())])
_REDUCED = pa.schema([("item_block", pa.int32()), ("bytes", pa.binary())])


def _spark_rows(df: Any) -> Any:
    """A Spark DataFrame's rows as a pyarrow Table (on the driver: the model holds them)."""
    if hasattr(df, "toArrow"):
        return df.toArrow()
    return pa.Table.from_pandas(df.toPandas(), preserve_index=False)


def fit(
    spark: Any,
    purchases: Any,
    model: Union[str, "os.PathLike[str]"],
    *,
    sum_block: int,
    partitions: Optional[int] = None,
    item_blocks: Optional[int] = None,
    neighbors: Optional[int] = None,
    similarity: Optional[Dict[str, Any]] = None,
    source: Optional[str] = None,
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
) -> None:
    """Fits item-kNN on ``purchases`` (a path, a Spark DataFrame, or what
    :meth:`cobuy.Recommender.fit` takes) with Spark and writes the model file to ``model``.

    ``sum_block``: customers per summation block (``--sum-block``); ``partitions``: Spark
    partitions of the map stage (default: the session's parallelism); ``item_blocks``:
    reduce tasks (default: ``partitions``); ``similarity``: ``SimilarityParams`` as a dict,
    e.g. ``{"measure": "jaccard"}`` (default cosine); the column arguments are the CLI's.
    ``source`` is recorded as the purchases' name (a path records itself, as the CLI does).
    """
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
        rejects=None,
    )
    if hasattr(purchases, "sparkSession") and hasattr(purchases, "mapInArrow"):
        purchases = _spark_rows(purchases)
    with _purchases(purchases, read) as (path, recorded):
        prep = _cobuy.spark_prepare(
            path,
            read,
            sum_block=sum_block,
            source=source if source is not None else recorded,
            neighbors=neighbors,
            similarity=None if similarity is None else json.dumps(similarity),
        )
    sc = spark.sparkContext
    partitions = partitions or sc.defaultParallelism
    item_blocks = item_blocks or partitions
    items, params = prep.items(), prep.params_json()
    item_block = max(1, -(-items // max(1, item_blocks)))

    # The map stage's input: one row per customer block, spread over the partitions.
    blocks = [(c, prep.block_rows(c)) for c in range(prep.blocks())]
    rows = spark.createDataFrame(blocks, "block int, rows binary").repartition(partitions)

    def map_stage(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from cobuy import _cobuy as native

        for batch in batches:
            ib: List[int] = []
            cb: List[int] = []
            out: List[bytes] = []
            for c, data in zip(batch.column("block").to_pylist(), batch.column("rows").to_pylist()):
                stats, pairs = native.spark_map(items, data, item_block, params)
                ib.append(-1)  # the block's item statistics
                cb.append(c)
                out.append(stats)
                for b, p in pairs:
                    ib.append(b)
                    cb.append(c)
                    out.append(p)
            yield pa.RecordBatch.from_arrays([pa.array(ib, pa.int32()), pa.array(cb, pa.int32()), pa.array(out, pa.binary())], schema=_MAPPED)

    mapped = rows.mapInArrow(map_stage, "item_block int, block int, bytes binary").persist()
    try:
        stats_parts = sorted(
            (r["block"], r["bytes"]) for r in mapped.filter("item_block = -1").select("block", "bytes").collect()
        )
        stats = _cobuy.spark_combine(items, [bytes(b) for _, b in stats_parts])
        shared = sc.broadcast(stats)

        def reduce_stage(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            from cobuy import _cobuy as native

            by_block: Dict[int, List[Any]] = {}
            for batch in batches:
                for b, c, data in zip(*(batch.column(k).to_pylist() for k in ("item_block", "block", "bytes"))):
                    by_block.setdefault(b, []).append((c, data))
            ids, out = [], []
            for b, parts in sorted(by_block.items()):
                parts.sort(key=lambda x: x[0])  # customer-block order
                ids.append(b)
                out.append(native.spark_reduce(b, item_block, [p for _, p in parts], shared.value, params))
            yield pa.RecordBatch.from_arrays([pa.array(ids, pa.int32()), pa.array(out, pa.binary())], schema=_REDUCED)

        pairs = mapped.filter("item_block >= 0").repartition(item_blocks, "item_block")
        reduced = {r["item_block"]: bytes(r["bytes"]) for r in pairs.mapInArrow(reduce_stage, "item_block int, bytes binary").collect()}
    finally:
        mapped.unpersist()
    # Item blocks no customer block had a pair in: reduced here, from no partials.
    lists = [
        reduced[b] if b in reduced else _cobuy.spark_reduce(b, item_block, [], stats, params)
        for b in range(-(-items // item_block))
    ]
    prep.save(lists, os.fspath(model))
