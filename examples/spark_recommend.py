"""A PySpark job: scores a Parquet of customer ids with a fitted cobuy model, writes Parquet.

    pip install "./python[spark]"      # the cobuy wheel on the driver and the executors
    cobuy fit --purchases purchases.parquet --model model.cobuy
    spark-submit examples/spark_recommend.py customers.parquet model.cobuy recommendations.parquet

The customers file needs one id column (``customer_id``, or name it with --customer-col); ids the
model does not know are skipped and counted in the line printed at the end. The rows are
``cobuy recommend``'s (customer_id, rank, item_id, score, source), computed by mapInArrow in the
Python workers with the model shipped once per executor.
"""

import argparse
import sys

from cobuy.spark import recommendations


def run(spark, customers, model, out, *, top=10, partitions=None, customer_col=None, explain=False):
    """Scores the customers in the Parquet ``customers`` and writes the rows to ``out`` (Parquet);
    returns the scoring report."""
    df = spark.read.parquet(customers)
    if partitions:
        df = df.repartition(partitions)
    recs = recommendations(df, model, customer_col=customer_col, top=top, explain=explain)
    # Spark's committer writes to a temporary folder and publishes on success.
    recs.df.write.mode("overwrite").parquet(out)
    return recs.report()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("customers", help="Parquet file or folder of customer ids")
    ap.add_argument("model", help="model file written by cobuy fit (local path or hdfs://, s3a://...)")
    ap.add_argument("out", help="output Parquet folder")
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--customer-col")
    ap.add_argument("--explain", action="store_true", help="add the reason column")
    ap.add_argument("--partitions", type=int, help="repartition the customers first")
    a = ap.parse_args(argv)

    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("cobuy-recommend").getOrCreate()
    try:
        report = run(spark, a.customers, a.model, a.out, top=a.top, partitions=a.partitions,
                     customer_col=a.customer_col, explain=a.explain)  # fmt: skip
        print(report, file=sys.stderr)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
