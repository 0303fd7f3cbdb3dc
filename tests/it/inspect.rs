//! `medallion query` and `medallion history` over a lakehouse two runs wrote: tables by name,
//! an earlier version by `name@version`, quarantine tables and the event log — checked against
//! the Python `deltalake` reader.

use std::process::{Command, Output};

use crate::support::*;

fn medallion(ws: &Workspace, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .args(["--spec", &ws.path("pipeline.toml").display().to_string()])
        .args(["--lakehouse", &ws.path("lake").display().to_string()])
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{}", text(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn query_reads_tables_versions_quarantine_and_history_reads_the_runs() {
    let ws = Workspace::new(SPEC);
    assert!(ws.run("lake", &[]).status.success());
    std::fs::write(
        ws.path("landing/orders/orders_3.csv"),
        "order_id,customer_id,amount,quantity,updated_at\n7,12,5.00,1,2024-01-04 10:00:00\n",
    )
    .unwrap();
    let second = ws.run("lake", &[]);
    assert!(second.status.success(), "{}", text(&second));

    // Tables by name, as the Python reader sees them.
    let csv = stdout(&medallion(
        &ws,
        &["query", "--format", "csv", "SELECT count(*) AS n FROM orders_raw"],
    ));
    let rows = python_row_count(&ws.path("lake/bronze/orders_raw"));
    assert_eq!(csv, format!("n\n{rows}\n"));
    // The version before the second run's append.
    let csv = stdout(&medallion(
        &ws,
        &[
            "query",
            "--format",
            "csv",
            "SELECT (SELECT count(*) FROM orders_raw@0) AS then, (SELECT count(*) FROM orders_raw) AS now",
        ],
    ));
    assert_eq!(csv, format!("then,now\n{},{rows}\n", rows - 1));
    // Quarantine tables and the event log, as JSON lines. `orders` is rebuilt by each run, and
    // so is its quarantine: the one negative amount, from the second run.
    let json = stdout(&medallion(
        &ws,
        &[
            "query",
            "--format",
            "json",
            "SELECT _rule, count(DISTINCT _run_id) AS runs, count(*) AS n FROM orders__quarantine GROUP BY _rule",
        ],
    ));
    assert_eq!(json.trim(), r#"{"_rule":"positive_amount","runs":1,"n":1}"#);
    let table = stdout(&medallion(
        &ws,
        &["query", "SELECT count(DISTINCT run_id) AS runs FROM event_log"],
    ));
    assert!(table.contains("| 2    |"), "{table}");

    // history after a third run (nothing new): the three runs, newest first; one run's tables.
    let third = ws.run("lake", &[]);
    assert!(third.status.success(), "{}", text(&third));
    let runs = stdout(&medallion(&ws, &["history", "--format", "csv"]));
    let lines: Vec<&str> = runs.lines().collect();
    assert_eq!(lines.len(), 4, "{runs}");
    assert!(lines[1].starts_with(&run_id(&third)), "{runs}");
    assert!(lines[2].starts_with(&run_id(&second)), "{runs}");
    let lines = &lines[1..];
    assert!(
        lines[1].contains(",succeeded,") && lines[1].contains(",4,"),
        "{runs}"
    );
    let detail = stdout(&medallion(&ws, &["history", "--run", &run_id(&second)]));
    for table in ["orders_raw", "customers_raw", "orders", "revenue_by_country"] {
        assert!(
            detail.contains(&format!("| {table} ")),
            "{table} missing:\n{detail}"
        );
    }
    assert!(
        detail.contains("no_new_data"),
        "customers_raw had no new file:\n{detail}"
    );

    // A query error names what is wrong; an unknown version is refused.
    let bad = medallion(&ws, &["query", "SELECT nope FROM orders"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad).contains("No field named nope"), "{}", text(&bad));
    let bad = medallion(&ws, &["query", "SELECT * FROM orders@99"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad).contains("orders@99"), "{}", text(&bad));
}

#[test]
fn a_query_on_a_scheduler_reads_what_the_local_query_reads() {
    let ws = Workspace::new(SPEC);
    assert!(ws.run("lake", &[]).status.success());
    let cluster = start_cluster(ws.dir.path(), 1);
    let sql = "SELECT c.country, count(*) AS n FROM orders o JOIN customers_raw c \
               ON o.customer_id = CAST(c.customer_id AS BIGINT) GROUP BY c.country ORDER BY c.country";
    let local = stdout(&medallion(&ws, &["query", "--format", "csv", sql]));
    let remote = stdout(&medallion(
        &ws,
        &[
            "query",
            "--format",
            "csv",
            "--scheduler",
            &cluster.scheduler_url,
            sql,
        ],
    ));
    assert_eq!(remote, local);
    assert!(local.lines().count() > 1, "{local}");
    let runs = stdout(&medallion(
        &ws,
        &[
            "history",
            "--format",
            "csv",
            "--scheduler",
            &cluster.scheduler_url,
        ],
    ));
    assert_eq!(runs.lines().count(), 2, "{runs}");
    let nowhere = medallion(&ws, &["query", "--scheduler", "df://127.0.0.1:1", sql]);
    assert_eq!(nowhere.status.code(), Some(2), "{}", text(&nowhere));
}
