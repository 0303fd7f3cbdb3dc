//! Incremental SQL tables: a row-wise query over an appended input computes only the new rows,
//! and after random batches equals a `--full-refresh`; a query that is not row-wise is computed
//! in full, with the reason logged.

use crate::support::*;

const SPEC: &str = r#"
[pipeline]
name = "incremental"

[[table]]
name = "events_raw"
layer = "bronze"
source = { path = "events/*.csv", format = "csv" }

[[table]]
name = "events"
layer = "silver"
incremental = true
sql = """
SELECT CAST(id AS BIGINT) AS id, upper(trim(kind)) AS kind, TRY_CAST(amount AS DOUBLE) AS amount
FROM events_raw WHERE kind IS NOT NULL
"""
[[table.expect]]
name = "has_amount"
sql = "amount IS NOT NULL"
action = "drop"

[[table]]
name = "per_kind"
layer = "gold"
incremental = true
sql = "SELECT kind, count(*) AS events, sum(amount) AS amount FROM events GROUP BY kind"
"#;

fn batch(rng: &mut medallion_jobs::generate::Rng, first: u64, rows: u64) -> String {
    let mut csv = String::from("id,kind,amount\n");
    for id in first..first + rows {
        let kind = *rng.pick(&["view", " Buy", "cart", ""]);
        let amount = if rng.chance(0.1) {
            "n/a".to_string()
        } else {
            rng.below(100).to_string()
        };
        csv += &format!("{id},{kind},{amount}\n");
    }
    csv
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_wise_table_computes_only_new_rows_and_equals_a_full_refresh() {
    let ws = Workspace::new(SPEC);
    let dir = ws.path("landing/events");
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = medallion_jobs::generate::Rng::new(11);
    for b in 0..4u64 {
        // Batch 2 is empty: a run with nothing new.
        let rows = if b == 2 { 0 } else { 40 };
        std::fs::write(dir.join(format!("{b}.csv")), batch(&mut rng, b * 100, rows)).unwrap();
        let run = ws
            .command("lake", &[])
            .env("MEDALLION_LOG", "info")
            .output()
            .unwrap();
        assert!(run.status.success(), "batch {b} failed:\n{}", text(&run));
        let out = text(&run);
        if b == 0 {
            assert!(!out.contains("computed from the appended rows"), "{out}");
        } else if b != 2 {
            assert!(
                out.contains("computed from the appended rows"),
                "batch {b}: {out}"
            );
        }
        assert!(
            out.contains("computed in full") && out.contains("an aggregate over the whole input"),
            "batch {b}: {out}"
        );
    }
    let full = ws.run("full", &["--full-refresh"]);
    assert!(full.status.success(), "full refresh failed:\n{}", text(&full));
    for table in ["silver/events", "gold/per_kind"] {
        let incremental = table_rows(&ws.path("lake").join(table), "*").await;
        assert!(incremental.lines().count() > 6, "{table}: {incremental}");
        assert_eq!(
            incremental,
            table_rows(&ws.path("full").join(table), "*").await,
            "{table} differs from a full refresh"
        );
    }
    // An edited query is recomputed in full (its rows would otherwise mix two definitions).
    let edited = SPEC.replace("upper(trim(kind))", "lower(trim(kind))");
    std::fs::write(ws.path("pipeline.toml"), edited).unwrap();
    let run = ws.run("lake", &[]);
    assert!(run.status.success(), "edited run failed:\n{}", text(&run));
    let kinds = table_rows(&ws.path("lake/silver/events"), "DISTINCT kind").await;
    assert!(kinds.contains("view") && !kinds.contains("VIEW"), "{kinds}");
    std::fs::write(ws.path("pipeline.toml"), SPEC).unwrap();
    assert!(ws.run("lake", &[]).status.success());

    // Each bad row was quarantined once, by the run that first read it.
    let quarantined = |lake: &str| ws.path(lake).join("silver/events__quarantine");
    let q = table_rows(&quarantined("lake"), "id, _rule").await;
    assert_eq!(q, table_rows(&quarantined("full"), "id, _rule").await);
}
