"""The Spark fit (cobuy._spark_fit) against ``cobuy fit --sum-block``: the same model bytes
for 1, 2, 4 and 7 partitions, in Spark's local mode. Skipped when pyspark (or Java) is
missing."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pyspark = pytest.importorskip("pyspark")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs Java", allow_module_level=True)

from cobuy import CobuyError  # noqa: E402
from cobuy._spark_fit import fit  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("COBUY_BIN", str(ROOT / "target" / "release" / "cobuy"))
DATA = "datasets/online-retail/online_retail.csv.gz"
COLS = dict(customer_col="CustomerID", item_col="StockCode", quantity_col="Quantity")
SUM_BLOCK = 500  # 4,372 customers: 9 blocks


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    # Workers import cobuy and pyarrow from this environment.
    old = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    s = (
        SparkSession.builder.master("local[2]")
        .appName("cobuy-spark-fit-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    yield s
    s.stop()
    if old is None:
        del os.environ["PYSPARK_PYTHON"]
    else:
        os.environ["PYSPARK_PYTHON"] = old


def cli_fit(tmp_path, *extra):
    out = tmp_path / "cli.cobuy"
    flags = [f for k, v in COLS.items() for f in ("--" + k.replace("_", "-"), v)]
    r = subprocess.run(
        [BIN, "--quiet", "fit", "--purchases", DATA, *flags, "--algorithm", "item-knn", "--model", str(out), *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    return out.read_bytes()


def test_the_spark_fit_writes_the_clis_bytes_for_any_partition_count(spark, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the purchases' path is recorded as given, as the CLI records it
    want = cli_fit(tmp_path, "--sum-block", str(SUM_BLOCK))
    default = cli_fit(tmp_path)
    assert want != default, "several blocks round differently from the single sum"
    for partitions, item_blocks in [(1, 1), (2, 3), (4, 4), (7, 5)]:
        out = tmp_path / f"spark{partitions}.cobuy"
        fit(spark, DATA, out, sum_block=SUM_BLOCK, partitions=partitions, item_blocks=item_blocks, **COLS)
        assert out.read_bytes() == want, f"{partitions} partitions"
    # One block holding every customer: the default kernel's bytes.
    out = tmp_path / "one.cobuy"
    fit(spark, DATA, out, sum_block=10**9, partitions=2, **COLS)
    assert out.read_bytes() == default


def test_other_measures_and_refusals(spark, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    want = cli_fit(tmp_path, "--sum-block", "1000", "--similarity", "jaccard")
    out = tmp_path / "jaccard.cobuy"
    fit(spark, DATA, out, sum_block=1000, partitions=3, similarity={"measure": "jaccard"}, **COLS)
    assert out.read_bytes() == want
    with pytest.raises(CobuyError, match="rp3beta"):
        fit(spark, DATA, out, sum_block=1000, similarity={"measure": "rp3beta", "alpha": 1.0, "beta": 0.5}, **COLS)
    with pytest.raises(CobuyError, match="sum_block"):
        fit(spark, DATA, out, sum_block=0, **COLS)
