//! Landing files as users' landing zones have them: gzip, zstd and bzip2 files read whether
//! their names say so or only their first bytes do, a file that does not decompress failing
//! its table by name — never skipped — and a reader of a table that was never committed told so.

use bytes::Bytes;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use futures::{StreamExt, TryStreamExt};

use crate::support::*;

const SPEC: &str = r#"
[pipeline]
name = "ingest"

[[table]]
name = "sales_raw"
layer = "bronze"
source = { path = "sales/*", format = "csv", schema = { id = "bigint", amount = "bigint" } }

[[table]]
name = "clicks_raw"
layer = "bronze"
source = { path = "clicks/*", format = "ndjson" }
"#;

async fn compressed(codec: FileCompressionType, text: &str) -> Bytes {
    let input = futures::stream::once(async move { Ok(Bytes::from(text.to_string())) }).boxed();
    let parts: Vec<Bytes> = codec
        .convert_to_compress_stream(input)
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    Bytes::from(parts.concat())
}

#[tokio::test(flavor = "multi_thread")]
async fn compressed_landing_files_are_read_and_a_broken_one_fails_naming_it() {
    let ws = Workspace::new(SPEC);
    let write = |rel: &str, bytes: &[u8]| {
        let path = ws.path(&format!("landing/{rel}"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    write("sales/a.csv", b"id,amount\n1,10\n2,20\n");
    write(
        "sales/b.csv.gz",
        &compressed(FileCompressionType::GZIP, "id,amount\n3,30\n").await,
    );
    // Only its first bytes say this one is bzip2.
    write(
        "sales/c.csv",
        &compressed(FileCompressionType::BZIP2, "id,amount\n4,40\n").await,
    );
    let clicks = "{\"id\": 1, \"page\": \"home\"}\n{\"id\": 2, \"page\": \"cart\"}\n";
    write(
        "clicks/a.ndjson.zst",
        &compressed(FileCompressionType::ZSTD, clicks).await,
    );
    let out = ws.run("lake", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let sales = ws.path("lake/bronze/sales_raw");
    let rows = table_rows(&sales, "id, amount").await;
    for row in [
        "| 1  | 10     |",
        "| 2  | 20     |",
        "| 3  | 30     |",
        "| 4  | 40     |",
    ] {
        assert!(rows.contains(row), "{row} missing:\n{rows}");
    }
    let pages = table_rows(&ws.path("lake/bronze/clicks_raw"), "page").await;
    assert!(pages.contains("home") && pages.contains("cart"), "{pages}");

    // A file that is not the gzip its name says fails the table, naming the file; nothing of
    // the batch is committed, and the next run reads it again.
    write("sales/d.csv.gz", b"\x1f\x8b\x08\x00not gzip at all");
    write("sales/e.csv", b"id,amount\n5,50\n");
    let before = version(&sales).await;
    let out = ws.run("lake", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains("d.csv.gz") && msg.contains("not a valid gzip file") && !msg.contains("panicked"),
        "{msg}"
    );
    assert_eq!(version(&sales).await, before);
    write(
        "sales/d.csv.gz",
        &compressed(FileCompressionType::GZIP, "id,amount\n6,60\n").await,
    );
    let out = ws.run("lake", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let rows = table_rows(&sales, "id").await;
    assert!(rows.contains("| 5  |") && rows.contains("| 6  |"), "{rows}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_file_is_quarantined_whole_once_when_the_source_says_so() {
    let spec = r#"
[pipeline]
name = "unreadable"

[[table]]
name = "sales_raw"
layer = "bronze"
source = { path = "sales/*", format = "csv", schema = { id = "bigint" }, on_unreadable = "quarantine" }
"#;
    let ws = Workspace::new(spec);
    let write = |rel: &str, bytes: &[u8]| {
        let path = ws.path(&format!("landing/{rel}"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    write("sales/a.csv", b"id,amount\n1,10\n2,20\n");
    write("sales/b.csv.gz", b"\x1f\x8b\x08\x00not gzip at all");
    write(
        "sales/c.csv.zst",
        &compressed(FileCompressionType::ZSTD, "id,amount\n3,30\n").await,
    );
    let out = ws.run("lake", &[]);
    assert!(out.status.success(), "the readable files land: {}", text(&out));
    let sales = ws.path("lake/bronze/sales_raw");
    let rows = table_rows(&sales, "id").await;
    assert!(rows.contains("| 1  |") && rows.contains("| 3  |"), "{rows}");
    let quarantine = ws.path("lake/bronze/sales_raw__quarantine");
    let reasons = table_rows(&quarantine, "_rule, _reason, _source_file").await;
    assert!(
        reasons.contains("readable_file")
            && reasons.contains("b.csv.gz: unreadable file:")
            && reasons.contains("not a valid gzip file"),
        "{reasons}"
    );
    // The next run does not read it again: one quarantine row, and nothing new.
    write("sales/d.csv", b"id,amount\n4,40\n");
    let out = ws.run("lake", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let count = table_rows(&quarantine, "count(*) AS n").await;
    assert!(count.contains("| 1 "), "{count}");
    assert!(table_rows(&sales, "id").await.contains("| 4  |"));
}

#[test]
fn a_table_whose_upstream_never_committed_fails_saying_so() {
    let spec = r#"
[pipeline]
name = "unbuilt"

[[table]]
name = "o_raw"
layer = "bronze"
source = { path = "o/*.csv", format = "csv" }

[[table]]
name = "o"
layer = "silver"
sql = "SELECT * FROM o_raw"
"#;
    let ws = Workspace::new(spec);
    // An empty file: no columns, no rows — bronze has nothing to commit.
    std::fs::create_dir_all(ws.path("landing/o")).unwrap();
    std::fs::write(ws.path("landing/o/a.csv"), b"").unwrap();
    let out = ws.run("lake", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains("table `o`: upstream table `o_raw` has no data yet (it has never been committed)"),
        "{msg}"
    );
    assert!(!msg.contains("not found"), "{msg}");
}

const EVOLVING: &str = r#"
[pipeline]
name = "evolving"

[[table]]
name = "pay_raw"
layer = "bronze"
source = { path = "pay/*.csv", format = "csv", schema = { id = "bigint" } }

[[table]]
name = "events_raw"
layer = "bronze"
source = { path = "events/*.json", format = "json" }

[[table]]
name = "pay"
layer = "silver"
sql = "SELECT * FROM pay_raw"

[[table]]
name = "pay_later"
layer = "silver"
incremental = true
sql = "SELECT id, amount, _source_file FROM pay_raw WHERE id > 1"

[[table]]
name = "pay_all_columns"
layer = "silver"
incremental = true
sql = "SELECT * FROM pay_raw WHERE id > 1"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn new_columns_of_later_files_are_added_rescued_or_refused_as_the_source_says() {
    let ws = Workspace::new(EVOLVING);
    let write = |rel: &str, text: &str| {
        let path = ws.path(&format!("landing/{rel}"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("pay/a.csv", "id,amount\n1,10\n2,20\n");
    write("events/a.json", "{\"id\": 1, \"kind\": \"view\"}\n");
    assert!(ws.run("lake", &[]).status.success());

    // add_columns (the default): a new column, a file with its columns in another order and
    // one without a column; the table gains the column in the same commit, older rows read NULL.
    write("pay/b.csv", "id,currency,amount\n3,EUR,30\n");
    write("pay/c.csv", "amount,id\n40,4\n");
    write(
        "events/b.json",
        "{\"id\": 2, \"kind\": \"cart\", \"device\": \"ios\"}\n",
    );
    let out = ws.run("lake", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let pay = table_rows(&ws.path("lake/silver/pay"), "id, amount, currency").await;
    for row in [
        "| 1  | 10     |          |",
        "| 3  | 30     | EUR      |",
        "| 4  | 40     |          |",
    ] {
        assert!(pay.contains(row), "{row} missing:\n{pay}");
    }
    let events = table_rows(&ws.path("lake/bronze/events_raw"), "id, device, _rescued_data").await;
    assert!(events.contains("| 2  | ios    |"), "{events}");
    // An incremental table whose columns stay appends; one that gains the column is rebuilt.
    let out = text(&out);
    assert!(
        out.contains("incremental_append: the rows of its inputs' new files"),
        "{out}"
    );
    assert!(
        out.contains("full: its output columns changed since the last run"),
        "{out}"
    );
    let all = table_rows(&ws.path("lake/silver/pay_all_columns"), "id, currency").await;
    assert!(all.contains("| 3  | EUR      |"), "{all}");

    // fail: the table stops at its version, naming the file and the column.
    let strict = EVOLVING.replace(
        "schema = { id = \"bigint\" } }",
        "schema = { id = \"bigint\" }, schema_evolution = \"fail\" }",
    );
    std::fs::write(ws.path("pipeline.toml"), &strict).unwrap();
    write("pay/d.csv", "id,amount,vat\n5,50,5\n");
    let before = version(&ws.path("lake/bronze/pay_raw")).await;
    let out = ws.run("lake", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("d.csv` has column `vat`, which the table does not have"),
        "{}",
        text(&out)
    );
    assert_eq!(version(&ws.path("lake/bronze/pay_raw")).await, before);

    // rescue: the value is kept as JSON in `_rescued_data`; the schema stays.
    std::fs::write(ws.path("pipeline.toml"), strict.replace("\"fail\"", "\"rescue\"")).unwrap();
    std::fs::remove_dir_all(ws.path("lake")).unwrap();
    std::fs::remove_file(ws.path("landing/pay/d.csv")).unwrap();
    assert!(ws.run("lake", &[]).status.success());
    write("pay/d.csv", "id,amount,vat\n5,50,5\n");
    let out = ws.run("lake", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let rescued = table_rows(&ws.path("lake/bronze/pay_raw"), "id, _rescued_data").await;
    assert!(
        rescued
            .lines()
            .any(|l| l.starts_with("| 5 ") && l.contains("{\"vat\":\"5\"}")),
        "{rescued}"
    );
}

/// A Parquet file with the given columns.
fn parquet_file(path: &std::path::Path, columns: Vec<(&str, datafusion::arrow::array::ArrayRef)>) {
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::parquet::arrow::ArrowWriter;
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn parquet_files_with_differing_schemas_are_merged_widened_or_refused_by_name() {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int16Array, Int32Array, Int64Array, StringArray};
    let spec = r#"
[pipeline]
name = "parquet"

[[table]]
name = "sales_raw"
layer = "bronze"
source = { path = "sales/*.parquet", format = "parquet" }
"#;
    let ws = Workspace::new(spec);
    let at = |name: &str| ws.path(&format!("landing/sales/{name}"));
    parquet_file(
        &at("a.parquet"),
        vec![
            ("id", Arc::new(Int32Array::from(vec![1, 2])) as _),
            ("amount", Arc::new(Int64Array::from(vec![10, 20])) as _),
        ],
    );
    parquet_file(
        &at("b.parquet"),
        vec![
            ("id", Arc::new(Int64Array::from(vec![3])) as _),
            ("amount", Arc::new(Int64Array::from(vec![30])) as _),
            ("currency", Arc::new(StringArray::from(vec!["EUR"])) as _),
        ],
    );
    let out = ws.run("lake", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let sales = ws.path("lake/bronze/sales_raw");
    let rows = table_rows(&sales, "id, amount, currency, arrow_typeof(id) AS t").await;
    for row in [
        "| 1  | 10     |          | Int64 |",
        "| 3  | 30     | EUR      | Int64 |",
    ] {
        assert!(rows.contains(row), "{row} missing:\n{rows}");
    }
    // A type that does not widen to the table's fails the table, naming the file and column.
    parquet_file(
        &at("c.parquet"),
        vec![("id", Arc::new(StringArray::from(vec!["x"])) as _)],
    );
    let before = version(&sales).await;
    let out = ws.run("lake", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains("c.parquet") && msg.contains("column `id` is Utf8 here but Int64 in the table"),
        "{msg}"
    );
    assert_eq!(version(&sales).await, before);
    // Narrower integers widen to the table's types.
    std::fs::remove_file(at("c.parquet")).unwrap();
    parquet_file(
        &at("d.parquet"),
        vec![
            ("id", Arc::new(Int16Array::from(vec![4])) as _),
            ("amount", Arc::new(Int32Array::from(vec![40])) as _),
        ],
    );
    let out = ws.run("lake", &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(table_rows(&sales, "id, amount").await.contains("| 4  | 40     |"));
}
