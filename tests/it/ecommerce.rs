//! The e-commerce pipeline end to end on generated data, three batches, checked by an
//! independent reader (pyarrow via the `deltalake` package).

use std::process::Command;

use medallion_jobs::delta::{SinceVersion, TableSnapshot};

use crate::support::*;

fn generate(landing: &std::path::Path, batch: u64) {
    generate_ecommerce(landing, "0.002", batch);
}

fn run(dir: &std::path::Path) -> String {
    run_with(dir, "lake", &[])
}

fn run_with(dir: &std::path::Path, lake: &str, extra: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["run", "--spec", ECOMMERCE_SPEC, "--landing"])
        .arg(dir.join("landing"))
        .arg("--lakehouse")
        .arg(dir.join(lake))
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "pipeline failed:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A customer with id 0, below the generated ones.
const MIGRATED_CUSTOMER: &str = r#"{"customer_id":"0","first_name":"Mig","last_name":"Rated","email":"mig.rated0@example.com","phone":"+1-555-502-0000","address":{"street":"1 Old St","city":"Oakdale","state":"S1","country":"GB","postcode":"31031"},"signup_ts":"2024-01-01 00:00:00","updated_at":"2024-01-01 00:00:00"}
"#;

/// `(customer_id, customer_key)` of every row of `dim_customer`, sorted.
async fn customer_keys(dir: &std::path::Path) -> Vec<(String, String)> {
    let rows = table_rows(&dir.join("lake/gold/dim_customer"), "customer_id, customer_key").await;
    let cells = |line: &str| {
        let cells: Vec<String> = line.split('|').map(|c| c.trim().to_string()).collect();
        (cells[1].clone(), cells[2].clone())
    };
    rows.lines()
        .skip(3)
        .filter(|l| l.starts_with('|'))
        .map(cells)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn ecommerce_pipeline_is_correct_across_batches() {
    let dir = tempfile::tempdir().unwrap();
    let landing = dir.path().join("landing");
    let mut first_keys = vec![];
    for batch in 0..3 {
        generate(&landing, batch);
        if batch == 2 {
            // A customer whose id sorts before every other (a migrated record): a key numbered
            // in id order would move for every customer after it.
            std::fs::create_dir_all(landing.join("customers/migrated")).unwrap();
            std::fs::write(landing.join("customers/migrated/zero.ndjson"), MIGRATED_CUSTOMER).unwrap();
        }
        let summary = run(dir.path());
        assert!(summary.contains("quality_gate"), "{summary}");
        if batch == 0 {
            first_keys = customer_keys(dir.path()).await;
        }
        // A batch's sessions are new: computed from the new click files, appended.
        if batch > 0 {
            let sessions = &summary[summary.find(" sessions ").expect("a sessions line")..];
            assert!(
                sessions.contains("(0 of ") && sessions.contains("file(s) of `clickstream` read"),
                "{summary}"
            );
        }
    }

    // Later batches add customers (one with an id below all others); the first batch's
    // customers keep their surrogate keys.
    let last_keys = customer_keys(dir.path()).await;
    assert!(last_keys.len() > first_keys.len(), "customers were added");
    let missing: Vec<_> = first_keys.iter().filter(|k| !last_keys.contains(k)).collect();
    assert!(missing.is_empty(), "keys that moved: {missing:?}");

    // A run with no new landing file ingests nothing, the CDC silver tables apply nothing, the
    // incremental gold tables (fact_sales, agg_daily_sales, order_totals, product_daily_sales,
    // sessions, funnel_daily, product_events, customer_activity) compute nothing, and the 10
    // gold tables computed in full and the quality gate are kept, as nothing they read changed.
    let again = run(dir.path());
    assert_eq!(
        again.matches("no_new_data").count(),
        8 + 8 + 8 + 10 + 1,
        "{again}"
    );

    let checks = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/it/ecommerce_checks.py");
    let out = Command::new("python3")
        .arg(checks)
        .arg(dir.path().join("lake"))
        .output()
        .unwrap();
    assert!(out.status.success(), "checks failed: {}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    // Gold matches an independent computation over the silver tables.
    assert_eq!(report["daily_revenue_mismatches"], 0, "{report}");
    assert_eq!(report["customer_revenue_mismatches"], 0, "{report}");
    assert!(report["days_checked"].as_u64().unwrap() > 300, "{report}");
    // Every bronze order row is accounted for, once; silver has every logged key's latest change.
    let a = &report["orders_accounting"];
    let n = |k: &str| a[k].as_u64().unwrap();
    assert_eq!(n("bronze"), n("changes") + n("quarantined"), "{report}");
    assert!(
        n("quarantined") > 0 && n("changes") > n("logged_keys"),
        "{report}"
    );
    assert_eq!(n("silver"), n("logged_keys"), "{report}");
    assert_eq!(n("not_latest"), 0, "{report}");
    // SCD2 history holds after late and out-of-order updates.
    assert_eq!(report["scd2_broken"], 0, "{report}");
    assert!(
        report["scd2_multi_version_customers"].as_u64().unwrap() > 0,
        "{report}"
    );
    // Recommendations for customers, none of a product they already bought or rated.
    assert!(report["recommended_customers"].as_u64().unwrap() > 50, "{report}");
    assert_eq!(report["recommendation_errors"], 0, "{report}");
    assert!(report["recommendation_ndcg"].as_f64().is_some(), "{report}");
    // No raw e-mail or phone past bronze.
    assert_eq!(report["pii_leaks"], serde_json::json!([]), "{report}");

    // The last batch's customers commit replaced only files of the buckets its changes touched.
    let (replaced, of) = customers_rewrite(&dir.path().join("lake/silver")).await;
    eprintln!("last customers batch replaced {replaced} of {of} files");
    assert!(replaced > 0, "the batch replaced no customer file");

    // The silver tables the batches built change by change, and the gold tables computed from
    // their changes, equal a rebuild from all of bronze (`--full-refresh` of a copy of the
    // lakehouse).
    let copied = Command::new("cp")
        .arg("-r")
        .arg(dir.path().join("lake"))
        .arg(dir.path().join("full"))
        .status()
        .unwrap();
    assert!(copied.success());
    run_with(
        dir.path(),
        "full",
        &["--full-refresh", "--layer", "bronze,silver,gold"],
    );
    let incremental_tables = [
        ("silver", "orders"),
        ("silver", "order_items"),
        ("silver", "customers"),
        ("silver", "products"),
        ("silver", "payments"),
        ("silver", "inventory"),
        ("silver", "clickstream"),
        ("silver", "ratings"),
        ("gold", "fact_sales"),
        ("gold", "agg_daily_sales"),
        ("gold", "order_totals"),
        ("gold", "product_daily_sales"),
        ("gold", "sessions"),
        ("gold", "funnel_daily"),
        // Their stored aggregates combined with each batch's new events.
        ("gold", "product_events"),
        ("gold", "customer_activity"),
        // Its checks counted over the batches' changes.
        ("gold", "quality_gate"),
    ];
    for (layer, table) in incremental_tables {
        let path = |lake: &str| dir.path().join(lake).join(layer).join(table);
        let incremental = table_rows(&path("lake"), "*").await;
        assert!(incremental.lines().count() > 10, "{table}: {incremental}");
        assert!(
            incremental == table_rows(&path("full"), "*").await,
            "{layer}.{table} differs from a full refresh"
        );
    }
}

/// The files the customers table's last commit removed — each checked to be in a bucket of a
/// key of the change log's last commit — and the files the table had before it.
async fn customers_rewrite(silver: &std::path::Path) -> (usize, usize) {
    let load = |name: &str| {
        let url = url::Url::from_directory_path(silver.join(name)).unwrap();
        async move { TableSnapshot::load(&url).await.unwrap().unwrap() }
    };
    let (table, log) = (load("customers").await, load("customers__changes").await);
    let SinceVersion::Appended(batch) = log.since(log.version() - 1).await.unwrap() else {
        panic!("the change log's last commit appended")
    };
    let ctx = datafusion::prelude::SessionContext::new();
    let scan = medallion_jobs::delta::DeltaScanTable {
        files: batch,
        ..log.scan_table().unwrap()
    };
    ctx.register_table("batch", std::sync::Arc::new(scan)).unwrap();
    let ids = ctx
        .sql("SELECT DISTINCT arrow_cast(CAST(customer_id AS VARCHAR), 'Utf8') AS id FROM batch")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut buckets = std::collections::BTreeSet::new();
    for batch in &ids {
        let column = datafusion::arrow::array::as_string_array(batch.column(0));
        for id in column.iter().flatten() {
            buckets.insert(format!("_bucket={}/", medallion_jobs::cdc::bucket_of(&[id], 16)));
        }
    }
    let log_path = silver.join(format!("customers/_delta_log/{:020}.json", table.version()));
    let mut removed = 0;
    for line in std::fs::read_to_string(log_path).unwrap().lines() {
        let action: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(path) = action.get("remove").and_then(|r| r.get("path")?.as_str()) {
            assert!(
                buckets.iter().any(|b| path.starts_with(b.as_str())),
                "{path} is in no bucket of the batch's {} customers",
                buckets.len()
            );
            removed += 1;
        }
    }
    let (added, _) = table.last_commit_files().await.unwrap();
    (removed, table.scan_table().unwrap().files.len() + removed - added)
}
