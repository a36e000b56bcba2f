"""Scores every customer in Spark without the cobuy wheel: RDD.pipe runs the cobuy binary once
per partition, each on its shard of the customers (`cobuy recommend --shard I/N`, a fixed hash of
the id), and the lines it prints are the rows. Only pyspark is needed on the cluster.

    # the binary and the model land in each executor's working folder, where the pipe runs
    spark-submit --files target/release/cobuy,model.cobuy examples/spark_pipe.py \\
        --cobuy ./cobuy --model model.cobuy --shards 64 --out recommendations-csv

In local mode give the files' own paths (--cobuy target/release/cobuy --model model.cobuy).
The output is a folder of text parts: the header once (first part), then the CSV rows of
`cobuy recommend`; the shards together hold each customer once.
"""

import argparse
import itertools
import os
import shlex

# Reads the shard ("I/N") that the partition holds from stdin and scores it to stdout.
SCRIPT = 'read shard; bin=$1; model=$2; shift 2; exec "$bin" --quiet recommend --model "$model" ' \
         '--shard "$shard" --out /dev/stdout "$@"'  # fmt: skip


def shard_lines(sc, cobuy, model, shards, extra=()):
    """An RDD of the CSV lines of `cobuy recommend` over `shards` shards (one partition each),
    with the header kept once; `extra` are more flags of `cobuy recommend`, such as --top."""
    specs = sc.parallelize([f"{i}/{shards}" for i in range(1, shards + 1)], shards)
    command = shlex.join(["sh", "-c", SCRIPT, "sh", cobuy, model, *extra])
    lines = specs.pipe(command, env={"PATH": os.defpath}, checkCode=True)
    # Each shard starts with the header: keep the first partition's.
    return lines.mapPartitionsWithIndex(lambda i, it: it if i == 0 else itertools.islice(it, 1, None))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cobuy", required=True, help="the cobuy binary as the executors see it")
    ap.add_argument("--model", required=True, help="the model file as the executors see it")
    ap.add_argument("--shards", type=int, default=8, help="shards, one Spark task each")
    ap.add_argument("--out", required=True, help="output folder of text parts")
    ap.add_argument("extra", nargs="*", help="more flags of cobuy recommend, after --")
    a = ap.parse_args(argv)

    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("cobuy-recommend-pipe").getOrCreate()
    try:
        shard_lines(spark.sparkContext, a.cobuy, a.model, a.shards, a.extra).saveAsTextFile(a.out)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
