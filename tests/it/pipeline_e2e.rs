//! The 3-layer pipeline on the embedded cluster and on scheduler + 2 executor processes.

use crate::support::*;

const BRONZE_COLS: &str = "order_id, customer_id, amount, quantity, updated_at, _source_file, _row_hash";

#[tokio::test(flavor = "multi_thread")]
async fn embedded_and_cluster_runs_agree_and_reruns_write_nothing() {
    let ws = Workspace::new(SPEC);

    // (a) embedded cluster
    let embedded = ws.run("lake_a", &[]);
    assert!(
        embedded.status.success(),
        "embedded run failed:\n{}",
        text(&embedded)
    );

    // (b) a real cluster: one scheduler and two executors on loopback
    let cluster = start_cluster(ws.dir.path(), 2);
    let remote = ws.run("lake_b", &["--scheduler", &cluster.scheduler_url]);
    assert!(remote.status.success(), "cluster run failed:\n{}", text(&remote));

    let a = ws.path("lake_a");
    let b = ws.path("lake_b");
    for (table, cols) in [
        ("bronze/orders_raw", BRONZE_COLS),
        (
            "bronze/customers_raw",
            "customer_id, name, country, address, vip, _rescued_data, _row_hash",
        ),
        ("silver/orders", "*"),
        ("gold/revenue_by_country", "*"),
        ("silver/orders__quarantine", "order_id, amount, _rule, _reason"),
        ("bronze/orders_raw__quarantine", "_corrupt_record, _rule, _reason"),
    ] {
        assert_eq!(
            table_rows(&a.join(table), cols).await,
            table_rows(&b.join(table), cols).await,
            "{table} differs"
        );
    }

    // the right rows, in every layer
    let silver = table_rows(
        &a.join("silver/orders"),
        "order_id, customer_id, amount, quantity",
    )
    .await;
    assert_eq!(
        silver.trim(),
        "+----------+-------------+--------+----------+\n\
         | order_id | customer_id | amount | quantity |\n\
         +----------+-------------+--------+----------+\n\
         | 1        | 10          | 20.5   | 1        |\n\
         | 2        | 11          | 15.0   | 3        |\n\
         | 6        | 11          | 7.25   | 4        |\n\
         +----------+-------------+--------+----------+"
    );
    let gold = table_rows(&a.join("gold/revenue_by_country"), "country, orders, revenue").await;
    assert!(gold.contains("| DE      | 1      | 20.5    |"), "{gold}");
    assert!(gold.contains("| FR      | 2      | 22.25   |"), "{gold}");

    // quarantine: the reason names file, line and field
    let bronze_q = table_rows(
        &a.join("bronze/orders_raw__quarantine"),
        "_rule, _reason, _corrupt_record",
    )
    .await;
    assert!(
        bronze_q.contains("orders_1.csv line 6: expected 5 fields, found 6"),
        "{bronze_q}"
    );
    assert!(
        bronze_q.contains("orders_2.csv line 2 field `quantity`: 'two' is not a valid INT"),
        "{bronze_q}"
    );
    assert!(
        bronze_q.contains("4,12,9.99,1,2024-01-02 08:00:00,EXTRA"),
        "raw line kept: {bronze_q}"
    );
    let json_q = table_rows(
        &a.join("bronze/customers_raw__quarantine"),
        "_rule, _reason, _corrupt_record",
    )
    .await;
    assert!(
        json_q.contains("customers.ndjson line 3: not valid JSON"),
        "{json_q}"
    );
    let silver_q = table_rows(
        &a.join("silver/orders__quarantine"),
        "order_id, _rule, _reason, _run_id",
    )
    .await;
    assert!(
        silver_q
            .contains("| 3        | positive_amount | expectation `positive_amount` failed: amount > 0 |"),
        "{silver_q}"
    );
    assert!(silver_q.contains(&run_id(&embedded)), "{silver_q}");

    // event log: one row per table, all succeeded, with counts
    let log = table_rows(
        &a.join("_medallion/event_log"),
        "table_name, status, rows_read, rows_written, rows_quarantined, delta_version",
    )
    .await;
    for row in [
        "| customers_raw      | succeeded | 4         | 3            | 1                | 0             |",
        "| orders             | succeeded | 4         | 3            | 1                | 0             |",
        "| orders_raw         | succeeded | 8         | 6            | 2                | 0             |",
        "| revenue_by_country | succeeded | 2         | 2            | 0                | 0             |",
    ] {
        assert!(log.contains(row), "missing {row} in\n{log}");
    }

    // the same run again writes nothing
    let id = run_id(&embedded);
    let before = version(&a.join("silver/orders")).await;
    let again = ws.run("lake_a", &["--run-id", &id]);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(status_count(&again, "already_committed"), 4, "{}", text(&again));
    assert_eq!(version(&a.join("silver/orders")).await, before);
    assert_eq!(
        table_rows(&a.join("bronze/orders_raw"), BRONZE_COLS).await,
        table_rows(&b.join("bronze/orders_raw"), BRONZE_COLS).await
    );

    // a new run ingests no landing file twice
    let next = ws.run("lake_a", &[]);
    assert!(next.status.success(), "{}", text(&next));
    assert!(text(&next).contains("no_new_data"), "{}", text(&next));
    assert_eq!(python_row_count(&a.join("bronze/orders_raw")), 6);

    // a full refresh rebuilds from every landing file instead of appending them again
    let full = ws.run("lake_a", &["--full-refresh", "--select", "orders_raw"]);
    assert!(full.status.success(), "{}", text(&full));
    assert_eq!(python_row_count(&a.join("bronze/orders_raw")), 6);
    assert_eq!(version(&a.join("bronze/orders_raw")).await, 1);

    // an independent reader sees the same rows
    for (table, rows) in [
        ("bronze/orders_raw", 6),
        ("silver/orders", 3),
        ("gold/revenue_by_country", 2),
        ("silver/orders__quarantine", 1),
    ] {
        assert_eq!(python_row_count(&b.join(table)), rows, "{table}");
    }
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_with_a_memory_limit_gives_its_executor_that_pool_and_the_same_tables() {
    let ws = Workspace::new(SPEC);
    let unbounded = ws.run("lake_a", &[]);
    assert!(unbounded.status.success(), "{}", text(&unbounded));
    let bounded = ws.run("lake_b", &["--memory-limit-mib", "64", "--log", "info"]);
    assert!(bounded.status.success(), "{}", text(&bounded));
    // Ballista's executor says which pool its tasks share, split by task slot.
    let log = text(&bounded);
    assert!(
        log.contains("Executor memory pool") && log.contains("configured via --memory-pool-size"),
        "{log}"
    );
    for table in ["silver/orders", "gold/revenue_by_country"] {
        assert_eq!(
            table_rows(&ws.path("lake_a").join(table), "*").await,
            table_rows(&ws.path("lake_b").join(table), "*").await,
            "{table} differs"
        );
    }
}

/// A table's `settings` reach the cluster's planner for its jobs alone: one target
/// partition writes its rows in one file, where the same query without it writes two.
#[tokio::test(flavor = "multi_thread")]
async fn a_tables_settings_apply_to_its_jobs_alone() {
    let per_customer = "layer = \"gold\"\nsql = \"SELECT customer_id, count(*) AS orders FROM orders GROUP BY customer_id\"\n";
    let spec = format!(
        "{SPEC}\n[[table]]\nname = \"per_customer\"\n{per_customer}\n[[table]]\nname = \"per_customer_in_one\"\n{per_customer}\
         settings = {{ \"datafusion.execution.target_partitions\" = 1 }}\n"
    );
    let ws = Workspace::new(&spec);
    let out = ws.run("lake", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let files = |table: &str| parquet_files(&ws.path("lake/gold").join(table));
    assert_eq!((files("per_customer"), files("per_customer_in_one")), (2, 1));
    assert_eq!(
        table_rows(&ws.path("lake/gold/per_customer"), "*").await,
        table_rows(&ws.path("lake/gold/per_customer_in_one"), "*").await
    );
}
