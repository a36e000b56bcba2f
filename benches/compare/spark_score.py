#!/usr/bin/env python3
"""Scoring in Spark local[2]: cobuy.spark (mapInArrow) vs Spark MLlib ALS recommendForAllUsers(10),
and the Spark path's overhead over the single-process `cobuy recommend`, on data from `cobuy generate`.

Run by benches/compare/run_spark.sh inside its own venv (the cobuy wheel with pyspark). Default
data: 1M customers x 100K items x 20M purchase rows (seed 1, the scale set of run_scale.sh),
under target/spark-bench/.

Prepared once (not timed, reused while the parameters match): the purchases CSV (`cobuy
generate`), the cobuy model (`cobuy fit --algorithm item-knn --weighting count --neighbors 50`, as
run_scale.sh), a Parquet of the customer ids (8 files), and an ALS model fitted in Spark on the
quantities summed per (customer, item) (implicit feedback, rank --rank, --iters iterations,
regParam 0.01; ids c<n> / i<n> read as the integers n).

Timed, `--rounds` rounds interleaved (the order reverses each round), each in a fresh process:
  als    a Spark app loads the ALS model, then the timed part: `recommendForAllUsers(10)` (or, with
         --als-users N, `recommendForUserSubset` of the users 0..N-1) written as Parquet;
  spark  a Spark app, then the timed part: `cobuy.spark.recommendations` of the customers Parquet
         (model shipped, loaded by each Python worker, scored by mapInArrow) written as Parquet;
  cli    `cobuy --threads 2 recommend --model M --out recs.csv`, the whole process.
Wall time is the timed part's; CPU time is user + system of the whole process tree over it (the
JVM, the Python workers and the driver, from /proc), so that other jobs on a shared machine,
which stretch wall time, do not count.

`--worker prep|als|spark` is one Spark app (started by the orchestrator); it prints one JSON line.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, loadavg, machine, run_child  # noqa: E402


def tree_cpu(root=None):
    """CPU seconds (user + system, with reaped children's) of `root` and its live descendants."""
    root = root or os.getpid()
    tick = os.sysconf("SC_CLK_TCK")
    parent, cpu = {}, {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(pid)] = int(fields[1])
        cpu[int(pid)] = sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
    total, todo = 0.0, [root]
    while todo:
        p = todo.pop()
        total += cpu.get(p, 0.0)
        todo += [c for c, pp in parent.items() if pp == p]
    return total


def session(a, name):
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers run the venv's interpreter
    return (
        SparkSession.builder.master("local[2]")
        .appName(name)
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", a.driver_memory)
        .config("spark.local.dir", os.path.join(a.work, "spark-tmp"))
        .config("spark.sql.shuffle.partitions", "16")
        .getOrCreate()
    )


def emit(d):
    print(json.dumps(d), flush=True)


def worker_prep(a):
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    spark = session(a, "prep")
    schema = "customer_id string, item_id string, basket_id string, quantity double, price double, timestamp string"
    rows = spark.read.csv(a.data, header=True, schema=schema)
    t0 = time.perf_counter()
    rows.select("customer_id").distinct().repartition(8).write.mode("overwrite").parquet(a.customers)
    t1 = time.perf_counter()
    ratings = rows.groupBy(
        F.expr("cast(substring(customer_id, 2) as int)").alias("user"),
        F.expr("cast(substring(item_id, 2) as int)").alias("item"),
    ).agg(F.sum("quantity").cast("float").alias("rating"))
    als = ALS(rank=a.rank, maxIter=a.iters, regParam=0.01, implicitPrefs=True, alpha=1.0, userCol="user",
              itemCol="item", ratingCol="rating", seed=1)  # fmt: skip
    model = als.fit(ratings)
    model.write().overwrite().save(a.als_model)
    t2 = time.perf_counter()
    emit({"customers_s": t1 - t0, "als_fit_s": t2 - t1})
    spark.stop()


def worker_als(a):
    from pyspark.ml.recommendation import ALSModel

    spark = session(a, "als")
    model = ALSModel.load(a.als_model)
    users = model.userFactors.count()
    c0, t0 = tree_cpu(), time.perf_counter()
    if a.als_users:
        subset = spark.range(a.als_users).selectExpr("cast(id as int) as user")
        recs = model.recommendForUserSubset(subset, 10)
    else:
        recs = model.recommendForAllUsers(10)
    recs.write.mode("overwrite").parquet(os.path.join(a.work, "als-recs.parquet"))
    t1, c1 = time.perf_counter(), tree_cpu()
    scored = spark.read.parquet(os.path.join(a.work, "als-recs.parquet")).count()
    emit({"wall": t1 - t0, "cpu": c1 - c0, "customers": scored, "model_users": users})
    spark.stop()


def worker_spark(a):
    from cobuy.spark import recommendations

    spark = session(a, "cobuy")
    customers = spark.read.parquet(a.customers)
    partitions = customers.rdd.getNumPartitions()
    c0, t0 = tree_cpu(), time.perf_counter()
    recs = recommendations(customers, a.model, top=10)
    recs.df.write.mode("overwrite").parquet(os.path.join(a.work, "cobuy-recs.parquet"))
    t1, c1 = time.perf_counter(), tree_cpu()
    c = recs.counts
    emit({"wall": t1 - t0, "cpu": c1 - c0, "customers": c.scored, "unknown": c.unknown, "loads": c.loads,
          "partitions": partitions, "report": recs.report()})  # fmt: skip
    spark.stop()


# ---------------------------------------------------------------- orchestrator


def spark_child(a, worker):
    argv = [sys.executable, os.path.abspath(__file__), "--worker", worker, "--work", a.work, "--data", a.data,
            "--model", a.model, "--customers", a.customers, "--als-model", a.als_model, "--rank", str(a.rank),
            "--iters", str(a.iters), "--als-users", str(a.als_users), "--driver-memory", a.driver_memory]  # fmt: skip
    r = run_child(argv)
    d = json.loads(r["stdout"].strip().splitlines()[-1])
    d["process_wall"], d["load_before"] = r["wall"], r["load_before"]
    return d


def cli_child(a):
    out = os.path.join(a.work, "cli-recs.csv")
    r = run_child([a.cobuy, "--threads", "2", "recommend", "--model", a.model, "--top", "10", "--out", out])
    return {"wall": r["wall"], "cpu": r["cpu"], "customers": int(open(a.customers_txt).read()),
            "load_before": r["load_before"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", choices=["prep", "als", "spark"])
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "spark-bench"))
    ap.add_argument("--cobuy", default=os.path.join(ROOT, "target", "release", "cobuy"))
    ap.add_argument("--customers-n", dest="n_customers", type=int, default=1_000_000)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--rows", type=int, default=20_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rank", type=int, default=10)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--als-users", type=int, default=0, help="time recommendForUserSubset of users 0..N-1 (0: all)")
    ap.add_argument("--driver-memory", default="6g")
    ap.add_argument("--data")
    ap.add_argument("--model")
    ap.add_argument("--customers")
    ap.add_argument("--als-model")
    ap.add_argument("--json")
    a = ap.parse_args()
    a.work = os.path.abspath(a.work)
    os.makedirs(a.work, exist_ok=True)
    a.data = a.data or os.path.join(a.work, "p.csv")
    a.model = a.model or os.path.join(a.work, "cobuy.model")
    a.customers = a.customers or os.path.join(a.work, "customers.parquet")
    a.als_model = a.als_model or os.path.join(a.work, f"als-r{a.rank}-i{a.iters}")
    a.customers_txt = os.path.join(a.work, "customers.count")
    if a.worker:
        return {"prep": worker_prep, "als": worker_als, "spark": worker_spark}[a.worker](a)

    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    env = {"date_start": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
           "load_start": " / ".join(f"{v:.2f}" for v in loadavg())}  # fmt: skip
    stamp = f"{a.n_customers} {a.items} {a.rows} 1\n"
    stamp_path = a.data + ".params"
    if not (os.path.exists(a.data) and os.path.exists(stamp_path) and open(stamp_path).read() == stamp):
        log("generating the purchases")
        run_child([a.cobuy, "--threads", "2", "generate", "--customers", str(a.n_customers), "--items", str(a.items),
                   "--rows", str(a.rows), "--seed", "1", "--out", a.data])  # fmt: skip
        open(stamp_path, "w").write(stamp)
        for p in (a.model, a.customers_txt):
            if os.path.exists(p):
                os.remove(p)
    if not os.path.exists(a.model):
        log("fitting the cobuy model")
        run_child([a.cobuy, "--threads", "2", "fit", "--purchases", a.data, "--model", a.model, "--customer-col",
                   "customer_id", "--item-col", "item_id", "--quantity-col", "quantity", "--algorithm", "item-knn",
                   "--weighting", "count", "--neighbors", "50"])  # fmt: skip
    if not (os.path.exists(os.path.join(a.als_model, "metadata")) and os.path.exists(a.customers)):
        log("preparing the customers Parquet and fitting ALS in Spark")
        env["prep"] = spark_child(a, "prep")
        log(f"prep: {env['prep']}")
    if not os.path.exists(a.customers_txt):
        shown = subprocess.run([a.cobuy, "inspect", a.model], capture_output=True, text=True, check=True).stdout
        n = int(re.search(r"^customers\s+(\d+)", shown, re.M).group(1))
        open(a.customers_txt, "w").write(f"{n}\n")  # the model's customers, whom the CLI scores

    runs = {"als": [], "spark": [], "cli": []}
    tasks = {"als": lambda: spark_child(a, "als"), "spark": lambda: spark_child(a, "spark"), "cli": lambda: cli_child(a)}
    for r in range(a.rounds):
        order = ["als", "spark", "cli"] if r % 2 == 0 else ["cli", "spark", "als"]
        for name in order:
            d = tasks[name]()
            d["round"] = r + 1
            runs[name].append(d)
            log(f"round {r + 1} {name}: {json.dumps({k: v for k, v in d.items() if k != 'report'})}")
    env["date_end"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    env["load_end"] = " / ".join(f"{v:.2f}" for v in loadavg())
    env["machine"] = machine(a.cobuy, ["pyspark"])
    if a.json:
        json.dump({"args": vars(a), "env": env, "runs": runs}, open(a.json, "w"), indent=1)
    print(report(a, env, runs))


def report(a, env, runs):
    m = env["machine"]
    o = [f"Spark scoring, {env['date_start']} to {env['date_end']}, load {env['load_start']} -> {env['load_end']}; "
         f"{m['cpu']}, {m['cpus']} CPUs, {m['mem_gib']:.0f} GiB; commit {m['commit']}{' (dirty)' if m['dirty'] else ''}; "
         f"pyspark {m['pyspark']}; {m['cobuy']}", "",
         "| round | ALS customers | ALS wall s | ALS CPU s | cobuy.spark customers | wall s | CPU s | CLI wall s | CLI CPU s "
         "| speed-up, wall (per customer) | speed-up, CPU | Spark path / CLI, wall | Spark path / CLI, CPU |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    ok_wall = ok_cpu = True
    for als, sp, cl in zip(runs["als"], runs["spark"], runs["cli"]):
        up_wall = (sp["customers"] / sp["wall"]) / (als["customers"] / als["wall"])
        up_cpu = (sp["customers"] / sp["cpu"]) / (als["customers"] / als["cpu"])
        ok_wall &= up_wall >= 10
        ok_cpu &= up_cpu >= 10
        o.append(f"| {als['round']} | {als['customers']:,} | {als['wall']:.1f} | {als['cpu']:.1f} | {sp['customers']:,} "
                 f"| {sp['wall']:.1f} | {sp['cpu']:.1f} | {cl['wall']:.1f} | {cl['cpu']:.1f} | {up_wall:.1f}x | {up_cpu:.1f}x "
                 f"| {sp['wall'] / cl['wall']:.2f} | {sp['cpu'] / cl['cpu']:.2f} |")  # fmt: skip
    o.append("")
    o.append(f"Bar (>= 10x ALS's customers per second in every round): wall {'met' if ok_wall else 'NOT met'}, "
             f"CPU {'met' if ok_cpu else 'NOT met'}.")  # fmt: skip
    sp = runs["spark"][0]
    o.append(f"cobuy.spark: {sp['partitions']} input partitions; {sp['report']}.")
    if "prep" in env:
        o.append(f"Prep (not timed): customers Parquet {env['prep']['customers_s']:.0f} s, "
                 f"ALS fit rank {a.rank}, {a.iters} iterations {env['prep']['als_fit_s']:.0f} s.")  # fmt: skip
    med = lambda k, f: statistics.median(r[f] for r in runs[k])  # noqa: E731
    o.append(f"Medians: ALS {med('als', 'wall'):.1f} s wall, cobuy.spark {med('spark', 'wall'):.1f} s, "
             f"CLI {med('cli', 'wall'):.1f} s.")  # fmt: skip
    return "\n".join(o)


if __name__ == "__main__":
    main()
