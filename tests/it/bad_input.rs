//! Bad input: clear errors naming the place, never a panic, never a half-written table.

use crate::support::*;

#[test]
fn malformed_spec_names_file_and_line() {
    let ws = Workspace::new(
        "[pipeline]\nname = \"x\"\n[[table]]\nname = \"t\"\nlayer = \"gold\"\nsql = \"SELECT * FROM nowhere\"\n",
    );
    let out = ws.run("lake", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains("pipeline.toml:4: table `t`: references unknown table `nowhere`"),
        "{msg}"
    );
    assert!(!msg.contains("panicked"), "{msg}");
}

#[test]
fn missing_source_fails_the_table_and_names_the_url() {
    let spec = SPEC.replace("orders/*.csv", "nothing_here/*.csv");
    let ws = Workspace::new(&spec);
    let out = ws.run("lake", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let msg = text(&out);
    assert!(msg.contains("table `orders_raw`: source `file://"), "{msg}");
    assert!(msg.contains("nothing_here/*.csv` matched no files"), "{msg}");
    assert!(msg.contains("skipped"), "downstream tables are skipped: {msg}");
    assert!(!ws.path("lake/bronze/orders_raw").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_expectation_leaves_table_at_previous_version() {
    let ws = Workspace::new(SPEC);
    let first = ws.run("lake", &[]);
    assert!(first.status.success(), "{}", text(&first));
    let gold = ws.path("lake/gold/revenue_by_country");
    let before = table_rows(&gold, "*").await;
    let version_before = version(&gold).await;
    let files_before = parquet_files(&gold);

    let strict = format!(
        "{SPEC}[[table.expect]]\nname = \"big_countries\"\nsql = \"orders > 1\"\naction = \"fail\"\n"
    );
    std::fs::write(ws.path("pipeline.toml"), strict).unwrap();
    let out = ws.run("lake", &["--select", "revenue_by_country"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("expectation `big_countries` failed for 1 row(s)"),
        "{}",
        text(&out)
    );
    assert_eq!(version(&gold).await, version_before);
    assert_eq!(table_rows(&gold, "*").await, before);
    assert_eq!(
        parquet_files(&gold),
        files_before,
        "files of the aborted write are deleted"
    );
}
