"""cobuy.spark: scores a Spark DataFrame of customer ids with a cobuy model file.

    from cobuy.spark import recommendations
    recs = recommendations(customers, "model.cobuy", top=10)   # lazy, like any DataFrame
    recs.df.write.parquet("recommendations.parquet")
    print(recs.report())   # customers scored; ids not in the model, skipped and counted

Each partition is scored by ``mapInArrow`` in Spark's Python workers. The model file is shipped
once per executor (``SparkContext.addFile``) and loaded once per Python worker: a module-level
cache keyed by the file's name, size and modification time keeps it for the worker's later tasks.
The rows are ``cobuy recommend``'s (customer_id, rank, item_id, score, source, and reason with
``explain``), with the values and types of :meth:`cobuy.Recommender.recommendations`: the union
over the partitions is the CLI's output for the same customers.

Customer ids the model does not know are skipped and counted, as ``cobuy recommend --customers``
does (``unknown="error"`` fails the job instead); :meth:`SparkRecommendations.report` says how
many after an action. Each row is scored: a customer listed twice gets two lists (the CLI scores
it once), so deduplicate first (``dropDuplicates``) where that matters.

pyspark is an optional dependency (``pip install "./python[spark]"``), imported only when a
function here is called.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any, Dict, NamedTuple, Optional, Tuple
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from . import _ID_COLUMNS, CobuyError, _cobuy

__all__ = ["recommendations", "SparkRecommendations", "Counts"]

# The recommendations table's columns, typed as the package types them (ids text, rank int64,
# score float64 parsed from the CSV's shortest round-trip text).
_COLUMNS = [
    ("customer_id", pa.string(), "string"),
    ("rank", pa.int64(), "bigint"),
    ("item_id", pa.string(), "string"),
    ("score", pa.float64(), "double"),
    ("source", pa.string(), "string"),
]
_REASON = ("reason", pa.string(), "string")
assert all(_ID_COLUMNS[n] == t for n, t, _ in _COLUMNS if n in _ID_COLUMNS)

# Unknown ids named in the report; the rest are counted (the CLI names three too).
_SHOWN = 3


class Counts(NamedTuple):
    """What the scoring tasks did, summed over the tasks (a Spark accumulator's value)."""

    scored: int = 0  # rows of customers scored (each gets a list)
    unknown: int = 0  # ids not in the model, skipped
    nulls: int = 0  # null ids, skipped
    loads: int = 0  # model loads (one per Python worker that had no copy yet)
    workers: frozenset = frozenset()  # (host, pid) of each worker that loaded the model
    first_unknown: Tuple[str, ...] = ()  # the smallest unknown ids (bytewise), at most _SHOWN

    def merged(self, o: "Counts") -> "Counts":
        return Counts(
            self.scored + o.scored,
            self.unknown + o.unknown,
            self.nulls + o.nulls,
            self.loads + o.loads,
            self.workers | o.workers,
            tuple(sorted(set(self.first_unknown) | set(o.first_unknown))[:_SHOWN]),
        )


class _CountsParam:
    """A Spark ``AccumulatorParam`` for :class:`Counts` (duck-typed, so that this module
    imports without pyspark)."""

    def zero(self, _value: Counts) -> Counts:
        return Counts()

    def addInPlace(self, a: Counts, b: Counts) -> Counts:  # noqa: N802 - pyspark's name
        return a.merged(b)


class SparkRecommendations:
    """The scored DataFrame and the counts its scoring tasks add up.

    The counts grow each time Spark computes ``df`` (every action on it, and a task that Spark
    retries counts again): read them after the one action that writes the output, or cache
    ``df`` first."""

    def __init__(self, df: Any, tally: Any) -> None:
        self.df = df
        self._tally = tally

    @property
    def counts(self) -> Counts:
        return self._tally.value

    def report(self) -> str:
        """One line like the CLI's: customers scored and the ids skipped (count, first few)."""
        c = self.counts
        ids = c.scored + c.unknown + c.nulls
        text = f"scored {c.scored} of {ids} customer ids"
        if c.unknown:
            shown = ", ".join(f'"{i}"' for i in c.first_unknown)
            more = ", ..." if c.unknown > len(c.first_unknown) else ""
            verb = "is" if c.unknown == 1 else "are"
            text += f"; {c.unknown} {verb} not in the model and skipped: {shown}{more}"
        if c.nulls:
            text += f"; {c.nulls} null {'id' if c.nulls == 1 else 'ids'} skipped"
        return text + f"; the model was loaded by {c.loads} Python {'worker' if c.loads == 1 else 'workers'}"


# ---- the driver side ---------------------------------------------------------------------

# Model files shipped with addFile, per Spark application and file name: (path, size, mtime).
# Spark ships a path once and places files by name, so a second file of the same name, or the
# same file rewritten, would leave the workers scoring with the first copy.
_SHIPPED: Dict[Tuple[str, str], Tuple[str, int, int]] = {}


def _ship(sc: Any, model: str) -> Tuple[str, Optional[int]]:
    """Ships the model file to the executors (once); returns its name there and, for a local
    file, its size (which each worker checks its copy against)."""
    url = urlparse(model)
    if url.scheme not in ("", "file") and not (len(url.scheme) == 1 and os.name == "nt"):
        # hdfs://, s3a://, dbfs:/...: Spark fetches it; the driver cannot cheaply look at it.
        sc.addFile(model)
        return os.path.basename(url.path.rstrip("/")), None
    path = os.path.abspath(url.path if url.scheme == "file" else model)
    if not os.path.isfile(path):
        raise CobuyError(f"{model}: no such model file; fit one first: cobuy fit --purchases FILE --model {model}")
    st = os.stat(path)
    name = os.path.basename(path)
    key = (sc.applicationId, name)
    prev = _SHIPPED.get(key)
    if prev is None:
        sc.addFile(path)
        _SHIPPED[key] = (path, st.st_size, st.st_mtime_ns)
    elif prev[0] != path:
        raise CobuyError(
            f"{path}: a model file named {name!r} was shipped to this Spark application already, "
            f"from {prev[0]}; Spark places shipped files by name: give this one another name"
        )
    elif prev[1:] != (st.st_size, st.st_mtime_ns):
        raise CobuyError(
            f"{path} changed after it was shipped to this Spark application, which ships a path "
            "once: write the new model under a new name (or start a new application)"
        )
    return name, st.st_size


def _customer_column(df: Any, customer_col: Optional[str]) -> str:
    from pyspark.sql import types as T

    columns = df.columns
    if customer_col is None:
        customer_col = columns[0] if len(columns) == 1 else "customer_id"
    if customer_col not in columns:
        raise CobuyError(
            f"the customers DataFrame has no column {customer_col!r} (its columns: {', '.join(columns) or 'none'}); "
            "name the customer id column with customer_col="
        )
    dtype = df.schema[customer_col].dataType
    if not isinstance(dtype, (T.StringType, T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        raise CobuyError(
            f"column {customer_col!r} holds {dtype.simpleString()}: customer ids must be strings or integers "
            "(integers are read as their decimal text)"
        )
    return customer_col


def recommendations(
    customers: Any,
    model: str,
    *,
    customer_col: Optional[str] = None,
    top: int = 10,
    explain: bool = False,
    include_bought: bool = False,
    unknown: str = "skip",
    threads: Optional[int] = None,
) -> SparkRecommendations:
    """Scores each row of the Spark DataFrame ``customers`` with the model file ``model`` (a local
    path, or a URL Spark reads such as ``hdfs://...``): ``cobuy recommend``'s rows, as a lazy
    DataFrame in ``.df``.

    ``customer_col`` names the id column (default: the only column, else ``customer_id``); ids
    are strings, or integers read as their decimal text. ``top``, ``explain`` and
    ``include_bought`` are ``cobuy recommend``'s flags. ``unknown="skip"`` skips and counts ids
    the model does not know, as the CLI does; ``"error"`` fails the job on the first one.
    ``threads``: scoring threads per task (default ``spark.task.cpus``, so that concurrent
    tasks do not oversubscribe the executor), set when a Python worker first scores."""
    if top < 1:
        raise CobuyError("top must be at least 1")
    if unknown not in ("skip", "error"):
        raise CobuyError(f"unknown must be 'skip' or 'error', not {unknown!r}")
    if threads is not None and threads < 1:
        raise CobuyError("threads must be at least 1")
    col = _customer_column(customers, customer_col)
    sc = customers.sparkSession.sparkContext
    name, size = _ship(sc, os.fspath(model))
    columns = _COLUMNS + ([_REASON] if explain else [])
    schema = ", ".join(f"{n} {s}" for n, _, s in columns)
    tally = sc.accumulator(Counts(), _CountsParam())
    score = _Scorer(name, size, top, explain, include_bought, unknown == "error", threads, tally, columns)
    return SparkRecommendations(customers.select(col).mapInArrow(score, schema), tally)


# ---- the worker side ---------------------------------------------------------------------

# The models this Python worker has loaded, by file name: (name, size, mtime) -> model.
_LOADED: Dict[str, Tuple[Tuple[str, int, int], Any]] = {}
_LOCK = threading.Lock()


def _load(name: str, size: Optional[int]) -> Tuple[Any, bool]:
    """The model shipped as ``name``, loaded once per worker process; and whether this call
    loaded it."""
    from pyspark import SparkFiles

    path = SparkFiles.get(name)
    try:
        st = os.stat(path)
    except OSError as e:
        raise CobuyError(f"{name}: the model file is not on this worker ({path}: {e.strerror})") from None
    if size is not None and st.st_size != size:
        raise CobuyError(f"{path}: the worker's copy has {st.st_size} bytes, the driver's file {size}")
    key = (name, st.st_size, st.st_mtime_ns)
    with _LOCK:
        hit = _LOADED.get(name)
        if hit is not None and hit[0] == key:
            return hit[1], False
        model = _cobuy.load(path)
        _LOADED[name] = (key, model)
        return model, True


def _set_threads(threads: Optional[int]) -> None:
    """Caps the Rust thread pool of this worker process before its first use (a later call
    cannot change it: the pool is made once per process)."""
    if "RAYON_NUM_THREADS" in os.environ:
        return
    if threads is None:
        from pyspark import TaskContext

        tc = TaskContext.get()
        threads = tc.cpus() if tc is not None and hasattr(tc, "cpus") else 1
    os.environ["RAYON_NUM_THREADS"] = str(max(1, int(threads)))


class _Scorer:
    """The function ``mapInArrow`` runs on each partition: record batches of customer ids in,
    record batches of recommendations out (pickled to the workers with its arguments)."""

    def __init__(self, name, size, top, explain, include_bought, strict, threads, tally, columns) -> None:
        self.name, self.size = name, size
        self.top, self.explain, self.include_bought = top, explain, include_bought
        self.strict, self.threads, self.tally = strict, threads, tally
        self.columns = columns

    def __call__(self, batches):
        counts = Counts()
        model = None
        types = {n: t for n, t, _ in self.columns}
        schema = pa.schema([(n, t) for n, t, _ in self.columns])
        for batch in batches:
            ids = batch.column(0)
            if not pa.types.is_string(ids.type):
                ids = pc.cast(ids, pa.string())
            nulls = ids.null_count
            if nulls and self.strict:
                raise CobuyError("a customer id is null")
            keys = pc.drop_null(ids).to_pylist() if nulls else ids.to_pylist()
            if not keys:
                counts = counts.merged(Counts(nulls=nulls))
                continue
            if model is None:
                _set_threads(self.threads)
                model, loaded = _load(self.name, self.size)
                if loaded:
                    counts = counts.merged(Counts(loads=1, workers=frozenset([(socket.gethostname(), os.getpid())])))
            known = np.frombuffer(model.known(keys), dtype=np.bool_)
            missing = []
            if not known.all():
                missing = [k for k, ok in zip(keys, known) if not ok]
                if self.strict:
                    raise CobuyError(f'customer "{missing[0]}" is not in the model')
                keys = [k for k, ok in zip(keys, known) if ok]
            counts = counts.merged(
                Counts(
                    scored=len(keys),
                    unknown=len(missing),
                    nulls=nulls,
                    first_unknown=tuple(sorted(missing)[:_SHOWN]),
                )
            )
            if not keys:
                continue
            csv = model.recommendations_csv(keys, self.top, self.explain, self.include_bought)
            table = pacsv.read_csv(
                pa.py_buffer(csv),
                convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False),
            )
            yield from table.select(schema.names).cast(schema).to_batches()
        self.tally.add(counts)
