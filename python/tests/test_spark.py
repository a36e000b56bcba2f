"""cobuy.spark and the examples/ scripts in Spark local mode, against the CLI on the bundled UCI
Online Retail data: the union of the partitions' rows, written back as the CLI writes them, is the
CLI's recommendations CSV byte for byte (rows in the CLI's order); unknown ids are skipped and
counted as the CLI does; bad input is a clear error.

One SparkSession (local[2]) for the module. Needs pyspark and a Java runtime; skipped without
pyspark unless COBUY_REQUIRE_SPARK is set (``.ci/run`` sets it, so CI cannot skip them).
"""

import csv
import importlib.util
import io
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

if os.environ.get("COBUY_REQUIRE_SPARK"):
    import pyspark  # noqa: F401
else:
    pytest.importorskip("pyspark")

from pyspark.sql import SparkSession  # noqa: E402

import cobuy  # noqa: E402
from cobuy import spark as cspark  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_cobuy import BIN, COLS, DATA, cli, cli_error, flags  # noqa: E402

HEADER = ["customer_id", "rank", "item_id", "score", "source"]


# ---- an independent writer of the CLI's CSV (src/batch.rs), for byte comparisons ---------


def ryu_f32(x):
    """A score as the CLI prints it: the f32's shortest round-trip digits, laid out as the
    ryu crate's `format` lays them out (plain decimals from 1e-6 to below 1e13)."""
    v = np.float32(x)
    if v == 0:
        return "-0.0" if np.signbit(v) else "0.0"
    s = np.format_float_scientific(v, unique=True, trim="-")
    sign = "-" if s.startswith("-") else ""
    mant, exp = s.lstrip("-").split("e")
    digits = mant.replace(".", "")
    kk = int(exp) + 1
    k = kk - len(digits)
    if 0 <= k and kk <= 13:
        out = digits + "0" * k + ".0"
    elif 0 < kk <= 13:
        out = digits[:kk] + "." + digits[kk:]
    elif -6 < kk <= 0:
        out = "0." + "0" * (-kk) + digits
    elif len(digits) == 1:
        out = f"{digits}e{kk - 1}"
    else:
        out = f"{digits[0]}.{digits[1:]}e{kk - 1}"
    return sign + out


def test_the_score_writer_is_ryus_layout():
    cases = {0.0: "0.0", 1.0: "1.0", 0.5: "0.5", 123.25: "123.25", 1e-6: "0.000001", 1e-7: "1e-7",
             1.5e-7: "1.5e-7", 1e13: "1e13", 2.5e12: "2500000000000.0", 0.1: "0.1", -0.25: "-0.25"}  # fmt: skip
    for x, want in cases.items():
        assert ryu_f32(x) == want, x


def field(s):
    return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n\r') else s


def csv_bytes(rows, explain):
    names = HEADER + (["reason"] if explain else [])
    lines = [",".join(names)]
    for r in rows:
        vals = [field(r["customer_id"]), str(r["rank"]), field(r["item_id"]), ryu_f32(r["score"]), field(r["source"])]
        if explain:
            vals.append(field(r["reason"]))
        lines.append(",".join(vals))
    return ("\n".join(lines) + "\n").encode()


def in_cli_order(rows, cli_csv):
    """Rows sorted as the CLI writes them: customers in the order of their first row in its
    output, then rank."""
    order = {}
    for rec in csv.DictReader(io.StringIO(cli_csv.decode())):
        order.setdefault(rec["customer_id"], len(order))
    return sorted(rows, key=lambda r: (order[r["customer_id"]], r["rank"]))


# ---- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spark():
    # The workers run this interpreter (the venv's), not whichever python3 is first on PATH.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    s = (
        SparkSession.builder.master("local[2]")
        .appName("cobuy-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    yield s
    s.stop()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """item-kNN fitted by the CLI, its recommendations (plain and explained) and the customers in
    the CLI's order."""
    d = tmp_path_factory.mktemp("spark")
    model = d / "retail-spark.cobuy"
    cli("fit", "--purchases", DATA, *flags(COLS), "--algorithm", "item-knn", "--model", model)
    cli("recommend", "--model", model, "--out", d / "recs.csv")
    cli("recommend", "--model", model, "--out", d / "explained.csv", "--explain")
    recs = (d / "recs.csv").read_bytes()
    ids = list(dict.fromkeys(r["customer_id"] for r in csv.DictReader(io.StringIO(recs.decode()))))
    return d, model, recs, ids


def frame(spark, ids, partitions, column="customer_id", dtype="string"):
    shuffled = list(ids)
    random.Random(partitions).shuffle(shuffled)  # partitions hold customers out of the CLI's order
    rdd = spark.sparkContext.parallelize([(i,) for i in shuffled], partitions)
    return spark.createDataFrame(rdd, f"{column} {dtype}")


# ---- the scoring path -------------------------------------------------------------------


@pytest.mark.parametrize("partitions", [1, 2, 4, 7])
def test_the_union_of_the_partitions_is_the_cli_output(spark, fitted, partitions):
    _, model, recs, ids = fitted
    out = cspark.recommendations(frame(spark, ids, partitions), str(model))
    assert out.df.rdd.getNumPartitions() == partitions
    rows = [r.asDict() for r in out.df.collect()]
    assert csv_bytes(in_cli_order(rows, recs), False) == recs
    c = out.counts
    assert (c.scored, c.unknown, c.nulls) == (len(ids), 0, 0)
    # Loaded once per Python worker: no worker loaded it twice (a worker that kept it from an
    # earlier test loads it no more).
    assert c.loads == len(c.workers) <= partitions


def test_explained_rows_are_the_cli_bytes(spark, fitted):
    d, model, _, ids = fitted
    explained = (d / "explained.csv").read_bytes()
    out = cspark.recommendations(frame(spark, ids, 3), str(model), explain=True)
    assert out.df.columns == HEADER + ["reason"]
    rows = [r.asDict() for r in out.df.collect()]
    assert csv_bytes(in_cli_order(rows, explained), True) == explained


def test_the_table_is_the_packages_table(spark, fitted):
    """Same columns, types and values as cobuy.Recommender.recommendations for these customers."""
    _, model, _, ids = fitted
    some = ids[::50]
    df = cspark.recommendations(frame(spark, some, 2), str(model)).df
    got = df.toArrow() if hasattr(df, "toArrow") else pa.Table.from_pandas(df.toPandas(), preserve_index=False)
    want = cobuy.load(model).recommendations(some)
    assert got.schema.equals(want.schema), (got.schema, want.schema)
    key = [("customer_id", "ascending"), ("rank", "ascending")]
    assert got.sort_by(key).to_pylist() == want.sort_by(key).to_pylist()


def test_integer_ids_read_as_their_text(spark, fitted):
    """Online Retail's customer ids are numbers: a bigint column scores as the same ids in text."""
    _, model, recs, ids = fitted
    assert all(i.isdigit() for i in ids)
    out = cspark.recommendations(frame(spark, [int(i) for i in ids], 2, "CustomerID", "bigint"), str(model))
    rows = [r.asDict() for r in out.df.collect()]
    assert csv_bytes(in_cli_order(rows, recs), False) == recs


def test_unknown_ids_are_skipped_and_counted_like_the_cli(spark, fitted):
    d, model, _, ids = fitted
    listed = ids[:40] + ["nobody-2", "nobody-1"] + ids[40:80] + ["nobody-3", "nobody-0"]
    (d / "listed.txt").write_text("\n".join(listed) + "\n")
    r = subprocess.run([BIN, "recommend", "--model", model, "--out", d / "listed.csv", "--customers",
                        d / "listed.txt"], capture_output=True, text=True, check=True)  # fmt: skip
    assert "4 of its 84 customer ids are not in the model and skipped" in r.stderr, r.stderr
    want = (d / "listed.csv").read_bytes()
    out = cspark.recommendations(frame(spark, listed + [None], 3), str(model))
    rows = [r.asDict() for r in out.df.collect()]
    assert csv_bytes(in_cli_order(rows, want), False) == want
    c = out.counts
    assert (c.scored, c.unknown, c.nulls) == (80, 4, 1)
    assert c.first_unknown == ("nobody-0", "nobody-1", "nobody-2")
    assert out.report().startswith(
        'scored 80 of 85 customer ids; 4 are not in the model and skipped: "nobody-0", "nobody-1", "nobody-2", ...; '
        "1 null id skipped"
    ), out.report()


def test_unknown_ids_can_fail_the_job(spark, fitted):
    _, model, _, ids = fitted
    out = cspark.recommendations(frame(spark, ids[:10] + ["nobody"], 2), str(model), unknown="error")
    with pytest.raises(Exception, match='customer "nobody" is not in the model'):
        out.df.collect()


# ---- bad input --------------------------------------------------------------------------


def test_bad_input_is_a_clear_error(spark, fitted, tmp_path):
    d, model, _, ids = fitted
    df = frame(spark, ids[:5], 1)
    with pytest.raises(cobuy.CobuyError, match=r"has no column 'customer' \(its columns: customer_id, x\)"):
        cspark.recommendations(df.withColumn("x", df.customer_id), str(model), customer_col="customer")
    with pytest.raises(cobuy.CobuyError, match=r"has no column 'customer_id' \(its columns: a, b\)"):
        cspark.recommendations(df.selectExpr("customer_id as a", "customer_id as b"), str(model))
    with pytest.raises(cobuy.CobuyError, match="'x' holds double: customer ids must be strings or integers"):
        cspark.recommendations(df.selectExpr("cast(1.5 as double) as x"), str(model))
    missing = tmp_path / "missing.cobuy"
    assert cli_error("recommend", "--model", missing, "--out", tmp_path / "o.csv").startswith(
        f"{missing}: no such model file"
    )
    with pytest.raises(cobuy.CobuyError, match=f"{re.escape(str(missing))}: no such model file; fit one first"):
        cspark.recommendations(df, str(missing))
    for bad in [dict(top=0), dict(unknown="drop"), dict(threads=0)]:
        with pytest.raises(cobuy.CobuyError):
            cspark.recommendations(df, str(model), **bad)


def test_a_damaged_model_fails_the_job_with_the_clis_message(spark, fitted, tmp_path):
    _, model, _, ids = fitted
    damaged = tmp_path / "damaged.cobuy"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    message = cli_error("recommend", "--model", damaged, "--out", tmp_path / "o.csv")
    assert message.startswith(f"{damaged}: ")
    out = cspark.recommendations(frame(spark, ids[:5], 1), str(damaged))
    with pytest.raises(Exception, match=re.escape(message[len(f"{damaged}: "):])):
        out.df.collect()


def test_a_second_file_of_the_same_name_is_refused(spark, fitted, tmp_path):
    """Spark places shipped files by name and ships a path once: scoring with another file of
    that name, or with the file rewritten, would score with the first copy."""
    _, model, _, ids = fitted
    df = frame(spark, ids[:5], 1)
    first = tmp_path / "a" / "twice.cobuy"
    other = tmp_path / "b" / "twice.cobuy"
    for p in (first, other):
        p.parent.mkdir()
        p.write_bytes(model.read_bytes())
    cspark.recommendations(df, str(first)).df.collect()
    with pytest.raises(cobuy.CobuyError, match="shipped to this Spark application already"):
        cspark.recommendations(df, str(other))
    first.write_bytes(model.read_bytes() + b"\0")
    with pytest.raises(cobuy.CobuyError, match="changed after it was shipped"):
        cspark.recommendations(df, str(first))


# ---- the examples -----------------------------------------------------------------------


def load_example(name):
    spec = importlib.util.spec_from_file_location(name.replace(".py", ""), EXAMPLES / name)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_job_script_scores_a_parquet_of_customers(spark, fitted):
    d, model, recs, ids = fitted
    pq.write_table(pa.table({"customer_id": ids}), d / "customers.parquet")
    job = load_example("spark_recommend.py")
    report = job.run(spark, str(d / "customers.parquet"), str(model), str(d / "spark-out"), top=10, partitions=4)
    assert report.startswith(f"scored {len(ids)} of {len(ids)} customer ids")
    rows = pq.read_table(d / "spark-out").to_pylist()
    assert csv_bytes(in_cli_order(rows, recs), False) == recs


def test_the_pipe_example_gives_the_cli_rows(spark, fitted):
    d, model, recs, _ = fitted
    pipe = load_example("spark_pipe.py")
    for shards in (1, 3):
        lines = pipe.shard_lines(spark.sparkContext, BIN, str(model), shards, ["--top", "10"]).collect()
        assert lines[0] == ",".join(HEADER)
        body = sorted(lines[1:])
        assert body == sorted(recs.decode().splitlines()[1:]), shards


@pytest.mark.parametrize("script", ["slurm-recommend.sh", "k8s-indexed-job.yaml"])
def test_the_shard_scripts_union_is_the_unsharded_output(fitted, tmp_path, script):
    """The shell line of the Slurm array script and of the Kubernetes Indexed Job, run for each
    index with the scheduler's variable set, writes shards whose union is the CLI's rows."""
    _, model, recs, _ = fitted
    text = (EXAMPLES / script).read_text()
    line = re.search(r"^\s*(cobuy .*--shard .*)$", text, re.M).group(1)
    var = "SLURM_ARRAY_TASK_ID" if script.endswith(".sh") else "JOB_COMPLETION_INDEX"
    n = 3
    rows = []
    for index in range(n):
        env = dict(os.environ, **{var: str(index)}, SHARDS=str(n), MODEL=str(model), OUT=str(tmp_path))
        script_line = line.replace("cobuy ", f"{BIN} --quiet ", 1)
        subprocess.run(["bash", "-c", script_line], env=env, check=True)
        out = (tmp_path / f"recommendations-{index + 1}-of-{n}.csv").read_text().splitlines()
        assert out[0] == ",".join(HEADER)
        rows += out[1:]
    assert sorted(rows) == sorted(recs.decode().splitlines()[1:])
