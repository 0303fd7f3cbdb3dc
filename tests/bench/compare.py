#!/usr/bin/env python3
"""The e-commerce pipeline's bronze, silver and gold layers on Medallion (embedded cluster),
PySpark `local[2]` and DuckDB (2 threads): the same landing files, the same work, one machine.

Each engine runs in its own process (its peak RSS is that process tree's). The silver and gold
queries are read from `pipelines/ecommerce/pipeline.toml` and ported to each dialect by a few
textual rules (`Dialect`): Medallion's UDFs become built-in expressions, `cdc` blocks become
"latest row per key" (SCD2 for customers: every version, the last one current), `drop`
expectations split the rows into the table and its quarantine. Outputs are Parquet files
(Medallion writes Delta). `quality_gate` (Medallion's own bookkeeping) and the ml layer are
left out. At the end the gold tables of all engines are compared: row counts and a sum per
table must agree.

    python3 tests/bench/compare.py --bin <medallion> [--scale 0.1] [--work DIR]
                                   [--engines medallion,spark,duckdb]
"""

import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPEC = ROOT / "pipelines/ecommerce/pipeline.toml"
LEFT_OUT = {"quality_gate"}

# What the gold tables of the engines must agree on: (table, SQL aggregate over its rows).
AGREEMENT = {
    "dim_date": "count(*)",
    "dim_customer": "count(*)",
    "dim_product": "count(*)",
    "fact_sales": "sum(net_amount)",
    "agg_daily_sales": "sum(revenue)",
    "order_totals": "sum(revenue)",
    "customer_value": "sum(revenue)",
    "rfm": "sum(monetary)",
    "sessions": "sum(purchased)",
    "funnel_daily": "sum(view_sessions)",
    "product_daily_sales": "sum(orders)",
    "product_performance": "sum(views)",
    "category_performance": "sum(revenue)",
    "churn_features": "sum(CAST(churned AS INT))",
    "payment_anomalies": "sum(flags)",
    "customer_360": "count(*)",
}


def spec_tables():
    with open(SPEC, "rb") as f:
        spec = tomllib.load(f)
    return [t for t in spec["table"] if t["layer"] in ("bronze", "silver", "gold")
            and t["name"] not in LEFT_OUT]


class Dialect:
    """Medallion's SQL (DataFusion plus its UDFs) rewritten for another engine."""

    TEXT = "VARCHAR"

    def port(self, sql):
        sql = sql.replace("${as_of}", "")
        for name, rewrite in [("normalize_id", self.normalize_id), ("email_hash", self.email_hash),
                              ("mask_phone", self.mask_phone), ("surrogate_key", self.surrogate_key),
                              ("json_get", lambda args: self.json_get(*split_args(args)))]:
            sql = replace_calls(sql, name, rewrite)
        return self.port_functions(sql)

    def normalize_id(self, x):
        whole = self.matches(f"trim({x})", "^-?[0-9]+([.]0+)?$")
        return f"TRY_CAST(CASE WHEN {whole} THEN split_part(trim({x}), '.', 1) END AS BIGINT)"

    def email_hash(self, x):
        return self.sha256(f"NULLIF(lower(trim({x})), '')")

    def mask_phone(self, x):
        d = self.digits(x)
        return (f"CASE WHEN length({d}) = 0 THEN NULL WHEN length({d}) <= 4 THEN repeat('*', length({d})) "
                f"ELSE repeat('*', length({d}) - 4) || right({d}, 4) END")

    def surrogate_key(self, x):
        return self.first_63_bits(self.sha256(f"CAST({x} AS {self.TEXT})"))

    # The built-ins the rules above are written with; each dialect spells them its way.

    def matches(self, x, pattern):
        return f"regexp_matches({x}, '{pattern}')"

    def digits(self, x):
        return f"regexp_replace({x}, '[^0-9]', '', 'g')"

    def sha256(self, x):
        return f"sha256({x})"

    def first_63_bits(self, hex_digest):
        return f"CAST(CAST(('0x' || substr({hex_digest}, 1, 16)) AS UBIGINT) >> 1 AS BIGINT)"

    def json_get(self, x, key):
        return f"json_extract_string({x}, '$.' || {key})"

    def port_functions(self, sql):
        # fact_sales rounds with an integer division, which DuckDB writes `//`.
        sql = sql.replace("+ 50) / 100", "+ 50) // 100")
        return sql.replace("to_unixtime(", "epoch(")


class SparkDialect(Dialect):
    TEXT = "STRING"

    def matches(self, x, pattern):
        return f"{x} RLIKE '{pattern}'"

    def digits(self, x):
        return f"regexp_replace({x}, '[^0-9]', '')"

    def sha256(self, x):
        return f"sha2({x}, 256)"

    def first_63_bits(self, hex_digest):
        digits = f"conv(substr({hex_digest}, 1, 16), 16, 10)"
        return f"CAST(floor(CAST({digits} AS DECIMAL(20, 0)) / 2) AS BIGINT)"

    def json_get(self, x, key):
        return f"get_json_object({x}, '$.' || {key})"

    def port_functions(self, sql):
        sql = sql.replace("+ 50) / 100", "+ 50) div 100")
        sql = sql.replace("to_unixtime(", "unix_timestamp(")
        sql = sql.replace("date_part('dow', date)", "(dayofweek(date) - 1)")
        # A generator cannot sit inside a CAST in Spark; a sequence of dates is already dates.
        sql = re.sub(r"CAST\(unnest\(generate_series\((\w+), (\w+), INTERVAL '1 day'\)\) AS DATE\)",
                     r"explode(sequence(\1, \2, INTERVAL 1 DAY))", sql)
        return sql


def replace_calls(sql, name, rewrite):
    """`sql` with every call `name(args)` replaced by `rewrite(args)` (args as written)."""
    out, i = [], 0
    pattern = re.compile(rf"\b{name}\(")
    while (m := pattern.search(sql, i)) is not None:
        depth, j = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(sql[j], 0)
            j += 1
        out += [sql[i:m.start()], rewrite(sql[m.end():j - 1])]
        i = j
    return "".join(out) + sql[i:]


def split_args(args):
    """Top-level comma-separated arguments."""
    parts, depth, start = [], 0, 0
    for k, ch in enumerate(args):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(args[start:k].strip())
            start = k + 1
    return parts + [args[start:].strip()]


def cdc_sql(table, dialect):
    """The latest change per key (or every version, for SCD2) of a `cdc` table, with the
    failures of its `drop` rules flagged in `__dropped`."""
    cdc = table["cdc"]
    source = cdc["from"]
    if "sql" in cdc:
        rows = cdc["sql"].replace("${changes}", source)
        rows = f"SELECT *, {cdc['sequence_by']} AS __seq FROM ({dialect.port(rows)}) AS c"
    else:
        select = ", ".join(dialect.port(s) for s in cdc["select"])
        seq = dialect.port(cdc["sequence_by"])
        rows = f"SELECT {select}, {seq} AS __seq, _ingested_at AS __arrived FROM {source}"
        rows = f"SELECT * FROM ({rows}) AS c"
    keys = cdc["keys"]
    rules = [f"({k} IS NOT NULL)" for k in keys] + ["(__seq IS NOT NULL)"]
    rules += [f"({e['sql']})" for e in table.get("expect", []) if e.get("action") == "drop"]
    checked = f"SELECT *, NOT coalesce({' AND '.join(rules)}, false) AS __dropped FROM ({rows}) AS r"
    order = "__seq DESC" + (", __arrived DESC" if "sql" not in cdc else "")
    over = f"PARTITION BY {', '.join(keys)} ORDER BY {order}"
    if cdc.get("scd") == 2:
        return (f"SELECT *, __seq AS valid_from, "
                f"lead(__seq) OVER (PARTITION BY {', '.join(keys)} ORDER BY __seq) AS valid_to, "
                f"lead(__seq) OVER (PARTITION BY {', '.join(keys)} ORDER BY __seq) IS NULL AS is_current "
                f"FROM (SELECT *, row_number() OVER (PARTITION BY {', '.join(keys)}, __seq "
                f"ORDER BY __arrived DESC) AS __n FROM ({checked}) AS k WHERE NOT __dropped) AS v "
                f"WHERE __n = 1"), checked
    latest = (f"SELECT * FROM (SELECT *, row_number() OVER ({over}) AS __n FROM ({checked}) AS k "
              f"WHERE NOT __dropped) AS v WHERE __n = 1")
    return latest, checked


def sql_table(table, dialect):
    rows = dialect.port(table["sql"])
    rules = [f"({e['sql']})" for e in table.get("expect", []) if e.get("action") == "drop"]
    if not rules:
        return rows, None
    checked = f"SELECT *, NOT coalesce({' AND '.join(rules)}, false) AS __dropped FROM ({rows}) AS r"
    return f"SELECT * FROM ({checked}) AS k WHERE NOT __dropped", checked


def silver_and_gold(dialect):
    """(layer, name, SQL of its rows, SQL of its rows flagged for the quarantine or None)."""
    out = []
    for t in spec_tables():
        if t["layer"] == "bronze":
            continue
        rows, checked = cdc_sql(t, dialect) if "cdc" in t else sql_table(t, dialect)
        out.append((t["layer"], t["name"], rows, checked))
    return out


def bronze_sources():
    return [(t["name"], t["source"]["path"], t["source"]["format"])
            for t in spec_tables() if t["layer"] == "bronze"]


def ndjson_fields(landing, path):
    """The NDJSON source's field names, from its first file's first line."""
    first = sorted(landing.glob(path))[0]
    with open(first) as f:
        return list(json.loads(f.readline()).keys())


# ---------------------------------------------------------------- DuckDB


def run_duckdb(landing, out):
    import duckdb

    con = duckdb.connect(config={"threads": 2})
    times = {}
    start = time.monotonic()
    for name, path, fmt in bronze_sources():
        glob = str(landing / path)
        if fmt == "csv":
            read = f"read_csv('{glob}', all_varchar = true, header = true, filename = true, ignore_errors = true)"
        else:
            fields = ndjson_fields(landing, path)
            columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in fields) + "}"
            read = (f"read_json('{glob}', format = 'newline_delimited', columns = {columns}, "
                    f"filename = true, ignore_errors = true)")
        rows = (f"SELECT * EXCLUDE (filename), filename AS _source_file, now() AS _ingested_at, "
                f"sha256(concat_ws(chr(31), COLUMNS(* EXCLUDE (filename)))) AS _row_hash FROM {read}")
        write_duckdb(con, out, "bronze", name, rows)
    times["bronze"] = time.monotonic() - start
    for layer in ("silver", "gold"):
        start = time.monotonic()
        for lay, name, rows, checked in silver_and_gold(Dialect()):
            if lay != layer:
                continue
            if checked is not None:
                write_duckdb(con, out, layer, f"{name}__quarantine",
                             f"SELECT * FROM ({checked}) AS q WHERE __dropped")
            write_duckdb(con, out, layer, name, rows)
        times[layer] = time.monotonic() - start
    return times


def write_duckdb(con, out, layer, name, rows):
    path = out / layer / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = [c for c in con.sql(f"SELECT * FROM ({rows}) AS t LIMIT 0").columns if not c.startswith("__")]
    columns = ", ".join(f'"{c}"' for c in kept)
    con.execute(f"COPY (SELECT {columns} FROM ({rows}) AS t) TO '{path}' (FORMAT parquet)")
    con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet('{path}')")


# ---------------------------------------------------------------- Spark


def run_spark(landing, out):
    from pyspark.sql import SparkSession, functions as F, types as T

    spark = (SparkSession.builder.master("local[2]").appName("medallion-compare")
             .config("spark.sql.shuffle.partitions", "2")
             .config("spark.sql.ansi.enabled", "false")
             .config("spark.driver.memory", "3g")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.session.timeZone", "UTC")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    times = {}
    start = time.monotonic()
    for name, path, fmt in bronze_sources():
        glob = str(landing / path)
        if fmt == "csv":
            frame = spark.read.option("header", True).option("mode", "DROPMALFORMED").csv(glob)
        else:
            fields = ndjson_fields(landing, path)
            schema = T.StructType([T.StructField(c, T.StringType()) for c in fields])
            frame = spark.read.schema(schema).option("mode", "DROPMALFORMED").json(glob)
        row_hash = F.sha2(F.concat_ws("\x1f", *[F.col(c) for c in frame.columns]), 256)
        frame = (frame.withColumn("_source_file", F.input_file_name())
                 .withColumn("_ingested_at", F.current_timestamp())
                 .withColumn("_row_hash", row_hash))
        write_spark(spark, out, "bronze", name, frame)
    times["bronze"] = time.monotonic() - start
    for layer in ("silver", "gold"):
        start = time.monotonic()
        for lay, name, rows, checked in silver_and_gold(SparkDialect()):
            if lay != layer:
                continue
            if checked is not None:
                quarantined = spark.sql(checked).where("__dropped")
                write_spark(spark, out, layer, f"{name}__quarantine", quarantined)
            write_spark(spark, out, layer, name, spark.sql(rows))
        times[layer] = time.monotonic() - start
    spark.stop()
    return times


def write_spark(spark, out, layer, name, frame):
    path = out / layer / name
    frame = frame.drop(*[c for c in frame.columns if c.startswith("__")])
    frame.write.mode("overwrite").parquet(str(path))
    spark.read.parquet(str(path)).createOrReplaceTempView(name)


# ---------------------------------------------------------------- Medallion


def run_medallion(binary, landing, out):
    times = {}
    gold = [t["name"] for t in spec_tables() if t["layer"] == "gold"]
    for layer in ("bronze", "silver", "gold"):
        select = ["--layer", layer] if layer != "gold" else sum((["--select", g] for g in gold), [])
        start = time.monotonic()
        subprocess.run([binary, "run", "--quiet", "--spec", str(SPEC), "--landing", str(landing),
                        "--lakehouse", str(out), *select], check=True, stdout=subprocess.DEVNULL)
        times[layer] = time.monotonic() - start
    return times


# ---------------------------------------------------------------- comparison


def gold_figures(engine, out):
    import duckdb

    con = duckdb.connect()
    figures = {}
    for table, aggregate in AGREEMENT.items():
        if engine == "medallion":
            import deltalake

            data = deltalake.DeltaTable(str(out / "gold" / table)).to_pyarrow_table()
            con.register("t", data)
            source = "t"
        elif engine == "duckdb":
            source = f"read_parquet('{out / 'gold' / (table + '.parquet')}')"
        else:
            source = f"read_parquet('{out / 'gold' / table}/*.parquet')"
        rows, value = con.sql(f"SELECT count(*), CAST({aggregate} AS DOUBLE) FROM {source}").fetchall()[0]
        figures[table] = (rows, value)
        if engine == "medallion":
            con.unregister("t")
    return figures


def engine_process(args):
    """Runs one engine (in this process) and prints its layer times as JSON."""
    landing, out = pathlib.Path(args.landing), pathlib.Path(args.out)
    if args.engine == "duckdb":
        times = run_duckdb(landing, out)
    elif args.engine == "spark":
        times = run_spark(landing, out)
    else:
        times = run_medallion(args.bin, landing, out)
    print(json.dumps(times))


def tree_rss_kib(root):
    """The summed resident memory of `root` and its descendants (Linux /proc)."""
    children, rss = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/statm") as f:
                pages = int(f.read().split()[1])
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        rss[int(entry)] = pages * os.sysconf("SC_PAGE_SIZE") // 1024
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def measure(engine, args, landing, work):
    out = work / engine
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    command = [sys.executable, __file__, "--engine", engine, "--bin", args.bin,
               "--landing", str(landing), "--out", str(out)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    # The tree's memory, sampled: Spark's JVM is not a process the engine's process waits for.
    peak = 0
    while child.poll() is None:
        peak = max(peak, tree_rss_kib(child.pid))
        time.sleep(0.1)
    if child.returncode != 0:
        sys.exit(f"{engine} failed")
    times = json.loads(child.stdout.read().strip().splitlines()[-1])
    return {"layers": times, "rss_mib": peak / 1024, "out": out}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=str(ROOT / "target/debug/medallion"))
    parser.add_argument("--scale", default="0.1")
    parser.add_argument("--work", default=None)
    parser.add_argument("--engines", default="medallion,spark,duckdb")
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--landing", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:
        return engine_process(args)
    work = pathlib.Path(args.work or ROOT / f"target/bench-compare/sf{args.scale}")
    landing = work / "landing"
    if not (landing / "orders").exists():
        subprocess.run([args.bin, "generate", "--scale", args.scale, "--out", str(landing)],
                       check=True, stdout=subprocess.DEVNULL)
    results = {}
    for engine in args.engines.split(","):
        print(f"running {engine} …", file=sys.stderr, flush=True)
        results[engine] = measure(engine, args, landing, work)
    report(args.scale, results)


def report(scale, results):
    engines = list(results)
    print(f"e-commerce bronze → silver → gold at scale {scale} (quality_gate and ml left out)")
    print(f"{'':10}" + "".join(f"{e:>12}" for e in engines))
    for layer in ("bronze", "silver", "gold"):
        print(f"{layer:10}" + "".join(f"{results[e]['layers'][layer]:>11.2f}s" for e in engines))
    totals = {e: sum(results[e]["layers"].values()) for e in engines}
    print(f"{'total':10}" + "".join(f"{totals[e]:>11.2f}s" for e in engines))
    print(f"{'peak RSS':10}" + "".join(f"{results[e]['rss_mib']:>8.0f} MiB" for e in engines))
    if "medallion" in totals:
        for e in engines:
            if e != "medallion":
                print(f"{e} / medallion: {totals[e] / totals['medallion']:.2f}×")
    figures = {e: gold_figures(e, results[e]["out"]) for e in engines}
    disagreements = 0
    for table in AGREEMENT:
        values = [figures[e][table] for e in engines]
        rows = {v[0] for v in values}
        sums = [v[1] or 0.0 for v in values]
        agree = len(rows) == 1 and max(sums) - min(sums) <= 1e-6 * max(1.0, abs(max(sums)))
        disagreements += not agree
        shown = "  ".join(f"{e}={v[0]} rows/{v[1]:.2f}" for e, v in zip(engines, values))
        print(f"  {'agree' if agree else 'DIFFER'} {table} {AGREEMENT[table]}: {shown}")
    print(f"gold tables agreeing: {len(AGREEMENT) - disagreements} of {len(AGREEMENT)}")


if __name__ == "__main__":
    main()
